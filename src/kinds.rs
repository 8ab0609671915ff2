//! Layer 1 of the model: the kinds of steps and the shells that run them.
//!
//! They come first because everything else names them: annotations (`kind=`, `shell=`), the
//! model, inference, the plan and the report.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a runnable block is for, and so how the harness runs it.
///
/// The names (`kebab-case`) are used in JSON, in the HTML (`data-kind`) and in the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Prepares the environment (cluster, mesh); a failure stops the lab.
    Setup,
    /// An ordinary step, run in order.
    Run,
    /// A check under a *Verify* heading: run, then assert the output.
    Verify,
    /// A heredoc that writes a file: run, then snapshot what was written.
    WriteFile,
    /// Opens a shell in a pod or container; the following `session-input` blocks are its stdin.
    OpenSession,
    /// Typed inside the shell opened by an earlier `open-session` step.
    SessionInput,
    /// Never ends by itself; stopped with SIGINT, and being stopped is success.
    Watch,
    /// Starts something that keeps running until the lab ends.
    Background,
    /// Its cue says it is optional: a failure is reported but does not fail the lab.
    Optional,
    /// Runs only after a failure; its output goes into the report.
    Troubleshoot,
    /// Always runs at the end, even after a failure or an interrupt.
    Cleanup,
    /// Not part of the lab; never runs.
    Skip,
    /// What the step before it prints ("Output:", a kubectl table): shown, never run.
    Output,
}

impl StepKind {
    /// Every kind, in the order of the design's table.
    pub const ALL: [StepKind; 13] = [
        StepKind::Setup,
        StepKind::Run,
        StepKind::Verify,
        StepKind::WriteFile,
        StepKind::OpenSession,
        StepKind::SessionInput,
        StepKind::Watch,
        StepKind::Background,
        StepKind::Optional,
        StepKind::Troubleshoot,
        StepKind::Cleanup,
        StepKind::Skip,
        StepKind::Output,
    ];

    /// The kind's name as used in JSON, HTML and annotations.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Setup => "setup",
            StepKind::Run => "run",
            StepKind::Verify => "verify",
            StepKind::WriteFile => "write-file",
            StepKind::OpenSession => "open-session",
            StepKind::SessionInput => "session-input",
            StepKind::Watch => "watch",
            StepKind::Background => "background",
            StepKind::Optional => "optional",
            StepKind::Troubleshoot => "troubleshoot",
            StepKind::Cleanup => "cleanup",
            StepKind::Skip => "skip",
            StepKind::Output => "output",
        }
    }

    /// Looks a kind up by its name.
    pub fn from_name(name: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the harness runs this kind in the lab's main sequence.
    pub fn in_main_sequence(self) -> bool {
        !matches!(
            self,
            StepKind::Troubleshoot | StepKind::Cleanup | StepKind::Skip | StepKind::Output
        )
    }

    /// Whether blocks of this kind are ever run (`skip` and `output` are only shown). The one
    /// place that decides it: a chapter with one such step is a lab, and banners, reports,
    /// summaries and JUnit suites go to labs only.
    pub fn runs(self) -> bool {
        !matches!(self, StepKind::Skip | StepKind::Output)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The shell that will actually run a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// GNU bash: the reader's own terminal, and `bash` sessions.
    Bash,
    /// A POSIX `sh` (busybox `ash`, `dash`): no brace expansion, no `[[`, no arrays.
    Sh,
    /// zsh.
    Zsh,
}

impl Dialect {
    /// The dialect's name, as in `shell=` annotations.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Bash => "bash",
            Dialect::Sh => "sh",
            Dialect::Zsh => "zsh",
        }
    }

    /// Looks a dialect up by a shell name or path (`sh`, `/bin/ash`, `bash`, ...).
    pub fn from_shell(shell: &str) -> Option<Dialect> {
        let base = shell.rsplit('/').next().unwrap_or(shell);
        match base {
            "bash" => Some(Dialect::Bash),
            "sh" | "ash" | "dash" | "busybox" => Some(Dialect::Sh),
            "zsh" => Some(Dialect::Zsh),
            _ => None,
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
