//! Replaying a step: each command in order. kubectl commands go to their verb ([`super::verbs`],
//! [`super::apply`]); `make`, `kind`, `istioctl`, `helm` and scripts change what the model can be
//! sure of. The reading verbs (`get`, `describe`, `wait`, `exec`, `logs`) check that what they name
//! exists and that their `-l` selectors match a pod, and requests sent from pods check that the
//! Service they reach has running pods.

use std::collections::BTreeSet;

use super::apply::apply_files;
use super::state::{
    MISSING_CRDS, Model, Object, exists, named_targets, replicas, service_selector,
};
use super::verbs;
use crate::kubectl::{Invocation, Requirement, Selector, is_dynamic, kind_of, split_kind_name};
use crate::manifest::{Doc, Manifests};
use crate::{Severity, Sink};
use labbook::model::{Lab, StepKind};
use labbook::shell::Command;
use labbook::tools;

pub(super) fn replay_step(
    lab: &Lab,
    s: usize,
    manifests: &Manifests,
    model: &mut Model,
    sink: &mut Sink<'_>,
) {
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

pub(super) fn replay_command(
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
        "create" => verbs::create(&inv, model),
        "run" => verbs::run(&inv, model),
        "expose" => verbs::expose(&inv, model, sink),
        "label" => verbs::label(&inv, model, sink),
        "patch" => verbs::patch(&inv, model, sink),
        "scale" => verbs::scale(&inv, model, sink),
        "set" => verbs::set(&inv, model, sink),
        "rollout" => verbs::rollout(&inv, model, sink),
        "delete" => verbs::delete(&inv, stdin, guarded, model, sink),
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

/// `exec`, `logs`, `attach`, `port-forward`: the pod or workload must exist.
pub(super) fn target(inv: &Invocation<'_>, guarded: bool, model: &Model, sink: &mut Sink<'_>) {
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
pub(super) fn read(inv: &Invocation<'_>, guarded: bool, model: &Model, sink: &mut Sink<'_>) {
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
pub(super) const CONTROLLER_KEYS: &[&str] = &[
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

pub(super) fn requirement_key(requirement: &Requirement) -> &str {
    use crate::kubectl::Requirement as R;
    match requirement {
        R::Equals(k, _)
        | R::NotEquals(k, _)
        | R::In(k, _)
        | R::NotIn(k, _)
        | R::Exists(k)
        | R::NotExists(k) => k,
    }
}

pub(super) fn selector_query(inv: &Invocation<'_>, text: &str, model: &Model, sink: &mut Sink<'_>) {
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

/// HTTP clients whose URLs name Services.
pub(super) fn is_client(program: &str) -> bool {
    matches!(
        program,
        "curl" | "wget" | "http" | "https" | "fortio" | "hey" | "ab" | "nc" | "grpcurl"
    )
}

pub(super) static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"https?://([A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*)")
        .expect("static regex")
});

/// Requests from a pod to `http://service/`: the Service must have running pods right now.
pub(super) fn traffic(
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
