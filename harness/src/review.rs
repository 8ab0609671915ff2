//! `labbook review [PATH]`: the pending snapshots (`.snap.new`) one by one, with a diff against
//! the accepted one and the chapter and line of the block; accept, reject or skip each.
//!
//! `cargo insta review` does the same inside a Cargo workspace, and the files are compatible both
//! ways; a course repository has no `Cargo.toml`, so labbook brings its own. Answers are read one
//! line at a time from stdin (`a`, `r`, `s`, `q`), so scripts and tests can drive it.

use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context;
use labbook::snapshot;

use crate::cli::EXIT_OK;

/// How to review pending snapshots, for failure messages: `cargo insta review` works inside a
/// Cargo workspace (and `labbook review` everywhere), so a course inside one names both.
pub fn hint(course_root: &Path) -> &'static str {
    let root = std::path::absolute(course_root).unwrap_or_else(|_| course_root.to_path_buf());
    if root.ancestors().any(|dir| dir.join("Cargo.toml").is_file()) {
        "`cargo insta review` (or `labbook review`)"
    } else {
        "`labbook review`"
    }
}

/// What `labbook review` does with every pending snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ask for each one.
    Ask,
    /// Accept them all.
    AcceptAll,
    /// Reject (delete) them all.
    RejectAll,
    /// Only list them.
    List,
}

/// One pending snapshot.
struct Pending {
    pending: PathBuf,
    accepted: PathBuf,
    header: snapshot::Header,
    new: String,
    old: Option<String>,
}

impl Pending {
    fn read(pending: PathBuf) -> anyhow::Result<Pending> {
        let text = std::fs::read_to_string(&pending)
            .with_context(|| format!("failed to read {}", pending.display()))?;
        let accepted = pending.with_extension("");
        let old = std::fs::read_to_string(&accepted)
            .ok()
            .map(|t| snapshot::content(&t));
        Ok(Pending {
            header: snapshot::header(&text),
            new: snapshot::content(&text),
            pending,
            accepted,
            old,
        })
    }

    /// `chapter.md:LINE`, from the header insta and labbook both write.
    fn location(&self) -> String {
        match self.header.assertion_line {
            Some(line) => format!("{}:{line}", self.header.source),
            None => self.header.source.clone(),
        }
    }

    /// Writes the accepted snapshot as insta would (no `assertion_line`) and removes the pending.
    fn accept(&self) -> anyhow::Result<()> {
        let header = snapshot::Header {
            assertion_line: None,
            ..self.header.clone()
        };
        let text = snapshot::render(&header, &self.new);
        let dir = self.accepted.parent().unwrap_or(Path::new("."));
        // Write beside and rename, so an interrupted review never leaves half a snapshot.
        let mut temporary = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("failed to write into {}", dir.display()))?;
        temporary
            .write_all(text.as_bytes())
            .with_context(|| format!("failed to write {}", self.accepted.display()))?;
        temporary
            .persist(&self.accepted)
            .with_context(|| format!("failed to write {}", self.accepted.display()))?;
        self.reject()
    }

    fn reject(&self) -> anyhow::Result<()> {
        std::fs::remove_file(&self.pending)
            .with_context(|| format!("failed to remove {}", self.pending.display()))
    }
}

/// Finds the pending snapshots under `root`, in path order; hidden folders and `target/` are not
/// searched.
fn find(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if root.is_file() {
        if root.to_string_lossy().ends_with(".snap.new") {
            found.push(root.to_path_buf());
        }
        return Ok(found);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    stack.push(entry.path());
                }
            } else if kind.is_file() && name.ends_with(".snap.new") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A unified diff of the accepted and the new content, coloured when asked.
fn diff(old: Option<&str>, new: &str, colour: bool) -> String {
    crate::color::paint_diffs(&crate::engine::snapshots::unified(old, new), colour)
}

/// Runs `labbook review`; `colour`: whether its diffs on stdout are coloured, as
/// [`crate::color::enabled`] decided.
pub fn run(path: &Path, mode: Mode, colour: bool) -> anyhow::Result<u8> {
    if !path.exists() {
        anyhow::bail!(
            "failed to review {}: no such file or folder",
            path.display()
        );
    }
    let pending = find(path)?;
    let mut out = String::new();
    if pending.is_empty() {
        eprintln!(
            "labbook review: no pending snapshots under {}",
            path.display()
        );
        return Ok(EXIT_OK);
    }
    if mode == Mode::List {
        for file in &pending {
            let snap = Pending::read(file.clone())?;
            out.push_str(&format!("{}\t{}\n", snap.location(), file.display()));
        }
        crate::cli::print_stdout(&out)?;
        eprintln!("labbook review: {} pending snapshot(s)", pending.len());
        return Ok(EXIT_OK);
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let (mut accepted, mut rejected, mut skipped) = (0, 0, 0);
    let total = pending.len();
    for (n, file) in pending.into_iter().enumerate() {
        let snap = Pending::read(file)?;
        let answer = match mode {
            Mode::AcceptAll => 'a',
            Mode::RejectAll => 'r',
            // `List` returned before the loop.
            Mode::Ask | Mode::List => {
                let title = format!(
                    "Snapshot {}/{total}: {} ({})",
                    n + 1,
                    snap.location(),
                    snap.pending.display()
                );
                let mut text = format!(
                    "{}\n",
                    crate::color::paint(&title, crate::color::Style::Bold, colour)
                );
                if !snap.header.expression.is_empty() {
                    text.push_str(&format!("Expression: {}\n", snap.header.expression));
                }
                if snap.old.is_none() {
                    text.push_str("New snapshot (nothing accepted yet)\n");
                }
                text.push_str(&diff(snap.old.as_deref(), &snap.new, colour));
                text.push_str("  a accept   r reject   s skip   q quit > ");
                crate::cli::print_stdout(&text)?;
                match lines.next() {
                    Some(line) => {
                        let line = line.context("failed to read the answer from stdin")?;
                        let answer = line.trim().chars().next().unwrap_or('s');
                        crate::cli::print_stdout("\n")?;
                        answer.to_ascii_lowercase()
                    }
                    // No more answers: leave the rest pending.
                    None => 'q',
                }
            }
        };
        match answer {
            'a' => {
                snap.accept()?;
                accepted += 1;
            }
            'r' => {
                snap.reject()?;
                rejected += 1;
            }
            'q' => {
                skipped += total - n;
                break;
            }
            _ => skipped += 1,
        }
    }
    eprintln!(
        "labbook review: {accepted} accepted, {rejected} rejected, {skipped} skipped{}",
        if skipped > 0 { " (still pending)" } else { "" }
    );
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_coloured_only_when_asked() {
        let plain = diff(Some("a\nb"), "a\nc", false);
        assert!(plain.contains("-b\n+c\n"), "{plain}");
        assert!(!plain.contains('\x1b'));
        let coloured = diff(Some("a\nb"), "a\nc", true);
        assert!(
            coloured.contains("\x1b[31m-b\x1b[0m\n\x1b[32m+c\x1b[0m\n"),
            "{coloured}"
        );
        let created = diff(None, "x", false);
        assert!(created.contains("+x\n"), "{created}");
    }
}
