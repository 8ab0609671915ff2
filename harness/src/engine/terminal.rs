//! The lab's terminal: one long-lived bash that runs every block of a lab in the same shell.
//!
//! A reader pastes block after block into one terminal, so the working directory, exported and
//! unexported variables, functions, aliases and shell options carry over. Running each block in a
//! fresh bash and re-creating that state costs several milliseconds per step; keeping one shell
//! costs almost nothing and is exactly what the reader has. The shell (`terminal.sh`) reads each
//! block over a pipe and evaluates it inside one file it sources for every block (no file is
//! created per step: creating a file costs more than a trivial step), appends its output to the
//! lab's one output file, and answers with NUL-terminated records: each failing command (its ERR
//! trap), then `done N STATUS PWD`. bash's line numbers count from the block's first line and are
//! mapped to Markdown lines here. The shell is created inside the lab's cgroup where there is one
//! (see [`super::cgroup_spawn`]).
//!
//! Stopping a step (time limit, a watch's stop condition, Ctrl+C) is what a reader's Ctrl+C does:
//! the step's processes get a signal, and the shell, which traps SIGINT, leaves the block. Every
//! process a step starts carries `LABBOOK_STEP=<lab token>.<n>` in its environment, which is how
//! they are found (see [`super::procs`]). If the shell itself does not leave the block, it is
//! replaced: on SIGTERM it writes its state (`declare -p`, `declare -f`, `alias -p`, `shopt -p`,
//! `set +o`, `cd`, `umask`) and the next shell restores it. The same happens when a block runs
//! `exit` or `set -e` ends the shell.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use regex::Regex;

use super::interrupt::Interrupt;
use super::procs;

/// The shell script of the terminal.
const SCRIPT: &str = include_str!("terminal.sh");

/// Output beyond this many bytes per step is not kept (a watch can print without end).
pub const OUTPUT_LIMIT: u64 = 4 << 20;

/// How long a step's processes get to stop after a signal before the next, stronger one.
const GRACE: Duration = Duration::from_secs(2);

/// The length of a block's header (`terminal.sh` reads exactly this many bytes).
const HEADER: usize = 64;

/// The flags of a block's header, one bit each: its code is not ASCII (bash must read its LEN
/// bytes in the C locale) ...
const FLAG_NOT_ASCII: u8 = 1;
/// ... its input is in `N.in` ...
const FLAG_INPUT: u8 = 2;
/// ... its output goes to `N.out` (a background block) ...
const FLAG_OWN_OUTPUT: u8 = 4;
/// ... and the working folder of each of its commands is recorded (`pwd` records).
const FLAG_FOLDERS: u8 = 8;

/// The header of block `number`: an arithmetic expression that sets the shell's flags, length
/// and number variables at once, padded with spaces to [`HEADER`] bytes and ended by a newline.
/// bash reads it with one `read -N` (a line is read one byte per system call from a pipe) and
/// evaluates it with one `((...))`, several times cheaper than cutting fields out of it. Each
/// character read costs bash about 200 instructions, so the header is no wider than a length
/// and a number of ten digits need; `None` beyond that.
fn header(number: u64, len: usize, flags: u8) -> Option<Vec<u8>> {
    let mut header = format!("__labbook_f={flags},__labbook_len={len},__labbook_n={number}");
    if header.len() >= HEADER {
        return None;
    }
    header.extend(std::iter::repeat_n(' ', HEADER - 1 - header.len()));
    header.push('\n');
    Some(header.into_bytes())
}

/// The last line of a complete state dump.
const STATE_END: &str = "# labbook: end of state\n";

/// Errors of the terminal itself (not of the lab's commands).
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    /// bash could not be started.
    #[error("failed to start the lab's terminal ({})", bash.display())]
    Spawn {
        /// The bash binary.
        bash: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file of the terminal's control folder could not be written or read.
    #[error("failed to access {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The block could not be handed to the shell, even after replacing it.
    #[error("failed to hand the block to the lab's terminal")]
    Send(#[source] io::Error),
}

/// How a terminal is started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bash binary.
    pub bash: PathBuf,
    /// The control folder: blocks, outputs, failure records, the saved state.
    pub dir: PathBuf,
    /// Where the reader starts.
    pub cwd: PathBuf,
    /// The environment of the first shell (later shells restore the saved state instead).
    pub env: Vec<(OsString, OsString)>,
    /// The lab's token, in `LABBOOK_LAB` and every step's `LABBOOK_STEP`.
    pub token: String,
    /// What the shell is confined to (Landlock), if anything.
    pub confine: Option<super::confine::Confinement>,
    /// The lab's cgroup, which every shell is moved into before it runs a block (see
    /// [`super::cgroup`]), or none.
    pub cgroup: Option<PathBuf>,
}

/// One block to run.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The code, as the reader would paste it.
    pub code: &'a str,
    /// The Markdown line of each line of `code`: bash's line numbers (from 1 at the block's
    /// first line) are mapped through it, in failures and in bash's messages.
    pub lines: &'a [usize],
    /// What the reader types on stdin (a session's input); none means `/dev/null`.
    pub stdin: Option<&'a str>,
    /// The time limit.
    pub limit: Duration,
    /// For a watch: stop when this matches the output.
    pub until: Option<&'a Regex>,
    /// Whether this is a watch: at the limit it is stopped with SIGINT like a reader's Ctrl+C,
    /// instead of SIGTERM and SIGKILL.
    pub watch: bool,
    /// Whether the output goes to a file of its own, which keeps growing after the step (a
    /// background step); other blocks share one output file.
    pub own_output: bool,
    /// Whether to record the working folder of each command (for a block that writes files:
    /// the file is where the shell was when it wrote it, see [`Outcome::folder_for`]).
    pub folders: bool,
}

/// How a block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It ran to its end.
    Finished,
    /// The shell exited during the block (`exit`, `set -e`, `exec`), with this status.
    ShellExited(i32),
    /// The watch's `until` pattern matched; it was stopped.
    Matched,
    /// The time limit passed; it was stopped.
    Limit,
    /// Ctrl+C on labbook; it was stopped.
    Interrupted,
}

/// What kind of failure the harness saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A command failed (the ERR trap saw it).
    Command,
    /// bash stopped reading the block at a syntax error.
    Syntax,
    /// `set -u` and a variable that is not set: bash printed the message and the shell exited.
    Unbound,
    /// The shell could not even start the block (an earlier block lowered `ulimit -n`, or
    /// closed the terminal's descriptors).
    Broken,
}

/// A command that failed, as the ERR trap saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its exit status.
    pub status: i32,
    /// The Markdown line of the command (see [`Block::lines`]).
    pub line: usize,
    /// The command as bash saw it (`$BASH_COMMAND`), or bash's message for the other kinds.
    pub command: String,
    /// What failed.
    pub kind: FailureKind,
    /// The statuses of the pipeline's commands (`PIPESTATUS`), when it was a pipeline.
    pub pipestatus: Vec<i32>,
}

impl Failure {
    /// For a pipeline that failed because of `set -o pipefail`, the index of the command that
    /// failed (the last one with a non-zero status), when it is not the pipeline's last command
    /// (which is the one `$BASH_COMMAND` names).
    pub fn pipeline_culprit(&self) -> Option<usize> {
        let last = self.pipestatus.len().checked_sub(1)?;
        let culprit = self.pipestatus.iter().rposition(|s| *s != 0)?;
        (culprit != last).then_some(culprit)
    }
}

/// What happened to a block.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The block's number in this terminal.
    pub number: u64,
    /// stdout and stderr, interleaved.
    pub output: String,
    /// Whether the output was cut at [`OUTPUT_LIMIT`].
    pub truncated: bool,
    /// The status of the block's last command, or the shell's exit status.
    pub status: Option<i32>,
    /// The failing commands, in order.
    pub failures: Vec<Failure>,
    /// How it ended.
    pub ending: Ending,
    /// Wall time.
    pub duration: Duration,
    /// The shell's working directory afterwards.
    pub cwd: PathBuf,
    /// For a block run with [`Block::folders`]: the Markdown line, working folder and command of
    /// each command it ran, in order.
    pub folders: Vec<(usize, PathBuf, String)>,
}

impl Outcome {
    /// The folder the command at Markdown line `line` that mentions `file` ran in (the last
    /// such command), as the shell really had it; else the folder after the block.
    pub fn folder_for(&self, line: usize, file: &str) -> &Path {
        let at_line = || self.folders.iter().rev().filter(|(l, ..)| *l == line);
        at_line()
            .find(|(.., command)| command.contains(file))
            .or_else(|| at_line().next())
            .map_or(&self.cwd, |(_, folder, _)| folder)
    }
}

enum Event {
    Done {
        number: u64,
        status: i32,
        /// False when the block could not even be started (the shell cannot redirect any more).
        started: bool,
        cwd: PathBuf,
    },
    Fail {
        number: u64,
        status: i32,
        line: usize,
        pipestatus: Vec<i32>,
        command: String,
    },
    Folder {
        number: u64,
        line: usize,
        cwd: PathBuf,
        command: String,
    },
    Exited(i32),
}

struct Shell {
    pid: i32,
    stdin: Option<File>,
    events: Records,
}

/// The shell's records (its stdout, a socket), read by the thread that runs the blocks itself:
/// a record reaches it with one wake-up, not two (a reader thread, then a channel). Its exit
/// arrives on the same socket, written by the thread that waits for it. The socket is
/// non-blocking: see [`SPIN`].
struct Records {
    socket: UnixStream,
    buffer: Vec<u8>,
    closed: bool,
}

/// How long the harness keeps checking for the shell's answer before it sleeps. Most blocks of
/// a lab end within this time (an `echo`, a `cd`, an `export`); waking a sleeping thread on
/// another CPU costs about as much as running such a step, on virtual machines several times
/// more. A longer step costs this much CPU once.
const SPIN: Duration = Duration::from_micros(300);

impl Records {
    fn new(socket: UnixStream) -> Records {
        // Without it, a read would block; the wait is bounded by `poll` instead.
        let _ = socket.set_nonblocking(true);
        Records {
            socket,
            buffer: Vec::new(),
            closed: false,
        }
    }

    /// The next record within `wait` (in the order the shell wrote them).
    fn recv_timeout(&mut self, wait: Duration) -> Result<Event, RecvTimeoutError> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == 0) {
                let event = parse_record(&self.buffer[..end]);
                self.buffer.drain(..=end);
                match event {
                    Some(event) => return Ok(event),
                    None => continue,
                }
            }
            if self.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            match self.socket.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    if now - start < SPIN {
                        std::thread::yield_now();
                    } else if !self.readable_within(deadline - now) {
                        return Err(RecvTimeoutError::Timeout);
                    }
                }
                Err(_) => self.closed = true,
            }
        }
    }

    /// Sleeps until the socket has something to read (or is closed), at most `wait`.
    fn readable_within(&self, wait: Duration) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        // Rounded up: a zero timeout would spin instead of sleeping.
        let millis = wait.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => n > 0,
            // A signal, or poll itself failed: the read that follows tells.
            Err(_) => true,
        }
    }
}

/// What is gathered about the running block while waiting for its end.
#[derive(Default)]
struct Gathered {
    failures: Vec<(usize, Failure)>,
    folders: Vec<(usize, PathBuf, String)>,
    broken: bool,
}

/// A lab's terminal. Dropping it without [`Terminal::shutdown`] leaves the shell to the reaper.
pub struct Terminal {
    settings: Settings,
    shell: Option<Shell>,
    started: bool,
    next: u64,
    pgids: Vec<i32>,
    cwd: PathBuf,
    gathered: Gathered,
    /// The shared output file, opened once (see [`Terminal::shared_output`]).
    shared: Option<File>,
    /// How bash names the file every block is evaluated in, in its messages (`<path>: `).
    block_name: String,
    /// A shell could not be moved into the lab's cgroup.
    outside_cgroup: bool,
    /// Things the lab's report should mention (a shell that had to be replaced, ...).
    pub warnings: Vec<String>,
}

impl Terminal {
    /// Prepares a terminal; the shell starts with the first block.
    pub fn new(settings: Settings) -> Result<Terminal, TerminalError> {
        fs::create_dir_all(&settings.dir).map_err(|source| TerminalError::File {
            path: settings.dir.clone(),
            source,
        })?;
        let cwd = settings.cwd.clone();
        let block_name = format!("{}: ", settings.dir.join(BLOCK_FILE).display());
        Ok(Terminal {
            block_name,
            settings,
            shell: None,
            started: false,
            next: 1,
            pgids: Vec::new(),
            cwd,
            gathered: Gathered::default(),
            shared: None,
            outside_cgroup: false,
            warnings: Vec::new(),
        })
    }

    /// The process groups of every shell this terminal started (each lab command inherits one).
    pub fn process_groups(&self) -> &[i32] {
        &self.pgids
    }

    /// Whether every shell of this terminal was moved into its cgroup (so that the cgroup holds
    /// every process the lab started).
    pub fn in_cgroup(&self) -> bool {
        self.settings.cgroup.is_some() && !self.outside_cgroup
    }

    /// The shell running now, if any.
    pub fn shell_pid(&self) -> Option<i32> {
        self.shell.as_ref().map(|s| s.pid)
    }

    /// The environment entry every process of the lab carries.
    pub fn lab_marker(&self) -> String {
        format!("LABBOOK_LAB={}", self.settings.token)
    }

    fn step_marker(&self, number: u64) -> String {
        format!("LABBOOK_STEP={}.{number}", self.settings.token)
    }

    fn file(&self, number: u64, extension: &str) -> PathBuf {
        self.settings.dir.join(format!("{number}.{extension}"))
    }

    /// The lab's shared output file, where every block but a background one writes.
    fn shared_output(&self) -> PathBuf {
        self.settings.dir.join("out")
    }

    fn write(&self, path: &Path, text: &str) -> Result<(), TerminalError> {
        fs::write(path, text).map_err(|source| TerminalError::File {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Starts a shell: the first one in the lab's environment and start folder, later ones
    /// restoring the state the previous one saved.
    fn spawn(&mut self) -> Result<(), TerminalError> {
        let dir = self.settings.dir.clone();
        let saved = dir.join("state");
        let fresh = dir.join("state.new");
        if fs::read_to_string(&fresh).is_ok_and(|s| s.ends_with(STATE_END)) {
            let _ = fs::rename(&fresh, &saved);
        }
        let spawn_error = |source| TerminalError::Spawn {
            bash: self.settings.bash.clone(),
            source,
        };
        let mut args: Vec<OsString> = ["--noprofile", "--norc", "-c", SCRIPT, "bash"]
            .map(OsString::from)
            .to_vec();
        args.push(dir.clone().into_os_string());
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        if !(self.started && saved.is_file()) {
            if self.started {
                self.warnings.push(
                    "the lab's shell had to be replaced before it could save its state; \
                     variables and functions defined so far were lost"
                        .into(),
                );
                let _ = fs::remove_file(&saved);
            }
            env.extend(self.settings.env.iter().cloned());
        }
        env.retain(|(k, _)| k != "LABBOOK_LAB");
        env.push(("LABBOOK_LAB".into(), self.settings.token.clone().into()));
        let cwd = [&self.cwd, &self.settings.cwd, &dir]
            .into_iter()
            .find(|d| d.is_dir())
            .cloned()
            .unwrap_or_else(|| dir.clone());
        let (socket, records) = UnixStream::pair().map_err(spawn_error)?;
        let notify = socket.try_clone().map_err(spawn_error)?;
        let socket = OwnedFd::from(socket);
        // A reader does not see this shell's own errors; they are kept for debugging.
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("terminal.log"))
            .or_else(|_| File::options().write(true).open("/dev/null"))
            .map(OwnedFd::from)
            .map_err(spawn_error)?;
        // Created inside the lab's cgroup where the kernel can (see `cgroup_spawn`), entering
        // its confinement itself; else started through the confinement helper and then moved
        // into the cgroup, before it reads its first block.
        let direct = match &self.settings.cgroup {
            Some(cgroup) if self.settings.bash.is_absolute() => {
                // A ruleset that cannot be built here is left to the helper, which says why.
                let ruleset = self.settings.confine.as_ref().map(|c| c.ruleset());
                match ruleset.transpose() {
                    Ok(ruleset) => super::cgroup_spawn::spawn(
                        cgroup,
                        &super::cgroup_spawn::ShellCommand {
                            program: &self.settings.bash,
                            args: &args,
                            env: &env,
                            cwd: &cwd,
                            stdout: &socket,
                            stderr: &log,
                            landlock: ruleset.as_ref(),
                        },
                    )
                    .ok(),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let (pid, stdin) = match direct {
            Some(spawned) => (spawned.pid, Some(spawned.stdin)),
            None => {
                let (program, args) = match &self.settings.confine {
                    Some(confine) => {
                        let mut launcher = confine.launcher();
                        let program = PathBuf::from(launcher.remove(0));
                        launcher.push(self.settings.bash.clone().into_os_string());
                        launcher.extend(args);
                        (program, launcher)
                    }
                    None => (self.settings.bash.clone(), args),
                };
                let mut child = Command::new(&program)
                    .args(&args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .current_dir(&cwd)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::from(socket.try_clone().map_err(spawn_error)?))
                    .stderr(Stdio::from(log.try_clone().map_err(spawn_error)?))
                    // Its own process group: a Ctrl+C typed at labbook does not reach the lab
                    // directly.
                    .process_group(0)
                    .spawn()
                    .map_err(spawn_error)?;
                let pid = child.id() as i32;
                if let Some(cgroup) = &self.settings.cgroup
                    && !super::cgroup::adopt(cgroup, pid)
                {
                    self.outside_cgroup = true;
                }
                // Dropping `child` neither kills nor reaps it: the thread below waits for it.
                (
                    pid,
                    child.stdin.take().map(|s| File::from(OwnedFd::from(s))),
                )
            }
        };
        self.started = true;
        self.pgids.push(pid);
        procs::record_shell(&self.settings.dir, pid);
        // Only the shell holds its end of the socket now; ours is `notify`.
        drop(socket);
        let mut notify = notify;
        std::thread::spawn(move || {
            let code = exit_status(pid);
            let _ = notify.write_all(format!("exited\t{code}\0").as_bytes());
        });
        self.shell = Some(Shell {
            pid,
            stdin,
            events: Records::new(records),
        });
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), TerminalError> {
        for attempt in 0..2 {
            if self.shell.is_none() {
                self.spawn()?;
            }
            let Some(shell) = self.shell.as_mut() else {
                continue;
            };
            let result = match shell.stdin.as_mut() {
                Some(stdin) => stdin.write_all(bytes).and_then(|_| stdin.flush()),
                None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 1 => return Err(TerminalError::Send(e)),
                // The shell ended between two blocks (an `exit` in the previous one): replace it.
                Err(_) => self.forget_shell(Duration::from_secs(1)),
            }
        }
        Err(TerminalError::Send(io::Error::from(
            io::ErrorKind::BrokenPipe,
        )))
    }

    /// Waits up to `timeout` for the shell to exit (killing it if it does not), then drops it.
    fn forget_shell(&mut self, timeout: Duration) {
        if let Some(mut shell) = self.shell.take() {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match shell.events.recv_timeout(left) {
                    Ok(Event::Exited(_)) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout) => {
                        let _ = kill(Pid::from_raw(shell.pid), Signal::SIGKILL);
                        let _ = shell.events.recv_timeout(Duration::from_secs(1));
                        return;
                    }
                }
            }
        }
    }

    /// Runs one block and reports what happened. `interrupt` is checked while it runs: an
    /// interrupt received after the block started stops it.
    pub fn run(&mut self, block: &Block, interrupt: &Interrupt) -> Result<Outcome, TerminalError> {
        let started = Instant::now();
        let interrupts = interrupt.count();
        let number = self.next;
        self.next += 1;
        self.gathered = Gathered::default();
        let mut flags = if block.code.is_ascii() {
            0
        } else {
            FLAG_NOT_ASCII
        };
        if let Some(text) = block.stdin {
            self.write(&self.file(number, "in"), text)?;
            flags |= FLAG_INPUT;
        }
        if block.own_output {
            flags |= FLAG_OWN_OUTPUT;
        }
        if block.folders {
            flags |= FLAG_FOLDERS;
        }
        let output_path = if block.own_output {
            self.file(number, "out")
        } else {
            self.shared_output()
        };
        // Where this block's output starts in the shared file (its end is read at `done`).
        if self.shared.is_none() && !block.own_output {
            self.shared = File::open(&output_path).ok();
        }
        let start = match &self.shared {
            Some(file) if !block.own_output => file.metadata().map_or(0, |m| m.len()),
            _ => 0,
        };
        let mut message = header(number, block.code.len(), flags).ok_or_else(|| {
            TerminalError::Send(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a block of 10 GB or more",
            ))
        })?;
        message.extend_from_slice(block.code.as_bytes());
        self.send(&message)?;

        let deadline = later(started, block.limit);
        let mut tail = block.until.map(|_| Tail::new(output_path.clone(), start));
        let (ending, status) = loop {
            let tick = if tail.is_some() { 50 } else { 200 };
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(tick))
                .max(Duration::from_millis(1));
            match self.next_event(number, wait) {
                Some(Event::Done { status, .. }) => break (Ending::Finished, Some(status)),
                Some(Event::Exited(code)) => break (Ending::ShellExited(code), Some(code)),
                _ => {}
            }
            if interrupt.count() > interrupts {
                self.stop(number, Signal::SIGINT);
                break (Ending::Interrupted, None);
            }
            if let (Some(tail), Some(until)) = (tail.as_mut(), block.until)
                && until.is_match(&tail.poll())
            {
                self.stop(number, Signal::SIGINT);
                break (Ending::Matched, None);
            }
            if Instant::now() >= deadline {
                // A watch is stopped like a reader's Ctrl+C; anything else is terminated.
                let signal = if block.watch {
                    Signal::SIGINT
                } else {
                    Signal::SIGTERM
                };
                self.stop(number, signal);
                break (Ending::Limit, None);
            }
        };
        if self.shared.is_none() && !block.own_output {
            // The first shell creates the file when it starts.
            self.shared = File::open(&output_path).ok();
        }
        let (raw, truncated) = match &self.shared {
            Some(file) if !block.own_output => read_from(file, start),
            _ => read_range(&output_path, start),
        };
        let output = rewrite_messages(raw, &self.block_name, block.lines);
        let gathered = std::mem::take(&mut self.gathered);
        let mut failures: Vec<Failure> = gathered
            .failures
            .into_iter()
            .map(|(_, mut f)| {
                f.line = markdown_line(block.lines, f.line);
                f
            })
            .collect();
        if gathered.broken {
            failures.push(Failure {
                status: 1,
                line: markdown_line(block.lines, 1),
                command: fs::read_to_string(self.settings.dir.join("terminal.log"))
                    .ok()
                    .and_then(|log| log.lines().last().map(str::to_string))
                    .unwrap_or_default(),
                kind: FailureKind::Broken,
                pipestatus: Vec::new(),
            });
        }
        // bash stops reading a block at a syntax error, and leaves the shell on an unbound
        // variable under `set -u`; its ERR trap sees neither.
        failures.extend(message_failure(&output, block.code, block.lines));
        let folders = gathered
            .folders
            .into_iter()
            .map(|(line, cwd, command)| (markdown_line(block.lines, line), cwd, command))
            .collect();
        Ok(Outcome {
            number,
            output,
            truncated,
            status,
            failures,
            ending,
            duration: started.elapsed(),
            cwd: self.cwd.clone(),
            folders,
        })
    }

    /// The next event about block `number` within `wait`: its end, or the shell's. What the
    /// block reports on the way (failures, folders) is gathered; records of older blocks (a
    /// background block's late failures) are dropped.
    fn next_event(&mut self, number: u64, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let received = self.shell.as_mut()?.events.recv_timeout(left);
            match received {
                Ok(Event::Done {
                    number: n,
                    status,
                    started,
                    cwd,
                }) if n == number => {
                    // Empty when the lab unset PWD: the shell is where it was.
                    if !cwd.as_os_str().is_empty() {
                        self.cwd.clone_from(&cwd);
                    }
                    self.gathered.broken |= !started;
                    return Some(Event::Done {
                        number: n,
                        status,
                        started,
                        cwd,
                    });
                }
                Ok(Event::Fail {
                    number: n,
                    status,
                    line,
                    pipestatus,
                    command,
                }) if n == number => self.gathered.failures.push((
                    line,
                    Failure {
                        status,
                        line,
                        command,
                        kind: FailureKind::Command,
                        pipestatus,
                    },
                )),
                Ok(Event::Folder {
                    number: n,
                    line,
                    cwd,
                    command,
                }) if n == number => {
                    let cwd = if cwd.as_os_str().is_empty() {
                        self.cwd.clone()
                    } else {
                        cwd
                    };
                    self.gathered.folders.push((line, cwd, command));
                }
                Ok(Event::Exited(code)) => {
                    self.shell = None;
                    return Some(Event::Exited(code));
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.shell = None;
                    return Some(Event::Exited(-1));
                }
            }
        }
    }

    /// Waits up to `wait` for block `number` to end; returns whether it did.
    fn wait_end(&mut self, number: u64, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.shell.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if self.next_event(number, left).is_some() {
                return true;
            }
        }
        true
    }

    /// Stops block `number`: `first` to its processes and SIGINT to the shell (which then leaves
    /// the block, as after a reader's Ctrl+C); after a grace period SIGKILL to its processes;
    /// then, if the shell still has not left the block, it is replaced.
    fn stop(&mut self, number: u64, first: Signal) {
        let Some(pid) = self.shell.as_ref().map(|s| s.pid) else {
            return;
        };
        let marker = self.step_marker(number);
        // The shell first, so that it leaves the block as soon as its foreground command ends.
        let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        let processes = procs::with_env(&marker, &[pid]);
        procs::signal_all(&processes, Signal::SIGCONT);
        procs::signal_all(&processes, first);
        if self.wait_end(number, GRACE) {
            return;
        }
        procs::signal_all(&procs::with_env(&marker, &[pid]), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        if self.wait_end(number, GRACE) {
            return;
        }
        // The shell itself is stuck (a builtin loop that survives SIGINT): SIGTERM makes it save
        // its state and exit; the next block gets a new shell.
        self.warnings.push(format!(
            "block {number} did not stop on SIGINT; its shell was replaced"
        ));
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if !self.wait_end(number, GRACE) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            self.forget_shell(GRACE);
        }
        self.shell = None;
    }

    /// The output of background block `number` so far (it keeps growing after its step).
    pub fn output(&self, number: u64) -> (String, bool) {
        let (raw, truncated) = read_range(&self.file(number, "out"), 0);
        (rewrite_messages(raw, &self.block_name, &[]), truncated)
    }

    /// Ends the shell (end of input: the lab is over, so it exits without saving its state),
    /// killing it if it does not.
    pub fn shutdown(&mut self) {
        if let Some(shell) = self.shell.as_mut() {
            shell.stdin = None;
        }
        self.forget_shell(GRACE);
    }
}

/// Waits for child `pid` to end: its exit status, 128 + the signal that killed it, or -1 when
/// it cannot be waited for.
fn exit_status(pid: i32) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return -1,
        }
    }
}

/// Up to [`OUTPUT_LIMIT`] bytes of `path` from `start`, as text, and whether there was more.
fn read_range(path: &Path, start: u64) -> (String, bool) {
    match File::open(path) {
        Ok(file) => read_from(&file, start),
        Err(_) => (String::new(), false),
    }
}

/// Up to [`OUTPUT_LIMIT`] bytes of `file` from `start`, as text, and whether there was more.
fn read_from(mut file: &File, start: u64) -> (String, bool) {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(start));
    let _ = file.take(OUTPUT_LIMIT + 1).read_to_end(&mut bytes);
    let truncated = bytes.len() as u64 > OUTPUT_LIMIT;
    bytes.truncate(OUTPUT_LIMIT as usize);
    // Valid UTF-8 (the usual case) becomes text without a copy.
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    (text, truncated)
}

/// The file every block is evaluated in (see `terminal.sh`); bash names it in its messages.
const BLOCK_FILE: &str = "block";

/// The Markdown line of the block's line `line` (1-based; 0 when bash did not say).
fn markdown_line(lines: &[usize], line: usize) -> usize {
    match (lines.get(line.saturating_sub(1)), lines.last()) {
        (Some(l), _) => *l,
        (None, Some(last)) => last + line.saturating_sub(lines.len()),
        (None, None) => line,
    }
}

/// bash names the block's file in its messages (`<control>/block: line 3: conftest: command not
/// found`, `<control>/block: eval: line 4: syntax error …`); the reader would see `bash: line 66:
/// …`, with the Markdown line. `name` is the file's name as bash writes it, with its `: `.
fn rewrite_messages(output: String, name: &str, lines: &[usize]) -> String {
    if !output.contains(name) {
        return output;
    }
    let mut text = String::with_capacity(output.len());
    let mut rest = output.as_str();
    while let Some(at) = rest.find(name) {
        text.push_str(&rest[..at]);
        text.push_str("bash: ");
        rest = &rest[at + name.len()..];
        rest = rest.strip_prefix("eval: ").unwrap_or(rest);
        if let Some(after) = rest.strip_prefix("line ")
            && let Some(end) = after.find(|c: char| !c.is_ascii_digit())
            && let Ok(line) = after[..end].parse::<usize>()
        {
            text.push_str(&format!("line {}", markdown_line(lines, line)));
            rest = &after[end..];
        }
    }
    text.push_str(rest);
    text
}

/// A failure bash reported only in a message (`bash: line 12: syntax error near …`, `bash:
/// line 3: NAME: unbound variable`), with the Markdown line and, for an unbound variable, the
/// code line that uses it.
fn message_failure(output: &str, code: &str, lines: &[usize]) -> Option<Failure> {
    output.lines().find_map(|line| {
        let rest = line.strip_prefix("bash: line ")?;
        let (number, message) = rest.split_once(": ")?;
        let number: usize = number.parse().unwrap_or(0);
        if message.starts_with("syntax error") || message.starts_with("unexpected EOF") {
            return Some(Failure {
                status: 2,
                line: number,
                command: message.to_string(),
                kind: FailureKind::Syntax,
                pipestatus: Vec::new(),
            });
        }
        let variable = message.strip_suffix(": unbound variable")?;
        let code_line = lines
            .iter()
            .position(|l| *l == number)
            .and_then(|i| code.lines().nth(i))
            .unwrap_or("")
            .trim();
        Some(Failure {
            status: 1,
            line: number,
            command: format!("{variable}\t{code_line}"),
            kind: FailureKind::Unbound,
            pipestatus: Vec::new(),
        })
    })
}

fn parse_record(record: &[u8]) -> Option<Event> {
    let record = String::from_utf8_lossy(record);
    // A lab's stray write to the records channel may come before a record.
    let at = ["done\t", "fail\t", "pwd\t", "exited\t"]
        .iter()
        .filter_map(|p| record.rfind(p))
        .max()?;
    let mut fields = record[at..].splitn(6, '\t');
    let kind = fields.next()?;
    if kind == "exited" {
        // Written by labbook itself when the shell exited, with its status.
        return Some(Event::Exited(fields.next()?.parse().ok()?));
    }
    let number = fields.next()?.parse().ok()?;
    match kind {
        "done" => {
            let status = fields.next()?.parse().ok()?;
            let started = fields.next()? == "1";
            let cwd = record[at..].splitn(5, '\t').nth(4).unwrap_or("");
            Some(Event::Done {
                number,
                status,
                started,
                cwd: PathBuf::from(cwd),
            })
        }
        "fail" => Some(Event::Fail {
            number,
            status: fields.next()?.parse().ok()?,
            line: fields.next()?.parse().ok()?,
            pipestatus: fields
                .next()?
                .split(' ')
                .filter_map(|s| s.parse().ok())
                .collect(),
            command: fields.next().unwrap_or("").replace('\n', " "),
        }),
        "pwd" => {
            let mut rest = record[at..].splitn(5, '\t').skip(2);
            Some(Event::Folder {
                number,
                line: rest.next()?.parse().ok()?,
                cwd: PathBuf::from(rest.next()?),
                command: rest.next().unwrap_or("").to_string(),
            })
        }
        _ => None,
    }
}

/// How much step output a whole run keeps in memory for its reports. Every step's full output is
/// on disk (the lab's output file in its run folder); a run that prints hundreds of megabytes
/// keeps only this much of it, so that its memory does not grow with its output.
pub const KEPT_OUTPUT: usize = 16 << 20;

/// What is still kept of a run's step outputs, shared by its labs (see [`KEPT_OUTPUT`]).
#[derive(Debug)]
pub struct OutputBudget(AtomicUsize);

impl Default for OutputBudget {
    fn default() -> OutputBudget {
        OutputBudget(AtomicUsize::new(KEPT_OUTPUT))
    }
}

impl OutputBudget {
    /// The part of `output` to keep: all of it while the budget lasts, then its first 64 KiB;
    /// a cut output ends with a note saying so.
    pub fn keep(&self, mut output: String) -> String {
        let wanted = output.len();
        let granted = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                Some(left.saturating_sub(wanted))
            })
            .unwrap_or(0);
        if granted >= wanted {
            return output;
        }
        let mut cut = granted.max(64 << 10).min(wanted);
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut < wanted {
            output.truncate(cut);
            output.push_str(&format!(
                "\n[labbook: output cut at {cut} of {wanted} bytes: this run keeps {} MiB of \
                 output in all; the whole output is in the lab's run folder (control/out)]\n",
                KEPT_OUTPUT >> 20
            ));
        }
        output
    }
}

/// `start + limit`, or a century later when that is past what the clock can hold (a
/// `timeout=` of a billion hours must not panic).
pub fn later(start: Instant, limit: Duration) -> Instant {
    start
        .checked_add(limit)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(start)
}

/// Follows a growing output file, for a watch's `until`. It keeps only what it has not searched
/// yet (from the start of the last line seen, since a match may end on a line that was
/// incomplete at the previous poll), so a match after any amount of output is still seen.
struct Tail {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    pending: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf, offset: u64) -> Tail {
        Tail {
            path,
            file: None,
            offset,
            pending: Vec::new(),
        }
    }

    /// The text not searched yet, with the last incomplete line seen before.
    fn poll(&mut self) -> String {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        if let Some(file) = self.file.as_mut() {
            let _ = file.seek(SeekFrom::Start(self.offset));
            let before = self.pending.len();
            let _ = file.take(1 << 20).read_to_end(&mut self.pending);
            self.offset += (self.pending.len() - before) as u64;
        }
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        // Keep the incomplete last line (bounded: a line without end is not kept whole).
        let keep = self
            .pending
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
            .max(self.pending.len().saturating_sub(64 << 10));
        self.pending.drain(..keep);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lines_map_to_markdown_lines() {
        let cases: [(&[usize], usize, usize); 5] = [
            (&[3, 4], 1, 3),
            (&[3, 4], 2, 4),
            (&[3, 4], 4, 6),
            (&[], 7, 7),
            (&[10, 12], 0, 10),
        ];
        for (lines, line, expected) in cases {
            assert_eq!(markdown_line(lines, line), expected, "{lines:?} {line}");
        }
    }

    #[test]
    fn messages_name_markdown_lines() {
        let cases = [
            (
                "/run/control/block: line 2: nope: command not found\n",
                "bash: line 21: nope: command not found\n",
            ),
            (
                "/run/control/block: eval: line 2: syntax error near unexpected token `)'\n",
                "bash: line 21: syntax error near unexpected token `)'\n",
            ),
            (
                "/run/control/block: cd: x: No such file",
                "bash: cd: x: No such file",
            ),
            ("plain\n", "plain\n"),
            (
                "/elsewhere/block: line 2: x\n",
                "/elsewhere/block: line 2: x\n",
            ),
        ];
        for (output, expected) in cases {
            assert_eq!(
                rewrite_messages(output.to_string(), "/run/control/block: ", &[20, 21]),
                expected,
                "{output}"
            );
        }
    }

    #[test]
    fn message_failures_are_found() {
        let code = "set -u\necho \"$NOPE\"\n";
        let cases = [
            (
                "one\nbash: line 14: syntax error near unexpected token `)'\n",
                Some((
                    14,
                    FailureKind::Syntax,
                    "syntax error near unexpected token `)'",
                )),
            ),
            (
                "bash: line 3: unexpected EOF while looking for matching `\"'",
                Some((
                    3,
                    FailureKind::Syntax,
                    "unexpected EOF while looking for matching `\"'",
                )),
            ),
            (
                "bash: line 8: NOPE: unbound variable",
                Some((8, FailureKind::Unbound, "NOPE\techo \"$NOPE\"")),
            ),
            ("bash: line 3: nope: command not found", None),
            ("syntax error", None),
        ];
        for (output, expected) in cases {
            let found = message_failure(output, code, &[7, 8]).map(|f| (f.line, f.kind, f.command));
            assert_eq!(
                found,
                expected.map(|(l, k, c)| (l, k, c.to_string())),
                "{output}"
            );
        }
    }

    #[test]
    fn pipefail_culprits() {
        let cases: [(&[i32], Option<usize>); 5] = [
            (&[1, 0, 0], Some(0)),
            (&[0, 1, 0], Some(1)),
            (&[0, 0, 1], None),
            (&[1], None),
            (&[], None),
        ];
        for (pipestatus, expected) in cases {
            let failure = Failure {
                status: 1,
                line: 1,
                command: String::new(),
                kind: FailureKind::Command,
                pipestatus: pipestatus.to_vec(),
            };
            assert_eq!(failure.pipeline_culprit(), expected, "{pipestatus:?}");
        }
    }

    #[test]
    fn the_output_budget_keeps_a_bounded_amount() {
        let budget = OutputBudget(AtomicUsize::new(100 << 10));
        let big = "x".repeat(80 << 10);
        assert_eq!(budget.keep(big.clone()), big);
        let cut = budget.keep(big.clone());
        assert!(cut.starts_with(&"x".repeat(64 << 10)));
        assert!(cut.contains("[labbook: output cut at 65536 of 81920 bytes"));
        assert_eq!(
            budget.keep("small".into()).len(),
            5,
            "a short output is kept whole"
        );
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn bash_reads_every_header_at_once() {
        // Ten digits each, and every flag, fit; eleven do not.
        let big = 9_999_999_999;
        assert_eq!(header(big * 10, big as usize * 10, 15), None);
        assert_eq!(header(u64::MAX, usize::MAX, 15), None);
        let cases: [(u64, usize, u8); 4] = [
            (1, 0, 0),
            (7, 23, FLAG_NOT_ASCII),
            (42, 100_000, FLAG_INPUT | FLAG_FOLDERS),
            (
                big,
                big as usize,
                FLAG_NOT_ASCII | FLAG_INPUT | FLAG_OWN_OUTPUT | FLAG_FOLDERS,
            ),
        ];
        for (number, len, flags) in cases {
            let bytes = header(number, len, flags).expect("fits");
            assert_eq!(bytes.len(), HEADER, "{number}");
            let mut input = bytes.clone();
            input.extend_from_slice(b"the code");
            let mut child = Command::new("bash")
                .args([
                    "--noprofile",
                    "--norc",
                    "-c",
                    "read -r -N 64 h && ((h)) && read -r -N 8 rest && \
                     printf '%s %s %s %s' \"$__labbook_n\" \"$__labbook_len\" \"$__labbook_f\" \"$rest\"",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("bash");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&input)
                .expect("write");
            let out = child.wait_with_output().expect("bash output");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{number} {len} {flags} the code"),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn records_are_parsed() {
        let done = |r: &[u8]| match parse_record(r) {
            Some(Event::Done {
                number,
                status,
                started,
                cwd,
            }) => Some((number, status, started, cwd)),
            _ => None,
        };
        type Expected<'a> = Option<(u64, i32, bool, &'a str)>;
        let cases: [(&[u8], Expected); 7] = [
            (b"done\t3\t0\t1\t/tmp/a b", Some((3, 0, true, "/tmp/a b"))),
            (
                b"done\t12\t127\t1\t/tmp/new\nline",
                Some((12, 127, true, "/tmp/new\nline")),
            ),
            (b"done\t5\t1\t0\t/", Some((5, 1, false, "/"))),
            (
                b"done\t6\t0\t1\t/tab\there",
                Some((6, 0, true, "/tab\there")),
            ),
            (b"garbage done\t4\t1\t1\t/", Some((4, 1, true, "/"))),
            (b"done\tx\t0\t1\t/", None),
            (b"hello", None),
        ];
        for (record, expected) in cases {
            assert_eq!(
                done(record),
                expected.map(|(n, s, started, c)| (n, s, started, PathBuf::from(c))),
                "{record:?}"
            );
        }
        match parse_record(b"fail\t2\t1\t5\t0 1\tgrep -q x\tabc") {
            Some(Event::Fail {
                number: 2,
                status: 1,
                line: 5,
                pipestatus,
                command,
            }) => {
                assert_eq!(pipestatus, vec![0, 1]);
                assert_eq!(command, "grep -q x\tabc");
            }
            _ => panic!("a fail record"),
        }
    }

    #[test]
    fn a_tail_sees_a_match_after_any_amount_of_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let mut file = File::create(&path).expect("create");
        let mut tail = Tail::new(path, 0);
        let chunk = "x".repeat(1023) + "\n";
        for _ in 0..(6 << 10) {
            file.write_all(chunk.as_bytes()).expect("write");
        }
        file.write_all(b"READY now").expect("write");
        let until = Regex::new("READY").expect("regex");
        let mut seen = false;
        for _ in 0..20 {
            if until.is_match(&tail.poll()) {
                seen = true;
                break;
            }
        }
        assert!(seen, "the match after 6 MB was not seen");
        assert!(tail.pending.len() < 70 << 10);
    }
}
