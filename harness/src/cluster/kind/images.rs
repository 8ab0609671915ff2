//! Images pulled once per runner: `--preload` loads a lab's images into its fresh cluster
//! (`kind load docker-image`), and `--registry-mirror` points every node's containerd at a
//! registry mirror, as in kind's local-registry guide. After the lab, the cluster's `Pulled`
//! events tell how many images it still pulled from the network.
//!
//! Both act once the lab's cluster exists: right after labbook creates it, or after the step
//! that creates it when the lab does (`make kind-up`).

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use labbook::report::ImageCounts;

/// Where kind's local-registry guide has containerd look for a registry's `hosts.toml` (the kind
/// config sets `config_path` to this folder).
pub const CERTS_D: &str = "/etc/containerd/certs.d";

/// The registry a mirror stands in for.
pub const MIRRORED: &str = "docker.io";

/// The `hosts.toml` that sends pulls from docker.io to `mirror` first, and to Docker Hub when
/// the mirror fails.
pub fn hosts_toml(mirror: &str) -> String {
    format!(
        "server = \"https://registry-1.docker.io\"\n\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// Runs a tool (docker or kind) with the isolated kubeconfig, within `timeout`; its stdout, or
/// its last words on failure.
pub(crate) fn run_tool(
    program: &OsString,
    args: &[OsString],
    kubeconfig: &Path,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let mut expression = duct::cmd(program, args)
        .env("KUBECONFIG", kubeconfig)
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    expression = match stdin {
        Some(text) => expression.stdin_bytes(text.as_bytes().to_vec()),
        None => expression.stdin_null(),
    };
    let name = program.to_string_lossy();
    let handle = expression
        .start()
        .map_err(|e| format!("failed to run `{name}`: {e}"))?;
    let output = match handle.wait_timeout(timeout) {
        Ok(Some(output)) => output.clone(),
        Ok(None) => {
            let _ = handle.kill();
            return Err(format!(
                "`{name}` did not finish within {} s",
                timeout.as_secs()
            ));
        }
        Err(e) => return Err(format!("failed to wait for `{name}`: {e}")),
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Err(format!(
        "{} ({})",
        last.unwrap_or("no message").trim(),
        output.status
    ))
}

/// The programs and limits the preload uses.
pub(super) struct Tools<'a> {
    pub kind: &'a OsString,
    pub docker: &'a OsString,
    pub kubeconfig: &'a Path,
    pub cluster: &'a str,
    pub timeout: Duration,
}

impl Tools<'_> {
    fn run(
        &self,
        program: &OsString,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        run_tool(program, &args, self.kubeconfig, stdin, self.timeout)
    }

    /// Loads each image into the cluster, pulling it into the local Docker first when it is not
    /// there; an image that cannot be loaded is named with why, and the lab's cluster pulls it
    /// itself.
    pub fn preload(&self, images: &[String]) -> ImageCounts {
        let mut counts = ImageCounts::default();
        for image in images {
            let present = self
                .run(
                    self.docker,
                    &["image", "inspect", "--format", "{{.Id}}", image],
                    None,
                )
                .is_ok();
            if !present && let Err(e) = self.run(self.docker, &["pull", image], None) {
                counts
                    .not_preloaded
                    .push(format!("{image}: docker pull failed: {e}"));
                continue;
            }
            match self.run(
                self.kind,
                &["load", "docker-image", image, "--name", self.cluster],
                None,
            ) {
                Ok(_) => counts.preloaded += 1,
                Err(e) => counts
                    .not_preloaded
                    .push(format!("{image}: kind load docker-image failed: {e}")),
            }
        }
        counts
    }

    /// Writes the mirror's `hosts.toml` into every node of the cluster.
    pub fn configure_mirror(&self, mirror: &str) -> Result<(), String> {
        let nodes = self.run(self.kind, &["get", "nodes", "--name", self.cluster], None)?;
        let nodes: Vec<&str> = nodes
            .lines()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if nodes.is_empty() {
            return Err(format!("kind lists no nodes for cluster {}", self.cluster));
        }
        let dir = format!("{CERTS_D}/{MIRRORED}");
        let script = format!("mkdir -p {dir} && cat > {dir}/hosts.toml");
        for node in nodes {
            self.run(
                self.docker,
                &["exec", "-i", node, "sh", "-c", &script],
                Some(&hosts_toml(mirror)),
            )
            .map_err(|e| format!("failed to configure the mirror on node {node}: {e}"))?;
        }
        Ok(())
    }
}

/// The image a `Pulled` event says was pulled from the network, if it says so: kubelet writes
/// `Successfully pulled image "nginx:1.27" in 2.1s …` for a pull, and `Container image … already
/// present on machine` when nothing was pulled.
pub fn pulled_image(reason: Option<&str>, message: Option<&str>) -> Option<String> {
    if reason != Some("Pulled") {
        return None;
    }
    let rest = message?.strip_prefix("Successfully pulled image ")?;
    let image = rest.trim_start_matches('"');
    Some(image.split('"').next().unwrap_or(image).to_string())
}

/// How many different images the cluster pulled from the network, from its events.
pub async fn count_pulled(client: &Client) -> Result<usize, kube::Error> {
    let events = Api::<Event>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let mut images: Vec<String> = events
        .items
        .iter()
        .filter_map(|e| pulled_image(e.reason.as_deref(), e.message.as_deref()))
        .collect();
    images.sort();
    images.dedup();
    Ok(images.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulled_events_are_told_from_present_ones() {
        let cases = [
            (
                Some("Pulled"),
                Some(
                    "Successfully pulled image \"nginx:1.27\" in 2.1s (2.1s including waiting). Image size: 1 bytes.",
                ),
                Some("nginx:1.27"),
            ),
            (
                Some("Pulled"),
                Some("Container image \"nginx:1.27\" already present on machine"),
                None,
            ),
            (Some("Pulling"), Some("Pulling image \"nginx:1.27\""), None),
            (None, None, None),
        ];
        for (reason, message, want) in cases {
            assert_eq!(
                pulled_image(reason, message).as_deref(),
                want,
                "{message:?}"
            );
        }
    }

    #[test]
    fn the_mirror_is_tried_before_docker_hub() {
        let toml = hosts_toml("http://kind-registry:5000");
        assert!(toml.starts_with("server = \"https://registry-1.docker.io\""));
        assert!(toml.contains("[host.\"http://kind-registry:5000\"]"));
        assert!(toml.contains("capabilities = [\"pull\", \"resolve\"]"));
    }
}
