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
//! - `teardown` deletes the cluster unless `--keep-cluster`; it is idempotent, and a
//!   [`Teardown`] handle can run it from an interrupt path on another thread. Dropping the
//!   backend without a teardown (a panic) deletes the cluster too.
//!
//! The engine makes one backend per lab; `run_id` is the same for every lab of a run and
//! `lab_slug` differs between labs (for example the chapter's path, slugged):
//!
//! ```text
//! Box::new(KindCluster::new(KindOptions { keep_cluster: args.keep_cluster, ..KindOptions::new(&run_id, &lab_slug, &run_dir) })?)
//! ```
//!
//! and calls `teardown` whatever happens (its [`Teardown`] handle, from
//! [`KindCluster::teardown_handle`], is for an interrupt handler on another thread).
//!
//! Settling, diagnostics and the leftover check are async functions over a [`kube::Client`]
//! ([`super::settle`], [`super::diagnostics`], [`super::leftovers`]); this module only builds the
//! client from the isolated kubeconfig and blocks on them, because the engine's hooks are
//! synchronous.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use labbook::kubectl::{Grammar, Invocation};
use labbook::text::Style;
use labbook::tools;
use labbook::{Lab, Step, StepKind};

use super::scope::lab_scope;
use super::{ClusterBackend, diagnostics, leftovers, settle};

/// The longest cluster name labbook makes. kind names its node container `<name>-control-plane`
/// and its context `kind-<name>`; both must stay valid host and DNS names.
pub const MAX_NAME_LEN: usize = 40;

/// Where the kind config lives, relative to the repository root.
pub const CONFIG_PATH: &str = "ci/kind/cluster.yaml";

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
    /// The kind config (`ci/kind/cluster.yaml`), passed as `--config` when the harness creates
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
}

impl KindOptions {
    /// Options with the defaults: `kind` from `PATH`, the kind config found by walking up from
    /// the current directory to `ci/kind/cluster.yaml`, the node image from `KIND_NODE_IMAGE`,
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
        }
    }
}

/// `rel` in `start` or its nearest ancestor that has it.
pub fn find_upwards(start: &Path, rel: &str) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(rel))
        .find(|path| path.is_file())
}

/// The cluster name of a lab in a run: `labbook-<run>-<lab>`, lowercase letters, digits and
/// dashes, at most [`MAX_NAME_LEN`] characters.
///
/// A run id longer than 8 characters is replaced by its hash (a prefix of a timestamp would
/// collide between runs on the same day), and a lab slug too long for the rest is cut and given
/// a hash of the whole slug, so that two labs sharing a long prefix still get different
/// clusters. The same inputs always give the same name.
pub fn cluster_name(run_id: &str, lab_slug: &str) -> String {
    let run = sanitize(run_id);
    let run = if run.is_empty() {
        "run".to_string()
    } else if run.len() > 8 {
        format!("{:08x}", fnv1a(run_id.as_bytes()) as u32)
    } else {
        run
    };
    let lab = match sanitize(lab_slug) {
        s if s.is_empty() => "lab".to_string(),
        s => s,
    };
    let name = format!("labbook-{run}-{lab}");
    if name.len() <= MAX_NAME_LEN {
        return name;
    }
    let hash = format!("{:06x}", fnv1a(lab_slug.as_bytes()) & 0xff_ffff);
    let room = MAX_NAME_LEN - "labbook-".len() - run.len() - 1 - hash.len() - 1;
    let cut = lab[..room].trim_end_matches('-');
    format!("labbook-{run}-{cut}-{hash}")
}

/// Lowercase ASCII letters and digits, other runs of characters as one dash, no dash at the ends.
fn sanitize(text: &str) -> String {
    labbook::text::sanitize(text, Style::AsciiSlug)
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions and platforms, unlike
/// `DefaultHasher`, so cluster names are reproducible.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

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

enum RunError {
    Spawn(io::Error),
    Failed(String),
}

/// Runs kind with the isolated kubeconfig in its environment too (so nothing falls back to
/// `~/.kube/config`), within `timeout`.
fn run_kind(
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

/// The `kind` backend for one lab.
pub struct KindCluster {
    options: KindOptions,
    name: String,
    kubeconfig: PathBuf,
    teardown: Teardown,
    runtime: Option<tokio::runtime::Runtime>,
}

impl KindCluster {
    /// Prepares the backend of one lab: names its cluster and creates the run directory. Nothing
    /// runs until `before_lab`.
    pub fn new(options: KindOptions) -> Result<Self, KindError> {
        std::fs::create_dir_all(&options.run_dir).map_err(|source| KindError::RunDir {
            path: options.run_dir.clone(),
            source,
        })?;
        let name = cluster_name(&options.run_id, &options.lab_slug);
        // Absolute, because lab steps `cd` around and the file must stay the same one.
        let run_dir = std::path::absolute(&options.run_dir).unwrap_or(options.run_dir.clone());
        let kubeconfig = run_dir.join("kubeconfig");
        let teardown = Teardown {
            inner: Arc::new(TeardownInner {
                kind: options.kind.clone(),
                name: name.clone(),
                kubeconfig: kubeconfig.clone(),
                keep: options.keep_cluster,
                timeout: options.delete_timeout,
                done: Mutex::new(false),
            }),
        };
        Ok(KindCluster {
            options,
            name,
            kubeconfig,
            teardown,
            runtime: None,
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

    /// Whether the cluster is reachable through the isolated kubeconfig right now.
    fn state(&self) -> Result<ContextState, KindError> {
        check_context(&self.kubeconfig, &self.context())
    }
}

impl ClusterBackend for KindCluster {
    fn name(&self) -> &'static str {
        "kind"
    }

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
        self.state()?;
        if !lab_creates_cluster(lab) {
            self.create()?;
        }
        Ok(())
    }

    fn before_step(&mut self, _lab: &Lab, step: &Step) -> anyhow::Result<()> {
        self.state()?;
        if let Some(reason) = foreign_target(step, &self.name, &self.kubeconfig) {
            return Err(KindError::ForeignTarget(reason).into());
        }
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
        let warnings = self.block_on(async move {
            let client = client(&kubeconfig, &context).await?;
            Ok::<_, KindError>(leftovers::find(&client, &scope.written, &scope.created).await)
        })?;
        Ok(warnings.unwrap_or_else(|e| vec![format!("could not check for leftovers: {e}")]))
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
    fn cluster_names() {
        let long_lab = "module-05-traffic-management-and-deployment-safety";
        let cases = [
            ("run1", "intro", "labbook-run1-intro"),
            (
                "RUN_1",
                "Module 02/Service Mesh.md",
                "labbook-run-1-module-02-service-mesh-md",
            ),
            ("", "", "labbook-run-lab"),
            ("r", "--é--", "labbook-r-lab"),
            ("20250101-120000", "intro", "labbook-ac8a352e-intro"),
            ("r1", long_lab, "labbook-r1-module-05-traffic-mana-b389a4"),
        ];
        for (run, lab, want) in cases {
            let name = cluster_name(run, lab);
            assert_eq!(name, want, "{run} {lab}");
            assert!(name.len() <= MAX_NAME_LEN, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-'), "{name}");
        }
        // Labs that share a long prefix still get their own cluster.
        let a = cluster_name("r1", &format!("{long_lab}-part-one"));
        let b = cluster_name("r1", &format!("{long_lab}-part-two"));
        assert_ne!(a, b);
        assert_eq!(a.len(), MAX_NAME_LEN);
    }

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
