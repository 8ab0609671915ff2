//! `labbook report summary [DIR]`: a run's `report.json` as a Markdown table, one row per lab,
//! for a CI job summary (`labbook report summary report >> "$GITHUB_STEP_SUMMARY"`).

use std::path::Path;

use anyhow::Context;
use labbook::report::Report;

use crate::cli::EXIT_OK;

/// Prints the summary of the report in `path` (a `--report` folder or a `report.json`).
pub fn run(path: &Path) -> anyhow::Result<u8> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("failed to parse {} as a labbook report", file.display()))?;
    crate::cli::print_stdout(&report.markdown_summary())?;
    Ok(EXIT_OK)
}
