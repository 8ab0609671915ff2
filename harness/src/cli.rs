//! The command line: clap definitions (doc comments are the help text) and exit codes.
//!
//! Exit codes follow the contract: 0 success, 1 a lab failed or lint found an error, 2 bad usage
//! or unreadable input (with a message naming the file and line), a path with no labs included,
//! 3 this machine cannot run labs (no bash, no writable temporary folder).
//!
//! `labbook run`'s arguments become [`engine::Settings`] and a [`Backend`] here
//! ([`RunArgs::to_settings`]); the engine never sees a clap type.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use crate::engine::confine::Confine;
use clap::{Parser, Subcommand, ValueEnum};

use crate::cluster::Backend;
pub use crate::color::ColorChoice;
use crate::color::Stream;
use crate::engine;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code when a lab failed or the lint found an error.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage or unreadable input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when this machine cannot run labs (bash missing, no writable temporary folder).
pub const EXIT_ENVIRONMENT: u8 = 3;

/// labbook keeps hands-on course Markdown honest: it plans, lints, runs and publishes the labs in it.
///
/// A PATH is a chapter file, a folder of chapters, or an mdBook folder (holding book.toml), whose
/// chapters are taken in SUMMARY.md order.
///
/// Exit codes: 0 success, 1 a lab failed or the lint found an error, 2 bad usage or unreadable
/// input, 3 this machine cannot run labs (bash missing, no writable temporary folder).
#[derive(Debug, Parser)]
#[command(name = "labbook", version, propagate_version = true)]
pub struct Cli {
    /// When to colour statuses and diffs: `auto` on a terminal, `always`, or `never`.
    ///
    /// With `auto`, a non-empty `NO_COLOR` turns colour off, and `CLICOLOR_FORCE` (non-empty,
    /// not `0`) turns it on even into a pipe; an explicit `always` or `never` wins over both.
    #[arg(long, value_enum, global = true, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats of `plan`, `lint` and `images`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For a person.
    Text,
    /// For tools; the shape is a stable contract.
    Json,
}

/// The values of `run --cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterChoice {
    /// No cluster: KUBECONFIG points to an empty file, so no real cluster can be reached.
    None,
    /// A throw-away kind cluster per lab, deleted at the end.
    Kind,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what will run: every step, its kind, and why it was given that kind.
    ///
    /// Nothing is executed. Use it after editing a chapter to check that each block was
    /// understood as you meant: a watch, a shell typed inside a pod, a cleanup, and so on.
    Plan {
        /// Chapter files, folders or book folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// List only one shard's labs: `slice:K/N` or `hash:K/N` (as `run --partition`).
        #[arg(long, value_name = "SPEC")]
        partition: Option<crate::partition::Partition>,
    },
    /// Execute the labs like a careful reader, and assert every Verify section.
    ///
    /// Each lab runs in a fresh copy of its course (a sandbox), in one bash whose working
    /// directory, variables, functions, aliases and options carry from block to block. Verify
    /// and write-file outputs are compared with the accepted snapshots in `snapshots/`; a
    /// difference writes a pending `.snap.new` and never touches the accepted file. Exit codes:
    /// 0 every lab passed, 1 a lab failed or the run was interrupted (Ctrl+C stops the running
    /// step, runs cleanup and tears down; a second Ctrl+C skips cleanup), 2 bad usage or
    /// unreadable input, 3 this machine cannot run labs (bash missing, no writable temporary
    /// folder).
    Run(Box<RunArgs>),
    /// Find broken labs without a cluster: shell, heredocs, manifests, and a model of the cluster.
    Lint {
        /// Chapter files, folders or book folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List every container image the course uses, with the file and line of each reference.
    ///
    /// Sources: `--image` of kubectl and kind, `kubectl set image`, the containers of manifests
    /// in heredocs and of manifest files the labs apply, and the course's pins (`*_IMAGE=` and
    /// `ISTIO_VERSION=` in versions.env, kind/cluster.yaml, `[preprocessor.labbook.versions]`
    /// in book.toml). Floating tags (`:latest`, or no tag) are flagged.
    Images {
        /// Chapter files, folders or book folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Build the book with the labbook preprocessor, in process (nothing else to install).
    Build {
        /// The book folder (holding book.toml).
        #[arg(default_value = ".")]
        book: PathBuf,
    },
    /// Scaffold a course, like `mdbook init`: book.toml with the preprocessor, the stylesheet,
    /// SUMMARY.md, a first lab and a GitHub workflow. Only adds missing files.
    Init {
        /// The course folder (created if needed).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Work with run reports (`--report DIR` folders): `summary` prints a Markdown table with one
    /// row per lab (for `$GITHUB_STEP_SUMMARY`), `merge` joins the reports of a run's shards.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Review pending snapshots (`.snap.new`) one by one: a diff against the accepted one, the
    /// chapter and line of the block, then accept, reject or skip.
    ///
    /// Works in any course repository; inside a Cargo workspace `cargo insta review` reads the
    /// same files. Answers come one per line on stdin: a(ccept), r(eject), s(kip), q(uit).
    Review {
        /// Where to look for pending snapshots (searched recursively).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Accept every pending snapshot without asking.
        #[arg(long, conflicts_with_all = ["reject_all", "list"])]
        accept_all: bool,
        /// Reject (delete) every pending snapshot without asking.
        #[arg(long, conflicts_with = "list")]
        reject_all: bool,
        /// Only list the pending snapshots (`chapter.md:LINE<TAB>file`).
        #[arg(long)]
        list: bool,
    },
    /// Find accepted snapshots that no step refers to any more (a heading was renamed, a block
    /// removed), and list or delete them.
    ///
    /// `list` prints them and exits 1 when there are any; `delete` removes them and their
    /// pending `.snap.new`. A chapter inside a book is checked against the whole book.
    Snapshots {
        /// Chapter files, folders or book folders.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// What to do with unreferenced snapshots.
        #[arg(long, value_enum, value_name = "ACTION", required = true)]
        unreferenced: crate::snapshots::Unreferenced,
    },
    /// List or delete the kind clusters labbook made and kept (`run --keep-cluster`, or left
    /// by a run that was killed). Clusters labbook did not make are never listed or deleted.
    #[command(subcommand)]
    Clusters(ClustersCommand),
    /// List the tools a course needs (docker, kind, kubectl, istioctl, helm, shellcheck) and
    /// which cluster backend can be used here.
    Doctor,
    /// Internal: confine this process with Landlock, then exec COMMAND (how `run` starts a
    /// lab's shell).
    #[command(name = "__confine", hide = true)]
    Confine {
        /// A path (and everything below it) the command may write.
        #[arg(long = "write", value_name = "PATH")]
        write: Vec<PathBuf>,
        /// Fail when the kernel enforces nothing.
        #[arg(long)]
        require: bool,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
}

/// The subcommands of `labbook clusters`.
#[derive(Debug, Subcommand)]
pub enum ClustersCommand {
    /// Print the kind clusters labbook made (named `labbook-<run>-<lab>`), one a line.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Delete kind clusters labbook made: the ones named, or all of them with --all. A name
    /// labbook did not make, or no such cluster, is refused (exit code 2) before anything is
    /// deleted.
    Delete {
        /// The clusters to delete (as `labbook clusters list` prints them).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Delete every cluster labbook made.
        #[arg(long)]
        all: bool,
    },
}

/// The subcommands of `labbook report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of a partitioned run's shards into one.
    ///
    /// Every lab of every DIR/report.json is kept, diagnostics are copied, and junit.xml is
    /// written from the merged report. Runs of a version matrix (`run --versions`) are kept
    /// apart: a lab is in the merged report once per combination. Refused (exit code 2) when a
    /// lab is in two reports with the same versions, or the reports have different contract
    /// versions (`version`), come from labbook versions with different report contracts, or
    /// from different cluster backends.
    Merge {
        /// The shards' report folders (each holding report.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged report.json and junit.xml (must not hold a report yet).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A Markdown summary, one row per lab: result, steps passed, time and first failure.
    Summary {
        /// The `--report` folder of a run, or its `report.json`.
        #[arg(default_value = "report")]
        report: PathBuf,
    },
}

/// Options of `labbook run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Chapter files, folders or book folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where the labs run.
    #[arg(long, value_enum, default_value_t = ClusterChoice::None)]
    pub cluster: ClusterChoice,
    /// Write the outputs as the accepted snapshots instead of comparing.
    #[arg(long)]
    pub accept: bool,
    /// Continue past failed verify steps to see the fuller picture.
    #[arg(long)]
    pub keep_going: bool,
    /// Time limit of one step, in seconds (a step's `timeout=` overrides it).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub step_timeout: u64,
    /// How long a watch runs before it is stopped, when no `until=` matched first.
    ///
    /// A watch without `until=` is then stopped (a success); one whose `until=` never matched
    /// times out. A watch's `timeout=` overrides this.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub watch_limit: u64,
    /// How many labs run at once (each on its own cluster).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Keep the kind clusters after the run, for debugging.
    #[arg(long)]
    pub keep_cluster: bool,
    /// With `--cluster kind` and one lab: run on the cluster NAME that an earlier
    /// `--keep-cluster` run with the same `--report DIR` left, instead of a new one. It must be
    /// labbook's (`labbook-…`), still exist, and have its kubeconfig in that run's folder; it is
    /// neither created nor deleted.
    #[arg(long, value_name = "NAME")]
    pub reuse: Option<String>,
    /// Write report.json and junit.xml into this folder.
    ///
    /// The sandboxes are then kept in DIR/run/ for debugging; without --report they live in a
    /// temporary folder that is removed at the end.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Confine lab commands with Landlock: they may write only to their sandbox, run folder,
    /// private HOME and TMPDIR, /dev/null and the terminal.
    #[arg(long, value_enum, default_value_t = Confine::Auto)]
    pub confine: Confine,
    /// Run only one shard of the labs: `slice:K/N` (every N-th lab in reading order) or
    /// `hash:K/N` (by a stable hash of the chapter's path in the book). Shards count from 1.
    #[arg(long, value_name = "SPEC")]
    pub partition: Option<crate::partition::Partition>,
    /// Run only this step (a step id, or a Markdown line in its block), after the setup steps.
    #[arg(long, value_name = "STEP", conflicts_with_all = ["from", "until"])]
    pub only: Option<String>,
    /// Run from this step (id or Markdown line) to the end, after the setup steps.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// Run up to and including this step (id or Markdown line).
    #[arg(long, value_name = "STEP")]
    pub until: Option<String>,
    /// Leave the setup steps out as well (they run by default with --only, --from, --until).
    #[arg(long)]
    pub no_setup: bool,
    /// With `--cluster kind`: load each image the lab uses (as `labbook images` lists them) into
    /// the lab's cluster before its first step (`kind load docker-image`), pulling it into the
    /// local Docker first when it is not there. The report counts, per lab, the images preloaded
    /// and those its cluster still pulled from the network.
    #[arg(long)]
    pub preload: bool,
    /// With `--cluster kind`: point every node's containerd at this registry mirror for
    /// docker.io images (kind's local-registry pattern; the kind config must set containerd's
    /// `config_path`, as book/kind/cluster.yaml does), e.g. `http://kind-registry:5000`.
    #[arg(long, value_name = "URL")]
    pub registry_mirror: Option<String>,
    /// The versions this run stands for, recorded in report.json and shown by the book per lab:
    /// `kubernetes=v1.33.1,istio=1.27.0` (one combination of `[preprocessor.labbook.versions]`).
    #[arg(long, value_name = "KEY=VALUE,...", value_parser = parse_versions)]
    pub versions: Option<Versions>,
}

/// The value of `run --versions`: `key=value` pairs.
pub type Versions = std::collections::BTreeMap<String, String>;

/// Reads `kubernetes=v1.33.1,istio=1.27.0`; keys are lowercase words, values non-empty.
pub fn parse_versions(text: &str) -> Result<Versions, String> {
    let mut versions = Versions::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!(
                "`{pair}` is not KEY=VALUE (e.g. kubernetes=v1.33.1)"
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if key.is_empty() || !key.chars().all(word) {
            return Err(format!(
                "`{key}` is not a lowercase name (e.g. kubernetes, istio)"
            ));
        }
        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(format!("`{value}` is not a version for {key}"));
        }
        if versions
            .insert(key.to_string(), value.to_string())
            .is_some()
        {
            return Err(format!("{key} is given twice"));
        }
    }
    if versions.is_empty() {
        return Err("no KEY=VALUE given".into());
    }
    Ok(versions)
}

impl RunArgs {
    /// The engine's settings and the cluster backend these arguments ask for; `Err` for kind
    /// options given without `--cluster kind`.
    /// `color`: whether the run's console (on stderr) is coloured, as [`crate::color::enabled`]
    /// decided.
    pub fn to_settings(&self, color: bool) -> anyhow::Result<(engine::Settings, Backend)> {
        if self.cluster != ClusterChoice::Kind {
            for (given, flag) in [
                (self.preload, "--preload"),
                (self.registry_mirror.is_some(), "--registry-mirror"),
            ] {
                anyhow::ensure!(
                    !given,
                    "{flag} needs --cluster kind: there is no cluster to load images into"
                );
            }
            anyhow::ensure!(
                self.reuse.is_none(),
                "--reuse needs --cluster kind: it names a kept kind cluster"
            );
        }
        let reuse = match (&self.reuse, &self.report) {
            (None, _) => None,
            (Some(_), None) => anyhow::bail!(
                "--reuse needs --report DIR, the one of the `--keep-cluster` run: the kept \
                 cluster's kubeconfig is in that run's folder"
            ),
            (Some(name), Some(report)) => Some(crate::clusters::reusable(name, report)?),
        };
        let settings = engine::Settings {
            paths: self.paths.clone(),
            accept: self.accept,
            keep_going: self.keep_going,
            step_timeout: Duration::from_secs(self.step_timeout),
            watch_limit: Duration::from_secs(self.watch_limit),
            jobs: self.jobs,
            report: self.report.clone(),
            confine: self.confine,
            partition: self.partition,
            steps: crate::step_filter::StepFilter {
                only: self.only.clone(),
                from: self.from.clone(),
                until: self.until.clone(),
                no_setup: self.no_setup,
            },
            versions: self.versions.clone().unwrap_or_default(),
            color,
        };
        let backend = match self.cluster {
            ClusterChoice::None => Backend::None,
            ClusterChoice::Kind => Backend::Kind {
                keep_cluster: self.keep_cluster,
                preload: self.preload,
                mirror: self.registry_mirror.clone(),
                reuse,
            },
        };
        Ok((settings, backend))
    }
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = crate::color::for_clap(crate::color::choice_in_args(&args));
    let parsed = Cli::command()
        .color(color)
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<engine::EnvironmentError>().is_some() {
                ExitCode::from(EXIT_ENVIRONMENT)
            } else {
                ExitCode::from(EXIT_USAGE)
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`labbook plan … | head`) is not an error, the reader just left.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Runs a parsed command line; `Err` means bad usage or unreadable input (exit code 2), or an
/// [`engine::EnvironmentError`] (exit code 3).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Plan {
            paths,
            format,
            partition,
        } => crate::plan::run(&paths, format, partition),
        Command::Doctor => crate::doctor::run(),
        Command::Clusters(ClustersCommand::List { format }) => crate::clusters::list(format),
        Command::Clusters(ClustersCommand::Delete { names, all }) => {
            crate::clusters::delete(&names, all)
        }
        Command::Run(args) => {
            let (settings, backend) =
                args.to_settings(crate::color::enabled(cli.color, Stream::Stderr))?;
            let passed = engine::run(&settings, backend)?;
            Ok(if passed { EXIT_OK } else { EXIT_FAILED })
        }
        Command::Lint { paths, format } => crate::lint::run(&paths, format),
        Command::Images { paths, format } => crate::images::run(&paths, format),
        Command::Build { book } => crate::build::run(&book),
        Command::Init { dir } => crate::init::run(&dir),
        Command::Report(ReportCommand::Summary { report }) => crate::summary::run(&report),
        Command::Review {
            path,
            accept_all,
            reject_all,
            list,
        } => {
            let mode = match (accept_all, reject_all, list) {
                (true, _, _) => crate::review::Mode::AcceptAll,
                (_, true, _) => crate::review::Mode::RejectAll,
                (_, _, true) => crate::review::Mode::List,
                _ => crate::review::Mode::Ask,
            };
            crate::review::run(
                &path,
                mode,
                crate::color::enabled(cli.color, Stream::Stdout),
            )
        }
        Command::Snapshots {
            paths,
            unreferenced,
        } => crate::snapshots::run(&paths, unreferenced),
        Command::Confine {
            write,
            require,
            command,
        } => Err(crate::engine::confine::exec(&write, require, &command).into()),
        Command::Report(ReportCommand::Merge { dirs, out }) => {
            crate::report_merge::run(&dirs, &out)
        }
    }
}
