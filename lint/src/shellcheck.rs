//! ShellCheck on every runnable block, in the dialect that will actually run it.
//!
//! All blocks of all labs are written to one temporary folder, one file per block, each starting
//! with a `# shellcheck shell=…` directive (bash for the reader's terminal, sh for a busybox or
//! dash session), and handed to as few `shellcheck --format=json1` processes as there are cores.
//! One file per block keeps a syntax error in one block from hiding the others; one process for
//! many files keeps the whole course well under a second. Findings are mapped back to Markdown
//! lines through the step's `code_lines`.
//!
//! Results are cached by block: the cache file (`$XDG_CACHE_HOME/labbook/shellcheck.json`, or
//! `~/.cache/labbook/`) maps each block's dialect and code to ShellCheck's comments on it, for one
//! ShellCheck version and set of flags. Only blocks not in it are checked, so a second lint of an
//! unchanged course starts no ShellCheck but `--version`. The key is the code itself, not a hash
//! of it: no collision can hand a block another block's findings.
//!
//! Some findings are noise for tutorial code, which a reader pastes into an interactive terminal
//! one block at a time; they are left out (see [`EXCLUDED`] for each code and why). Only
//! ShellCheck's `error` and `warning` levels are kept; `info` and `style` (quoting advice such as
//! SC2086) would bury the real problems of a lab.

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Comment {
    #[serde(default, skip_serializing)]
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
    let mut cache = Cache::load(&binary);
    let mut found: Vec<Option<Vec<Comment>>> = blocks
        .iter()
        .map(|block| cache.get(block).cloned())
        .collect();
    let todo: Vec<usize> = (0..blocks.len()).filter(|i| found[*i].is_none()).collect();
    if !todo.is_empty() {
        let comments = match check(blocks, &todo, &binary) {
            Ok(comments) => comments,
            Err(why) => return unavailable(why),
        };
        for &i in &todo {
            found[i] = Some(Vec::new());
        }
        for comment in comments {
            if let Some(list) = block_index(&comment)
                .and_then(|i| found.get_mut(i))
                .and_then(Option::as_mut)
            {
                list.push(comment);
            }
        }
        for &i in &todo {
            if let Some(comments) = &found[i] {
                cache.insert(&blocks[i], comments.clone());
            }
        }
        cache.save();
    }
    let diagnostics = found
        .iter()
        .enumerate()
        .flat_map(|(i, comments)| {
            comments
                .iter()
                .flatten()
                .filter_map(move |c| to_diagnostic_of(c, &blocks[i]))
        })
        .collect();
    Run::Done(diagnostics)
}

/// Runs ShellCheck on the blocks at `indices` (files named by block index), in as few processes
/// as there are cores.
fn check(blocks: &[Block], indices: &[usize], binary: &Path) -> Result<Vec<Comment>, String> {
    let dir = tempfile::Builder::new()
        .prefix("labbook-lint-")
        .tempdir()
        .map_err(|e| format!("failed to create a temporary folder: {e}"))?;
    let mut files = Vec::with_capacity(indices.len());
    for &i in indices {
        let block = &blocks[i];
        let file = dir.path().join(format!("{i}.sh"));
        let text = format!(
            "# shellcheck shell={}\n{}\n",
            shell_of(block.dialect),
            block.code
        );
        std::fs::write(&file, text)
            .map_err(|e| format!("failed to write {}: {e}", file.display()))?;
        files.push(file);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A process per 40 blocks at least, so that a small course pays for one start only.
    let processes = cores.min(files.len().div_ceil(40)).max(1);
    let chunk = files.len().div_ceil(processes);
    let results: Vec<Result<Vec<Comment>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|chunk| scope.spawn(|| invoke(binary, chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a ShellCheck thread panicked".into()))
            })
            .collect()
    });
    let mut comments = Vec::new();
    for result in results {
        comments.extend(result?);
    }
    Ok(comments)
}

fn shell_of(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sh => "sh",
        _ => "bash",
    }
}

/// The cache of ShellCheck's comments per block, for one ShellCheck version and flag set.
#[derive(Debug, Default, Deserialize, Serialize)]
struct Cache {
    /// What the comments depend on besides the block: ShellCheck's version and our flags.
    stamp: String,
    /// `<shell>\n<code>` to the comments (lines counted in the file, directive included).
    entries: HashMap<String, Vec<Comment>>,
    #[serde(skip)]
    path: Option<PathBuf>,
    #[serde(skip)]
    used: Vec<String>,
}

/// Entries kept beyond those of the current lint, so that the file cannot grow without end.
const CACHE_LIMIT: usize = 50_000;

impl Cache {
    /// The cache for `binary`, empty when there is none, it is unreadable or stale, or the
    /// version cannot be known (then nothing is saved either).
    fn load(binary: &Path) -> Cache {
        let Some(version) = version_of(binary) else {
            return Cache::default();
        };
        let excluded: Vec<&str> = EXCLUDED.iter().map(|(code, _)| *code).collect();
        let stamp = format!(
            "{version} --severity=warning --exclude={}",
            excluded.join(",")
        );
        let path = cache_dir().map(|dir| dir.join("labbook").join("shellcheck.json"));
        let mut cache = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<Cache>(&bytes).ok())
            .filter(|c| c.stamp == stamp)
            .unwrap_or_default();
        cache.stamp = stamp;
        cache.path = path;
        cache
    }

    fn key(block: &Block) -> String {
        format!("{}\n{}", shell_of(block.dialect), block.code)
    }

    fn get(&mut self, block: &Block) -> Option<&Vec<Comment>> {
        let key = Cache::key(block);
        if self.entries.contains_key(&key) {
            self.used.push(key.clone());
        }
        self.entries.get(&key)
    }

    fn insert(&mut self, block: &Block, comments: Vec<Comment>) {
        let key = Cache::key(block);
        self.used.push(key.clone());
        self.entries.insert(key, comments);
    }

    /// Writes the cache (a temporary file renamed over it: a concurrent lint reads the old or
    /// the new file, never half of one). Failing to is not an error: the next lint checks again.
    fn save(&mut self) {
        use std::io::Write as _;
        let Some(path) = self.path.clone() else {
            return;
        };
        if self.entries.len() > CACHE_LIMIT {
            let used: std::collections::HashSet<&String> = self.used.iter().collect();
            self.entries.retain(|k, _| used.contains(k));
        }
        let Some(dir) = path.parent() else { return };
        let Ok(json) = serde_json::to_vec(&*self) else {
            return;
        };
        let _ = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|mut file| {
                file.write_all(&json)?;
                file.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
    }
}

/// Where caches go: `$XDG_CACHE_HOME`, else `~/.cache`.
fn cache_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        })
}

/// ShellCheck's version line (`version: 0.10.0`), or `None` when it does not say.
fn version_of(binary: &Path) -> Option<String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| format!("{} {}", binary.display(), v.trim()))
}

fn block_index(comment: &Comment) -> Option<usize> {
    Path::new(&comment.file).file_stem()?.to_str()?.parse().ok()
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

#[cfg(test)]
fn to_diagnostic(comment: &Comment, blocks: &[Block]) -> Option<Diagnostic> {
    to_diagnostic_of(comment, blocks.get(block_index(comment)?)?)
}

fn to_diagnostic_of(comment: &Comment, block: &Block) -> Option<Diagnostic> {
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
