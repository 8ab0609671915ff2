//! `labbook run --only STEP | --from STEP | --until STEP [--no-setup]`: the author loop, running
//! part of a lab instead of all of it.
//!
//! A STEP is a step id (as `labbook plan` shows it) or a Markdown line inside the step's block.
//! The lab's steps outside the range are left out of the run (and of its report); `setup` steps
//! always stay, as the steps after them need what they prepare, unless `--no-setup` is given.
//! `troubleshoot` and `cleanup` steps stay too: they run after a failure and at the end as in a
//! whole run. A kept `session-input` keeps the `open-session` step it types into.

use labbook::{Lab, StepKind};

/// Which steps of a lab to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepFilter {
    /// Run only this step.
    pub only: Option<String>,
    /// Run from this step to the end.
    pub from: Option<String>,
    /// Run up to and including this step.
    pub until: Option<String>,
    /// Leave `setup` steps out too.
    pub no_setup: bool,
}

/// A STEP that names no step of a lab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "failed to find step `{step}` in {lab}: give a step id or a Markdown line of a block (`labbook plan {lab}` lists them)"
)]
pub struct UnknownStep {
    /// The selector as given.
    pub step: String,
    /// The chapter.
    pub lab: String,
}

impl StepFilter {
    /// Whether the whole lab runs.
    pub fn is_all(&self) -> bool {
        self.only.is_none() && self.from.is_none() && self.until.is_none() && !self.no_setup
    }

    /// The positions of the lab's steps to run, in order.
    pub fn select(&self, lab: &Lab) -> Result<Vec<usize>, UnknownStep> {
        let find = |step: &String| {
            position(lab, step).ok_or_else(|| UnknownStep {
                step: step.clone(),
                lab: lab.path.display().to_string(),
            })
        };
        let last = lab.steps.len().saturating_sub(1);
        let (first, end) = match &self.only {
            Some(only) => {
                let at = find(only)?;
                (at, at)
            }
            None => (
                self.from.as_ref().map(find).transpose()?.unwrap_or(0),
                self.until.as_ref().map(find).transpose()?.unwrap_or(last),
            ),
        };
        let mut keep: Vec<bool> = lab
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| match step.kind {
                StepKind::Setup => !self.no_setup,
                StepKind::Troubleshoot | StepKind::Cleanup => true,
                _ => (first..=end).contains(&i),
            })
            .collect();
        for (i, step) in lab.steps.iter().enumerate() {
            if keep[i]
                && step.kind == StepKind::SessionInput
                && let Some(open) = lab.steps.iter().position(|s| {
                    s.kind == StepKind::OpenSession && Some(&s.id) == step.session.as_ref()
                })
            {
                keep[open] = true;
            }
        }
        Ok((0..lab.steps.len()).filter(|&i| keep[i]).collect())
    }

    /// Keeps only the selected steps of the lab.
    pub fn apply(&self, lab: &mut Lab) -> Result<(), UnknownStep> {
        if self.is_all() {
            return Ok(());
        }
        let selected = self.select(lab)?;
        let steps = std::mem::take(&mut lab.steps);
        lab.steps = steps
            .into_iter()
            .enumerate()
            .filter(|(i, _)| selected.contains(i))
            .map(|(_, step)| step)
            .collect();
        Ok(())
    }
}

/// The step with this id, or whose block holds this Markdown line (from its fence to its last
/// code line).
fn position(lab: &Lab, step: &str) -> Option<usize> {
    if let Some(i) = lab.steps.iter().position(|s| s.id == step) {
        return Some(i);
    }
    let line: usize = step.parse().ok()?;
    lab.steps.iter().position(|s| {
        let end = s.code_lines.last().copied().unwrap_or(s.span.line) + 1;
        (s.span.line..=end).contains(&line)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn chapter(name: &str) -> Lab {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(name);
        labbook::course::load_chapter(&path).expect("fixture loads")
    }

    fn filter(only: Option<&str>, from: Option<&str>, until: Option<&str>) -> StepFilter {
        StepFilter {
            only: only.map(Into::into),
            from: from.map(Into::into),
            until: until.map(Into::into),
            no_setup: false,
        }
    }

    #[test]
    fn selects_ranges_by_id_or_line_and_keeps_setup() {
        let lab = chapter("run/selection.md");
        let cases = [
            (filter(None, None, None), vec![0, 1, 2, 3]),
            (filter(Some("first-exercise-1"), None, None), vec![0, 1]),
            (filter(Some("20"), None, None), vec![0, 2]),
            (filter(Some("23"), None, None), vec![0, 2]),
            (filter(None, Some("15"), None), vec![0, 1, 2, 3]),
            (filter(None, None, Some("second-exercise-1")), vec![0, 1, 2]),
            (filter(None, Some("27"), Some("28")), vec![0, 3]),
        ];
        for (f, expected) in cases {
            assert_eq!(f.select(&lab).expect("known"), expected, "{f:?}");
        }
        let no_setup = StepFilter {
            no_setup: true,
            ..filter(Some("third-exercise-1"), None, None)
        };
        assert_eq!(no_setup.select(&lab).expect("known"), vec![3]);
        for unknown in ["12", "24", "nope", ""] {
            let err = filter(Some(unknown), None, None).select(&lab);
            assert!(err.is_err(), "{unknown}");
        }
    }

    #[test]
    fn a_session_input_keeps_its_session() {
        let lab = chapter("labs/sessions.md");
        let input = lab
            .steps
            .iter()
            .position(|s| s.kind == StepKind::SessionInput)
            .expect("an input");
        let picked = filter(Some(&lab.steps[input].id), None, None)
            .select(&lab)
            .expect("known");
        let kinds: Vec<StepKind> = picked.iter().map(|&i| lab.steps[i].kind).collect();
        assert!(kinds.contains(&StepKind::OpenSession), "{kinds:?}");
        assert!(picked.contains(&input));
    }
}
