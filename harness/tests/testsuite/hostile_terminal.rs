//! Hostile labs against the terminal and the process handling of `labbook run`, through the
//! binary, on the fixtures in `fixtures/hostile/terminal/` (see `fixtures/README.md`): traps and
//! names that could hide failures, a shell that lost its files, output floods, heredocs written
//! before a `cd`, strict modes, a pod shell's exit status, daemons that hide from the harness,
//! and signals to labbook itself.
//!
//! Each test copies the fixtures into a temporary folder, which is also the labs' `TMPDIR`, so
//! that nothing is written into the repository. Labs write the pids of the processes they start
//! into `PIDS_DIR`, so that the tests can check by pid that none survives.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::{Labbook, copy_dir, repo, report_json};

/// A temporary copy of `fixtures/hostile/terminal/`.
struct Hostile {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Hostile {
    fn new() -> Hostile {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("course");
        let fixtures = repo().join("fixtures/hostile/terminal");
        copy_dir(&fixtures, &root);
        std::fs::create_dir_all(tmp.path().join("pids")).expect("pids dir");
        std::fs::create_dir_all(tmp.path().join("tmp")).expect("tmp dir");
        Hostile { tmp, root }
    }

    fn pids(&self) -> PathBuf {
        self.tmp.path().join("pids")
    }

    fn temp(&self) -> PathBuf {
        self.tmp.path().join("tmp")
    }

    fn report_dir(&self) -> PathBuf {
        self.tmp.path().join("report")
    }

    /// `labbook run <args>` from the course folder; with `report`, `--report <tmp>/report`.
    fn command(&self, args: &[&str], report: bool) -> Command {
        let mut command = Labbook::new()
            .arg("run")
            .args(args)
            .args(["--cluster", "none"])
            // The labs write the pids they start into the test's folder, outside their sandbox,
            // which confinement forbids (hostile_fs.rs tests confinement itself).
            .args(["--confine", "off"])
            .current_dir(&self.root)
            .env("TMPDIR", self.temp())
            .env("PIDS_DIR", self.pids())
            .env_remove("GITHUB_ACTIONS")
            .command();
        if report {
            command.arg("--report").arg(self.report_dir());
        }
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args, true).output().expect("labbook runs");
        Run::new(output, &self.report_dir())
    }

    fn spawn(&self, chapter: &str, report: bool) -> Child {
        self.command(&[chapter], report)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("labbook starts")
    }

    /// Waits (a guard against a hang, not a timing assertion) for the lab to write `name`.
    fn wait_pid(&self, name: &str) -> i32 {
        let path = self.pids().join(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "{name} was never written");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Run {
    code: i32,
    stderr: String,
    report: Value,
}

impl Run {
    fn new(output: Output, report_dir: &Path) -> Run {
        let report = report_json(report_dir);
        Run {
            code: output.status.code().unwrap_or(-1),
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            report,
        }
    }

    /// The step `id` of any lab of the run.
    fn step(&self, id: &str) -> &Value {
        self.report["labs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|lab| lab["steps"].as_array())
            .flatten()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}: {}", self.stderr))
    }

    fn status(&self, id: &str) -> &str {
        self.step(id)["status"].as_str().unwrap_or("")
    }

    fn failure(&self, id: &str) -> &str {
        self.step(id)["failure"].as_str().unwrap_or("")
    }

    fn output(&self, id: &str) -> &str {
        self.step(id)["output"].as_str().unwrap_or("")
    }
}

/// Whether a process is still running (a zombie has exited).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Waits for labbook to exit (a guard against a hang) and collects its output.
fn finish(mut child: Child, report_dir: &Path) -> Run {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("labbook did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::new(child.wait_with_output().expect("output"), report_dir)
}

#[test]
fn a_labs_own_err_trap_is_chained_not_a_way_to_hide_failures() {
    let hostile = Hostile::new();
    let run = hostile.run(&["own-err-trap.md"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("install-a-trap-1"), "passed");
    assert_eq!(run.status("fail-later-1"), "failed", "{}", run.stderr);
    assert!(
        run.failure("fail-later-1")
            .contains("`false` failed with exit code 1 at own-err-trap.md:15")
    );
    // The lab's own handler still runs, and sees the failing status.
    assert!(
        run.output("fail-later-1")
            .contains("the lab noticed status 1")
    );
}

#[test]
fn blocks_of_multi_byte_characters_reach_the_shell_whole_in_any_locale() {
    // The shell reads a block by its length; in a UTF-8 locale a length in bytes read as
    // characters would swallow the next header.
    for locale in ["C.UTF-8", "C"] {
        let hostile = Hostile::new();
        let output = hostile
            .command(&["non-ascii.md"], true)
            .env("LANG", locale)
            .env("LC_ALL", locale)
            .output()
            .expect("labbook runs");
        let run = Run::new(output, &hostile.report_dir());
        assert_eq!(run.code, 0, "{locale}: {}", run.stderr);
        assert_eq!(run.output("greet-1"), "grüße, 世界 ✓\n", "{locale}");
        assert_eq!(run.status("check-the-greeting-1"), "passed", "{locale}");
        assert_eq!(run.output("check-the-greeting-1"), "plain again\n");
    }
}

#[test]
fn functions_named_like_the_harness_helpers_hide_nothing() {
    let hostile = Hostile::new();
    let run = hostile.run(&["internal-names.md"]);
    assert_eq!(run.status("define-helpers-1"), "passed", "{}", run.stderr);
    assert_eq!(run.status("fail-later-1"), "failed", "{}", run.stderr);
    assert!(run.failure("fail-later-1").contains("internal-names.md:15"));
}

#[test]
fn a_shell_without_file_descriptors_fails_the_next_step_clearly() {
    let hostile = Hostile::new();
    let run = hostile.run(&["ulimit.md"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.status("say-something-1"), "failed", "{}", run.stderr);
    assert!(
        run.failure("say-something-1").contains("ulimit -n"),
        "{}",
        run.failure("say-something-1")
    );
}

#[test]
fn the_terminal_survives_a_lab_that_unsets_its_marker_token_and_pwd_under_set_u() {
    let hostile = Hostile::new();
    let run = hostile.run(&["unset-marker.md"]);
    for step in [
        "the-next-step-s-processes-carry-it-again-1",
        "the-working-folder-is-still-known-1",
    ] {
        assert_eq!(run.status(step), "passed", "{step}: {}", run.stderr);
    }
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_until_match_after_megabytes_of_output_is_seen() {
    let hostile = Hostile::new();
    let run = hostile.run(&["late-until.md"]);
    assert_eq!(
        run.status("flood-then-ready-1"),
        "stopped",
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn written_files_are_read_where_the_shell_wrote_them() {
    let hostile = Hostile::new();
    let run = hostile.run(&["heredoc-cd.md", "--accept"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let snapshots = hostile.root.join("snapshots");
    let read = |name: &str| std::fs::read_to_string(snapshots.join(name)).expect("accepted");
    assert!(read("heredoc-cd__write-a-setting-inside-app-1.snap").ends_with("---\nmode=hostile\n"));
    assert!(read("heredoc-cd__write-a-file-there-1.snap").ends_with("---\nwhere=odd\n"));
}

#[test]
fn an_unbound_variable_is_named_with_its_line() {
    let hostile = Hostile::new();
    let run = hostile.run(&["set-u.md"]);
    let failure = run.failure("use-a-variable-nobody-set-1");
    assert!(failure.contains("$NOBODY_SET_THIS"), "{failure}");
    assert!(failure.contains("set-u.md:8"), "{failure}");
    assert!(!failure.contains("set -e?"), "{failure}");
    // The problem list points at the line, not at the fence.
    assert!(run.stderr.contains("\n  set-u.md:8: "), "{}", run.stderr);
}

#[test]
fn pipefail_blames_the_command_that_failed() {
    let hostile = Hostile::new();
    let run = hostile.run(&["pipefail.md"]);
    let failure = run.failure("search-for-something-absent-1");
    assert!(
        failure.starts_with("`grep -q gamma` (command 2 of the pipeline"),
        "{failure}"
    );
    assert!(failure.contains("pipefail.md:7"), "{failure}");
}

#[test]
fn a_pod_shells_exit_status_is_not_a_missing_cluster() {
    let hostile = Hostile::new();
    let run = hostile.run(&["session-exit.md"]);
    let failure = run.failure("open-a-shell-in-the-pod-1");
    assert!(failure.contains("exit code 3"), "{failure}");
    assert!(!failure.contains("--cluster kind"), "{failure}");
    assert!(!run.stderr.contains("--cluster kind"), "{}", run.stderr);
}

#[test]
fn a_daemon_without_environment_or_session_does_not_survive_its_lab() {
    let hostile = Hostile::new();
    let run = hostile.run(&["orphan.md"]);
    assert_eq!(run.status("start-it-1"), "passed", "{}", run.stderr);
    let pid = hostile.wait_pid("orphan.pid");
    assert!(!alive(pid), "the setsid daemon {pid} outlived labbook");
}

/// Whether this process may create a cgroup v2 below its own, as labbook does for each lab.
fn cgroups_available() -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(mount) = mounts.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        after
            .starts_with("cgroup2 ")
            .then(|| before.split_whitespace().nth(4))
            .flatten()
    }) else {
        return false;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(relative) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    let probe = Path::new(mount)
        .join(relative.trim_start_matches('/'))
        .join(format!("labbook-test-{}", std::process::id()));
    std::fs::create_dir(&probe).is_ok() && std::fs::remove_dir(&probe).is_ok()
}

/// Where cgroups can be made, the daemon is stopped at the end of its own lab: the next lab of
/// the run no longer sees it.
#[test]
fn a_daemon_without_environment_or_session_is_reaped_with_its_lab() {
    if !cgroups_available() {
        eprintln!("skipped: this machine does not let labbook create a cgroup");
        return;
    }
    let hostile = Hostile::new();
    let run = hostile.run(&["orphan.md", "orphan-gone.md"]);
    assert_eq!(run.status("start-it-1"), "passed", "{}", run.stderr);
    assert_eq!(
        run.status("check-that-it-is-gone-1"),
        "passed",
        "{}",
        run.stderr
    );
}

/// SIGHUP (the terminal closed) and SIGQUIT end labbook like SIGTERM: the step stops, cleanup
/// runs, nothing is left running.
#[test]
fn hangup_and_quit_run_cleanup_and_leave_no_process() {
    for signal in [Signal::SIGHUP, Signal::SIGQUIT] {
        let hostile = Hostile::new();
        let child = hostile.spawn("signals.md", true);
        let pid = hostile.wait_pid("step.pid");
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal");
        let run = finish(child, &hostile.report_dir());
        assert_ne!(run.code, 0);
        assert!(!alive(pid), "{signal}: the step's process outlived labbook");
        assert_eq!(
            run.status("cleanup-1"),
            "passed",
            "{signal}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(hostile.pids().join("cleanup.txt")).expect("cleanup ran"),
            "cleanup ran\n"
        );
    }
}

/// SIGKILL leaves everything behind; the next run finds it, stops it and says so.
///
/// Every labbook that starts reaps what killed runs left, and the other tests run labbook at the
/// same time: one of their runs may get there first. That attempt then proves nothing about
/// "the next run" and is made again; three attempts that all lose the race fail the test.
#[test]
fn the_next_run_reaps_what_a_killed_run_left() {
    for _attempt in 0..3 {
        let hostile = Hostile::new();
        let mut child = hostile.spawn("killed.md", false);
        let step = hostile.wait_pid("step.pid");
        let daemon = hostile.wait_pid("daemon.pid");
        let run_folders = || -> Vec<PathBuf> {
            std::fs::read_dir(hostile.temp())
                .expect("tmp")
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("labbook-run-"))
                })
                .collect()
        };
        assert_eq!(run_folders().len(), 1);
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        // The killed labbook cleaned nothing: its run folder is still there.
        assert_eq!(run_folders().len(), 1, "a killed labbook cleans nothing");
        if !(alive(step) && alive(daemon)) {
            continue;
        }

        let next = hostile
            .command(&["quick.md"], false)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&next.stderr);
        assert_eq!(next.status.code(), Some(0), "{stderr}");
        // Only the next run could remove the folder in this test's own temporary folder.
        assert!(run_folders().is_empty(), "{:?}", run_folders());
        let deadline = Instant::now() + Duration::from_secs(10);
        while (alive(step) || alive(daemon)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!alive(step), "the killed run's step survived the next run");
        assert!(
            !alive(daemon),
            "the killed run's daemon survived the next run"
        );
        if stderr.contains("left by an earlier labbook run that was killed") {
            return;
        }
    }
    panic!("in three attempts, another test's run always reaped the killed run's processes first");
}

/// The block is not padded with blank lines any more; failures, `$LINENO`-based messages and
/// the step's line still name Markdown lines, also far down a chapter.
#[test]
fn failures_far_down_a_chapter_name_their_markdown_lines() {
    let hostile = Hostile::new();
    let mut chapter = String::from("# Far down\n\n");
    for i in 0..3000 {
        chapter.push_str(&format!("Line {i} of prose.\n"));
    }
    chapter.push_str("\n## Break\n\n```bash\necho one\nnot-a-command-here\n```\n");
    std::fs::write(hostile.root.join("far.md"), &chapter).expect("write");
    let line = chapter
        .lines()
        .position(|l| l == "not-a-command-here")
        .expect("line")
        + 1;
    let run = hostile.run(&["far.md"]);
    let failure = run.failure("break-1");
    assert!(failure.contains(&format!("far.md:{line}")), "{failure}");
    assert!(
        run.output("break-1").contains(&format!(
            "bash: line {line}: not-a-command-here: command not found"
        )),
        "{}",
        run.output("break-1")
    );
    // No control file per step: the run folder holds no block file.
    let control = hostile.report_dir().join("run");
    let blocks: Vec<PathBuf> = walk(&control)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    assert!(blocks.is_empty(), "{blocks:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Only real tables are re-aligned in snapshots; a progress line keeps its spacing.
#[test]
fn only_real_tables_are_realigned() {
    let hostile = Hostile::new();
    let run = hostile.run(&["table.md", "--accept"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let snapshot = std::fs::read_to_string(
        hostile
            .root
            .join("snapshots/table__verify-a-progress-line-and-a-real-table-1.snap"),
    )
    .expect("accepted");
    assert!(
        snapshot.ends_with("---\nprogress  10%\nNAME    READY\nweb-1   1/1\n"),
        "{snapshot}"
    );
}
