//! The sandbox: a fresh copy of the course tree for each lab, so that heredoc files, `cd` and
//! cleanup `rm` never touch the author's checkout.
//!
//! Version control, build output and dependency folders are left out: labs do not read them and
//! they can be large. Permissions are kept (a course's scripts and test doubles stay executable)
//! and symbolic links are copied as links.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Errors while preparing a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A file or folder could not be copied.
    #[error("failed to copy {} into the sandbox", path.display())]
    Copy {
        /// The source path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The folder a lab starts in is not inside the copied tree.
    #[error(
        "failed to find the start folder {} inside the course at {} (check start-dir in book.toml)",
        start.display(),
        root.display()
    )]
    Outside {
        /// The start folder.
        start: PathBuf,
        /// The course root.
        root: PathBuf,
    },
}

/// Folder names never copied.
const SKIPPED_NAMES: &[&str] = &[".git", "target", "node_modules"];

/// Copies `root` to `to`, leaving out [`SKIPPED_NAMES`], mdBook's build folder (`book/` beside
/// `book.toml`) and every path in `exclude` (the run and report folders when they sit inside
/// the course).
pub fn copy_course(root: &Path, to: &Path, exclude: &[PathBuf]) -> Result<(), SandboxError> {
    let root = absolute(root);
    let mut exclude: Vec<PathBuf> = exclude.iter().map(|p| absolute(p)).collect();
    if root.join("book.toml").is_file() {
        exclude.push(root.join("book"));
    }
    copy_dir(&root, to, &exclude)
}

fn copy_dir(from: &Path, to: &Path, exclude: &[PathBuf]) -> Result<(), SandboxError> {
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::Copy { path, source }
    };
    fs::create_dir_all(to).map_err(error(from))?;
    for entry in fs::read_dir(from).map_err(error(from))? {
        let entry = entry.map_err(error(from))?;
        let path = entry.path();
        let name = entry.file_name();
        if SKIPPED_NAMES.iter().any(|s| name == *s) || exclude.contains(&path) {
            continue;
        }
        let target = to.join(&name);
        let kind = entry.file_type().map_err(error(&path))?;
        if kind.is_symlink() {
            let link = fs::read_link(&path).map_err(error(&path))?;
            std::os::unix::fs::symlink(link, &target).map_err(error(&path))?;
        } else if kind.is_dir() {
            copy_dir(&path, &target, exclude)?;
        } else if kind.is_file() {
            fs::copy(&path, &target).map_err(error(&path))?;
        }
        // Sockets, FIFOs and devices are not course content.
    }
    Ok(())
}

/// Where `path` (inside the course at `root`) is in the sandbox copy at `sandbox`.
pub fn map_into(root: &Path, sandbox: &Path, path: &Path) -> Result<PathBuf, SandboxError> {
    let (root_abs, path_abs) = (absolute(root), absolute(path));
    match path_abs.strip_prefix(&root_abs) {
        Ok(relative) => Ok(sandbox.join(relative)),
        Err(_) => Err(SandboxError::Outside {
            start: path.to_path_buf(),
            root: root.to_path_buf(),
        }),
    }
}

/// An absolute, lexically normalised path (`..` resolved without following links), so that paths
/// named differently by the user and by the book compare equal.
pub fn absolute(path: &Path) -> PathBuf {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_folders_map_into_the_sandbox() {
        let cases = [
            ("course", "course/src/m1", Some("/sb/src/m1")),
            ("course", "course", Some("/sb")),
            ("course/src/..", "course/src/m1/../m2", Some("/sb/src/m2")),
            ("course", "elsewhere", None),
        ];
        for (root, start, expected) in cases {
            let mapped = map_into(Path::new(root), Path::new("/sb"), Path::new(start)).ok();
            assert_eq!(mapped, expected.map(PathBuf::from), "{root} {start}");
        }
    }

    #[test]
    fn copies_keep_modes_and_links_and_skip_build_output() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = tmp.path().join("course");
        for dir in ["src", "tools", ".git", "target", "book", "out"] {
            fs::create_dir_all(course.join(dir)).expect("mkdir");
        }
        fs::write(course.join("book.toml"), "[book]\n").expect("write");
        fs::write(course.join("src/lab.md"), "# Lab\n").expect("write");
        fs::write(course.join("tools/kubectl"), "#!/bin/sh\n").expect("write");
        fs::set_permissions(
            course.join("tools/kubectl"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("src/lab.md", course.join("link.md")).expect("symlink");
        fs::write(course.join("book/index.html"), "built").expect("write");
        fs::write(course.join("out/report.json"), "{}").expect("write");

        let sandbox = tmp.path().join("sandbox");
        copy_course(&course, &sandbox, &[course.join("out")]).expect("copy");
        assert!(sandbox.join("src/lab.md").is_file());
        let mode = fs::metadata(sandbox.join("tools/kubectl"))
            .expect("copied")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_link(sandbox.join("link.md")).expect("link"),
            PathBuf::from("src/lab.md")
        );
        for skipped in [".git", "target", "book", "out"] {
            assert!(!sandbox.join(skipped).exists(), "{skipped} was copied");
        }
    }
}
