//! What a person (or a CI log) sees while labs run, on stderr.
//!
//! On a terminal, an indicatif spinner per running lab shows its current step and elapsed time,
//! and finished steps scroll above it. Elsewhere (CI logs, pipes) the same finished-step lines are
//! printed plainly, without control characters. The run ends with a failure summary and, under
//! GitHub Actions, `::error file=…,line=…::` annotations.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use labbook::report::{LabReport, LabStatus, StepReport, StepStatus};
use labbook::{Lab, Step};

/// A failure worth a line in the summary (and a GitHub annotation).
#[derive(Debug, Clone)]
pub struct Problem {
    /// The chapter, as the user named it.
    pub path: String,
    /// The Markdown line.
    pub line: usize,
    /// The lab title.
    pub lab: String,
    /// The step id.
    pub step: String,
    /// What went wrong (first line).
    pub message: String,
    /// The rest: the hint and the snapshot diff or output excerpt, for annotations.
    pub detail: Option<String>,
    /// A warning (optional step, leftover) rather than an error.
    pub warning: bool,
}

/// The run's console.
pub struct Console {
    multi: Option<MultiProgress>,
    prefix: bool,
    lock: Mutex<()>,
}

impl Console {
    /// A console for `jobs` labs at a time; spinners only when stderr is a terminal.
    pub fn new(jobs: usize) -> Console {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Console {
            multi,
            prefix: jobs > 1,
            lock: Mutex::new(()),
        }
    }

    /// Prints lines above the spinners.
    pub fn print(&self, text: &str) {
        let _guard = self.lock.lock();
        let text = text.strip_suffix('\n').unwrap_or(text);
        match &self.multi {
            Some(multi) => {
                for line in text.lines() {
                    let _ = multi.println(line);
                }
            }
            None => eprintln!("{text}"),
        }
    }

    /// Starts showing a lab.
    pub fn lab(&self, lab: &Lab) -> LabProgress<'_> {
        let title = lab.title.clone();
        self.print(&format!("▶ {} ({})", title, lab.path.display()));
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
                bar.set_style(style);
            }
            bar.set_message(title.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        LabProgress {
            console: self,
            bar,
            title,
        }
    }

    /// Prints the end-of-run summary: counts, then every problem with its location.
    pub fn summary(&self, labs: &[LabReport], problems: &[Problem], elapsed: Duration) {
        let count = |status: LabStatus| labs.iter().filter(|l| l.status == status).count();
        let mut text = format!(
            "\nlabbook: {} lab(s): {} passed, {} failed, {} interrupted in {:.1}s",
            labs.len(),
            count(LabStatus::Passed),
            count(LabStatus::Failed),
            count(LabStatus::Interrupted),
            elapsed.as_secs_f64()
        );
        let errors: Vec<&Problem> = problems.iter().filter(|p| !p.warning).collect();
        let warnings: Vec<&Problem> = problems.iter().filter(|p| p.warning).collect();
        for (title, list) in [("failures", errors), ("warnings", warnings)] {
            if list.is_empty() {
                continue;
            }
            text.push_str(&format!("\n{title}:"));
            for p in list {
                text.push_str(&format!(
                    "\n  {}:{}: [{}] {}: {}",
                    p.path, p.line, p.lab, p.step, p.message
                ));
            }
        }
        self.print(&text);
        if crate::github::actions() {
            for p in problems {
                println!("{}", github_annotation(p));
            }
        }
    }
}

/// A GitHub Actions annotation for a problem, carrying its hint and diff.
pub fn github_annotation(p: &Problem) -> String {
    use crate::github::{Level, annotation};
    let mut message = format!("[{}] {}: {}", p.lab, p.step, p.message);
    if let Some(detail) = &p.detail {
        message.push('\n');
        message.push_str(detail);
    }
    let level = if p.warning {
        Level::Warning
    } else {
        Level::Error
    };
    annotation(level, &p.path, p.line, "", &message)
}

/// One lab on the console.
pub struct LabProgress<'a> {
    console: &'a Console,
    bar: Option<ProgressBar>,
    title: String,
}

impl LabProgress<'_> {
    fn line(&self, text: &str) -> String {
        if self.console.prefix {
            format!("[{}] {text}", self.title)
        } else {
            text.to_string()
        }
    }

    /// A step starts.
    pub fn step(&self, step: &Step) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} › {} ({})", self.title, step.id, step.kind));
        }
    }

    /// A step ended (or was skipped).
    pub fn finished(&self, report: &StepReport) {
        let status = match report.status {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "FAILED",
            StepStatus::TimedOut => "TIMED OUT",
            StepStatus::Stopped => "stopped",
            StepStatus::Skipped => "skipped",
        };
        let mut text = format!(
            "  {status:<9} {:<13} {} (line {}, {} ms)",
            report.kind.name(),
            report.id,
            report.line,
            report.duration_ms
        );
        if let Some(failure) = &report.failure
            && report.status != StepStatus::Skipped
        {
            text.push_str(&format!(" — {}", failure.lines().next().unwrap_or("")));
        }
        self.console.print(&self.line(&text));
    }

    /// Details under a step (a diff, the end of the output, a hint), indented.
    pub fn detail(&self, text: &str) {
        let indented: Vec<String> = text
            .lines()
            .map(|l| self.line(&format!("      {l}")))
            .collect();
        self.console.print(&indented.join("\n"));
    }

    /// The lab ended.
    pub fn done(self, report: &LabReport) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let count = |s: StepStatus| report.steps.iter().filter(|r| r.status == s).count();
        let status = match report.status {
            LabStatus::Passed => "PASSED",
            LabStatus::Failed => "FAILED",
            LabStatus::Interrupted => "INTERRUPTED",
        };
        let mut text = format!(
            "{status} {} in {:.1}s ({} passed, {} stopped, {} failed, {} timed out, {} skipped)",
            self.title,
            report.duration_ms as f64 / 1000.0,
            count(StepStatus::Passed),
            count(StepStatus::Stopped),
            count(StepStatus::Failed),
            count(StepStatus::TimedOut),
            count(StepStatus::Skipped),
        );
        for warning in &report.warnings {
            text.push_str(&format!("\n  warning: {warning}"));
        }
        self.console.print(&self.line(&text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_github_would_misread() {
        let problem = |message: &str, warning| Problem {
            path: "book/src/a,b.md".into(),
            line: 12,
            lab: "Lab".into(),
            step: "verify-1".into(),
            message: message.into(),
            detail: None,
            warning,
        };
        let cases = [
            (
                problem("`curl` failed: 100%\ndone", false),
                "::error file=book/src/a%2Cb.md,line=12::[Lab] verify-1: `curl` failed: 100%25%0Adone",
            ),
            (
                problem("optional step failed", true),
                "::warning file=book/src/a%2Cb.md,line=12::[Lab] verify-1: optional step failed",
            ),
        ];
        for (p, expected) in cases {
            assert_eq!(github_annotation(&p), expected);
        }
        let with_diff = Problem {
            detail: Some("--- accepted\n+++ new\n-a\n+b".into()),
            ..problem("the output differs", false)
        };
        assert_eq!(
            github_annotation(&with_diff),
            "::error file=book/src/a%2Cb.md,line=12::[Lab] verify-1: the output differs%0A--- accepted%0A+++ new%0A-a%0A+b"
        );
    }
}
