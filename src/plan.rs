//! `labbook plan`: what will run, and how each block was understood.
//!
//! The JSON form is a contract that tests and CI rely on; the text form is for a person, grouped by
//! heading, with each step's kind and the reason it was inferred.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{Lab, StepKind};
use crate::similarity::PrintedOutput;
use crate::text::truncate;

/// The `plan --format json` document.
#[derive(Debug, Serialize)]
pub struct PlanJson<'a> {
    /// One entry per chapter.
    pub labs: Vec<LabJson<'a>>,
}

/// A lab in the plan JSON.
#[derive(Debug, Serialize)]
pub struct LabJson<'a> {
    /// The chapter path.
    pub path: String,
    /// The chapter title.
    pub title: &'a str,
    /// The steps, in order.
    pub steps: Vec<StepJson<'a>>,
}

/// A step in the plan JSON.
#[derive(Debug, Serialize)]
pub struct StepJson<'a> {
    /// Stable step id.
    pub id: &'a str,
    /// The kind's name.
    pub kind: StepKind,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// Heading path, outermost first.
    pub heading: &'a [String],
    /// What a reader types.
    pub code: &'a str,
    /// For `session-input`: the id of the `open-session` step it feeds.
    pub session: Option<&'a str>,
    /// For `output`: the id of the step whose printed output it shows.
    pub output_of: Option<&'a str>,
    /// When the block's printed output is checked against a run: the similarity it needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// Builds the JSON plan of some labs, with the default printed-output settings.
pub fn to_json<'a>(labs: impl IntoIterator<Item = &'a Lab>) -> PlanJson<'a> {
    let default = PrintedOutput::default();
    to_json_with(labs.into_iter().map(|lab| (lab, default)))
}

/// Builds the JSON plan of some labs, each with its book's printed-output settings.
pub fn to_json_with<'a>(labs: impl IntoIterator<Item = (&'a Lab, PrintedOutput)>) -> PlanJson<'a> {
    PlanJson {
        labs: labs
            .into_iter()
            .map(|(lab, printed)| (lab, thresholds(lab, &printed)))
            .map(|(lab, thresholds)| LabJson {
                path: display_path(&lab.path),
                title: &lab.title,
                steps: lab
                    .steps
                    .iter()
                    .map(|s| StepJson {
                        id: &s.id,
                        kind: s.kind,
                        line: s.span.line,
                        heading: &s.heading,
                        code: &s.code,
                        session: s.session.as_deref(),
                        output_of: s.output_of.as_deref(),
                        threshold: thresholds.get(s.id.as_str()).map(|(t, _)| *t),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The threshold (and Executable Docs regex, if any) of each block whose printed output is
/// checked, by block id.
fn thresholds<'a>(
    lab: &'a Lab,
    printed: &PrintedOutput,
) -> std::collections::HashMap<&'a str, (f64, Option<&'a str>)> {
    // Only steps with printed lines, or shown by an output block, have any: a chapter of
    // thousands of blocks is not scanned once per block.
    let shown: std::collections::HashSet<&str> = lab
        .steps
        .iter()
        .filter_map(|s| s.output_of.as_deref())
        .collect();
    (0..lab.steps.len())
        .filter(|&i| {
            let step = &lab.steps[i];
            !step.shown.trim().is_empty() || shown.contains(step.id.as_str())
        })
        .flat_map(|i| lab.printed_expectations(i))
        .map(|e| {
            (
                e.block,
                (e.threshold.unwrap_or(printed.threshold), e.pattern),
            )
        })
        .collect()
}

/// A path with `/` separators, as shown in output and JSON.
pub fn display_path(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// How many code lines the text plan shows per step.
const SHOWN_LINES: usize = 3;

/// Renders the plan of one lab for a person, with the default printed-output settings.
pub fn to_text(lab: &Lab) -> String {
    to_text_with(lab, &PrintedOutput::default())
}

/// Renders the plan of one lab for a person, with its book's printed-output settings.
pub fn to_text_with(lab: &Lab, printed: &PrintedOutput) -> String {
    let thresholds = thresholds(lab, printed);
    let mut out = String::new();
    let count = lab.steps.len();
    let _ = writeln!(
        out,
        "{}: {} ({count} step{})",
        display_path(&lab.path),
        lab.title,
        if count == 1 { "" } else { "s" }
    );
    if count == 0 {
        out.push_str("  no runnable blocks\n");
        return out;
    }
    let mut last_heading: Option<&[String]> = None;
    for (index, step) in lab.steps.iter().enumerate() {
        let heading: &[String] = match step.heading.split_first() {
            Some((first, rest)) if *first == lab.title => rest,
            _ => &step.heading,
        };
        if last_heading != Some(heading) {
            let title = if heading.is_empty() {
                "(before any heading)".to_string()
            } else {
                heading.join(" › ")
            };
            let _ = writeln!(out, "\n  {title}");
            last_heading = Some(heading);
        }
        let _ = writeln!(
            out,
            "  {:>3}. {:<13} line {:<5} {}",
            index + 1,
            step.kind.name(),
            step.span.line,
            step.reason
        );
        let mut notes = Vec::new();
        if let Some(session) = &step.session {
            let number = lab
                .steps
                .iter()
                .position(|s| &s.id == session)
                .map_or(0, |i| i + 1);
            notes.push(format!(
                "typed into the {} session of step {number}",
                step.dialect
            ));
        }
        let check = thresholds
            .get(step.id.as_str())
            .map(|(threshold, pattern)| match pattern {
                Some(pattern) => format!("output matches /{pattern}/"),
                None => format!("similarity {threshold}"),
            });
        if step.kind == StepKind::Output {
            match &step.output_of {
                Some(of) => {
                    let number = lab
                        .steps
                        .iter()
                        .position(|s| &s.id == of)
                        .map_or(0, |i| i + 1);
                    let mut note = format!("what step {number} prints; never run");
                    if let Some(check) = &check {
                        note.push_str(&format!("; checked against its output ({check})"));
                    }
                    notes.push(note);
                }
                None => notes.push("printed output; never run".into()),
            }
        } else if let Some(check) = &check {
            notes.push(format!(
                "its printed lines are checked against its output ({check})"
            ));
        }
        if !step.placeholders.is_empty() {
            let names: Vec<&str> = step.placeholders.iter().map(|p| p.text.as_str()).collect();
            notes.push(format!("fill in {}", names.join(", ")));
        }
        if let Some(opens) = &step.opens {
            let inputs = lab.session_inputs(&step.id).count();
            notes.push(format!(
                "{} shell; {inputs} input block{}",
                opens.dialect,
                if inputs == 1 { "" } else { "s" }
            ));
        }
        if step.kind == StepKind::Watch {
            let stop = match (&step.annotation.until, &step.stop_hint) {
                (Some(until), _) => format!("stops when output matches /{until}/"),
                (None, Some(hint)) => format!("stops at the watch limit (prose: when {hint})"),
                (None, None) => "stops at the watch limit".to_string(),
            };
            notes.push(stop);
        }
        if let Some(expect) = &step.annotation.expect {
            notes.push(format!("expect {expect}"));
        } else if step.kind == StepKind::Verify {
            notes.push("expect snapshot".into());
        }
        if let Some(timeout) = step.annotation.timeout {
            notes.push(format!("timeout {}s", timeout.as_secs()));
        }
        if let Some(retry) = step.annotation.retry {
            notes.push(format!("retry for {}s", retry.as_secs()));
        }
        if let Some(error) = &step.analysis.error {
            notes.push(format!(
                "shell syntax error at line {}: {}",
                error.line, error.message
            ));
        }
        let _ = writeln!(
            out,
            "       id {}{}",
            step.id,
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        );
        let lines: Vec<&str> = step.code.lines().collect();
        // Printed output is shown as printed, without the prompt a command gets.
        let prompt = if step.kind == StepKind::Output {
            "|"
        } else {
            "$"
        };
        for line in lines.iter().take(SHOWN_LINES) {
            let _ = writeln!(out, "       {prompt} {}", truncate(line, 100));
        }
        if lines.len() > SHOWN_LINES {
            let _ = writeln!(
                out,
                "       … {} more line{}",
                lines.len() - SHOWN_LINES,
                if lines.len() - SHOWN_LINES == 1 {
                    ""
                } else {
                    "s"
                }
            );
        }
    }
    out
}
