//! The kind CLI: running `kind` with a time limit in its own process group, and the teardown
//! (`kind delete cluster`), which is idempotent and can run from another thread.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::KindError;

/// What a teardown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeardownOutcome {
    /// `kind delete cluster` ran and succeeded.
    Deleted,
    /// `--keep-cluster`: the cluster was left running.
    Kept,
    /// An earlier teardown already did it.
    AlreadyDone,
}

/// Deletes the cluster once, from whichever thread asks first: the engine at the end of a lab,
/// an interrupt handler, or `Drop` after a panic. Clones share the same state.
#[derive(Debug, Clone)]
pub struct Teardown {
    inner: Arc<TeardownInner>,
}

#[derive(Debug)]
struct TeardownInner {
    kind: OsString,
    name: String,
    kubeconfig: PathBuf,
    keep: bool,
    timeout: Duration,
    /// Whether the teardown is done; the lock also makes concurrent callers wait for the first.
    done: Mutex<bool>,
}

impl Teardown {
    /// The teardown of cluster `name` (reached through `kubeconfig`), run with the `kind`
    /// program; with `keep` it only says how to reach the cluster.
    pub(super) fn new(
        kind: OsString,
        name: String,
        kubeconfig: PathBuf,
        keep: bool,
        timeout: Duration,
    ) -> Teardown {
        Teardown {
            inner: Arc::new(TeardownInner {
                kind,
                name,
                kubeconfig,
                keep,
                timeout,
                done: Mutex::new(false),
            }),
        }
    }

    /// Deletes the cluster (or keeps it with `--keep-cluster`), once. A failed deletion can be
    /// retried by calling again.
    pub fn run(&self) -> Result<TeardownOutcome, KindError> {
        let inner = &self.inner;
        let mut done = inner.done.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return Ok(TeardownOutcome::AlreadyDone);
        }
        if inner.keep {
            *done = true;
            eprintln!(
                "kept kind cluster {name}: export KUBECONFIG={kc} to look at it, and delete it \
                 with `kind delete cluster --name {name} --kubeconfig {kc}`",
                name = inner.name,
                kc = inner.kubeconfig.display()
            );
            return Ok(TeardownOutcome::Kept);
        }
        let args = [
            "delete".into(),
            "cluster".into(),
            "--name".into(),
            OsString::from(&inner.name),
            "--kubeconfig".into(),
            inner.kubeconfig.clone().into_os_string(),
        ];
        // Its own process group: a second Ctrl+C in the terminal must not kill the deletion.
        run_kind(
            &inner.kind,
            &args,
            &inner.kubeconfig,
            &inner.name,
            inner.timeout,
            true,
        )
        .map_err(|detail| match detail {
            RunError::Spawn(source) => KindError::Spawn {
                program: inner.kind.to_string_lossy().into_owned(),
                source,
            },
            RunError::Failed(detail) => KindError::Kind {
                action: "delete",
                name: inner.name.clone(),
                detail,
            },
        })?;
        *done = true;
        Ok(TeardownOutcome::Deleted)
    }

    /// Whether the teardown has been done.
    pub fn is_done(&self) -> bool {
        *self.inner.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) enum RunError {
    Spawn(io::Error),
    Failed(String),
}

/// Runs kind with the isolated kubeconfig in its environment too (so nothing falls back to
/// `~/.kube/config`), within `timeout`.
pub(super) fn run_kind(
    kind: &OsString,
    args: &[OsString],
    kubeconfig: &Path,
    name: &str,
    timeout: Duration,
    own_group: bool,
) -> Result<String, RunError> {
    let expression = duct::cmd(kind, args)
        .env("KUBECONFIG", kubeconfig)
        .env("KIND_CLUSTER_NAME", name)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .before_spawn(move |command| {
            if own_group {
                command.process_group(0);
            }
            Ok(())
        });
    let handle = expression.start().map_err(RunError::Spawn)?;
    let output = match handle.wait_timeout(timeout).map_err(RunError::Spawn)? {
        Some(output) => output.clone(),
        None => {
            let _ = handle.kill();
            return Err(RunError::Failed(format!(
                "`kind` did not finish within {} s",
                timeout.as_secs()
            )));
        }
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(RunError::Failed(format!(
        "{} ({})",
        tail.join(" | "),
        output.status
    )))
}
