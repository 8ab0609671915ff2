//! Comparing a step's redacted output with its accepted snapshot, or accepting it.
//!
//! Names and the file format come from [`labbook::snapshot`], which the preprocessor also reads.
//! An accepted `.snap` is only ever written with `--accept`. Any other run that differs leaves it
//! byte for byte as it was and writes a pending `.snap.new` beside it, in insta's format, so that
//! `cargo insta review` (or `--accept`) can take it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use labbook::snapshot::{self, Header};
use labbook::{Course, Lab, Step};

/// A snapshot file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("failed to write snapshot {}", path.display())]
pub struct SnapshotError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// The result of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Same as the accepted snapshot.
    Matched,
    /// `--accept`: the accepted snapshot now holds this output.
    Accepted {
        /// The accepted file.
        path: PathBuf,
        /// What `--accept` did to it.
        change: Change,
    },
    /// Different from the accepted snapshot; a pending snapshot was written.
    Differs {
        /// The accepted file (untouched).
        path: PathBuf,
        /// The pending file.
        pending: PathBuf,
        /// A unified diff from accepted to new, headed by `chapter.md:LINE`.
        diff: String,
    },
    /// No accepted snapshot yet; a pending snapshot was written.
    Missing {
        /// Where the accepted file would be.
        path: PathBuf,
        /// The pending file.
        pending: PathBuf,
    },
}

/// What `--accept` did to an accepted snapshot; only a file whose content changed is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// There was none.
    Created,
    /// Its content changed.
    Updated,
    /// Its content was already this output: the file was left as it was, header included.
    Unchanged,
}

/// Compares `content` with the step's accepted snapshot, or accepts it.
pub fn check(
    course: &Course,
    lab: &Lab,
    step: &Step,
    content: &str,
    accept: bool,
) -> Result<Verdict, SnapshotError> {
    let path = snapshot::path(course, lab, step);
    let pending = snapshot::pending_path(&path);
    let mut header = Header {
        source: snapshot::source_name(course, lab),
        assertion_line: None,
        expression: step.code.lines().next().unwrap_or("").to_string(),
    };
    let rendered = snapshot::render(&header, content);
    let accepted = fs::read_to_string(&path).ok();
    let write = |file: &Path, text: &str| -> Result<(), SnapshotError> {
        let error = |source| SnapshotError {
            path: file.to_path_buf(),
            source,
        };
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir).map_err(error)?;
        }
        fs::write(file, text).map_err(error)
    };
    // Our own pending file is stale once the snapshot matches or is accepted.
    let remove_pending = || {
        let _ = fs::remove_file(&pending);
    };
    if accept {
        let change = match &accepted {
            None => Change::Created,
            Some(text) if snapshot::content(text) == snapshot::content(&rendered) => {
                Change::Unchanged
            }
            Some(_) => Change::Updated,
        };
        if change != Change::Unchanged {
            write(&path, &rendered)?;
        }
        remove_pending();
        return Ok(Verdict::Accepted { path, change });
    }
    // A pending snapshot says where its block is, as insta's do.
    header.assertion_line = Some(step.span.line);
    let rendered = snapshot::render(&header, content);
    let Some(accepted) = accepted else {
        write(&pending, &rendered)?;
        return Ok(Verdict::Missing { path, pending });
    };
    let old = snapshot::content(&accepted);
    let new = snapshot::content(&rendered);
    if old == new {
        remove_pending();
        return Ok(Verdict::Matched);
    }
    write(&pending, &rendered)?;
    let diff = diff(
        &format!("{}:{}", lab.path.display(), step.span.line),
        &old,
        &new,
    );
    Ok(Verdict::Differs {
        path,
        pending,
        diff,
    })
}

/// A unified diff of two snapshot contents, headed by where the block is.
pub fn diff(location: &str, old: &str, new: &str) -> String {
    format!("{location}\n{}", unified(Some(old), new))
}

/// A unified diff from the accepted content (`None`: there is none yet) to the new one.
pub fn unified(old: Option<&str>, new: &str) -> String {
    let old = old.map(|o| format!("{o}\n")).unwrap_or_default();
    let new = format!("{new}\n");
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("accepted", "new")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_the_block_and_show_both_sides() {
        let diff = diff("book/src/m.md:12", "a\nb\nc", "a\nB\nc");
        assert!(diff.starts_with("book/src/m.md:12\n--- accepted\n+++ new\n"));
        assert!(diff.contains("-b\n+B\n"), "{diff}");
    }
}
