//! The printed-output check in a run: after a step runs, what it printed is compared with the
//! printed output the book shows for it (an `output` block after it, or the printed lines of its
//! own `$ ` block), with [`labbook::similarity`].
//!
//! A mismatch fails the step, or only warns, as the book's `printed-output` setting says. Every
//! check, matched or not, is kept in the step's report with its figure and verdict; a mismatch
//! also keeps what the step printed (for the book's "the last run printed something different"
//! note) and a line diff headed by `chapter.md:LINE` of the printed block.

use labbook::report::{PrintedCheck, PrintedVerdict, StepReport, StepStatus};
use labbook::similarity::{Comparison, OnMismatch};
use labbook::{Lab, Step};

use super::console::Problem;
use super::judge::{Judge, Judgement};

/// Checks what step `index` printed (`output`) against each printed block of it, and adds the
/// checks to `judgement`. Only a step that passed is checked: the output of a failed command
/// says nothing about the printed text. A mismatch fails the step unless the book says to warn.
pub fn check(judge: &Judge, index: usize, output: &str, mut judgement: Judgement) -> Judgement {
    if !judgement.ok() {
        return judgement;
    }
    let lab = judge.lab;
    let settings = judge.course.config.printed_output;
    for expected in lab.printed_expectations(index) {
        let threshold = expected.threshold.unwrap_or(settings.threshold);
        let comparison = expected.compare(output, judge.redactor);
        let location = format!("{}:{}", lab.path.display(), expected.line);
        let verdict = match (comparison.passes(threshold), settings.on_mismatch) {
            (true, _) => PrintedVerdict::Matched,
            (false, OnMismatch::Fail) => PrintedVerdict::Failed,
            (false, OnMismatch::Warn) => PrintedVerdict::Warned,
        };
        let matched = verdict == PrintedVerdict::Matched;
        let diff = (!matched).then(|| diff(&location, &comparison));
        if verdict == PrintedVerdict::Failed && judgement.ok() {
            judgement.status = StepStatus::Failed;
            judgement.failure = Some(format!(
                "{location}: {}",
                mismatch(comparison.similarity, threshold)
            ));
            judgement.line = Some(expected.line);
            judgement.details = diff.clone();
        }
        judgement.printed.push(PrintedCheck {
            block: expected.block.to_string(),
            line: expected.line,
            similarity: comparison.similarity,
            threshold,
            verdict,
            actual: (!matched).then(|| comparison.actual.clone()),
            diff,
        });
    }
    judgement
}

/// What a mismatch says, after its location.
fn mismatch(similarity: f64, threshold: f64) -> String {
    format!(
        "the printed output differs from what the step printed (similarity {similarity}, needs \
         {threshold})"
    )
}

/// A line diff from the printed text to the output (both redacted), headed by the location.
fn diff(location: &str, comparison: &Comparison) -> String {
    let printed = format!("{}\n", comparison.printed);
    let actual = format!("{}\n", comparison.actual);
    let body = similar::TextDiff::from_lines(&printed, &actual)
        .unified_diff()
        .context_radius(3)
        .header("printed", "output")
        .to_string();
    format!("{location}\n{body}")
}

/// The warnings of a step's checks that mismatched under `on-mismatch = "warn"`: for the
/// console, the summary and GitHub annotations.
pub fn warnings(lab: &Lab, step: &Step, report: &StepReport) -> Vec<Problem> {
    report
        .printed
        .iter()
        .filter(|c| c.verdict == PrintedVerdict::Warned)
        .map(|c| Problem {
            path: lab.path.display().to_string(),
            line: c.line,
            lab: lab.title.clone(),
            step: step.id.clone(),
            message: format!(
                "{}:{}: {}",
                lab.path.display(),
                c.line,
                mismatch(c.similarity, c.threshold)
            ),
            detail: c.diff.clone(),
            warning: true,
        })
        .collect()
}
