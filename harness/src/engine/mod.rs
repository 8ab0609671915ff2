//! `labbook run`: the execution engine.
//!
//! Each lab runs like a careful reader would run it: in a fresh copy of its course tree (the
//! sandbox), in one terminal whose state carries from block to block, against the cluster its
//! backend provides, with every step given a time limit and every process it starts stopped by
//! the end of the lab. Verify and write-file outputs are redacted and compared with insta
//! snapshots. The run ends with a summary, and `--report DIR` writes `report.json` and
//! `junit.xml`.
//!
//! Modules: [`terminal`] (the shell) and [`procs`] (stopping processes), [`lab`] (one lab's
//! step order), [`judge`] (a step's status from its outcome and expectation), [`session`]
//! (interactive sessions and their transcripts), [`expect`], [`redact`], [`snapshots`],
//! [`sandbox`], [`reports`], [`console`] (progress, summary and failure text) and [`interrupt`].

pub mod atomic;
pub mod cgroup;
pub mod cgroup_spawn;
pub mod confine;
pub mod console;
pub mod expect;
pub mod interrupt;
pub mod judge;
pub mod lab;
pub mod lab_folder;
pub mod printed;
pub mod procs;
pub mod redact;
pub mod reports;
pub mod sandbox;
pub mod session;
pub mod snapshots;
pub mod terminal;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use labbook::report::{LabStatus, Report};
use labbook::{Course, Lab};

use crate::cluster::Backend;
use console::{Console, Problem};
use interrupt::Interrupt;
use redact::Redactor;

/// What `labbook run` is asked to do, in the engine's own terms (the command line builds it from
/// its arguments; the engine never sees them).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Chapter files, folders or book folders.
    pub paths: Vec<PathBuf>,
    /// Write the outputs as the accepted snapshots instead of comparing.
    pub accept: bool,
    /// Continue past failed verify steps.
    pub keep_going: bool,
    /// Default time limit of a step.
    pub step_timeout: Duration,
    /// Default time limit of a watch.
    pub watch_limit: Duration,
    /// How many labs run at once.
    pub jobs: usize,
    /// Where report.json and junit.xml go (the sandboxes are then kept in DIR/run/).
    pub report: Option<PathBuf>,
    /// Whether lab commands are confined with Landlock.
    pub confine: confine::Confine,
    /// Run only this shard of the labs.
    pub partition: Option<crate::partition::Partition>,
    /// Run only part of each lab (`--only`, `--from`, `--until`, `--no-setup`).
    pub steps: crate::step_filter::StepFilter,
    /// The versions this run stands for (`--versions`), recorded in the report.
    pub versions: BTreeMap<String, String>,
    /// Whether the console colours statuses and diffs (decided by [`crate::color::enabled`]).
    pub color: bool,
}

/// The run ended because this machine cannot run labs at all (exit code 3), not because of the
/// course or the command line.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// No bash to run the labs in.
    #[error("failed to find bash on PATH; labbook runs labs in bash")]
    NoBash,
    /// No temporary folder to put the sandboxes in.
    #[error("failed to create a temporary folder for the sandboxes")]
    NoTempDir(#[source] std::io::Error),
}

/// One id per `labbook run`, shared by every lab's cluster name, so that two runs never collide
/// and the clusters of one run are easy to find (`kind get clusters | grep labbook-<run>`).
fn run_id() -> &'static str {
    static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN_ID.get_or_init(|| {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("{seconds:x}{:x}", std::process::id() % 0x1000)
    })
}

/// Environment variables a lab must not inherit from the person running labbook: shell start-up
/// hooks, exported functions, the cluster they use, and labbook's own markers.
fn inherited(name: &str) -> bool {
    !(matches!(
        name,
        "BASH_ENV"
            | "ENV"
            | "CDPATH"
            | "PROMPT_COMMAND"
            | "OLDPWD"
            | "PWD"
            | "SHLVL"
            | "KUBECONFIG"
            | "KIND_CLUSTER_NAME"
    ) || name.starts_with("BASH_FUNC_")
        || name.starts_with("LABBOOK_"))
}

/// Finds an executable program on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    labbook::tools::which(program, &std::env::var_os("PATH")?)
}

fn on_signal(count: usize) {
    if count == 1 {
        eprintln!(
            "\nlabbook: interrupted: stopping the running steps, then running cleanup \
             (press Ctrl+C again to skip cleanup)"
        );
    } else if count == 2 {
        eprintln!("\nlabbook: interrupted again: skipping cleanup, tearing down");
    }
}

/// Runs `labbook run` on `backend`: `Ok(true)` when every lab passed and nothing interrupted the
/// run. `Err` is bad usage or unreadable input, or an [`EnvironmentError`].
pub fn run(args: &Settings, backend: Backend) -> anyhow::Result<bool> {
    let started = Instant::now();
    anyhow::ensure!(args.jobs >= 1, "--jobs must be at least 1");
    anyhow::ensure!(
        args.step_timeout >= Duration::from_secs(1),
        "--step-timeout must be at least 1 second"
    );
    let mut courses: Vec<Course> = args
        .paths
        .iter()
        .map(|p| labbook::course::load(p))
        .collect::<Result<_, _>>()?;
    crate::plan::require_labs(&args.paths, &courses)?;
    crate::partition::filter(&mut courses, args.partition);
    for lab in courses.iter_mut().flat_map(|c| c.labs.iter_mut()) {
        args.steps.apply(lab)?;
    }
    let redactors: Vec<Redactor> = courses
        .iter()
        .map(|c| Redactor::new(&c.config.redactions))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<(usize, usize)> = courses
        .iter()
        .enumerate()
        // Only labs run, and so only labs reach the summary, report.json and junit.xml.
        .flat_map(|(c, course)| {
            (0..course.labs.len())
                .filter(|&l| course.labs[l].is_lab())
                .map(move |l| (c, l))
        })
        .collect();
    if let Some(name) = backend.reused() {
        // One kept cluster holds one lab's state; a second lab would run on top of it.
        anyhow::ensure!(
            jobs.len() == 1,
            "--reuse {name} runs one lab on the cluster it kept, but these paths hold {} labs: \
             name one chapter",
            jobs.len()
        );
    }
    let before_accept = args
        .accept
        .then(|| crate::snapshots::BeforeAccept::take(&courses));
    let bash = which("bash").ok_or(EnvironmentError::NoBash)?;

    // What a run killed with SIGKILL left (it could not clean up): found, reaped, and said.
    procs::adopt_orphans();
    for done in cgroup::reap_stale()
        .into_iter()
        .chain(procs::reap_stale(&std::env::temp_dir()))
    {
        eprintln!("labbook: {done}");
    }
    let confine = match args.confine {
        confine::Confine::Off => None,
        mode => match confine::probe() {
            confine::Support::Available(_) => {
                Some(std::env::current_exe().context("failed to find the labbook binary")?)
            }
            confine::Support::Missing(why) if mode == confine::Confine::Require => {
                anyhow::bail!("refusing to run with --confine=require: {why}")
            }
            confine::Support::Missing(why) => {
                eprintln!(
                    "labbook: lab commands are not confined ({why}); they can write anywhere you can"
                );
                None
            }
        },
    };

    // Sandboxes live in a temporary folder, or under --report DIR/run/<run id>/ to be kept for
    // debugging; each run has its own folder, so runs sharing DIR never touch each other's.
    let _temporary;
    let _run_folder;
    let run_root = match &args.report {
        Some(dir) => {
            reports::check_targets(dir)?;
            let folder = reports::RunFolder::create(dir, run_id())?;
            let path = folder.path.clone();
            _run_folder = folder;
            path
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("labbook-run-")
                .tempdir()
                .map_err(EnvironmentError::NoTempDir)?;
            let path = dir.path().to_path_buf();
            procs::record_owner(&path).context("failed to write the run record")?;
            _temporary = dir;
            path
        }
    };
    // Absolute: lab commands run elsewhere, and their KUBECONFIG lives in here.
    let run_root = sandbox::absolute(&run_root);
    let mut exclude = vec![run_root.clone()];
    exclude.extend(args.report.iter().cloned());

    let interrupt = Interrupt::default();
    interrupt.install(on_signal)?;
    let console = Console::new(args.jobs.min(jobs.len().max(1)), args.color);
    let started_at = reports::now_rfc3339();
    let settings = lab::RunContext {
        accept: args.accept,
        keep_going: args.keep_going,
        step_timeout: args.step_timeout,
        watch_limit: args.watch_limit,
        bash: bash.clone(),
        run_root,
        report_dir: args.report.as_deref().map(sandbox::absolute),
        exclude,
        confine,
        env: std::env::vars_os()
            .filter(|(k, _)| k.to_str().is_some_and(inherited))
            .collect::<Vec<(OsString, OsString)>>(),
        output_budget: Default::default(),
        cgroups: cgroup::RunCgroups::create().map(std::sync::Arc::new),
        // Nobody opens a lab's run folder after the run without --report.
        folders: std::sync::Arc::new(lab_folder::Folders::new(args.report.is_none())),
    };
    let sources: Vec<sandbox::Source> = courses
        .iter()
        .map(|c| sandbox::Source::new(&c.root(), &settings.exclude))
        .collect();
    let pools: Vec<sandbox::Pool> = (0..courses.len())
        .map(|c| sandbox::Pool::new(jobs.iter().filter(|(course, _)| *course == c).count()))
        .collect();
    // What `--preload` loads into each lab's cluster, read once from the model.
    let istio = args.versions.get("istio").map(String::as_str);
    let preload: BTreeMap<PathBuf, Vec<String>> = if backend.preloads() {
        courses
            .iter()
            .flat_map(|c| {
                c.labs
                    .iter()
                    .map(move |l| (l.path.clone(), labbook::images::preload(c, l, istio)))
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let factory = |dir: &Path, lab: &Lab| {
        let images = preload.get(&lab.path).map_or(&[][..], Vec::as_slice);
        backend.for_lab(run_id(), dir, lab, images)
    };

    let results: Mutex<Vec<Option<lab::LabResult>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(c, l)) = jobs.get(i) else { break };
                    let job = lab::Job {
                        course: &courses[c],
                        lab: &courses[c].labs[l],
                        index: i,
                        redactor: &redactors[c],
                        source: &sources[c],
                        pool: &pools[c],
                    };
                    let result = lab::run(&job, &settings, &factory, &console, &interrupt);
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(result);
                    }
                }
            });
        }
    });
    let results: Vec<lab::LabResult> = results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    // Orphans no lab could claim (a daemon that left its lab's process group and environment).
    // A lab whose cgroup held all its processes left none: looking through every process of
    // the machine is needed only when one did not.
    let orphans = if results.len() == jobs.len() && results.iter().all(|r| r.contained) {
        Vec::new()
    } else {
        procs::adopted(None, &[])
    };
    let killed = if orphans.is_empty() {
        Vec::new()
    } else {
        procs::reap(&[], "", &orphans, Duration::from_secs(2))
    };
    if !orphans.is_empty() {
        console.print(&format!(
            "labbook: stopped {} process(es) the labs left running{}",
            orphans.len(),
            if killed.is_empty() {
                String::new()
            } else {
                format!(" (with SIGKILL: {})", killed.join(", "))
            }
        ));
    }

    let mut problems: Vec<Problem> = Vec::new();
    let mut labs = Vec::new();
    for result in results {
        problems.extend(result.problems);
        let mut report = result.report;
        report.versions = args.versions.clone();
        labs.push(report);
    }
    let report = Report {
        version: labbook::report::CONTRACT_VERSION,
        started_at,
        backend: backend.name().into(),
        // Only the report files show them (and asking bash costs a process).
        tools: if args.report.is_some() {
            tool_versions(&bash)
        } else {
            BTreeMap::new()
        },
        versions: args.versions.clone(),
        labs,
    };
    if let Some(dir) = &args.report {
        reports::write(dir, &report)?;
    }
    if let (true, Some(partition)) = (jobs.is_empty(), args.partition) {
        console.print(&format!(
            "labbook: shard {partition} has no labs: nothing to run, the shard passes"
        ));
    } else if jobs.is_empty() {
        console.print("labbook: no labs found (no chapters with runnable blocks)");
    }
    console.summary(&report.labs, &problems, started.elapsed());
    if let Some(before) = &before_accept {
        console.print(&before.summary(&report));
    }
    let all_passed = report.labs.iter().all(|l| l.status == LabStatus::Passed);
    Ok(all_passed && interrupt.count() == 0)
}

/// Versions known without slowing the run down: labbook's own and bash's.
fn tool_versions(bash: &Path) -> BTreeMap<String, String> {
    let mut tools = BTreeMap::new();
    tools.insert("labbook".into(), env!("CARGO_PKG_VERSION").into());
    if let Ok(out) = std::process::Command::new(bash)
        .args(["--noprofile", "--norc", "-c", "printf %s \"$BASH_VERSION\""])
        .output()
    {
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !version.is_empty() {
            tools.insert("bash".into(), version);
        }
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_environment_leaves_out_hooks_and_clusters() {
        let cases = [
            ("PATH", true),
            ("HOME", true),
            ("KUBECONFIG", false),
            ("BASH_ENV", false),
            ("BASH_FUNC_foo%%", false),
            ("LABBOOK_LAB", false),
            ("GITHUB_ACTIONS", true),
        ];
        for (name, expected) in cases {
            assert_eq!(inherited(name), expected, "{name}");
        }
    }
}
