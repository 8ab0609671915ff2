//! Confinement: lab commands may write only inside their own world (the lab's run folder, which
//! holds the sandbox copy, the control files, a private `HOME` and `TMPDIR` and the kubeconfig),
//! `/dev/null` and the terminal. Everything else, the author's checkout and its `snapshots/`
//! included, stays readable but not writable.
//!
//! The kernel's Landlock LSM does the work. A Landlock domain is inherited across `fork` and
//! `exec` and can only be entered by the process itself. labbook builds the ruleset and the lab's
//! shell enters it between its clone and its `execve` (see `cgroup_spawn`, which starts it).
//! Where that way of starting is refused (no cgroup), bash is started through a hidden mode of
//! the `labbook` binary (`labbook __confine --write PATH… -- bash …`) that restricts itself with
//! the `landlock` API and then execs bash: one more program start per lab.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use landlock::{
    ABI, Access, AccessFs, LandlockStatus, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
};

/// Confinement of lab commands (`run --confine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Confine {
    /// Confine with Landlock where the kernel has it; otherwise say so once and carry on.
    Auto,
    /// Refuse to run (exit 2) where Landlock is missing.
    Require,
    /// Do not confine.
    Off,
}

/// The name of the hidden subcommand that confines itself and execs the lab's shell.
pub const SUBCOMMAND: &str = "__confine";

/// Set (to anything) to make [`probe`] report Landlock as missing: how the tests check the
/// fallback on a kernel that has it.
pub const PRETEND_MISSING: &str = "LABBOOK_PRETEND_NO_LANDLOCK";

/// The newest Landlock ABI whose file-system rights labbook asks for. Older kernels enforce
/// what they know (the crate's best-effort mode); the probe reports what was available.
const ABI_WANTED: ABI = ABI::V7;

/// Whether the running kernel can confine lab commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Landlock works; the kernel's ABI version.
    Available(i32),
    /// It does not, and why.
    Missing(String),
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Support::Available(abi) => write!(f, "Landlock ABI {abi}"),
            Support::Missing(why) => write!(f, "no Landlock: {why}"),
        }
    }
}

/// Errors of the confinement helper.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The ruleset could not be built or applied.
    #[error("failed to confine the lab's shell with Landlock")]
    Landlock(#[source] landlock::RulesetError),
    /// The kernel accepted the ruleset but enforces none of it.
    #[error("failed to confine the lab's shell: the kernel enforces no Landlock rules")]
    NotEnforced,
    /// No command was given after `--`.
    #[error("failed to confine: no command to run")]
    NoCommand,
    /// The command could not be executed.
    #[error("failed to start {} in the confined shell", program.display())]
    Exec {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Asks the kernel whether Landlock works, by confining a short-lived thread of this process
/// (a domain belongs to the thread that entered it, so the rest of labbook is unaffected).
pub fn probe() -> Support {
    if std::env::var_os(PRETEND_MISSING).is_some() {
        return Support::Missing(format!("{PRETEND_MISSING} is set"));
    }
    let status = std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI_WANTED))
            .and_then(|r| r.create())
            .and_then(|r| r.restrict_self())
            .map(|status| status.landlock)
    })
    .join();
    match status {
        Ok(Ok(LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        })) => Support::Available(kernel_abi.unwrap_or(effective_abi as i32)),
        Ok(Ok(LandlockStatus::NotEnabled)) => Support::Missing(
            "the kernel has Landlock but it is not enabled (add `landlock` to the `lsm=` boot \
             parameter)"
                .into(),
        ),
        Ok(Ok(LandlockStatus::NotImplemented)) => Support::Missing(
            "the kernel was built without Landlock (Linux 5.13 or later with \
             CONFIG_SECURITY_LANDLOCK)"
                .into(),
        ),
        Ok(Err(e)) => Support::Missing(format!("failed to create a Landlock ruleset: {e}")),
        Err(_) => Support::Missing("the Landlock probe failed".into()),
    }
}

/// Paths outside the run folder that every lab may write: the null device and the terminal.
const DEVICES: &[&str] = &["/dev/null", "/dev/tty", "/dev/pts"];

/// The Docker sockets the kind backend's commands talk to.
pub fn docker_sockets(env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    let mut sockets = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/docker.sock"),
    ];
    let host = env
        .iter()
        .find(|(k, _)| k == "DOCKER_HOST")
        .and_then(|(_, v)| v.to_str())
        .and_then(|v| v.strip_prefix("unix://"));
    if let Some(path) = host {
        sockets.push(PathBuf::from(path));
    }
    sockets
}

/// The command line that starts `program` confined to `writable` (plus [`DEVICES`]): the
/// `labbook` binary's helper mode, then the program.
pub fn launcher(labbook: &Path, writable: &[PathBuf], require: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![labbook.into(), SUBCOMMAND.into()];
    if require {
        args.push("--require".into());
    }
    for path in writable {
        args.push("--write".into());
        args.push(path.into());
    }
    args.push("--".into());
    args
}

/// The helper mode: confines this process (and so everything it will start) to writing only
/// `writable` and [`DEVICES`], then replaces itself with `command`. Returns only on failure.
pub fn exec(writable: &[PathBuf], require: bool, command: &[OsString]) -> ConfineError {
    let Some((program, args)) = command.split_first() else {
        return ConfineError::NoCommand;
    };
    match restrict(writable) {
        Ok(RulesetStatus::NotEnforced) if require => return ConfineError::NotEnforced,
        Ok(_) => {}
        Err(e) => return ConfineError::Landlock(e),
    }
    let source = Command::new(program).args(args).exec();
    ConfineError::Exec {
        program: program.into(),
        source,
    }
}

/// Confines this thread (and what it will start) with [`ruleset`].
fn restrict(writable: &[PathBuf]) -> Result<RulesetStatus, landlock::RulesetError> {
    Ok(ruleset(writable)?.restrict_self()?.ruleset)
}

/// Read and execute everywhere, every right below `writable` and the devices.
fn ruleset(writable: &[PathBuf]) -> Result<RulesetCreated, landlock::RulesetError> {
    let abi = ABI_WANTED;
    let writable = writable
        .iter()
        .map(PathBuf::as_path)
        .chain(DEVICES.iter().map(Path::new));
    Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))
}

/// What a lab's shell is confined to: writing below `writable` only.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The `labbook` binary, whose helper mode confines a shell it starts.
    pub labbook: PathBuf,
    /// Where the lab may write, besides [`DEVICES`].
    pub writable: Vec<PathBuf>,
}

impl Confinement {
    /// The Landlock ruleset, for the shell to enter itself between its clone and its `execve`
    /// (see `cgroup_spawn`): one program start less per lab than the helper mode. Fails where
    /// the kernel would enforce nothing.
    pub fn ruleset(&self) -> Result<std::os::fd::OwnedFd, ConfineError> {
        let created = ruleset(&self.writable).map_err(ConfineError::Landlock)?;
        Option::<std::os::fd::OwnedFd>::from(created).ok_or(ConfineError::NotEnforced)
    }

    /// The command line that starts a program confined, through the helper mode.
    pub fn launcher(&self) -> Vec<OsString> {
        launcher(&self.labbook, &self.writable, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_name_every_writable_path_before_the_command() {
        let line = launcher(
            Path::new("/bin/labbook"),
            &[PathBuf::from("/run/lab"), PathBuf::from("/k")],
            true,
        );
        let expected = [
            "/bin/labbook",
            SUBCOMMAND,
            "--require",
            "--write",
            "/run/lab",
            "--write",
            "/k",
            "--",
        ];
        assert_eq!(line, expected.map(OsString::from));
    }

    #[test]
    fn docker_sockets_follow_docker_host() {
        let cases = [
            (None, 2),
            (Some("unix:///home/me/.docker/run/docker.sock"), 3),
            (Some("tcp://127.0.0.1:2375"), 2),
        ];
        for (host, count) in cases {
            let env: Vec<(OsString, OsString)> = host
                .map(|h| vec![("DOCKER_HOST".into(), h.into())])
                .unwrap_or_default();
            assert_eq!(docker_sockets(&env).len(), count, "{host:?}");
        }
    }
}
