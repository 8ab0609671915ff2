//! The checks on the state the lab leaves: at the end of the main sequence (Services that select
//! no pod, then Istio's hosts, subsets and routes in [`super::mesh`]) and after the Cleanup section
//! (what it leaves behind).

use super::mesh;
use super::state::{Model, service_selector};
use crate::kubectl::Selector;
use crate::yaml::Seg;
use crate::{Severity, Sink};

/// The checks on the state at the end of the main sequence.
pub(super) fn end_state(model: &Model, sink: &mut Sink<'_>) {
    // Services that select no pod.
    for service in model
        .objects
        .iter()
        .filter(|o| o.kind == "Service" && o.here())
    {
        let ns = service.namespace.as_deref().unwrap_or("default");
        let Some(selector) = service_selector(&service.json) else {
            continue;
        };
        if !model.certain(ns) || model.unknown_pod_labels.contains(ns) {
            continue;
        }
        let selector = Selector::from_labels(&selector);
        if !model
            .pod_label_sets(ns)
            .iter()
            .any(|(l, _)| selector.matches(l))
        {
            sink.emit(
                "service-selects-nothing",
                Severity::Warning,
                service.line_of(&[Seg::Key("spec".into()), Seg::Key("selector".into())]),
                format!("Service `{}` selects `{selector}`, and no pod the lab runs has those labels: it has no endpoints", service.name),
                Some("make the selector match the pod template labels of the workload it fronts".into()),
            );
        }
    }
    mesh::routes(model, sink);
}

/// After the Cleanup section (at line `at`): what the main sequence created and it leaves behind.
pub(super) fn cleanup_leftover(model: &Model, at: usize, sink: &mut Sink<'_>) {
    for object in &model.objects {
        let ns_known = object
            .namespace
            .as_deref()
            .is_none_or(|ns| model.certain(ns));
        if object.main && !object.ephemeral && ns_known {
            sink.emit(
                "cleanup-leftover",
                Severity::Warning,
                at,
                format!(
                    "the Cleanup section leaves {}{} behind (created at line {})",
                    object.describe(),
                    object
                        .namespace
                        .as_deref()
                        .filter(|ns| *ns != "default")
                        .map(|ns| format!(" in namespace `{ns}`"))
                        .unwrap_or_default(),
                    object.line
                ),
                Some(format!(
                    "add `kubectl delete {} {}{}` (with `--ignore-not-found` if an optional step created it)",
                    object.kind.to_ascii_lowercase(),
                    object.name,
                    object
                        .namespace
                        .as_deref()
                        .filter(|ns| *ns != "default")
                        .map(|ns| format!(" -n {ns}"))
                        .unwrap_or_default()
                )),
            );
        }
    }
}
