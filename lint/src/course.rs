//! Sessions, watches, `make` targets and Verify sections: checks on how a lab is put together.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::kubectl::{Invocation, is_dynamic};
use super::{Severity, Sink};
use labbook::annotation::Expect;
use labbook::course::{Course, normalize};
use labbook::model::{Lab, Step, StepKind};

/// Runs the course-structure checks on one lab.
pub(crate) fn check(course: &Course, lab: &Lab, sink: &mut Sink<'_>) {
    for step in &lab.steps {
        if !step.kind.runs() {
            continue;
        }
        run_without_restart_never(step, sink);
        match step.kind {
            StepKind::OpenSession => session_without_input(lab, step, sink),
            StepKind::SessionInput => cluster_cli_in_session(lab, step, sink),
            StepKind::Watch => watch_without_stop(step, sink),
            StepKind::Verify => random_snapshot(step, sink),
            _ => {}
        }
        if step.kind != StepKind::Troubleshoot {
            cannot_fail(step, sink);
        }
    }
    make_targets(course, lab, sink);
    manual_verify(lab, sink);
}

fn run_without_restart_never(step: &Step, sink: &mut Sink<'_>) {
    if step.kind == StepKind::SessionInput {
        return;
    }
    for command in &step.analysis.commands {
        let Some(inv) = Invocation::parse(command) else {
            continue;
        };
        let attached = inv.has(Some('i'), "--stdin") || inv.has(None, "--attach");
        let never = inv
            .flag(&["--restart"])
            .is_some_and(|r| r.eq_ignore_ascii_case("never"));
        if inv.sub == "run" && inv.has(None, "--rm") && attached && !never {
            sink.emit(
                "run-rm-without-restart-never",
                Severity::Warning,
                command.line,
                "`kubectl run --rm` attaches to a pod whose restart policy defaults to Always: when the command or shell exits, the container restarts, and kubectl can print the output twice, report a restart or hang without a terminal",
                Some("add `--restart=Never`".into()),
            );
        }
    }
}

fn session_without_input(lab: &Lab, step: &Step, sink: &mut Sink<'_>) {
    if lab.session_inputs(&step.id).next().is_some() {
        return;
    }
    let line = step.opens.as_ref().map_or(step.span.line, |o| o.line);
    sink.emit(
        "session-without-input",
        Severity::Warning,
        line,
        "this block opens a shell in a pod, but no block after it is typed into that shell: the harness sends no input and the session ends at once",
        Some("follow it with the commands to type, introduced by a cue such as \"Inside the pod:\", or run the command directly (`kubectl exec … -- cmd`)".into()),
    );
}

fn cluster_cli_in_session(lab: &Lab, step: &Step, sink: &mut Sink<'_>) {
    let opens = step
        .session
        .as_deref()
        .and_then(|id| lab.step(id))
        .and_then(|s| s.opens.as_ref());
    let image = opens.and_then(|o| o.image.clone()).unwrap_or_default();
    // Images built to run cluster tools have them, and usually a service account to match.
    if ["kubectl", "k8s", "helm", "istioctl"]
        .iter()
        .any(|t| image.contains(t))
    {
        return;
    }
    let target = opens
        .and_then(|o| o.target.clone())
        .unwrap_or_else(|| "the pod".into());
    // A shell in an existing pod (`kubectl exec`): its image is unknown, so the lint is less sure.
    let severity = if image.is_empty() {
        Severity::Warning
    } else {
        Severity::Error
    };
    for command in &step.analysis.commands {
        let program = command.program();
        if labbook::tools::talks_to_cluster(program) {
            sink.emit(
                "session-cluster-cli",
                severity,
                command.line,
                format!(
                    "`{program}` is typed inside the shell of `{target}`{}: the image does not have it, and the pod has no credentials for the cluster",
                    if image.is_empty() { String::new() } else { format!(" ({image})") }
                ),
                Some(format!("run `{program}` on your own machine, in a block before or after the session")),
            );
        }
    }
}

fn watch_without_stop(step: &Step, sink: &mut Sink<'_>) {
    if step.annotation.until.is_some() || step.annotation.timeout.is_some() {
        return;
    }
    match &step.stop_hint {
        Some(hint) => sink.emit(
            "watch-no-stop",
            Severity::Info,
            step.span.line,
            format!("this watch never ends by itself; the prose says to stop it when {hint}, but the harness can only stop it at its time limit"),
            Some("add `<!-- labbook: until=\"REGEX\" -->` matching the output that means it is done".into()),
        ),
        None => sink.emit(
            "watch-no-stop",
            Severity::Warning,
            step.span.line,
            "this watch never ends by itself, and nothing says when to stop it: the reader does not know when to press Ctrl+C, and the harness waits for its time limit",
            Some("say when to press Ctrl+C (\"Stop with Ctrl+C once … \"), and add `<!-- labbook: until=\"REGEX\" -->`".into()),
        ),
    }
}

fn cannot_fail(step: &Step, sink: &mut Sink<'_>) {
    let found = step.analysis.fallbacks.iter().find(|f| {
        f.checked
            .as_deref()
            .is_some_and(|p| matches!(p, "grep" | "egrep" | "fgrep"))
            && f.fallback
                .as_deref()
                .is_some_and(|p| matches!(p, "echo" | "printf" | "true" | ":"))
    });
    if let Some(line) = found.map(|f| f.line) {
        let what = if step.kind == StepKind::Verify {
            "this check passes whatever the service answered"
        } else {
            "the output shows the fallback whatever the service answered"
        };
        sink.emit(
            "verify-cannot-fail",
            Severity::Warning,
            line,
            format!("`grep … || echo …` prints its fallback when grep finds nothing, so {what}"),
            Some("let grep fail (drop the `|| echo`), or print what was actually received".into()),
        );
    }
}

fn random_snapshot(step: &Step, sink: &mut Sink<'_>) {
    if !matches!(step.annotation.expect, None | Some(Expect::Snapshot)) {
        return;
    }
    let commands = &step.analysis.commands;
    let counts = commands
        .iter()
        .find(|c| c.program() == "uniq" && c.args().iter().any(|a| a == "-c"));
    let traffic = commands.iter().any(|c| {
        matches!(c.program(), "curl" | "wget" | "http" | "hey" | "fortio")
            || Invocation::parse(c).is_some_and(|k| k.sub == "exec")
    });
    let random = commands
        .iter()
        .find(|c| c.program() == "shuf" || c.argv.iter().any(|a| a.contains("$RANDOM")));
    let finding = match (counts, random) {
        (Some(c), _) if traffic => Some((
            c.line,
            "counts responses with `uniq -c`; the counts change on every run",
        )),
        (_, Some(c)) => Some((c.line, "prints random values")),
        _ => None,
    };
    if let Some((line, what)) = finding {
        sink.emit(
            "verify-random-snapshot",
            Severity::Warning,
            line,
            format!("this verify {what}, but its output is expected as an exact snapshot, which then fails at random"),
            Some("expect shares within a tolerance: `<!-- labbook: expect=split:v1=90,v2=10 -->`, or `expect=contains:\"…\"`".into()),
        );
    }
}

fn manual_verify(lab: &Lab, sink: &mut Sink<'_>) {
    for (i, heading) in lab.headings.iter().enumerate() {
        let is_verify = labbook::infer::section_kind(std::slice::from_ref(&heading.text), false)
            .is_some_and(|(kind, _)| kind == StepKind::Verify);
        if !is_verify {
            continue;
        }
        let end = lab.headings[i + 1..]
            .iter()
            .find(|h| h.level <= heading.level)
            .map_or(usize::MAX, |h| h.line);
        let has_block = lab
            .steps
            .iter()
            .any(|s| s.span.line > heading.line && s.span.line < end);
        if !has_block {
            sink.emit(
                "verify-manual",
                Severity::Info,
                heading.line,
                format!("the section \"{}\" has no runnable block: it is a manual check that the harness cannot run or assert", heading.text),
                Some("add a block whose output shows the result (its output becomes the expected snapshot), if the check can be automated".into()),
            );
        }
    }
}

/// A Makefile's targets.
#[derive(Debug, Default)]
struct Targets {
    names: Vec<String>,
    /// Pattern rules (`%-up:`), as regexes.
    patterns: Vec<Regex>,
    /// A target or include built from a variable: anything may be defined.
    open: bool,
}

impl Targets {
    fn defines(&self, target: &str) -> bool {
        self.open
            || self.names.iter().any(|n| n == target)
            || self.patterns.iter().any(|p| p.is_match(target))
    }
}

static RULE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^\s:=#][^:=]*?)\s*::?(?:[^=]|$)").expect("static regex"));

fn read_targets(makefile: &Path, targets: &mut Targets, depth: usize) {
    let Ok(text) = std::fs::read_to_string(makefile) else {
        return;
    };
    let dir = makefile.parent().unwrap_or(Path::new(""));
    for line in text.lines() {
        if line.starts_with('\t') {
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("include ")
            .or_else(|| trimmed.strip_prefix("-include "))
            .or_else(|| trimmed.strip_prefix("sinclude "))
        {
            for file in rest.split_whitespace() {
                if file.contains('$') || file.contains('*') || depth > 4 {
                    targets.open = true;
                } else {
                    read_targets(&dir.join(file), targets, depth + 1);
                }
            }
            continue;
        }
        let Some(captures) = RULE.captures(line) else {
            continue;
        };
        for name in captures[1].split_whitespace() {
            if name.contains('$') {
                targets.open = true;
            } else if name.contains('%') {
                let pattern = format!("^{}$", regex::escape(name).replace('%', ".+"));
                if let Ok(re) = Regex::new(&pattern) {
                    targets.patterns.push(re);
                }
            } else {
                targets.names.push(name.to_string());
            }
        }
    }
}

fn makefile_in(dir: &Path) -> Option<PathBuf> {
    ["GNUmakefile", "makefile", "Makefile"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn make_targets(course: &Course, lab: &Lab, sink: &mut Sink<'_>) {
    let chapter_dir = lab.path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut cwd: Option<PathBuf> = Some(course.start_dir(lab));
    let mut cache: HashMap<PathBuf, Targets> = HashMap::new();
    for step in &lab.steps {
        if step.kind == StepKind::SessionInput || !step.kind.runs() {
            continue;
        }
        for command in &step.analysis.commands {
            if command.substituted {
                continue;
            }
            match command.program() {
                "cd" | "pushd" => {
                    let target = command.args().iter().find(|a| !a.starts_with('-'));
                    cwd = match (target, &cwd) {
                        (Some(t), Some(dir)) if !is_dynamic(t) && !t.starts_with('~') => {
                            Some(normalize(&dir.join(t)))
                        }
                        _ => None,
                    };
                }
                "make" => {
                    let Some(dir) = cwd.clone() else {
                        continue;
                    };
                    check_make(command, &dir, &chapter_dir, &mut cache, sink);
                }
                _ => {}
            }
        }
    }
}

fn check_make(
    command: &labbook::shell::Command,
    cwd: &Path,
    chapter_dir: &Path,
    cache: &mut HashMap<PathBuf, Targets>,
    sink: &mut Sink<'_>,
) {
    let args = command.args();
    let mut dir = cwd.to_path_buf();
    let mut file: Option<PathBuf> = None;
    let mut goals = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "-C" | "--directory" => {
                i += 1;
                match args.get(i) {
                    Some(d) if !is_dynamic(d) => dir = normalize(&dir.join(d)),
                    _ => return,
                }
            }
            "-f" | "--file" | "--makefile" => {
                i += 1;
                match args.get(i) {
                    Some(f) if !is_dynamic(f) => file = Some(dir.join(f)),
                    _ => return,
                }
            }
            a if a.starts_with("-C") && a.len() > 2 => dir = normalize(&dir.join(&a[2..])),
            a if a.starts_with('-') || a.contains('=') => {}
            a if is_dynamic(a) => return,
            a => goals.push(a.to_string()),
        }
        i += 1;
    }
    let makefile = file.filter(|f| f.is_file()).or_else(|| makefile_in(&dir));
    let Some(makefile) = makefile else {
        let missing_dir = if dir.is_dir() {
            String::new()
        } else {
            " (the folder does not exist)".into()
        };
        let elsewhere = goals
            .first()
            .and_then(|goal| defined_nearby(goal, chapter_dir, cache));
        sink.emit(
            "make-target-missing",
            Severity::Error,
            command.line,
            format!(
                "`make` runs in {}{missing_dir}, where there is no Makefile",
                dir.display()
            ),
            Some(elsewhere.map_or_else(
                || "give the course a Makefile in the reader's folder, or `cd` to the folder that has one first".to_string(),
                |found| format!("`{}` is defined in {}: `cd` there first, or set `start-dir` in book.toml", goals[0], found.display()),
            )),
        );
        return;
    };
    let targets = cache.entry(makefile.clone()).or_insert_with(|| {
        let mut targets = Targets::default();
        read_targets(&makefile, &mut targets, 0);
        targets
    });
    for goal in &goals {
        if !targets.defines(goal) {
            sink.emit(
                "make-target-missing",
                Severity::Error,
                command.line,
                format!("{} has no target `{goal}`", makefile.display()),
                None,
            );
        }
    }
}

/// A Makefile in the chapter's folder or one of its parents that defines `goal`, for the hint.
fn defined_nearby(
    goal: &str,
    chapter_dir: &Path,
    cache: &mut HashMap<PathBuf, Targets>,
) -> Option<PathBuf> {
    let absolute = std::path::absolute(chapter_dir).ok()?;
    for (depth, dir) in absolute.ancestors().enumerate().take(4) {
        let Some(makefile) = makefile_in(dir) else {
            continue;
        };
        let targets = cache.entry(makefile.clone()).or_insert_with(|| {
            let mut targets = Targets::default();
            read_targets(&makefile, &mut targets, 0);
            targets
        });
        if targets.defines(goal) {
            let mut relative = chapter_dir.to_path_buf();
            for _ in 0..depth {
                relative.push("..");
            }
            return Some(normalize(&relative));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makefile_targets_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("Makefile"),
            "VAR := a:b\n.PHONY: up down\nup down: ## start or stop\n\t@echo $@\nistio-%:\n\techo\ninclude extra.mk\nx = y\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("extra.mk"), "kiali:\n\ttrue\n").expect("write");
        let mut targets = Targets::default();
        read_targets(&dir.path().join("Makefile"), &mut targets, 0);
        for (goal, defined) in [
            ("up", true),
            ("down", true),
            ("istio-sidecar", true),
            ("kiali", true),
            ("VAR", false),
            ("x", false),
            ("kind-up", false),
        ] {
            assert_eq!(targets.defines(goal), defined, "{goal}");
        }
    }
}
