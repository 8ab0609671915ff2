//! The run report (`report.json`): written by `labbook run --report DIR`, read by the preprocessor
//! to show each lab's "last verified" banner.
//!
//! The field names of labs and steps follow the CLI contract in the design; extra fields (backend,
//! tool versions, settle waits, diagnostics, leftovers) are additions that readers may ignore.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::StepKind;

/// The outcome of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Ran, and its expectation held.
    Passed,
    /// Ran, and a command failed or the output did not match.
    Failed,
    /// Hit its time limit; its process tree was killed.
    TimedOut,
    /// A watch stopped by labbook (its stop condition matched, or the watch limit passed).
    Stopped,
    /// Not run (after an earlier failure, a `skip` step, or troubleshooting when all passed).
    Skipped,
}

/// The outcome of a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabStatus {
    /// Every step in the main sequence passed (or was a stopped watch / failed optional).
    Passed,
    /// A step failed.
    Failed,
    /// The run was interrupted (Ctrl+C).
    Interrupted,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// The cluster backend: `none` or `kind`.
    pub backend: String,
    /// Versions of the tools found (`kubectl`, `kind`, `istioctl`, ...), as they print them.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    /// The labs, in run order.
    pub labs: Vec<LabReport>,
}

/// One lab in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabReport {
    /// The chapter path as given on the command line.
    pub path: String,
    /// The chapter title.
    pub title: String,
    /// The outcome.
    pub status: LabStatus,
    /// Wall time of the lab, in milliseconds.
    pub duration_ms: u64,
    /// The steps, in source order.
    pub steps: Vec<StepReport>,
    /// Warnings that do not fail the lab (leftover resources, settle timeouts, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Files of collected diagnostics, relative to the report folder.
    #[serde(default)]
    pub diagnostics: Vec<String>,
}

/// One step in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step id.
    pub id: String,
    /// The step kind.
    pub kind: StepKind,
    /// 1-based Markdown line of the opening fence.
    pub line: usize,
    /// The outcome.
    pub status: StepStatus,
    /// The exit code of the block's shell, when it ran to the end.
    pub exit_code: Option<i32>,
    /// Wall time, in milliseconds.
    pub duration_ms: u64,
    /// Interleaved stdout and stderr, as a reader would have seen them.
    pub output: String,
    /// Why the step failed, with the Markdown line of the failing command when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// For a snapshot that differs: the unified diff from the accepted snapshot to the new output,
    /// headed by `chapter.md:LINE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// How long the cluster took to settle before this verify, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
}

impl Report {
    /// The report of a chapter. Reports name chapters as the command line gave them
    /// (`book/src/m1/lab.md`, `./src/m1/lab.md`, an absolute path), so the chapter's absolute
    /// path is matched against each path's trailing components; the longest match wins, so that
    /// `m1/README.md` is not taken for `m2/README.md`, nor `b.md` for `ab.md`.
    ///
    /// This is a lookup by path, not a second identity: a report written by an earlier run
    /// cannot know the book's `src` folder that [`crate::Lab::key`] is relative to, and its JSON
    /// (which names chapters by path) is part of the output contract.
    pub fn lab(&self, chapter: &std::path::Path) -> Option<&LabReport> {
        use std::path::{Component, Path, PathBuf};
        let chapter = std::path::absolute(chapter).unwrap_or_else(|_| chapter.to_path_buf());
        self.labs
            .iter()
            .filter_map(|lab| {
                let given = Path::new(&lab.path);
                let tail: PathBuf = if given.is_absolute() {
                    given.to_path_buf()
                } else {
                    given
                        .components()
                        .skip_while(|c| matches!(c, Component::CurDir | Component::ParentDir))
                        .collect()
                };
                let depth = tail.components().count();
                (depth > 0 && chapter.ends_with(&tail)).then_some((depth, lab))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, lab)| lab)
    }
}

impl Report {
    /// A Markdown summary, one row per lab, for `$GITHUB_STEP_SUMMARY` (`labbook report summary`).
    pub fn markdown_summary(&self) -> String {
        let count = |status: LabStatus| self.labs.iter().filter(|l| l.status == status).count();
        let mut out = format!(
            "## labbook: {} lab{}: {} passed, {} failed, {} interrupted\n\n",
            self.labs.len(),
            if self.labs.len() == 1 { "" } else { "s" },
            count(LabStatus::Passed),
            count(LabStatus::Failed),
            count(LabStatus::Interrupted)
        );
        out.push_str(&format!(
            "Run started {} on cluster backend `{}`.\n\n",
            self.started_at, self.backend
        ));
        out.push_str("| Lab | Chapter | Result | Steps passed | Time | First failure |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for lab in &self.labs {
            let result = match lab.status {
                LabStatus::Passed => "✅ passed",
                LabStatus::Failed => "❌ failed",
                LabStatus::Interrupted => "⚠️ interrupted",
            };
            let ran = lab
                .steps
                .iter()
                .filter(|s| s.status != StepStatus::Skipped)
                .count();
            let passed = lab
                .steps
                .iter()
                .filter(|s| matches!(s.status, StepStatus::Passed | StepStatus::Stopped))
                .count();
            let failure = lab
                .steps
                .iter()
                .find(|s| matches!(s.status, StepStatus::Failed | StepStatus::TimedOut))
                .map(|s| {
                    let first = s.failure.as_deref().and_then(|f| f.lines().next());
                    format!(
                        "`{}` (line {}): {}",
                        s.id,
                        s.line,
                        first.unwrap_or("failed")
                    )
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "| {} | `{}` | {result} | {passed}/{ran} | {:.1} s | {} |\n",
                cell(&lab.title),
                cell(&lab.path),
                lab.duration_ms as f64 / 1000.0,
                cell(&failure)
            ));
        }
        out
    }
}

/// Text made safe for one Markdown table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn report(paths: &[&str]) -> Report {
        Report {
            started_at: "2026-11-22T06:00:00Z".into(),
            backend: "none".into(),
            tools: BTreeMap::new(),
            labs: paths
                .iter()
                .map(|path| LabReport {
                    path: path.to_string(),
                    title: "T".into(),
                    status: LabStatus::Passed,
                    duration_ms: 1,
                    steps: vec![],
                    warnings: vec![],
                    diagnostics: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn finds_the_lab_by_trailing_components() {
        let r = report(&[
            "book/src/m1/README.md",
            "./src/m2/README.md",
            "/abs/book/src/m3/lab.md",
            "README.md",
        ]);
        let cases = [
            ("/work/book/src/m1/README.md", Some("book/src/m1/README.md")),
            ("/elsewhere/src/m2/README.md", Some("./src/m2/README.md")),
            ("/abs/book/src/m3/lab.md", Some("/abs/book/src/m3/lab.md")),
            ("/other/book/src/m3/lab.md", None),
            ("/work/book/src/README.md", Some("README.md")),
            ("/work/book/src/m1/other.md", None),
        ];
        for (chapter, expected) in cases {
            assert_eq!(
                r.lab(Path::new(chapter)).map(|l| l.path.as_str()),
                expected,
                "{chapter}"
            );
        }
    }

    #[test]
    fn the_summary_has_one_row_per_lab() {
        let mut r = report(&["book/src/a.md", "book/src/b|c.md"]);
        r.labs[1].status = LabStatus::Failed;
        r.labs[1].title = "Two\nlines".into();
        r.labs[1].steps.push(StepReport {
            id: "verify-1".into(),
            kind: StepKind::Verify,
            line: 9,
            status: StepStatus::Failed,
            exit_code: Some(0),
            duration_ms: 3,
            output: String::new(),
            failure: Some("the output differs\nhint".into()),
            diff: None,
            settle_ms: None,
        });
        let summary = r.markdown_summary();
        let rows: Vec<&str> = summary.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            rows,
            [
                "| Lab | Chapter | Result | Steps passed | Time | First failure |",
                "| T | `book/src/a.md` | ✅ passed | 0/0 | 0.0 s |  |",
                "| Two lines | `book/src/b\\|c.md` | ❌ failed | 0/1 | 0.0 s | `verify-1` (line 9): the output differs |",
            ]
        );
        assert!(summary.starts_with("## labbook: 2 labs: 1 passed, 1 failed, 0 interrupted\n"));
    }

    #[test]
    fn a_file_name_is_not_matched_by_its_suffix() {
        let r = report(&["ab.md"]);
        assert!(r.lab(Path::new("/course/b.md")).is_none());
        assert!(r.lab(Path::new("/course/ab.md")).is_some());
    }
}
