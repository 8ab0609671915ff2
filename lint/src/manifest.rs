//! Manifests in heredocs, checked against typed schemas.
//!
//! The model finds a lab's manifests and parses them once ([`Lab::manifests`]): the body of a
//! heredoc fed to `kubectl apply|create|replace -f -` (directly or through
//! `cat <<EOF | kubectl apply -f -`), or written to a `.yaml` file that a later step may apply,
//! with the line of every node. Each document is deserialized into the kind's type: k8s-openapi for core Kubernetes, [`super::istio`] for Istio. serde_ignored
//! collects the fields the type does not have (kubectl's default strict validation rejects
//! them), and serde_path_to_error names the path of a value of the wrong type. Istio kinds also
//! get semantic checks the schema cannot express: deprecated fields and values, percentages and
//! weights out of range, and fault injection together with retries or timeouts.
//!
//! The parsed documents are handed to the cluster replay, which decides what each `apply` does.

use std::collections::HashMap;

use k8s_openapi::Resource;
use serde::de::DeserializeOwned;

use super::yaml::{self, Node, Seg, Value};
use super::{Severity, Sink, istio};
use labbook::manifest::{Manifest, Target};
use labbook::model::Lab;

/// One document of a manifest, with its Markdown lines.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// The document as JSON, the form the cluster model keeps.
    pub json: serde_json::Value,
    /// The document with the line of every node (lines within the heredoc body).
    pub tree: Node,
    /// The Markdown line of each line of the heredoc body (index 0 is body line 1).
    pub lines: Vec<usize>,
    /// Whether the schema check found no error (an API server would accept it).
    pub accepted: bool,
}

impl Doc {
    /// The Markdown line of a path in the document.
    pub fn line_of(&self, path: &[Seg]) -> usize {
        self.markdown_line(self.tree.line_of(path))
    }

    /// The Markdown line of a line of the heredoc body.
    pub fn markdown_line(&self, body_line: usize) -> usize {
        labbook::manifest::markdown_line(&self.lines, body_line)
    }

    /// `kind`, or an empty string.
    pub fn kind(&self) -> &str {
        self.json.get("kind").and_then(|v| v.as_str()).unwrap_or("")
    }

    /// `apiVersion`, or an empty string.
    pub fn api_version(&self) -> &str {
        self.json
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("")
    }

    /// The Markdown line of the document's first line.
    pub fn first_line(&self) -> usize {
        self.markdown_line(self.tree.line)
    }
}

/// The manifests of a lab, by the (step, command) that carries them.
#[derive(Debug, Default)]
pub(crate) struct Manifests {
    /// Documents fed on stdin to `kubectl apply|create|replace -f -`.
    pub stdin: HashMap<(usize, usize), Vec<Doc>>,
    /// Files written from a heredoc: the file name and its documents (YAML files only).
    pub files: HashMap<(usize, usize), (String, Vec<Doc>)>,
}

/// Checks every manifest of a lab, as the model found and parsed them ([`Lab::manifests`]).
pub(crate) fn check(lab: &Lab, sink: &mut Sink<'_>) -> Manifests {
    let mut manifests = Manifests::default();
    for manifest in lab.manifests().all {
        if !lab.steps[manifest.step].kind.runs() {
            continue;
        }
        let key = (manifest.step, manifest.command);
        match &manifest.target {
            Target::Stdin => {
                if let Some(docs) = checked(&manifest, true, sink) {
                    manifests.stdin.insert(key, docs);
                }
            }
            Target::File(file) if manifest.is_yaml_file() => {
                if let Some(docs) = checked(&manifest, false, sink) {
                    manifests.files.insert(key, (file.clone(), docs));
                }
            }
            Target::File(_) => {}
        }
    }
    manifests
}

/// Checks the documents of a manifest. `strict` for heredocs fed to kubectl; a `.yaml` file may
/// be something else (Helm values, a template, a kind config), so its YAML errors and documents
/// without `apiVersion`/`kind` are left alone.
fn checked(manifest: &Manifest, strict: bool, sink: &mut Sink<'_>) -> Option<Vec<Doc>> {
    let trees = match &manifest.documents {
        Ok(trees) => trees.clone(),
        Err(_) if !strict => return None,
        Err(error) => {
            sink.emit(
                "manifest-yaml",
                Severity::Error,
                manifest.markdown_line(error.line),
                format!("the manifest is not valid YAML: {}", error.message),
                Some("kubectl cannot parse it; check the indentation and quoting".into()),
            );
            return None;
        }
    };
    // Values that the shell expands are unknown; the type checks leave them alone.
    let expands = manifest.expands();
    let mut docs = Vec::new();
    for tree in trees {
        let mut doc = Doc {
            json: tree.to_json(),
            tree,
            lines: manifest.lines.clone(),
            accepted: true,
        };
        let looks_like_manifest =
            doc.json.get("apiVersion").is_some() && doc.json.get("kind").is_some();
        if !strict && !looks_like_manifest {
            doc.accepted = false;
        } else if !doc.json.is_object() {
            sink.emit(
                "manifest-yaml",
                Severity::Error,
                doc.first_line(),
                "a manifest document must be a mapping with `apiVersion` and `kind`",
                None,
            );
            doc.accepted = false;
        } else {
            doc.accepted = check_doc(&doc, expands, sink);
        }
        docs.push(doc);
    }
    Some(docs)
}

/// Checks one document; returns whether an API server would accept it.
fn check_doc(doc: &Doc, expands: bool, sink: &mut Sink<'_>) -> bool {
    let (api_version, kind) = (doc.api_version(), doc.kind());
    if api_version.is_empty() || kind.is_empty() {
        let missing = if kind.is_empty() {
            "kind"
        } else {
            "apiVersion"
        };
        sink.emit(
            "manifest-yaml",
            Severity::Error,
            doc.first_line(),
            format!("the manifest has no `{missing}`, so kubectl rejects it"),
            None,
        );
        return false;
    }
    if let Some(replacement) = removed_api(api_version, kind) {
        sink.emit(
            "manifest-api-version",
            Severity::Error,
            doc.line_of(&[Seg::Key("apiVersion".into())]),
            format!("{kind} is no longer served as `{api_version}`"),
            Some(format!("use `apiVersion: {replacement}`")),
        );
        return false;
    }
    let findings = typed_findings(api_version, kind, &doc.json);
    let mut accepted = true;
    for finding in findings {
        match finding {
            Finding::Unknown(path) => {
                accepted = false;
                sink.emit(
                    "manifest-unknown-field",
                    Severity::Error,
                    doc.line_of(&path),
                    format!(
                        "`{}` is not a field of {kind} ({api_version}); kubectl's strict validation rejects the manifest",
                        yaml::path_text(&path)
                    ),
                    Some("check the spelling and the nesting against the kind's API reference".into()),
                );
            }
            Finding::WrongType(path, message) => {
                let holds_expansion = doc
                    .tree
                    .at(&path)
                    .and_then(Node::as_str)
                    .is_some_and(|v| v.contains('$'));
                if expands && holds_expansion {
                    continue;
                }
                accepted = false;
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!("`{}`: ", yaml::path_text(&path))
                };
                sink.emit(
                    "manifest-wrong-type",
                    Severity::Error,
                    doc.line_of(&path),
                    format!("{at}{message} in {kind} ({api_version})"),
                    None,
                );
            }
        }
    }
    if let Some(schema) = istio::schema(api_version, kind)
        && schema.group == "networking.istio.io"
    {
        if kind == "VirtualService" {
            check_virtual_service(doc, sink);
        }
        istio::deprecated_fields(doc, kind, sink);
    }
    accepted
}

/// What the typed deserialization found.
pub(crate) enum Finding {
    Unknown(Vec<Seg>),
    WrongType(Vec<Seg>, String),
}

/// Deserializes into the kind's type, if the lint knows it.
fn typed_findings(api_version: &str, kind: &str, json: &serde_json::Value) -> Vec<Finding> {
    macro_rules! core_kinds {
        ($($ty:ty),* $(,)?) => {
            $(
                if api_version == <$ty as Resource>::API_VERSION && kind == <$ty as Resource>::KIND {
                    return typed::<$ty>(json);
                }
            )*
        };
    }
    use k8s_openapi::api::rbac::v1 as rbac;
    use k8s_openapi::api::{apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch};
    use k8s_openapi::api::{core::v1 as core, networking::v1 as networking, policy::v1 as policy};
    core_kinds!(
        core::Pod,
        core::Service,
        core::ConfigMap,
        core::Secret,
        core::Namespace,
        core::ServiceAccount,
        core::PersistentVolumeClaim,
        core::LimitRange,
        core::ResourceQuota,
        apps::Deployment,
        apps::StatefulSet,
        apps::DaemonSet,
        apps::ReplicaSet,
        batch::Job,
        batch::CronJob,
        networking::Ingress,
        networking::NetworkPolicy,
        autoscaling::HorizontalPodAutoscaler,
        policy::PodDisruptionBudget,
        rbac::Role,
        rbac::RoleBinding,
        rbac::ClusterRole,
        rbac::ClusterRoleBinding,
    );
    istio::schema(api_version, kind)
        .map(|schema| (schema.check)(json))
        .unwrap_or_default()
}

/// Runs the typed deserialization, collecting unknown fields and the first type error.
pub(crate) fn typed<T: DeserializeOwned>(json: &serde_json::Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    let value = lenient_quantities(json.clone());
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path| unknown.push(ignored_path(&path));
    let deserializer = serde_ignored::Deserializer::new(value, &mut record);
    let result: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    findings.extend(unknown.into_iter().map(Finding::Unknown));
    if let Err(error) = result {
        let path = error
            .path()
            .iter()
            .filter_map(|s| match s {
                serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                _ => None,
            })
            .collect();
        findings.push(Finding::WrongType(path, error.inner().to_string()));
    }
    findings
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut current = path;
    loop {
        match current {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                segs.push(Seg::Index(*index));
                current = parent;
            }
            serde_ignored::Path::Map { parent, key } => {
                segs.push(Seg::Key(key.clone()));
                current = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => current = parent,
        }
    }
    segs.reverse();
    segs
}

/// Resource quantities may be written as numbers (`cpu: 1`); the API server accepts that, but
/// k8s-openapi's `Quantity` is a string, so numbers under quantity maps are turned into strings.
fn lenient_quantities(mut value: serde_json::Value) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value, quantities: bool) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let is_quantity_map = matches!(
                        key.as_str(),
                        "limits" | "requests" | "hard" | "capacity" | "allocatable" | "overhead"
                    );
                    if matches!(key.as_str(), "sizeLimit" | "storage") && child.is_number() {
                        *child = serde_json::Value::String(child.to_string());
                        continue;
                    }
                    walk(child, is_quantity_map);
                }
                if quantities {
                    for child in map.values_mut() {
                        if child.is_number() {
                            *child = serde_json::Value::String(child.to_string());
                        }
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, false);
                }
            }
            _ => {}
        }
    }
    walk(&mut value, false);
    value
}

/// Core kinds under an apiVersion Kubernetes stopped serving, and the version to use instead.
fn removed_api(api_version: &str, kind: &str) -> Option<&'static str> {
    let table: &[(&str, &[&str], &str)] = &[
        (
            "extensions/v1beta1",
            &["Deployment", "DaemonSet", "ReplicaSet"],
            "apps/v1",
        ),
        ("extensions/v1beta1", &["Ingress"], "networking.k8s.io/v1"),
        (
            "extensions/v1beta1",
            &["NetworkPolicy"],
            "networking.k8s.io/v1",
        ),
        (
            "apps/v1beta1",
            &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
            "apps/v1",
        ),
        (
            "apps/v1beta2",
            &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
            "apps/v1",
        ),
        (
            "networking.k8s.io/v1beta1",
            &["Ingress", "IngressClass"],
            "networking.k8s.io/v1",
        ),
        ("batch/v1beta1", &["CronJob"], "batch/v1"),
        ("policy/v1beta1", &["PodDisruptionBudget"], "policy/v1"),
        (
            "rbac.authorization.k8s.io/v1beta1",
            &["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"],
            "rbac.authorization.k8s.io/v1",
        ),
        (
            "autoscaling/v2beta1",
            &["HorizontalPodAutoscaler"],
            "autoscaling/v2",
        ),
        (
            "autoscaling/v2beta2",
            &["HorizontalPodAutoscaler"],
            "autoscaling/v2",
        ),
        (
            "apiextensions.k8s.io/v1beta1",
            &["CustomResourceDefinition"],
            "apiextensions.k8s.io/v1",
        ),
    ];
    table
        .iter()
        .find(|(version, kinds, _)| *version == api_version && kinds.contains(&kind))
        .map(|(_, _, replacement)| *replacement)
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// The items of a sequence node, with their paths.
fn items<'a>(node: Option<&'a Node>, base: &[Seg]) -> Vec<(Vec<Seg>, &'a Node)> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut path = base.to_vec();
                path.push(Seg::Index(i));
                (path, item)
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn number(node: Option<&Node>) -> Option<f64> {
    match node.map(|n| &n.value) {
        Some(Value::Scalar(v)) => v.as_f64(),
        _ => None,
    }
}

/// Semantic checks of a VirtualService: weights, percentages, fault+retries (its deprecated
/// fields are in [`istio::DEPRECATED`]).
fn check_virtual_service(doc: &Doc, sink: &mut Sink<'_>) {
    let spec_path = [key("spec")];
    let Some(spec) = doc.tree.get("spec") else {
        return;
    };
    for section in ["http", "tcp", "tls"] {
        let base = [spec_path.to_vec(), vec![key(section)]].concat();
        for (route_path, route) in items(spec.get(section), &base) {
            check_weights(doc, route, &route_path, sink);
            if section != "http" {
                continue;
            }
            check_http_route(doc, route, &route_path, sink);
        }
    }
}

fn check_weights(doc: &Doc, route: &Node, route_path: &[Seg], sink: &mut Sink<'_>) {
    let destinations = items(route.get("route"), &[route_path, &[key("route")]].concat());
    let mut total = 0.0;
    let mut weighted = false;
    for (path, destination) in &destinations {
        if let Some(weight) = number(destination.get("weight")) {
            weighted = true;
            total += weight;
            if !(0.0..=100.0).contains(&weight) {
                sink.emit(
                    "manifest-value-range",
                    Severity::Error,
                    doc.line_of(&[path.as_slice(), &[key("weight")]].concat()),
                    format!("weight {weight} is outside 0–100"),
                    None,
                );
            }
        }
    }
    if weighted && destinations.len() > 1 && (total - 100.0).abs() > f64::EPSILON {
        sink.emit(
            "manifest-value-range",
            Severity::Warning,
            doc.line_of(&[route_path, &[key("route")]].concat()),
            format!("the route's weights add up to {total}, not 100"),
            Some("make the destinations' weights add up to 100".into()),
        );
    }
}

fn check_http_route(doc: &Doc, route: &Node, route_path: &[Seg], sink: &mut Sink<'_>) {
    let at = |rest: &[&str]| -> Vec<Seg> {
        let mut path = route_path.to_vec();
        path.extend(rest.iter().map(|k| key(k)));
        path
    };
    // Percentages (0–100) under fault and mirroring.
    for rest in [
        &["fault", "delay", "percentage", "value"][..],
        &["fault", "abort", "percentage", "value"],
        &["mirrorPercentage", "value"],
        &["fault", "delay", "percent"],
        &["mirrorPercent"],
    ] {
        let path = at(rest);
        if let Some(value) = number(doc.tree.at(&path))
            && !(0.0..=100.0).contains(&value)
        {
            sink.emit(
                "manifest-value-range",
                Severity::Error,
                doc.line_of(&path),
                format!("`{}` is {value}, outside 0–100", rest.join(".")),
                None,
            );
        }
    }
    if route.get("fault").is_some() {
        let retries = route.get("retries").filter(|r| {
            // `attempts: 0` turns retries off, which is what a fault demo wants.
            number(r.get("attempts")).is_none_or(|a| a > 0.0)
        });
        let timeout = route.get("timeout");
        let mut with = Vec::new();
        if retries.is_some() {
            with.push("retries");
        }
        if timeout.is_some() {
            with.push("a timeout");
        }
        if !with.is_empty() {
            sink.emit(
                "fault-with-retries",
                Severity::Error,
                doc.line_of(&at(&["fault"])),
                format!(
                    "this route injects faults and also sets {}; Istio does not enable retries or timeouts on a route with fault injection, so they are silently ignored",
                    with.join(" and ")
                ),
                Some("put the fault on its own route (for example one matched by a header), or drop the retries/timeout".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic;
    use std::path::Path;

    fn lint(code: &str) -> Vec<Diagnostic> {
        let markdown = format!("# T\n\n```bash\n{code}\n```\n");
        let lab = Lab::parse("t.md", &markdown).expect("parses");
        let mut sink = Sink::new(Path::new("t.md"));
        check(&lab, &mut sink);
        sink.into_diagnostics()
    }

    fn rules(code: &str) -> Vec<(String, usize)> {
        lint(code).into_iter().map(|d| (d.rule, d.line)).collect()
    }

    #[test]
    fn core_kinds_are_checked_against_k8s_openapi() {
        // Markdown line = 4 + body line (fence at 3, `kubectl apply` at 4).
        let cases: &[(&str, &[(&str, usize)])] = &[
            (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replica: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        resources:\n          limits: {cpu: 1, memory: 64Mi}\n",
                &[("manifest-unknown-field", 10)],
            ),
            (
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: \"80\"\n",
                &[("manifest-wrong-type", 12)],
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n",
                &[],
            ),
            (
                "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: web\n",
                &[("manifest-api-version", 5)],
            ),
            (
                "kind: ConfigMap\nmetadata:\n  name: c\n",
                &[("manifest-yaml", 5)],
            ),
            ("a: [1, 2\n", &[("manifest-yaml", 5)]),
        ];
        for (body, expected) in cases {
            let code = format!("kubectl apply -f - <<'EOF'\n{body}EOF");
            let found = rules(&code);
            let expected: Vec<(String, usize)> =
                expected.iter().map(|(r, l)| (r.to_string(), *l)).collect();
            assert_eq!(found, expected, "{body}");
        }
    }

    #[test]
    fn istio_kinds_are_checked() {
        let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts: [r]\n  http:\n  - timeout: 5s\n    fault:\n      delay:\n        percentage: {value: 150}\n        fixedDelay: 1s\n    route:\n    - destination: {host: r, subset: v1}\n      weight: 90\n    - destination: {host: r, subset: v2}\n      weight: 20\n      wieght: 1\n";
        let found = rules(&format!("kubectl apply -f - <<EOF\n{vs}EOF"));
        let mut names: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "fault-with-retries",
                "manifest-unknown-field",
                "manifest-value-range",
                "manifest-value-range"
            ],
            "{found:?}"
        );
        let dr = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  host: r\n  trafficPolicy:\n    loadBalancer:\n      simple: LEAST_CONN\n    outlierDetection:\n      consecutiveErrors: 3\n";
        assert_eq!(
            rules(&format!("cat <<EOF | kubectl apply -f -\n{dr}EOF")),
            [
                ("manifest-deprecated-field".to_string(), 13),
                ("manifest-deprecated-field".to_string(), 15)
            ]
        );
        let bad_enum = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  host: r\n  trafficPolicy:\n    loadBalancer:\n      simple: FASTEST\n";
        assert_eq!(
            rules(&format!("kubectl apply -f - <<EOF\n{bad_enum}EOF")),
            [("manifest-wrong-type".to_string(), 13)]
        );
    }

    #[test]
    fn yaml_files_that_are_not_manifests_are_left_alone() {
        let cases = [
            "cat > values.yaml <<'EOF'\nreplicaCount: 2\nimage: {tag: \"1.0\"}\nEOF",
            "cat > deployment.yaml <<'EOF'\nmetadata:\n  name: {{ .Release.Name }}\nEOF",
            "cat > kind.yaml <<'EOF'\nkind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\nEOF",
        ];
        for code in cases {
            assert!(lint(code).is_empty(), "{code}: {:?}", lint(code));
        }
        // A manifest in a file is checked like one on stdin.
        assert_eq!(
            rules(
                "cat > svc.yaml <<'EOF'\napiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {prots: []}\nEOF"
            ),
            [("manifest-unknown-field".to_string(), 8)]
        );
    }

    #[test]
    fn correct_manifests_are_quiet() {
        let good = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts: [r]\n  http:\n  - match:\n    - headers:\n        end-user: {exact: jason}\n    fault:\n      abort:\n        httpStatus: 500\n        percentage: {value: 100}\n    route:\n    - destination: {host: r, subset: v2}\n  - retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}\n    timeout: 10s\n    route:\n    - destination: {host: r, subset: v1}\n      weight: 75\n    - destination: {host: r, subset: v2}\n      weight: 25\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\nspec:\n  mtls: {mode: STRICT}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n";
        assert!(
            lint(&format!("kubectl apply -f - <<'EOF'\n{good}EOF")).is_empty(),
            "{:?}",
            lint(&format!("kubectl apply -f - <<'EOF'\n{good}EOF"))
        );
        // A value the shell fills in is not a type error.
        let expanded = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: $REPLICAS\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";
        assert!(
            lint(&format!(
                "REPLICAS=2\nkubectl apply -f - <<EOF\n{expanded}EOF"
            ))
            .is_empty()
        );
    }
}
