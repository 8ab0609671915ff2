//! `labbook clusters list|delete`: the kind clusters labbook made and kept (`--keep-cluster`, or
//! left by a run that was killed), and their removal.
//!
//! A cluster is labbook's when its name is one [`cluster_name`] makes: `labbook-<run>-<lab>`,
//! lowercase letters, digits and dashes, at most [`MAX_NAME_LEN`] characters. Any other cluster
//! is never listed and never deleted, even when named on the command line. Deletion runs `kind
//! delete cluster` with a throw-away kubeconfig, so that kind does not edit the user's own.
//!
//! `run --reuse NAME` ([`reusable`]) asks the same questions of a kept cluster before a run uses
//! it: labbook's name, still there, and its kubeconfig in an earlier run folder.
//!
//! [`cluster_name`]: crate::cluster::kind::cluster_name

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{EXIT_OK, Format};
use crate::cluster::kind::images::run_tool;
use crate::cluster::kind::{ContextState, MAX_NAME_LEN, Reuse, check_context};

/// How long `kind get clusters` and one `kind delete cluster` may take.
const KIND_TIMEOUT: Duration = Duration::from_secs(180);

/// Whether a cluster name is one labbook makes.
pub fn is_labbook_cluster(name: &str) -> bool {
    name.strip_prefix("labbook-").is_some_and(|rest| {
        !rest.is_empty()
            && name.len() <= MAX_NAME_LEN
            && !name.ends_with('-')
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

fn kind() -> OsString {
    OsString::from("kind")
}

/// Every kind cluster on this machine, as `kind get clusters` prints them.
fn all_clusters(kubeconfig: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let out = run_tool(
        &kind(),
        &["get".into(), "clusters".into()],
        kubeconfig,
        None,
        KIND_TIMEOUT,
    )
    .map_err(|e| anyhow::anyhow!("failed to list kind clusters: {e}"))?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// A kubeconfig kind may write to without touching the user's.
fn scratch() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("labbook-clusters-")
        .tempdir()
        .context("failed to create a temporary folder")
}

/// `labbook clusters list`: labbook's clusters, one name a line (or JSON).
pub fn list(format: Format) -> anyhow::Result<u8> {
    let dir = scratch()?;
    let ours: Vec<String> = all_clusters(&dir.path().join("kubeconfig"))?
        .into_iter()
        .filter(|c| is_labbook_cluster(c))
        .collect();
    let text = match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&serde_json::json!({ "clusters": ours }))?;
            text.push('\n');
            text
        }
        Format::Text if ours.is_empty() => {
            eprintln!("labbook: no kind clusters made by labbook");
            String::new()
        }
        Format::Text => ours.iter().map(|c| format!("{c}\n")).collect(),
    };
    crate::cli::print_stdout(&text)?;
    Ok(EXIT_OK)
}

/// `labbook clusters delete NAME… | --all`: deletes labbook's clusters. Names that are not
/// labbook's, or no cluster at all, are refused before anything is deleted (exit code 2).
pub fn delete(names: &[String], all: bool) -> anyhow::Result<u8> {
    let dir = scratch()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let existing = all_clusters(&kubeconfig)?;
    let targets: Vec<String> = if all {
        existing
            .iter()
            .filter(|c| is_labbook_cluster(c))
            .cloned()
            .collect()
    } else {
        let foreign: Vec<&String> = names.iter().filter(|n| !is_labbook_cluster(n)).collect();
        if !foreign.is_empty() {
            let list: Vec<String> = foreign.iter().map(|n| format!("`{n}`")).collect();
            bail!(
                "refusing to delete {}: labbook deletes only the clusters it made (named \
                 `labbook-<run>-<lab>`); use `kind delete cluster --name NAME` for others",
                list.join(", ")
            );
        }
        let missing: Vec<&String> = names.iter().filter(|n| !existing.contains(n)).collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
            bail!(
                "failed to delete {}: no such kind cluster (`labbook clusters list` shows them)",
                list.join(", ")
            );
        }
        names.to_vec()
    };
    if targets.is_empty() {
        eprintln!("labbook: no kind clusters made by labbook: nothing to delete");
        return Ok(EXIT_OK);
    }
    for name in &targets {
        let args: Vec<OsString> = vec![
            "delete".into(),
            "cluster".into(),
            "--name".into(),
            name.into(),
            "--kubeconfig".into(),
            kubeconfig.clone().into_os_string(),
        ];
        run_tool(&kind(), &args, &kubeconfig, None, KIND_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("failed to delete kind cluster {name}: {e}"))?;
        eprintln!("labbook: deleted kind cluster {name}");
    }
    Ok(EXIT_OK)
}

/// `run --reuse NAME --report DIR`: the kept cluster `name`, when it is labbook's, still exists,
/// and an earlier run folder under `DIR/run/` holds a kubeconfig whose current context is it.
/// Anything else is refused (exit code 2), before the run touches anything.
pub fn reusable(name: &str, report: &std::path::Path) -> anyhow::Result<Reuse> {
    if !is_labbook_cluster(name) {
        bail!(
            "refusing to reuse `{name}`: labbook runs only on clusters it made and kept (named \
             `labbook-<run>-<lab>`, see `labbook clusters list`)"
        );
    }
    let dir = scratch()?;
    if !all_clusters(&dir.path().join("kubeconfig"))?
        .iter()
        .any(|c| c == name)
    {
        bail!(
            "failed to reuse `{name}`: no such kind cluster (`kind get clusters` does not list \
             it; `labbook clusters list` shows the kept ones)"
        );
    }
    let runs = report.join("run");
    let context = format!("kind-{name}");
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|run| {
            std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|lab| lab.path().join("kubeconfig"))
        .filter(|path| matches!(check_context(path, &context), Ok(ContextState::Owned)))
        .collect();
    found.sort();
    let Some(from) = found.pop() else {
        bail!(
            "failed to reuse `{name}`: no kubeconfig for it in the run folders under {} (run \
             with the same --report DIR as the `--keep-cluster` run that kept it)",
            runs.display()
        );
    };
    let kubeconfig = std::fs::read_to_string(&from)
        .with_context(|| format!("failed to read {}", from.display()))?;
    Ok(Reuse {
        name: name.to_string(),
        from,
        kubeconfig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kind::cluster_name;

    #[test]
    fn only_names_labbook_makes_are_its_clusters() {
        let cases = [
            ("labbook-r1-intro", true),
            ("labbook-ac8a352e-module-05-traffic-mana-b389a4", false),
            ("labbook-", false),
            ("labbook-x-", false),
            ("labbook-R1-intro", false),
            ("kind", false),
            ("dev-labbook-r1", false),
            ("labbook_r1", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_labbook_cluster(name), want, "{name}");
        }
        for (run, lab) in [
            ("r1", "intro"),
            ("20250101-120000", "a very long lab name indeed"),
        ] {
            let name = cluster_name(run, lab);
            assert!(is_labbook_cluster(&name), "{name}");
        }
    }
}
