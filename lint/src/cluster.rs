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

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::kubectl::{
    Invocation, Labels, Selector, is_dynamic, is_namespaced, is_workload, kind_of, parse_labels,
    split_kind_name,
};
use super::manifest::{Doc, Manifests};
use super::yaml::Seg;
use super::{Severity, Sink};
use labbook::model::{Lab, StepKind};
use labbook::shell::Command;
use labbook::tools;

/// One object in the model.
#[derive(Debug, Clone)]
struct Object {
    kind: String,
    /// `None` for cluster-scoped kinds.
    namespace: Option<String>,
    name: String,
    json: Value,
    /// The Markdown line that created it.
    line: usize,
    /// The manifest it came from, while no patch changed it (for precise lines).
    doc: Option<Doc>,
    /// `kubectl run --rm`: gone when its step ends.
    ephemeral: bool,
    /// Label sets added by hand to (some of) its pods, lost when the pods are replaced.
    hand_labels: Vec<Labels>,
    /// Created by a main-sequence step (what the Cleanup section should remove).
    main: bool,
}

impl Object {
    /// The Markdown line of a path in the object, or the line of the command that made it.
    fn line_of(&self, path: &[Seg]) -> usize {
        self.doc.as_ref().map_or(self.line, |d| d.line_of(path))
    }

    fn describe(&self) -> String {
        format!("{} `{}`", self.kind, self.name)
    }
}

/// What the replay knows.
#[derive(Debug, Default)]
struct Model {
    objects: Vec<Object>,
    /// Namespaces the lab created.
    namespaces: BTreeSet<String>,
    /// Namespaces something unseen may have changed.
    opaque: BTreeSet<String>,
    /// Something unseen may have changed any namespace.
    all_opaque: bool,
    /// Namespaces where a pod got labels the lint cannot know (`kubectl label pod $POD …`).
    unknown_pod_labels: BTreeSet<String>,
    /// The namespace kubectl uses without `-n`.
    default_ns: String,
    /// Kinds whose CRDs the lab installed itself.
    crds: BTreeSet<String>,
    /// Files written from heredocs: name → documents.
    files: HashMap<String, Vec<Doc>>,
    /// Whether the replay is in the Cleanup section.
    cleanup: bool,
}

/// Kinds a default Kubernetes and Istio install does not serve: (apiVersion group, kind).
const MISSING_CRDS: &[(&str, &str)] = &[("install.istio.io", "IstioOperator")];

impl Model {
    fn new() -> Self {
        Model {
            default_ns: "default".into(),
            ..Model::default()
        }
    }

    /// Whether absence in this namespace means absence in the cluster.
    fn certain(&self, ns: &str) -> bool {
        !self.all_opaque
            && !self.opaque.contains(ns)
            && (ns == "default" || self.namespaces.contains(ns))
    }

    fn find(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<usize> {
        self.objects.iter().position(|o| {
            o.kind == kind
                && o.name == name
                && (!is_namespaced(kind) || o.namespace.as_deref() == ns)
        })
    }

    fn get(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<&Object> {
        self.find(kind, ns, name).map(|i| &self.objects[i])
    }

    fn in_namespace<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects
            .iter()
            .filter(move |o| o.namespace.as_deref() == Some(ns))
    }

    /// The label sets the pods of a namespace can have: one per workload (its template labels,
    /// and each hand-added variant) and per standalone pod.
    fn pod_label_sets<'a>(&'a self, ns: &'a str) -> Vec<(Labels, &'a Object)> {
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

    fn namespace_of(&self, inv: &Invocation<'_>) -> String {
        inv.namespace()
            .map_or_else(|| self.default_ns.clone(), str::to_string)
    }

    fn make_opaque(&mut self, ns: Option<&str>) {
        match ns {
            Some(ns) if !is_dynamic(ns) => {
                self.opaque.insert(ns.to_string());
            }
            _ => self.all_opaque = true,
        }
    }

    fn remove_at(&mut self, index: usize) {
        let object = self.objects.remove(index);
        if object.kind == "Namespace" {
            self.namespaces.remove(&object.name);
            self.objects
                .retain(|o| o.namespace.as_deref() != Some(object.name.as_str()));
        }
    }
}

fn labels_at(json: &Value, path: &[&str]) -> Labels {
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
fn workload_selector(json: &Value) -> Option<Selector> {
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
        use super::kubectl::Requirement as R;
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
fn service_selector(json: &Value) -> Option<Labels> {
    let labels = labels_at(json, &["spec", "selector"]);
    (!labels.is_empty()).then_some(labels)
}

/// A host as a Service: `(name, namespace)`, for short names and `*.svc.cluster.local` names.
fn resolve_host(host: &str, ns: &str) -> Option<(String, String)> {
    if host.contains('*') || is_dynamic(host) {
        return None;
    }
    if !host.contains('.') {
        return Some((host.to_string(), ns.to_string()));
    }
    let rest = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    let (name, namespace) = rest.split_once('.')?;
    (!namespace.contains('.')).then(|| (name.to_string(), namespace.to_string()))
}

/// The container name `kubectl create deployment` derives from an image.
fn container_name(image: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split('@').next().unwrap_or(base);
    let base = base.split(':').next().unwrap_or(base);
    base.replace(['_', '.'], "-").to_ascii_lowercase()
}

/// Strategic merge as kubectl applies it to the kinds labs patch: maps merge, `null` deletes,
/// and lists of named items (containers, ports, env) merge by name; other lists are replaced.
fn strategic_merge(target: &mut Value, patch: &Value) {
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
    end_state(&model, sink);
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

fn replay_step(lab: &Lab, s: usize, manifests: &Manifests, model: &mut Model, sink: &mut Sink<'_>) {
    let step = &lab.steps[s];
    if step.kind == StepKind::SessionInput {
        // Typed inside a pod: nothing here changes the cluster, but requests can fail.
        let mut reported = BTreeSet::new();
        for command in &step.analysis.commands {
            if is_client(command.program()) {
                let ns = model.default_ns.clone();
                traffic(command.line, &command.argv, &ns, model, &mut reported, sink);
            }
        }
        return;
    }
    let mut reported = BTreeSet::new();
    for (c, command) in step.analysis.commands.iter().enumerate() {
        if let Some(inv) = Invocation::parse(command)
            && matches!(inv.sub, "run" | "exec")
            && !inv.after.is_empty()
        {
            let ns = model.namespace_of(&inv);
            traffic(command.line, inv.after, &ns, model, &mut reported, sink);
        }
        if let Some((file, docs)) = manifests.files.get(&(s, c)) {
            model.files.insert(file.clone(), docs.clone());
            model
                .files
                .insert(file.trim_start_matches("./").to_string(), docs.clone());
        }
        let stdin = manifests.stdin.get(&(s, c));
        replay_command(command, stdin, step.kind, model, sink);
    }
    // Pods started with `kubectl run --rm` are deleted when their command or session ends.
    model.objects.retain(|o| !o.ephemeral);
}

fn replay_command(
    command: &Command,
    stdin: Option<&Vec<Doc>>,
    step_kind: StepKind,
    model: &mut Model,
    sink: &mut Sink<'_>,
) {
    match command.program() {
        "kubectl" => {}
        "make" => {
            let goals: Vec<&String> = command
                .args()
                .iter()
                .filter(|a| !a.starts_with('-') && !a.contains('='))
                .collect();
            for goal in goals {
                let infra = step_kind == StepKind::Setup || tools::is_infra_target(goal);
                if !infra || is_dynamic(goal) {
                    model.all_opaque = true;
                } else if tools::is_teardown_target(goal) && model.cleanup {
                    // The cluster (or the lab's part of it) is torn down: nothing is left.
                    model.objects.clear();
                }
            }
            return;
        }
        "kind" => {
            if command.args().iter().any(|a| a == "delete") {
                model.objects.clear();
            }
            return;
        }
        "istioctl" => {
            let args = command.args();
            if args.first().is_some_and(|a| a == "operator")
                && args.get(1).is_some_and(|a| a == "init")
            {
                model.crds.insert("IstioOperator".into());
            }
            return;
        }
        "helm" => {
            let args = command.args();
            if args
                .first()
                .is_some_and(|a| matches!(a.as_str(), "install" | "upgrade"))
            {
                let ns = args
                    .iter()
                    .position(|a| a == "-n" || a == "--namespace")
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .or_else(|| {
                        args.iter()
                            .find_map(|a| a.strip_prefix("--namespace=").map(str::to_string))
                    });
                // A chart can hold anything, CRDs included.
                model.make_opaque(ns.as_deref());
                model.all_opaque = true;
            }
            return;
        }
        "bash" | "sh" | "source" | "." | "zsh" => {
            if !command.args().is_empty() {
                model.all_opaque = true;
            }
            return;
        }
        program if program.ends_with(".sh") || command.argv[0].starts_with("./") => {
            model.all_opaque = true;
            return;
        }
        _ => return,
    }
    let Some(inv) = Invocation::parse(command) else {
        return;
    };
    let guarded = command.guarded;
    match inv.sub {
        "apply" | "create" | "replace"
            if !inv
                .flag_values(&["-f", "--filename", "-k", "--kustomize"])
                .is_empty() =>
        {
            apply_files(&inv, stdin, model, sink);
        }
        "create" => create(&inv, model),
        "run" => run(&inv, model),
        "expose" => expose(&inv, model, sink),
        "label" => label(&inv, model, sink),
        "patch" => patch(&inv, model, sink),
        "scale" => scale(&inv, model, sink),
        "set" => set(&inv, model, sink),
        "rollout" => rollout(&inv, model, sink),
        "delete" => delete(&inv, stdin, guarded, model, sink),
        "exec" | "logs" | "attach" | "port-forward" => target(&inv, guarded, model, sink),
        "get" | "describe" | "wait" | "top" => read(&inv, guarded, model, sink),
        "autoscale" => {
            if let Some((kind, name)) = named_targets(&inv).into_iter().next() {
                exists(&inv, kind, &name, guarded, model, sink);
            }
        }
        "config" => {
            if inv.positionals.first() == Some(&"set-context")
                && let Some(ns) = inv.namespace()
            {
                model.default_ns = ns.to_string();
                if is_dynamic(ns) {
                    model.all_opaque = true;
                }
            }
        }
        "kustomize" => {}
        _ => {}
    }
}

/// `(kind, name)` pairs a command names: `deploy web`, `deploy/web`, `deploy a b`.
fn named_targets(inv: &Invocation<'_>) -> Vec<(&'static str, String)> {
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
fn generated_pod_name(name: &str) -> bool {
    let parts: Vec<&str> = name.rsplit('-').collect();
    parts.len() >= 2 && parts[0].len() == 5 && parts[0].chars().all(|c| c.is_ascii_alphanumeric())
}

fn missing(
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
            "`kubectl {}` looks for {kind} `{name}`, but `{name}` is a {} (line {})",
            inv.sub, o.kind, o.line
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
fn exists(
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

fn new_object(
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
    }
}

/// Adds an object, or replaces one of the same kind, namespace and name.
fn upsert(model: &mut Model, object: Object) {
    if object.kind == "Namespace" {
        model.namespaces.insert(object.name.clone());
    }
    match model.find(&object.kind, object.namespace.as_deref(), &object.name) {
        Some(i) => {
            let existing = &mut model.objects[i];
            existing.json = object.json;
            existing.doc = object.doc;
        }
        None => model.objects.push(object),
    }
}

fn create(inv: &Invocation<'_>, model: &mut Model) {
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

fn run(inv: &Invocation<'_>, model: &mut Model) {
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

fn expose(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
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

fn label(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
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
fn workload_rejection(old: Option<&Value>, new: &Value) -> Option<String> {
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

fn patch(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
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
        super::yaml::parse_documents(text)
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
    object.line = object.line.min(inv.line);
}

fn scale(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
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

fn set(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
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

fn rollout(inv: &Invocation<'_>, model: &mut Model, sink: &mut Sink<'_>) {
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

fn delete(
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
                    "`{name}` is a {} (created at line {}), not a {kind}: this delete fails and leaves it running",
                    other.kind, other.line
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

/// `exec`, `logs`, `attach`, `port-forward`: the pod or workload must exist.
fn target(inv: &Invocation<'_>, guarded: bool, model: &Model, sink: &mut Sink<'_>) {
    if let Some(text) = inv.selector() {
        selector_query(inv, text, model, sink);
        return;
    }
    let Some(word) = inv.positionals.first() else {
        return;
    };
    let (kind, name) = match split_kind_name(word) {
        Some((kind, name)) => (kind, name.to_string()),
        None => ("Pod", word.to_string()),
    };
    exists(inv, kind, &name, guarded, model, sink);
}

/// `get`, `describe`, `wait`: selectors that match nothing, named objects that do not exist,
/// and kinds the cluster does not serve.
fn read(inv: &Invocation<'_>, guarded: bool, model: &Model, sink: &mut Sink<'_>) {
    if let Some(word) = inv.positionals.first() {
        let kind = split_kind_name(word)
            .map(|(k, _)| k)
            .or_else(|| word.split(',').next().and_then(kind_of));
        if let Some(kind) = kind
            && MISSING_CRDS.iter().any(|(_, k)| *k == kind)
            && !model.crds.contains(kind)
        {
            sink.emit(
                "manifest-missing-crd",
                Severity::Error,
                inv.line,
                format!("the cluster has no resource type for {kind}: its CRD is not installed by a default Istio install"),
                Some("use `istioctl install -f FILE` with the IstioOperator, or drop the step".into()),
            );
            return;
        }
    }
    if let Some(text) = inv.selector() {
        let pods = inv
            .positionals
            .first()
            .is_some_and(|k| kind_of(k) == Some("Pod"));
        if pods
            || inv.sub == "wait"
                && inv
                    .positionals
                    .first()
                    .is_some_and(|k| kind_of(k) == Some("Pod"))
        {
            selector_query(inv, text, model, sink);
        }
        return;
    }
    if inv.sub == "top" {
        return;
    }
    for (kind, name) in named_targets(inv) {
        // `kubectl describe pod web` describes every pod whose name starts with `web`.
        if kind == "Pod" && inv.sub == "describe" {
            continue;
        }
        if kind == "Pod"
            && model
                .get("Pod", Some(&model.namespace_of(inv)), &name)
                .is_none()
        {
            // Pod names in a lab usually come from its controllers; only known pods are checked.
            if !model.objects.iter().any(|o| {
                o.name == name && o.namespace.as_deref() == Some(model.namespace_of(inv).as_str())
            }) {
                continue;
            }
        }
        exists(inv, kind, &name, guarded, model, sink);
    }
}

/// Labels that controllers and Istio's injector add to pods, which the model does not track.
const CONTROLLER_KEYS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "security.istio.io/tlsMode",
    "service.istio.io/canonical-name",
    "service.istio.io/canonical-revision",
];

fn requirement_key(requirement: &super::kubectl::Requirement) -> &str {
    use super::kubectl::Requirement as R;
    match requirement {
        R::Equals(k, _)
        | R::NotEquals(k, _)
        | R::In(k, _)
        | R::NotIn(k, _)
        | R::Exists(k)
        | R::NotExists(k) => k,
    }
}

fn selector_query(inv: &Invocation<'_>, text: &str, model: &Model, sink: &mut Sink<'_>) {
    if inv.all_namespaces() {
        return;
    }
    let ns = model.namespace_of(inv);
    if !model.certain(&ns) || model.unknown_pod_labels.contains(&ns) {
        return;
    }
    let Some(selector) = Selector::parse(text) else {
        return;
    };
    if selector
        .0
        .iter()
        .any(|r| CONTROLLER_KEYS.contains(&requirement_key(r)))
    {
        return;
    }
    let sets = model.pod_label_sets(&ns);
    if sets.iter().any(|(labels, _)| selector.matches(labels)) {
        return;
    }
    let known: BTreeSet<String> = sets
        .iter()
        .map(|(labels, _)| Selector::from_labels(labels).to_string())
        .filter(|s| !s.is_empty())
        .collect();
    sink.emit(
        "selector-matches-nothing",
        Severity::Warning,
        inv.line,
        format!(
            "no pod{} has the labels `{selector}` at this point, so `kubectl {}` finds nothing",
            if ns == "default" {
                String::new()
            } else {
                format!(" in namespace `{ns}`")
            },
            inv.sub
        ),
        (!known.is_empty()).then(|| {
            format!(
                "the pods here are labelled {}",
                known
                    .iter()
                    .take(4)
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    );
}

/// `apply|create|replace -f …`: manifests from a heredoc or a file the lab wrote.
fn apply_files(
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

fn apply_doc(
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
            "VirtualService" => virtual_service_conflict(doc, &ns, name, model, sink),
            "DestinationRule" => destination_rule_ignored(doc, &ns, name, model, sink),
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

/// The hosts a VirtualService applies to inside the mesh (none when bound only to gateways).
fn mesh_hosts(json: &Value, ns: &str) -> Vec<String> {
    let gateways: Vec<&str> = json
        .pointer("/spec/gateways")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !gateways.is_empty() && !gateways.contains(&"mesh") {
        return Vec::new();
    }
    json.pointer("/spec/hosts")
        .and_then(Value::as_array)
        .map(|hosts| {
            hosts
                .iter()
                .filter_map(Value::as_str)
                .map(|h| match resolve_host(h, ns) {
                    Some((name, namespace)) => format!("{name}.{namespace}.svc.cluster.local"),
                    None => h.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn virtual_service_conflict(doc: &Doc, ns: &str, name: &str, model: &Model, sink: &mut Sink<'_>) {
    let hosts = mesh_hosts(&doc.json, ns);
    for older in model.objects.iter().filter(|o| o.kind == "VirtualService") {
        let older_ns = older.namespace.as_deref().unwrap_or("default");
        let shared: Vec<&String> = mesh_hosts(&older.json, older_ns)
            .iter()
            .filter_map(|h| hosts.iter().find(|x| *x == h))
            .collect();
        if let Some(host) = shared.first() {
            let short = host.split('.').next().unwrap_or(host);
            sink.emit(
                "virtual-service-conflict",
                Severity::Error,
                doc.line_of(&[Seg::Key("spec".into()), Seg::Key("hosts".into())]),
                format!(
                    "VirtualService `{name}` is a second one for host `{short}`: `{}` (line {}) already routes it, and inside the mesh only the oldest takes effect, so these rules are ignored",
                    older.name, older.line
                ),
                Some(format!("change `{}` instead (`kubectl apply` it again, or `kubectl patch`), or delete it first", older.name)),
            );
            return;
        }
    }
}

fn destination_rule_ignored(doc: &Doc, ns: &str, name: &str, model: &Model, sink: &mut Sink<'_>) {
    if doc.json.pointer("/spec/trafficPolicy").is_none()
        || doc.json.pointer("/spec/workloadSelector").is_some()
    {
        return;
    }
    let Some(host) = doc.json.pointer("/spec/host").and_then(Value::as_str) else {
        return;
    };
    let key = resolve_host(host, ns);
    let older = model.objects.iter().find(|o| {
        o.kind == "DestinationRule"
            && o.namespace.as_deref() == Some(ns)
            && o.json.pointer("/spec/workloadSelector").is_none()
            && o.json
                .pointer("/spec/host")
                .and_then(Value::as_str)
                .is_some_and(|h| h == host || (key.is_some() && resolve_host(h, ns) == key))
    });
    if let Some(older) = older {
        sink.emit(
            "destination-rule-ignored",
            Severity::Error,
            doc.line_of(&[Seg::Key("spec".into()), Seg::Key("trafficPolicy".into())]),
            format!(
                "DestinationRule `{name}` is a second one for host `{host}`: Istio merges it into `{}` (line {}), keeps only its subsets, and ignores this top-level trafficPolicy",
                older.name, older.line
            ),
            Some(format!("put the trafficPolicy in `{}` (apply it again with the policy added)", older.name)),
        );
    }
}

/// A destination found in a VirtualService: host, subset and the path of the `destination`.
fn destinations(json: &Value) -> Vec<(String, Option<String>, Vec<Seg>)> {
    let mut out = Vec::new();
    for section in ["http", "tcp", "tls"] {
        let Some(routes) = json
            .pointer(&format!("/spec/{section}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (r, route) in routes.iter().enumerate() {
            let Some(dests) = route.get("route").and_then(Value::as_array) else {
                continue;
            };
            for (d, dest) in dests.iter().enumerate() {
                let Some(destination) = dest.get("destination") else {
                    continue;
                };
                let Some(host) = destination.get("host").and_then(Value::as_str) else {
                    continue;
                };
                let subset = destination
                    .get("subset")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let path = vec![
                    Seg::Key("spec".into()),
                    Seg::Key(section.into()),
                    Seg::Index(r),
                    Seg::Key("route".into()),
                    Seg::Index(d),
                    Seg::Key("destination".into()),
                ];
                out.push((host.to_string(), subset, path));
            }
        }
    }
    out
}

/// Hosts declared by ServiceEntries in the model.
fn service_entry_hosts(model: &Model) -> BTreeSet<String> {
    model
        .objects
        .iter()
        .filter(|o| o.kind == "ServiceEntry")
        .flat_map(|o| {
            o.json
                .pointer("/spec/hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// HTTP clients whose URLs name Services.
fn is_client(program: &str) -> bool {
    matches!(
        program,
        "curl" | "wget" | "http" | "https" | "fortio" | "hey" | "ab" | "nc" | "grpcurl"
    )
}

static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"https?://([A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*)")
        .expect("static regex")
});

/// How many pods a workload runs (`spec.replicas`, 1 when unset).
fn replicas(object: &Object) -> i64 {
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

/// Requests from a pod to `http://service/`: the Service must have running pods right now.
fn traffic(
    line: usize,
    words: &[String],
    ns: &str,
    model: &Model,
    reported: &mut BTreeSet<String>,
    sink: &mut Sink<'_>,
) {
    for word in words {
        for captures in URL.captures_iter(word) {
            let host = &captures[1];
            let labels: Vec<&str> = host.split('.').collect();
            // Cluster DNS: `name`, `name.ns`, `name.ns.svc…`.
            let (name, service_ns) = match labels.as_slice() {
                [name] => (*name, ns),
                [name, namespace] | [name, namespace, "svc", ..] => (*name, *namespace),
                _ => continue,
            };
            let Some(service) = model.get("Service", Some(service_ns), name) else {
                continue;
            };
            if !model.certain(service_ns)
                || model.unknown_pod_labels.contains(service_ns)
                || !reported.insert(format!("{service_ns}/{name}"))
            {
                continue;
            }
            let Some(selector) = service_selector(&service.json) else {
                continue;
            };
            let selector = Selector::from_labels(&selector);
            let selected: Vec<&Object> = model
                .pod_label_sets(service_ns)
                .into_iter()
                .filter(|(labels, _)| selector.matches(labels))
                .map(|(_, object)| object)
                .collect();
            if selected.iter().any(|o| replicas(o) > 0) {
                continue;
            }
            let why = match selected.first() {
                Some(o) => format!("{} is scaled to 0", o.describe()),
                None => "no pod has its labels".to_string(),
            };
            sink.emit(
                "service-selects-nothing",
                Severity::Warning,
                line,
                format!("Service `{name}` selects `{selector}`, and no running pod has those labels at this point ({why}): this request fails"),
                Some("scale the workload up first, or point the Service at the pods that should answer".into()),
            );
        }
    }
}

/// The checks on the state at the end of the main sequence.
fn end_state(model: &Model, sink: &mut Sink<'_>) {
    let entries = service_entry_hosts(model);
    let service_exists = |name: &str, ns: &str| model.get("Service", Some(ns), name).is_some();
    // Services that select no pod.
    for service in model.objects.iter().filter(|o| o.kind == "Service") {
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
    // Hosts, subsets and routes.
    for object in &model.objects {
        let ns = object.namespace.as_deref().unwrap_or("default");
        match object.kind.as_str() {
            "DestinationRule" => {
                let Some(host) = object.json.pointer("/spec/host").and_then(Value::as_str) else {
                    continue;
                };
                let host_path = [Seg::Key("spec".into()), Seg::Key("host".into())];
                let Some((svc, svc_ns)) = resolve_host(host, ns) else {
                    continue;
                };
                if !service_exists(&svc, &svc_ns) {
                    if model.certain(&svc_ns) && !entries.contains(host) {
                        host_not_found(object, host, &svc, &svc_ns, &host_path, sink);
                    }
                    continue;
                }
                subsets_without_endpoints(model, object, &svc, &svc_ns, sink);
            }
            "VirtualService" => {
                let gateways_only = mesh_hosts(&object.json, ns).is_empty()
                    && object.json.pointer("/spec/gateways").is_some();
                let mut reported_host = false;
                if !gateways_only {
                    for (i, host) in object
                        .json
                        .pointer("/spec/hosts")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .enumerate()
                    {
                        if let Some((svc, svc_ns)) = resolve_host(host, ns)
                            && !service_exists(&svc, &svc_ns)
                            && model.certain(&svc_ns)
                            && !entries.contains(host)
                        {
                            let path = [
                                Seg::Key("spec".into()),
                                Seg::Key("hosts".into()),
                                Seg::Index(i),
                            ];
                            host_not_found(object, host, &svc, &svc_ns, &path, sink);
                            reported_host = true;
                            break;
                        }
                    }
                }
                for (host, subset, path) in destinations(&object.json) {
                    let Some((svc, svc_ns)) = resolve_host(&host, ns) else {
                        continue;
                    };
                    if !service_exists(&svc, &svc_ns) {
                        if !reported_host && model.certain(&svc_ns) && !entries.contains(&host) {
                            host_not_found(
                                object,
                                &host,
                                &svc,
                                &svc_ns,
                                &[path.as_slice(), &[Seg::Key("host".into())]].concat(),
                                sink,
                            );
                            reported_host = true;
                        }
                        continue;
                    }
                    if let Some(subset) = subset {
                        undefined_subset(model, object, &svc, &svc_ns, &subset, &path, sink);
                    }
                }
            }
            _ => {}
        }
    }
}

fn host_not_found(
    object: &Object,
    host: &str,
    svc: &str,
    ns: &str,
    path: &[Seg],
    sink: &mut Sink<'_>,
) {
    let how = if host.contains('.') {
        String::new()
    } else {
        format!(
            " (a short host is read in the namespace of the {}, `{}`)",
            object.kind,
            object.namespace.as_deref().unwrap_or("default")
        )
    };
    sink.emit(
        "host-not-found",
        Severity::Error,
        object.line_of(path),
        format!("host `{host}` of {} is `{svc}.{ns}.svc.cluster.local`{how}, and there is no Service `{svc}` in namespace `{ns}`: the rule applies to nothing", object.describe()),
        Some(format!("create the Service in `{ns}`, or write the host in full (`{svc}.<namespace>.svc.cluster.local`)")),
    );
}

fn subsets_without_endpoints(
    model: &Model,
    rule: &Object,
    svc: &str,
    ns: &str,
    sink: &mut Sink<'_>,
) {
    if !model.certain(ns) || model.unknown_pod_labels.contains(ns) {
        return;
    }
    let Some(service) = model.get("Service", Some(ns), svc) else {
        return;
    };
    let Some(selector) = service_selector(&service.json) else {
        return;
    };
    let service_selector = Selector::from_labels(&selector);
    let behind: Vec<Labels> = model
        .pod_label_sets(ns)
        .into_iter()
        .filter(|(l, _)| service_selector.matches(l))
        .map(|(l, _)| l)
        .collect();
    let Some(subsets) = rule.json.pointer("/spec/subsets").and_then(Value::as_array) else {
        return;
    };
    for (i, subset) in subsets.iter().enumerate() {
        let labels = labels_at(subset, &["labels"]);
        if labels.is_empty() {
            continue;
        }
        let name = subset.get("name").and_then(Value::as_str).unwrap_or("?");
        let wanted = Selector::from_labels(&labels);
        if !behind.iter().any(|l| wanted.matches(l)) {
            let path = [
                Seg::Key("spec".into()),
                Seg::Key("subsets".into()),
                Seg::Index(i),
                Seg::Key("labels".into()),
            ];
            sink.emit(
                "subset-no-endpoints",
                Severity::Warning,
                rule.line_of(&path),
                format!(
                    "subset `{name}` of {} selects `{wanted}`, but none of the pods behind Service `{svc}` (`{service_selector}`) has those labels: traffic routed to it fails with 503",
                    rule.describe()
                ),
                Some(format!("the Service `{svc}` must select the pods of every version; give the workloads a shared label (such as `app`) and a `version` label in their pod templates")),
            );
        }
    }
}

fn undefined_subset(
    model: &Model,
    vs: &Object,
    svc: &str,
    svc_ns: &str,
    subset: &str,
    path: &[Seg],
    sink: &mut Sink<'_>,
) {
    let vs_ns = vs.namespace.as_deref().unwrap_or("default");
    if !model.certain(vs_ns) || !model.certain(svc_ns) {
        return;
    }
    let rules: Vec<&Object> = model
        .objects
        .iter()
        .filter(|o| o.kind == "DestinationRule")
        .filter(|o| {
            let ns = o.namespace.as_deref().unwrap_or("default");
            o.json
                .pointer("/spec/host")
                .and_then(Value::as_str)
                .and_then(|h| resolve_host(h, ns))
                .is_some_and(|(name, namespace)| name == svc && namespace == svc_ns)
        })
        .collect();
    let defined = rules.iter().any(|r| {
        r.json
            .pointer("/spec/subsets")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|x| x.get("name").and_then(Value::as_str) == Some(subset))
            })
    });
    if !defined {
        let which = if rules.is_empty() {
            format!("no DestinationRule for `{svc}` exists")
        } else {
            format!(
                "{} {} not define it",
                rules
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(" and "),
                if rules.len() == 1 { "does" } else { "do" }
            )
        };
        sink.emit(
            "subset-undefined",
            Severity::Error,
            vs.line_of(&[path, &[Seg::Key("subset".into())]].concat()),
            format!("{} routes to subset `{subset}` of `{svc}`, but {which}: requests to it fail with 503", vs.describe()),
            Some(format!("define subset `{subset}` in the DestinationRule for `{svc}`, and apply it before the VirtualService")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic;
    use std::path::Path;

    fn lint(markdown: &str) -> Vec<Diagnostic> {
        let lab = Lab::parse("t.md", markdown).expect("parses");
        let mut sink = Sink::new(Path::new("t.md"));
        let manifests = super::super::manifest::check(&lab, &mut sink);
        check(&lab, &manifests, &mut sink);
        sink.into_diagnostics()
    }

    fn found(markdown: &str) -> Vec<(String, usize)> {
        lint(markdown)
            .into_iter()
            .map(|d| (d.rule, d.line))
            .collect()
    }

    fn blocks(blocks: &[&str]) -> String {
        let mut markdown = String::from("# Lab\n");
        for block in blocks {
            markdown.push_str(&format!("\n```bash\n{block}\n```\n"));
        }
        markdown
    }

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

    #[test]
    fn hosts_resolve_like_istio() {
        let cases = [
            ("reviews", Some(("reviews", "demo"))),
            ("reviews.prod.svc.cluster.local", Some(("reviews", "prod"))),
            ("reviews.prod", None),
            ("example.com", None),
            ("*.example.com", None),
        ];
        for (host, expected) in cases {
            assert_eq!(
                resolve_host(host, "demo"),
                expected.map(|(a, b)| (a.to_string(), b.to_string())),
                "{host}"
            );
        }
    }

    #[test]
    fn generated_names_are_recognised() {
        assert!(generated_pod_name("web-7c9d8b5f4-x2k4p"));
        assert!(!generated_pod_name("load-generator"));
        assert!(!generated_pod_name("debug"));
    }
}
