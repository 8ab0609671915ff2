//! What the replay knows: the objects (kept as JSON, with the manifest and Markdown line each came
//! from), the namespaces it is sure of, and how commands find objects by kind and name — reporting
//! the ones that do not exist.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::kubectl::{
    Invocation, Labels, Selector, is_dynamic, is_namespaced, is_workload, kind_of, split_kind_name,
};
use crate::manifest::Doc;
use crate::yaml::Seg;
use crate::{Severity, Sink};

/// One object in the model.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub(super) kind: String,
    /// `None` for cluster-scoped kinds.
    pub(super) namespace: Option<String>,
    pub(super) name: String,
    pub(super) json: Value,
    /// The Markdown line that created it.
    pub(super) line: usize,
    /// The manifest it came from, while no patch changed it (for precise lines).
    pub(super) doc: Option<Doc>,
    /// `kubectl run --rm`: gone when its step ends.
    pub(super) ephemeral: bool,
    /// Label sets added by hand to (some of) its pods, lost when the pods are replaced.
    pub(super) hand_labels: Vec<Labels>,
    /// Created by a main-sequence step (what the Cleanup section should remove).
    pub(super) main: bool,
    /// The chapter that made it, when an earlier chapter of the course did: the object may be
    /// there when this chapter runs, but its rules and checks belong to that chapter.
    pub(super) from: Option<String>,
}

impl Object {
    /// The Markdown line of a path in the object, or the line of the command that made it.
    pub(super) fn line_of(&self, path: &[Seg]) -> usize {
        self.doc.as_ref().map_or(self.line, |d| d.line_of(path))
    }

    pub(super) fn describe(&self) -> String {
        format!("{} `{}`", self.kind, self.name)
    }

    /// Where it was made, for messages: `line 12`, or `line 12 of ch3.md` when an earlier
    /// chapter made it.
    pub(super) fn origin(&self) -> String {
        match &self.from {
            Some(chapter) => format!("line {} of `{chapter}`", self.line),
            None => format!("line {}", self.line),
        }
    }

    /// Whether this chapter made or last wrote it (not an earlier chapter).
    pub(super) fn here(&self) -> bool {
        self.from.is_none()
    }
}

/// What the replay knows.
#[derive(Debug, Default)]
pub(super) struct Model {
    pub(super) objects: Vec<Object>,
    /// Namespaces the lab created.
    pub(super) namespaces: BTreeSet<String>,
    /// Namespaces something unseen may have changed.
    pub(super) opaque: BTreeSet<String>,
    /// Something unseen may have changed any namespace.
    pub(super) all_opaque: bool,
    /// Namespaces where a pod got labels the lint cannot know (`kubectl label pod $POD …`).
    pub(super) unknown_pod_labels: BTreeSet<String>,
    /// The namespace kubectl uses without `-n`.
    pub(super) default_ns: String,
    /// Kinds whose CRDs the lab installed itself.
    pub(super) crds: BTreeSet<String>,
    /// Custom kinds without a schema, already reported once.
    pub(super) unknown_kinds: BTreeSet<String>,
    /// Files written from heredocs: name → documents.
    pub(super) files: HashMap<String, Vec<Doc>>,
    /// Whether the replay is in the Cleanup section.
    pub(super) cleanup: bool,
}

/// Kinds a default Kubernetes and Istio install does not serve: (apiVersion group, kind).
pub(super) const MISSING_CRDS: &[(&str, &str)] = &[("install.istio.io", "IstioOperator")];

impl Model {
    pub(super) fn new() -> Self {
        Model {
            default_ns: "default".into(),
            ..Model::default()
        }
    }

    /// Starts the next chapter of the course on the state this one left (after its Cleanup
    /// section), as a reader who follows the chapters in order finds the cluster.
    ///
    /// What earlier chapters made is only known to exist: it answers "does `web` exist?", but
    /// the checks that blame an object (conflicts, selectors, leftovers) stay with the chapter
    /// that made it, so a course whose chapters each start afresh gets no new findings.
    pub(super) fn next_chapter(&mut self, previous: &str) {
        for object in &mut self.objects {
            if object.from.is_none() {
                object.from = Some(previous.to_string());
            }
            object.main = false;
        }
        self.cleanup = false;
    }

    /// Whether absence in this namespace means absence in the cluster.
    pub(super) fn certain(&self, ns: &str) -> bool {
        !self.all_opaque
            && !self.opaque.contains(ns)
            && (ns == "default" || self.namespaces.contains(ns))
    }

    pub(super) fn find(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<usize> {
        self.objects.iter().position(|o| {
            o.kind == kind
                && o.name == name
                && (!is_namespaced(kind) || o.namespace.as_deref() == ns)
        })
    }

    pub(super) fn get(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<&Object> {
        self.find(kind, ns, name).map(|i| &self.objects[i])
    }

    pub(super) fn in_namespace<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects
            .iter()
            .filter(move |o| o.namespace.as_deref() == Some(ns))
    }

    /// The label sets the pods of a namespace can have: one per workload (its template labels,
    /// and each hand-added variant) and per standalone pod.
    pub(super) fn pod_label_sets<'a>(&'a self, ns: &'a str) -> Vec<(Labels, &'a Object)> {
        let mut sets = Vec::new();
        for object in self.in_namespace(ns) {
            if is_workload(&object.kind) || object.kind == "CronJob" {
                let path: &[&str] = if object.kind == "CronJob" {
                    &[
                        "spec",
                        "jobTemplate",
                        "spec",
                        "template",
                        "metadata",
                        "labels",
                    ]
                } else {
                    &["spec", "template", "metadata", "labels"]
                };
                let mut template = labels_at(&object.json, path);
                if object.kind == "Job" {
                    // The Job controller labels its pods with the Job's name.
                    for key in ["job-name", "batch.kubernetes.io/job-name"] {
                        template.insert(key.to_string(), object.name.clone());
                    }
                }
                for extra in &object.hand_labels {
                    let mut variant = template.clone();
                    variant.extend(extra.clone());
                    sets.push((variant, object));
                }
                sets.push((template, object));
            } else if object.kind == "Pod" {
                sets.push((labels_at(&object.json, &["metadata", "labels"]), object));
            }
        }
        sets
    }

    pub(super) fn namespace_of(&self, inv: &Invocation<'_>) -> String {
        inv.namespace()
            .map_or_else(|| self.default_ns.clone(), str::to_string)
    }

    pub(super) fn make_opaque(&mut self, ns: Option<&str>) {
        match ns {
            Some(ns) if !is_dynamic(ns) => {
                self.opaque.insert(ns.to_string());
            }
            _ => self.all_opaque = true,
        }
    }

    pub(super) fn remove_at(&mut self, index: usize) {
        let object = self.objects.remove(index);
        if object.kind == "Namespace" {
            self.namespaces.remove(&object.name);
            self.objects
                .retain(|o| o.namespace.as_deref() != Some(object.name.as_str()));
        }
    }
}

pub(super) fn labels_at(json: &Value, path: &[&str]) -> Labels {
    let mut node = json;
    for key in path {
        match node.get(key) {
            Some(next) => node = next,
            None => return Labels::new(),
        }
    }
    node.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A workload's selector (`matchLabels` and `matchExpressions`), if it has one the model reads.
pub(super) fn workload_selector(json: &Value) -> Option<Selector> {
    let selector = json.get("spec")?.get("selector")?;
    let mut requirements = Selector::from_labels(&labels_at(selector, &["matchLabels"])).0;
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression.get("key")?.as_str()?.to_string();
        let values: Vec<String> = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        use crate::kubectl::Requirement as R;
        requirements.push(match expression.get("operator")?.as_str()? {
            "In" => R::In(key, values),
            "NotIn" => R::NotIn(key, values),
            "Exists" => R::Exists(key),
            "DoesNotExist" => R::NotExists(key),
            _ => return None,
        });
    }
    Some(Selector(requirements))
}

/// A Service's selector, when it has a non-empty one.
pub(super) fn service_selector(json: &Value) -> Option<Labels> {
    let labels = labels_at(json, &["spec", "selector"]);
    (!labels.is_empty()).then_some(labels)
}

/// `(kind, name)` pairs a command names: `deploy web`, `deploy/web`, `deploy a b`.
pub(super) fn named_targets(inv: &Invocation<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut kind: Option<&'static str> = None;
    for (i, word) in inv.positionals.iter().enumerate() {
        if let Some((k, name)) = split_kind_name(word) {
            out.push((k, name.to_string()));
        } else if i == 0 && !word.contains('=') {
            kind = word.split(',').next().and_then(kind_of);
            if kind.is_none() {
                return Vec::new();
            }
        } else if let Some(k) = kind {
            if word.contains('=') || word.ends_with('-') && !word.contains('/') && i > 1 {
                break;
            }
            out.push((k, word.to_string()));
        }
    }
    out
}

/// Whether a name looks like a pod name a controller generated (`web-7c9d8b-x2k4p`).
pub(super) fn generated_pod_name(name: &str) -> bool {
    let parts: Vec<&str> = name.rsplit('-').collect();
    parts.len() >= 2 && parts[0].len() == 5 && parts[0].chars().all(|c| c.is_ascii_alphanumeric())
}

pub(super) fn missing(
    inv: &Invocation<'_>,
    kind: &str,
    name: &str,
    ns: &str,
    model: &Model,
    sink: &mut Sink<'_>,
) {
    let other = model
        .objects
        .iter()
        .find(|o| o.name == name && o.namespace.as_deref() == Some(ns) && o.kind != kind);
    let message = match other {
        Some(o) => format!(
            "`kubectl {}` looks for {kind} `{name}`, but `{name}` is a {} ({})",
            inv.sub,
            o.kind,
            o.origin()
        ),
        None if model.cleanup => format!("{kind} `{name}` does not exist at this point"),
        None => format!(
            "{kind} `{name}` does not exist at this point of the lab{}",
            if ns == "default" {
                String::new()
            } else {
                format!(" (namespace `{ns}`)")
            }
        ),
    };
    let help = other.map(|o| format!("name it as `{}/{}`", o.kind.to_ascii_lowercase(), o.name));
    sink.emit("missing-resource", Severity::Error, inv.line, message, help);
}

/// Reports a named resource that should exist and does not; returns whether it exists.
pub(super) fn exists(
    inv: &Invocation<'_>,
    kind: &str,
    name: &str,
    guarded: bool,
    model: &Model,
    sink: &mut Sink<'_>,
) -> bool {
    if is_dynamic(name) {
        return true;
    }
    let ns = model.namespace_of(inv);
    let scoped = is_namespaced(kind).then_some(ns.as_str());
    if model.find(kind, scoped, name).is_some() {
        return true;
    }
    let known = if is_namespaced(kind) {
        model.certain(&ns)
    } else {
        kind == "Namespace"
            && !model.all_opaque
            && !matches!(
                name,
                "default" | "kube-system" | "kube-public" | "istio-system"
            )
    };
    // `web-0` of a StatefulSet, `web-x2k4p` of a Deployment: pods the model does not list.
    let controller_pod = kind == "Pod"
        && (generated_pod_name(name)
            || model.in_namespace(&ns).any(|o| {
                (is_workload(&o.kind) || o.kind == "CronJob")
                    && name.starts_with(&format!("{}-", o.name))
            }));
    if known && !guarded && !controller_pod {
        missing(inv, kind, name, &ns, model, sink);
    }
    false
}

pub(super) fn new_object(
    kind: &str,
    ns: Option<&str>,
    name: &str,
    json: Value,
    line: usize,
    model: &Model,
) -> Object {
    Object {
        kind: kind.to_string(),
        namespace: ns.filter(|_| is_namespaced(kind)).map(str::to_string),
        name: name.to_string(),
        json,
        line,
        doc: None,
        ephemeral: false,
        hand_labels: Vec::new(),
        main: !model.cleanup,
        from: None,
    }
}

/// Adds an object, or replaces one of the same kind, namespace and name.
pub(super) fn upsert(model: &mut Model, object: Object) {
    if object.kind == "Namespace" {
        model.namespaces.insert(object.name.clone());
    }
    match model.find(&object.kind, object.namespace.as_deref(), &object.name) {
        Some(i) => {
            let existing = &mut model.objects[i];
            existing.json = object.json;
            existing.doc = object.doc;
            if !existing.here() {
                // Applied again here: from now on it is this chapter's, with this chapter's lines.
                existing.from = None;
                existing.line = object.line;
                existing.main = object.main;
            }
        }
        None => model.objects.push(object),
    }
}

/// How many pods a workload runs (`spec.replicas`, 1 when unset).
pub(super) fn replicas(object: &Object) -> i64 {
    if object.kind == "Pod"
        || !matches!(
            object.kind.as_str(),
            "Deployment" | "ReplicaSet" | "StatefulSet"
        )
    {
        return 1;
    }
    object
        .json
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_recognised() {
        let cases = [
            ("web-7c9d8b5f4-x2k4p", true),
            ("web-x2k4p", true),
            ("load-generator", false),
            ("debug", false),
        ];
        for (name, expected) in cases {
            assert_eq!(generated_pod_name(name), expected, "{name}");
        }
    }
}
