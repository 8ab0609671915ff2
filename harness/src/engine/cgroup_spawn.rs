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
//! The child shares labbook's memory until it calls `execve` (`CLONE_VM | CLONE_VFORK`, the way
//! `posix_spawn` works) and runs on a small stack of its own: copying labbook's page tables, as
//! `fork` does, costs more the more memory a run holds, and `execve` throws the copy away at
//! once. That needs the system call made from assembly (x86-64; elsewhere the child is a `fork`
//! copy).
//!
//! One of the workspace's two places with `unsafe` (the other sets an allocator option in
//! `main.rs`). Everything the child needs (paths, arguments, environment, descriptors) is
//! prepared before the clone, so that the child only makes system calls that are safe there
//! (`sigaction`, `sigprocmask`, `setpgid`, `dup2`, `chdir`, `execve`, `write`, `_exit`). Signals
//! stay blocked until it has put labbook's handlers back to the defaults: a handler run in the
//! child would act on labbook's memory.
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
    /// A Landlock ruleset it enters before `execve`, if any (see `confine`).
    pub landlock: Option<&'a OwnedFd>,
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
    let landlock = command.landlock.map(above_standard).transpose()?;
    let context = ChildContext {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        fds: child_fds.each_ref().map(|fd| fd.as_raw_fd()),
        error_fd: error_write.as_raw_fd(),
        landlock_fd: landlock.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
    };
    let pid = clone_into(&folder, &context)?;
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

/// What the child reads, prepared before the clone: C strings and arrays that stay alive until
/// the child has called `execve` (or exited).
struct ChildContext {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    /// Its stdin, stdout and stderr, all at 3 or above.
    fds: [RawFd; 3],
    /// Where a failure to start is reported (close-on-exec).
    error_fd: RawFd,
    /// The Landlock ruleset to enter, or -1.
    landlock_fd: RawFd,
}

/// The child's side of the clone: becomes the program, or reports why it could not and exits.
///
/// # Safety
/// `context` points to a live [`ChildContext`]. Only async-signal-safe functions are called, on
/// memory prepared before the clone: the child may share labbook's memory (`CLONE_VM`), or be a
/// copy of a multi-threaded process.
unsafe extern "C" fn child(context: *const ChildContext) -> ! {
    // SAFETY: see the function's contract.
    unsafe {
        let context = &*context;
        // labbook's own handlers (Ctrl+C, SIGTERM) would run here, in a process that shares its
        // memory and descriptors' targets: back to the defaults before any signal gets through
        // (the parent blocked them all). Rust ignores SIGPIPE; a shell expects the default.
        for signal in 1..=64 {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || signal == libc::SIGPIPE {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let [stdin_fd, stdout_fd, stderr_fd] = context.fds;
        // Entering a Landlock domain needs no_new_privs (set, like the `landlock` crate does).
        let confined = context.landlock_fd < 0
            || (libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::syscall(libc::SYS_landlock_restrict_self, context.landlock_fd, 0) == 0);
        let ok = confined
            && libc::setpgid(0, 0) == 0
            && libc::dup2(stdin_fd, 0) == 0
            && libc::dup2(stdout_fd, 1) == 1
            && libc::dup2(stderr_fd, 2) == 2
            && libc::chdir(context.cwd) == 0;
        if ok {
            libc::execve(context.program, context.argv, context.envp);
        }
        let errno = *libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(context.error_fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127);
    }
}

/// Size of the child's stack: it only makes system calls through the C library.
#[cfg(target_arch = "x86_64")]
const CHILD_STACK: usize = 64 * 1024;

/// Creates the child inside the cgroup open at `folder`, sharing labbook's memory until it
/// calls `execve` (`CLONE_VM | CLONE_VFORK`, like `posix_spawn`): a copy of labbook's page tables
/// would cost more as a run's memory grows, and be thrown away by the `execve` at once. Returns
/// its pid once it has called `execve` or exited.
#[cfg(target_arch = "x86_64")]
fn clone_into(folder: &File, context: &ChildContext) -> io::Result<i32> {
    let page = 4096;
    // SAFETY: a fresh private mapping, released below once the child no longer runs on it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            CHILD_STACK + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // A guard page below the stack: an overflow faults instead of writing over labbook's memory.
    // SAFETY: the lowest page of the mapping just made.
    unsafe { libc::mprotect(base, page, libc::PROT_NONE) };
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: base as u64 + page as u64,
        stack_size: CHILD_STACK as u64,
        cgroup: folder.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // Every signal stays blocked in the child until it has put labbook's handlers aside.
    // SAFETY: sigset_t values filled in by the C library before use.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let result: i64;
    // SAFETY: the kernel starts the child on its own stack (the top of the mapping, 16-byte
    // aligned), where it calls `child`, which never returns; the parent resumes after the
    // `syscall` once the child has called `execve` or exited. `syscall` clobbers rcx and r11.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => result,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") context as *const ChildContext,
            in("r13") child as unsafe extern "C" fn(*const ChildContext) -> !,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::munmap(base, CHILD_STACK + page);
    }
    if result < 0 {
        return Err(io::Error::from_raw_os_error(-result as i32));
    }
    Ok(result as i32)
}

/// Creates the child inside the cgroup open at `folder`, as a copy of labbook (`fork`).
#[cfg(not(target_arch = "x86_64"))]
fn clone_into(folder: &File, context: &ChildContext) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: folder.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM copies the process like fork; the child calls `child`,
    // which never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: the child of the clone; `context` was prepared before it.
        unsafe { child(context) }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid as i32)
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
                landlock: None,
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

        // No signal left blocked (they all are while the child starts), SIGPIPE not ignored
        // (Rust ignores it in labbook). `cat` does not change either, as a shell may.
        let args: Vec<OsString> = vec!["/proc/self/status".into()];
        let spawned = start(lab.path(), "/bin/cat", &args, out.path()).expect("spawned");
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(spawned.pid), None).expect("wait");
        let text = std::fs::read_to_string(out.path().join("out")).expect("output");
        let mask = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or_else(|| panic!("no {name} in {text}"))
        };
        assert_eq!(mask("SigBlk:"), 0, "{text}");
        assert_eq!(mask("SigIgn:") & 1 << (libc::SIGPIPE - 1), 0, "{text}");

        let error = start(lab.path(), "/nonexistent/labbook-shell", &[], out.path())
            .err()
            .expect("an error");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(lab.remove());
    }
}
