//! Starting the lab's shell directly inside its cgroup, with `clone3(CLONE_INTO_CGROUP)`.
//!
//! Moving a running process into a cgroup (writing its pid to `cgroup.procs`) takes the kernel's
//! cgroup write lock, and the first move after a quiet moment waits for an RCU grace period:
//! 5–15 ms on the machines we measured, once per lab, which is more than the rest of starting a
//! lab. A process created inside the cgroup takes only the read side of that lock (0.1 ms). The
//! standard library cannot create a process that way, so this module does, for the one process
//! that needs it; [`super::terminal`] falls back to `Command` and a move where the kernel (older
//! than 5.7) or the cgroup refuses.
//!
//! One of the workspace's two places with `unsafe` (the other sets an allocator option in
//! `main.rs`). Everything the child needs (paths, arguments, environment, descriptors) is
//! prepared before the clone, so that the child, a copy of a multi-threaded process, only makes
//! system calls that are safe there (`sigprocmask`, `sigaction`, `setpgid`, `dup2`, `chdir`,
//! `execve`, `write`, `_exit`), as `fork` requires.
#![allow(unsafe_code)]

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

/// `CLONE_INTO_CGROUP` (Linux 5.7), not in every libc crate release.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What to start: an absolute program, its arguments (without the program), its whole
/// environment, its working folder, and where its stdout and stderr go. Its stdin is a new
/// pipe, whose writing end is returned; it gets a process group of its own.
pub struct ShellCommand<'a> {
    /// The program, an absolute path (no `PATH` search in the child).
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [OsString],
    /// Its whole environment.
    pub env: &'a [(OsString, OsString)],
    /// Its working folder.
    pub cwd: &'a Path,
    /// Its stdout.
    pub stdout: &'a OwnedFd,
    /// Its stderr.
    pub stderr: &'a OwnedFd,
}

/// A process started by [`spawn`].
pub struct Spawned {
    /// Its pid.
    pub pid: i32,
    /// The writing end of its stdin.
    pub stdin: File,
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// A descriptor at 3 or above, so that the child's `dup2` onto 0–2 never overwrites one it has
/// yet to use (labbook may have been started with a standard descriptor closed).
fn above_standard(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: `fcntl` just returned this new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Starts `command` inside the cgroup folder `cgroup`. Returns once the program runs (or failed
/// to start, with the reason).
pub fn spawn(cgroup: &Path, command: &ShellCommand) -> io::Result<Spawned> {
    let program = c_string(command.program.as_os_str().as_bytes())?;
    let mut argv_owned = vec![program.clone()];
    for arg in command.args {
        argv_owned.push(c_string(arg.as_bytes())?);
    }
    let envp_owned = command
        .env
        .iter()
        .map(|(k, v)| {
            let mut pair = k.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_bytes());
            c_string(&pair)
        })
        .collect::<io::Result<Vec<CString>>>()?;
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = envp_owned
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let cwd = c_string(command.cwd.as_os_str().as_bytes())?;

    let folder = File::open(cgroup)?;
    let (stdin_read, stdin_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The child reports a failed exec here; a successful exec closes it (close-on-exec).
    let (error_read, error_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let child_fds = [
        above_standard(&stdin_read)?,
        above_standard(command.stdout)?,
        above_standard(command.stderr)?,
    ];
    let [stdin_fd, stdout_fd, stderr_fd]: [RawFd; 3] = [
        child_fds[0].as_raw_fd(),
        child_fds[1].as_raw_fd(),
        child_fds[2].as_raw_fd(),
    ];
    let error_fd = error_write.as_raw_fd();

    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: folder.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: an empty signal set, filled in by the C library before use.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut empty) };
    // SAFETY: clone3 without CLONE_VM copies the process like fork. The child branch below only
    // calls async-signal-safe functions on memory prepared above, and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: the child of the clone; see above.
        unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // Rust ignores SIGPIPE; a shell and its commands expect the default.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let ok = libc::setpgid(0, 0) == 0
                && libc::dup2(stdin_fd, 0) == 0
                && libc::dup2(stdout_fd, 1) == 1
                && libc::dup2(stderr_fd, 2) == 2
                && libc::chdir(cwd.as_ptr()) == 0;
            if ok {
                libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(error_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = pid as i32;
    drop(child_fds);
    drop(stdin_read);
    drop(error_write);
    let mut reported = Vec::new();
    let _ = File::from(error_read).read_to_end(&mut reported);
    if let Ok(bytes) = <[u8; 4]>::try_from(reported.as_slice()) {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(bytes)));
    }
    Ok(Spawned {
        pid,
        stdin: File::from(stdin_write),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cgroup::RunCgroups;

    fn start(cgroup: &Path, program: &str, args: &[OsString], out: &Path) -> io::Result<Spawned> {
        let stdout = OwnedFd::from(File::create(out.join("out")).expect("out file"));
        let stderr = OwnedFd::from(File::create(out.join("err")).expect("err file"));
        let env = vec![(OsString::from("GREETING"), OsString::from("hello"))];
        spawn(
            cgroup,
            &ShellCommand {
                program: Path::new(program),
                args,
                env: &env,
                cwd: out,
                stdout: &stdout,
                stderr: &stderr,
            },
        )
    }

    // One test: the run's cgroup folder is named after this process.
    #[test]
    fn shells_start_inside_the_cgroup_and_failures_to_start_are_errors() {
        let Some(run) = RunCgroups::create() else {
            eprintln!("skipped: this machine does not let the test make a cgroup");
            return;
        };
        let lab = run.lab(0).expect("a lab cgroup");
        let out = tempfile::tempdir().expect("tempdir");
        let args: Vec<OsString> = vec![
            "-c".into(),
            "read -r line; echo \"$line $GREETING $(pwd)\"; cat /proc/self/cgroup".into(),
        ];
        let mut spawned = start(lab.path(), "/bin/sh", &args, out.path()).expect("spawned");
        use std::io::Write as _;
        writeln!(spawned.stdin, "typed").expect("stdin");
        drop(spawned.stdin);
        let status =
            nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(spawned.pid), None).expect("wait");
        assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)));
        let text = std::fs::read_to_string(out.path().join("out")).expect("output");
        assert!(
            text.starts_with(&format!("typed hello {}\n", out.path().display())),
            "{text}"
        );
        let member = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("");
        assert!(
            member.ends_with(&format!("/labbook-{}/lab-1", std::process::id())),
            "{text}"
        );

        let error = start(lab.path(), "/nonexistent/labbook-shell", &[], out.path())
            .err()
            .expect("an error");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(lab.remove());
    }
}
