//! The `kind` backend: one throw-away kind cluster per lab, reached only through an isolated
//! kubeconfig in the lab's run directory.
//!
//! - The cluster is named `labbook-<run>-<lab>` ([`cluster_name`]), a valid kind and DNS name.
//! - [`KindCluster::env`] exports `KIND_CLUSTER_NAME` and `KUBECONFIG=<run_dir>/kubeconfig`, so a
//!   lab whose setup runs `make kind-up` (or `kind create cluster`) creates exactly that cluster,
//!   in that file. When the lab does not create a cluster itself ([`lab_creates_cluster`]), the
//!   harness does, in `before_lab`.
//! - Before every step, the kubeconfig's current context must be `kind-<name>` (or there must be
//!   none yet), and the step must not aim kubectl, istioctl or kind elsewhere ([`check_context`],
//!   [`foreign_target`]). `~/.kube/config` is never read or written: every kind call gets
//!   `--kubeconfig` and `KUBECONFIG`, and kube reads only the isolated file.
//! - With `--reuse` ([`Reuse`]) the lab runs on a cluster an earlier `--keep-cluster` run left:
//!   its kubeconfig is copied into the lab's run directory, and the cluster is neither created
//!   nor deleted.
//! - `teardown` deletes the cluster unless `--keep-cluster` or `--reuse`; it is idempotent, and a
//!   [`Teardown`] handle can run it from an interrupt path on another thread. Dropping the
//!   backend without a teardown (a panic) deletes the cluster too.
//!
//! The engine makes one backend per lab through [`super::Backend::for_lab`]; `run_id` is the same
//! for every lab of a run and `lab_slug` differs between labs (the lab's run folder name):
//!
//! ```text
//! Box::new(KindCluster::new(KindOptions { keep_cluster, ..KindOptions::new(run_id, lab_slug, run_dir) })?)
//! ```
//!
//! and calls `teardown` whatever happens (its [`Teardown`] handle, from
//! [`KindCluster::teardown_handle`], is for an interrupt handler on another thread).
//!
//! Settling, diagnostics and the leftover check are async functions over a [`kube::Client`]
//! ([`super::settle`], [`super::diagnostics`], [`super::leftovers`]); this module only builds the
//! client from the isolated kubeconfig and blocks on them, because the engine's hooks are
//! synchronous.
//!
//! Submodules: `name` (cluster names), `guard` (who creates the cluster, and the checks before
//! every step), `cli` (running `kind`, and the teardown) and [`images`] (`--preload` and
//! `--registry-mirror`, once the cluster exists, and the images it pulled anyway).

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use labbook::{Lab, Step};

use super::scope::lab_scope;
use super::{LabCluster, diagnostics, find_upwards, leftovers, settle};

mod cli;
mod guard;
pub mod images;
mod name;

use cli::{RunError, run_kind};
pub use cli::{Teardown, TeardownOutcome};
pub use guard::{ContextState, check_context, foreign_target, lab_creates_cluster};
pub use name::{MAX_NAME_LEN, cluster_name};

/// Where the kind config lives, relative to the repository root.
pub const CONFIG_PATH: &str = "book/kind/cluster.yaml";

/// Why the kind backend could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// The run directory could not be created.
    #[error("failed to create the run directory {path}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `kind` could not be started or waited for.
    #[error("failed to run `{program}` (is kind installed? `labbook doctor` tells)")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A kind command exited with an error or did not finish in time.
    #[error("failed to {action} kind cluster {name}: {detail}")]
    Kind {
        /// `create` or `delete`.
        action: &'static str,
        /// The cluster.
        name: String,
        /// kind's own last words, or the timeout.
        detail: String,
    },
    /// The lab's kubeconfig could not be read.
    #[error("failed to read the lab's kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The isolated kubeconfig.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The kubeconfig's current context is not the cluster this run owns.
    #[error(
        "refusing to run the step: the lab's kubeconfig {path} has current context `{found}`, \
         not `{expected}`, the only cluster this run owns"
    )]
    ForeignContext {
        /// The isolated kubeconfig.
        path: PathBuf,
        /// The context found.
        found: String,
        /// The context owned.
        expected: String,
    },
    /// The step itself points a cluster tool at something this run does not own.
    #[error("refusing to run the step: {0}")]
    ForeignTarget(String),
    /// No kube client could be made for the cluster.
    #[error("failed to connect to kind cluster {name}: {message}")]
    Client {
        /// The cluster.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// Diagnostics could not be written.
    #[error(transparent)]
    Diagnostics(#[from] diagnostics::DiagnosticsError),
    /// The async runtime for kube could not start.
    #[error("failed to start the async runtime")]
    Runtime(#[source] io::Error),
}

/// A cluster kept by an earlier run (`--keep-cluster`) that this run reuses (`--reuse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    /// The cluster, one labbook made (`labbook-<run>-<lab>`).
    pub name: String,
    /// The kubeconfig the earlier run left in its run folder.
    pub from: PathBuf,
    /// Its content, read before this run starts (a run sharing the earlier `--report DIR`
    /// removes the earlier run folders); it is written into the lab's own run directory.
    pub kubeconfig: String,
}

/// How to make a lab's kind cluster.
#[derive(Debug, Clone)]
pub struct KindOptions {
    /// The run's id (a timestamp, a CI run number): part of every cluster name.
    pub run_id: String,
    /// The lab's slug (from its chapter path): the rest of the cluster name.
    pub lab_slug: String,
    /// The lab's run directory; the kubeconfig lives there.
    pub run_dir: PathBuf,
    /// Keep the cluster after the lab, for debugging (`--keep-cluster`).
    pub keep_cluster: bool,
    /// The kind config (`book/kind/cluster.yaml`), passed as `--config` when the harness creates
    /// the cluster.
    pub config: Option<PathBuf>,
    /// The node image (`--image`), e.g. `KIND_NODE_IMAGE` from `book/versions.env`.
    pub node_image: Option<String>,
    /// The kind program.
    pub kind: OsString,
    /// How long `kind create cluster` may take, `--wait` included.
    pub create_timeout: Duration,
    /// How long `kind delete cluster` may take.
    pub delete_timeout: Duration,
    /// The longest settle before a verify.
    pub settle_limit: Duration,
    /// With `--preload`: the images to load into the cluster once it exists.
    pub preload: Option<Vec<String>>,
    /// With `--registry-mirror`: the mirror every node's containerd pulls docker.io images from.
    pub mirror: Option<String>,
    /// Run on this kept cluster instead of creating one, and leave it running (`--reuse`).
    pub reuse: Option<Reuse>,
    /// The docker program (`docker pull`, `docker exec` into the nodes).
    pub docker: OsString,
    /// How long one `docker pull`, `kind load` or `docker exec` may take.
    pub image_timeout: Duration,
}

impl KindOptions {
    /// Options with the defaults: `kind` from `PATH`, the kind config found by walking up from
    /// the current directory to `book/kind/cluster.yaml`, the node image from `KIND_NODE_IMAGE`,
    /// and the cluster deleted at the end.
    pub fn new(
        run_id: impl Into<String>,
        lab_slug: impl Into<String>,
        run_dir: impl Into<PathBuf>,
    ) -> Self {
        let config = std::env::current_dir()
            .ok()
            .and_then(|dir| find_upwards(&dir, CONFIG_PATH));
        KindOptions {
            run_id: run_id.into(),
            lab_slug: lab_slug.into(),
            run_dir: run_dir.into(),
            keep_cluster: false,
            config,
            node_image: std::env::var("KIND_NODE_IMAGE")
                .ok()
                .filter(|s| !s.is_empty()),
            kind: OsString::from("kind"),
            create_timeout: Duration::from_secs(600),
            delete_timeout: Duration::from_secs(180),
            settle_limit: settle::DEFAULT_LIMIT,
            preload: None,
            mirror: None,
            reuse: None,
            docker: OsString::from("docker"),
            image_timeout: Duration::from_secs(600),
        }
    }
}

/// A kube client for the cluster behind `context` in `kubeconfig`, reading that file only (never
/// `KUBECONFIG` or `~/.kube/config`).
pub async fn client(kubeconfig: &Path, context: &str) -> Result<Client, KindError> {
    let fail = |message: String| KindError::Client {
        name: context.trim_start_matches("kind-").to_string(),
        message,
    };
    let file = Kubeconfig::read_from(kubeconfig).map_err(|e| KindError::Kubeconfig {
        path: kubeconfig.to_path_buf(),
        message: e.to_string(),
    })?;
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        cluster: None,
        user: None,
    };
    let config = Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Client::try_from(config).map_err(|e| fail(e.to_string()))
}

/// The `kind` backend for one lab.
pub struct KindCluster {
    options: KindOptions,
    name: String,
    kubeconfig: PathBuf,
    teardown: Teardown,
    runtime: Option<tokio::runtime::Runtime>,
    /// Whether the preload and the mirror have been done on the cluster (they wait until it
    /// exists).
    prepared: bool,
    /// What the preload did, and then how many images the cluster pulled.
    images: Option<labbook::report::ImageCounts>,
}

impl KindCluster {
    /// Prepares the backend of one lab: names its cluster and creates the run directory. Nothing
    /// runs until `before_lab`.
    pub fn new(options: KindOptions) -> Result<Self, KindError> {
        std::fs::create_dir_all(&options.run_dir).map_err(|source| KindError::RunDir {
            path: options.run_dir.clone(),
            source,
        })?;
        let name = match &options.reuse {
            Some(reuse) => reuse.name.clone(),
            None => cluster_name(&options.run_id, &options.lab_slug),
        };
        // Absolute, because lab steps `cd` around and the file must stay the same one.
        let run_dir = std::path::absolute(&options.run_dir).unwrap_or(options.run_dir.clone());
        let kubeconfig = run_dir.join("kubeconfig");
        if let Some(reuse) = &options.reuse {
            std::fs::write(&kubeconfig, &reuse.kubeconfig).map_err(|source| KindError::RunDir {
                path: kubeconfig.clone(),
                source,
            })?;
        }
        // A reused cluster was kept by an earlier run: this one did not make it, so it leaves it.
        let teardown = Teardown::new(
            options.kind.clone(),
            name.clone(),
            kubeconfig.clone(),
            options.keep_cluster || options.reuse.is_some(),
            options.delete_timeout,
        );
        Ok(KindCluster {
            options,
            name,
            kubeconfig,
            teardown,
            runtime: None,
            prepared: false,
            images: None,
        })
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> &str {
        &self.name
    }

    /// The kube context of the cluster: `kind-<name>`.
    pub fn context(&self) -> String {
        format!("kind-{}", self.name)
    }

    /// The isolated kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A handle that tears the cluster down from another thread (an interrupt handler).
    pub fn teardown_handle(&self) -> Teardown {
        self.teardown.clone()
    }

    /// Creates the cluster with `kind create cluster`, the kind config and the pinned node image.
    pub fn create(&self) -> Result<(), KindError> {
        let mut args: Vec<OsString> = vec![
            "create".into(),
            "cluster".into(),
            "--name".into(),
            self.name.clone().into(),
            "--kubeconfig".into(),
            self.kubeconfig.clone().into_os_string(),
            "--wait".into(),
            "120s".into(),
        ];
        if let Some(config) = &self.options.config {
            args.push("--config".into());
            args.push(config.clone().into_os_string());
        }
        if let Some(image) = &self.options.node_image {
            args.push("--image".into());
            args.push(image.into());
        }
        // Same process group as labbook: Ctrl+C during a long create stops it, and the teardown
        // then removes whatever it left.
        run_kind(
            &self.options.kind,
            &args,
            &self.kubeconfig,
            &self.name,
            self.options.create_timeout,
            false,
        )
        .map_err(|e| match e {
            RunError::Spawn(source) => KindError::Spawn {
                program: self.options.kind.to_string_lossy().into_owned(),
                source,
            },
            RunError::Failed(detail) => KindError::Kind {
                action: "create",
                name: self.name.clone(),
                detail,
            },
        })?;
        match check_context(&self.kubeconfig, &self.context())? {
            ContextState::Owned => Ok(()),
            ContextState::NoCluster => Err(KindError::Kind {
                action: "create",
                name: self.name.clone(),
                detail: format!(
                    "kind succeeded but {} has no current context",
                    self.kubeconfig.display()
                ),
            }),
        }
    }

    /// Runs a future on the backend's own runtime, also when called from inside another one
    /// (then on a scoped thread, since a runtime cannot block inside a runtime).
    fn block_on<F>(&mut self, future: F) -> Result<F::Output, KindError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = match self.runtime.take() {
            Some(runtime) => runtime,
            None => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(KindError::Runtime)?,
        };
        let runtime = &*self.runtime.insert(runtime);
        if tokio::runtime::Handle::try_current().is_ok() {
            Ok(std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(future))
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }))
        } else {
            Ok(runtime.block_on(future))
        }
    }

    /// Once the cluster exists: configures the registry mirror and preloads the lab's images.
    /// A mirror that cannot be configured fails the lab (it was asked for); an image that cannot
    /// be preloaded is recorded, and the cluster pulls it itself.
    fn prepare(&mut self) -> Result<(), KindError> {
        if self.prepared || self.state()? != ContextState::Owned {
            return Ok(());
        }
        self.prepared = true;
        let tools = images::Tools {
            kind: &self.options.kind,
            docker: &self.options.docker,
            kubeconfig: &self.kubeconfig,
            cluster: &self.name,
            timeout: self.options.image_timeout,
        };
        if let Some(mirror) = &self.options.mirror {
            tools
                .configure_mirror(mirror)
                .map_err(|detail| KindError::Kind {
                    action: "configure the registry mirror of",
                    name: self.name.clone(),
                    detail,
                })?;
        }
        if let Some(preload) = &self.options.preload {
            self.images = Some(tools.preload(preload));
        }
        Ok(())
    }

    /// Whether the cluster is reachable through the isolated kubeconfig right now.
    fn state(&self) -> Result<ContextState, KindError> {
        check_context(&self.kubeconfig, &self.context())
    }
}

impl LabCluster for KindCluster {
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KIND_CLUSTER_NAME".into(), self.name.clone()),
            (
                "KUBECONFIG".into(),
                self.kubeconfig.to_string_lossy().into_owned(),
            ),
        ]
    }

    fn before_lab(&mut self, lab: &Lab) -> anyhow::Result<()> {
        // A stale file from an earlier attempt must not make a foreign context look current.
        let state = self.state()?;
        if let Some(reuse) = &self.options.reuse {
            if state != ContextState::Owned {
                return Err(KindError::Kubeconfig {
                    path: reuse.from.clone(),
                    message: format!("it has no current context for kind cluster {}", self.name),
                }
                .into());
            }
            eprintln!(
                "labbook: reusing kind cluster {name} (kept by an earlier run, from {from}): it is \
                 neither created nor deleted",
                name = self.name,
                from = reuse.from.display()
            );
        } else if !lab_creates_cluster(lab) {
            self.create()?;
        }
        self.prepare()?;
        Ok(())
    }

    fn before_step(&mut self, _lab: &Lab, step: &Step) -> anyhow::Result<()> {
        self.state()?;
        if let Some(reason) = foreign_target(step, &self.name, &self.kubeconfig) {
            return Err(KindError::ForeignTarget(reason).into());
        }
        // A lab that creates its own cluster (`make kind-up`) has one from the next step on.
        self.prepare()?;
        Ok(())
    }

    fn settle(&mut self, lab: &Lab, step: &Step) -> anyhow::Result<(u64, Option<String>)> {
        if self.state()? == ContextState::NoCluster {
            return Ok((
                0,
                Some(format!(
                    "nothing to settle before step {}: the lab's kubeconfig has no cluster",
                    step.id
                )),
            ));
        }
        let upto = lab.steps.iter().position(|s| s.id == step.id);
        let namespaces: Vec<String> = lab_scope(lab, upto).touched.into_iter().collect();
        let (kubeconfig, context, limit) = (
            self.kubeconfig.clone(),
            self.context(),
            self.options.settle_limit,
        );
        let started = Instant::now();
        let settled = self.block_on(async move {
            let client = client(&kubeconfig, &context).await?;
            Ok::<_, KindError>(settle::wait_quiet(&client, &namespaces, limit).await)
        })?;
        match settled {
            Ok(settled) => Ok((millis(settled.waited), settled.warning())),
            Err(e) => Ok((
                millis(started.elapsed()),
                Some(format!("could not settle: {e}")),
            )),
        }
    }

    fn diagnose(&mut self, lab: &Lab, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        if self.state()? == ContextState::NoCluster {
            std::fs::create_dir_all(dir)?;
            let path = dir.join("cluster.txt");
            std::fs::write(
                &path,
                format!(
                    "no cluster to diagnose: {} has no current context (kind cluster {} was \
                     not created, or was already deleted)\n",
                    self.kubeconfig.display(),
                    self.name
                ),
            )?;
            return Ok(vec![path]);
        }
        let namespaces: Vec<String> = lab_scope(lab, None).touched.into_iter().collect();
        let (kubeconfig, context, dir) =
            (self.kubeconfig.clone(), self.context(), dir.to_path_buf());
        let files = self.block_on(async move {
            let client = client(&kubeconfig, &context).await?;
            Ok::<_, KindError>(diagnostics::collect(&client, &namespaces, &dir).await?)
        })??;
        Ok(files)
    }

    fn leftovers(&mut self, lab: &Lab) -> anyhow::Result<Vec<String>> {
        // A lab whose cleanup deletes its cluster (`make kind-down`) leaves nothing behind.
        if self.state()? == ContextState::NoCluster {
            return Ok(Vec::new());
        }
        let scope = lab_scope(lab, None);
        let (kubeconfig, context) = (self.kubeconfig.clone(), self.context());
        let count_pulled = self.images.is_some();
        let (warnings, pulled) = self
            .block_on(async move {
                let client = client(&kubeconfig, &context).await?;
                let pulled = match count_pulled {
                    true => images::count_pulled(&client).await.ok(),
                    false => None,
                };
                let warnings = leftovers::find(&client, &scope.written, &scope.created).await;
                Ok::<_, KindError>((warnings, pulled))
            })?
            .map_or_else(|e| (Err(e), None), |(w, p)| (Ok(w), p));
        if let Some(images) = &mut self.images {
            images.pulled = pulled;
        }
        Ok(warnings.unwrap_or_else(|e| vec![format!("could not check for leftovers: {e}")]))
    }

    fn images(&mut self) -> Option<labbook::report::ImageCounts> {
        self.images.clone()
    }

    fn teardown(&mut self) -> anyhow::Result<()> {
        self.teardown.run()?;
        Ok(())
    }
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        // The engine tears down explicitly; this is the net for a panic on the way.
        if !self.teardown.is_done() {
            let _ = self.teardown.run();
        }
        if let Some(runtime) = self.runtime.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            // Dropping a runtime inside another one would panic.
            runtime.shutdown_background();
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_like_kubeconfig_gives_a_tls_client() {
        // kind writes client certificates; building the client must find a TLS crypto provider
        // (it panicked before kube's `ring` feature was enabled).
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kubeconfig/kind-like.yaml");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let made = runtime.block_on(client(&fixture, "kind-labbook-fixture"));
        assert!(made.is_ok(), "{:?}", made.err());
        assert_eq!(
            check_context(&fixture, "kind-labbook-fixture").expect("readable"),
            ContextState::Owned
        );
    }
}
