//! What a person (or a CI log) sees while labs run, on stderr.
//!
//! On a terminal, an indicatif spinner per running lab shows its current step and elapsed time,
//! and finished steps scroll above it. Elsewhere (CI logs, pipes) the same finished-step lines are
//! printed plainly, without control characters. The run ends with a failure summary and, under
//! GitHub Actions, `::error file=…,line=…::` annotations. Statuses and diffs are coloured when the
//! run's settings say so ([`crate::color`] decides).
//!
//! The failure text lives here too: how a failing command is named ([`describe_failure`]), an
//! error and its sources on one line ([`error_chain`]), and the excerpt of a failing step's
//! output shown under it ([`output_excerpt`]).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use labbook::report::{LabReport, LabStatus, StepReport, StepStatus};
use labbook::text::truncate;
use labbook::{Lab, Step, StepKind};

use super::terminal::{Failure, FailureKind};
use crate::color::{Style, paint, paint_diffs};

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
    color: bool,
    lock: Mutex<()>,
}

impl Console {
    /// A console for `jobs` labs at a time; spinners only when stderr is a terminal, colours
    /// when `color`.
    pub fn new(jobs: usize, color: bool) -> Console {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Console {
            multi,
            prefix: jobs > 1,
            color,
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
            // One write per print (`eprintln!` writes the line and its newline apart).
            None => {
                use std::io::Write as _;
                let _ = std::io::stderr().write_all(format!("{text}\n").as_bytes());
            }
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
        let (status, style) = match report.status {
            StepStatus::Passed => ("passed", Style::Green),
            StepStatus::Stopped => ("stopped", Style::Green),
            StepStatus::Skipped => ("skipped", Style::Yellow),
            // An optional step's failure only warns: the lab goes on.
            StepStatus::Failed if report.kind == StepKind::Optional => ("FAILED", Style::Yellow),
            StepStatus::TimedOut if report.kind == StepKind::Optional => {
                ("TIMED OUT", Style::Yellow)
            }
            StepStatus::Failed => ("FAILED", Style::Red),
            StepStatus::TimedOut => ("TIMED OUT", Style::Red),
        };
        // Padded outside the escapes, which have no width.
        let pad = " ".repeat(9usize.saturating_sub(status.len()));
        let status = format!("{}{pad}", paint(status, style, self.console.color));
        let mut text = format!(
            "  {status} {:<13} {} (line {}, {} ms)",
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
        let indented: Vec<String> = paint_diffs(text, self.console.color)
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
            LabStatus::Passed => paint("PASSED", Style::Green, self.console.color),
            LabStatus::Failed => paint("FAILED", Style::Red, self.console.color),
            LabStatus::Interrupted => paint("INTERRUPTED", Style::Yellow, self.console.color),
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

/// "`cmd` failed with exit code N at chapter.md:LINE" (with `count` failing commands in all).
pub fn describe_failure(chapter: &Path, step: &Step, failure: &Failure, count: usize) -> String {
    let markdown_line = failure.line;
    let path = chapter.display();
    match failure.kind {
        FailureKind::Syntax => {
            return format!(
                "bash stopped reading the block at {path}:{markdown_line}: {}",
                failure.command
            );
        }
        FailureKind::Unbound => {
            let (variable, code) = failure.command.split_once('\t').unwrap_or_default();
            return format!(
                "`{}` uses `${variable}`, which is not set (`set -u` is on), at \
                 {path}:{markdown_line}; bash left the shell there",
                truncate(code, 80)
            );
        }
        FailureKind::Broken => {
            return format!(
                "the lab's shell could not start this block: it cannot open files any more \
                 (did an earlier block lower `ulimit -n` or close file descriptors?){}",
                if failure.command.is_empty() {
                    String::new()
                } else {
                    format!("; bash said: {}", truncate(&failure.command, 120))
                }
            );
        }
        FailureKind::Command => {}
    }
    let code_line = step
        .code_lines
        .iter()
        .position(|l| *l == markdown_line)
        .and_then(|i| step.code.lines().nth(i))
        .unwrap_or("")
        .trim();
    let first_word = failure.command.split_whitespace().next().unwrap_or("");
    // Under `set -o pipefail`, bash names the pipeline's last command; the culprit is the last
    // one that failed.
    let culprit = failure.pipeline_culprit().and_then(|index| {
        let commands: Vec<String> = step
            .analysis
            .commands
            .iter()
            .filter(|c| c.line == markdown_line && !c.substituted)
            .map(|c| c.argv.join(" "))
            .collect();
        (commands.len() == failure.pipestatus.len())
            .then(|| commands.get(index).cloned())
            .flatten()
            .map(|command| (index, command))
    });
    let command = if let Some((index, command)) = culprit {
        format!(
            "`{}` (command {} of the pipeline `{}`, under `set -o pipefail`)",
            truncate(&command, 60),
            index + 1,
            truncate(
                if code_line.is_empty() {
                    &failure.command
                } else {
                    code_line
                },
                80
            )
        )
    } else if !code_line.is_empty() && !code_line.contains(first_word) {
        // A function from an earlier block failed inside; name the line the reader typed.
        format!(
            "`{}` (in `{}`)",
            truncate(code_line, 80),
            truncate(&failure.command, 60)
        )
    } else {
        format!("`{}`", truncate(&failure.command, 80))
    };
    let mut text = format!(
        "{command} failed with exit code {} at {path}:{markdown_line}",
        failure.status,
    );
    if failure.status == 127 {
        text.push_str(" (command not found)");
    }
    if count > 1 {
        text.push_str(&format!(" (and {} more failing command(s))", count - 1));
    }
    text
}

/// An error and its sources, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

/// The part of a failing step's output worth showing on the console: the end (where errors
/// are), or, when a hint already explains that there is no cluster, the lines that are not
/// `noise` (connection errors).
pub fn output_excerpt(label: &str, output: &str, noise: Option<&dyn Fn(&str) -> bool>) -> String {
    let all: Vec<&str> = output.trim_end().lines().collect();
    if let Some(noise) = noise {
        let kept: Vec<&str> = all.iter().copied().filter(|l| !noise(l)).take(5).collect();
        let hidden = all.len() - kept.len();
        let mut text = format!("{label}:");
        for line in &kept {
            text.push('\n');
            text.push_str(line);
        }
        if hidden > 0 {
            text.push_str(&format!(
                "\n({hidden} more line(s), mostly \"no cluster\" connection errors, are in the report)"
            ));
        }
        return text;
    }
    let keep = 20;
    if all.len() <= keep {
        return format!("{label}:\n{}", all.join("\n"));
    }
    format!(
        "{label} (last {keep} of {} lines, all in the report):\n{}",
        all.len(),
        all[all.len() - keep..].join("\n")
    )
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

    #[test]
    fn excerpts_hide_no_cluster_noise_only_when_asked() {
        let noise = "E1122 memcache.go:265] couldn't get current server API group list: dial tcp 127.0.0.1:8080: connect: connection refused";
        let output = format!("{noise}\nbash: istioctl: command not found\n{noise}\n");
        let cases = [
            (
                true,
                vec!["bash: istioctl: command not found", "(2 more line(s)"],
                vec!["memcache"],
            ),
            (false, vec!["memcache", "istioctl"], vec!["more line(s)"]),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        use crate::cluster::LabCluster as _;
        let none = crate::cluster::none::NoCluster::new(dir.path()).expect("kubeconfig");
        let noise = |line: &str| none.is_noise(line);
        for (no_cluster, present, absent) in cases {
            let filter: Option<&dyn Fn(&str) -> bool> = no_cluster.then_some(&noise);
            let text = output_excerpt("output", &output, filter);
            for needle in present {
                assert!(text.contains(needle), "{no_cluster}: {text}");
            }
            for needle in absent {
                assert!(!text.contains(needle), "{no_cluster}: {text}");
            }
        }
    }

    #[test]
    fn excerpts_keep_the_end_or_the_first_meaningful_lines() {
        let output: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let long = output_excerpt("output", &output, None);
        assert!(long.starts_with("output (last 20 of 30 lines"));
        assert!(long.ends_with("line 30"));
        let short = output_excerpt("output", &output, Some(&|_: &str| false));
        assert!(short.contains("line 5\n(25 more line(s)"), "{short}");
        assert_eq!(output_excerpt("output", "a\nb\n", None), "output:\na\nb");
    }
}
