//! Cluster backends: what a lab's commands can reach, and the hooks the engine calls around steps.
//!
//! The engine knows nothing about kind or kube; it calls these hooks. `none` gives the lab an empty
//! `KUBECONFIG` inside the run directory, so no real cluster can ever be reached.

use std::path::{Path, PathBuf};

use labbook::{Lab, Step};

pub mod diagnostics;
pub mod kind;
pub mod leftovers;
pub mod scope;
pub mod settle;

#[cfg(test)]
mod mock;

/// What a backend contributes to one lab's run.
pub trait ClusterBackend: Send {
    /// The backend's name, as in `--cluster` and in the report (`none`, `kind`).
    fn name(&self) -> &'static str;

    /// Environment variables exported to every step of the lab (at least `KUBECONFIG`).
    fn env(&self) -> Vec<(String, String)>;

    /// Called once before the first step.
    fn before_lab(&mut self, lab: &Lab) -> anyhow::Result<()>;

    /// Called before every step; an error refuses the step (for example when the current
    /// context is not a cluster this run owns).
    fn before_step(&mut self, lab: &Lab, step: &Step) -> anyhow::Result<()>;

    /// Called before every verify step: waits until the cluster is quiet. Returns how long it
    /// waited, in milliseconds, and a warning if the wait was cut short.
    fn settle(&mut self, lab: &Lab, step: &Step) -> anyhow::Result<(u64, Option<String>)>;

    /// Called after a failure: collects diagnostics into `dir`, returning the files written.
    fn diagnose(&mut self, lab: &Lab, dir: &Path) -> anyhow::Result<Vec<PathBuf>>;

    /// Called after cleanup: warnings about resources the lab created and did not delete.
    fn leftovers(&mut self, lab: &Lab) -> anyhow::Result<Vec<String>>;

    /// Called at the very end (pass, fail or interrupt): releases the cluster.
    fn teardown(&mut self) -> anyhow::Result<()>;
}

/// The `none` backend: an empty kubeconfig, and nothing to settle, diagnose or tear down.
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

impl ClusterBackend for NoCluster {
    fn name(&self) -> &'static str {
        "none"
    }

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
}
