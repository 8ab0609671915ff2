//! ShellCheck on every runnable block, in the dialect that will actually run it.
//!
//! All blocks of all labs are written to one temporary folder, one file per block, each starting
//! with a `# shellcheck shell=…` directive (bash for the reader's terminal, sh for a busybox or
//! dash session), and handed to as few `shellcheck --format=json1` processes as there are cores.
//! One file per block keeps a syntax error in one block from hiding the others; one process for
//! many files keeps the whole course well under a second. Findings are mapped back to Markdown
//! lines through the step's `code_lines`.
//!
//! Some findings are noise for tutorial code, which a reader pastes into an interactive terminal
//! one block at a time; they are left out (see [`EXCLUDED`] for each code and why). Only
//! ShellCheck's `error` and `warning` levels are kept; `info` and `style` (quoting advice such as
//! SC2086) would bury the real problems of a lab.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Diagnostic, Severity, ShellcheckMode};
use labbook::model::{Dialect, Lab};

/// Codes left out, and why.
pub const EXCLUDED: &[(&str, &str)] = &[
    (
        "SC2164",
        "`cd` without `|| exit`: a reader types commands one by one, and the harness reports a failing `cd` at its line anyway",
    ),
    (
        "SC2046",
        "unquoted `$(…)`: tutorial commands substitute single words such as a pod name",
    ),
    (
        "SC2034",
        "a variable set but unused: a later block uses it (each block is checked on its own)",
    ),
    (
        "SC2154",
        "a variable used but never set: an earlier block or the reader's environment sets it",
    ),
    (
        "SC2155",
        "`export X=$(…)` masks the exit code: idiomatic in courses, and the harness checks commands itself",
    ),
    (
        "SC1090",
        "a `source` of a non-constant path: ShellCheck cannot follow it, which says nothing about the lab",
    ),
    (
        "SC1091",
        "a `source` of a file ShellCheck was not given: the file lives in the course tree",
    ),
    (
        "SC1037",
        "`$150` read as `$1` followed by `50`: in tutorial text this is a heredoc body, reported once per heredoc by `heredoc-unquoted-dollar`",
    ),
    (
        "SC3009",
        "brace expansion in sh: reported by the built-in `sh-bashism` rule, with or without ShellCheck",
    ),
    ("SC3010", "`[[` in sh: reported by `sh-bashism`"),
    ("SC3030", "arrays in sh: reported by `sh-bashism`"),
    ("SC3054", "array references in sh: reported by `sh-bashism`"),
];

/// One block to check.
#[derive(Debug, Clone)]
pub struct Block {
    /// The chapter it comes from.
    pub path: PathBuf,
    /// The shell that will run it.
    pub dialect: Dialect,
    /// Its code.
    pub code: String,
    /// The Markdown line of each code line.
    pub code_lines: Vec<usize>,
}

/// The blocks of a lab that ShellCheck can check (it does not read zsh).
pub fn blocks_of(lab: &Lab) -> Vec<Block> {
    lab.steps
        .iter()
        .filter(|s| s.kind.runs() && s.dialect != Dialect::Zsh)
        .filter(|s| !s.code.trim().is_empty())
        .map(|s| Block {
            path: lab.path.clone(),
            dialect: s.dialect,
            // Placeholders read as plain words: the `placeholder` rule names them once, instead of
            // ShellCheck reporting `<your-namespace>` as two redirections.
            code: s.filled_code(|_| None),
            code_lines: s.code_lines.clone(),
        })
        .collect()
}

/// The outcome of a ShellCheck run.
#[derive(Debug)]
pub enum Run {
    /// ShellCheck ran; these are its findings.
    Done(Vec<Diagnostic>),
    /// It could not run; the note says why, once.
    Unavailable(String),
}

#[derive(Debug, Deserialize)]
struct Output {
    comments: Vec<Comment>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    file: String,
    line: usize,
    level: String,
    code: u32,
    message: String,
}

/// Finds a program in `PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The binary to run, or why there is none.
pub fn binary(mode: &ShellcheckMode) -> Result<PathBuf, String> {
    match mode {
        ShellcheckMode::Off => Err("ShellCheck is turned off (LABBOOK_SHELLCHECK=off)".into()),
        ShellcheckMode::Path(path) => Ok(path.clone()),
        ShellcheckMode::Auto => find_in_path("shellcheck")
            .ok_or_else(|| "ShellCheck is not installed (Debian package `shellcheck`)".to_string()),
    }
}

/// Checks every block, in as few ShellCheck processes as there are cores.
pub fn run(blocks: &[Block], mode: &ShellcheckMode) -> Run {
    let unavailable = |why: String| {
        Run::Unavailable(format!(
            "{why}; only the built-in shell checks ran (syntax errors are reported as `shell-syntax`)"
        ))
    };
    let binary = match binary(mode) {
        Ok(binary) => binary,
        Err(why) => return unavailable(why),
    };
    if blocks.is_empty() {
        return Run::Done(Vec::new());
    }
    let dir = match tempfile::Builder::new().prefix("labbook-lint-").tempdir() {
        Ok(dir) => dir,
        Err(e) => return unavailable(format!("failed to create a temporary folder: {e}")),
    };
    let mut files = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let file = dir.path().join(format!("{i}.sh"));
        let shell = match block.dialect {
            Dialect::Sh => "sh",
            _ => "bash",
        };
        let text = format!("# shellcheck shell={shell}\n{}\n", block.code);
        if let Err(e) = std::fs::write(&file, text) {
            return unavailable(format!("failed to write {}: {e}", file.display()));
        }
        files.push(file);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A process per 40 blocks at least, so that a small course pays for one start only.
    let processes = cores.min(files.len().div_ceil(40)).max(1);
    let chunk = files.len().div_ceil(processes);
    let results: Vec<Result<Vec<Comment>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|chunk| scope.spawn(|| invoke(&binary, chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a ShellCheck thread panicked".into()))
            })
            .collect()
    });
    let mut diagnostics = Vec::new();
    for result in results {
        let comments = match result {
            Ok(comments) => comments,
            Err(why) => return unavailable(why),
        };
        for comment in comments {
            if let Some(d) = to_diagnostic(&comment, blocks) {
                diagnostics.push(d);
            }
        }
    }
    Run::Done(diagnostics)
}

fn invoke(binary: &Path, files: &[PathBuf]) -> Result<Vec<Comment>, String> {
    let excluded: Vec<&str> = EXCLUDED.iter().map(|(code, _)| *code).collect();
    let output = std::process::Command::new(binary)
        .arg("--format=json1")
        .arg("--severity=warning")
        .arg(format!("--exclude={}", excluded.join(",")))
        .args(files)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("failed to run {}: {e}", binary.display()))?;
    // ShellCheck exits 1 when it found something; anything above is its own failure.
    if output.status.code().is_none_or(|c| c > 1) {
        return Err(format!(
            "{} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let parsed: Output = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("failed to read ShellCheck's JSON output: {e}"))?;
    Ok(parsed.comments)
}

fn to_diagnostic(comment: &Comment, blocks: &[Block]) -> Option<Diagnostic> {
    let index: usize = Path::new(&comment.file)
        .file_stem()?
        .to_str()?
        .parse()
        .ok()?;
    let block = blocks.get(index)?;
    let severity = match comment.level.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => return None,
    };
    // Line 1 of the file is the directive; line 2 is the block's first line.
    let code_line = comment.line.checked_sub(2)?;
    let line = block
        .code_lines
        .get(code_line)
        .or(block.code_lines.last())
        .copied()?;
    Some(Diagnostic {
        path: block.path.clone(),
        line,
        rule: format!("shellcheck/SC{}", comment.code),
        severity,
        message: format!("{} (ShellCheck, {})", comment.message, block.dialect),
        help: Some(format!(
            "see https://www.shellcheck.net/wiki/SC{}",
            comment.code
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_and_missing_binaries_are_unavailable() {
        let block = Block {
            path: PathBuf::from("t.md"),
            dialect: Dialect::Bash,
            code: "echo hi".into(),
            code_lines: vec![3],
        };
        assert!(matches!(
            run(std::slice::from_ref(&block), &ShellcheckMode::Off),
            Run::Unavailable(_)
        ));
        assert!(matches!(
            run(
                &[block],
                &ShellcheckMode::Path(PathBuf::from("/nonexistent/shellcheck"))
            ),
            Run::Unavailable(_)
        ));
    }

    #[test]
    fn comments_map_to_markdown_lines() {
        let blocks = [Block {
            path: PathBuf::from("t.md"),
            dialect: Dialect::Sh,
            code: "a\nb\nc".into(),
            code_lines: vec![10, 11, 12],
        }];
        let comment = Comment {
            file: "/tmp/x/0.sh".into(),
            line: 3,
            level: "warning".into(),
            code: 3014,
            message: "m".into(),
        };
        let d = to_diagnostic(&comment, &blocks).expect("mapped");
        assert_eq!((d.line, d.rule.as_str()), (11, "shellcheck/SC3014"));
        let info = Comment {
            level: "info".into(),
            ..comment
        };
        assert!(to_diagnostic(&info, &blocks).is_none());
    }
}
