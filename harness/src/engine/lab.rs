//! Running one lab: sandbox, backend, the main sequence, troubleshooting, cleanup and reaping.
//!
//! The main sequence runs the steps in order, each according to its kind. The first failing step
//! that is not `optional` ends it (`--keep-going` continues past failed verifies only), and the
//! remaining steps are reported `skipped`. After a failure the `troubleshoot` steps run and the
//! backend collects diagnostics. `cleanup` steps always run, after a pass, a failure or a Ctrl+C
//! (a second Ctrl+C skips them). Finally every process the lab started is stopped, background
//! ones included, and the backend tears down.
//!
//! A session (`open-session`) is run once, with all of its `session-input` blocks on stdin; each
//! input step is then reported with the session's status and the part of the transcript its
//! block produced (between the markers typed before it and before the next block). Inputs never
//! reached (the session ended first) fail; their duration is 0, the session's time is reported
//! on the `open-session` step.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labbook::report::{LabReport, LabStatus, StepReport, StepStatus};
use labbook::text::truncate;
use labbook::tools;
use labbook::{Course, Expect, Lab, Step, StepKind};
use regex::Regex;

use super::console::{Console, LabProgress, Problem};
use super::interrupt::Interrupt;
use super::redact::Redactor;
use super::snapshots::{self, Verdict};
use super::terminal::{self, Block, Ending, Failure, Outcome, Terminal};
use super::{expect, procs, sandbox, session};
use crate::cluster::ClusterBackend;

/// Settings shared by every lab of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Write snapshots instead of comparing.
    pub accept: bool,
    /// Continue past failed verify steps.
    pub keep_going: bool,
    /// Default time limit of a step.
    pub step_timeout: Duration,
    /// Default time limit of a watch.
    pub watch_limit: Duration,
    /// The bash binary.
    pub bash: PathBuf,
    /// Where each lab gets its run folder.
    pub run_root: PathBuf,
    /// `--report DIR`, for diagnostics.
    pub report_dir: Option<PathBuf>,
    /// Paths never copied into a sandbox (the run and report folders).
    pub exclude: Vec<PathBuf>,
    /// The environment lab commands start from (before the backend's variables).
    pub env: Vec<(OsString, OsString)>,
}

/// One lab to run.
pub struct Job<'a> {
    /// Its course (book settings, snapshot folder).
    pub course: &'a Course,
    /// The lab.
    pub lab: &'a Lab,
    /// Its position in the run (names its run folder and its process token).
    pub index: usize,
    /// The course's redactions.
    pub redactor: &'a Redactor,
}

/// What running a lab produced.
pub struct LabResult {
    /// Its report.
    pub report: LabReport,
    /// Failures and warnings for the summary.
    pub problems: Vec<Problem>,
}

/// Creates the cluster backend of a lab, given its run folder.
pub type BackendFactory<'a> =
    dyn Fn(&Path, &Lab) -> anyhow::Result<Box<dyn ClusterBackend>> + Sync + 'a;

/// Runs one lab to the end and reports it. Never panics on lab content; problems of the lab's
/// infrastructure (sandbox, backend) fail the lab with a message.
pub fn run(
    job: &Job,
    settings: &Settings,
    backend: &BackendFactory,
    console: &Console,
    interrupt: &Interrupt,
) -> LabResult {
    let started = Instant::now();
    let lab = job.lab;
    let progress = console.lab(lab);
    let mut result = LabResult {
        report: LabReport {
            path: lab.path.display().to_string(),
            title: lab.title.clone(),
            status: LabStatus::Passed,
            duration_ms: 0,
            steps: lab.steps.iter().map(skipped).collect(),
            warnings: Vec::new(),
            diagnostics: Vec::new(),
        },
        problems: Vec::new(),
    };
    if interrupt.count() > 0 {
        result.report.status = LabStatus::Interrupted;
        progress.done(&result.report);
        return result;
    }
    match Runner::prepare(job, settings, backend, &progress, interrupt) {
        Ok(mut runner) => {
            runner.run_all();
            runner.finish(&mut result);
        }
        Err(message) => {
            result.report.status = LabStatus::Failed;
            progress.detail(&format!("error: {message}"));
            result.problems.push(Problem {
                path: result.report.path.clone(),
                line: 1,
                lab: lab.title.clone(),
                step: "-".into(),
                message,
                detail: None,
                warning: false,
            });
        }
    }
    if interrupt.count() > 0 {
        result.report.status = LabStatus::Interrupted;
    }
    result.report.duration_ms = millis(started.elapsed());
    progress.done(&result.report);
    result
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn skipped(step: &Step) -> StepReport {
    StepReport {
        id: step.id.clone(),
        kind: step.kind,
        line: step.span.line,
        status: StepStatus::Skipped,
        exit_code: None,
        duration_ms: 0,
        output: String::new(),
        failure: None,
        diff: None,
        settle_ms: None,
    }
}

/// The outcome of a session, for its input steps.
struct SessionRun {
    status: StepStatus,
    failure: Option<String>,
    parts: Vec<Option<String>>,
}

/// A judged step.
struct Judgement {
    status: StepStatus,
    exit_code: Option<i32>,
    failure: Option<String>,
    /// The Markdown line of the failing command, when one is known.
    line: Option<usize>,
    /// Shown under the step on the console (a diff, a hint).
    details: Option<String>,
    /// Trying again cannot change the outcome (no accepted snapshot): `retry=` stops at once.
    final_: bool,
}

impl Judgement {
    fn passed(exit_code: Option<i32>) -> Judgement {
        Judgement {
            status: StepStatus::Passed,
            exit_code,
            failure: None,
            line: None,
            details: None,
            final_: false,
        }
    }

    fn failed(status: StepStatus, exit_code: Option<i32>, failure: String) -> Judgement {
        Judgement {
            status,
            exit_code,
            failure: Some(failure),
            line: None,
            details: None,
            final_: false,
        }
    }

    fn ok(&self) -> bool {
        matches!(self.status, StepStatus::Passed | StepStatus::Stopped)
    }
}

struct Runner<'a> {
    job: &'a Job<'a>,
    settings: &'a Settings,
    progress: &'a LabProgress<'a>,
    interrupt: &'a Interrupt,
    backend: Box<dyn ClusterBackend>,
    terminal: Terminal,
    token: String,
    lab_dir: PathBuf,
    home: Option<PathBuf>,
    reports: Vec<StepReport>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
    sessions: HashMap<String, SessionRun>,
    backgrounds: Vec<(usize, u64)>,
    diagnostics: Vec<String>,
    failed: bool,
}

impl<'a> Runner<'a> {
    fn prepare(
        job: &'a Job<'a>,
        settings: &'a Settings,
        backend: &BackendFactory,
        progress: &'a LabProgress<'a>,
        interrupt: &'a Interrupt,
    ) -> Result<Runner<'a>, String> {
        let (course, lab) = (job.course, job.lab);
        let lab_dir = settings.run_root.join(format!(
            "{:03}-{}",
            job.index + 1,
            labbook::snapshot::chapter_key(course, lab)
        ));
        std::fs::create_dir_all(&lab_dir)
            .map_err(|e| format!("failed to create the run folder {}: {e}", lab_dir.display()))?;
        let tree = lab_dir.join("tree");
        let root = course.root();
        sandbox::copy_course(&root, &tree, &settings.exclude).map_err(|e| error_chain(&e))?;
        let start =
            sandbox::map_into(&root, &tree, &course.start_dir(lab)).map_err(|e| error_chain(&e))?;
        if !start.is_dir() {
            return Err(format!(
                "failed to start the lab in {}: no such folder in the course",
                course.start_dir(lab).display()
            ));
        }
        let mut backend = backend(&lab_dir, lab)
            .map_err(|e| format!("failed to prepare the cluster backend: {e:#}"))?;
        if let Err(e) = backend.before_lab(lab) {
            let _ = backend.teardown();
            return Err(format!("failed to prepare the cluster for the lab: {e:#}"));
        }
        let mut env = settings.env.clone();
        for (key, value) in backend.env() {
            env.retain(|(k, _)| *k != *key);
            env.push((key.into(), value.into()));
        }
        let home = env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| PathBuf::from(v));
        let token = format!("lb{}x{}", std::process::id(), job.index + 1);
        let terminal = Terminal::new(terminal::Settings {
            bash: settings.bash.clone(),
            dir: lab_dir.join("control"),
            cwd: start,
            env,
            token: token.clone(),
        })
        .map_err(|e| error_chain(&e))?;
        Ok(Runner {
            job,
            settings,
            progress,
            interrupt,
            backend,
            terminal,
            token,
            lab_dir,
            home,
            reports: lab.steps.iter().map(skipped).collect(),
            problems: Vec::new(),
            warnings: Vec::new(),
            sessions: HashMap::new(),
            backgrounds: Vec::new(),
            diagnostics: Vec::new(),
            failed: false,
        })
    }

    fn lab(&self) -> &'a Lab {
        self.job.lab
    }

    fn run_all(&mut self) {
        let lab = self.lab();
        let mut main_stopped = false;
        for (i, step) in lab.steps.iter().enumerate() {
            match step.kind {
                StepKind::Skip | StepKind::Troubleshoot | StepKind::Cleanup => continue,
                StepKind::SessionInput => {
                    self.report_session_input(i);
                    continue;
                }
                _ => {}
            }
            if main_stopped || self.interrupt.count() > 0 {
                continue;
            }
            let report = self.run_step(i);
            let ok = matches!(report.status, StepStatus::Passed | StepStatus::Stopped);
            if !ok && step.kind != StepKind::Optional {
                self.failed = true;
                // Past a failed verify, or a write-file whose file differs from its snapshot
                // (the file was written: later steps can still use it).
                let keep_going = self.settings.keep_going
                    && (step.kind == StepKind::Verify
                        || (step.kind == StepKind::WriteFile && report.diff.is_some()));
                if !keep_going {
                    main_stopped = true;
                }
            }
        }
        let interrupted = self.interrupt.count() > 0;
        if self.failed && !interrupted {
            for (i, step) in lab.steps.iter().enumerate() {
                if step.kind == StepKind::Troubleshoot && self.interrupt.count() == 0 {
                    self.run_step(i);
                }
            }
            self.diagnose();
        }
        for (i, step) in lab.steps.iter().enumerate() {
            if step.kind != StepKind::Cleanup {
                continue;
            }
            if self.interrupt.count() >= 2 {
                self.reports[i].failure = Some("not run: interrupted twice".into());
                continue;
            }
            let report = self.run_step(i);
            if !matches!(report.status, StepStatus::Passed | StepStatus::Stopped) {
                self.failed = true;
            }
        }
    }

    /// Runs step `i` (retrying a `retry=` step), records and prints its report.
    fn run_step(&mut self, i: usize) -> StepReport {
        let lab = self.lab();
        let step = &lab.steps[i];
        self.progress.step(step);
        let started = Instant::now();
        let mut report = skipped(step);
        if let Err(e) = self.backend.before_step(lab, step) {
            let judgement = Judgement::failed(
                StepStatus::Failed,
                None,
                format!("the cluster backend refused to run this step: {e:#}"),
            );
            return self.record(i, report, judgement, None, started);
        }
        if step.kind == StepKind::Verify {
            match self.backend.settle(lab, step) {
                Ok((ms, warning)) => {
                    report.settle_ms = Some(ms);
                    self.warnings.extend(warning);
                }
                Err(e) => self
                    .warnings
                    .push(format!("{}: failed to settle: {e:#}", step.id)),
            }
        }
        let until = match step.annotation.until.as_deref().map(Regex::new) {
            Some(Ok(regex)) => Some(regex),
            Some(Err(e)) => {
                let judgement = Judgement::failed(
                    StepStatus::Failed,
                    None,
                    format!("the until= pattern is not a valid regex: {e}"),
                );
                return self.record(i, report, judgement, None, started);
            }
            None => None,
        };
        let inputs: Vec<&Step> = if step.kind == StepKind::OpenSession {
            lab.session_inputs(&step.id).collect()
        } else {
            Vec::new()
        };
        let code = match &step.opens {
            Some(opens) if step.kind == StepKind::OpenSession => {
                session::drop_tty(&step.code, &step.code_lines, opens.line)
            }
            _ => step.code.clone(),
        };
        let stdin = (step.kind == StepKind::OpenSession).then(|| {
            let blocks: Vec<&str> = inputs.iter().map(|s| s.code.as_str()).collect();
            session::input(&self.token, &blocks)
        });
        let watch = step.kind == StepKind::Watch;
        let limit = step.annotation.timeout.unwrap_or(if watch {
            self.settings.watch_limit
        } else {
            self.settings.step_timeout
        });
        let block = Block {
            code: &code,
            lines: &step.code_lines,
            stdin: stdin.as_deref(),
            limit,
            until: until.as_ref(),
            watch,
        };
        let retry_deadline = step.annotation.retry.map(|d| terminal::later(started, d));
        let mut attempts = 0;
        let (outcome, mut judgement) = loop {
            attempts += 1;
            let outcome = match self.terminal.run(&block, self.interrupt) {
                Ok(outcome) => outcome,
                Err(e) => {
                    let judgement = Judgement::failed(StepStatus::Failed, None, error_chain(&e));
                    return self.record(i, report, judgement, None, started);
                }
            };
            let judgement = self.judge(step, &outcome, limit, until.is_some());
            let again = !judgement.ok()
                && !judgement.final_
                && outcome.ending != Ending::Interrupted
                && retry_deadline.is_some_and(|d| Instant::now() + Duration::from_secs(1) < d);
            if !again {
                break (outcome, judgement);
            }
            if !self.pause(Duration::from_secs(1)) {
                break (outcome, judgement);
            }
        };
        if attempts > 1
            && let Some(failure) = judgement.failure.as_mut()
        {
            failure.push_str(&format!(" (after {attempts} attempts)"));
        }
        if step.kind == StepKind::Background {
            self.backgrounds.push((i, outcome.number));
        }
        let mut output = outcome.output.clone();
        if step.kind == StepKind::OpenSession {
            let parts = session::split(&self.token, &output, inputs.len());
            output = session::strip_markers(&self.token, &output);
            self.sessions.insert(
                step.id.clone(),
                SessionRun {
                    status: judgement.status,
                    failure: judgement.failure.clone(),
                    parts,
                },
            );
        }
        if outcome.truncated {
            output.push_str("\n[labbook: output truncated]\n");
        }
        report.output = output;
        self.record(i, report, judgement, Some(&outcome), started)
    }

    /// Waits `duration` unless interrupted; returns false on an interrupt.
    fn pause(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        let seen = self.interrupt.count();
        while Instant::now() < end {
            if self.interrupt.count() > seen {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Stores a step's report, prints it, and notes problems.
    fn record(
        &mut self,
        i: usize,
        mut report: StepReport,
        judgement: Judgement,
        outcome: Option<&Outcome>,
        started: Instant,
    ) -> StepReport {
        let lab = self.lab();
        let step = &lab.steps[i];
        let line = judgement.line.unwrap_or(step.span.line);
        report.status = judgement.status;
        report.exit_code = judgement.exit_code;
        report.failure = judgement.failure;
        report.diff = judgement.details.clone();
        report.duration_ms = millis(started.elapsed());
        let failed = !matches!(report.status, StepStatus::Passed | StepStatus::Stopped);
        let hint = if failed {
            self.cluster_hint(step, outcome)
        } else {
            None
        };
        if let (Some(hint), Some(failure)) = (&hint, report.failure.as_mut()) {
            failure.push_str(&format!("\n{hint}"));
        }
        self.progress.finished(&report);
        // The hint and the diff (or output), shown under the step and carried by annotations.
        let mut detail = None;
        if failed {
            let mut details = Vec::new();
            if let Some(hint) = &hint {
                details.push(hint.clone());
            }
            if let Some(d) = &judgement.details {
                details.push(d.clone());
            } else if !report.output.trim().is_empty() {
                details.push(output_excerpt("output", &report.output, hint.is_some()));
            }
            if !details.is_empty() {
                let joined = details.join("\n");
                self.progress.detail(&joined);
                detail = Some(joined);
            }
        } else if step.kind == StepKind::Troubleshoot && !report.output.trim().is_empty() {
            self.progress.detail(&output_excerpt(
                "troubleshooting output",
                &report.output,
                false,
            ));
        }
        if failed {
            let optional = step.kind == StepKind::Optional;
            let troubleshoot = step.kind == StepKind::Troubleshoot;
            let message = report
                .failure
                .as_deref()
                .and_then(|f| f.lines().next())
                .unwrap_or("failed")
                .to_string();
            if !troubleshoot {
                self.problems.push(Problem {
                    path: lab.path.display().to_string(),
                    line,
                    lab: lab.title.clone(),
                    step: step.id.clone(),
                    message: if optional {
                        format!("optional step failed (the lab goes on): {message}")
                    } else {
                        message
                    },
                    detail,
                    warning: optional,
                });
            }
        }
        self.reports[i] = report.clone();
        report
    }

    /// Under `--cluster none`, a failing step that calls a cluster tool needs a real cluster.
    fn cluster_hint(&self, step: &Step, outcome: Option<&Outcome>) -> Option<String> {
        if self.backend.name() != "none" {
            return None;
        }
        let tool = step.analysis.commands.iter().find_map(|c| {
            let program = c.program();
            let is_make_cluster_target =
                program == "make" && c.args().iter().any(|a| tools::is_infra_target(a));
            (tools::talks_to_cluster(program) || is_make_cluster_target)
                .then(|| (c.argv.join(" "), c.line))
        })?;
        // Only when the failure comes from talking to a cluster: a test double that fails for
        // another reason does not need kind.
        let output = outcome.map_or("", |o| o.output.as_str());
        let failing = outcome
            .and_then(|o| o.failures.first())
            .map_or("", |f| f.command.as_str());
        let first_word = failing.split_whitespace().next().unwrap_or("");
        let connection = [
            "connection refused",
            "The connection to the server",
            "no configuration has been provided",
            "Unable to connect to the server",
            "Kubernetes cluster unreachable",
            "couldn't get current server API group list",
            "command not found",
            "invalid configuration",
            "context was not found",
            "dial tcp",
        ]
        .iter()
        .any(|needle| output.contains(needle));
        let tool_failed = tools::talks_to_cluster(first_word) || first_word == "make";
        (connection || tool_failed).then(|| {
            format!(
                "hint: this step talks to a cluster (`{}` at {}:{}), and --cluster none has none: \
                 run this lab with --cluster kind",
                truncate(&tool.0, 60),
                self.lab().path.display(),
                tool.1
            )
        })
    }

    fn judge(&self, step: &Step, outcome: &Outcome, limit: Duration, until: bool) -> Judgement {
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
                        self.describe(step, f, failures.len()),
                    )
                },
                None => {
                    let mut judgement = self.check_expectation(step, outcome, None);
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
                        self.describe(step, f, outcome.failures.len())
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
                    self.describe(step, f, outcome.failures.len()),
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
        self.check_expectation(step, outcome, Some(exit_code))
    }

    /// Snapshot (the default for verify and write-file) or an annotated expectation.
    fn check_expectation(
        &self,
        step: &Step,
        outcome: &Outcome,
        exit_code: Option<i32>,
    ) -> Judgement {
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
        let (course, lab) = (self.job.course, self.lab());
        match snapshots::check(course, lab, step, content, self.settings.accept) {
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
                        crate::review::hint(&course.root())
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
                        crate::review::hint(&course.root())
                    ),
                )
            },
            Err(e) => Judgement::failed(StepStatus::Failed, exit_code, error_chain(&e)),
        }
    }

    /// What a step's snapshot holds: the redacted output, or for write-file the files written.
    fn snapshot_content(&self, step: &Step, outcome: &Outcome) -> Result<String, String> {
        let redactor = self.job.redactor;
        let mut files: Vec<String> = Vec::new();
        if step.kind == StepKind::WriteFile {
            for command in &step.analysis.commands {
                if let Some(file) = command.written_file()
                    && !files.contains(&file)
                {
                    files.push(file);
                }
            }
        }
        if files.is_empty() {
            return Ok(redactor.output(&outcome.output).trim_end().to_string());
        }
        let mut parts = Vec::new();
        for file in &files {
            let path = self.resolve(file, &outcome.cwd);
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
        let home = self.home.clone().unwrap_or_default();
        let expanded = if let Some(rest) = file.strip_prefix("~/") {
            home.join(rest)
        } else {
            let home = home.to_string_lossy();
            PathBuf::from(file.replace("${HOME}", &home).replace("$HOME", &home))
        };
        cwd.join(expanded)
    }

    /// "`cmd` failed with exit code N at chapter.md:LINE".
    fn describe(&self, step: &Step, failure: &Failure, count: usize) -> String {
        let markdown_line = failure.line;
        if failure.command.starts_with("syntax error")
            || failure.command.starts_with("unexpected EOF")
        {
            return format!(
                "bash stopped reading the block at {}:{markdown_line}: {}",
                self.lab().path.display(),
                failure.command
            );
        }
        let code_line = step
            .code_lines
            .iter()
            .position(|l| *l == markdown_line)
            .and_then(|i| step.code.lines().nth(i))
            .unwrap_or("")
            .trim();
        let first_word = failure.command.split_whitespace().next().unwrap_or("");
        let command = if !code_line.is_empty() && !code_line.contains(first_word) {
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
            "{command} failed with exit code {} at {}:{markdown_line}",
            failure.status,
            self.lab().path.display()
        );
        if failure.status == 127 {
            text.push_str(" (command not found)");
        }
        if count > 1 {
            text.push_str(&format!(" (and {} more failing command(s))", count - 1));
        }
        text
    }

    /// Reports a session-input step from its session's outcome.
    fn report_session_input(&mut self, i: usize) {
        let lab = self.lab();
        let step = &lab.steps[i];
        let Some(session_id) = step.session.as_deref() else {
            return;
        };
        let Some(session) = self.sessions.get(session_id) else {
            return;
        };
        let position = lab
            .session_inputs(session_id)
            .position(|s| s.id == step.id)
            .unwrap_or(0);
        let part = session.parts.get(position).cloned().flatten();
        let mut report = skipped(step);
        let judgement = match (&part, session.status) {
            (None, StepStatus::Passed | StepStatus::Stopped) => Judgement::failed(
                StepStatus::Failed,
                None,
                format!(
                    "the session `{session_id}` had ended before this block was typed (did an \
                     earlier block `exit`?)"
                ),
            ),
            (_, StepStatus::Passed | StepStatus::Stopped) => {
                report.output = part.clone().unwrap_or_default();
                let outcome = Outcome {
                    number: 0,
                    output: report.output.clone(),
                    truncated: false,
                    status: Some(0),
                    failures: Vec::new(),
                    ending: Ending::Finished,
                    duration: Duration::ZERO,
                    cwd: PathBuf::new(),
                };
                self.check_expectation(step, &outcome, None)
            }
            (_, status) => {
                report.output = part.clone().unwrap_or_default();
                Judgement::failed(
                    status,
                    None,
                    format!(
                        "its session `{session_id}` failed: {}",
                        session
                            .failure
                            .as_deref()
                            .unwrap_or("see the open-session step")
                    ),
                )
            }
        };
        let session_failed = !matches!(session.status, StepStatus::Passed | StepStatus::Stopped);
        if !judgement.ok() && !session_failed && step.kind != StepKind::Optional {
            self.failed = true;
        }
        self.progress.step(step);
        self.record(i, report, judgement, None, Instant::now());
        // The session's time is on its open-session step, and its failure is already listed.
        self.reports[i].duration_ms = 0;
        if session_failed {
            self.problems.retain(|p| p.step != step.id);
        }
    }

    fn diagnose(&mut self) {
        let key = self
            .lab_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = match &self.settings.report_dir {
            Some(report) => report.join("diagnostics").join(&key),
            None => self.lab_dir.join("diagnostics"),
        };
        match self.backend.diagnose(self.lab(), &dir) {
            Ok(files) => {
                for file in files {
                    let shown = self
                        .settings
                        .report_dir
                        .as_ref()
                        .and_then(|r| file.strip_prefix(r).ok())
                        .unwrap_or(&file)
                        .display()
                        .to_string();
                    self.diagnostics.push(shown);
                }
            }
            Err(e) => self
                .warnings
                .push(format!("failed to collect diagnostics: {e:#}")),
        }
    }

    /// Ends the lab: stops the shell and every process the lab started, asks the backend for
    /// leftovers and tears it down, and fills in the lab report.
    fn finish(mut self, result: &mut LabResult) {
        self.terminal.shutdown();
        for (i, number) in std::mem::take(&mut self.backgrounds) {
            let (output, truncated) = self.terminal.output(number);
            self.reports[i].output = output;
            if truncated {
                self.reports[i]
                    .output
                    .push_str("\n[labbook: output truncated]\n");
            }
        }
        let killed = procs::reap(
            self.terminal.process_groups(),
            &self.terminal.lab_marker(),
            Duration::from_secs(3),
        );
        if !killed.is_empty() {
            self.warnings.push(format!(
                "killed with SIGKILL after ignoring SIGTERM at the end of the lab: {}",
                killed.join(", ")
            ));
        }
        match self.backend.leftovers(self.lab()) {
            Ok(leftovers) => self.warnings.extend(leftovers),
            Err(e) => self
                .warnings
                .push(format!("failed to look for leftovers: {e:#}")),
        }
        if let Err(e) = self.backend.teardown() {
            self.warnings
                .push(format!("failed to tear the cluster down: {e:#}"));
        }
        self.warnings.append(&mut self.terminal.warnings);
        result.report.steps = self.reports;
        result.report.warnings = self.warnings;
        result.report.diagnostics = self.diagnostics;
        result.problems.extend(self.problems);
        if self.failed {
            result.report.status = LabStatus::Failed;
        }
    }
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

/// Lines that only say "there is no cluster": under `--cluster none` a hint explains them once,
/// and repeating them would bury the lines that matter.
const NO_CLUSTER_NOISE: [&str; 6] = [
    "connection refused",
    "The connection to the server",
    "couldn't get current server API group list",
    "Unable to connect to the server",
    "Cannot connect to the Docker daemon",
    "Kubernetes cluster unreachable",
];

/// The part of a failing step's output worth showing on the console: the end (where errors
/// are), or, when a hint already explains that there is no cluster, the lines that are not
/// connection errors.
fn output_excerpt(label: &str, output: &str, no_cluster: bool) -> String {
    let all: Vec<&str> = output.trim_end().lines().collect();
    if no_cluster {
        let kept: Vec<&str> = all
            .iter()
            .copied()
            .filter(|l| !NO_CLUSTER_NOISE.iter().any(|n| l.contains(n)))
            .take(5)
            .collect();
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
        for (no_cluster, present, absent) in cases {
            let text = super::output_excerpt("output", &output, no_cluster);
            for needle in present {
                assert!(text.contains(needle), "{no_cluster}: {text}");
            }
            for needle in absent {
                assert!(!text.contains(needle), "{no_cluster}: {text}");
            }
        }
    }

    use super::*;

    #[test]
    fn excerpts_keep_the_end_or_the_first_meaningful_lines() {
        let output: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let long = output_excerpt("output", &output, false);
        assert!(long.starts_with("output (last 20 of 30 lines"));
        assert!(long.ends_with("line 30"));
        let short = output_excerpt("output", &output, true);
        assert!(short.contains("line 5\n(25 more line(s)"), "{short}");
        assert_eq!(output_excerpt("output", "a\nb\n", false), "output:\na\nb");
    }
}
