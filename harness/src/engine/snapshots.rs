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

/// A snapshot file that could not be read, locked or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file or its folder could not be written.
    #[error("failed to write snapshot {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The snapshots folder could not be locked.
    #[error("failed to lock the snapshots folder {}", path.display())]
    Lock {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The accepted snapshot exists but cannot be used.
    #[error(transparent)]
    Read(#[from] snapshot::SnapshotReadError),
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
    // The header only matters in a file labbook writes: its `source` costs a walk up the
    // folders for `.git`, which a comparison that matches does not need.
    let header = |assertion_line| Header {
        source: snapshot::source_name(course, lab),
        assertion_line,
        expression: step.code.lines().next().unwrap_or("").to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let write_error = |file: &Path| {
        let path = file.to_path_buf();
        move |source| SnapshotError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(write_error(dir))?;
    // One reader-writer at a time per snapshots folder: two runs accepting at once each write
    // whole files, and a comparison never reads a file half replaced.
    let lock = fs::File::open(dir).map_err(|source| SnapshotError::Lock {
        path: dir.to_path_buf(),
        source,
    })?;
    lock.lock().map_err(|source| SnapshotError::Lock {
        path: dir.to_path_buf(),
        source,
    })?;
    // Replaced by rename, never written through: a `.snap.new` that is a link to the accepted
    // file must not change it.
    let write = |file: &Path, text: &str| -> Result<(), SnapshotError> {
        super::atomic::write(file, text.as_bytes()).map_err(write_error(file))
    };
    // Our own pending file is stale once the snapshot matches or is accepted.
    let remove_pending = || {
        let _ = fs::remove_file(&pending);
    };
    if accept {
        let rendered = snapshot::render(&header(None), content);
        // An unreadable accepted file is replaced: accepting is what --accept is for.
        let change = match snapshot::read(&path) {
            Ok(None) => Change::Created,
            Ok(Some(text)) if snapshot::content(&text) == snapshot::content(&rendered) => {
                Change::Unchanged
            }
            Ok(Some(_)) | Err(_) => Change::Updated,
        };
        if change != Change::Unchanged {
            write(&path, &rendered)?;
        }
        remove_pending();
        return Ok(Verdict::Accepted { path, change });
    }
    // A pending snapshot says where its block is, as insta's do.
    let rendered = || snapshot::render(&header(Some(step.span.line)), content);
    let Some(accepted) = snapshot::read(&path)? else {
        write(&pending, &rendered())?;
        return Ok(Verdict::Missing { path, pending });
    };
    let old = snapshot::content(&accepted);
    // Compared without the header (`content` leaves it out).
    let new = snapshot::content(&snapshot::render(&Header::default(), content));
    if old == new {
        remove_pending();
        return Ok(Verdict::Matched);
    }
    write(&pending, &rendered())?;
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
