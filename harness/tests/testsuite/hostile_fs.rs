//! Hostile labs and hostile course trees against the file system, through the binary:
//! confinement (Landlock), links in the course, the reused sandbox, discovery of FIFOs, devices
//! and link loops, shared `--report` folders and snapshot writes.
//!
//! Every test copies its fixture from `fixtures/hostile/` into a temporary folder; links and
//! FIFOs are made here at run time, never committed. Tests that need Landlock skip with a printed
//! reason where the kernel lacks it, and fail instead when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Labbook, copy_dir, repo, report_json};

fn fixture_root() -> PathBuf {
    repo().join("fixtures/hostile")
}

/// A temporary copy of `fixtures/hostile/<name>` as `<tmp>/course`.
struct Course {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Course {
    fn new(name: &str) -> Course {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("course");
        copy_dir(&fixture_root().join(name), &root);
        Course { tmp, root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn report_dir(&self) -> PathBuf {
        self.tmp.path().join("report")
    }

    /// `labbook <args>` from the course folder, with `TMPDIR` in the test's folder.
    fn command(&self, args: &[&str]) -> Command {
        Labbook::new()
            .args(args)
            .current_dir(&self.root)
            .env("TMPDIR", self.tmp.path())
            .env_remove("LABBOOK_PRETEND_NO_LANDLOCK")
            .command()
    }

    /// `labbook run <args> --report <tmp>/report`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(&["run"]);
        command.args(args).arg("--report").arg(self.report_dir());
        for (k, v) in env {
            command.env(k, v);
        }
        Run::new(output_within(command, 120), &self.report_dir())
    }
}

/// Runs `command`, killing it (and failing the test) after `secs`: a hang must not hang CI.
fn output_within(mut command: Command, secs: u64) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("labbook starts");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("labbook did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    report: Value,
}

impl Run {
    fn new(output: Output, report_dir: &Path) -> Run {
        let report = report_json(report_dir);
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            report,
        }
    }

    fn step(&self, chapter: &str, index: usize) -> &Value {
        let lab = self.report["labs"]
            .as_array()
            .and_then(|labs| {
                labs.iter()
                    .find(|l| l["path"].as_str().is_some_and(|p| p.ends_with(chapter)))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no lab {chapter}; stdout:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            });
        &lab["steps"][index]
    }

    fn status(&self, chapter: &str, index: usize) -> String {
        self.step(chapter, index)["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn output(&self, chapter: &str, index: usize) -> String {
        self.step(chapter, index)["output"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Whether the kernel has Landlock, asked directly (not through the binary under test): a
/// short-lived thread confines itself. Without it, confinement tests skip with a reason, unless
/// `CI=true`: CI machines must have it.
fn landlock_or_skip(test: &str) -> bool {
    use landlock::{ABI, Access, AccessFs, LandlockStatus, Ruleset, RulesetAttr};
    let status = std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::V1))
            .and_then(|r| r.create())
            .and_then(|r| r.restrict_self())
            .map(|s| s.landlock)
    })
    .join()
    .expect("probe thread");
    if let Ok(LandlockStatus::Available { .. }) = status {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: CI must have Landlock, but the kernel says {status:?}"
    );
    eprintln!("SKIPPED {test}: this kernel cannot confine labs: {status:?}");
    false
}

#[test]
fn a_lab_cannot_write_into_the_checkout() {
    if !landlock_or_skip("a_lab_cannot_write_into_the_checkout") {
        return;
    }
    // The shell enters its confinement itself when it is created in its cgroup; without
    // cgroups it is started through `labbook __confine`.
    for cgroups in [&[][..], &[("LABBOOK_PRETEND_NO_CGROUPS", "1")][..]] {
        let course = Course::new("escape");
        let victim = course.path("victim.txt");
        std::fs::write(&victim, "the author's file\n").expect("victim");
        let mut env = vec![("VICTIM", victim.to_str().expect("utf-8"))];
        env.extend_from_slice(cgroups);
        let run = course.run(&["escape.md", "--keep-going"], &env);
        assert_eq!(run.code, 1, "{cgroups:?}: {}", run.stderr);
        assert_eq!(run.status("escape.md", 0), "failed");
        assert!(
            run.output("escape.md", 0).contains("Permission denied"),
            "{cgroups:?}: {}",
            run.output("escape.md", 0)
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "the author's file\n",
            "{cgroups:?}"
        );
    }

    // The lab's own world stays writable.
    let course = Course::new("escape");
    std::fs::write(course.path("escape.md"), {
        let text = std::fs::read_to_string(course.path("escape.md")).expect("chapter");
        text.replace("echo \"overwritten by the lab\" > \"$VICTIM\"", "true")
    })
    .expect("rewrite");
    let run = course.run(&["escape.md"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.output("escape.md", 1), "kept\n");
}

#[test]
fn confinement_missing_is_said_once_or_refused_when_required() {
    let course = Course::new("reuse");
    let pretend = [("LABBOOK_PRETEND_NO_LANDLOCK", "1")];
    let run = course.run(&["--confine=require", "."], &pretend);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("refusing to run with --confine=require"),
        "{}",
        run.stderr
    );
    assert!(!course.report_dir().join("report.json").exists());

    let run = course.run(&["."], &pretend);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr.matches("lab commands are not confined").count(),
        1,
        "said once for two labs: {}",
        run.stderr
    );
}

#[test]
fn absolute_links_into_the_course_stay_in_the_sandbox_and_links_out_are_not_written() {
    let course = Course::new("links");
    std::fs::create_dir_all(course.path("data")).expect("mkdir");
    std::fs::write(course.path("data/target.txt"), "the author's data\n").expect("target");
    std::os::unix::fs::symlink(course.path("data/target.txt"), course.path("inside-link"))
        .expect("inside link");
    let outside = course.tmp.path().join("outside.txt");
    std::fs::write(&outside, "outside the course\n").expect("outside");
    std::os::unix::fs::symlink(&outside, course.path("outside-link")).expect("outside link");

    let run = course.run(&["links.md", "--keep-going"], &[]);
    assert_eq!(
        run.output("links.md", 0),
        "written through the inside link\n"
    );
    assert_eq!(
        std::fs::read_to_string(course.path("data/target.txt")).expect("target"),
        "the author's data\n",
        "the inside link was written through to the checkout"
    );
    assert_eq!(
        run.output("links.md", 1).trim(),
        outside.to_str().expect("utf-8"),
        "the outside link is copied as a link"
    );
    if landlock_or_skip("absolute_links…: writing through the outside link") {
        assert_eq!(run.status("links.md", 2), "failed");
        assert_eq!(
            std::fs::read_to_string(&outside).expect("outside"),
            "outside the course\n"
        );
    }
}

#[test]
fn each_lab_gets_the_course_as_it_is_without_snapshots() {
    let course = Course::new("reuse");
    let run = course.run(&["."], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.output("2-see.md", 0),
        "original\nconfig.txt\nremove-me.txt\nrun.sh\n755\n",
        "what the first lab did is gone"
    );
    assert_eq!(run.output("2-see.md", 1), "no snapshots folder\n");
    assert_eq!(run.output("2-see.md", 2), "nothing of the first lab\n");
    assert_eq!(
        std::fs::read_to_string(course.path("app/config.txt")).expect("config"),
        "original\n"
    );
    // Without --report the second lab gets the first one's run folder, emptied, and its sandbox
    // reset: one lab at a time, so that it follows the first.
    let output = output_within(course.command(&["run", ".", "--jobs", "1"]), 120);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn discovery_refuses_fifos_and_devices_and_does_not_follow_links_out_or_round() {
    let course = Course::new("reuse");
    std::os::unix::fs::symlink(".", course.path("self")).expect("self link");
    std::os::unix::fs::symlink("/", course.path("root")).expect("root link");
    let plan = output_within(course.command(&["plan", "--format", "json", "."]), 60);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let json: Value = serde_json::from_slice(&plan.stdout).expect("json");
    assert_eq!(json["labs"].as_array().map(Vec::len), Some(2), "{json}");

    let fifo = course.path("pipe.md");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    for args in [&["plan", "."][..], &["run", "."], &["run", "/dev/zero"]] {
        let out = output_within(course.command(args), 30);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let named = if args[1] == "/dev/zero" {
            "/dev/zero:1:"
        } else {
            "pipe.md:1:"
        };
        assert!(
            stderr.contains(named) && stderr.contains("not a regular file"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn report_folders_keep_what_labbook_did_not_create() {
    let course = Course::new("reuse");
    let users = course.report_dir().join("run");
    std::fs::create_dir_all(&users).expect("mkdir");
    std::fs::write(users.join("notes.txt"), "mine\n").expect("user file");
    let run = course.run(&["."], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(users.join("notes.txt")).expect("still there"),
        "mine\n"
    );
    // A second run removes the first run's folder (labbook made it), never the user's file.
    let run = course.run(&["."], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let left: Vec<_> = std::fs::read_dir(&users)
        .expect("run folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "the user's file and this run's folder: {left:?}"
    );
    assert!(left.contains(&"notes.txt".to_string()));

    // A path labbook needs that is taken: refuse before running anything.
    let course = Course::new("reuse");
    std::fs::create_dir_all(course.report_dir()).expect("mkdir");
    std::fs::write(course.report_dir().join("run"), "a file\n").expect("file");
    let run = course.run(&["."], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("refusing to use"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(course.report_dir().join("run")).expect("kept"),
        "a file\n"
    );
}

#[test]
fn two_runs_sharing_a_report_folder_keep_their_own_sandboxes() {
    let course = Course::new("shared-report");
    let start = |hold: &str| {
        let mut command = course.command(&["run", "slow.md", "--report"]);
        command
            .arg(course.report_dir())
            .env("HOLD_SECONDS", hold)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.spawn().expect("labbook starts")
    };
    let first = start("3");
    std::thread::sleep(Duration::from_millis(1000));
    let second = start("0");
    for child in [second, first] {
        let out = child.wait_with_output().expect("output");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn verify_snapshot(course: &Course) -> PathBuf {
    course.path("snapshots/verify__verify-the-greeting-1.snap")
}

#[test]
fn a_pending_snapshot_linked_to_the_accepted_one_never_rewrites_it() {
    let course = Course::new("snapshots");
    let run = course.run(&["verify.md", "--accept"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let accepted = verify_snapshot(&course);
    let before = std::fs::read_to_string(&accepted).expect("accepted");
    let pending = course.path("snapshots/verify__verify-the-greeting-1.snap.new");
    std::os::unix::fs::symlink(&accepted, &pending).expect("link");

    let run = course.run(&["verify.md"], &[("GREETING", "changed")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&accepted).expect("accepted"),
        before
    );
    let meta = std::fs::symlink_metadata(&pending).expect("pending");
    assert!(!meta.file_type().is_symlink(), "the link was replaced");
    assert!(
        std::fs::read_to_string(&pending)
            .expect("pending")
            .ends_with("changed\n")
    );
}

#[test]
fn unreadable_snapshots_say_what_is_wrong() {
    let cases: [(&[u8], &str); 3] = [
        (b"---\nsource: \"verify.md\"\n---\nhello\xff\n", "not UTF-8"),
        (
            b"---\nsource: \"verify.md\"\nassertion_li",
            "no closing `---`",
        ),
        (b"hello\n", "does not start with"),
    ];
    for (bytes, problem) in cases {
        let course = Course::new("snapshots");
        std::fs::create_dir_all(course.path("snapshots")).expect("mkdir");
        std::fs::write(verify_snapshot(&course), bytes).expect("snapshot");
        let run = course.run(&["verify.md"], &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        let failure = run.step("verify.md", 0)["failure"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            failure.contains(problem) && !failure.contains("no accepted snapshot"),
            "{problem}: {failure}"
        );
        assert_eq!(
            std::fs::read(verify_snapshot(&course)).expect("unchanged"),
            bytes
        );
    }
}

/// Runs accepting outputs of different lengths at once, while the test reads the `.snap` over
/// and over: every read, and the file they leave, is one run's whole snapshot. A snapshot
/// truncated and then written in place is seen empty or half written (and two such writes can
/// leave the start of a shorter output over the end of a longer one); one replaced by rename
/// under a lock never is.
#[test]
fn concurrent_accepts_only_ever_show_one_runs_whole_snapshot() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let course = Course::new("snapshots");
    let snapshot = course.path("snapshots/race__verify-the-letters-1.snap");
    let letters = [b'a', b'b', b'c', b'd', b'e', b'f'];
    // Multiples of the fold width: a snapshot of run `i` holds bytes(i) letters and a newline
    // after each 100 of them.
    let bytes = |i: usize| 2_000_000 + 100 * i;
    // None: a whole snapshot of one run; else what is wrong with it.
    let problem = |text: &[u8]| -> Option<String> {
        let body = text
            .strip_prefix(b"---\n")
            .and_then(|rest| {
                let end = rest.windows(5).position(|w| w == b"\n---\n")?;
                Some(&rest[end + 5..])
            })
            .ok_or_else(|| format!("no whole header in {} bytes", text.len()));
        let body = match body {
            Ok(body) => body,
            Err(e) => return Some(e),
        };
        let Some(i) = body
            .first()
            .and_then(|first| letters.iter().position(|l| l == first))
        else {
            return Some(format!("a body of {} bytes from no run", body.len()));
        };
        let whole = body.len() == bytes(i) / 100 * 101
            && body.iter().all(|b| *b == letters[i] || *b == b'\n');
        (!whole).then(|| {
            format!(
                "a body of {} bytes starting with run {:?}'s output of {}",
                body.len(),
                letters[i] as char,
                bytes(i) / 100 * 101
            )
        })
    };
    for round in 0..3 {
        let done = AtomicBool::new(false);
        let seen = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut seen = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    if let Ok(text) = std::fs::read(&snapshot)
                        && let Some(problem) = problem(&text)
                    {
                        seen.push(problem);
                    }
                }
                seen
            });
            let children: Vec<_> = letters
                .iter()
                .enumerate()
                .map(|(i, letter)| {
                    let report = course.tmp.path().join(format!("report-{round}-{i}"));
                    let mut command = course.command(&["run", "race.md", "--accept", "--report"]);
                    command
                        .arg(report)
                        .env("LETTER", (*letter as char).to_string())
                        .env("BYTES", bytes(i).to_string())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped());
                    command.spawn().expect("labbook starts")
                })
                .collect();
            let outputs: Vec<_> = children
                .into_iter()
                .map(|child| child.wait_with_output().expect("output"))
                .collect();
            done.store(true, Ordering::SeqCst);
            for out in outputs {
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            reader.join().expect("the reader")
        });
        assert!(
            seen.is_empty(),
            "round {round}: a reader saw a snapshot that is not one run's whole file: {seen:?}"
        );
        let text = std::fs::read(&snapshot).expect("snapshot");
        assert_eq!(problem(&text), None, "round {round}: the snapshot left");
    }
}

/// A ShellCheck double written at run time: logs each call and reports one warning on line 2 of
/// every file it is given.
fn logging_shellcheck(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("shellcheck.log");
    let script = dir.join("shellcheck");
    let text = format!(
        r#"#!/bin/sh
printf '%s\n' "$*" >>'{log}'
if [ "$1" = --version ]; then printf 'ShellCheck\nversion: 9.9.9\n'; exit 0; fi
sep=''
printf '{{"comments":['
for f in "$@"; do
  case "$f" in --*) continue ;; esac
  printf '%s{{"file":"%s","line":2,"level":"warning","code":2000,"message":"fake"}}' "$sep" "$f"
  sep=','
done
printf ']}}\n'
exit 1
"#,
        log = log.display()
    );
    std::fs::write(&script, text).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, log)
}

#[test]
fn lint_results_are_cached_by_block_and_dialect() {
    let course = Course::new("reuse");
    let (shellcheck, log) = logging_shellcheck(course.tmp.path());
    let cache = course.tmp.path().join("cache");
    let lint = || {
        let mut command = course.command(&["lint", "--format", "json", "."]);
        command
            .env("LABBOOK_SHELLCHECK", &shellcheck)
            .env("XDG_CACHE_HOME", &cache);
        let out = output_within(command, 60);
        let json: Value = serde_json::from_slice(&out.stdout).expect("json");
        let fake: Vec<String> = json["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .filter(|d| d["rule"] == "shellcheck/SC2000")
            .map(|d| format!("{}:{}", d["path"].as_str().unwrap_or(""), d["line"]))
            .collect();
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let checked = calls
            .lines()
            .filter(|l| !l.starts_with("--version"))
            .flat_map(|l| {
                l.split(' ')
                    .filter(|a| a.ends_with(".sh"))
                    .map(str::to_string)
            })
            .count();
        (fake, checked)
    };
    let (cold, checked) = lint();
    // The two chapters of `reuse/` hold five blocks.
    assert_eq!(checked, 5, "every block is checked once");
    assert_eq!(cold.len(), 5, "{cold:?}");
    let (warm, checked) = lint();
    assert_eq!(checked, 0, "an unchanged course starts no check");
    assert_eq!(warm, cold, "the same findings, at the same lines");

    // Moving a block (other Markdown lines) keeps its findings; changing one checks it alone.
    let chapter = course.path("2-see.md");
    let text = std::fs::read_to_string(&chapter).expect("chapter");
    let moved = text.replacen("\n\n```bash", "\n\nSome new prose.\n\n```bash", 1);
    std::fs::write(
        &chapter,
        moved.replace("test ! -e snapshots", "test ! -d snapshots"),
    )
    .expect("edit");
    let (edited, checked) = lint();
    assert_eq!(checked, 1, "only the changed block is checked");
    assert_eq!(edited.len(), 5, "{edited:?}");
    assert_ne!(edited, cold, "the moved block's findings follow it");
}
