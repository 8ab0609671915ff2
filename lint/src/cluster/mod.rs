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
//! The chapters of a course are replayed in reading order into one model ([`CourseModel`]): a
//! Service made in exercise 3 exists in exercise 4, as it does for a reader who follows the
//! course. What earlier chapters made only answers whether something exists; the checks that blame
//! an object stay with the chapter that made it (see [`state::Model::next_chapter`]).
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

/// The cluster a course's chapters build, carried from each chapter to the next.
#[derive(Debug)]
pub(crate) struct CourseModel {
    model: Model,
    /// The chapter replayed last, named as its diagnostics name it.
    previous: Option<String>,
}

impl CourseModel {
    /// The empty cluster a course starts with.
    pub(crate) fn new() -> Self {
        CourseModel {
            model: Model::new(),
            previous: None,
        }
    }
}

/// Replays the lab on the cluster the chapters before it left, and runs every model check.
pub(crate) fn check(
    lab: &Lab,
    manifests: &Manifests,
    course: &mut CourseModel,
    sink: &mut Sink<'_>,
) {
    if let Some(previous) = course.previous.replace(lab.path.display().to_string()) {
        course.model.next_chapter(&previous);
    }
    let model = &mut course.model;
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
        replay_step(lab, s, manifests, model, sink);
    }
    end_state::end_state(model, sink);
    if cleanup.is_empty() {
        return;
    }
    model.cleanup = true;
    let leftover_before = model.all_opaque;
    for &s in &cleanup {
        replay_step(lab, s, manifests, model, sink);
    }
    if model.all_opaque || leftover_before {
        return;
    }
    let at = lab.steps[cleanup[0]].span.line;
    end_state::cleanup_leftover(model, at, sink);
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
        check(&lab, &manifests, &mut CourseModel::new(), &mut sink);
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

    /// The rules and lines reported for each chapter of a course, replayed in order.
    fn found_in_order(chapters: &[String]) -> Vec<Vec<(String, usize)>> {
        let mut course = CourseModel::new();
        chapters
            .iter()
            .enumerate()
            .map(|(i, markdown)| {
                let path = format!("ch{i}.md");
                let lab = Lab::parse(&path, markdown).expect("parses");
                let mut sink = Sink::new(Path::new(&path));
                let manifests = super::super::manifest::check(&lab, &mut sink);
                check(&lab, &manifests, &mut course, &mut sink);
                sink.into_diagnostics()
                    .into_iter()
                    .map(|d| (d.rule, d.line))
                    .collect()
            })
            .collect()
    }

    fn virtual_service(name: &str, subset: &str) -> String {
        format!(
            "kubectl apply -f - <<'END'\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\nspec:\n  hosts:\n  - web\n  http:\n  - route:\n    - destination:\n        host: web\n        subset: {subset}\nEND"
        )
    }

    const RULE_V1: &str = "kubectl apply -f - <<'END'\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: web\nspec:\n  host: web\n  subsets:\n  - name: v1\n    labels:\n      app: web\nEND";

    #[test]
    fn chapters_carry_the_cluster_in_reading_order() {
        let web = "kubectl create deployment web --image=nginx:1.27\nkubectl expose deployment web --port=80";
        // (chapters, the rule and line of what each chapter must report)
        type Case = (Vec<String>, Vec<Vec<(&'static str, usize)>>);
        let cases: Vec<Case> = vec![
            // What exercise 1 made exists in exercise 2.
            (
                vec![
                    blocks(&[web]),
                    blocks(&["kubectl get service web\nkubectl scale deployment web --replicas=2"]),
                ],
                vec![vec![], vec![]],
            ),
            // Alone, the second chapter's lookups fail: the carry is what makes them pass.
            (
                vec![blocks(&["kubectl get service web"])],
                vec![vec![("missing-resource", 4)]],
            ),
            // A route in exercise 2 to a subset a DestinationRule of exercise 1 defines.
            (
                vec![
                    blocks(&[web, RULE_V1]),
                    blocks(&[&virtual_service("web", "v1")]),
                ],
                vec![vec![], vec![]],
            ),
            // ... and to one it does not define is still this chapter's defect.
            (
                vec![
                    blocks(&[web, RULE_V1]),
                    blocks(&[&virtual_service("web", "v2")]),
                ],
                vec![vec![], vec![("subset-undefined", 16)]],
            ),
            // Objects of exercise 1 are not blamed on exercise 2: no conflict with its
            // VirtualService, no leftover for its Cleanup section.
            (
                vec![
                    blocks(&[web, RULE_V1, &virtual_service("web", "v1")]),
                    format!(
                        "{}\n## Cleanup\n\n```bash\nkubectl delete virtualservice web-canary\n```\n",
                        blocks(&[&virtual_service("web-canary", "v1")])
                    ),
                ],
                vec![vec![], vec![]],
            ),
            // A Cleanup section that deletes everything leaves nothing for the next chapter.
            (
                vec![
                    format!(
                        "{}\n## Cleanup\n\n```bash\nkubectl delete deployment web\nkubectl delete service web\n```\n",
                        blocks(&[web])
                    ),
                    blocks(&["kubectl get service web"]),
                ],
                vec![vec![], vec![("missing-resource", 4)]],
            ),
        ];
        for (chapters, want) in cases {
            let found = found_in_order(&chapters);
            let want: Vec<Vec<(String, usize)>> = want
                .into_iter()
                .map(|c| c.into_iter().map(|(r, l)| (r.to_string(), l)).collect())
                .collect();
            assert_eq!(found, want, "{chapters:#?}");
        }
    }
}
