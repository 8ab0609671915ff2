//! Judging a step: from how its block ended (the time limit, a stop, the failing commands the
//! ERR trap saw, the exit code) and its expectation (an annotated one, or the snapshot that
//! verify and write-file steps get by default) to a status and a failure message.
//!
//! Nothing here runs a shell: a [`Judge`] reads a [`terminal::Outcome`](super::terminal::Outcome),
//! so the tests below build outcomes by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use labbook::report::StepStatus;
use labbook::{Course, Expect, Lab, Step, StepKind};

use super::console::{describe_failure, error_chain};
use super::expect;
use super::redact::Redactor;
use super::snapshots::{self, Verdict};
use super::terminal::{Ending, Failure, Outcome};

/// A judged step.
pub struct Judgement {
    /// The step's status.
    pub status: StepStatus,
    /// The exit code reported for it.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub failure: Option<String>,
    /// The Markdown line of the failing command, when one is known.
    pub line: Option<usize>,
    /// Shown under the step on the console (a diff, a hint).
    pub details: Option<String>,
    /// Trying again cannot change the outcome (no accepted snapshot): `retry=` stops at once.
    pub final_: bool,
    /// The printed-output checks of the step (see [`super::printed`]).
    pub printed: Vec<labbook::report::PrintedCheck>,
}

impl Judgement {
    /// A passed step.
    pub fn passed(exit_code: Option<i32>) -> Judgement {
        Judgement {
            status: StepStatus::Passed,
            exit_code,
            failure: None,
            line: None,
            details: None,
            final_: false,
            printed: Vec::new(),
        }
    }

    /// A step that ended with `status` (failed or timed out), for `failure`.
    pub fn failed(status: StepStatus, exit_code: Option<i32>, failure: String) -> Judgement {
        Judgement {
            status,
            exit_code,
            failure: Some(failure),
            line: None,
            details: None,
            final_: false,
            printed: Vec::new(),
        }
    }

    /// Whether the step counts as a success (passed, or a watch stopped as planned).
    pub fn ok(&self) -> bool {
        matches!(self.status, StepStatus::Passed | StepStatus::Stopped)
    }
}

/// What judging a lab's steps needs to know: where its snapshots are, how outputs are redacted,
/// whether to accept them, and the lab's `HOME` (for files written under `~`).
pub struct Judge<'a> {
    /// The lab's course (its snapshot folder).
    pub course: &'a Course,
    /// The lab.
    pub lab: &'a Lab,
    /// The course's redactions.
    pub redactor: &'a Redactor,
    /// Write snapshots instead of comparing (`--accept`).
    pub accept: bool,
    /// The `HOME` lab commands see.
    pub home: Option<&'a Path>,
}

impl Judge<'_> {
    /// Judges a block from how it ended: the time limit, a stop, its failing commands, its
    /// expectation. `until` tells whether the watch had an `until=` pattern.
    pub fn block(&self, step: &Step, outcome: &Outcome, limit: Duration, until: bool) -> Judgement {
        let stopped = matches!(
            outcome.ending,
            Ending::Matched | Ending::Limit | Ending::Interrupted
        );
        // Commands killed by the stop itself are not failures of the lab.
        let failures: Vec<&Failure> = outcome
            .failures
            .iter()
            .filter(|f| !(stopped && f.status >= 128))
            .collect();
        let secs = limit.as_secs_f64();
        match outcome.ending {
            Ending::Interrupted => Judgement::failed(
                StepStatus::Failed,
                None,
                "interrupted (Ctrl+C); its processes were stopped".into(),
            ),
            Ending::Limit if step.kind == StepKind::Watch && until => Judgement::failed(
                StepStatus::TimedOut,
                None,
                format!(
                    "the watch ran for {secs}s and its until= pattern {:?} never matched; it was \
                     stopped",
                    step.annotation.until.as_deref().unwrap_or("")
                ),
            ),
            Ending::Limit if step.kind != StepKind::Watch => Judgement::failed(
                StepStatus::TimedOut,
                None,
                format!("timed out after {secs}s; its processes were killed"),
            ),
            Ending::Limit | Ending::Matched => match failures.first() {
                Some(f) => Judgement {
                    line: Some(f.line),
                    ..Judgement::failed(
                        StepStatus::Failed,
                        Some(f.status),
                        describe_failure(&self.lab.path, step, f, failures.len()),
                    )
                },
                None => {
                    let mut judgement = self.expectation(step, outcome, None);
                    if judgement.ok() {
                        judgement.status = StepStatus::Stopped;
                    }
                    judgement
                }
            },
            Ending::Finished | Ending::ShellExited(_) => self.evaluate(step, outcome),
        }
    }

    /// Judges a block that ran to its end.
    fn evaluate(&self, step: &Step, outcome: &Outcome) -> Judgement {
        let exit_code = match outcome.ending {
            Ending::ShellExited(code) if code != 0 => code,
            _ => outcome
                .failures
                .last()
                .map(|f| f.status)
                .or(outcome.status)
                .unwrap_or(0),
        };
        if let Some(Expect::Exit { code }) = &step.annotation.expect {
            return if exit_code == *code {
                Judgement::passed(Some(exit_code))
            } else {
                let mut message = format!("expected exit code {code}, got {exit_code}");
                if let Some(f) = outcome.failures.first() {
                    message.push_str(&format!(
                        "; {}",
                        describe_failure(&self.lab.path, step, f, outcome.failures.len())
                    ));
                }
                Judgement::failed(StepStatus::Failed, Some(exit_code), message)
            };
        }
        if let Some(f) = outcome.failures.first() {
            return Judgement {
                line: Some(f.line),
                ..Judgement::failed(
                    StepStatus::Failed,
                    Some(exit_code),
                    describe_failure(&self.lab.path, step, f, outcome.failures.len()),
                )
            };
        }
        if let Ending::ShellExited(code) = outcome.ending
            && code != 0
        {
            return Judgement::failed(
                StepStatus::Failed,
                Some(code),
                format!(
                    "the shell exited with status {code} (an `exit` in the block, or `set -e`?)"
                ),
            );
        }
        self.expectation(step, outcome, Some(exit_code))
    }

    /// Snapshot (the default for verify and write-file) or an annotated expectation.
    pub fn expectation(&self, step: &Step, outcome: &Outcome, exit_code: Option<i32>) -> Judgement {
        let default =
            matches!(step.kind, StepKind::Verify | StepKind::WriteFile).then_some(Expect::Snapshot);
        let Some(expectation) = step.annotation.expect.clone().or(default) else {
            return Judgement::passed(exit_code);
        };
        if expectation != Expect::Snapshot {
            return match expect::check(&expectation, &outcome.output, exit_code.unwrap_or(0)) {
                Ok(()) => Judgement::passed(exit_code),
                Err(message) => Judgement::failed(StepStatus::Failed, exit_code, message),
            };
        }
        let content = match self.snapshot_content(step, outcome) {
            Ok(content) => content,
            Err(message) => return Judgement::failed(StepStatus::Failed, exit_code, message),
        };
        self.compare(step, &content, exit_code)
    }

    fn compare(&self, step: &Step, content: &str, exit_code: Option<i32>) -> Judgement {
        match snapshots::check(self.course, self.lab, step, content, self.accept) {
            Ok(Verdict::Matched) | Ok(Verdict::Accepted { .. }) => Judgement::passed(exit_code),
            Ok(Verdict::Differs { pending, diff, .. }) => Judgement {
                details: Some(diff),
                ..Judgement::failed(
                    StepStatus::Failed,
                    exit_code,
                    format!(
                        "the output differs from the accepted snapshot; the new one is in {} \
                         (review it with {}, or run with --accept)",
                        pending.display(),
                        crate::review::hint(&self.course.root())
                    ),
                )
            },
            Ok(Verdict::Missing { path, .. }) => Judgement {
                final_: true,
                ..Judgement::failed(
                    StepStatus::Failed,
                    exit_code,
                    format!(
                        "no accepted snapshot {} yet: accept this output with {} or run with \
                         --accept; if a heading was renamed, `labbook snapshots --unreferenced \
                         list` shows the old snapshot",
                        path.display(),
                        crate::review::hint(&self.course.root())
                    ),
                )
            },
            Err(e) => Judgement::failed(StepStatus::Failed, exit_code, error_chain(&e)),
        }
    }

    /// What a step's snapshot holds: the redacted output, or for write-file the files written.
    fn snapshot_content(&self, step: &Step, outcome: &Outcome) -> Result<String, String> {
        let redactor = self.redactor;
        let mut files: Vec<(String, usize)> = Vec::new();
        if step.kind == StepKind::WriteFile {
            for command in &step.analysis.commands {
                if let Some(file) = command.written_file()
                    && !files.iter().any(|(f, _)| *f == file)
                {
                    files.push((file, command.line));
                }
            }
        }
        if files.is_empty() {
            return Ok(redactor.output(&outcome.output).trim_end().to_string());
        }
        let mut parts = Vec::new();
        for (file, line) in &files {
            let path = self.resolve(file, outcome.folder_for(*line, file));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "failed to read `{file}`, which the block writes (looked at {}): {e}",
                    path.display()
                )
            })?;
            let text = redactor.values(&text);
            if files.len() == 1 {
                parts.push(text);
            } else {
                parts.push(format!("==> {file} <==\n{text}"));
            }
        }
        Ok(parts.join("\n").trim_end_matches('\n').to_string())
    }

    /// A path as the block wrote it, relative to the shell's folder after the block.
    fn resolve(&self, file: &str, cwd: &Path) -> PathBuf {
        let home = self.home.map(Path::to_path_buf).unwrap_or_default();
        let expanded = if let Some(rest) = file.strip_prefix("~/") {
            home.join(rest)
        } else {
            let home = home.to_string_lossy();
            PathBuf::from(file.replace("${HOME}", &home).replace("$HOME", &home))
        };
        cwd.join(expanded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::terminal::FailureKind;

    const LAB: &str = "# Lab\n\n```bash\ntrue\nfalse\n```\n\n```bash\nkubectl get pods -w\n```\n\n<!-- labbook: until=ready -->\n```bash\nkubectl get pods -w\n```\n\n<!-- labbook: expect=exit:3 -->\n```bash\nfalse\n```\n";

    /// A course without a book, and the built-in redactions.
    fn bookless() -> (Course, Redactor) {
        let course = Course {
            book: None,
            src: None,
            config: Default::default(),
            labs: Vec::new(),
        };
        (course, Redactor::new(&[]).expect("built-in redactions"))
    }

    fn outcome(ending: Ending, status: i32, failures: &[(i32, usize, &str)]) -> Outcome {
        Outcome {
            number: 1,
            output: String::new(),
            truncated: false,
            status: Some(status),
            failures: failures
                .iter()
                .map(|&(status, line, command)| Failure {
                    status,
                    line,
                    command: command.into(),
                    kind: if command.starts_with("syntax error") {
                        FailureKind::Syntax
                    } else {
                        FailureKind::Command
                    },
                    pipestatus: Vec::new(),
                })
                .collect(),
            ending,
            duration: Duration::ZERO,
            cwd: PathBuf::new(),
            folders: Vec::new(),
        }
    }

    #[test]
    fn outcomes_become_statuses_and_failure_text() {
        let lab = Lab::parse("ch.md", LAB).expect("the lab parses");
        let (course, redactor) = bookless();
        let judge = Judge {
            course: &course,
            lab: &lab,
            redactor: &redactor,
            accept: false,
            home: None,
        };
        let (run, watch, watch_until, expect_exit) = (0, 1, 2, 3);
        assert_eq!(lab.steps[watch].kind, StepKind::Watch);
        assert_eq!(lab.steps[watch_until].kind, StepKind::Watch);
        // (step, outcome, status, exit code, a part of the failure text)
        type Case<'a> = (usize, Outcome, StepStatus, Option<i32>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                run,
                outcome(Ending::Finished, 0, &[]),
                StepStatus::Passed,
                Some(0),
                None,
            ),
            (
                run,
                outcome(Ending::Finished, 1, &[(1, 5, "false")]),
                StepStatus::Failed,
                Some(1),
                Some("`false` failed with exit code 1 at ch.md:5"),
            ),
            // A command that is not on the line it failed at came from a function defined
            // earlier: the reader's line is named, and the command inside.
            (
                run,
                outcome(Ending::Finished, 127, &[(127, 4, "nope"), (1, 5, "false")]),
                StepStatus::Failed,
                Some(1),
                Some(
                    "`true` (in `nope`) failed with exit code 127 at ch.md:4 (command not found) (and 1 more failing command(s))",
                ),
            ),
            (
                run,
                outcome(
                    Ending::Finished,
                    2,
                    &[(2, 5, "syntax error near unexpected token `)'")],
                ),
                StepStatus::Failed,
                Some(2),
                Some("bash stopped reading the block at ch.md:5: syntax error"),
            ),
            (
                run,
                outcome(Ending::ShellExited(4), 4, &[]),
                StepStatus::Failed,
                Some(4),
                Some("the shell exited with status 4"),
            ),
            (
                run,
                outcome(Ending::Limit, 0, &[]),
                StepStatus::TimedOut,
                None,
                Some("timed out after 2s; its processes were killed"),
            ),
            (
                run,
                outcome(Ending::Interrupted, 0, &[]),
                StepStatus::Failed,
                None,
                Some("interrupted (Ctrl+C)"),
            ),
            // A watch stopped at its limit is a success, even though the stop killed it.
            (
                watch,
                outcome(Ending::Limit, 143, &[(143, 9, "kubectl get pods -w")]),
                StepStatus::Stopped,
                None,
                None,
            ),
            (
                watch,
                outcome(Ending::Limit, 0, &[(1, 9, "kubectl get pods -w")]),
                StepStatus::Failed,
                Some(1),
                Some("`kubectl get pods -w` failed with exit code 1 at ch.md:9"),
            ),
            (
                watch_until,
                outcome(Ending::Limit, 0, &[]),
                StepStatus::TimedOut,
                None,
                Some("its until= pattern \"ready\" never matched"),
            ),
            (
                watch_until,
                outcome(Ending::Matched, 0, &[]),
                StepStatus::Stopped,
                None,
                None,
            ),
            (
                expect_exit,
                outcome(Ending::Finished, 3, &[(3, 19, "false")]),
                StepStatus::Passed,
                Some(3),
                None,
            ),
            (
                expect_exit,
                outcome(Ending::Finished, 1, &[(1, 19, "false")]),
                StepStatus::Failed,
                Some(1),
                Some("expected exit code 3, got 1; `false` failed with exit code 1"),
            ),
        ];
        for (i, (step, outcome, status, exit_code, failure)) in cases.iter().enumerate() {
            let judgement = judge.block(
                &lab.steps[*step],
                outcome,
                Duration::from_secs(2),
                *step == watch_until,
            );
            assert_eq!(
                judgement.status, *status,
                "case {i}: {:?}",
                judgement.failure
            );
            assert_eq!(judgement.exit_code, *exit_code, "case {i}");
            match failure {
                Some(needle) => {
                    let text = judgement.failure.unwrap_or_default();
                    assert!(text.contains(needle), "case {i}: {text}");
                }
                None => assert_eq!(judgement.failure, None, "case {i}"),
            }
        }
    }

    #[test]
    fn expectations_are_checked_without_a_snapshot() {
        let lab = Lab::parse(
            "ch.md",
            "# Lab\n\n<!-- labbook: expect=contains:\"hello\" -->\n```bash\necho hello\n```\n",
        )
        .expect("the lab parses");
        let (course, redactor) = bookless();
        let judge = Judge {
            course: &course,
            lab: &lab,
            redactor: &redactor,
            accept: false,
            home: None,
        };
        let cases = [
            ("hello world\n", StepStatus::Passed),
            ("goodbye\n", StepStatus::Failed),
        ];
        for (output, status) in cases {
            let outcome = Outcome {
                output: output.into(),
                ..outcome(Ending::Finished, 0, &[])
            };
            let judgement = judge.block(&lab.steps[0], &outcome, Duration::from_secs(2), false);
            assert_eq!(
                judgement.status, status,
                "{output}: {:?}",
                judgement.failure
            );
        }
    }
}
