//! Fixture-driven tests of the lint: every rule has `fixtures/lint/<rule>/bad.md`, which must
//! trigger it at the lines listed in [`TABLE`], and `good.md`, a correct twin that must not
//! trigger anything. The JSON diagnostics of every fixture are insta snapshots. A whole correct
//! Istio canary lab (`fixtures/lint/canary-lab/`) and the chapters of
//! `fixtures/lint/correct-patterns/` must give no diagnostic at all.
//!
//! ShellCheck-dependent tests need the `shellcheck` binary: without it they fail when `CI=true`
//! (CI installs it), and are reported as skipped otherwise.

use std::path::Path;

use labbook_lint::{self as lint, Diagnostic, Options, RULES, Severity, ShellcheckMode};

use crate::support::at_root;

/// Each rule and the lines of its `bad.md` where it must be reported.
const TABLE: &[(&str, &[usize])] = &[
    ("shellcheck", &[7, 19]),
    ("shell-syntax", &[5]),
    ("sh-bashism", &[10]),
    ("heredoc-unquoted-dollar", &[6]),
    ("heredoc-unquoted-backtick", &[5]),
    ("manifest-yaml", &[11]),
    ("manifest-unknown-field", &[20]),
    ("manifest-wrong-type", &[13]),
    ("manifest-deprecated-field", &[15, 17]),
    ("manifest-value-range", &[30, 33]),
    ("manifest-api-version", &[5]),
    ("manifest-missing-crd", &[6, 13]),
    ("manifest-unknown-kind", &[6]),
    ("image-floating-tag", &[5, 18]),
    ("selector-mismatch", &[5]),
    ("service-selects-nothing", &[11, 22]),
    ("subset-no-endpoints", &[57]),
    ("subset-undefined", &[68]),
    ("virtual-service-conflict", &[80]),
    ("destination-rule-ignored", &[64]),
    ("host-not-found", &[13]),
    ("route-parent-not-found", &[52]),
    ("route-backend-not-found", &[53]),
    ("route-weights-zero", &[52]),
    ("route-conflict", &[74]),
    ("fault-with-retries", &[15]),
    ("selector-matches-nothing", &[10]),
    ("missing-resource", &[6, 7]),
    ("unknown-container", &[5]),
    ("label-managed-pods", &[5]),
    ("delete-wrong-kind", &[10]),
    ("delete-never-created", &[11]),
    ("cleanup-leftover", &[11, 11]),
    ("run-rm-without-restart-never", &[4]),
    ("session-without-input", &[4]),
    ("session-cluster-cli", &[10]),
    ("watch-no-stop", &[3, 10]),
    ("make-target-missing", &[7]),
    ("verify-manual", &[7]),
    ("verify-random-snapshot", &[12]),
    ("verify-cannot-fail", &[10]),
    ("printed-contradicts-snapshot", &[12]),
    ("printed-without-step", &[5]),
    ("placeholder", &[6]),
    ("unclosed-fence", &[5]),
    ("snippet-missing", &[3]),
];

fn lint_path(path: &Path, shellcheck: ShellcheckMode) -> Vec<Diagnostic> {
    let course = labbook::course::load(path).expect("fixture loads");
    lint::lint(&[course], &Options { shellcheck }).diagnostics
}

fn fixture(rule: &str, name: &str) -> std::path::PathBuf {
    Path::new("fixtures/lint").join(rule).join(name)
}

/// Whether ShellCheck-dependent tests can run; they must in CI.
fn shellcheck_available(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("shellcheck").is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} needs ShellCheck, and CI must have it (apt-get install shellcheck)"
        );
        eprintln!("skipped {test}: ShellCheck is not installed");
    }
    found
}

fn matches_rule(diagnostic: &Diagnostic, rule: &str) -> bool {
    diagnostic.rule == rule || (rule == "shellcheck" && diagnostic.rule.starts_with("shellcheck/"))
}

/// The kinds of `fixtures/lint/schema-kinds/`: API group, kind, and whether its `bad.md`
/// manifest has a misspelt enumeration value (some kinds have no enumeration in their spec).
const SCHEMA_KINDS: &[(&str, &str, bool)] = &[
    ("networking.istio.io", "VirtualService", true),
    ("networking.istio.io", "DestinationRule", true),
    ("networking.istio.io", "Gateway", true),
    ("networking.istio.io", "ServiceEntry", true),
    ("networking.istio.io", "Sidecar", true),
    ("networking.istio.io", "WorkloadEntry", false),
    ("networking.istio.io", "WorkloadGroup", false),
    ("networking.istio.io", "ProxyConfig", false),
    ("networking.istio.io", "EnvoyFilter", true),
    ("security.istio.io", "PeerAuthentication", true),
    ("security.istio.io", "AuthorizationPolicy", true),
    ("security.istio.io", "RequestAuthentication", false),
    ("telemetry.istio.io", "Telemetry", true),
    ("extensions.istio.io", "WasmPlugin", true),
    ("gateway.networking.k8s.io", "Gateway", true),
    ("gateway.networking.k8s.io", "GatewayClass", false),
    ("gateway.networking.k8s.io", "HTTPRoute", true),
    ("gateway.networking.k8s.io", "GRPCRoute", true),
    ("gateway.networking.k8s.io", "ReferenceGrant", false),
];

#[test]
fn every_schema_kind_reports_unknown_fields_wrong_types_and_bad_enum_values() {
    at_root();
    let good = lint_path(&fixture("schema-kinds", "good.md"), ShellcheckMode::Off);
    assert!(good.is_empty(), "schema-kinds/good.md gives {good:#?}");
    let found = lint_path(&fixture("schema-kinds", "bad.md"), ShellcheckMode::Off);
    for (group, kind, has_enum) in SCHEMA_KINDS {
        let count = |rule: &str, text: &str| {
            found
                .iter()
                .filter(|d| d.rule == rule)
                .filter(|d| d.message.contains(&format!("{kind} ({group}/")))
                .filter(|d| d.message.contains(text))
                .count()
        };
        assert_eq!(
            count("manifest-unknown-field", "is not a field"),
            1,
            "{kind}: unknown field"
        );
        assert_eq!(
            count("manifest-wrong-type", "invalid type"),
            1,
            "{kind}: wrong type"
        );
        assert_eq!(
            count("manifest-wrong-type", "unknown variant"),
            usize::from(*has_enum),
            "{kind}: enum value"
        );
        // The message names the accepted values: "expected `A` or `B`", "expected one of `A`, …".
        if *has_enum {
            assert_eq!(
                count("manifest-wrong-type", "`, expected "),
                1,
                "{kind}: accepted values"
            );
        }
    }
    let expected: usize = SCHEMA_KINDS
        .iter()
        .map(|(_, _, e)| 2 + usize::from(*e))
        .sum();
    assert_eq!(found.len(), expected, "{found:#?}");
}

/// The `apiVersion` and kind of each manifest of `fixtures/lint/schema-kinds/versions.md`, in
/// order: every version of every kind the lint checks (a unit test in `lint/src/istio.rs` holds
/// the fixture to the schema table).
const SCHEMA_VERSIONS: &[(&str, &str)] = &[
    ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1beta1", "VirtualService"),
    ("networking.istio.io/v1alpha3", "VirtualService"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1beta1", "DestinationRule"),
    ("networking.istio.io/v1alpha3", "DestinationRule"),
    ("networking.istio.io/v1", "Gateway"),
    ("networking.istio.io/v1beta1", "Gateway"),
    ("networking.istio.io/v1alpha3", "Gateway"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1beta1", "ServiceEntry"),
    ("networking.istio.io/v1alpha3", "ServiceEntry"),
    ("networking.istio.io/v1", "Sidecar"),
    ("networking.istio.io/v1beta1", "Sidecar"),
    ("networking.istio.io/v1alpha3", "Sidecar"),
    ("networking.istio.io/v1", "WorkloadEntry"),
    ("networking.istio.io/v1beta1", "WorkloadEntry"),
    ("networking.istio.io/v1alpha3", "WorkloadEntry"),
    ("networking.istio.io/v1", "WorkloadGroup"),
    ("networking.istio.io/v1beta1", "WorkloadGroup"),
    ("networking.istio.io/v1alpha3", "WorkloadGroup"),
    ("networking.istio.io/v1beta1", "ProxyConfig"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
    ("security.istio.io/v1beta1", "AuthorizationPolicy"),
    ("security.istio.io/v1", "PeerAuthentication"),
    ("security.istio.io/v1beta1", "PeerAuthentication"),
    ("security.istio.io/v1", "RequestAuthentication"),
    ("security.istio.io/v1beta1", "RequestAuthentication"),
    ("telemetry.istio.io/v1", "Telemetry"),
    ("telemetry.istio.io/v1alpha1", "Telemetry"),
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1beta1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "GatewayClass"),
    ("gateway.networking.k8s.io/v1beta1", "GatewayClass"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1beta1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("gateway.networking.k8s.io/v1", "ReferenceGrant"),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
];

/// One type checks every version of a kind: under each version, a manifest correct but for
/// one unknown field gives that one error, naming the version, and nothing else.
#[test]
fn every_version_of_a_kind_is_checked_with_its_schema() {
    at_root();
    let found = lint_path(&fixture("schema-kinds", "versions.md"), ShellcheckMode::Off);
    let got: Vec<(&str, bool)> = found
        .iter()
        .zip(SCHEMA_VERSIONS)
        .map(|(d, (api_version, kind))| {
            let names = format!(" is not a field of {kind} ({api_version});");
            (d.rule.as_str(), d.message.contains(&names))
        })
        .collect();
    assert_eq!(found.len(), SCHEMA_VERSIONS.len(), "{found:#?}");
    assert!(
        got.iter()
            .all(|&(rule, named)| rule == "manifest-unknown-field" && named),
        "{found:#?}"
    );
}

#[test]
fn the_table_covers_every_rule() {
    at_root();
    let mut table: Vec<&str> = TABLE.iter().map(|(r, _)| *r).collect();
    let mut rules: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    table.sort();
    rules.sort();
    assert_eq!(table, rules);
}

#[test]
fn bad_fixtures_trigger_their_rule_at_the_right_lines() {
    at_root();
    for (rule, lines) in TABLE {
        if *rule == "shellcheck" {
            continue;
        }
        let found: Vec<usize> = lint_path(&fixture(rule, "bad.md"), ShellcheckMode::Off)
            .iter()
            .filter(|d| matches_rule(d, rule))
            .map(|d| d.line)
            .collect();
        assert_eq!(found, *lines, "{rule}: lines in bad.md");
    }
}

#[test]
fn good_fixtures_are_quiet() {
    at_root();
    for (rule, _) in TABLE {
        let found = lint_path(&fixture(rule, "good.md"), ShellcheckMode::Off);
        assert!(found.is_empty(), "{rule}: good.md gives {found:#?}");
    }
}

#[test]
fn shellcheck_findings_map_to_markdown_lines() {
    at_root();
    if !shellcheck_available("shellcheck_findings_map_to_markdown_lines") {
        return;
    }
    let found = lint_path(&fixture("shellcheck", "bad.md"), ShellcheckMode::Auto);
    let lines: Vec<(usize, &str)> = found
        .iter()
        .filter(|d| d.rule.starts_with("shellcheck/"))
        .map(|d| (d.line, d.rule.as_str()))
        .collect();
    // SC2115: `rm -rf "$VAR"/*` in the reader's bash; SC3057: `${x:0:5}` in the pod's POSIX sh.
    assert!(lines.contains(&(7, "shellcheck/SC2115")), "{lines:?}");
    assert!(lines.contains(&(19, "shellcheck/SC3057")), "{lines:?}");
    let expected: Vec<usize> = TABLE
        .iter()
        .find(|(r, _)| *r == "shellcheck")
        .map(|(_, l)| l.to_vec())
        .unwrap_or_default();
    let mut distinct: Vec<usize> = lines.iter().map(|(l, _)| *l).collect();
    distinct.dedup();
    assert_eq!(distinct, expected);
    // With ShellCheck, a syntax error is its finding, not the built-in `shell-syntax`.
    let syntax = lint_path(&fixture("shell-syntax", "bad.md"), ShellcheckMode::Auto);
    assert!(syntax.iter().any(|d| d.rule.starts_with("shellcheck/SC10")));
    assert!(!syntax.iter().any(|d| d.rule == "shell-syntax"));
}

#[test]
fn good_fixtures_and_the_canary_lab_pass_shellcheck() {
    at_root();
    if !shellcheck_available("good_fixtures_and_the_canary_lab_pass_shellcheck") {
        return;
    }
    let mut paths: Vec<std::path::PathBuf> =
        TABLE.iter().map(|(r, _)| fixture(r, "good.md")).collect();
    paths.push(Path::new("fixtures/lint/canary-lab").to_path_buf());
    paths.push(Path::new("fixtures/lint/correct-patterns").to_path_buf());
    let courses: Vec<_> = paths
        .iter()
        .map(|p| labbook::course::load(p).expect("fixture loads"))
        .collect();
    let outcome = lint::lint(
        &courses,
        &Options {
            shellcheck: ShellcheckMode::Auto,
        },
    );
    assert!(outcome.notes.is_empty(), "{:?}", outcome.notes);
    assert!(outcome.diagnostics.is_empty(), "{:#?}", outcome.diagnostics);
}

#[test]
fn a_correct_canary_lab_has_no_diagnostics() {
    at_root();
    let found = lint_path(Path::new("fixtures/lint/canary-lab"), ShellcheckMode::Off);
    assert!(found.is_empty(), "{found:#?}");
}

/// Common patterns of correct labs (applications from files the lint cannot see, StatefulSets,
/// Jobs, gateways, `delete all`) must not be reported.
#[test]
fn correct_patterns_have_no_diagnostics() {
    at_root();
    let found = lint_path(
        Path::new("fixtures/lint/correct-patterns"),
        ShellcheckMode::Off,
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// The chapters of a folder are one course: exercise 2 uses the Service and DestinationRule that
/// exercise 1 made. Linted alone, exercise 2 looks up things that do not exist.
#[test]
fn a_course_carries_its_cluster_from_chapter_to_chapter() {
    at_root();
    let folder = Path::new("fixtures/lint/chapters-in-order");
    let together = lint_path(folder, ShellcheckMode::Off);
    assert!(together.is_empty(), "{together:#?}");
    let alone: Vec<(String, usize)> = lint_path(&folder.join("02-routes.md"), ShellcheckMode::Off)
        .into_iter()
        .map(|d| (d.rule, d.line))
        .collect();
    assert_eq!(
        alone,
        [
            ("missing-resource".to_string(), 6),
            ("missing-resource".to_string(), 7),
            ("host-not-found".to_string(), 20),
        ]
    );
}

#[test]
fn without_shellcheck_a_note_is_given_once() {
    at_root();
    let courses: Vec<_> = ["shell-syntax", "sh-bashism"]
        .iter()
        .map(|r| labbook::course::load(&fixture(r, "bad.md")).expect("fixture loads"))
        .collect();
    let outcome = lint::lint(
        &courses,
        &Options {
            shellcheck: ShellcheckMode::Off,
        },
    );
    assert_eq!(outcome.notes.len(), 1);
    assert!(outcome.has_errors());
    assert_eq!(
        outcome
            .diagnostics
            .iter()
            .filter(|d| d.rule == "shell-syntax")
            .map(|d| d.severity)
            .collect::<Vec<_>>(),
        [Severity::Error]
    );
}

#[test]
fn the_rules_doc_describes_every_rule() {
    at_root();
    let doc = std::fs::read_to_string("docs/lint-rules.md").expect("docs/lint-rules.md");
    for rule in RULES {
        assert!(
            doc.contains(&format!("### `{}`", rule.id)),
            "docs/lint-rules.md has no section for {}",
            rule.id
        );
    }
}

#[test]
fn json_diagnostics() {
    at_root();
    insta::glob!("../../../fixtures/lint", "*/*.md", |path| {
        let relative = path.strip_prefix(crate::support::root()).unwrap_or(path);
        let found = lint_path(relative, ShellcheckMode::Off);
        insta::assert_json_snapshot!(lint::to_json(&found));
    });
}
