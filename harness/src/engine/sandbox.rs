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
//! replaced or removed. Checking every entry would still cost the size of the course per lab, so
//! the kernel is asked (inotify) which folders and files were written to, and only those folders
//! are checked: a lab that writes nothing costs its reset nothing. Where inotify is unavailable,
//! or its queue overflowed, every entry is checked (one `lstat` each).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};

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
    /// The names in each copied folder (by its path in the tree).
    children: HashMap<PathBuf, Vec<OsString>>,
    /// What the kernel reports of changes to the tree; `None` where inotify is unavailable (or
    /// ran out of watches): every reset then checks every entry.
    watch: Option<Watch>,
}

impl Tree {
    /// Copies the course to `to` (which must not exist yet), watched for the resets that make
    /// it ready for another lab.
    pub fn create(
        source: &Source,
        to: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Tree, SandboxError> {
        Tree::copy(source, to, Watch::new(), cancelled)
    }

    fn copy(
        source: &Source,
        to: &Path,
        watch: Option<Watch>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Tree, SandboxError> {
        let mut tree = Tree {
            path: to.to_path_buf(),
            stamps: HashMap::new(),
            children: HashMap::new(),
            watch,
        };
        tree.copy_dir(source, &source.root, to, cancelled)?;
        if let Some(watch) = &mut tree.watch {
            watch.discard();
        }
        Ok(tree)
    }

    /// Brings the tree back to the course's state: removes what the lab added, re-copies what it
    /// changed or removed. Only the folders the kernel saw change are looked at (all of them when
    /// it cannot say). Call it when no process of the lab is left: their last writes are then
    /// all reported. `Err` leaves the tree in an unknown state: do not reuse it.
    pub fn reset(
        &mut self,
        source: &Source,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), SandboxError> {
        let changes = match &mut self.watch {
            Some(watch) => watch.changes(),
            None => Changes::Unknown,
        };
        let root = PathBuf::new();
        self.restore_mode(&root)?;
        match changes {
            Changes::Unknown => self.sweep(source, &root, true, &HashSet::new(), cancelled)?,
            Changes::Known { folders, suspects } => {
                // Parents first: a folder re-copied by its parent's sweep is pristine again.
                for folder in folders {
                    if self.children.contains_key(&folder) {
                        self.sweep(source, &folder, false, &suspects, cancelled)?;
                    }
                }
            }
        }
        if let Some(watch) = &mut self.watch {
            watch.discard();
        }
        Ok(())
    }

    /// Brings the folder at `relative` back: keeps entries whose stamp is unchanged (and that
    /// are not `suspects`), removes the rest, re-copies what is missing; into sub-folders when
    /// `deep`.
    fn sweep(
        &mut self,
        source: &Source,
        relative: &Path,
        deep: bool,
        suspects: &HashSet<PathBuf>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), SandboxError> {
        let error = copy_error;
        let dir = self.path.join(relative);
        let mut seen: HashSet<OsString> = HashSet::new();
        for entry in fs::read_dir(&dir).map_err(error(&dir))? {
            let entry = entry.map_err(error(&dir))?;
            let name = entry.file_name();
            let path = entry.path();
            let inside = relative.join(&name);
            // Relative to the open folder (no walk of the whole path per entry); not followed.
            let meta = entry.metadata().map_err(error(&path))?;
            match self.stamps.get(&inside) {
                Some(stamp) if meta.is_dir() && stamp.ino == meta.ino() => {
                    // Entries added or removed change a folder's ctime; its own mode is all
                    // there is to restore, its entries are checked one by one.
                    put_back_mode(&path, stamp, &meta)?;
                    seen.insert(name);
                    if deep {
                        self.sweep(source, &inside, true, suspects, cancelled)?;
                    }
                }
                Some(stamp)
                    if !meta.is_dir()
                        && *stamp == Stamp::of(&meta)
                        && !suspects.contains(&inside) =>
                {
                    seen.insert(name);
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
        let missing: Vec<OsString> = self
            .children
            .get(relative)
            .into_iter()
            .flatten()
            .filter(|name| !seen.contains(*name))
            .cloned()
            .collect();
        for name in missing {
            if cancelled() {
                return Err(SandboxError::Interrupted);
            }
            let inside = relative.join(&name);
            self.forget(&inside);
            let (from, to) = (source.root.join(&inside), self.path.join(&inside));
            self.copy_entry(source, &from, &to, cancelled)?;
        }
        Ok(())
    }

    /// Puts back the mode of the copied folder at `relative` (a lab can `chmod` the tree's root,
    /// which no folder's sweep looks at).
    fn restore_mode(&self, relative: &Path) -> Result<(), SandboxError> {
        let path = self.path.join(relative);
        match (self.stamps.get(relative), fs::symlink_metadata(&path)) {
            (Some(stamp), Ok(meta)) if meta.is_dir() => put_back_mode(&path, stamp, &meta),
            _ => Ok(()),
        }
    }

    /// Drops the record of the entry at `relative` and everything under it, before it is copied
    /// again (the course may have changed since).
    fn forget(&mut self, relative: &Path) {
        self.stamps.remove(relative);
        for name in self.children.remove(relative).unwrap_or_default() {
            self.forget(&relative.join(name));
        }
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
        let mut names = Vec::new();
        for entry in fs::read_dir(from).map_err(error(from))? {
            if cancelled() {
                return Err(SandboxError::Interrupted);
            }
            let entry = entry.map_err(error(from))?;
            let path = entry.path();
            if source.skipped(&path, &entry.file_name()) {
                continue;
            }
            if self.copy_entry(source, &path, &to.join(entry.file_name()), cancelled)? {
                names.push(entry.file_name());
            }
        }
        let mode = fs::metadata(from).map_err(error(from))?.permissions();
        fs::set_permissions(to, mode).map_err(error(from))?;
        let relative = self.relative(to);
        self.children.insert(relative, names);
        self.stamp(to)
    }

    /// Copies one entry; `false` when there was nothing to copy (gone from the checkout, or not
    /// course content).
    fn copy_entry(
        &mut self,
        source: &Source,
        from: &Path,
        to: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<bool, SandboxError> {
        let error = copy_error;
        let Ok(kind) = fs::symlink_metadata(from).map(|m| m.file_type()) else {
            return Ok(false);
        };
        if kind.is_symlink() {
            let link = fs::read_link(from).map_err(error(from))?;
            let link = match link.strip_prefix(&source.root) {
                Ok(inside) if link.is_absolute() => self.path.join(inside),
                _ => link,
            };
            std::os::unix::fs::symlink(link, to).map_err(error(from))?;
        } else if kind.is_dir() {
            self.copy_dir(source, from, to, cancelled)?;
            return Ok(true);
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
            return Ok(false);
        }
        self.stamp(to)?;
        Ok(true)
    }

    fn relative(&self, copied: &Path) -> PathBuf {
        copied
            .strip_prefix(&self.path)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Records a copied entry's stamp and watches it.
    fn stamp(&mut self, copied: &Path) -> Result<(), SandboxError> {
        let meta = fs::symlink_metadata(copied).map_err(|source| SandboxError::Copy {
            path: copied.to_path_buf(),
            source,
        })?;
        let relative = self.relative(copied);
        if let Some(watch) = &mut self.watch
            && !watch.add(copied, relative.clone())
        {
            self.watch = None;
        }
        self.stamps.insert(relative, Stamp::of(&meta));
        Ok(())
    }
}

/// What changed in a tree since the last look.
#[derive(Debug, PartialEq, Eq)]
enum Changes {
    /// The folders to look at again (by their path in the tree, parents first), and the entries
    /// whose stamp is not to be trusted (written to, even if their change time says otherwise).
    Known {
        folders: BTreeSet<PathBuf>,
        suspects: HashSet<PathBuf>,
    },
    /// Events were lost: everything is to be looked at.
    Unknown,
}

/// inotify watches on every entry of a tree. Folders report what happens to their entries;
/// files are watched too because a write through a hard link made outside the tree (in the
/// lab's `TMPDIR`) or through a shared mapping reaches the file but not its folder. Reading
/// raises no event: a lab that only reads the course costs its next reset nothing.
#[derive(Debug)]
struct Watch {
    inotify: Inotify,
    paths: HashMap<WatchDescriptor, PathBuf>,
}

/// The events that can change what a reset compares (content, entries, mode, inode).
fn watched_events() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        // A link is watched itself, never what it points to.
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl Watch {
    fn new() -> Option<Watch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        Some(Watch {
            inotify,
            paths: HashMap::new(),
        })
    }

    /// Watches the entry at `path` (`relative` in the tree); `false` when the kernel refuses
    /// (out of watches: `fs.inotify.max_user_watches`).
    fn add(&mut self, path: &Path, relative: PathBuf) -> bool {
        match self.inotify.add_watch(path, watched_events()) {
            Ok(wd) => {
                self.paths.insert(wd, relative);
                true
            }
            Err(_) => false,
        }
    }

    /// Every event queued since the last look, as the folders and entries they touched.
    fn changes(&mut self) -> Changes {
        let mut folders = BTreeSet::new();
        let mut suspects = HashSet::new();
        let mut lost = false;
        for event in self.drain(&mut lost) {
            let Some(path) = self.paths.get(&event.wd).cloned() else {
                continue;
            };
            match event.name {
                // An entry of a watched folder.
                Some(name) => {
                    suspects.insert(path.join(name));
                    folders.insert(path);
                }
                // The watched entry itself: its folder decides what to do with it.
                None => {
                    folders.insert(path.parent().map(Path::to_path_buf).unwrap_or_default());
                    suspects.insert(path);
                }
            }
        }
        if lost {
            Changes::Unknown
        } else {
            Changes::Known { folders, suspects }
        }
    }

    /// Forgets the events of labbook's own copying and removing.
    fn discard(&mut self) {
        let mut lost = false;
        self.drain(&mut lost);
    }

    /// Reads every queued event; watches the kernel dropped (their entry was removed) are
    /// forgotten. `lost` is set when the queue overflowed or could not be read.
    fn drain(&mut self, lost: &mut bool) -> Vec<InotifyEvent> {
        let mut events = Vec::new();
        loop {
            match self.inotify.read_events() {
                Ok(batch) => {
                    for event in batch {
                        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            *lost = true;
                        } else if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                            self.paths.remove(&event.wd);
                        } else {
                            events.push(event);
                        }
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    *lost = true;
                    break;
                }
            }
        }
        events
    }
}

/// Gives the copied folder at `path` (now `meta`) the mode it was copied with.
fn put_back_mode(path: &Path, stamp: &Stamp, meta: &fs::Metadata) -> Result<(), SandboxError> {
    if stamp.mode != meta.mode() {
        fs::set_permissions(path, fs::Permissions::from_mode(stamp.mode))
            .map_err(copy_error(path))?;
    }
    Ok(())
}

/// Maps an OS error on `path` to [`SandboxError::Copy`].
fn copy_error(path: &Path) -> impl FnOnce(io::Error) -> SandboxError + use<> {
    let path = path.to_path_buf();
    move |source| SandboxError::Copy { path, source }
}

/// The trees of labs that finished, ready to be reset for the next lab.
#[derive(Debug)]
pub struct Pool {
    trees: Mutex<Vec<Tree>>,
    /// How many labs will still take a tree. A new tree is watched only when a later lab may
    /// reuse it: closing an inotify instance waits for the kernel to retire its watches (an
    /// SRCU grace period, 1 to 17 ms here), which a run of one lab would pay for nothing.
    labs_left: std::sync::atomic::AtomicUsize,
}

/// Trees made by this process: names them, so that the pools of two courses sharing a run folder
/// (`labbook run a.md b.md`, two chapters of one folder) never pick the same name.
static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Pool {
    /// A pool for `labs` labs of one course.
    pub fn new(labs: usize) -> Pool {
        Pool {
            trees: Mutex::new(Vec::new()),
            labs_left: std::sync::atomic::AtomicUsize::new(labs),
        }
    }

    /// A tree holding the course as it is in `source`: a finished lab's tree, reset, or a new
    /// copy under `run_root` when there is none (or resetting failed).
    pub fn take(
        &self,
        source: &Source,
        run_root: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Tree, SandboxError> {
        use std::sync::atomic::Ordering;
        let before = self
            .labs_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        let reusable = self.trees.lock().ok().and_then(|mut trees| trees.pop());
        if let Some(mut tree) = reusable {
            match tree.reset(source, cancelled) {
                Ok(()) => return Ok(tree),
                Err(SandboxError::Interrupted) => return Err(SandboxError::Interrupted),
                // A tree the lab made unresettable (a folder it cannot read) is left as it is.
                Err(_) => {}
            }
        }
        let n = MADE.fetch_add(1, Ordering::SeqCst);
        let watch = if before > 1 { Watch::new() } else { None };
        Tree::copy(
            source,
            &run_root.join(format!("tree-{}", n + 1)),
            watch,
            cancelled,
        )
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

    /// Everything a reset restores, by path in the tree: kind, permission bits, and content or
    /// link target.
    fn state(root: &Path) -> std::collections::BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
        let mut found = std::collections::BTreeMap::new();
        let mut folders = vec![root.to_path_buf()];
        while let Some(dir) = folders.pop() {
            for entry in fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                let meta = fs::symlink_metadata(&path).expect("lstat");
                let relative = path.strip_prefix(root).expect("inside").to_path_buf();
                let mode = meta.mode() & 0o7777;
                let entry = if meta.is_symlink() {
                    let target = fs::read_link(&path).expect("link");
                    ('l', 0, target.into_os_string().into_encoded_bytes())
                } else if meta.is_dir() {
                    folders.push(path);
                    ('d', mode, Vec::new())
                } else {
                    ('f', mode, fs::read(&path).expect("read"))
                };
                found.insert(relative, entry);
            }
        }
        let root_mode = fs::metadata(root).expect("root").mode() & 0o7777;
        found.insert(PathBuf::new(), ('d', root_mode, Vec::new()));
        found
    }

    /// A small course: nested folders, an executable, a relative link.
    fn course(at: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let course = at.join("course");
        fs::create_dir_all(course.join("app/deep")).expect("mkdir");
        fs::write(course.join("app/config.yaml"), "original\n").expect("write");
        fs::write(course.join("app/other.yaml"), "other\n").expect("write");
        fs::write(course.join("app/deep/keep.txt"), "keep\n").expect("write");
        fs::write(course.join("run.sh"), "#!/bin/sh\n").expect("write");
        fs::set_permissions(course.join("run.sh"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::os::unix::fs::symlink("app/config.yaml", course.join("config")).expect("ln");
        course
    }

    /// What a lab may do to its tree (`outside` is a writable folder on the same file system,
    /// like the lab's TMPDIR).
    type LabAction = fn(tree: &Path, outside: &Path) -> std::io::Result<()>;

    const LAB_ACTIONS: &[(&str, LabAction)] = &[
        ("nothing", |_, _| Ok(())),
        ("read only", |t, _| {
            fs::read(t.join("app/config.yaml")).map(drop)
        }),
        ("append in place", |t, _| {
            fs::OpenOptions::new()
                .append(true)
                .open(t.join("app/config.yaml"))?
                .write_all(b"edited\n")
        }),
        ("write through a link in the tree", |t, _| {
            fs::write(t.join("config"), "through the link\n")
        }),
        ("truncate", |t, _| {
            fs::OpenOptions::new()
                .write(true)
                .open(t.join("app/deep/keep.txt"))?
                .set_len(0)
        }),
        ("delete a folder", |t, _| {
            fs::remove_dir_all(t.join("app/deep"))
        }),
        ("add files and folders", |t, _| {
            fs::write(t.join("app/new.txt"), "new")?;
            fs::create_dir_all(t.join("made/by/lab"))?;
            fs::write(t.join("made/by/lab/file"), "x")
        }),
        ("chmod a file, a folder and the root", |t, _| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(t.join("run.sh"), fs::Permissions::from_mode(0o600))?;
            fs::set_permissions(t.join("app/deep"), fs::Permissions::from_mode(0o700))?;
            fs::set_permissions(t, fs::Permissions::from_mode(0o700))
        }),
        ("write through a hard link made outside", |t, o| {
            fs::hard_link(t.join("app/deep/keep.txt"), o.join("linked"))?;
            fs::write(o.join("linked"), "changed from outside\n")?;
            fs::remove_file(o.join("linked"))
        }),
        ("swap two files", |t, _| {
            fs::rename(t.join("app/config.yaml"), t.join("app/tmp"))?;
            fs::rename(t.join("app/other.yaml"), t.join("app/config.yaml"))?;
            fs::rename(t.join("app/tmp"), t.join("app/other.yaml"))
        }),
        ("move a folder out, change it, move it back", |t, o| {
            fs::rename(t.join("app/deep"), o.join("deep"))?;
            fs::write(o.join("deep/keep.txt"), "changed away\n")?;
            fs::write(o.join("deep/extra"), "extra")?;
            fs::rename(o.join("deep"), t.join("app/deep"))
        }),
        ("replace a folder by a file", |t, _| {
            fs::remove_dir_all(t.join("app"))?;
            fs::write(t.join("app"), "not a folder")
        }),
        ("replace a link", |t, _| {
            fs::remove_file(t.join("config"))?;
            std::os::unix::fs::symlink("/etc/hostname", t.join("config"))
        }),
        ("touch", |t, _| {
            fs::File::options()
                .write(true)
                .open(t.join("run.sh"))?
                .set_modified(std::time::SystemTime::UNIX_EPOCH)
        }),
    ];

    #[test]
    fn a_reset_tree_is_the_course_again_whatever_the_lab_did() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = course(tmp.path());
        let source = Source::new(&course, &[]);
        let pristine = state(&course);
        for watched in [true, false] {
            let mut tree = Tree::create(
                &source,
                &tmp.path().join(format!("tree-{watched}")),
                &|| false,
            )
            .expect("copy");
            assert!(tree.watch.is_some(), "inotify is available here");
            if !watched {
                tree.watch = None;
            }
            assert_eq!(state(&tree.path), pristine);
            for (name, action) in LAB_ACTIONS {
                let outside = tmp.path().join("outside");
                fs::create_dir_all(&outside).expect("mkdir");
                action(&tree.path, &outside).unwrap_or_else(|e| panic!("{name}: {e}"));
                tree.reset(&source, &|| false).expect(name);
                assert_eq!(state(&tree.path), pristine, "{name} (watched: {watched})");
                fs::remove_dir_all(&outside).expect("rm");
            }
        }
    }

    #[test]
    fn the_kernel_names_what_a_lab_touched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let source = Source::new(&course(tmp.path()), &[]);
        let made = std::cell::Cell::new(0);
        let fresh = || {
            made.set(made.get() + 1);
            let to = tmp.path().join(format!("tree-{}", made.get()));
            Tree::create(&source, &to, &|| false).expect("copy")
        };
        let changes = |tree: &mut Tree| tree.watch.as_mut().expect("watched").changes();
        let known = |folders: &[&str], suspects: &[&str]| Changes::Known {
            folders: folders.iter().map(PathBuf::from).collect(),
            suspects: suspects.iter().map(PathBuf::from).collect(),
        };
        // Reading, listing and looking at the course is not a change.
        let mut tree = fresh();
        fs::read(tree.path.join("app/config.yaml")).expect("read");
        fs::read_dir(tree.path.join("app"))
            .expect("list")
            .for_each(drop);
        fs::metadata(tree.path.join("run.sh")).expect("stat");
        assert_eq!(changes(&mut tree), known(&[], &[]));
        let mut tree = fresh();
        fs::write(tree.path.join("app/deep/keep.txt"), "x").expect("write");
        assert_eq!(
            changes(&mut tree),
            known(&["app/deep"], &["app/deep/keep.txt"])
        );
        let mut tree = fresh();
        fs::write(tree.path.join("new"), "x").expect("write");
        assert_eq!(changes(&mut tree), known(&[""], &["new"]));
    }

    #[test]
    fn a_reset_after_lost_events_checks_everything() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let source = Source::new(&course(tmp.path()), &[]);
        // Fill the queue until it overflows, then change a file: its events are lost.
        let overflow = |tree: &Tree| {
            let limit: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(16384);
            let files = [tree.path.join("run.sh"), tree.path.join("app/other.yaml")];
            for (i, file) in files.iter().cycle().take(limit + 1).enumerate() {
                let time =
                    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(i as u64);
                fs::File::options()
                    .write(true)
                    .open(file)
                    .and_then(|f| f.set_modified(time))
                    .expect("touch");
            }
            fs::write(tree.path.join("app/deep/keep.txt"), "lost").expect("write");
        };
        let mut tree = Tree::create(&source, &tmp.path().join("t1"), &|| false).expect("copy");
        overflow(&tree);
        let changes = tree.watch.as_mut().expect("watched").changes();
        assert_eq!(changes, Changes::Unknown);
        let mut tree = Tree::create(&source, &tmp.path().join("t2"), &|| false).expect("copy");
        overflow(&tree);
        tree.reset(&source, &|| false).expect("reset");
        assert_eq!(state(&tree.path), state(&source.root));
    }

    /// A course of one chapter and the run folder its trees go in (outside the course).
    fn one_chapter_and_a_run_folder() -> (tempfile::TempDir, Source, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let course = tmp.path().join("course");
        fs::create_dir_all(&course).expect("mkdir");
        fs::write(course.join("a.md"), "# A\n").expect("write");
        let run = tmp.path().join("run");
        fs::create_dir_all(&run).expect("mkdir");
        let source = Source::new(&course, std::slice::from_ref(&run));
        (tmp, source, run)
    }

    #[test]
    fn pools_sharing_a_run_folder_make_distinct_trees() {
        let (_tmp, source, run) = one_chapter_and_a_run_folder();
        let (one, two) = (Pool::new(1), Pool::new(1));
        let first = one.take(&source, &run, &|| false).expect("first tree");
        let second = two.take(&source, &run, &|| false).expect("second tree");
        assert_ne!(first.path, second.path);
        assert!(second.path.join("a.md").is_file());
    }

    #[test]
    fn only_a_tree_a_later_lab_may_reuse_is_watched() {
        let (_tmp, source, run) = one_chapter_and_a_run_folder();
        let single = Pool::new(1);
        let only = single.take(&source, &run, &|| false).expect("tree");
        assert!(only.watch.is_none(), "one lab: nothing to reset");

        let pair = Pool::new(2);
        let first = pair.take(&source, &run, &|| false).expect("first tree");
        assert!(first.watch.is_some(), "the second lab reuses it");
        let path = first.path.clone();
        fs::write(first.path.join("added"), "by the lab").expect("write");
        pair.give(first);
        let second = pair.take(&source, &run, &|| false).expect("second tree");
        assert_eq!(second.path, path, "reused");
        assert!(!second.path.join("added").exists(), "reset");
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
