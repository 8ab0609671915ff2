//! Cluster backends: what a lab's commands can reach, and the hooks the engine calls around steps.
//!
//! The engine knows nothing about kind or kube. The command line chooses a [`Backend`] (a plain
//! value with its options); the engine asks it for one [`LabCluster`] per lab and calls that
//! one's hooks. `none` ([`none`]) gives the lab an empty `KUBECONFIG` inside the run directory, so
//! no real cluster can ever be reached; `kind` ([`kind`]) gives it a throw-away cluster.

use std::path::{Path, PathBuf};

use labbook::{Lab, Step};

pub mod diagnostics;
pub mod kind;
pub mod leftovers;
pub mod none;
pub mod scope;
pub mod settle;

#[cfg(test)]
mod mock;

/// The cluster backend of a run, with its options: what the command line hands the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// No cluster: an empty kubeconfig.
    None,
    /// A throw-away kind cluster per lab.
    Kind {
        /// Keep the clusters after the run, for debugging (`--keep-cluster`).
        keep_cluster: bool,
        /// Load the lab's images into its cluster before its first step (`--preload`).
        preload: bool,
        /// Point each node's containerd at this registry mirror for docker.io
        /// (`--registry-mirror`).
        mirror: Option<String>,
        /// Run on this cluster, kept by an earlier run, instead of a new one (`--reuse`); it is
        /// neither created nor deleted.
        reuse: Option<kind::Reuse>,
    },
}

impl Backend {
    /// Every backend, in the order `labbook doctor` lists them.
    pub const ALL: [Backend; 2] = [
        Backend::None,
        Backend::Kind {
            keep_cluster: false,
            preload: false,
            mirror: None,
            reuse: None,
        },
    ];

    /// Whether the labs' images are loaded into their clusters before the first step.
    pub fn preloads(&self) -> bool {
        matches!(self, Backend::Kind { preload: true, .. })
    }

    /// The kept cluster this run reuses (`--reuse`), if any.
    pub fn reused(&self) -> Option<&str> {
        match self {
            Backend::Kind {
                reuse: Some(reuse), ..
            } => Some(&reuse.name),
            _ => None,
        }
    }

    /// The backend's name, as in `--cluster` and in the report (`none`, `kind`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Kind { .. } => "kind",
        }
    }

    /// What the backend gives a lab, in a few words (for `labbook doctor`).
    pub fn summary(&self) -> &'static str {
        match self {
            Backend::None => "labs run without a cluster (KUBECONFIG points at an empty file)",
            Backend::Kind { .. } => "one throw-away kind cluster per lab",
        }
    }

    /// The cluster of one lab, given the run's id (shared by every lab of a run), the lab's
    /// run folder (where its kubeconfig lives) and the images to preload (with `--preload`:
    /// [`labbook::images::preload`]).
    pub fn for_lab(
        &self,
        run_id: &str,
        run_dir: &Path,
        lab: &Lab,
        images: &[String],
    ) -> anyhow::Result<Box<dyn LabCluster>> {
        match self {
            Backend::None => Ok(Box::new(none::NoCluster::new(run_dir)?)),
            Backend::Kind {
                keep_cluster,
                preload,
                mirror,
                reuse,
            } => {
                // The run folder is `<index>-<chapter key>` (`Lab::key`): unique within the run.
                let lab_slug = run_dir
                    .file_name()
                    .map_or_else(|| lab.key(None), |name| name.to_string_lossy().into_owned());
                let options = kind::KindOptions {
                    keep_cluster: *keep_cluster,
                    preload: preload.then(|| images.to_vec()),
                    mirror: mirror.clone(),
                    reuse: reuse.clone(),
                    ..kind::KindOptions::new(run_id, lab_slug, run_dir)
                };
                Ok(Box::new(kind::KindCluster::new(options)?))
            }
        }
    }
}

/// What a backend contributes to one lab's run: the hooks the engine calls around its steps.
pub trait LabCluster: Send {
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

    /// Called when a step failed: a hint when the failure comes from this backend rather than
    /// from the lab (`output` is the step's output, `failing` the first failing command).
    fn failure_hint(
        &self,
        _lab: &Lab,
        _step: &Step,
        _output: &str,
        _failing: &str,
    ) -> Option<String> {
        None
    }

    /// Called after the lab, before teardown: what `--preload` loaded into the cluster and what
    /// the cluster pulled anyway; `None` when the backend preloads nothing.
    fn images(&mut self) -> Option<labbook::report::ImageCounts> {
        None
    }

    /// Whether an output line only repeats what a [`LabCluster::failure_hint`] already says, and
    /// can be left out of the console excerpt.
    fn is_noise(&self, _line: &str) -> bool {
        false
    }
}

/// `rel` in `start` or its nearest ancestor that has it.
pub fn find_upwards(start: &Path, rel: &str) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(rel))
        .find(|path| path.is_file())
}
