//! The nine kubectl verbs that change objects in the model: `create`, `run`, `expose`, `label`,
//! `patch` (strategic merge, JSON merge, JSON patch), `scale`, `set`, `rollout` and `delete`, with
//! the checks they allow (a rejected selector change, labels set by hand on a controller's pods,
//! an unknown container, a delete of the wrong kind or of something never created).

use serde_json::{Value, json};

use super::state::{
    Model, exists, generated_pod_name, labels_at, named_targets, new_object, upsert,
    workload_selector,
};
use crate::kubectl::{
    Invocation, Labels, Selector, is_dynamic, is_namespaced, is_workload, kind_of, parse_labels,
    split_kind_name,
};
use crate::manifest::Doc;
use crate::{Severity, Sink};

/// The container name `kubectl create deployment` derives from an image.
pub(super) fn container_name(image: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split('@').next().unwrap_or(base);
    let base = base.split(':').next().unwrap_or(base);
    base.replace(['_', '.'], "-").to_ascii_lowercase()
}

/// Strategic merge as kubectl applies it to the kinds labs patch: maps merge, `null` deletes,
/// and lists of named items (containers, ports, env) merge by name; other lists are replaced.
pub(super) fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, value) in p {
                if key.starts_with('$') {
                    continue;
                }
                if value.is_null() {
                    t.remove(key);
                } else if let Some(existing) = t.get_mut(key) {
                    strategic_merge(existing, value);
                } else {
                    t.insert(key.clone(), value.clone());
                }
            }
        }
        (Value::Array(t), Value::Array(p)) => {
            let merge_key = ["name", "containerPort", "port", "mountPath", "ip"]
                .into_iter()
                .find(|k| !p.is_empty() && p.iter().all(|item| item.get(k).is_some()));
            match merge_key {
                Some(k) => {
                    for item in p {
                        match t.iter_mut().find(|e| e.get(k) == item.get(k)) {
                            Some(existing) => strategic_merge(existing, item),
                            None => t.push(item.clone()),
                        }
                    }
                }
                None => *t = p.clone(),
            }
        }
        (t, p) => *t = p.clone(),
    }
}

pub(super) fn create(inv: &Invocation<'_>, model: &mut Model) {
    let Some(kind) = inv.positionals.first().and_then(|k| kind_of(k)) else {
        // `create secret generic`, `create role`, ...: a name we may not know how to find.
        return;
    };
    let ns = model.namespace_of(inv);
    // `create service clusterip NAME`, `create secret generic NAME`: a type word first.
    let typed = matches!(kind, "Service" | "Secret");
    let name = inv.positionals.get(if typed { 2 } else { 1 }).copied();
    let Some(name) = name else { return };
    if is_dynamic(name) {
        model.make_opaque(Some(&ns));
        return;
    }
    let json = match kind {
        "Deployment" => {
            let images = inv.flag_values(&["--image"]);
            let replicas: i64 = inv
                .flag(&["--replicas", "-r"])
                .and_then(|r| r.parse().ok())
                .unwrap_or(1);
            let containers: Vec<Value> = images
                .iter()
                .map(|image| json!({"name": container_name(image), "image": image}))
                .collect();
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}
                }
            })
        }
        "Service" => json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}}
        }),
        _ => json!({"metadata": {"name": name}}),
    };
    if matches!(
        kind,
        "Job" | "CronJob" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
    ) {
        // Created from flags the model does not read: their pods' labels are unknown.
        model.unknown_pod_labels.insert(ns.clone());
    }
    let object = new_object(kind, Some(&ns), name, json, inv.line, model);
    upsert(model, object);
}

pub(super) fn run(inv: &Invocation<'_>, model: &mut Model) {
    let Some(name) = inv.positionals.first().copied() else {
        return;
    };
    let ns = model.namespace_of(inv);
    if is_dynamic(name) {
        model.make_opaque(Some(&ns));
        return;
    }
    let labels = match inv.flag(&["--labels", "-l"]) {
        Some(text) => match parse_labels(text) {
            Some(labels) => labels,
            None => {
                model.unknown_pod_labels.insert(ns.clone());
                Labels::new()
            }
        },
        None => [("run".to_string(), name.to_string())]
            .into_iter()
            .collect(),
    };
    let json = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": name, "image": inv.flag(&["--image"]).unwrap_or("")}]}
    });
    let mut object = new_object("Pod", Some(&ns), name, json, inv.line, model);
    object.ephemeral = inv.has(None, "--rm");
    upsert(model, object);
}

pub(super) fn expose(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
    let Some((kind, name)) = named_targets(inv).into_iter().next() else {
        return;
    };
    let ns = model.namespace_of(inv);
    let service = inv.flag(&["--name"]).unwrap_or(&name).to_string();
    if is_dynamic(&service) {
        model.make_opaque(Some(&ns));
        return;
    }
    let source = model.get(kind, Some(&ns), &name).map(|o| o.json.clone());
    let selector = match inv.selector() {
        Some(text) => parse_labels(text),
        None => source.as_ref().and_then(|json| match kind {
            "Pod" => Some(labels_at(json, &["metadata", "labels"])),
            "Service" => Some(labels_at(json, &["spec", "selector"])),
            _ => {
                let selector = json.get("spec")?.get("selector")?;
                // A selector with expressions cannot be copied into a Service.
                selector
                    .get("matchExpressions")
                    .is_none()
                    .then(|| labels_at(selector, &["matchLabels"]))
            }
        }),
    };
    if source.is_none() && !exists(inv, kind, &name, false, model, sink) && model.certain(&ns) {
        return;
    }
    let json = match selector {
        Some(selector) => {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": service}, "spec": {"selector": selector}})
        }
        None => {
            model.unknown_pod_labels.insert(ns.clone());
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": service}, "spec": {}})
        }
    };
    let object = new_object("Service", Some(&ns), &service, json, inv.line, model);
    upsert(model, object);
}

pub(super) fn label(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
    let ns = model.namespace_of(inv);
    let mut kind: Option<&'static str> = None;
    let mut names = Vec::new();
    let mut changes = Labels::new();
    let mut removed = Vec::new();
    for (i, word) in inv.positionals.iter().enumerate() {
        if let Some((k, name)) = split_kind_name(word) {
            kind = Some(k);
            names.push(name.to_string());
        } else if i == 0 {
            kind = kind_of(word);
        } else if let Some((k, v)) = word.split_once('=') {
            changes.insert(k.to_string(), v.to_string());
        } else if let Some(k) = word.strip_suffix('-') {
            removed.push(k.to_string());
        } else {
            names.push(word.to_string());
        }
    }
    let Some(kind) = kind else { return };
    if kind != "Pod" {
        // Labels on a Deployment or Service object change nothing its pods carry.
        for name in &names {
            if let Some(i) = model.find(kind, Some(&ns), name)
                && let Some(labels) = model.objects[i]
                    .json
                    .pointer_mut("/metadata/labels")
                    .and_then(Value::as_object_mut)
            {
                for (k, v) in &changes {
                    labels.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        return;
    }
    if changes.values().any(|v| is_dynamic(v)) {
        model.unknown_pod_labels.insert(ns.clone());
        return;
    }
    let mut managed: Vec<String> = Vec::new();
    if let Some(text) = inv.selector() {
        let Some(selector) = Selector::parse(text) else {
            model.unknown_pod_labels.insert(ns.clone());
            return;
        };
        let targets: Vec<usize> = model
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.namespace.as_deref() == Some(ns.as_str()))
            .filter(|(_, o)| {
                let path: &[&str] = if is_workload(&o.kind) {
                    &["spec", "template", "metadata", "labels"]
                } else if o.kind == "Pod" {
                    &["metadata", "labels"]
                } else {
                    return false;
                };
                selector.matches(&labels_at(&o.json, path))
            })
            .map(|(i, _)| i)
            .collect();
        for i in targets {
            let object = &mut model.objects[i];
            if is_workload(&object.kind) {
                managed.push(object.describe());
                object.hand_labels.push(changes.clone());
            } else if let Some(labels) = object
                .json
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                for (k, v) in &changes {
                    labels.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
    }
    for name in &names {
        match model.find("Pod", Some(&ns), name) {
            Some(i) if !is_dynamic(name) => {
                if let Some(labels) = model.objects[i]
                    .json
                    .pointer_mut("/metadata/labels")
                    .and_then(Value::as_object_mut)
                {
                    for (k, v) in &changes {
                        labels.insert(k.clone(), Value::String(v.clone()));
                    }
                }
            }
            // A pod of a controller (its name is generated, or read into `$POD`).
            _ => {
                model.unknown_pod_labels.insert(ns.clone());
            }
        }
    }
    if !managed.is_empty() && !changes.is_empty() {
        sink.emit(
            "label-managed-pods",
            Severity::Warning,
            inv.line,
            format!(
                "these labels are set by hand on pods of {}; the controller replaces its pods (a rollout, a restart, a crash) without them, and pods of one Deployment all run the same version whatever their label says",
                managed.join(", ")
            ),
            Some("put the labels in the pod template (a separate Deployment per version with `version:` in `spec.template.metadata.labels`)".into()),
        );
    }
}

/// Checks a workload change the API server validates; returns the reason it is rejected.
pub(super) fn workload_rejection(old: Option<&Value>, new: &Value) -> Option<String> {
    let selector = workload_selector(new)?;
    if selector.is_empty() {
        return None;
    }
    if let Some(old) = old
        && let Some(old_selector) = workload_selector(old)
        && old_selector != selector
    {
        return Some(format!(
            "`spec.selector` is immutable: it changes from `{old_selector}` to `{selector}`"
        ));
    }
    let template = labels_at(new, &["spec", "template", "metadata", "labels"]);
    (!selector.matches(&template)).then(|| {
        format!(
            "the pod template labels `{}` no longer match the selector `{selector}`",
            Selector::from_labels(&template)
        )
    })
}

pub(super) fn patch(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
    let Some((kind, name)) = named_targets(inv).into_iter().next() else {
        return;
    };
    if !exists(inv, kind, &name, false, model, sink) {
        return;
    }
    let ns = model.namespace_of(inv);
    let Some(index) = model.find(kind, is_namespaced(kind).then_some(ns.as_str()), &name) else {
        return;
    };
    let Some(text) = inv.flag(&["-p", "--patch"]) else {
        // `--patch-file`: content the lint does not see.
        model.make_opaque(Some(&ns));
        return;
    };
    if is_dynamic(text) {
        model.make_opaque(Some(&ns));
        return;
    }
    let Some(patch) = serde_json::from_str::<Value>(text).ok().or_else(|| {
        crate::yaml::parse_documents(text)
            .ok()
            .and_then(|docs| docs.first().map(|d| d.to_json()))
    }) else {
        return;
    };
    let old = model.objects[index].json.clone();
    let mut new = old.clone();
    match inv.flag(&["--type"]).unwrap_or("strategic") {
        "merge" => json_patch::merge(&mut new, &patch),
        "json" => {
            let Ok(ops) = serde_json::from_value::<json_patch::Patch>(patch) else {
                return;
            };
            if json_patch::patch(&mut new, &ops).is_err() {
                return;
            }
        }
        _ => strategic_merge(&mut new, &patch),
    }
    if is_workload(kind)
        && let Some(reason) = workload_rejection(Some(&old), &new)
    {
        sink.emit(
            "selector-mismatch",
            Severity::Error,
            inv.line,
            format!("the API server rejects this patch of {kind} `{name}`: {reason}"),
            Some("keep the selector's labels in the template; to add a version, create a separate Deployment whose selector and template both carry it".into()),
        );
        return;
    }
    let object = &mut model.objects[index];
    object.json = new;
    object.doc = None;
    if object.here() {
        object.line = object.line.min(inv.line);
    } else {
        // Changed here: its lines are this chapter's from now on.
        object.from = None;
        object.line = inv.line;
    }
}

pub(super) fn scale(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
    let replicas: Option<i64> = inv.flag(&["--replicas"]).and_then(|r| r.parse().ok());
    let ns = model.namespace_of(inv);
    for (kind, name) in named_targets(inv) {
        if exists(inv, kind, &name, false, model, sink)
            && let Some(i) = model.find(kind, Some(&ns), &name)
            && let (Some(replicas), Some(spec)) = (
                replicas,
                model.objects[i]
                    .json
                    .get_mut("spec")
                    .and_then(Value::as_object_mut),
            )
        {
            spec.insert("replicas".into(), replicas.into());
        }
    }
}

pub(super) fn set(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
    let Some((what, rest)) = inv.shift() else {
        return;
    };
    let ns = model.namespace_of(inv);
    for (kind, name) in named_targets(&rest) {
        if !exists(inv, kind, &name, false, model, sink) || what != "image" {
            continue;
        }
        let Some(i) = model.find(kind, Some(&ns), &name) else {
            continue;
        };
        let containers: Vec<String> = model.objects[i]
            .json
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if containers.is_empty() {
            continue;
        }
        for assignment in rest.positionals.iter().filter(|p| p.contains('=')) {
            let container = assignment.split('=').next().unwrap_or("");
            if container != "*"
                && !is_dynamic(container)
                && !containers.iter().any(|c| c == container)
            {
                sink.emit(
                    "unknown-container",
                    Severity::Error,
                    inv.line,
                    format!(
                        "{kind} `{name}` has no container `{container}` (it has {}), so `kubectl set image` fails",
                        containers.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                    ),
                    Some(format!("use `{}=IMAGE`", containers[0])),
                );
            }
        }
        // New pods: labels set by hand on the old ones are gone.
        model.objects[i].hand_labels.clear();
    }
}

pub(super) fn rollout(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
    let Some((action, rest)) = inv.shift() else {
        return;
    };
    let ns = model.namespace_of(inv);
    for (kind, name) in named_targets(&rest) {
        if exists(inv, kind, &name, false, model, sink)
            && matches!(action, "restart" | "undo")
            && let Some(i) = model.find(kind, Some(&ns), &name)
        {
            model.objects[i].hand_labels.clear();
        }
    }
}

pub(super) fn delete(
    inv: &Invocation<'_>,
    stdin: Option<&Vec<Doc>>,
    guarded: bool,
    model: &mut Model,
    sink: &mut Sink<'_>,
) {
    let ns = model.namespace_of(inv);
    let ignore = inv.has(None, "--ignore-not-found") || guarded;
    let files = inv.flag_values(&["-f", "--filename"]);
    if !files.is_empty() {
        for file in files {
            let docs = if file == "-" {
                stdin.cloned()
            } else {
                model.files.get(file.trim_start_matches("./")).cloned()
            };
            if docs.is_none() {
                // A file the lint cannot see: anything may be gone now.
                model.all_opaque = true;
            }
            for doc in docs.into_iter().flatten() {
                let (Some(kind), Some(name)) = (
                    doc.json.get("kind").and_then(Value::as_str),
                    doc.json.pointer("/metadata/name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let doc_ns = doc
                    .json
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(&ns)
                    .to_string();
                if let Some(i) =
                    model.find(kind, is_namespaced(kind).then_some(doc_ns.as_str()), name)
                {
                    model.remove_at(i);
                }
            }
        }
        return;
    }
    if !inv.flag_values(&["-k", "--kustomize"]).is_empty() {
        model.all_opaque = true;
        return;
    }
    if inv.has(None, "--all") || inv.selector().is_some() {
        let kinds: Vec<&'static str> = inv
            .positionals
            .first()
            .map(|k| {
                k.split(',')
                    .flat_map(|word| match word {
                        // `all` is kubectl's category of workload kinds and Services.
                        "all" => vec![
                            "Pod",
                            "Service",
                            "Deployment",
                            "ReplicaSet",
                            "StatefulSet",
                            "DaemonSet",
                            "Job",
                            "CronJob",
                            "HorizontalPodAutoscaler",
                        ],
                        other => kind_of(other).into_iter().collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let selector = match inv.selector() {
            Some(text) => match Selector::parse(text) {
                Some(s) => Some(s),
                None => return,
            },
            None => None,
        };
        let all_ns = inv.all_namespaces();
        model.objects.retain(|o| {
            let matches_kind = kinds.contains(&o.kind.as_str());
            let matches_ns = all_ns || o.namespace.as_deref() == Some(ns.as_str());
            let matches_labels = selector
                .as_ref()
                .is_none_or(|s| s.matches(&labels_at(&o.json, &["metadata", "labels"])));
            !(matches_kind && matches_ns && matches_labels)
        });
        return;
    }
    for (kind, name) in named_targets(inv) {
        if is_dynamic(&name) {
            continue;
        }
        let scoped = is_namespaced(kind).then_some(ns.as_str());
        if let Some(i) = model.find(kind, scoped, &name) {
            model.remove_at(i);
            continue;
        }
        let certain = if is_namespaced(kind) {
            model.certain(&ns)
        } else {
            !model.all_opaque && kind == "Namespace"
        };
        if !certain || (kind == "Pod" && generated_pod_name(&name)) {
            continue;
        }
        let other = model
            .objects
            .iter()
            .find(|o| o.name == name && o.namespace.as_deref() == scoped && o.kind != kind);
        if let Some(other) = other {
            sink.emit(
                "delete-wrong-kind",
                Severity::Error,
                inv.line,
                format!(
                    "`{name}` is a {} (created at {}), not a {kind}: this delete fails and leaves it running",
                    other.kind,
                    other.origin()
                ),
                Some(format!(
                    "delete it as `kubectl delete {} {name}`",
                    other.kind.to_ascii_lowercase()
                )),
            );
        } else if !ignore {
            sink.emit(
                "delete-never-created",
                Severity::Warning,
                inv.line,
                format!("the lab never creates {kind} `{name}` (or it is already gone here), so this delete fails with NotFound"),
                Some("remove it, or add `--ignore-not-found` if another path may create it".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{blocks, found};
    use super::*;

    #[test]
    fn rejected_template_patches() {
        let markdown = blocks(&[
            "kubectl create deployment web --image=nginx\nkubectl patch deployment web -p '{\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"app\":\"site\"}}}}}'\nkubectl patch deployment web -p '{\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"version\":\"v1\"}}}}}'",
        ]);
        assert_eq!(found(&markdown), [("selector-mismatch".to_string(), 5)]);
    }

    #[test]
    fn strategic_merge_merges_named_lists() {
        let mut target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}, "keep": 1});
        strategic_merge(
            &mut target,
            &json!({"spec": {"containers": [{"name": "b", "image": "z"}]}, "keep": null}),
        );
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]}})
        );
    }
}
