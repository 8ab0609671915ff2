//! How labbook fits the tools people already use, through the binary: banners, reports and JUnit
//! only for labs, JUnit that Jenkins' xUnit schema accepts, insta-compatible snapshot files,
//! `labbook review`, orphan snapshots, GitHub summaries and annotations.
//!
//! Every test copies `fixtures/ecosystem` (or writes a course) into a temporary folder first, so
//! nothing is written into the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{Labbook, copy_dir, repo};

/// A copy of `fixtures/<name>` in a temporary folder, as `<tmp>/course`.
struct Course {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Course {
    fn fixture(name: &str) -> Course {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("course");
        copy_dir(&repo().join("fixtures").join(name), &root);
        Course { tmp, root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn report_dir(&self) -> PathBuf {
        self.tmp.path().join("report")
    }

    /// `labbook <args>` in the course folder, with `stdin` as its input.
    fn labbook_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Done {
        use std::io::Write as _;
        let mut command = Labbook::new().args(args).current_dir(&self.root).command();
        command
            .env("TMPDIR", self.tmp.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("CLICOLOR_FORCE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("labbook starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin written");
        Done::new(child.wait_with_output().expect("labbook runs"))
    }

    fn labbook(&self, args: &[&str]) -> Done {
        self.labbook_with(args, "", &[])
    }

    /// `labbook run <args> --report <tmp>/report`, on `.` when `args` name no path.
    fn run(&self, args: &[&str]) -> Done {
        let report = self.report_dir();
        let mut all = vec!["run"];
        if args.iter().all(|a| a.starts_with("--")) {
            all.push(".");
        }
        all.extend_from_slice(args);
        all.extend_from_slice(&["--report", report.to_str().expect("utf-8")]);
        self.labbook(&all)
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_dir().join("report.json"))
            .expect("report.json written");
        serde_json::from_str(&text).expect("report.json parses")
    }

    fn junit(&self) -> String {
        std::fs::read_to_string(self.report_dir().join("junit.xml")).expect("junit.xml written")
    }
}

struct Done {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Done {
    fn new(output: Output) -> Done {
        Done {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Validates an XML file against an XSD with xmllint (Debian's libxml2-utils, which `.ci/run`
/// installs); `Err` holds xmllint's complaints.
fn xmllint(xml: &Path, xsd: &Path) -> Result<(), String> {
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .arg(xml)
        .output()
        .expect("xmllint is installed (libxml2-utils; .ci/run installs it)");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

// ---- 1. Only labs get report entries, suites and summary counts ----

#[test]
fn only_labs_are_run_reported_and_counted() {
    let course = Course::fixture("ecosystem");
    let done = course.run(&[]);
    assert_eq!(done.code, 1, "{}", done.all());
    let report = course.report();
    let paths: Vec<&str> = report["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .map(|l| l["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        ["./src/passing.md", "./src/failing.md"],
        "{report:#}"
    );
    assert!(
        done.stderr
            .contains("labbook: 2 lab(s): 1 passed, 1 failed"),
        "{}",
        done.stderr
    );
    for not_a_lab in ["Introduction", "Writing labs"] {
        assert!(!done.stderr.contains(not_a_lab), "{}", done.stderr);
    }
    let junit = course.junit();
    assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
    assert!(!junit.contains("README.md") && !junit.contains("authoring.md"));
}

// ---- 2. JUnit identity, detail and schema ----

#[test]
fn junit_names_steps_by_id_and_carries_the_failure_detail() {
    let course = Course::fixture("ecosystem");
    let done = course.run(&["--keep-going"]);
    assert_eq!(done.code, 1, "{}", done.all());
    let junit = course.junit();
    let chapter = "./src/failing.md";
    // Identity: the step id, no line, no kind; classname and the suite's file are the chapter.
    for id in ["verify-the-columns-1", "break-1", "afterwards-1"] {
        assert!(
            junit.contains(&format!("<testcase name=\"{id}\" classname=\"{chapter}\"")),
            "{id}: {junit}"
        );
    }
    assert!(!junit.contains("(line "), "{junit}");
    assert!(!junit.contains("::verify"), "{junit}");
    assert!(
        junit.contains(&format!("file=\"{chapter}\"")),
        "the suite names its chapter file: {junit}"
    );
    // A snapshot failure holds the diff; a command failure names the command and its line.
    assert!(junit.contains("-colour   red\n+colour   blue"), "{junit}");
    assert!(
        junit.contains(&format!(
            "{chapter}:14\n`ls /definitely/not/here` failed with exit code 2 at {chapter}:16"
        )),
        "{junit}"
    );
    // A skipped test says why.
    assert!(
        junit.contains("<skipped message=\"not run: an earlier step failed\"/>"),
        "{junit}"
    );
}

/// TAB characters in step output reach junit.xml (quick-junit alone drops them).
#[test]
fn junit_keeps_tab_characters() {
    let course = Course::fixture("ecosystem");
    course.run(&["--keep-going"]);
    let junit = course.junit();
    assert!(junit.contains("left&#9;right"), "{junit}");
    assert!(junit.contains("name&#9;value\ncolour&#9;blue"), "{junit}");
    // And a parser reads them back as TABs: xmllint re-serializes the text content.
    let path = course.report_dir().join("junit.xml");
    let output = Command::new("xmllint")
        .args(["--xpath", "string(//testcase[@name='break-1']/system-out)"])
        .arg(&path)
        .output()
        .expect("xmllint runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("left\tright\n"), "{text:?}");
}

/// junit.xml validates against Jenkins' xUnit `junit-10.xsd` (fixtures/junit/), for a run with
/// passed, failed, skipped and snapshot-diff steps, and for an interrupted-free empty run.
#[test]
fn junit_validates_against_the_xunit_schema() {
    let xsd = repo().join("fixtures/junit/junit-10.xsd");
    let course = Course::fixture("ecosystem");
    course.run(&["--keep-going"]);
    let junit = course.report_dir().join("junit.xml");
    xmllint(&junit, &xsd).unwrap_or_else(|e| panic!("{e}\n{}", course.junit()));
    // The check has teeth: attributes the schema does not know are refused.
    let bad = course.tmp.path().join("bad.xml");
    std::fs::write(
        &bad,
        course
            .junit()
            .replacen("<testcase ", "<testcase line=\"3\" ", 1),
    )
    .expect("write");
    let refused = xmllint(&bad, &xsd).expect_err("line= is not in junit-10.xsd");
    assert!(refused.contains("'line'"), "{refused}");
}

// ---- 3. Snapshot headers: insta's own, rewritten only when the content changed ----

/// The course inside a repository (a `.git` folder above it), as `<tmp>/repo/course`.
fn in_repository() -> Course {
    let mut course = Course::fixture("ecosystem");
    let repo = course.tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).expect("mkdir .git");
    let moved = repo.join("course");
    std::fs::rename(&course.root, &moved).expect("move into the repository");
    course.root = moved;
    course
}

#[test]
fn accept_writes_insta_headers_that_insta_reads_back_byte_for_byte() {
    let course = in_repository();
    let done = course.run(&["--accept"]);
    assert!(
        done.stderr
            .contains("labbook: snapshots: 0 created, 1 updated, 1 unchanged, 0 unreferenced"),
        "{}",
        done.stderr
    );
    let file = course.path("snapshots/failing__verify-the-columns-1.snap");
    let ours = course.read("snapshots/failing__verify-the-columns-1.snap");
    assert_eq!(
        ours,
        "---\nsource: course/src/failing.md\nexpression: \"printf 'name\\\\tvalue\\\\n'\"\n---\n\
         name     value\ncolour   blue\n"
    );
    // insta's own parser reads what we wrote ...
    let snap = insta::Snapshot::from_file(&file).expect("insta parses the file");
    assert_eq!(snap.metadata().source(), Some("course/src/failing.md"));
    assert_eq!(snap.metadata().assertion_line(), None);
    assert_eq!(
        snap.metadata().expression(),
        Some("printf 'name\\tvalue\\n'")
    );
    let text = snap.as_text().expect("a text snapshot");
    assert_eq!(text.to_string(), "name     value\ncolour   blue");
    // ... and writes back the very same bytes, so `cargo insta review` and `--accept` agree.
    let resaved = course.tmp.path().join("resaved.snap");
    snap.save(&resaved).expect("insta saves");
    assert_eq!(std::fs::read_to_string(&resaved).expect("read"), ours);
}

#[test]
fn accept_rewrites_only_snapshots_whose_content_changed() {
    let course = in_repository();
    course.run(&["--accept"]);
    let before = course.read("snapshots/passing__verify-the-greeting-1.snap");
    let failing_before = course.read("snapshots/failing__verify-the-columns-1.snap");
    // Prose inserted above the blocks moves every line; no header may change for it.
    for chapter in ["src/passing.md", "src/failing.md"] {
        let text = course.read(chapter);
        let moved = text.replacen("\n\n", "\n\nA new paragraph.\n\nAnd another.\n\n", 1);
        std::fs::write(course.path(chapter), moved).expect("write");
    }
    let done = course.run(&["--accept"]);
    assert!(
        done.stderr
            .contains("labbook: snapshots: 0 created, 0 updated, 2 unchanged, 0 unreferenced"),
        "{}",
        done.stderr
    );
    assert_eq!(
        course.read("snapshots/passing__verify-the-greeting-1.snap"),
        before
    );
    assert_eq!(
        course.read("snapshots/failing__verify-the-columns-1.snap"),
        failing_before
    );
    // A new step is created, and a pending snapshot says where its block is.
    std::fs::remove_file(course.path("snapshots/passing__verify-the-greeting-1.snap")).expect("rm");
    course.run(&[]);
    let pending = course.read("snapshots/passing__verify-the-greeting-1.snap.new");
    assert!(
        pending.starts_with("---\nsource: course/src/passing.md\nassertion_line: 15\n"),
        "{pending}"
    );
    let done = course.run(&["--accept"]);
    assert!(
        done.stderr.contains("1 created, 0 updated, 1 unchanged"),
        "{}",
        done.stderr
    );
}

// ---- 4. labbook review ----

#[test]
fn review_lists_accepts_rejects_and_skips_pending_snapshots() {
    let course = Course::fixture("ecosystem");
    std::fs::remove_file(course.path("snapshots/passing__verify-the-greeting-1.snap")).expect("rm");
    let run = course.run(&[]);
    // Outside a Cargo workspace, failures name `labbook review` only.
    assert!(
        run.stderr.contains("review it with `labbook review`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("cargo insta"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("accept this output with `labbook review` or run with --accept"),
        "{}",
        run.stderr
    );

    let list = course.labbook(&["review", "--list"]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert_eq!(
        list.stdout,
        "src/failing.md:7\t./snapshots/failing__verify-the-columns-1.snap.new\n\
         src/passing.md:11\t./snapshots/passing__verify-the-greeting-1.snap.new\n"
    );

    // Skip the first, accept the second.
    let review = course.labbook_with(&["review"], "s\na\n", &[]);
    assert_eq!(review.code, 0, "{}", review.all());
    assert!(
        review.stdout.contains("Snapshot 1/2: src/failing.md:7"),
        "{}",
        review.stdout
    );
    assert!(
        review.stdout.contains("-colour   red\n+colour   blue\n"),
        "{}",
        review.stdout
    );
    assert!(
        !review.stdout.contains('\x1b'),
        "NO_COLOR: {}",
        review.stdout
    );
    assert!(
        review.stdout.contains("Snapshot 2/2: src/passing.md:11"),
        "{}",
        review.stdout
    );
    assert!(
        review.stderr.contains("1 accepted, 0 rejected, 1 skipped"),
        "{}",
        review.stderr
    );
    assert!(
        course
            .path("snapshots/failing__verify-the-columns-1.snap.new")
            .exists()
    );
    assert!(
        !course
            .path("snapshots/passing__verify-the-greeting-1.snap.new")
            .exists()
    );
    assert_eq!(
        course.read("snapshots/passing__verify-the-greeting-1.snap"),
        "---\nsource: src/passing.md\nexpression: \"echo \\\"$greeting, reader\\\"\"\n---\nhello, reader\n",
        "accepted as insta writes it: no assertion_line"
    );
    // The accepted snapshot now passes.
    let rerun = course.run(&["src/passing.md"]);
    assert!(rerun.stderr.contains("1 passed"), "{}", rerun.stderr);

    // Colour on request.
    let coloured = course.labbook_with(
        &["review"],
        "s\n",
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")],
    );
    assert!(
        coloured.stdout.contains("\x1b[31m-colour   red\x1b[0m"),
        "{}",
        coloured.stdout
    );

    let rejected = course.labbook(&["review", "--reject-all"]);
    assert!(
        rejected.stderr.contains("0 accepted, 1 rejected"),
        "{}",
        rejected.stderr
    );
    assert!(
        !course
            .path("snapshots/failing__verify-the-columns-1.snap.new")
            .exists()
    );
    assert!(
        course
            .read("snapshots/failing__verify-the-columns-1.snap")
            .contains("colour   red")
    );

    course.run(&[]);
    let all = course.labbook(&["review", "--accept-all"]);
    assert!(all.stderr.contains("1 accepted"), "{}", all.stderr);
    assert!(
        course
            .read("snapshots/failing__verify-the-columns-1.snap")
            .contains("colour   blue")
    );
    let none = course.labbook(&["review", "--list"]);
    assert!(
        none.stderr.contains("no pending snapshots"),
        "{}",
        none.stderr
    );
}

#[test]
fn failures_name_cargo_insta_inside_a_cargo_workspace() {
    let course = Course::fixture("ecosystem");
    std::fs::write(course.tmp.path().join("Cargo.toml"), "[workspace]\n").expect("write");
    let run = course.run(&[]);
    assert!(
        run.stderr
            .contains("review it with `cargo insta review` (or `labbook review`)"),
        "{}",
        run.stderr
    );
}

// ---- 5. Orphan snapshots ----

#[test]
fn unreferenced_snapshots_are_listed_and_deleted() {
    let course = Course::fixture("ecosystem");
    let orphan = course.path("snapshots/passing__old-heading-1.snap");
    std::fs::copy(
        course.path("snapshots/passing__verify-the-greeting-1.snap"),
        &orphan,
    )
    .expect("copy");
    std::fs::write(
        course.path("snapshots/passing__old-heading-1.snap.new"),
        "---\n",
    )
    .expect("w");
    // Not ours: no insta header. Never touched.
    std::fs::write(course.path("snapshots/notes.snap"), "my own notes\n").expect("write");
    let list = course.labbook(&["snapshots", "--unreferenced", "list"]);
    assert_eq!(list.code, 1, "{}", list.all());
    assert_eq!(list.stdout, "./snapshots/passing__old-heading-1.snap\n");
    // A single chapter of the book is checked against the whole book.
    let one = course.labbook(&["snapshots", "src/passing.md", "--unreferenced", "list"]);
    assert_eq!(one.stdout, list.stdout, "{}", one.all());
    let delete = course.labbook(&["snapshots", "--unreferenced", "delete"]);
    assert_eq!(delete.code, 0, "{}", delete.all());
    assert!(!orphan.exists());
    assert!(
        !course
            .path("snapshots/passing__old-heading-1.snap.new")
            .exists()
    );
    assert!(course.path("snapshots/notes.snap").exists());
    assert!(
        course
            .path("snapshots/passing__verify-the-greeting-1.snap")
            .exists()
    );
    let again = course.labbook(&["snapshots", "--unreferenced", "list"]);
    assert_eq!(again.code, 0, "{}", again.all());
}

#[test]
fn a_missing_snapshot_does_not_wait_for_its_retry_window() {
    let course = Course::fixture("ecosystem");
    let chapter = course.read("src/passing.md").replace(
        "## Verify the greeting\n\n",
        "## Verify the greeting\n\n<!-- labbook: retry=20s -->\n",
    );
    std::fs::write(course.path("src/passing.md"), chapter).expect("write");
    std::fs::remove_file(course.path("snapshots/passing__verify-the-greeting-1.snap")).expect("rm");
    let run = course.run(&["src/passing.md"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report = course.report();
    let step = &report["labs"][0]["steps"][1];
    let failure = step["failure"].as_str().expect("failure");
    assert!(failure.starts_with("no accepted snapshot"), "{failure}");
    assert!(!failure.contains("attempts"), "retried: {failure}");
    assert!(
        failure.contains("labbook snapshots --unreferenced list"),
        "{failure}"
    );
}

/// Every accepted snapshot committed under `fixtures/` and `book/` is in insta's current format:
/// insta reads it and writes back the same bytes, with no `assertion_line`.
#[test]
fn committed_snapshots_are_in_insta_format() {
    let mut checked = 0;
    let mut stack = vec![repo().join("fixtures"), repo().join("book")];
    let out = tempfile::tempdir().expect("tempdir");
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let in_snapshots = path.parent().is_some_and(|p| p.ends_with("snapshots"));
            if !in_snapshots || path.extension().is_none_or(|e| e != "snap") {
                continue;
            }
            let ours = std::fs::read_to_string(&path).expect("read");
            assert!(!ours.contains("\nassertion_line:"), "{}", path.display());
            let snap = insta::Snapshot::from_file(&path).expect("insta parses it");
            let resaved = out.path().join("resaved.snap");
            snap.save(&resaved).expect("insta saves");
            assert_eq!(
                std::fs::read_to_string(&resaved).expect("read"),
                ours,
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} snapshots found");
}

// ---- 6. GitHub: job summary and annotations ----

#[test]
fn report_summary_is_a_markdown_table_with_one_row_per_lab() {
    let course = Course::fixture("ecosystem");
    course.run(&[]);
    let report = course.report_dir();
    let done = course.labbook(&["report", "summary", report.to_str().expect("utf-8")]);
    assert_eq!(done.code, 0, "{}", done.all());
    let rows: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("| "))
        .collect();
    assert_eq!(rows.len(), 3, "{}", done.stdout);
    assert!(
        rows[1].starts_with("| A lab that passes | `./src/passing.md` | ✅ passed | 2/2 |"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("| A lab that fails | `./src/failing.md` | ❌ failed | 0/1 |"),
        "{}",
        rows[2]
    );
    assert!(
        rows[2].contains("`verify-the-columns-1` (line 7): the output differs"),
        "{}",
        rows[2]
    );
    let missing = course.labbook(&["report", "summary", "nowhere"]);
    assert_eq!(missing.code, 2, "{}", missing.all());
    assert!(
        missing.stderr.contains("nowhere/report.json") || missing.stderr.contains("nowhere"),
        "{}",
        missing.stderr
    );
}

#[test]
fn run_annotations_carry_the_diff_and_the_hint() {
    let course = Course::fixture("ecosystem");
    let done = course.labbook_with(
        &["run", ".", "--keep-going"],
        "",
        &[("GITHUB_ACTIONS", "true")],
    );
    let annotation = done
        .stdout
        .lines()
        .find(|l| l.starts_with("::error file=./src/failing.md,line=7::"))
        .unwrap_or_else(|| panic!("no annotation: {}", done.stdout));
    assert!(
        annotation.contains("review it with `labbook review`"),
        "{annotation}"
    );
    assert!(
        annotation.contains("%0A--- accepted%0A+++ new%0A"),
        "{annotation}"
    );
    assert!(
        annotation.contains("%0A-colour   red%0A+colour   blue"),
        "{annotation}"
    );
    let command = done
        .stdout
        .lines()
        .find(|l| l.starts_with("::error file=./src/failing.md,line=16::"))
        .unwrap_or_else(|| panic!("no annotation: {}", done.stdout));
    assert!(
        command.contains("%0Aoutput"),
        "the output excerpt: {command}"
    );
}

#[test]
fn lint_prints_annotations_under_github_actions() {
    let course = Course::fixture("ecosystem");
    std::fs::write(
        course.path("src/passing.md"),
        "# Broken\n\n```bash\ncat <<EOF > a.txt\nhome is $HOME\nEOF\nif then\n```\n",
    )
    .expect("write");
    let plain = course.labbook(&["lint", "src/passing.md"]);
    assert!(!plain.stdout.contains("::error"), "{}", plain.stdout);
    let done = course.labbook_with(
        &["lint", "src/passing.md"],
        "",
        &[("GITHUB_ACTIONS", "true")],
    );
    let annotations: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("::"))
        .collect();
    assert!(
        annotations
            .iter()
            .any(|a| a.starts_with("::error file=src/passing.md,line=")
                && a.contains(",title=labbook lint%3A ")),
        "{}",
        done.stdout
    );
    assert!(annotations.iter().all(|a| !a.contains('\n')));
}

// ---- 7. The course workflow ----

#[test]
fn the_workflow_records_pins_its_actions_and_spares_main() {
    let workflow =
        std::fs::read_to_string(repo().join(".github/workflows/labs.yml")).expect("read");
    let mut uses = 0;
    let pinned =
        regex::Regex::new(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$").expect("regex");
    for line in workflow.lines().filter(|l| l.contains("uses: ")) {
        uses += 1;
        assert!(
            pinned.is_match(line.trim()),
            "not pinned by SHA with a version: {line}"
        );
    }
    assert!(uses >= 5, "{workflow}");
    for expected in [
        "cancel-in-progress: ${{ github.ref != 'refs/heads/main' }}",
        "      accept:\n",
        "ACCEPT: ${{ inputs.accept && '1' || '' }}",
        "name: recorded-snapshots",
        "target/release/labbook lint book",
        "hashFiles('**/*.rs', '**/Cargo.toml')",
    ] {
        assert!(workflow.contains(expected), "{expected}");
    }
    let dependabot = std::fs::read_to_string(repo().join(".github/dependabot.yml")).expect("read");
    assert!(dependabot.contains("package-ecosystem: github-actions"));
}

// ---- 8. Smaller points ----

#[test]
fn a_path_without_labs_exits_2_for_run_plan_and_lint() {
    let course = Course::fixture("ecosystem");
    for command in ["run", "plan", "lint"] {
        for path in ["src/README.md", "src/authoring.md"] {
            let done = course.labbook(&[command, path]);
            assert_eq!(done.code, 2, "{command} {path}: {}", done.all());
            assert!(
                done.stderr.contains(&format!("no labs in {path}")),
                "{command}: {}",
                done.stderr
            );
        }
        let fine = course.labbook(&[command, "src/passing.md"]);
        assert_ne!(fine.code, 2, "{command}: {}", fine.all());
    }
}

#[test]
fn keep_going_continues_past_a_changed_write_file_snapshot() {
    let course = Course::fixture("ecosystem");
    std::fs::write(
        course.path("src/passing.md"),
        "# Files\n\n## Write the settings\n\n```bash\ncat > settings.conf <<'EOF'\nport = 8080\nEOF\n```\n\n## Verify the greeting\n\n```bash\necho \"hello, reader\"\n```\n",
    )
    .expect("write");
    std::fs::write(
        course.path("snapshots/passing__write-the-settings-1.snap"),
        "---\nsource: src/passing.md\nexpression: \"cat > settings.conf <<'EOF'\"\n---\nport = 9090\n",
    )
    .expect("write");
    course.run(&["src/passing.md"]);
    let report = course.report();
    assert_eq!(
        report["labs"][0]["steps"][1]["status"], "skipped",
        "{report:#}"
    );
    course.run(&["src/passing.md", "--keep-going"]);
    let report = course.report();
    let steps = &report["labs"][0]["steps"];
    assert_eq!(steps[0]["status"], "failed", "{report:#}");
    assert!(
        steps[0]["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+port = 8080")),
        "{report:#}"
    );
    assert_eq!(steps[1]["status"], "passed", "{report:#}");
}

#[test]
fn the_sample_course_passes_its_own_lint() {
    let course = Course::fixture("sample-course");
    let done = course.labbook(&["lint", "."]);
    assert_eq!(done.code, 0, "{}", done.all());
    assert!(
        done.stdout.contains("lint: 0 errors, 0 warnings"),
        "{}",
        done.stdout
    );
}

#[test]
fn init_scaffolds_a_course_that_lints_runs_and_builds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let course = Course {
        root: tmp.path().to_path_buf(),
        tmp,
    };
    let init = course.labbook(&["init", "shop"]);
    assert_eq!(init.code, 0, "{}", init.all());
    for file in [
        "book.toml",
        "theme/labbook.css",
        "src/SUMMARY.md",
        "src/first-lab.md",
        ".github/workflows/labs.yml",
    ] {
        assert!(
            init.stdout.contains(&format!("created shop/{file}")),
            "{}",
            init.stdout
        );
    }
    let toml = course.read("shop/book.toml");
    assert!(
        toml.contains("extra-watch-dirs = [\"snapshots\"]"),
        "{toml}"
    );
    assert!(toml.contains("[preprocessor.labbook]"), "{toml}");
    assert_eq!(
        course.read("shop/theme/labbook.css"),
        mdbook_labbook::STYLESHEET
    );

    let lint = course.labbook(&["lint", "shop"]);
    assert_eq!(lint.code, 0, "{}", lint.all());
    assert!(
        lint.stdout.contains("0 errors, 0 warnings"),
        "{}",
        lint.stdout
    );
    let first = course.labbook(&["run", "shop"]);
    assert_eq!(first.code, 1, "no snapshot yet: {}", first.all());
    let accept = course.labbook(&["run", "shop", "--accept"]);
    assert_eq!(accept.code, 0, "{}", accept.all());
    assert_eq!(course.labbook(&["run", "shop"]).code, 0);
    let build = course.labbook(&["build", "shop"]);
    assert_eq!(build.code, 0, "{}", build.all());
    assert!(!build.stderr.contains("stylesheet"), "{}", build.stderr);
    let page = course.read("shop/book/first-lab.html");
    assert!(
        page.contains("labbook-expected"),
        "the expected output is shown"
    );

    // The workflow passes actionlint (installed by .ci/run).
    let actionlint = Command::new("actionlint")
        .arg(course.path("shop/.github/workflows/labs.yml"))
        .output()
        .expect("actionlint is installed (.ci/run installs it)");
    assert!(
        actionlint.status.success(),
        "{}",
        String::from_utf8_lossy(&actionlint.stdout)
    );

    // Again: nothing is overwritten.
    std::fs::write(
        course.path("shop/src/first-lab.md"),
        "# Mine\n\n```bash\necho mine\n```\n",
    )
    .expect("write");
    let again = course.labbook(&["init", "shop"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        again
            .stdout
            .contains("kept    shop/src/first-lab.md (it exists)"),
        "{}",
        again.stdout
    );
    assert!(course.read("shop/src/first-lab.md").starts_with("# Mine"));
}

#[test]
fn build_warns_when_the_stylesheet_is_missing() {
    let course = Course::fixture("ecosystem");
    let build = course.labbook(&["build", "."]);
    assert_eq!(build.code, 0, "{}", build.all());
    assert!(
        build
            .stderr
            .contains("the book does not load labbook's stylesheet"),
        "{}",
        build.stderr
    );
    assert!(build.stderr.contains("labbook init"), "{}", build.stderr);
}

/// The book ships the stylesheet the tool embeds (a link to it), not a copy that drifts.
#[test]
fn the_book_uses_the_embedded_stylesheet() {
    let book = std::fs::read_to_string(repo().join("book/theme/labbook.css")).expect("read");
    assert_eq!(book, mdbook_labbook::STYLESHEET);
}
