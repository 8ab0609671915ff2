//! The note under printed output ("What you should see"): what the last run made of it.
//!
//! When the report's check of a block mismatched, the block says so where the reader looks ("The
//! last run printed something different") and keeps what the run printed in a `<details>`
//! element, escaped; when it matched, a quiet line says when. Without a report, or a check of the
//! block, nothing is added: the printed text stands as the author wrote it.

use labbook::model::{Lab, Step};
use labbook::report::{PrintedCheck, PrintedVerdict, Report};

use super::html::{date, escape, escape_pre};

/// The note for a step's printed output, as one line of HTML, or `None` when the last run has no
/// check of it.
pub fn note(report: Option<&Report>, lab: &Lab, step: &Step) -> Option<String> {
    let report = report?;
    let check = last_check(report, lab, step)?;
    let day = date(&report.started_at);
    let day = day.split(' ').next().unwrap_or(&day);
    let when = format!(
        "<time datetime=\"{}\">{}</time>",
        escape(&report.started_at),
        escape(day)
    );
    Some(match check.verdict {
        PrintedVerdict::Matched => {
            format!("<p class=\"labbook-printed-matched\">matched the last run on {when}</p>")
        }
        PrintedVerdict::Failed | PrintedVerdict::Warned => format!(
            "<div class=\"labbook-printed-stale\"><p><strong>The last run printed something \
             different</strong> ({when}, similarity {}).</p><details><summary>What the last \
             run printed</summary><pre>{}</pre></details></div>",
            check.similarity,
            escape_pre(check.actual.as_deref().unwrap_or(""))
        ),
    })
}

/// The check of the printed text of `step` in the report's run of its lab.
fn last_check<'a>(report: &'a Report, lab: &Lab, step: &Step) -> Option<&'a PrintedCheck> {
    report
        .lab(&lab.path)?
        .steps
        .iter()
        .flat_map(|s| &s.printed)
        .find(|c| c.block == step.id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use labbook::report::{LabReport, LabStatus, StepReport, StepStatus};
    use labbook::{Lab, StepKind};

    use super::*;

    fn report(verdict: PrintedVerdict, actual: Option<&str>) -> Report {
        Report {
            started_at: "2026-11-30T09:52:37Z".into(),
            backend: "none".into(),
            tools: BTreeMap::new(),
            version: labbook::report::CONTRACT_VERSION,
            versions: BTreeMap::new(),
            labs: vec![LabReport {
                path: "src/lab.md".into(),
                title: "Lab".into(),
                status: LabStatus::Passed,
                duration_ms: 1,
                versions: BTreeMap::new(),
                images: None,
                steps: vec![StepReport {
                    id: "intro-1".into(),
                    kind: StepKind::Run,
                    line: 3,
                    status: StepStatus::Passed,
                    exit_code: Some(0),
                    duration_ms: 1,
                    output: String::new(),
                    failure: None,
                    diff: None,
                    settle_ms: None,
                    printed: vec![PrintedCheck {
                        block: "intro-1-output".into(),
                        line: 9,
                        similarity: 0.25,
                        threshold: 0.8,
                        verdict,
                        actual: actual.map(str::to_string),
                        diff: None,
                    }],
                }],
                warnings: vec![],
                diagnostics: vec![],
            }],
        }
    }

    #[test]
    fn notes_tell_what_the_last_run_printed() {
        let lab = Lab::parse(
            "/b/src/lab.md",
            "# Lab\n\n```bash\necho hi\n```\n\nOutput:\n\n```text\nhello\n```\n",
        )
        .expect("parses");
        let printed = &lab.steps[1];
        assert_eq!(printed.id, "intro-1-output");
        /// The verdict, the actual output, what the note holds and what it must not.
        type Case<'a> = (
            PrintedVerdict,
            Option<&'a str>,
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (
                PrintedVerdict::Matched,
                None,
                &[
                    "class=\"labbook-printed-matched\"",
                    "matched the last run on <time datetime=\"2026-11-30T09:52:37Z\">2026-11-30</time>",
                ],
                &["something different"],
            ),
            (
                PrintedVerdict::Warned,
                Some("hi & <b>bye</b>"),
                &[
                    "The last run printed something different",
                    "<details>",
                    "<pre>hi &amp; &lt;b&gt;bye&lt;/b&gt;</pre>",
                    "similarity 0.25",
                ],
                &["<b>bye"],
            ),
            (
                PrintedVerdict::Failed,
                Some("x"),
                &["The last run printed something different"],
                &["matched"],
            ),
        ];
        for (verdict, actual, has, lacks) in cases {
            let note = note(Some(&report(*verdict, *actual)), &lab, printed).expect("a note");
            for needle in *has {
                assert!(note.contains(needle), "{verdict:?}: {needle} in {note}");
            }
            for needle in *lacks {
                assert!(!note.contains(needle), "{verdict:?}: {needle} in {note}");
            }
            assert!(!note.contains('\n'), "one line: {note}");
        }
        // No note without a report, for a step without a check, or for another lab.
        assert!(note(None, &lab, printed).is_none());
        let r = report(PrintedVerdict::Matched, None);
        assert!(note(Some(&r), &lab, &lab.steps[0]).is_none());
        let other = Lab::parse("/b/src/other.md", &lab.source).expect("parses");
        assert!(note(Some(&r), &other, &other.steps[1]).is_none());
    }
}
