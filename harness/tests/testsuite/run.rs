//! End-to-end tests of `labbook run` through the binary, on cluster-free fixtures.
//!
//! Every test copies its fixture into a temporary folder first and puts the sandboxes there
//! (`--report <tmp>/report`, `TMPDIR`), so that nothing is ever written into the repository.
//! Labs that start processes get `PIDS_DIR`, a folder where they write pids, so that the tests
//! can check by pid that no process outlives its lab.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Labbook, Outcome, copy_dir, repo, report_json};

/// A temporary folder holding a copy of `fixtures/<name>`.
struct Fixture {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join(name);
        copy_dir(&repo().join("fixtures").join(name), &root);
        std::fs::create_dir_all(tmp.path().join("pids")).expect("pids dir");
        Fixture { tmp, root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn report_dir(&self) -> PathBuf {
        self.tmp.path().join("report")
    }

    fn pids(&self) -> PathBuf {
        self.tmp.path().join("pids")
    }

    /// `labbook run <args> --report <tmp>/report`, from the fixture's folder.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        Run::new(self.labbook(args, env).run(), &self.report_dir())
    }

    /// `labbook run <args> --report <tmp>/report` from the fixture's folder, with the
    /// sandboxes and `PIDS_DIR` in the temporary folder.
    fn labbook(&self, args: &[&str], env: &[(&str, &Path)]) -> Labbook {
        let mut labbook = Labbook::new()
            .arg("run")
            .args(args)
            .arg("--report")
            .arg(self.report_dir())
            .current_dir(&self.root)
            .env("TMPDIR", self.tmp.path())
            .env("PIDS_DIR", self.pids())
            .env_remove("GITHUB_ACTIONS");
        for (key, value) in env {
            labbook = labbook.env(key, value);
        }
        labbook
    }

    fn pid(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.pids().join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}"))
            .trim()
            .parse()
            .expect("a pid")
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    report: Value,
}

impl Run {
    fn new(outcome: Outcome, report_dir: &Path) -> Run {
        let report = report_json(report_dir);
        Run {
            code: outcome.code.unwrap_or(-1),
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            report,
        }
    }

    /// The report of the step `id` in the lab whose path ends with `chapter`.
    fn step(&self, chapter: &str, id: &str) -> &Value {
        let lab = self.lab(chapter);
        lab["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["id"] == id))
            .unwrap_or_else(|| panic!("no step {id} in {chapter}: {lab}"))
    }

    fn lab(&self, chapter: &str) -> &Value {
        self.report["labs"]
            .as_array()
            .and_then(|labs| {
                labs.iter()
                    .find(|l| l["path"].as_str().is_some_and(|p| p.ends_with(chapter)))
            })
            .unwrap_or_else(|| panic!("no lab {chapter} in the report; stderr:\n{}", self.stderr))
    }

    fn status(&self, chapter: &str, id: &str) -> &str {
        self.step(chapter, id)["status"].as_str().unwrap_or("")
    }

    fn output(&self, chapter: &str, id: &str) -> &str {
        self.step(chapter, id)["output"].as_str().unwrap_or("")
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

/// The 1-based line of the first line of `file` that contains `text`.
fn line_of(file: &Path, text: &str) -> usize {
    let source = std::fs::read_to_string(file).expect("fixture");
    1 + source
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{text} not in {}", file.display()))
}

fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).expect("read"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn sample_course_passes_twice_without_changing_its_snapshots() {
    let course = Fixture::new("sample-course");
    let before = snapshot_files(&course.path("snapshots"));
    assert!(
        before.len() >= 4,
        "the sample course has accepted snapshots"
    );

    let first = course.run(&["."]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = course.run(&[".", "--jobs", "2"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        snapshot_files(&course.path("snapshots")),
        before,
        "a passing run leaves the snapshots as they were, and writes no .snap.new"
    );

    // Every kind, as the report shows it.
    let run = &second;
    let files = "src/files.md";
    let expected = [
        ("lab-setup-1", "passed"),
        ("write-a-configuration-file-1", "passed"),
        ("start-a-ticker-in-the-background-1", "passed"),
        ("follow-the-log-1", "stopped"),
        ("verify-the-configuration-1", "passed"),
        ("verify-the-configuration-2", "passed"),
        ("verify-the-configuration-3", "failed"),
        ("troubleshooting-1", "skipped"),
        ("cleanup-1", "passed"),
        ("next-steps-1", "skipped"),
    ];
    for (id, status) in expected {
        assert_eq!(run.status(files, id), status, "{id}");
    }
    assert_eq!(run.lab(files)["status"], "passed", "an optional failure");
    assert!(run.output(files, "follow-the-log-1").contains("tick"));

    let pods = "src/pods.md";
    let expected = [
        ("deploy-the-web-application-2", "stopped"),
        ("deploy-the-web-application-3", "stopped"),
        ("verify-the-pods-1", "passed"),
        ("open-a-shell-in-a-debug-pod-1", "passed"),
        ("open-a-shell-in-a-debug-pod-2", "passed"),
        ("open-a-shell-in-a-debug-pod-3", "passed"),
        ("verify-the-service-answers-1", "passed"),
        ("verify-the-traffic-split-1", "passed"),
        ("cleanup-1", "passed"),
    ];
    for (id, status) in expected {
        assert_eq!(run.status(pods, id), status, "{id}");
    }
    // The session received its input on stdin, without a TTY (the double refuses -t then).
    let input = run.output(pods, "open-a-shell-in-a-debug-pod-2");
    assert!(input.contains("hello from the debug pod\n3\n"), "{input}");
    assert!(
        run.output(pods, "open-a-shell-in-a-debug-pod-1")
            .contains("hello from the debug pod")
    );
    // The watch stopped by `until=` stopped at the first Running pod.
    let watch = run.output(pods, "deploy-the-web-application-2");
    assert!(watch.contains("Running"), "{watch}");

    // The heredoc's file is the write-file snapshot, `$HOME` kept literally by the quotes.
    let snap =
        std::fs::read_to_string(course.path("snapshots/files__write-a-configuration-file-1.snap"))
            .expect("write-file snapshot");
    assert!(
        snap.ends_with("listen = 8080\nroot = $HOME/www\nworkers = 4\n"),
        "{snap}"
    );
}

#[test]
fn redactions_make_two_runs_with_random_pod_names_agree() {
    let course = Fixture::new("sample-course");
    std::fs::remove_dir_all(course.path("snapshots")).expect("remove accepted snapshots");
    let accepted = course.run(&["src/pods.md", "--accept"]);
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    let snap = std::fs::read_to_string(course.path("snapshots/pods__verify-the-pods-1.snap"))
        .expect("accepted");
    assert!(
        snap.contains("web-[hash]-[id]   1/1     Running   0          [age]   [ip]"),
        "{snap}"
    );
    let raw = accepted.output("src/pods.md", "verify-the-pods-1");
    assert!(!raw.contains("[hash]"), "the report keeps the raw output");

    let again = course.run(&["src/pods.md"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_ne!(
        again.output("src/pods.md", "verify-the-pods-1"),
        raw,
        "the double invents new names and ages on every run"
    );
}

#[test]
fn state_carries_from_block_to_block_like_one_terminal() {
    let fixture = Fixture::new("run");
    let run = fixture.run(&["state.md"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.output("state.md", "use-them-2"),
        "place/inner\n\
         not exported / exported / exported / not-in-env\n\
         hey!\n\
         pipefail       \ton\n\
         nullglob       \ton\n\
         hello from an alias\n\
         0077\n\
         two blue\n"
    );
    // After `exit`, a new shell restores everything the old one had.
    assert_eq!(run.status("state.md", "leave-the-shell-1"), "passed");
    assert_eq!(
        run.output("state.md", "still-the-same-terminal-1"),
        "place/inner\nnot exported / exported\nagain!\nhello from an alias\n"
    );
}

#[test]
fn labs_never_see_the_users_kubeconfig() {
    let fixture = Fixture::new("run");
    let home = fixture.tmp.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).expect("home");
    std::fs::write(home.join(".kube/config"), "user's cluster").expect("config");
    let user_config = fixture.tmp.path().join("user-kubeconfig");
    std::fs::write(&user_config, "user's other cluster").expect("config");

    let run = fixture.run_with(
        &["env.md"],
        &[("KUBECONFIG", &user_config), ("HOME", &home)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let output = run.output("env.md", "intro-1");
    let kubeconfig = output
        .lines()
        .find_map(|l| l.strip_prefix("KUBECONFIG="))
        .expect("the lab prints KUBECONFIG");
    assert!(
        Path::new(kubeconfig).starts_with(fixture.report_dir().join("run")),
        "the kubeconfig is in the run folder: {kubeconfig}"
    );
    assert_ne!(Path::new(kubeconfig), user_config);
    assert!(
        output.contains("\n0\n"),
        "the kubeconfig is empty: {output}"
    );
    assert_eq!(
        std::fs::read_to_string(home.join(".kube/config")).expect("still there"),
        "user's cluster"
    );
    // The lab runs in the sandbox, not in the fixture.
    let pwd = output
        .lines()
        .find_map(|l| l.strip_prefix("PWD="))
        .expect("PWD");
    assert!(
        Path::new(pwd).starts_with(fixture.report_dir().join("run")),
        "{pwd}"
    );
}

#[test]
fn a_relative_report_folder_still_gives_labs_a_usable_kubeconfig() {
    let fixture = Fixture::new("run");
    let output = Labbook::new()
        .args(["run", "run/env.md", "--report", "relative-report"])
        .current_dir(fixture.tmp.path())
        .env("TMPDIR", fixture.tmp.path())
        .run();
    let run = Run::new(output, &fixture.tmp.path().join("relative-report"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let output = run.output("env.md", "intro-1");
    let kubeconfig = output
        .lines()
        .find_map(|l| l.strip_prefix("KUBECONFIG="))
        .expect("the lab prints KUBECONFIG");
    assert!(Path::new(kubeconfig).is_absolute(), "{kubeconfig}");
    assert!(output.contains("\n0\n"), "the lab could read it: {output}");
}

#[test]
fn placeholders_are_filled_or_their_step_refused_and_output_never_runs() {
    let fixture = Fixture::new("run");
    let run = fixture.run(&["placeholders.md"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let filled = run.step("placeholders.md", "intro-1");
    assert_eq!(filled["status"], "passed", "{filled}");
    assert!(
        filled["output"]
            .as_str()
            .unwrap_or("")
            .contains("hello, world"),
        "{filled}"
    );
    let refused = run.step("placeholders.md", "intro-2");
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["failure"]
            .as_str()
            .unwrap_or("")
            .contains("<your-name>"),
        "{refused}"
    );
    // Refused before running: its first line never ran.
    assert!(!fixture.path("ran-anyway.txt").exists());
    let output = run.step("placeholders.md", "intro-1-output");
    assert_eq!(output["kind"], "output", "{output}");
    assert_eq!(output["status"], "skipped", "{output}");
}

#[test]
fn a_syntax_error_fails_its_step() {
    let fixture = Fixture::new("run");
    let run = fixture.run(&["syntax.md"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let step = run.step("syntax.md", "intro-1");
    assert_eq!(step["status"], "failed");
    assert!(
        step["failure"]
            .as_str()
            .unwrap_or("")
            .contains("syntax error"),
        "{step}"
    );
}

#[test]
fn a_failing_command_is_named_with_its_markdown_line_then_troubleshoot_and_cleanup_run() {
    let course = Fixture::new("failing-course");
    let chapter = course.path("src/command.md");
    let line = line_of(&chapter, "ls /definitely/not/here");
    let run = course.run(&["src/command.md"]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    let location = format!("command.md:{line}");
    assert!(
        run.stderr.contains("`ls /definitely/not/here` failed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&location), "{}", run.stderr);
    let broken = run.step("command.md", "break-1");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["exit_code"], 2);
    assert!(broken["failure"].as_str().unwrap_or("").contains(&location));
    // Every line of the block ran, as in a terminal.
    assert!(
        broken["output"]
            .as_str()
            .unwrap_or("")
            .contains("after the failure, still run")
    );
    assert_eq!(run.status("command.md", "break-2"), "skipped");
    assert_eq!(run.status("command.md", "verify-1"), "skipped");
    assert_eq!(run.status("command.md", "troubleshooting-1"), "passed");
    assert_eq!(
        run.output("command.md", "troubleshooting-1"),
        "troubleshooting with hello\n"
    );
    assert_eq!(run.status("command.md", "cleanup-1"), "passed");
    assert_eq!(
        run.output("command.md", "cleanup-1"),
        "cleaning up after hello\n"
    );
    assert_eq!(run.lab("command.md")["status"], "failed");

    // Under GitHub Actions the failure is also an annotation on the command's line.
    let github = course.run_with(
        &["src/command.md"],
        &[("GITHUB_ACTIONS", Path::new("true"))],
    );
    assert!(
        github
            .stdout
            .contains(&format!("::error file=src/command.md,line={line}::")),
        "{}",
        github.stdout
    );
}

#[test]
fn a_changed_output_fails_without_touching_the_accepted_snapshot() {
    let course = Fixture::new("failing-course");
    let accepted = course.path("snapshots/snapshot__verify-the-greeting-1.snap");
    let pending = course.path("snapshots/snapshot__verify-the-greeting-1.snap.new");
    let bytes = std::fs::read(&accepted).expect("accepted snapshot");

    let run = course.run(&["src/snapshot.md"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(std::fs::read(&accepted).expect("still there"), bytes);
    let new = std::fs::read_to_string(&pending).expect("a pending snapshot");
    assert!(
        new.starts_with("---\nsource: src/snapshot.md\nassertion_line: 8\n"),
        "{new}"
    );
    assert!(new.ends_with("---\nhello, new world\n"), "{new}");
    for expected in [
        "snapshot.md:8\n",
        "-hello, old world",
        "+hello, new world",
        "labbook review",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert_eq!(
        run.status("snapshot.md", "verify-the-farewell-1"),
        "skipped",
        "the first failure ends the main sequence"
    );
    assert_eq!(run.status("snapshot.md", "cleanup-1"), "passed");

    // --keep-going continues past failed verifies: the farewell has no snapshot yet.
    let keep_going = course.run(&["src/snapshot.md", "--keep-going"]);
    assert_eq!(keep_going.code, 1);
    let farewell = keep_going.step("snapshot.md", "verify-the-farewell-1");
    assert_eq!(farewell["status"], "failed");
    assert!(
        farewell["failure"]
            .as_str()
            .unwrap_or("")
            .contains("--accept"),
        "{farewell}"
    );
    assert_eq!(std::fs::read(&accepted).expect("still there"), bytes);

    // --accept takes both; the next run passes and leaves no pending files.
    let accept = course.run(&["src/snapshot.md", "--accept"]);
    assert_eq!(accept.code, 0, "{}", accept.stderr);
    assert!(
        std::fs::read_to_string(&accepted)
            .expect("accepted")
            .ends_with("---\nhello, new world\n")
    );
    let after = course.run(&["src/snapshot.md"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(!pending.exists());
}

#[test]
fn a_hanging_step_is_killed_at_its_limit_and_no_process_survives_the_lab() {
    let course = Fixture::new("failing-course");
    // The lab writes its pids into the test's folder, which confinement would forbid.
    let run = course.run(&["src/limits.md", "--confine=off"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let hang = run.step("limits.md", "wait-forever-1");
    assert_eq!(hang["status"], "timed-out");
    assert!(
        !hang["output"]
            .as_str()
            .unwrap_or("")
            .contains("not reached"),
        "the rest of the block is dropped, as after Ctrl+C"
    );
    assert_eq!(run.status("limits.md", "start-helpers-1"), "passed");
    assert_eq!(run.status("limits.md", "cleanup-1"), "passed");
    for name in ["hang.pid", "background.pid", "escaped.pid"] {
        let pid = course.pid(name);
        assert!(!alive(pid), "{name} ({pid}) outlived the lab");
    }
}

#[test]
fn watches_stop_at_the_watch_limit_or_time_out_waiting_for_until() {
    let fixture = Fixture::new("run");
    let run = fixture.run(&["watches.md", "--watch-limit", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.status("watches.md", "a-loop-that-never-ends-1"),
        "stopped"
    );
    assert!(
        run.output("watches.md", "a-loop-that-never-ends-1")
            .starts_with("tick\n")
    );
    let never = run.step("watches.md", "a-watch-whose-condition-never-comes-1");
    assert_eq!(never["status"], "timed-out");
    assert!(
        never["failure"]
            .as_str()
            .unwrap_or("")
            .contains("never matched")
    );
}

#[test]
fn ctrl_c_stops_the_step_runs_cleanup_and_leaves_no_orphans() {
    let fixture = Fixture::new("run");
    let mut child = fixture
        // The lab writes its pids into the test's folder, which confinement would forbid.
        .labbook(&["interrupt.md", "--confine=off"], &[])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("labbook starts");
    let step_pid = fixture.pids().join("step.pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !step_pid.exists() {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = fixture.pid("step.pid");
    assert!(alive(pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    // A guard against a hang, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("labbook did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::new(
        child.wait_with_output().expect("output").into(),
        &fixture.report_dir(),
    );
    assert_ne!(run.code, 0);
    assert!(!alive(pid), "the step's process outlived the interrupt");
    assert_eq!(run.lab("interrupt.md")["status"], "interrupted");
    assert_eq!(
        run.status("interrupt.md", "run-for-a-long-time-1"),
        "failed"
    );
    assert_eq!(run.status("interrupt.md", "check-1"), "skipped");
    assert_eq!(run.status("interrupt.md", "cleanup-1"), "passed");
    assert_eq!(
        std::fs::read_to_string(fixture.pids().join("cleanup.txt")).expect("cleanup ran"),
        "cleanup ran\n"
    );
}

#[test]
fn reports_follow_the_contract() {
    let course = Fixture::new("failing-course");
    let run = course.run(&[".", "--jobs", "3", "--step-timeout", "30"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let report = &run.report;
    for key in ["started_at", "backend", "tools", "labs"] {
        assert!(report.get(key).is_some(), "{key}");
    }
    assert_eq!(report["backend"], "none");
    assert!(report["tools"]["bash"].is_string());
    let labs = report["labs"].as_array().expect("labs");
    let titles: Vec<&str> = labs.iter().filter_map(|l| l["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "A failing command",
            "Snapshots that do not match",
            "Limits",
            "Needs a cluster"
        ],
        "labs in SUMMARY order, even when run in parallel"
    );
    for lab in labs {
        for key in ["path", "title", "status", "duration_ms", "steps"] {
            assert!(lab.get(key).is_some(), "{key} in {lab}");
        }
        for step in lab["steps"].as_array().expect("steps") {
            for key in [
                "id",
                "kind",
                "line",
                "status",
                "exit_code",
                "duration_ms",
                "output",
            ] {
                assert!(keys(step).contains(&key.to_string()), "{key} in {step}");
            }
        }
    }
    let junit = std::fs::read_to_string(course.report_dir().join("junit.xml")).expect("junit.xml");
    for expected in [
        "<testsuites",
        "src/command.md\" tests=\"6\"",
        "<testcase name=\"break-1\"",
        "<failure",
        "<skipped",
    ] {
        assert!(junit.contains(expected), "{expected} in {junit}");
    }
}

#[test]
fn a_cluster_lab_under_cluster_none_says_it_needs_kind() {
    let course = Fixture::new("failing-course");
    let run = course.run(&["src/cluster.md"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("run this lab with --cluster kind"),
        "{}",
        run.stderr
    );

    // Without kind on PATH the kind backend fails the lab with a message that says what to do.
    let kind = course.run_with(
        &["src/cluster.md", "--cluster", "kind"],
        &[("PATH", Path::new("/usr/bin:/bin"))],
    );
    assert_eq!(kind.code, 1);
    assert!(
        kind.stderr
            .contains("is kind installed? `labbook doctor` tells"),
        "{}",
        kind.stderr
    );
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let fixture = Fixture::new("run");
    let missing = fixture.run(&["no-such-chapter.md"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no-such-chapter.md"),
        "{}",
        missing.stderr
    );

    let bad = repo().join("fixtures/bad/bad-annotation.md");
    let annotation = fixture.run(&[bad.to_str().expect("utf-8 path")]);
    assert_eq!(annotation.code, 2);
    assert!(
        annotation.stderr.contains("bad-annotation.md:"),
        "{}",
        annotation.stderr
    );

    for args in [
        &["state.md", "--jobs", "0"][..],
        &["state.md", "--cluster", "nope"],
    ] {
        assert_eq!(fixture.run(args).code, 2, "{args:?}");
    }
    for entry in std::fs::read_dir(repo().join("fixtures/bad")).expect("bad fixtures") {
        let path = entry.expect("entry").path();
        let run = fixture.run(&[path.to_str().expect("utf-8 path")]);
        assert_eq!(run.code, 2, "{}: {}", path.display(), run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn a_machine_without_bash_exits_3_with_its_own_message() {
    let fixture = Fixture::new("run");
    let empty = fixture.tmp.path().join("empty-path");
    std::fs::create_dir_all(&empty).expect("mkdir");
    fixture
        .labbook(&["env.md"], &[("PATH", &empty)])
        .run()
        .code(3)
        .stderr_has("error: failed to find bash on PATH; labbook runs labs in bash");
}

#[test]
fn no_writable_temporary_folder_exits_3() {
    let fixture = Fixture::new("run");
    let missing = fixture.tmp.path().join("no-such-folder");
    Labbook::new()
        .args(["run", "run/env.md"])
        .current_dir(fixture.tmp.path())
        .env("TMPDIR", &missing)
        .run()
        .code(3)
        .stderr_has("error: failed to create a temporary folder for the sandboxes: ");
}
