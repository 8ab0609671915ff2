//! A model of the cluster a lab builds, replayed from its kubectl commands and manifests.
//!
//! The lab's steps are replayed in order — the main sequence, then the Cleanup section — into an
//! in-memory set of objects: namespaces, workloads with their selector and pod-template labels,
//! pods, Services, VirtualServices, DestinationRules and anything else created by name. Objects
//! are kept as JSON, so that `kubectl patch` (strategic merge, JSON merge, JSON patch) and
//! `kubectl apply` act on them as the API server would, and every check reads the same form.
//!
//! The model only reports what it can know. A namespace is *certain* when the lab created it (or
//! it is `default`) and nothing the lint cannot see (a `make` target that deploys apps, a file it
//! cannot read, a script, a name held in `$VAR`) may have changed it; checks that conclude from
//! absence ("selects nothing", "never created") only run in certain namespaces.
//!
//! Checks made while replaying: a patch or apply the API server rejects because template labels
//! no longer match the immutable selector; a second VirtualService for a host; a later
//! DestinationRule whose top-level policy is ignored; `-l` queries that match no pod; commands on
//! resources that do not exist; hand-labelled pods of a controller; deletes of the wrong kind or
//! of things never created. Checks on the state at the end of the main sequence: Services that
//! select nothing, subsets without endpoints, routes to undefined subsets, short hosts with no
//! Service in their namespace. After the Cleanup section: what it leaves behind.
//!
//! One module per job:
//! - [`state`]: the objects, the namespaces the model is sure of, and looking objects up;
//! - [`replay`]: each step's commands in order, programs other than kubectl, the reading verbs
//!   (`get`, `describe`, `wait`, `exec`, `logs`) and requests sent from pods;
//! - [`verbs`]: the nine kubectl verbs that change objects (`create`, `run`, `expose`, `label`,
//!   `patch`, `scale`, `set`, `rollout`, `delete`);
//! - [`apply`]: `kubectl apply|create|replace -f` with the manifests the lab wrote;
//! - [`mesh`]: routing — Istio's hosts, VirtualService and DestinationRule conflicts and subsets,
//!   and the Gateway API's routes, their Gateways and backends;
//! - [`end_state`]: the checks on the state after the main sequence and after the Cleanup section.

mod apply;
mod end_state;
mod mesh;
mod replay;
mod state;
mod verbs;

use super::Sink;
use super::manifest::Manifests;
use labbook::model::{Lab, StepKind};

use replay::replay_step;
use state::Model;

/// Replays the lab and runs every model check.
pub(crate) fn check(lab: &Lab, manifests: &Manifests, sink: &mut Sink<'_>) {
    let mut model = Model::new();
    let main: Vec<usize> = lab
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind.in_main_sequence())
        .map(|(i, _)| i)
        .collect();
    let cleanup: Vec<usize> = lab
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StepKind::Cleanup)
        .map(|(i, _)| i)
        .collect();
    for &s in &main {
        replay_step(lab, s, manifests, &mut model, sink);
    }
    end_state::end_state(&model, sink);
    if cleanup.is_empty() {
        return;
    }
    model.cleanup = true;
    let leftover_before = model.all_opaque;
    for &s in &cleanup {
        replay_step(lab, s, manifests, &mut model, sink);
    }
    if model.all_opaque || leftover_before {
        return;
    }
    let at = lab.steps[cleanup[0]].span.line;
    end_state::cleanup_leftover(&model, at, sink);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic;
    use std::path::Path;

    /// The rules and lines the manifest and model checks report for a lab.
    pub(super) fn found(markdown: &str) -> Vec<(String, usize)> {
        let lab = Lab::parse("t.md", markdown).expect("parses");
        let mut sink = Sink::new(Path::new("t.md"));
        let manifests = super::super::manifest::check(&lab, &mut sink);
        check(&lab, &manifests, &mut sink);
        let diagnostics: Vec<Diagnostic> = sink.into_diagnostics();
        diagnostics.into_iter().map(|d| (d.rule, d.line)).collect()
    }

    /// A lab of one bash block per item.
    pub(super) fn blocks(blocks: &[&str]) -> String {
        let mut markdown = String::from("# Lab\n");
        for block in blocks {
            markdown.push_str(&format!("\n```bash\n{block}\n```\n"));
        }
        markdown
    }
}
