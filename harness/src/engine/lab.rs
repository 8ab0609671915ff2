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
use labbook::{Course, Lab, Step, StepKind};
use regex::Regex;

use super::console::{Console, LabProgress, Problem, error_chain, output_excerpt};
use super::interrupt::Interrupt;
use super::judge::{Judge, Judgement};
use super::redact::Redactor;
use super::session::{self, SessionRun};
use super::terminal::{self, Block, Ending, Outcome, Terminal};
use super::{procs, sandbox};
use crate::cluster::LabCluster;

/// What every lab of a run shares: the run's settings and what the run set up for its labs.
#[derive(Debug, Clone)]
pub struct RunContext {
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
    /// The `labbook` binary when lab commands are confined with Landlock.
    pub confine: Option<PathBuf>,
    /// The environment lab commands start from (before the backend's variables).
    pub env: Vec<(OsString, OsString)>,
    /// What is still kept of the run's step outputs.
    pub output_budget: std::sync::Arc<terminal::OutputBudget>,
    /// The run's cgroups, where labbook can make them.
    pub cgroups: Option<std::sync::Arc<super::cgroup::RunCgroups>>,
    /// The labs' run folders, recycled from lab to lab without `--report`.
    pub folders: std::sync::Arc<super::lab_folder::Folders>,
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
    /// What the course's sandbox copies.
    pub source: &'a sandbox::Source,
    /// The course's sandbox trees, reused from lab to lab.
    pub pool: &'a sandbox::Pool,
}

/// What running a lab produced.
pub struct LabResult {
    /// Its report.
    pub report: LabReport,
    /// Failures and warnings for the summary.
    pub problems: Vec<Problem>,
    /// Whether every process of the lab was in its cgroup, and so was reaped with it.
    pub contained: bool,
}

/// Creates the cluster backend of a lab, given its run folder.
pub type BackendFactory<'a> =
    dyn Fn(&Path, &Lab) -> anyhow::Result<Box<dyn LabCluster>> + Sync + 'a;

/// Runs one lab to the end and reports it. Never panics on lab content; problems of the lab's
/// infrastructure (sandbox, backend) fail the lab with a message.
pub fn run(
    job: &Job,
    settings: &RunContext,
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
            versions: Default::default(),
            images: None,
        },
        problems: Vec::new(),
        contained: false,
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
        printed: Vec::new(),
    }
}

struct Runner<'a> {
    job: &'a Job<'a>,
    settings: &'a RunContext,
    progress: &'a LabProgress<'a>,
    interrupt: &'a Interrupt,
    backend: Box<dyn LabCluster>,
    terminal: Terminal,
    token: String,
    lab_dir: PathBuf,
    tree: Option<sandbox::Tree>,
    home: Option<PathBuf>,
    cgroup: Option<super::cgroup::LabCgroup>,
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
        settings: &'a RunContext,
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
        settings
            .folders
            .take(&lab_dir)
            .map_err(|e| format!("failed to create the run folder {}: {e}", lab_dir.display()))?;
        let tree = job
            .pool
            .take(job.source, &settings.run_root, &|| interrupt.count() > 0)
            .map_err(|e| error_chain(&e))?;
        let start = sandbox::map_into(&course.root(), &tree.path, &course.start_dir(lab))
            .map_err(|e| error_chain(&e))?;
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
        // A private HOME and TMPDIR inside the run folder: the only places besides the sandbox
        // a confined lab can write, and never the user's own.
        for (name, dir) in [("HOME", "home"), ("TMPDIR", "tmp")] {
            let path = lab_dir.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("failed to create {}: {e}", path.display()))?;
            env.retain(|(k, _)| k != name);
            env.push((name.into(), path.into()));
        }
        let home = Some(lab_dir.join("home"));
        let confine = settings.confine.as_ref().map(|labbook| {
            let mut writable = vec![lab_dir.clone(), tree.path.clone()];
            writable.extend(
                env.iter()
                    .filter(|(k, _)| k == "KUBECONFIG")
                    .map(|(_, v)| PathBuf::from(v)),
            );
            // Only the kind backend sets it (the user's own is not inherited).
            if env.iter().any(|(k, _)| k == "KIND_CLUSTER_NAME") {
                writable.extend(super::confine::docker_sockets(&env));
            }
            super::confine::Confinement {
                labbook: labbook.clone(),
                writable,
            }
        });
        let token = format!("lb{}x{}", std::process::id(), job.index + 1);
        let cgroup = settings.cgroups.as_ref().and_then(|c| c.lab(job.index));
        let terminal = Terminal::new(terminal::Settings {
            bash: settings.bash.clone(),
            dir: lab_dir.join("control"),
            cwd: start,
            env,
            token: token.clone(),
            confine,
            cgroup: cgroup.as_ref().map(|c| c.path().to_path_buf()),
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
            tree: Some(tree),
            home,
            cgroup,
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

    /// The judge of this lab's steps.
    fn judge(&self) -> Judge<'_> {
        Judge {
            course: self.job.course,
            lab: self.job.lab,
            redactor: self.job.redactor,
            accept: self.settings.accept,
            home: self.home.as_deref(),
        }
    }

    fn run_all(&mut self) {
        let lab = self.lab();
        let mut main_stopped = false;
        for (i, step) in lab.steps.iter().enumerate() {
            match step.kind {
                StepKind::Skip | StepKind::Output | StepKind::Troubleshoot | StepKind::Cleanup => {
                    continue;
                }
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
        // A placeholder the reader fills in (`<your-namespace>`) is not shell: refuse the step
        // before running it, unless the book or an annotation gives its value.
        let variables = &self.job.course.config.variables;
        let value = |name: &str| labbook::model::placeholder_value(lab, i, variables, name);
        let unfilled: Vec<&str> = std::iter::once(step)
            .chain(inputs.iter().copied())
            .flat_map(|s| &s.placeholders)
            .filter(|p| value(&p.name).is_none())
            .map(|p| p.text.as_str())
            .collect();
        if !unfilled.is_empty() {
            let judgement = Judgement::failed(
                StepStatus::Failed,
                None,
                format!(
                    "this step holds values the reader must fill in ({}); give them under \
                     `[preprocessor.labbook] variables` in book.toml or with a `var.NAME=VALUE` \
                     annotation",
                    unfilled.join(", ")
                ),
            );
            return self.record(i, report, judgement, None, started);
        }
        let code = labbook::placeholder::fill(&code, &step.placeholders, value);
        let stdin = (step.kind == StepKind::OpenSession).then(|| {
            let filled: Vec<String> = inputs.iter().map(|s| s.filled_code(value)).collect();
            let blocks: Vec<&str> = filled.iter().map(String::as_str).collect();
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
            own_output: step.kind == StepKind::Background,
            folders: step.kind == StepKind::WriteFile,
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
            let judgement = self.judge().block(step, &outcome, limit, until.is_some());
            let judgement = super::printed::check(&self.judge(), i, &outcome.output, judgement);
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
        report.output = self.settings.output_budget.keep(output);
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
        report.printed = judgement.printed;
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
                let noise = |line: &str| self.backend.is_noise(line);
                let noise: Option<&dyn Fn(&str) -> bool> = hint.is_some().then_some(&noise);
                details.push(output_excerpt("output", &report.output, noise));
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
                None,
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
        for warning in super::printed::warnings(lab, step, &report) {
            // The message itself comes with the lab's warnings; the diff shows what differs.
            if let Some(diff) = &warning.detail {
                self.progress.detail(diff);
            }
            self.warnings
                .push(format!("{}: {}", step.id, warning.message));
            self.problems.push(warning);
        }
        self.reports[i] = report.clone();
        report
    }

    /// The backend's hint for a failing step (under `--cluster none`: the lab needs a cluster).
    fn cluster_hint(&self, step: &Step, outcome: Option<&Outcome>) -> Option<String> {
        let output = outcome.map_or("", |o| o.output.as_str());
        let failing = outcome
            .and_then(|o| o.failures.first())
            .map_or("", |f| f.command.as_str());
        self.backend.failure_hint(self.lab(), step, output, failing)
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
        let (output, judgement) =
            session::judge_input(&self.judge(), step, session_id, session, part);
        let judgement = super::printed::check(&self.judge(), i, &output, judgement);
        report.output = output;
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
        // The process tree while the shell still holds it (a `setsid` daemon whose parent has
        // exited is its orphan, adopted by labbook: see procs::adopt_orphans).
        let shells = self.terminal.process_groups().to_vec();
        // A cgroup that holds every shell holds everything the lab started: no need to look
        // through every process of the machine (their trees, groups and environments).
        let in_cgroup = self.cgroup.is_some() && self.terminal.in_cgroup();
        result.contained = in_cgroup;
        let mut tree = if in_cgroup {
            Vec::new()
        } else {
            procs::descendants(&self.terminal.shell_pid().into_iter().collect::<Vec<_>>())
        };
        self.terminal.shutdown();
        for (i, number) in std::mem::take(&mut self.backgrounds) {
            let (output, truncated) = self.terminal.output(number);
            self.reports[i].output = self.settings.output_budget.keep(output);
            if truncated {
                self.reports[i]
                    .output
                    .push_str("\n[labbook: output truncated]\n");
            }
        }
        // Whatever left the lab's sessions, groups and environment is still in its cgroup.
        let (groups, marker) = match &self.cgroup {
            Some(cgroup) if in_cgroup => {
                tree.extend(cgroup.members());
                (Vec::new(), String::new())
            }
            _ => {
                tree.extend(procs::adopted(Some(&shells), &shells));
                (shells, self.terminal.lab_marker())
            }
        };
        let killed = procs::reap(&groups, &marker, &tree, Duration::from_secs(3));
        if !killed.is_empty() {
            self.warnings.push(format!(
                "killed with SIGKILL after ignoring SIGTERM at the end of the lab: {}",
                killed.join(", ")
            ));
        }
        if let Some(cgroup) = self.cgroup.take()
            && !cgroup.remove()
        {
            result.contained = false;
            self.warnings
                .push("failed to empty and remove the lab's cgroup".into());
        }
        // Every process of the lab is gone: its tree can be reset for the next lab.
        if let Some(tree) = self.tree.take() {
            self.job.pool.give(tree);
        }
        match self.backend.leftovers(self.lab()) {
            Ok(leftovers) => self.warnings.extend(leftovers),
            Err(e) => self
                .warnings
                .push(format!("failed to look for leftovers: {e:#}")),
        }
        result.report.images = self.backend.images();
        if let Err(e) = self.backend.teardown() {
            self.warnings
                .push(format!("failed to tear the cluster down: {e:#}"));
        }
        self.warnings.append(&mut self.terminal.warnings);
        // Without --report nobody opens the lab's run folder again: the next lab gets it, unless
        // a process of this lab may have escaped its reaping (no cgroup held them all) and could
        // still write there.
        self.settings.folders.give(&self.lab_dir, result.contained);
        result.report.steps = self.reports;
        result.report.warnings = self.warnings;
        result.report.diagnostics = self.diagnostics;
        result.problems.extend(self.problems);
        if self.failed {
            result.report.status = LabStatus::Failed;
        }
    }
}
