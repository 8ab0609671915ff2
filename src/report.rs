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
    /// How long the cluster took to settle before this verify, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
}

impl Report {
    /// The lab report of a chapter, matched by its path's ending (reports name paths as the
    /// command line gave them, which may differ in prefix from the book's own).
    pub fn lab(&self, chapter: &std::path::Path) -> Option<&LabReport> {
        let wanted = chapter.to_string_lossy().replace('\\', "/");
        self.labs
            .iter()
            .filter(|lab| lab.path.ends_with(&wanted) || wanted.ends_with(&lab.path))
            .max_by_key(|lab| lab.path.len())
    }
}
