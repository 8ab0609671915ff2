//! `kubectl apply|create|replace -f`: the manifests a heredoc or a file the lab wrote holds, added
//! to the model as the API server would (rejected selector changes, CRDs a default install does
//! not serve), with the Istio checks that compare a new object to older ones.

use serde_json::Value;

use super::mesh;
use super::state::{MISSING_CRDS, Model, new_object, upsert};
use super::verbs::workload_rejection;
use crate::kubectl::{Invocation, is_dynamic, is_namespaced, is_workload};
use crate::manifest::Doc;
use crate::yaml::Seg;
use crate::{Severity, Sink};

/// `apply|create|replace -f …`: manifests from a heredoc or a file the lab wrote.
pub(super) fn apply_files(
    inv: &Invocation<'_>,
    stdin: Option<&Vec<Doc>>,
    model: &mut Model,
    sink: &mut Sink<'_>,
) {
    let override_ns = inv.namespace();
    if !inv.flag_values(&["-k", "--kustomize"]).is_empty() {
        model.all_opaque = true;
        return;
    }
    for file in inv.flag_values(&["-f", "--filename"]) {
        let docs = if file == "-" {
            match stdin {
                Some(docs) => docs.clone(),
                // Piped from something the lint does not see (`istioctl kube-inject …`).
                None => {
                    model.make_opaque(override_ns);
                    model.all_opaque |= override_ns.is_none();
                    continue;
                }
            }
        } else {
            match model.files.get(file.trim_start_matches("./")) {
                Some(docs) => docs.clone(),
                None => {
                    // A file in the course tree, a folder or a URL: any namespace may change,
                    // and it may install CRDs.
                    model.all_opaque = true;
                    continue;
                }
            }
        };
        for doc in docs {
            apply_doc(inv, &doc, override_ns, model, sink);
        }
    }
}

pub(super) fn apply_doc(
    inv: &Invocation<'_>,
    doc: &Doc,
    override_ns: Option<&str>,
    model: &mut Model,
    sink: &mut Sink<'_>,
) {
    if !doc.accepted {
        return;
    }
    let kind = doc.kind().to_string();
    let group = doc
        .api_version()
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    if MISSING_CRDS.iter().any(|(g, k)| *g == group && *k == kind) && !model.crds.contains(&kind) {
        sink.emit(
            "manifest-missing-crd",
            Severity::Error,
            doc.line_of(&[Seg::Key("kind".into())]),
            format!("no {kind} CRD is installed: `istioctl install` does not create one, so `kubectl apply` fails with \"no matches for kind\""),
            Some(format!("pass the {kind} to `istioctl install -f FILE`, or set mesh-wide defaults with a supported resource")),
        );
        return;
    }
    if crate::istio::is_custom(doc.api_version())
        && crate::istio::schema(doc.api_version(), &kind).is_none()
        && model.unknown_kinds.insert(kind.clone())
    {
        sink.emit(
            "manifest-unknown-kind",
            Severity::Warning,
            doc.line_of(&[Seg::Key("kind".into())]),
            format!(
                "no schema the lint knows describes {kind} ({}), so its fields are not checked",
                doc.api_version()
            ),
            Some("if the course installs this CRD itself, check the manifest against it; otherwise check the spelling of `kind` and `apiVersion`".into()),
        );
    }
    if kind == "CustomResourceDefinition"
        && let Some(defined) = doc.json.pointer("/spec/names/kind").and_then(Value::as_str)
    {
        model.crds.insert(defined.to_string());
    }
    let Some(name) = doc.json.pointer("/metadata/name").and_then(Value::as_str) else {
        model.make_opaque(override_ns);
        return;
    };
    let doc_ns = doc
        .json
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let ns = doc_ns
        .or(override_ns)
        .map_or_else(|| model.default_ns.clone(), str::to_string);
    if is_dynamic(name) || is_dynamic(&ns) {
        model.make_opaque(Some(&ns));
        return;
    }
    let scoped = is_namespaced(&kind).then_some(ns.as_str());
    let existing = model.find(&kind, scoped, name);
    if is_workload(&kind) {
        let old = existing.map(|i| model.objects[i].json.clone());
        if let Some(reason) = workload_rejection(old.as_ref(), &doc.json) {
            sink.emit(
                "selector-mismatch",
                Severity::Error,
                doc.line_of(&[Seg::Key("spec".into()), Seg::Key("selector".into())]),
                format!("the API server rejects {kind} `{name}`: {reason}"),
                Some("make `spec.selector.matchLabels` a subset of `spec.template.metadata.labels`; to change a selector, delete the object first".into()),
            );
            return;
        }
    }
    if existing.is_none() {
        match kind.as_str() {
            "VirtualService" => mesh::virtual_service_conflict(doc, &ns, name, model, sink),
            "DestinationRule" => mesh::destination_rule_ignored(doc, &ns, name, model, sink),
            "HTTPRoute" => mesh::http_route_conflict(doc, &ns, name, model, sink),
            _ => {}
        }
    }
    let mut object = new_object(
        &kind,
        scoped,
        name,
        doc.json.clone(),
        doc.first_line(),
        model,
    );
    object.doc = Some(doc.clone());
    let _ = inv;
    upsert(model, object);
}
