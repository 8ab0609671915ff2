//! Layer 1 of the model: the tools table, the one place that says which programs talk to a
//! cluster, which commands create one, and which `make` targets set up a cluster or tear it down.
//!
//! The lint (a cluster tool typed inside a pod, a `make` target it cannot see into), the kind
//! backend (does the lab create its own cluster?) and the engine (the no-cluster hint) all ask
//! these questions; they ask them here, so that adding a tool is one line.

use std::ffi::OsStr;
use std::path::PathBuf;

/// Programs that talk to a Kubernetes cluster (through a kubeconfig): they fail without one, and
/// have neither the binary nor credentials inside an ordinary pod.
pub const CLUSTER_CLIENTS: &[&str] = &[
    "kubectl", "istioctl", "helm", "kind", "k9s", "kubectx", "kubens", "stern", "linkerd", "argocd",
];

/// How lines start that cluster clients print about the session or the container they picked,
/// not as the command's output: a book's printed output leaves them out, so its check skips them
/// in what the run printed.
pub const CLIENT_CHATTER: &[&str] = &[
    "If you don't see a command prompt, try pressing enter.",
    "Defaulted container \"",
];

/// `make` targets (and script names, without extension) that create the lab's cluster.
pub const CLUSTER_TARGETS: &[&str] = &[
    "kind-up",
    "cluster-up",
    "kind-create",
    "create-cluster",
    "kind-cluster",
];

/// Words in a `make` target that mean it sets up or tears down infrastructure (a cluster, a
/// mesh, add-ons) rather than deploying the lab's own workloads.
pub const INFRA_WORDS: &[&str] = &[
    "kind",
    "cluster",
    "istio",
    "mesh",
    "kiali",
    "prometheus",
    "grafana",
    "jaeger",
    "zipkin",
    "addon",
    "addons",
    "dashboard",
    "install",
    "uninstall",
    "setup",
    "tools",
    "deps",
    "crd",
    "crds",
    "metallb",
    "cert",
    "up",
    "down",
    "clean",
    "delete",
    "destroy",
    "reset",
    "teardown",
    "sidecar",
    "ambient",
    "observability",
];

/// Words in a `make` target that tear everything down.
pub const TEARDOWN_WORDS: &[&str] = &["down", "delete", "destroy", "reset", "teardown", "clean"];

/// Whether a program (a name, or a path to it) talks to a cluster.
pub fn talks_to_cluster(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    CLUSTER_CLIENTS.contains(&name)
}

/// Whether a command creates a cluster: `kind create cluster`, or a script named like a cluster
/// target (`./kind-up.sh`). `make` goals are asked with [`creates_cluster_target`].
pub fn creates_cluster(program: &str, args: &[String]) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    let stem = name.split('.').next().unwrap_or(name);
    (name == "kind"
        && args.first().map(String::as_str) == Some("create")
        && args.get(1).map(String::as_str) == Some("cluster"))
        || CLUSTER_TARGETS.contains(&stem)
}

/// Whether a `make` goal creates the lab's cluster (`make kind-up`).
pub fn creates_cluster_target(goal: &str) -> bool {
    CLUSTER_TARGETS.contains(&goal)
}

/// The words of a `make` goal, lowercased: `Istio-Up` → `istio`, `up`.
pub fn target_words(goal: &str) -> Vec<String> {
    goal.split(['-', '_', '/', '.'])
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether a `make` goal sets up or tears down infrastructure (a cluster, a mesh, add-ons).
pub fn is_infra_target(goal: &str) -> bool {
    target_words(goal)
        .iter()
        .any(|w| INFRA_WORDS.contains(&w.as_str()))
}

/// Whether a `make` goal tears everything down.
pub fn is_teardown_target(goal: &str) -> bool {
    target_words(goal)
        .iter()
        .any(|w| TEARDOWN_WORDS.contains(&w.as_str()))
}

/// The executable `name` in the first directory of `path` (a `PATH`-style list) that has it: a
/// file with an executable bit, as the shell would run it.
pub fn which(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|file| is_executable(file))
}

#[cfg(unix)]
fn is_executable(file: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(file: &std::path::Path) -> bool {
    file.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_that_talk_to_a_cluster() {
        let cases = [
            ("kubectl", true),
            ("/usr/local/bin/kubectl", true),
            ("istioctl", true),
            ("helm", true),
            ("kind", true),
            ("stern", true),
            ("curl", false),
            ("kustomize", false),
            ("make", false),
        ];
        for (program, want) in cases {
            assert_eq!(talks_to_cluster(program), want, "{program}");
        }
    }

    #[test]
    fn commands_that_create_a_cluster() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("kind", &["create", "cluster"], true),
            ("kind", &["create", "cluster", "--name", "x"], true),
            ("kind", &["delete", "cluster"], false),
            ("kind", &["get", "clusters"], false),
            ("./kind-up.sh", &[], true),
            ("scripts/cluster-up", &[], true),
            ("./deploy.sh", &[], false),
        ];
        for (program, args, want) in cases {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert_eq!(creates_cluster(program, &args), *want, "{program} {args:?}");
        }
    }

    #[test]
    fn make_targets() {
        // (goal, creates the cluster, infrastructure, teardown)
        let cases = [
            ("kind-up", true, true, false),
            ("create-cluster", true, true, false),
            ("istio-sidecar", false, true, false),
            ("Install_Addons", false, true, false),
            ("kind-down", false, true, true),
            ("clean", false, true, true),
            ("deploy", false, false, false),
            ("app/build", false, false, false),
        ];
        for (goal, creates, infra, teardown) in cases {
            assert_eq!(creates_cluster_target(goal), creates, "{goal}: creates");
            assert_eq!(is_infra_target(goal), infra, "{goal}: infra");
            assert_eq!(is_teardown_target(goal), teardown, "{goal}: teardown");
        }
    }

    #[cfg(unix)]
    #[test]
    fn which_wants_an_executable() {
        use std::os::unix::fs::PermissionsExt;
        let first = tempfile::tempdir().expect("temp dir");
        let second = tempfile::tempdir().expect("temp dir");
        // A plain file earlier on PATH is skipped, as the shell skips it.
        std::fs::write(first.path().join("tool"), "data").expect("write");
        let runnable = second.path().join("tool");
        std::fs::write(&runnable, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&runnable, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = std::env::join_paths([first.path(), second.path()]).expect("path");
        assert_eq!(which("tool", &path), Some(runnable));
        assert_eq!(which("absent", &path), None);
    }
}
