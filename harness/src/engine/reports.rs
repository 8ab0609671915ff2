//! Writing `--report DIR`: `report.json` (the [`labbook::report::Report`] the preprocessor reads
//! for its "last verified" banner) and `junit.xml` (one test suite per lab, one test case per
//! step) for CI systems.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use labbook::report::{LabStatus, Report, StepStatus};
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
    /// The JSON could not be produced.
    #[error("failed to serialize report.json")]
    Json(#[source] serde_json::Error),
    /// The XML could not be produced.
    #[error("failed to serialize junit.xml")]
    Junit(#[source] quick_junit::SerializeError),
}

/// Writes `report.json` and `junit.xml` into `dir` (created if needed).
pub fn write(dir: &Path, report: &Report) -> Result<(), ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Streamed to the files: a copy of a large report in memory would double its cost.
    let json_path = dir.join("report.json");
    let mut json = std::io::BufWriter::new(File::create(&json_path).map_err(io(&json_path))?);
    serde_json::to_writer_pretty(&mut json, report).map_err(ReportError::Json)?;
    json.write_all(b"\n")
        .and_then(|_| json.flush())
        .map_err(io(&json_path))?;
    let junit_path = dir.join("junit.xml");
    let mut xml = std::io::BufWriter::new(File::create(&junit_path).map_err(io(&junit_path))?);
    junit(report)
        .serialize(&mut xml)
        .map_err(ReportError::Junit)?;
    xml.flush().map_err(io(&junit_path))?;
    Ok(())
}

/// The JUnit view of a report.
pub fn junit(report: &Report) -> quick_junit::Report {
    let mut junit = quick_junit::Report::new("labbook");
    for lab in &report.labs {
        let mut suite = TestSuite::new(lab.path.clone());
        suite.set_time(Duration::from_millis(lab.duration_ms));
        if lab.status == LabStatus::Interrupted {
            suite.add_property(("status", "interrupted"));
        }
        for step in &lab.steps {
            let status = match step.status {
                StepStatus::Passed | StepStatus::Stopped => TestCaseStatus::success(),
                StepStatus::Skipped => TestCaseStatus::skipped(),
                StepStatus::Failed | StepStatus::TimedOut => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let kind = if step.status == StepStatus::TimedOut {
                        "timed-out"
                    } else {
                        "failed"
                    };
                    status.set_type(kind);
                    status.set_message(step.failure.clone().unwrap_or_else(|| kind.into()));
                    status
                }
            };
            let mut case = TestCase::new(format!("{} (line {})", step.id, step.line), status);
            case.set_classname(format!("{}::{}", lab.path, step.kind.name()));
            case.set_time(Duration::from_millis(step.duration_ms));
            if !step.output.is_empty() {
                case.set_system_out(step.output.clone());
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit
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
