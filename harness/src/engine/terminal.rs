//! The lab's terminal: one long-lived bash that runs every block of a lab in the same shell.
//!
//! A reader pastes block after block into one terminal, so the working directory, exported and
//! unexported variables, functions, aliases and shell options carry over. Running each block in a
//! fresh bash and re-creating that state costs several milliseconds per step; keeping one shell
//! costs almost nothing and is exactly what the reader has. The shell (`terminal.sh`) reads one
//! command per line on stdin, sources the block with its output in a file and its failing
//! commands recorded by an ERR trap, and answers `done N STATUS PWD` on stdout.
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
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
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
    /// What bash is started through (the Landlock confinement helper), or nothing.
    pub launcher: Vec<OsString>,
}

/// One block to run.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The code, as the reader would paste it.
    pub code: &'a str,
    /// The Markdown line of each line of `code`. The block file places each line there (blank
    /// lines in between), so that bash's `$LINENO` and its error messages name Markdown lines.
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

/// A command that failed, as the ERR trap saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its exit status.
    pub status: i32,
    /// The line bash reported: the Markdown line (see [`Block::lines`]).
    pub line: usize,
    /// The command as bash saw it (`$BASH_COMMAND`).
    pub command: String,
}

/// What happened to a block.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The block's number in this terminal (its files are `N.sh`, `N.out`, ...).
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
}

enum Event {
    Done {
        number: u64,
        status: i32,
        cwd: String,
    },
    Exited(i32),
}

struct Shell {
    pid: i32,
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
}

/// A lab's terminal. Dropping it without [`Terminal::shutdown`] leaves the shell to the reaper.
pub struct Terminal {
    settings: Settings,
    shell: Option<Shell>,
    started: bool,
    next: u64,
    pgids: Vec<i32>,
    cwd: PathBuf,
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
        Ok(Terminal {
            settings,
            shell: None,
            started: false,
            next: 1,
            pgids: Vec::new(),
            cwd,
            warnings: Vec::new(),
        })
    }

    /// The process groups of every shell this terminal started (each lab command inherits one).
    pub fn process_groups(&self) -> &[i32] {
        &self.pgids
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

    fn write(&self, path: &Path, text: &str) -> Result<(), TerminalError> {
        fs::write(path, text).map_err(|source| TerminalError::File {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Starts a shell: the first one in the lab's environment and start folder, later ones
    /// restoring the state the previous one saved.
    fn spawn(&mut self) -> Result<(), TerminalError> {
        let dir = &self.settings.dir;
        let saved = dir.join("state");
        let fresh = dir.join("state.new");
        if fs::read_to_string(&fresh).is_ok_and(|s| s.ends_with(STATE_END)) {
            let _ = fs::rename(&fresh, &saved);
        }
        let mut command = match self.settings.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&self.settings.bash);
                command
            }
            None => Command::new(&self.settings.bash),
        };
        command
            .args(["--noprofile", "--norc", "-c", SCRIPT, "bash"])
            .arg(dir)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // A reader does not see this shell's own errors; they are kept for debugging.
            .stderr(
                File::options()
                    .create(true)
                    .append(true)
                    .open(dir.join("terminal.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            // Its own process group: a Ctrl+C typed at labbook does not reach the lab directly.
            .process_group(0);
        if self.started && saved.is_file() {
            command.env("LABBOOK_LAB", &self.settings.token);
        } else {
            if self.started {
                self.warnings.push(
                    "the lab's shell had to be replaced before it could save its state; \
                     variables and functions defined so far were lost"
                        .into(),
                );
                let _ = fs::remove_file(&saved);
            }
            command
                .envs(self.settings.env.iter().map(|(k, v)| (k, v)))
                .env("LABBOOK_LAB", &self.settings.token);
        }
        let cwd = [&self.cwd, &self.settings.cwd, dir]
            .into_iter()
            .find(|d| d.is_dir())
            .cloned()
            .unwrap_or_else(|| dir.clone());
        command.current_dir(cwd);
        let mut child = command.spawn().map_err(|source| TerminalError::Spawn {
            bash: self.settings.bash.clone(),
            source,
        })?;
        self.started = true;
        let pid = child.id() as i32;
        self.pgids.push(pid);
        let (tx, events) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(event) = parse_done(&line)
                        && tx.send(event).is_err()
                    {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        std::thread::spawn(move || {
            let code = match child.wait() {
                Ok(status) => status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(-1),
                Err(_) => -1,
            };
            let _ = tx.send(Event::Exited(code));
        });
        self.shell = Some(Shell { pid, stdin, events });
        Ok(())
    }

    fn send(&mut self, line: &str) -> Result<(), TerminalError> {
        for attempt in 0..2 {
            if self.shell.is_none() {
                self.spawn()?;
            }
            let Some(shell) = self.shell.as_mut() else {
                continue;
            };
            let result = match shell.stdin.as_mut() {
                Some(stdin) => stdin.write_all(line.as_bytes()).and_then(|_| stdin.flush()),
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
        if let Some(shell) = self.shell.take() {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match shell.events.recv_timeout(left) {
                    Ok(Event::Exited(_)) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(Event::Done { .. }) => {}
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
        self.write(
            &self.file(number, "sh"),
            &place_lines(block.code, block.lines),
        )?;
        let command = match block.stdin {
            Some(text) => {
                self.write(&self.file(number, "in"), text)?;
                format!("run {number} in\n")
            }
            None => format!("run {number}\n"),
        };
        self.send(&command)?;

        let deadline = later(started, block.limit);
        let mut tail = block.until.map(|_| Tail::new(self.file(number, "out")));
        let (ending, status) = loop {
            let tick = if tail.is_some() { 50 } else { 200 };
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(tick))
                .max(Duration::from_millis(1));
            match self.next_event(number, wait) {
                Some(Event::Done { status, .. }) => break (Ending::Finished, Some(status)),
                Some(Event::Exited(code)) => break (Ending::ShellExited(code), Some(code)),
                None => {}
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
        let (output, truncated) = self.output(number);
        let mut failures = self.failures(number);
        // bash stops reading a block at a syntax error; its ERR trap does not see that.
        failures.extend(syntax_error(&output));
        Ok(Outcome {
            number,
            output,
            truncated,
            status,
            failures,
            ending,
            duration: started.elapsed(),
            cwd: self.cwd.clone(),
        })
    }

    /// The next event about block `number` within `wait`; `Done` of older blocks is skipped.
    fn next_event(&mut self, number: u64, wait: Duration) -> Option<Event> {
        let shell = self.shell.as_ref()?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match shell.events.recv_timeout(left) {
                Ok(Event::Done {
                    number: n,
                    status,
                    cwd,
                }) if n == number => {
                    self.cwd = PathBuf::from(&cwd);
                    return Some(Event::Done {
                        number: n,
                        status,
                        cwd,
                    });
                }
                Ok(Event::Done { .. }) => {}
                Ok(Event::Exited(code)) => {
                    self.shell = None;
                    return Some(Event::Exited(code));
                }
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
        self.shell.is_none() || self.next_event(number, wait).is_some()
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

    /// The output of block `number` so far (a background step's keeps growing). bash names the
    /// block file in its messages (`/…/7.sh: line 66: conftest: command not found`); the reader
    /// would see `bash: line 66: …`, with the Markdown line.
    pub fn output(&self, number: u64) -> (String, bool) {
        let path = self.file(number, "out");
        let mut bytes = Vec::new();
        let truncated = match File::open(&path) {
            Ok(file) => {
                let _ = file.take(OUTPUT_LIMIT + 1).read_to_end(&mut bytes);
                bytes.len() as u64 > OUTPUT_LIMIT
            }
            Err(_) => false,
        };
        bytes.truncate(OUTPUT_LIMIT as usize);
        let text = String::from_utf8_lossy(&bytes);
        let block = format!("{}: ", self.file(number, "sh").display());
        (text.replace(&block, "bash: "), truncated)
    }

    fn failures(&self, number: u64) -> Vec<Failure> {
        let Ok(text) = fs::read_to_string(self.file(number, "fail")) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, '\t');
                Some(Failure {
                    status: fields.next()?.parse().ok()?,
                    line: fields.next()?.parse().ok()?,
                    command: fields.next().unwrap_or("").to_string(),
                })
            })
            .collect()
    }

    /// Ends the shell (end of input; it saves its state and exits), killing it if it does not.
    pub fn shutdown(&mut self) {
        if let Some(shell) = self.shell.as_mut() {
            shell.stdin = None;
        }
        self.forget_shell(GRACE);
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

/// The block file's text: each code line at its Markdown line, so that line numbers agree.
fn place_lines(code: &str, lines: &[usize]) -> String {
    let mut text = String::with_capacity(code.len() + 64);
    let mut written = 0;
    for (i, line) in code
        .strip_suffix('\n')
        .unwrap_or(code)
        .split('\n')
        .enumerate()
    {
        let target = lines.get(i).copied().unwrap_or(0).max(written + 1);
        // Never pad absurdly (a broken line map); the mapping is only a convenience.
        if target - written < 100_000 {
            while written + 1 < target {
                text.push('\n');
                written += 1;
            }
        }
        text.push_str(line);
        text.push('\n');
        written += 1;
    }
    text
}

/// A syntax error bash reported in a block's output (`bash: line 12: syntax error near …`).
fn syntax_error(output: &str) -> Option<Failure> {
    output.lines().find_map(|line| {
        let rest = line.strip_prefix("bash: line ")?;
        let (number, message) = rest.split_once(": ")?;
        let syntax = message.starts_with("syntax error") || message.starts_with("unexpected EOF");
        syntax.then(|| Failure {
            status: 2,
            line: number.parse().unwrap_or(0),
            command: message.to_string(),
        })
    })
}

fn parse_done(line: &str) -> Option<Event> {
    let rest = line.strip_prefix("done ")?;
    let mut fields = rest.splitn(3, ' ');
    Some(Event::Done {
        number: fields.next()?.parse().ok()?,
        status: fields.next()?.parse().ok()?,
        cwd: fields.next().unwrap_or("").to_string(),
    })
}

/// Follows a growing output file, for a watch's `until`.
struct Tail {
    path: PathBuf,
    file: Option<File>,
    bytes: Vec<u8>,
    searched: usize,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            file: None,
            bytes: Vec::new(),
            searched: 0,
        }
    }

    /// The text not searched yet, from the start of the last line already seen (a match may
    /// end on a line that was incomplete at the previous poll).
    fn poll(&mut self) -> String {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        if let Some(file) = self.file.as_mut()
            && self.bytes.len() < OUTPUT_LIMIT as usize
        {
            let _ = file.seek(SeekFrom::Start(self.bytes.len() as u64));
            let _ = file.take(1 << 20).read_to_end(&mut self.bytes);
        }
        let from = self.bytes[..self.searched]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        self.searched = self.bytes.len();
        String::from_utf8_lossy(&self.bytes[from..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lines_sit_at_their_markdown_lines() {
        let cases: [(&str, &[usize], &str); 4] = [
            ("a\nb", &[3, 4], "\n\na\nb\n"),
            ("a\nb\n", &[1, 5], "a\n\n\n\nb\n"),
            ("a\nb", &[], "a\nb\n"),
            ("a\nb", &[2, 2], "\na\nb\n"),
        ];
        for (code, lines, expected) in cases {
            assert_eq!(place_lines(code, lines), expected, "{code:?} {lines:?}");
        }
    }

    #[test]
    fn syntax_errors_are_failures() {
        let cases = [
            (
                "one\nbash: line 14: syntax error near unexpected token `)'\n",
                Some((14, "syntax error near unexpected token `)'")),
            ),
            (
                "bash: line 3: unexpected EOF while looking for matching `\"'",
                Some((3, "unexpected EOF while looking for matching `\"'")),
            ),
            ("bash: line 3: nope: command not found", None),
            ("syntax error", None),
        ];
        for (output, expected) in cases {
            let found = syntax_error(output).map(|f| (f.line, f.command));
            assert_eq!(found, expected.map(|(l, c)| (l, c.to_string())), "{output}");
        }
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
    fn done_lines_are_parsed() {
        let cases = [
            ("done 3 0 /tmp/a b", Some((3, 0, "/tmp/a b"))),
            ("done 12 127 /", Some((12, 127, "/"))),
            ("done x 0 /", None),
            ("hello", None),
        ];
        for (line, expected) in cases {
            let parsed = match parse_done(line) {
                Some(Event::Done {
                    number,
                    status,
                    cwd,
                }) => Some((number, status, cwd)),
                _ => None,
            };
            assert_eq!(
                parsed,
                expected.map(|(n, s, c)| (n, s, c.to_string())),
                "{line}"
            );
        }
    }
}
