//! Which namespaces a lab touches, read from the lab model (its commands and the manifests
//! [`Lab::manifests`] found), never from the cluster.
//!
//! Settling, diagnostics and the leftover check look only where the lab works. Asking the cluster
//! "what changed" would need a baseline taken at the right moment, and a lab that creates its own
//! cluster and installs a mesh has no such moment; the commands, on the other hand, say exactly
//! which namespaces the reader's terminal aims at.

use std::collections::BTreeSet;

use labbook::kubectl::{ISTIOCTL, Invocation};
use labbook::manifest::Manifest;
use labbook::shell::Command;
use labbook::yaml::Node;
use labbook::{Lab, StepKind};
use serde_json::Value;

/// The namespace a `kubectl` command without `-n` works in (the kubeconfigs labbook uses never
/// set another default).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where Istio's control plane and add-ons live.
pub const MESH_NAMESPACE: &str = "istio-system";

/// The namespaces a lab works in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Namespaces the lab's commands read or write: settle and diagnostics look here.
    pub touched: BTreeSet<String>,
    /// Namespaces whose contents the lab changes (`apply`, `create`, `run`, `expose`, ...): the
    /// leftover check looks here after cleanup.
    pub written: BTreeSet<String>,
    /// Namespaces the lab creates itself; any still present after cleanup is a leftover.
    pub created: BTreeSet<String>,
}

/// kubectl verbs that create or change objects in a namespace.
const WRITING_VERBS: &[&str] = &[
    "apply",
    "create",
    "run",
    "expose",
    "label",
    "annotate",
    "patch",
    "scale",
    "set",
    "edit",
    "replace",
    "autoscale",
    "rollout",
];

/// The namespaces of a lab's steps, up to and including the step at index `upto` (all steps
/// when `None`). Steps that never run on the reader's machine (`skip`, and input typed inside a
/// pod) are ignored.
pub fn lab_scope(lab: &Lab, upto: Option<usize>) -> Scope {
    let last = upto.unwrap_or(usize::MAX);
    let manifests = lab.manifests();
    let mut scope = Scope::default();
    let mut mesh = false;
    for (index, step) in lab.steps.iter().enumerate() {
        if index > last || matches!(step.kind, StepKind::Skip | StepKind::SessionInput) {
            continue;
        }
        for (c, command) in step.analysis.commands.iter().enumerate() {
            mesh |= mentions_mesh(command);
            if let Some(kubectl) = Invocation::wrapped(command) {
                let applied = manifests.applied(lab, index, c);
                scope_of_kubectl(&kubectl, &applied, &mut scope);
            } else if command.program() == "istioctl"
                && let Some(ns) = Invocation::read(&ISTIOCTL, command.args(), command.line).flag(&[
                    "-n",
                    "--namespace",
                    "-i",
                    "--istioNamespace",
                ])
            {
                add(&mut scope.touched, ns);
            }
        }
    }
    if mesh {
        scope.touched.insert(MESH_NAMESPACE.to_string());
    }
    if scope.touched.is_empty() {
        scope.touched.insert(DEFAULT_NAMESPACE.to_string());
    }
    scope
}

fn mentions_mesh(command: &Command) -> bool {
    command.program() == "istioctl"
        || (command.program() == "make" && command.args().iter().any(|a| a.contains("istio")))
        || command
            .args()
            .iter()
            .any(|a| a.starts_with("istio-injection"))
        || command
            .heredoc
            .as_ref()
            .is_some_and(|doc| doc.body.contains("networking.istio.io"))
}

fn scope_of_kubectl(kubectl: &Invocation, applied: &[&Manifest], scope: &mut Scope) {
    let all_namespaces = kubectl.all_namespaces();
    let verb = kubectl.sub;
    // Positionals after the verb: `create namespace X` → ["namespace", "X"].
    let positional = &kubectl.positionals;
    let writes = WRITING_VERBS.contains(&verb);
    let ns = kubectl.namespace().unwrap_or(DEFAULT_NAMESPACE).to_string();

    // `kubectl create namespace X` (or `ns`) creates a namespace rather than something in one.
    if verb == "create" && matches!(positional.first().copied(), Some("namespace" | "ns")) {
        if let Some(name) = positional.get(1) {
            add(&mut scope.created, name);
            add(&mut scope.touched, name);
        }
        return;
    }
    if matches!(verb, "delete" | "label" | "annotate")
        && matches!(
            positional.first().copied(),
            Some("namespace" | "namespaces" | "ns")
        )
    {
        // Labelling a namespace (`istio-injection=enabled`) changes the namespace object, not
        // what is inside it.
        if verb != "delete" {
            for name in positional.iter().skip(1).filter(|w| !w.contains('=')) {
                add(&mut scope.touched, name);
            }
        }
        return;
    }

    let documents: Vec<Value> = applied
        .iter()
        .flat_map(|m| m.documents())
        .map(Node::to_json)
        .filter(|d| !d.is_null())
        .collect();
    if documents.is_empty() {
        if !all_namespaces {
            add(&mut scope.touched, &ns);
            if writes {
                add(&mut scope.written, &ns);
            }
        }
        return;
    }
    for doc in &documents {
        manifest_scope(doc, &ns, scope);
    }
}

/// Adds one manifest (or a `List` of them) to the scope; objects without a namespace land in the
/// command's namespace.
fn manifest_scope(doc: &Value, command_ns: &str, scope: &mut Scope) {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind == "List" {
        for item in doc
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            manifest_scope(item, command_ns, scope);
        }
        return;
    }
    let metadata = doc.get("metadata");
    if kind == "Namespace" {
        if let Some(name) = metadata.and_then(|m| m.get("name")).and_then(Value::as_str) {
            add(&mut scope.created, name);
            add(&mut scope.touched, name);
        }
        return;
    }
    if kind.is_empty() {
        return;
    }
    let ns = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(command_ns);
    add(&mut scope.touched, ns);
    add(&mut scope.written, ns);
}

/// Adds a namespace name, unless it is an expansion only the shell knows (`$NS`).
fn add(set: &mut BTreeSet<String>, name: &str) {
    if !name.is_empty() && !name.contains(['$', '`', '{', '(']) {
        set.insert(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn namespaces_come_from_flags_manifests_and_files() {
        struct Case {
            name: &'static str,
            code: &'static str,
            touched: &'static [&'static str],
            written: &'static [&'static str],
            created: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "no namespace flag means default",
                code: "kubectl get pods",
                touched: &["default"],
                written: &[],
                created: &[],
            },
            Case {
                name: "every spelling of the flag",
                code: "kubectl -n a get pods\nkubectl get pods --namespace b\nkubectl get pods --namespace=c\nkubectl get pods -nd",
                touched: &["a", "b", "c", "d"],
                written: &[],
                created: &[],
            },
            Case {
                name: "writing verbs mark the namespace as written",
                code: "kubectl create deployment web --image=nginx -n shop\nkubectl expose deployment web --port 80 -n shop",
                touched: &["shop"],
                written: &["shop"],
                created: &[],
            },
            Case {
                name: "create namespace creates",
                code: "kubectl create namespace staging\nkubectl label namespace staging istio-injection=enabled",
                touched: &["istio-system", "staging"],
                written: &[],
                created: &["staging"],
            },
            Case {
                name: "manifest namespaces beat the flag; Namespace objects are created",
                code: "kubectl apply -n x -f - <<EOF\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: lab\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: lab\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nEOF",
                touched: &["lab", "x"],
                written: &["lab", "x"],
                created: &["lab"],
            },
            Case {
                name: "a file written by an earlier heredoc is read",
                code: "cat > vs.yaml <<'EOF'\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\n  namespace: mesh\nEOF\nkubectl apply -f ./vs.yaml",
                touched: &["istio-system", "mesh"],
                written: &["mesh"],
                created: &[],
            },
            Case {
                name: "a heredoc piped into kubectl, and a file written by tee",
                code: "cat <<EOF | kubectl apply -f -\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: piped\nEOF\ntee gw.yaml <<'EOF'\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: teed\nEOF\nkubectl apply -f gw.yaml",
                touched: &["piped", "teed"],
                written: &["piped", "teed"],
                created: &[],
            },
            Case {
                name: "wrapped kubectl, all namespaces, expansions, exec args",
                code: "watch -n 1 kubectl get pods -n w\nkubectl get pods -A\nkubectl get pods -n \"$NS\"\nkubectl exec -it deploy/a -- ls -n /tmp",
                touched: &["default", "w"],
                written: &[],
                created: &[],
            },
            Case {
                name: "istioctl flags",
                code: "istioctl analyze -n bookinfo",
                touched: &["bookinfo", "istio-system"],
                written: &[],
                created: &[],
            },
        ];
        for case in cases {
            let md = format!("# Lab\n\n```bash\n{}\n```\n", case.code);
            let lab = Lab::parse("lab.md", &md).expect("parses");
            let scope = lab_scope(&lab, None);
            assert_eq!(scope.touched, set(case.touched), "{}: touched", case.name);
            assert_eq!(scope.written, set(case.written), "{}: written", case.name);
            assert_eq!(scope.created, set(case.created), "{}: created", case.name);
        }
    }

    #[test]
    fn later_steps_are_ignored_until_reached() {
        let md = "# Lab\n\n```bash\nkubectl get pods -n first\n```\n\n```bash\nkubectl get pods -n second\n```\n";
        let lab = Lab::parse("lab.md", md).expect("parses");
        assert_eq!(lab_scope(&lab, Some(0)).touched, set(&["first"]));
        assert_eq!(lab_scope(&lab, Some(1)).touched, set(&["first", "second"]));
    }
}
