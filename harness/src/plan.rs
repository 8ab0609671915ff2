//! `labbook plan`: load the courses and print the plan as text or JSON.

use std::path::PathBuf;

use crate::cli::{EXIT_OK, Format};

/// Fails (exit code 2, bad usage) when no chapter of the courses is a lab
/// ([`labbook::Lab::is_lab`]): a run, plan or lint of the wrong folder must not pass in silence.
pub fn require_labs(paths: &[PathBuf], courses: &[labbook::Course]) -> anyhow::Result<()> {
    if courses.iter().flat_map(|c| &c.labs).any(|lab| lab.is_lab()) {
        return Ok(());
    }
    let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    anyhow::bail!(
        "no labs in {}: no chapter has a block that runs (only prose, or only `skip` blocks)",
        named.join(", ")
    )
}

/// Loads every path and prints its plan; any unreadable or invalid chapter is an error.
pub fn run(
    paths: &[PathBuf],
    format: Format,
    partition: Option<crate::partition::Partition>,
) -> anyhow::Result<u8> {
    let mut courses = paths
        .iter()
        .map(|p| labbook::course::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    require_labs(paths, &courses)?;
    crate::partition::filter(&mut courses, partition);
    // A chapter read in a forgiving way (a fence never closed) still plans; the author hears why.
    for lab in courses.iter().flat_map(|c| c.labs.iter()) {
        for warning in &lab.warnings {
            eprintln!(
                "warning: {}:{}: {}",
                lab.path.display(),
                warning.line,
                warning.message
            );
        }
    }
    // Each lab with its book's printed-output settings (the threshold the plan shows).
    let labs = courses
        .iter()
        .flat_map(|c| c.labs.iter().map(|lab| (lab, c.config.printed_output)));
    let text = match format {
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&labbook::plan::to_json_with(labs))?;
            json.push('\n');
            json
        }
        Format::Text => labs
            .map(|(lab, printed)| labbook::plan::to_text_with(lab, &printed))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    crate::cli::print_stdout(&text)?;
    Ok(EXIT_OK)
}
