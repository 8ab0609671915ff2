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
            if keep[i] && step.kind == StepKind::SessionInput {
                if let Some(open) = lab.steps.iter().position(|s| {
                    s.kind == StepKind::OpenSession && Some(&s.id) == step.session.as_ref()
                }) {
                    keep[open] = true;
                }
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
