//! Writing `--report DIR`: `report.json` (the [`labbook::report::Report`] the preprocessor reads
//! for its "last verified" banner) and `junit.xml` (one test suite per lab, one test case per
//! step) for CI systems. Only labs are in them (the run only runs labs: [`labbook::Lab::is_lab`]).
//! It also owns the run folders kept under `DIR/run/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use labbook::StepKind;
use labbook::report::{LabStatus, Report, StepReport, StepStatus};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder or a file could not be written.
    #[error("failed to write {}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A path the run needs is already taken by something labbook did not create.
    #[error("refusing to use {}: {what}; move it away or choose another --report folder", path.display())]
    Taken {
        /// The path.
        path: PathBuf,
        /// What is in the way.
        what: String,
    },
    /// The JSON could not be produced.
    #[error("failed to serialize report.json")]
    Json(#[source] serde_json::Error),
    /// The XML could not be produced.
    #[error("failed to serialize junit.xml")]
    Junit(#[source] quick_junit::SerializeError),
}

/// The marker file in every run folder labbook creates: only folders holding it are ever removed.
const RUN_MARKER: &str = ".labbook-run";

/// One run's own folder under `DIR/run/`, locked for as long as the run lasts so that another
/// run sharing `DIR` neither removes it nor mistakes it for its own.
#[derive(Debug)]
pub struct RunFolder {
    /// `DIR/run/<run id>`.
    pub path: PathBuf,
    _lock: std::fs::File,
}

impl RunFolder {
    /// Creates `DIR/run/<id>` (refusing when it exists), and removes the folders of earlier runs
    /// that labbook created (they hold [`RUN_MARKER`]) and no live run holds locked.
    pub fn create(dir: &Path, id: &str) -> Result<RunFolder, ReportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Write { path, source }
        };
        let runs = dir.join("run");
        match std::fs::symlink_metadata(&runs) {
            Ok(meta) if !meta.is_dir() => {
                return Err(ReportError::Taken {
                    path: runs,
                    what: "it is not a folder".into(),
                });
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(&runs).map_err(io(&runs))?,
        }
        let path = runs.join(id);
        if let Err(source) = std::fs::create_dir(&path) {
            return Err(if source.kind() == std::io::ErrorKind::AlreadyExists {
                ReportError::Taken {
                    path,
                    what: "it already exists".into(),
                }
            } else {
                ReportError::Write { path, source }
            });
        }
        let marker = path.join(RUN_MARKER);
        let lock = std::fs::File::create(&marker).map_err(io(&marker))?;
        lock.lock().map_err(io(&marker))?;
        remove_finished_runs(&runs, &path);
        Ok(RunFolder { path, _lock: lock })
    }
}

/// Removes earlier run folders labbook made whose run has ended (their marker is not locked).
/// Anything else in `runs` is left alone.
fn remove_finished_runs(runs: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == own || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(marker) = std::fs::File::open(path.join(RUN_MARKER)) else {
            continue;
        };
        if marker.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Refuses early (before any lab runs) when `report.json` or `junit.xml` in `dir` is taken by
/// something that is not a file, or `dir` itself is not a folder.
pub fn check_targets(dir: &Path) -> Result<(), ReportError> {
    if let Ok(meta) = std::fs::metadata(dir)
        && !meta.is_dir()
    {
        return Err(ReportError::Taken {
            path: dir.to_path_buf(),
            what: "it is not a folder".into(),
        });
    }
    for name in ["report.json", "junit.xml"] {
        let path = dir.join(name);
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && !meta.is_file()
        {
            return Err(ReportError::Taken {
                path,
                what: "it is not a regular file".into(),
            });
        }
    }
    Ok(())
}

/// Writes `report.json` and `junit.xml` into `dir` (created if needed), each replaced at once
/// (a temporary file renamed over it), so that a reader never sees half a report.
pub fn write(dir: &Path, report: &Report) -> Result<(), ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Streamed to the files: a copy of a large report in memory would double its cost.
    let json_path = dir.join("report.json");
    super::atomic::write_with(&json_path, |out| {
        serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
        out.write_all(
            b"
",
        )
    })
    .map_err(io(&json_path))?;
    let junit_path = dir.join("junit.xml");
    // Unlike report.json, junit.xml is built in memory before its atomic write: quick-junit's
    // text is fixed up afterwards (see [`junit_xml`]).
    let xml = junit_xml(report)?;
    super::atomic::write(&junit_path, xml.as_bytes()).map_err(io(&junit_path))?;
    Ok(())
}

/// quick-junit drops TAB characters from output (its ANSI stripper keeps only newlines), so a TAB
/// travels through it as this noncharacter and comes out as a character reference. A noncharacter
/// already in the text is replaced by U+FFFD first, so that it cannot turn into a TAB.
const TAB_STAND_IN: char = '\u{FDD0}';

fn protect(text: &str) -> String {
    text.replace(TAB_STAND_IN, "\u{FFFD}")
        .replace('\t', &TAB_STAND_IN.to_string())
}

/// `junit.xml`: the [`junit`] view, valid against the Jenkins xUnit `junit-10.xsd` schema.
pub fn junit_xml(report: &Report) -> Result<String, ReportError> {
    let xml = junit(report).to_string().map_err(ReportError::Junit)?;
    // quick-junit always writes a `skipped` count on <testsuites>, which junit-10.xsd does not
    // allow there; each <testsuite> keeps its own.
    let mut xml = xml;
    if let Some(at) = xml.find("<testsuites ") {
        let tag_end = xml[at..].find('>').map_or(xml.len(), |e| at + e);
        if let Some(start) = xml[at..tag_end].find(" skipped=\"").map(|s| at + s)
            && let Some(len) = xml[start + 10..tag_end].find('"')
        {
            xml.replace_range(start..start + 10 + len + 1, "");
        }
    }
    Ok(xml.replace(TAB_STAND_IN, "&#9;"))
}

/// The JUnit view of a report: one suite per lab (named and `file`d by its chapter path), one test
/// per step (named by its id, `classname` the chapter path). A failure's body names
/// `chapter.md:LINE` and holds the failure (the failing command) and, for a snapshot, the diff; a
/// skipped test says why it did not run.
pub fn junit(report: &Report) -> quick_junit::Report {
    let mut junit = quick_junit::Report::new("labbook");
    for lab in &report.labs {
        let mut suite = TestSuite::new(lab.path.clone());
        suite.set_time(Duration::from_millis(lab.duration_ms));
        suite.extra.insert("file".into(), lab.path.clone().into());
        if lab.status == LabStatus::Interrupted {
            suite.add_property(("status", "interrupted"));
        }
        for step in &lab.steps {
            let location = format!("{}:{}", lab.path, step.line);
            // junit-10.xsd allows no `file` or `line` on <testcase>: the suite has the `file`, and
            // the location heads each failure's body.
            let status = match step.status {
                StepStatus::Passed | StepStatus::Stopped => TestCaseStatus::success(),
                StepStatus::Skipped => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(protect(&skip_reason(lab.status, step)));
                    status
                }
                StepStatus::Failed | StepStatus::TimedOut => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let kind = if step.status == StepStatus::TimedOut {
                        "timed-out"
                    } else {
                        "failed"
                    };
                    status.set_type(kind);
                    let failure = step.failure.clone().unwrap_or_else(|| kind.into());
                    let first = failure.lines().next().unwrap_or(kind).to_string();
                    status.set_message(protect(&first));
                    // The diff is headed by the location already.
                    let body = match &step.diff {
                        Some(diff) => format!("{failure}\n\n{diff}"),
                        None => format!("{location}\n{failure}\n"),
                    };
                    status.set_description(protect(&body));
                    status
                }
            };
            let mut case = TestCase::new(step.id.clone(), status);
            case.set_classname(lab.path.clone());
            case.set_time(Duration::from_millis(step.duration_ms));
            if !step.output.is_empty() {
                case.set_system_out(protect(&step.output));
            }
            // A printed-output check that only warned leaves the case passed, with the warning
            // and its diff beside it.
            let warned: Vec<String> = step
                .printed
                .iter()
                .filter(|c| c.verdict == labbook::report::PrintedVerdict::Warned)
                .map(|c| {
                    format!(
                        "warning: {}:{}: the printed output differs from what the step printed \
                         (similarity {}, needs {})\n{}",
                        lab.path,
                        c.line,
                        c.similarity,
                        c.threshold,
                        c.diff.as_deref().unwrap_or("")
                    )
                })
                .collect();
            if !warned.is_empty() {
                case.set_system_err(protect(&warned.join("\n")));
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit
}

/// Why a step did not run, for readers of a CI report.
fn skip_reason(lab: LabStatus, step: &StepReport) -> String {
    if let Some(failure) = &step.failure {
        return failure.clone();
    }
    match (step.kind, lab) {
        (StepKind::Skip, _) => "not part of the lab (kind=skip)".into(),
        (_, LabStatus::Interrupted) => "not run: the run was interrupted".into(),
        (StepKind::Troubleshoot, _) => "troubleshooting runs only after a failure".into(),
        (_, LabStatus::Failed) => "not run: an earlier step failed".into(),
        (_, LabStatus::Passed) => "not run".into(),
    }
}

/// The current time as RFC 3339 UTC (`2025-01-31T12:34:56Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_735_689_599, "2024-12-31T23:59:59Z"),
            (1_767_225_600, "2026-01-01T00:00:00Z"),
        ];
        for (secs, expected) in cases {
            assert_eq!(rfc3339(secs), expected);
        }
    }
}
