//! Guards: which labs create their own cluster, and the checks that keep every step on the
//! cluster this run owns (the isolated kubeconfig's current context, and no kubectl, istioctl or
//! kind aimed elsewhere).

use std::io;
use std::path::Path;

use kube::config::Kubeconfig;
use labbook::kubectl::{Grammar, Invocation};
use labbook::tools;
use labbook::{Lab, Step, StepKind};

use super::KindError;

/// Whether the lab creates its cluster itself (`kind create cluster`, `make kind-up`, a
/// `kind-up.sh` script), in a step that runs in the main sequence.
pub fn lab_creates_cluster(lab: &Lab) -> bool {
    lab.steps
        .iter()
        .filter(|s| s.kind.in_main_sequence() && s.kind != StepKind::SessionInput)
        .flat_map(|s| &s.analysis.commands)
        .any(|c| {
            tools::creates_cluster(c.program(), c.args())
                || (c.program() == "make"
                    && c.args().iter().any(|a| tools::creates_cluster_target(a)))
        })
}

/// What the isolated kubeconfig says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextState {
    /// Absent, empty, or without a current context: no cluster is reachable (yet, or any more).
    NoCluster,
    /// The current context is the cluster this run owns.
    Owned,
}

/// Checks the isolated kubeconfig: no current context, or the one this run owns
/// (`expected_context`). Anything else is refused, naming the context found.
pub fn check_context(kubeconfig: &Path, expected_context: &str) -> Result<ContextState, KindError> {
    let text = match std::fs::read_to_string(kubeconfig) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ContextState::NoCluster),
        Err(e) => {
            return Err(KindError::Kubeconfig {
                path: kubeconfig.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(ContextState::NoCluster);
    }
    let config = Kubeconfig::read_from(kubeconfig).map_err(|e| KindError::Kubeconfig {
        path: kubeconfig.to_path_buf(),
        message: e.to_string(),
    })?;
    match config.current_context.as_deref() {
        None | Some("") => Ok(ContextState::NoCluster),
        Some(found) if found == expected_context => Ok(ContextState::Owned),
        Some(found) => Err(KindError::ForeignContext {
            path: kubeconfig.to_path_buf(),
            found: found.to_string(),
            expected: expected_context.to_string(),
        }),
    }
}

/// Why a step must not run: it points kubectl, istioctl or kind at a cluster or kubeconfig this
/// run does not own (`--context other`, `--kubeconfig ~/.kube/config`, `export KUBECONFIG=…`,
/// `kind delete cluster --name kind`). Values only the shell knows (`$KUBECONFIG`) are trusted:
/// the current context is checked again before the next step.
pub fn foreign_target(step: &Step, cluster: &str, kubeconfig: &Path) -> Option<String> {
    let context = format!("kind-{cluster}");
    let our_kubeconfig = kubeconfig.to_string_lossy();
    let literal = |v: &str| !v.contains(['$', '`']);
    if let Some((line, value)) = kubeconfig_assignment(step)
        && literal(&value)
        && value != our_kubeconfig
    {
        return Some(format!(
            "line {line}: `KUBECONFIG={value}` leaves the lab's own kubeconfig"
        ));
    }
    for command in &step.analysis.commands {
        let line = command.line;
        let words = command.args();
        let program = command.program();
        let (kubeconfig_flags, context_flags): (&[&str], &[&str]) = match program {
            "kubectl" => (&["--kubeconfig"], &["--context"]),
            "istioctl" => (&["--kubeconfig", "-c"], &["--context"]),
            "kind" => (&["--kubeconfig"], &[]),
            _ => continue,
        };
        let Some(grammar) = Grammar::of(program) else {
            continue;
        };
        let invocation = Invocation::read(&grammar, words, line);
        for (flag, value) in invocation
            .flags
            .iter()
            .filter_map(|(flag, value)| Some((*flag, (*value)?)))
        {
            if kubeconfig_flags.contains(&flag) && literal(value) && value != our_kubeconfig {
                return Some(format!(
                    "line {line}: `{program} {flag} {value}` reads a kubeconfig other than the \
                     lab's own ({our_kubeconfig})"
                ));
            }
            if context_flags.contains(&flag) && literal(value) && value != context {
                return Some(format!(
                    "line {line}: `{program} {flag} {value}` aims at a cluster this run does not \
                     own (it owns {context})"
                ));
            }
            if program == "kind" && flag == "--name" && literal(value) && value != cluster {
                return Some(format!(
                    "line {line}: `kind … --name {value}` acts on a cluster this run does not own \
                     (it owns {cluster})"
                ));
            }
        }
        if program == "kubectl"
            && let [first, second, target, ..] = words
            && first == "config"
            && matches!(second.as_str(), "use-context" | "use")
            && literal(target)
            && *target != context
        {
            return Some(format!(
                "line {line}: `kubectl config use-context {target}` switches to a cluster this \
                 run does not own (it owns {context})"
            ));
        }
    }
    None
}

/// The first assignment to `KUBECONFIG` in a step (`export KUBECONFIG=…`, a plain
/// `KUBECONFIG=…`, which changes the exported variable too, or one before a command), with its
/// Markdown line, as the shell parser recorded it.
fn kubeconfig_assignment(step: &Step) -> Option<(usize, String)> {
    step.analysis
        .assignments
        .iter()
        .find(|a| a.name == "KUBECONFIG" && a.value.is_some())
        .map(|a| (a.line, a.value.clone().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(code: &str) -> Lab {
        Lab::parse(
            "lab.md",
            &format!("# Lab\n\n## Setup\n\n```bash\n{code}\n```\n"),
        )
        .expect("parses")
    }

    #[test]
    fn who_creates_the_cluster() {
        let cases = [
            ("make kind-up", true),
            ("make kind-up istio-sidecar", true),
            ("kind create cluster --config kind.yaml", true),
            ("./scripts/kind-up.sh", true),
            ("kubectl get nodes", false),
            ("make istio-sidecar", false),
            ("kind get clusters", false),
        ];
        for (code, want) in cases {
            assert_eq!(lab_creates_cluster(&lab(code)), want, "{code}");
        }
        let skipped = Lab::parse(
            "lab.md",
            "# Lab\n\n## Next Steps\n\n```bash\nmake kind-up\n```\n",
        )
        .expect("parses");
        assert!(!lab_creates_cluster(&skipped));
    }

    #[test]
    fn the_owned_context_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        let config = |current: &str| {
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: \"{current}\"\nclusters: []\ncontexts: []\nusers: []\n"
            )
        };
        let cases: Vec<(&str, Option<String>, Result<ContextState, &str>)> = vec![
            ("absent", None, Ok(ContextState::NoCluster)),
            ("empty", Some(String::new()), Ok(ContextState::NoCluster)),
            (
                "no current context",
                Some(config("")),
                Ok(ContextState::NoCluster),
            ),
            (
                "owned",
                Some(config("kind-labbook-r-a")),
                Ok(ContextState::Owned),
            ),
            (
                "another kind cluster",
                Some(config("kind-kind")),
                Err("current context `kind-kind`"),
            ),
            (
                "a cloud cluster",
                Some(config("gke_prod")),
                Err("current context `gke_prod`"),
            ),
            (
                "not yaml",
                Some("{{{".into()),
                Err("failed to read the lab's kubeconfig"),
            ),
        ];
        for (name, content, want) in cases {
            let _ = std::fs::remove_file(&path);
            if let Some(content) = content {
                std::fs::write(&path, content).expect("write");
            }
            let got = check_context(&path, "kind-labbook-r-a");
            match (got, want) {
                (Ok(state), Ok(want)) => assert_eq!(state, want, "{name}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn steps_aiming_elsewhere_are_refused() {
        let kubeconfig = Path::new("/run/lab/kubeconfig");
        let cases = [
            ("kubectl get pods", None),
            ("kubectl --context kind-labbook-r-a get pods", None),
            ("kubectl --kubeconfig \"$KUBECONFIG\" get pods", None),
            ("kubectl --kubeconfig /run/lab/kubeconfig get pods", None),
            ("kind delete cluster", None),
            ("kind create cluster --name labbook-r-a", None),
            (
                "kubectl get pods --context=kind-kind",
                Some("`kubectl --context kind-kind`"),
            ),
            (
                "kubectl --kubeconfig ~/.kube/config get pods",
                Some("reads a kubeconfig other"),
            ),
            (
                "export KUBECONFIG=/root/.kube/config",
                Some("`KUBECONFIG=/root/.kube/config`"),
            ),
            (
                "KUBECONFIG=/etc/k.conf kubectl get pods",
                Some("`KUBECONFIG=/etc/k.conf`"),
            ),
            ("export KUBECONFIG=$PWD/kubeconfig", None),
            // Text in a heredoc body is not an assignment (the shell parser knows; a line
            // splitter did not).
            ("cat > notes.txt <<'EOF'\nKUBECONFIG=/etc/k.conf\nEOF", None),
            (
                "declare -x KUBECONFIG=/etc/k.conf",
                Some("`KUBECONFIG=/etc/k.conf`"),
            ),
            (
                "kind delete cluster --name kind",
                Some("`kind … --name kind`"),
            ),
            (
                "kubectl config use-context prod",
                Some("`kubectl config use-context prod`"),
            ),
            (
                "istioctl -c /etc/admin.conf proxy-status",
                Some("reads a kubeconfig other"),
            ),
        ];
        for (code, want) in cases {
            let lab = lab(code);
            let got = foreign_target(&lab.steps[0], "labbook-r-a", kubeconfig);
            match (got, want) {
                (None, None) => {}
                (Some(reason), Some(want)) => {
                    assert!(reason.contains(want), "{code}: {reason}");
                    assert!(reason.starts_with("line 6: "), "{code}: {reason}");
                }
                (got, want) => panic!("{code}: got {got:?}, want {want:?}"),
            }
        }
    }
}
