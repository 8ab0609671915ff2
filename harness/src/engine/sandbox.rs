//! The sandbox: a copy of the course tree for each lab, so that heredoc files, `cd` and cleanup
//! `rm` never touch the author's checkout.
//!
//! Version control, build output, dependency folders and `snapshots/` are left out: labs do not
//! read them and they can be large. Permissions are kept (a course's scripts and test doubles stay
//! executable). Symbolic links are copied as links; an absolute link into the course is pointed
//! at the same place in the copy, so that writing through it stays in the sandbox (a link out of
//! the course is kept as it is: confinement stops writes through it). Files are copied
//! sparse-aware (holes stay holes) and the copy stops at Ctrl+C.
//!
//! A copy costs the size of the course, so a run does not copy it once per lab: a [`Pool`] keeps
//! the trees of finished labs and [`Tree::reset`] brings one back to the course's state by
//! re-copying only what the lab changed. Every entry's inode and change time (which no process can
//! set back) are recorded after the copy; an entry whose record differs, or that is new, is
//! replaced or removed. Resetting costs one `lstat` per entry, not a copy of it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

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
    /// Ctrl+C stopped the copy.
    #[error("failed to copy the course into the sandbox: interrupted")]
    Interrupted,
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
const SKIPPED_NAMES: &[&str] = &[".git", "target", "node_modules", "snapshots"];

/// What a copy leaves out and where it comes from.
#[derive(Debug, Clone)]
pub struct Source {
    root: PathBuf,
    exclude: Vec<PathBuf>,
}

impl Source {
    /// The course at `root`, leaving out [`SKIPPED_NAMES`], mdBook's build folder (`book/`
    /// beside `book.toml`) and every path in `exclude` (the run and report folders when they sit
    /// inside the course).
    pub fn new(root: &Path, exclude: &[PathBuf]) -> Source {
        let root = absolute(root);
        let mut exclude: Vec<PathBuf> = exclude.iter().map(|p| absolute(p)).collect();
        if root.join("book.toml").is_file() {
            exclude.push(root.join("book"));
        }
        Source { root, exclude }
    }

    fn skipped(&self, path: &Path, name: &std::ffi::OsStr) -> bool {
        SKIPPED_NAMES.iter().any(|s| name == *s) || self.exclude.iter().any(|e| e == path)
    }
}

/// The record of one copied entry: what [`Tree::reset`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    ctime: i64,
    ctime_nsec: i64,
    mode: u32,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            ino: meta.ino(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
            mode: meta.mode(),
        }
    }
}

/// A copy of a course and the record of its pristine state.
#[derive(Debug)]
pub struct Tree {
    /// Where the copy is.
    pub path: PathBuf,
    stamps: HashMap<PathBuf, Stamp>,
}

impl Tree {
    /// Copies the course to `to` (which must not exist yet).
    pub fn create(
        source: &Source,
        to: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Tree, SandboxError> {
        let mut tree = Tree {
            path: to.to_path_buf(),
            stamps: HashMap::new(),
        };
        tree.copy_dir(source, &source.root, to, cancelled)?;
        Ok(tree)
    }

    /// Brings the tree back to the course's state: removes what the lab added, re-copies what it
    /// changed or removed. `Err` leaves the tree in an unknown state: do not reuse it.
    pub fn reset(
        &mut self,
        source: &Source,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), SandboxError> {
        let mut seen = std::collections::HashSet::new();
        seen.insert(PathBuf::new());
        let root = self.path.clone();
        self.sweep(&root, &mut seen)?;
        let mut missing: Vec<PathBuf> = self
            .stamps
            .keys()
            .filter(|p| !seen.contains(*p))
            .cloned()
            .collect();
        // Parents first: copying a folder brings its entries along.
        missing.sort();
        let mut copied: Vec<PathBuf> = Vec::new();
        for relative in missing {
            if copied.iter().any(|c| relative.starts_with(c)) {
                continue;
            }
            if cancelled() {
                return Err(SandboxError::Interrupted);
            }
            let from = source.root.join(&relative);
            let to = self.path.join(&relative);
            self.copy_entry(source, &from, &to, cancelled)?;
            copied.push(relative);
        }
        Ok(())
    }

    /// Walks the copy: keeps entries whose stamp is unchanged, removes the rest (changed entries
    /// are then re-copied as missing).
    fn sweep(
        &mut self,
        dir: &Path,
        seen: &mut std::collections::HashSet<PathBuf>,
    ) -> Result<(), SandboxError> {
        let error = copy_error;
        for entry in fs::read_dir(dir).map_err(error(dir))? {
            let entry = entry.map_err(error(dir))?;
            let path = entry.path();
            let relative = path
                .strip_prefix(&self.path)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            // Relative to the open folder (no walk of the whole path per entry); not followed.
            let meta = entry.metadata().map_err(error(&path))?;
            match self.stamps.get(&relative) {
                Some(stamp) if meta.is_dir() && stamp.ino == meta.ino() => {
                    // Entries added or removed change a folder's ctime; its own mode is all
                    // there is to restore, its entries are checked one by one.
                    if stamp.mode != meta.mode() {
                        fs::set_permissions(&path, fs::Permissions::from_mode(stamp.mode))
                            .map_err(error(&path))?;
                    }
                    seen.insert(relative);
                    self.sweep(&path, seen)?;
                }
                Some(stamp) if !meta.is_dir() && *stamp == Stamp::of(&meta) => {
                    seen.insert(relative);
                }
                _ => {
                    if meta.is_dir() {
                        fs::remove_dir_all(&path).map_err(error(&path))?;
                    } else {
                        fs::remove_file(&path).map_err(error(&path))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn copy_dir(
        &mut self,
        source: &Source,
        from: &Path,
        to: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), SandboxError> {
        let error = copy_error;
        fs::create_dir(to).map_err(error(from))?;
        for entry in fs::read_dir(from).map_err(error(from))? {
            if cancelled() {
                return Err(SandboxError::Interrupted);
            }
            let entry = entry.map_err(error(from))?;
            let path = entry.path();
            if source.skipped(&path, &entry.file_name()) {
                continue;
            }
            self.copy_entry(source, &path, &to.join(entry.file_name()), cancelled)?;
        }
        let mode = fs::metadata(from).map_err(error(from))?.permissions();
        fs::set_permissions(to, mode).map_err(error(from))?;
        self.stamp(to)
    }

    fn copy_entry(
        &mut self,
        source: &Source,
        from: &Path,
        to: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), SandboxError> {
        let error = copy_error;
        let Ok(kind) = fs::symlink_metadata(from).map(|m| m.file_type()) else {
            // Gone from the checkout since: nothing to copy.
            return Ok(());
        };
        if kind.is_symlink() {
            let link = fs::read_link(from).map_err(error(from))?;
            let link = match link.strip_prefix(&source.root) {
                Ok(inside) if link.is_absolute() => self.path.join(inside),
                _ => link,
            };
            std::os::unix::fs::symlink(link, to).map_err(error(from))?;
        } else if kind.is_dir() {
            return self.copy_dir(source, from, to, cancelled);
        } else if kind.is_file() {
            copy_file(from, to, cancelled).map_err(|e| match e {
                CopyError::Interrupted => SandboxError::Interrupted,
                CopyError::Io(source) => SandboxError::Copy {
                    path: from.to_path_buf(),
                    source,
                },
            })?;
        } else {
            // Sockets, FIFOs and devices are not course content.
            return Ok(());
        }
        self.stamp(to)
    }

    fn stamp(&mut self, copied: &Path) -> Result<(), SandboxError> {
        let meta = fs::symlink_metadata(copied).map_err(|source| SandboxError::Copy {
            path: copied.to_path_buf(),
            source,
        })?;
        let relative = copied
            .strip_prefix(&self.path)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.stamps.insert(relative, Stamp::of(&meta));
        Ok(())
    }
}

/// Maps an OS error on `path` to [`SandboxError::Copy`].
fn copy_error(path: &Path) -> impl FnOnce(io::Error) -> SandboxError + use<> {
    let path = path.to_path_buf();
    move |source| SandboxError::Copy { path, source }
}

/// The trees of labs that finished, ready to be reset for the next lab.
#[derive(Debug, Default)]
pub struct Pool {
    trees: Mutex<Vec<Tree>>,
}

/// Trees made by this process: names them, so that the pools of two courses sharing a run folder
/// (`labbook run a.md b.md`, two chapters of one folder) never pick the same name.
static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Pool {
    /// A tree holding the course as it is in `source`: a finished lab's tree, reset, or a new
    /// copy under `run_root` when there is none (or resetting failed).
    pub fn take(
        &self,
        source: &Source,
        run_root: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Tree, SandboxError> {
        let reusable = self.trees.lock().ok().and_then(|mut trees| trees.pop());
        if let Some(mut tree) = reusable {
            match tree.reset(source, cancelled) {
                Ok(()) => return Ok(tree),
                Err(SandboxError::Interrupted) => return Err(SandboxError::Interrupted),
                // A tree the lab made unresettable (a folder it cannot read) is left as it is.
                Err(_) => {}
            }
        }
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Tree::create(source, &run_root.join(format!("tree-{}", n + 1)), cancelled)
    }

    /// Gives a finished lab's tree back.
    pub fn give(&self, tree: Tree) {
        if let Ok(mut trees) = self.trees.lock() {
            trees.push(tree);
        }
    }
}

enum CopyError {
    Interrupted,
    Io(io::Error),
}

impl From<io::Error> for CopyError {
    fn from(e: io::Error) -> Self {
        CopyError::Io(e)
    }
}

/// Copies a regular file's data regions only (holes stay holes, found with `SEEK_DATA` and
/// `SEEK_HOLE`), in chunks between which `cancelled` is asked, and its permissions.
fn copy_file(from: &Path, to: &Path, cancelled: &dyn Fn() -> bool) -> Result<(), CopyError> {
    use nix::unistd::{Whence, lseek};
    const CHUNK: usize = 1 << 20;
    let mut input = fs::File::open(from)?;
    let meta = input.metadata()?;
    let mut output = fs::File::options().write(true).create_new(true).open(to)?;
    let size = meta.len();
    let mut buffer = vec![0u8; CHUNK.min(usize::try_from(size).unwrap_or(CHUNK)).max(1)];
    let mut position: u64 = 0;
    while position < size {
        let offset = i64::try_from(position).unwrap_or(i64::MAX);
        let data = match lseek(&input, offset, Whence::SeekData) {
            Ok(data) => data as u64,
            // No data after `position`: the rest is a hole.
            Err(nix::errno::Errno::ENXIO) => break,
            // A file system without SEEK_DATA: all of it is data.
            Err(_) => position,
        };
        let hole = match lseek(&input, data as i64, Whence::SeekHole) {
            Ok(hole) => hole as u64,
            Err(_) => size,
        };
        input.seek(SeekFrom::Start(data))?;
        output.seek(SeekFrom::Start(data))?;
        let mut left = hole.saturating_sub(data);
        while left > 0 {
            if cancelled() {
                drop(output);
                let _ = fs::remove_file(to);
                return Err(CopyError::Interrupted);
            }
            let want = buffer
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let read = input.read(&mut buffer[..want])?;
            if read == 0 {
                break;
            }
            output.write_all(&buffer[..read])?;
            left -= read as u64;
        }
        position = hole.max(data + 1);
    }
    output.set_len(size)?;
    output.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
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
        for dir in ["src", "tools", ".git", "target", "book", "out", "snapshots"] {
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
        Tree::create(
            &Source::new(&course, &[course.join("out")]),
            &sandbox,
            &|| false,
        )
        .expect("copy");
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
        for skipped in [".git", "target", "book", "out", "snapshots"] {
            assert!(!sandbox.join(skipped).exists(), "{skipped} was copied");
        }
    }

    #[test]
    fn a_reset_tree_is_the_course_again_whatever_the_lab_did() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = tmp.path().join("course");
        fs::create_dir_all(course.join("app/deep")).expect("mkdir");
        fs::write(course.join("app/config.yaml"), "original\n").expect("write");
        fs::write(course.join("app/deep/keep.txt"), "keep\n").expect("write");
        fs::write(course.join("run.sh"), "#!/bin/sh\n").expect("write");
        let source = Source::new(&course, &[]);
        let mut tree = Tree::create(&source, &tmp.path().join("tree"), &|| false).expect("copy");
        let at = |p: &str| tree.path.join(p);
        // What a lab may do: edit in place, delete, add, replace a folder, chmod.
        fs::OpenOptions::new()
            .append(true)
            .open(at("app/config.yaml"))
            .and_then(|mut f| f.write_all(b"edited\n"))
            .expect("append");
        fs::remove_dir_all(at("app/deep")).expect("rm");
        fs::write(at("app/new.txt"), "new").expect("add");
        fs::create_dir_all(at("made/by/lab")).expect("mkdir");
        fs::set_permissions(at("run.sh"), fs::Permissions::from_mode(0o600)).expect("chmod");
        tree.reset(&source, &|| false).expect("reset");
        let at = |p: &str| tree.path.join(p);
        assert_eq!(
            fs::read_to_string(at("app/config.yaml")).expect("read"),
            "original\n"
        );
        assert_eq!(
            fs::read_to_string(at("app/deep/keep.txt")).expect("read"),
            "keep\n"
        );
        assert!(!at("app/new.txt").exists());
        assert!(!at("made").exists());
        let mode = fs::metadata(at("run.sh"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            fs::metadata(course.join("run.sh"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        );
    }

    #[test]
    fn pools_sharing_a_run_folder_make_distinct_trees() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = tmp.path().join("course");
        fs::create_dir_all(&course).expect("mkdir");
        fs::write(course.join("a.md"), "# A\n").expect("write");
        let run = tmp.path().join("run");
        fs::create_dir_all(&run).expect("mkdir");
        let source = Source::new(&course, std::slice::from_ref(&run));
        let (one, two) = (Pool::default(), Pool::default());
        let first = one.take(&source, &run, &|| false).expect("first tree");
        let second = two.take(&source, &run, &|| false).expect("second tree");
        assert_ne!(first.path, second.path);
        assert!(second.path.join("a.md").is_file());
    }

    #[test]
    fn absolute_links_into_the_course_point_into_the_copy() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = absolute(&tmp.path().join("course"));
        fs::create_dir_all(course.join("data")).expect("mkdir");
        fs::write(course.join("data/file"), "x").expect("write");
        std::os::unix::fs::symlink(course.join("data/file"), course.join("inside")).expect("ln");
        std::os::unix::fs::symlink("/etc/hostname", course.join("outside")).expect("ln");
        let to = tmp.path().join("tree");
        Tree::create(&Source::new(&course, &[]), &to, &|| false).expect("copy");
        assert_eq!(
            fs::read_link(to.join("inside")).expect("link"),
            to.join("data/file")
        );
        assert_eq!(
            fs::read_link(to.join("outside")).expect("link"),
            PathBuf::from("/etc/hostname")
        );
    }

    #[test]
    fn sparse_files_stay_sparse_and_copies_stop_when_cancelled() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = tmp.path().join("course");
        fs::create_dir_all(&course).expect("mkdir");
        let sparse = fs::File::create(course.join("disk.img")).expect("create");
        sparse.set_len(1 << 30).expect("1 GiB hole");
        drop(sparse);
        let to = tmp.path().join("tree");
        Tree::create(&Source::new(&course, &[]), &to, &|| false).expect("copy");
        let copied = fs::metadata(to.join("disk.img")).expect("copied");
        assert_eq!(copied.len(), 1 << 30);
        assert!(
            copied.blocks() * 512 < 1 << 20,
            "{} blocks",
            copied.blocks()
        );
        let stopped = Tree::create(&Source::new(&course, &[]), &tmp.path().join("t2"), &|| true);
        assert!(matches!(stopped, Err(SandboxError::Interrupted)));
    }
}
