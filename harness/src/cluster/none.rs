//! The `none` backend: an empty kubeconfig, and nothing to settle, diagnose or tear down.
//!
//! A lab written for a cluster fails here as soon as it talks to one. Such a failure is not the
//! lab's fault, so this backend's [`LabCluster::failure_hint`] says once that the lab needs
//! `--cluster kind`, and [`LabCluster::is_noise`] keeps the repeated connection errors out of
//! the console excerpt.

use std::path::{Path, PathBuf};

use labbook::text::truncate;
use labbook::{Lab, Step, StepKind, tools};

use super::LabCluster;

/// Output that says the failure came from talking to a cluster (or a missing cluster tool).
const CONNECTION_ERRORS: [&str; 10] = [
    "connection refused",
    "The connection to the server",
    "no configuration has been provided",
    "Unable to connect to the server",
    "Kubernetes cluster unreachable",
    "couldn't get current server API group list",
    "command not found",
    "invalid configuration",
    "context was not found",
    "dial tcp",
];

/// Lines that only say "there is no cluster": the hint explains them once, and repeating them
/// would bury the lines that matter.
const NO_CLUSTER_NOISE: [&str; 6] = [
    "connection refused",
    "The connection to the server",
    "couldn't get current server API group list",
    "Unable to connect to the server",
    "Cannot connect to the Docker daemon",
    "Kubernetes cluster unreachable",
];

/// The `none` backend of one lab.
pub struct NoCluster {
    kubeconfig: PathBuf,
}

impl NoCluster {
    /// Creates the empty kubeconfig file inside the lab's run directory.
    pub fn new(run_dir: &Path) -> anyhow::Result<Self> {
        let kubeconfig = run_dir.join("kubeconfig");
        std::fs::write(&kubeconfig, "")?;
        Ok(NoCluster { kubeconfig })
    }
}

impl LabCluster for NoCluster {
    fn env(&self) -> Vec<(String, String)> {
        vec![(
            "KUBECONFIG".into(),
            self.kubeconfig.to_string_lossy().into_owned(),
        )]
    }

    fn before_lab(&mut self, _lab: &Lab) -> anyhow::Result<()> {
        Ok(())
    }

    fn before_step(&mut self, _lab: &Lab, _step: &Step) -> anyhow::Result<()> {
        Ok(())
    }

    fn settle(&mut self, _lab: &Lab, _step: &Step) -> anyhow::Result<(u64, Option<String>)> {
        Ok((0, None))
    }

    fn diagnose(&mut self, _lab: &Lab, _dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }

    fn leftovers(&mut self, _lab: &Lab) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn teardown(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// A failing step that calls a cluster tool needs a real cluster.
    fn failure_hint(&self, lab: &Lab, step: &Step, output: &str, failing: &str) -> Option<String> {
        no_cluster_hint(lab, step, output, failing)
    }

    fn is_noise(&self, line: &str) -> bool {
        NO_CLUSTER_NOISE.iter().any(|n| line.contains(n))
    }
}

/// The hint for a step that failed because it talks to a cluster and there is none.
fn no_cluster_hint(lab: &Lab, step: &Step, output: &str, failing: &str) -> Option<String> {
    let tool = step.analysis.commands.iter().find_map(|c| {
        let program = c.program();
        let is_make_cluster_target =
            program == "make" && c.args().iter().any(|a| tools::is_infra_target(a));
        (tools::talks_to_cluster(program) || is_make_cluster_target)
            .then(|| (c.argv.join(" "), c.line))
    })?;
    // Only when the failure comes from talking to a cluster: a test double that fails for
    // another reason does not need kind.
    let first_word = failing.split_whitespace().next().unwrap_or("");
    let connection = CONNECTION_ERRORS
        .iter()
        .any(|needle| output.contains(needle));
    // A session's opening command exits with the status of the shell it opened (a pod shell's
    // `exit 3`): only a connection problem says a cluster is missing.
    let tool_failed = step.kind != StepKind::OpenSession
        && (tools::talks_to_cluster(first_word) || first_word == "make");
    (connection || tool_failed).then(|| {
        format!(
            "hint: this step talks to a cluster (`{}` at {}:{}), and --cluster none has none: \
             run this lab with --cluster kind",
            truncate(&tool.0, 60),
            lab.path.display(),
            tool.1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_cluster_tool_only_when_the_cluster_was_missed() {
        let source = "# Lab\n\n```bash\necho start\nkubectl get pods\n```\n\n```bash\nmake kind-up\n```\n\n```bash\n./fake-kubectl\n```\n";
        let lab = Lab::parse("ch.md", source).expect("the lab parses");
        let refused = "The connection to the server localhost:8080 was refused";
        let cases = [
            // (step, output, failing command, hint expected)
            (
                0,
                refused,
                "kubectl get pods",
                Some("`kubectl get pods` at ch.md:5"),
            ),
            (
                0,
                "",
                "kubectl get pods",
                Some("`kubectl get pods` at ch.md:5"),
            ),
            (0, "error: some other failure", "echo start", None),
            (1, "", "make kind-up", Some("`make kind-up` at ch.md:9")),
            (2, refused, "./fake-kubectl", None),
        ];
        for (step, output, failing, expected) in cases {
            let hint = no_cluster_hint(&lab, &lab.steps[step], output, failing);
            match expected {
                Some(needle) => {
                    let hint = hint.unwrap_or_else(|| panic!("{step} {failing}: no hint"));
                    assert!(hint.contains(needle), "{hint}");
                    assert!(hint.ends_with("run this lab with --cluster kind"), "{hint}");
                }
                None => assert_eq!(hint, None, "{step} {failing}"),
            }
        }
    }

    #[test]
    fn connection_errors_are_noise_and_real_errors_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = NoCluster::new(dir.path()).expect("kubeconfig");
        let cases = [
            ("dial tcp 127.0.0.1:8080: connect: connection refused", true),
            ("Kubernetes cluster unreachable: no such host", true),
            ("bash: istioctl: command not found", false),
            (
                "Error from server (NotFound): pods \"web\" not found",
                false,
            ),
        ];
        for (line, noise) in cases {
            assert_eq!(none.is_noise(line), noise, "{line}");
        }
    }
}
