//! `labbook lint`: find broken labs in seconds, without a cluster.
//!
//! The lint only reads the lab model ([`labbook::Lab`]); it never parses Markdown. Each lab is checked
//! by a few passes, each in its own module:
//!
//! - [`shell`]: bash-only syntax in POSIX `sh` sessions, heredocs whose unquoted body the shell
//!   will mangle, and the parser's syntax errors when ShellCheck is not installed;
//! - [`shellcheck`]: ShellCheck on every runnable block, in the dialect that will actually run it,
//!   batched into one invocation for the whole course;
//! - [`manifest`]: the YAML fed to `kubectl apply|create -f`, checked against the typed schemas of
//!   core Kubernetes kinds (k8s-openapi) and of the Istio and Gateway API kinds ([`istio`]);
//! - [`cluster`]: a replay of the lab's kubectl commands and manifests into a small model of the
//!   cluster the lab builds, and the checks that model allows (selectors, subsets, hosts, cleanup);
//! - [`course`]: sessions, watches, `make` targets and Verify sections;
//! - [`printed`]: printed output that contradicts the step's accepted snapshot, or follows no
//!   command that runs;
//! - [`images`]: floating image tags (`:latest`, or none).
//!
//! Every rule has a stable kebab-case id, listed in [`RULES`] and documented in
//! `docs/lint-rules.md`. A correct lab must produce no errors: when a check cannot be sure (a
//! resource made by a `make` target, a file it cannot see, a name held in `$VAR`), it stays quiet
//! or says `warning`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use labbook::course::Course;
use labbook::model::Lab;

pub mod cluster;
pub mod course;
pub mod images;
pub mod istio;
pub use labbook::kubectl;
pub mod manifest;
pub mod printed;
pub mod reading;
pub mod shell;
pub mod shellcheck;
pub use labbook::yaml;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The lab is broken: a command fails, a rule is rejected or silently ignored.
    Error,
    /// Probably wrong, or wrong in a way the lint cannot be sure of.
    Warning,
    /// Worth knowing, never a defect on its own (a manual check, a watch stopped by its limit).
    Info,
}

impl Severity {
    /// The severity's name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding, pointing at a Markdown line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The chapter file.
    pub path: PathBuf,
    /// The 1-based Markdown line.
    pub line: usize,
    /// The rule id (`heredoc-unquoted-dollar`, `shellcheck/SC2039`, ...).
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when there is something specific to say.
    pub help: Option<String>,
}

/// A rule: its stable id, its usual severity and what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable id.
    pub id: &'static str,
    /// The severity it usually reports with (some rules lower it when they cannot be sure).
    pub severity: Severity,
    /// What the rule finds, in a few words.
    pub summary: &'static str,
}

const fn rule(id: &'static str, severity: Severity, summary: &'static str) -> Rule {
    Rule {
        id,
        severity,
        summary,
    }
}

/// Every rule, in the order of `docs/lint-rules.md`. ShellCheck's findings use the group id
/// `shellcheck/SCnnnn`, listed here once as `shellcheck`.
pub const RULES: &[Rule] = &[
    rule(
        "shellcheck",
        Severity::Warning,
        "ShellCheck findings (`shellcheck/SCnnnn`) in the dialect that runs the block",
    ),
    rule(
        "shell-syntax",
        Severity::Error,
        "a block that is not valid shell (without ShellCheck)",
    ),
    rule(
        "sh-bashism",
        Severity::Error,
        "bash-only syntax typed into a POSIX sh",
    ),
    rule(
        "heredoc-unquoted-dollar",
        Severity::Error,
        "an unquoted heredoc whose `$` text the shell expands",
    ),
    rule(
        "heredoc-unquoted-backtick",
        Severity::Error,
        "an unquoted heredoc whose backticks the shell runs",
    ),
    rule(
        "manifest-yaml",
        Severity::Error,
        "a manifest that is not valid YAML or has no kind",
    ),
    rule(
        "manifest-unknown-field",
        Severity::Error,
        "a field the kind's schema does not have",
    ),
    rule(
        "manifest-wrong-type",
        Severity::Error,
        "a value of the wrong type",
    ),
    rule(
        "manifest-deprecated-field",
        Severity::Warning,
        "a deprecated field or value",
    ),
    rule(
        "manifest-value-range",
        Severity::Error,
        "a value out of range (percentages, weights)",
    ),
    rule(
        "manifest-api-version",
        Severity::Error,
        "an apiVersion Kubernetes no longer serves",
    ),
    rule(
        "manifest-missing-crd",
        Severity::Error,
        "a kind whose CRD a default install does not provide",
    ),
    rule(
        "manifest-unknown-kind",
        Severity::Warning,
        "an applied custom kind no schema describes (its fields are not checked)",
    ),
    rule(
        "image-floating-tag",
        Severity::Warning,
        "an image with the `latest` tag or no tag",
    ),
    rule(
        "selector-mismatch",
        Severity::Error,
        "a workload whose template labels do not match its immutable selector",
    ),
    rule(
        "service-selects-nothing",
        Severity::Warning,
        "a Service whose selector matches no pod",
    ),
    rule(
        "subset-no-endpoints",
        Severity::Warning,
        "a DestinationRule subset that selects no pod behind its host",
    ),
    rule(
        "subset-undefined",
        Severity::Error,
        "a route to a subset no DestinationRule defines",
    ),
    rule(
        "virtual-service-conflict",
        Severity::Error,
        "a second VirtualService for a host (only the oldest takes effect)",
    ),
    rule(
        "destination-rule-ignored",
        Severity::Error,
        "a later DestinationRule whose top-level trafficPolicy is ignored",
    ),
    rule(
        "host-not-found",
        Severity::Error,
        "a short host resolved in a namespace with no such Service",
    ),
    rule(
        "route-parent-not-found",
        Severity::Error,
        "an HTTPRoute or GRPCRoute attached to a Gateway that does not exist",
    ),
    rule(
        "route-backend-not-found",
        Severity::Error,
        "an HTTPRoute or GRPCRoute backend Service that does not exist",
    ),
    rule(
        "route-weights-zero",
        Severity::Error,
        "a route rule whose backend weights add up to 0",
    ),
    rule(
        "route-conflict",
        Severity::Error,
        "a second HTTPRoute with the same match on the same Gateway (only the oldest takes effect)",
    ),
    rule(
        "fault-with-retries",
        Severity::Error,
        "fault injection with retries or a timeout on the same route",
    ),
    rule(
        "selector-matches-nothing",
        Severity::Warning,
        "a `-l` query that matches no pod",
    ),
    rule(
        "missing-resource",
        Severity::Error,
        "a command on a resource or namespace that does not exist",
    ),
    rule(
        "unknown-container",
        Severity::Error,
        "`set image` on a container the workload does not have",
    ),
    rule(
        "label-managed-pods",
        Severity::Warning,
        "labels set by hand on pods a controller replaces",
    ),
    rule(
        "delete-wrong-kind",
        Severity::Error,
        "a delete of a name that exists only as another kind",
    ),
    rule(
        "delete-never-created",
        Severity::Warning,
        "a delete of something the lab never created",
    ),
    rule(
        "cleanup-leftover",
        Severity::Warning,
        "resources the Cleanup section leaves behind",
    ),
    rule(
        "run-rm-without-restart-never",
        Severity::Warning,
        "`kubectl run -i --rm` without `--restart=Never`",
    ),
    rule(
        "session-without-input",
        Severity::Warning,
        "a shell opened in a pod with no block typed into it",
    ),
    rule(
        "session-cluster-cli",
        Severity::Error,
        "kubectl, istioctl or helm typed inside a pod shell",
    ),
    rule(
        "watch-no-stop",
        Severity::Warning,
        "a watch with no stop condition",
    ),
    rule(
        "make-target-missing",
        Severity::Error,
        "`make TARGET` where the reader's Makefile has no such target",
    ),
    rule(
        "printed-contradicts-snapshot",
        Severity::Warning,
        "printed output that differs from the step's accepted snapshot beyond its threshold",
    ),
    rule(
        "printed-without-step",
        Severity::Warning,
        "a block of printed output that follows no command that runs",
    ),
    rule(
        "placeholder",
        Severity::Warning,
        "a value the reader must fill in (`<your-namespace>`, `YOUR_PROJECT_ID`, `{{ var }}`) that the book's `variables` do not supply",
    ),
    rule(
        "unclosed-fence",
        Severity::Warning,
        "a code fence never closed, read to the end of its section or file",
    ),
    rule(
        "snippet-missing",
        Severity::Warning,
        "an mkdocs `--8<--` snippet include whose file is not there",
    ),
    rule(
        "verify-manual",
        Severity::Info,
        "a Verify section with no runnable block",
    ),
    rule(
        "verify-random-snapshot",
        Severity::Warning,
        "a verify whose output is random but expected as an exact snapshot",
    ),
    rule(
        "verify-cannot-fail",
        Severity::Warning,
        "a verify whose check is masked by `|| echo`",
    ),
];

/// Whether to run ShellCheck.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ShellcheckMode {
    /// Use `shellcheck` from `PATH` when it is installed.
    #[default]
    Auto,
    /// Never run it: only the built-in checks.
    Off,
    /// Run this binary.
    Path(PathBuf),
}

impl ShellcheckMode {
    /// Reads `LABBOOK_SHELLCHECK`: unset → auto, `off` → off, anything else → that binary.
    pub fn from_env() -> Self {
        match std::env::var_os("LABBOOK_SHELLCHECK") {
            None => ShellcheckMode::Auto,
            Some(v) if v.is_empty() => ShellcheckMode::Auto,
            Some(v) if v == "off" => ShellcheckMode::Off,
            Some(v) => ShellcheckMode::Path(PathBuf::from(v)),
        }
    }
}

/// How to lint.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Whether and how to run ShellCheck.
    pub shellcheck: ShellcheckMode,
}

/// What a lint run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The diagnostics, sorted by path and line.
    pub diagnostics: Vec<Diagnostic>,
    /// Things to say once, not tied to a line (ShellCheck missing, for example).
    pub notes: Vec<String>,
}

impl Outcome {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// How many diagnostics have the given severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

/// Collects the diagnostics of one lab.
pub(crate) struct Sink<'a> {
    path: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(path: &'a Path) -> Self {
        Sink {
            path,
            diagnostics: Vec::new(),
        }
    }

    /// Records a diagnostic.
    pub(crate) fn emit(
        &mut self,
        rule: &str,
        severity: Severity,
        line: usize,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            path: self.path.to_path_buf(),
            line,
            rule: rule.to_string(),
            severity,
            message: message.into(),
            help,
        });
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}

/// Lints every lab of some courses. ShellCheck runs once for all of them.
pub fn lint(courses: &[Course], options: &Options) -> Outcome {
    let mut outcome = Outcome::default();
    let mut blocks = Vec::new();
    for course in courses {
        let mut course_model = cluster::CourseModel::new();
        for lab in &course.labs {
            let mut sink = Sink::new(&lab.path);
            lint_lab(course, lab, &mut course_model, &mut sink);
            outcome.diagnostics.extend(sink.into_diagnostics());
            blocks.extend(shellcheck::blocks_of(lab));
        }
    }
    match shellcheck::run(&blocks, &options.shellcheck) {
        shellcheck::Run::Done(found) => outcome.diagnostics.extend(found),
        shellcheck::Run::Unavailable(note) => {
            outcome.notes.push(note);
            for course in courses {
                for lab in &course.labs {
                    let mut sink = Sink::new(&lab.path);
                    shell::syntax(lab, &mut sink);
                    outcome.diagnostics.extend(sink.into_diagnostics());
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    outcome
        .diagnostics
        .retain(|d| seen.insert((d.path.clone(), d.line, d.rule.clone(), d.message.clone())));
    outcome.diagnostics.sort_by(|a, b| {
        (&a.path, a.line, a.severity, &a.rule).cmp(&(&b.path, b.line, b.severity, &b.rule))
    });
    outcome
}

/// Runs every per-lab check except ShellCheck.
fn lint_lab(
    course: &Course,
    lab: &Lab,
    course_model: &mut cluster::CourseModel,
    sink: &mut Sink<'_>,
) {
    shell::check(lab, sink);
    let manifests = manifest::check(lab, sink);
    images::check(course, lab, sink);
    cluster::check(lab, &manifests, course_model, sink);
    course::check(course, lab, sink);
    reading::check(course, lab, sink);
    printed::check(course, lab, sink);
}

/// The `lint --format json` document: `{"diagnostics":[{"path","line","rule","severity","message"}]}`.
pub fn to_json(diagnostics: &[Diagnostic]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            serde_json::json!({
                "path": d.path.to_string_lossy().replace('\\', "/"),
                "line": d.line,
                "rule": d.rule,
                "severity": d.severity.name(),
                "message": d.message,
            })
        })
        .collect();
    serde_json::json!({ "diagnostics": items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_kebab_case() {
        let mut seen = BTreeSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.id), "duplicate rule {}", rule.id);
            assert!(
                rule.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                rule.id
            );
        }
    }

    /// Odd and broken blocks of every kind must never make the lint panic.
    #[test]
    fn odd_input_never_panics() {
        let blocks = [
            "kubectl",
            "kubectl -n",
            "kubectl -ü get pods -é",
            "kubectl patch",
            "kubectl patch deployment",
            "kubectl create deployment web\nkubectl patch deployment web -p 'not json: ['",
            "kubectl create deployment web\nkubectl patch deployment web --type=json -p '[{\"op\":\"remove\",\"path\":\"/nope\"}]'",
            "kubectl create deployment web\nkubectl patch deployment web --type=merge -p '[1,2]'",
            "kubectl create deployment web\nkubectl patch deployment web -p '{\"spec\":{\"selector\":null}}'",
            "kubectl label\nkubectl label pods\nkubectl label pods -l 'a in (' x=y\nkubectl label pod x-",
            "kubectl delete\nkubectl delete -l\nkubectl delete pods -l '!!'\nkubectl delete -f -",
            "kubectl expose\nkubectl expose deploy/\nkubectl scale --replicas=x deploy/web",
            "kubectl set\nkubectl set image\nkubectl set image deploy/web =\nkubectl rollout",
            "kubectl exec\nkubectl logs -l\nkubectl get pods -l =\nkubectl config set-context --namespace",
            "kubectl apply -f - <<EOF\n: [\nEOF",
            "kubectl apply -f - <<EOF\n- 1\n- 2\nEOF",
            "kubectl apply -f - <<EOF\nkind: VirtualService\napiVersion: networking.istio.io/v1\nspec: 3\nEOF",
            "kubectl apply -f - <<EOF\nkind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {name: x}\nspec:\n  http:\n  - route: 7\n  - fault: {}\n    route: [{destination: {host: 5}, weight: x}]\nEOF",
            "kubectl apply -f - <<EOF\nkind: DestinationRule\napiVersion: networking.istio.io/v1\nmetadata: {name: x}\nspec: {host: [a], subsets: [{labels: 3}]}\nEOF",
            "kubectl apply -f - <<EOF\na: &x [*x]\nEOF",
            "kubectl apply -f - <<EOF\nkind: Deployment\napiVersion: apps/v1\nmetadata: {name: d}\nspec: {replicas: 99999999999999999999}\nEOF",
            "cat > x.yaml <<EOF\n\u{0}\nEOF\nkubectl apply -f x.yaml\nkubectl delete -f x.yaml",
            "cat <<EOF\n$ $1 ${ $( ` \\\nEOF",
            "make\nmake -C\nmake -f\nmake -C /nonexistent target\ncd\ncd -\nmake x",
            "for i in {1..; do echo; done",
            "x=( a b\n",
            "istioctl operator init\nhelm install\nhelm install x y --namespace\n./run.sh",
            "kubectl run\nkubectl run x --labels=\nkubectl run y --rm -i -- curl http://\nkubectl exec z -- curl http://a.b.c.d.e/",
        ];
        for block in blocks {
            let markdown = format!(
                "# T\n\n```bash\n{block}\n```\n\n#### Verify: x\n\n```bash\n{block}\n```\n\nInside the pod:\n\n```sh\n{block}\n```\n\n## Cleanup\n\n```bash\n{block}\n```\n"
            );
            let Ok(lab) = Lab::parse("t.md", &markdown) else {
                continue;
            };
            let course = Course {
                book: None,
                src: None,
                config: Default::default(),
                labs: vec![lab],
            };
            let _ = lint(
                &[course],
                &Options {
                    shellcheck: ShellcheckMode::Off,
                },
            );
        }
    }

    #[test]
    fn json_has_exactly_the_contract_keys() {
        let json = to_json(&[Diagnostic {
            path: PathBuf::from("a/b.md"),
            line: 3,
            rule: "shell-syntax".into(),
            severity: Severity::Error,
            message: "m".into(),
            help: Some("h".into()),
        }]);
        let item = &json["diagnostics"][0];
        let mut keys: Vec<&String> = item.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["line", "message", "path", "rule", "severity"]);
        assert_eq!(item["severity"], "error");
    }
}
