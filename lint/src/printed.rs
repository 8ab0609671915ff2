//! Printed output ("You should see:") against what labbook knows of the real output, without a
//! cluster: the accepted snapshot of the step it shows.
//!
//! A block whose printed text contradicts the step's accepted snapshot beyond its threshold shows
//! the reader something the last accepted run did not print; a block of printed output after no
//! command that runs can never be checked at all.

use labbook::course::Course;
use labbook::model::{Lab, StepKind};
use labbook::redact::Redactor;
use labbook::snapshot;

use super::{Severity, Sink};

/// Runs the checks on one lab.
pub(crate) fn check(course: &Course, lab: &Lab, sink: &mut Sink<'_>) {
    unchecked(lab, sink);
    // The book's redactions were checked when it was loaded; a failure here only loses them.
    let redactor = Redactor::new(&course.config.redactions).unwrap_or_default();
    let settings = course.config.printed_output;
    for (index, step) in lab.steps.iter().enumerate() {
        let expectations = lab.printed_expectations(index);
        // A write-file snapshot holds the file written, not what the step printed.
        if expectations.is_empty() || !snapshot::expected(step) || step.kind == StepKind::WriteFile
        {
            continue;
        }
        let Some(accepted) = snapshot::read_accepted(course, lab, step) else {
            continue;
        };
        for expected in expectations {
            let threshold = expected.threshold.unwrap_or(settings.threshold);
            let comparison = expected.compare(&accepted, &redactor);
            if comparison.passes(threshold) {
                continue;
            }
            sink.emit(
                "printed-contradicts-snapshot",
                Severity::Warning,
                expected.line,
                format!(
                    "this printed output differs from the accepted snapshot of step {} \
                     (similarity {}, needs {threshold}): the page shows the reader something the \
                     last accepted run did not print",
                    index + 1,
                    comparison.similarity
                ),
                Some(
                    "update the printed block to what the step prints now, or review the \
                     snapshot with `labbook review` if the step's output is what changed"
                        .into(),
                ),
            );
        }
    }
}

/// Printed output that follows no command that runs.
fn unchecked(lab: &Lab, sink: &mut Sink<'_>) {
    for step in lab.steps.iter().filter(|s| s.kind == StepKind::Output) {
        let shown = step
            .output_of
            .as_deref()
            .and_then(|id| lab.step(id))
            .is_some_and(|s| s.kind.runs());
        if shown {
            continue;
        }
        sink.emit(
            "printed-without-step",
            Severity::Warning,
            step.span.line,
            "this block of printed output follows no command that runs, so no run can check it",
            Some("put it right after the block whose output it shows".into()),
        );
    }
}
