//! How labbook fits the tools people already use, through the binary: banners, reports and JUnit
//! only for labs, JUnit that Jenkins' xUnit schema accepts, insta-compatible snapshot files,
//! `labbook review`, orphan snapshots, GitHub summaries and annotations.
//!
//! Every test copies `fixtures/ecosystem` (or writes a course) into a temporary folder first, so
//! nothing is written into the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("fixture exists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

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
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn report_dir(&self) -> PathBuf {
        self.tmp.path().join("report")
    }

    /// `labbook <args>` in the course folder, with `stdin` as its input.
    fn labbook_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Done {
        use std::io::Write as _;
        let mut command = Command::new(env!("CARGO_BIN_EXE_labbook"));
        command
            .args(args)
            .current_dir(&self.root)
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

    /// `labbook run . <args> --report <tmp>/report`.
    fn run(&self, args: &[&str]) -> Done {
        let report = self.report_dir();
        let mut all = vec!["run", "."];
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
    assert_eq!(paths, ["./src/passing.md", "./src/failing.md"], "{report:#}");
    assert!(
        done.stderr.contains("labbook: 2 lab(s): 1 passed, 1 failed"),
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
