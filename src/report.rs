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

/// The version of the report's contract: the shape of `report.json`. It changes only when a
/// reader of an older report would misread a newer one; fields that readers may ignore are added
/// without changing it. `report merge` refuses to merge reports of different versions.
pub const CONTRACT_VERSION: u32 = 1;

/// Reports written before the `version` field existed have the first contract.
fn first_contract() -> u32 {
    1
}

/// What `run --preload` did for a lab, and what its cluster pulled anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCounts {
    /// Images loaded into the lab's cluster before its first step (`kind load docker-image`).
    pub preloaded: usize,
    /// Images the lab's cluster pulled from the network (its `Pulled` events that say
    /// "Successfully pulled"); absent when the cluster was gone before labbook could ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled: Option<usize>,
    /// Images that could not be preloaded, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_preloaded: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The report contract ([`CONTRACT_VERSION`]).
    #[serde(default = "first_contract")]
    pub version: u32,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// The cluster backend: `none` or `kind`.
    pub backend: String,
    /// Versions of the tools found (`kubectl`, `kind`, `istioctl`, ...), as they print them.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    /// The versions the run was given (`run --versions kubernetes=v1.33.1,istio=1.27.0`): one
    /// combination of the book's version matrix. Empty when none was given; in a merge of
    /// several combinations, only what they share.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
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
    /// The versions the lab ran with (the run's `versions`), so that a merged report keeps
    /// each combination of a version matrix apart.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
    /// Images preloaded into the lab's cluster and pulled by it (`run --preload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageCounts>,
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
    /// The printed output ("You should see:") the step's output was checked against, one entry
    /// per printed block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub printed: Vec<PrintedCheck>,
}

/// How a printed-output check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrintedVerdict {
    /// The similarity reached the threshold.
    Matched,
    /// It did not, and the step failed.
    Failed,
    /// It did not, and the book says to only warn.
    Warned,
}

/// One printed-output check: a block of printed output compared with what its step printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrintedCheck {
    /// The id of the block holding the printed text (an `output` step, or the step itself for
    /// printed lines in its own block).
    pub block: String,
    /// The Markdown line of the printed text.
    pub line: usize,
    /// From 0 to 1 (see [`crate::similarity`]).
    pub similarity: f64,
    /// The lowest similarity that passes.
    pub threshold: f64,
    /// How it came out.
    pub verdict: PrintedVerdict,
    /// On a mismatch: what the step printed, redacted, for the book's "the last run printed
    /// something different" note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// On a mismatch: a line diff from the printed text to the output, headed by `chapter.md:LINE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
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
        self.lab_runs(chapter).pop()
    }

    /// Every run of a chapter, in report order: one per combination of a version matrix in a
    /// merged report (each with its own [`LabReport::versions`]), usually just one. Matched as
    /// [`Report::lab`] does.
    pub fn lab_runs(&self, chapter: &std::path::Path) -> Vec<&LabReport> {
        use std::path::{Component, Path, PathBuf};
        let chapter = std::path::absolute(chapter).unwrap_or_else(|_| chapter.to_path_buf());
        let matches: Vec<(usize, &LabReport)> = self
            .labs
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
            .collect();
        let deepest = matches.iter().map(|(d, _)| *d).max().unwrap_or(0);
        matches
            .into_iter()
            .filter(|(d, _)| *d == deepest)
            .map(|(_, lab)| lab)
            .collect()
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
            version: CONTRACT_VERSION,
            started_at: "2026-11-22T06:00:00Z".into(),
            backend: "none".into(),
            tools: BTreeMap::new(),
            versions: BTreeMap::new(),
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
                    versions: BTreeMap::new(),
                    images: None,
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
            printed: Vec::new(),
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
    fn every_combination_of_a_chapter_is_found() {
        let mut r = report(&["src/a.md", "src/a.md", "src/b.md"]);
        r.labs[0].versions = [("istio".to_string(), "1.26.2".to_string())].into();
        r.labs[1].versions = [("istio".to_string(), "1.27.1".to_string())].into();
        let runs = r.lab_runs(Path::new("/book/src/a.md"));
        let istio: Vec<&str> = runs.iter().map(|l| l.versions["istio"].as_str()).collect();
        assert_eq!(istio, ["1.26.2", "1.27.1"]);
        assert_eq!(r.lab_runs(Path::new("/book/src/b.md")).len(), 1);
        assert!(r.lab_runs(Path::new("/book/src/c.md")).is_empty());
    }

    #[test]
    fn a_file_name_is_not_matched_by_its_suffix() {
        let r = report(&["ab.md"]);
        assert!(r.lab(Path::new("/course/b.md")).is_none());
        assert!(r.lab(Path::new("/course/ab.md")).is_some());
    }
}
