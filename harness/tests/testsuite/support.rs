//! Helpers shared by the harness's tests: the repository, copies of fixtures, and [`Labbook`], the
//! one way a test starts the `labbook` binary.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root (the harness crate's parent), where `fixtures/`, `book/` and `ci/` live.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness sits in the repository")
}

/// Copies a folder and everything in it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("destination folder");
    for entry in std::fs::read_dir(from).expect("fixture folder is readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("file copies");
        }
    }
}

/// Every file under a folder, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("output folder is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Copies `fixtures/books/<name>` into a new temporary folder (building writes `book/` next to
/// `book.toml`, which must not land in the repository), with `book/theme/labbook.css` at
/// `theme/labbook.css`. Returns the temporary folder (kept alive by the caller) and the book.
pub fn fixture_book(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let book = tmp.path().join(name);
    copy_dir(&repo().join("fixtures/books").join(name), &book);
    std::fs::create_dir_all(book.join("theme")).expect("theme folder");
    std::fs::copy(
        repo().join("book/theme/labbook.css"),
        book.join("theme/labbook.css"),
    )
    .expect("stylesheet copies");
    (tmp, book)
}

/// The `report.json` a run wrote into `dir`, or `Null` when it wrote none (it stopped before).
pub fn report_json(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `PATH` with the test doubles of `fixtures/fake-tools` first.
pub fn fake_tools_path() -> std::ffi::OsString {
    let fakes = repo().join("fixtures/fake-tools");
    std::env::join_paths(std::iter::once(fakes).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH")
}

/// The `labbook` binary about to run: by default in the repository root, with stdin closed.
///
/// ```text
/// Labbook::new().args(["plan", "fixtures/labs"]).run().success().stdout
/// ```
pub struct Labbook {
    command: Command,
}

impl Labbook {
    pub fn new() -> Labbook {
        let mut command = Command::new(env!("CARGO_BIN_EXE_labbook"));
        command.current_dir(repo()).stdin(Stdio::null());
        Labbook { command }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Labbook {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Labbook
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Labbook {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Labbook {
        self.command.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Labbook {
        self.command.current_dir(dir);
        self
    }

    /// With the course stylesheet added to the html output (the fixture books' own `book.toml`
    /// leaves it out, so that they build where they stand without a copy of the CSS).
    pub fn with_course_css(self) -> Labbook {
        self.env(
            "MDBOOK_OUTPUT__HTML__ADDITIONAL_CSS",
            r#"["theme/labbook.css"]"#,
        )
    }

    /// The command, for a test that spawns it and talks to it (signals, closed pipes).
    pub fn command(self) -> Command {
        self.command
    }

    /// Runs to the end and captures stdout and stderr.
    pub fn run(mut self) -> Outcome {
        self.command.output().expect("labbook starts").into()
    }
}

/// How a `labbook` run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Outcome {
    /// The outcome of a `labbook` a test spawned itself ([`Labbook::command`]).
    fn from(output: std::process::Output) -> Outcome {
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Outcome {
        assert_eq!(
            self.code,
            Some(expected),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Outcome {
        self.code(0)
    }

    /// Asserts that stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Outcome {
        assert!(
            self.stdout.contains(needle),
            "{needle:?} not in:\n{}",
            self.stdout
        );
        self
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Outcome {
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            self.stderr
        );
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).expect("valid JSON")
    }
}
