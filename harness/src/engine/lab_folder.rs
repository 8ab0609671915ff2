//! A lab's run folder (its kubeconfig, private `HOME` and `TMPDIR`, the terminal's control
//! files), recycled from lab to lab when nobody opens it after the run.
//!
//! Making and deleting a dozen files per lab is not linear on every file system: ext4 without a
//! journal (`nojournal`, common on cloud VMs and CI runners) skips every inode deleted in the
//! last half minute when it allocates a new one, reading each from the inode table, so each new
//! file costs more than the last and a 400-lab run spent 8% of its time there. A finished lab's
//! folder is therefore emptied and renamed for the next lab: its folders and its long-lived
//! files keep their inodes. Only when the lab's cgroup held all of its processes, though: a
//! process that escaped the reaping could otherwise go on writing into the next lab's `HOME`.
//! With `--report` every lab keeps its own folder (nothing is deleted during the run, so nothing
//! slows down).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Entries of a run folder a recycled folder keeps: folders lose their content, files are
/// truncated. Each is a file that is rewritten or appended to from empty, where an empty file
/// means what a missing one does (a stale `state` would not, and goes with everything else).
/// The block file is the same in every lab and kept whole: the shell checks it and rewrites it
/// only if it differs.
const KEPT: &[(&str, Kept)] = &[
    ("home", Kept::Folder),
    ("tmp", Kept::Folder),
    ("control", Kept::Folder),
    ("kubeconfig", Kept::Emptied),
    ("control/out", Kept::Emptied),
    ("control/terminal.log", Kept::Emptied),
    ("control/shells", Kept::Emptied),
    ("control/block", Kept::Whole),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Folder,
    Emptied,
    Whole,
}

/// The run folders of a run's labs.
#[derive(Debug)]
pub struct Folders {
    recycle: bool,
    free: Mutex<Vec<PathBuf>>,
}

impl Folders {
    /// Folders that are recycled (`recycle`), or kept until the run ends (`--report`).
    pub fn new(recycle: bool) -> Folders {
        Folders {
            recycle,
            free: Mutex::new(Vec::new()),
        }
    }

    /// Makes the run folder `path` of a lab, from a finished lab's folder when there is one.
    pub fn take(&self, path: &Path) -> io::Result<()> {
        let recycled = self.free.lock().ok().and_then(|mut free| free.pop());
        if let Some(old) = recycled {
            if fs::rename(&old, path).is_ok() {
                return Ok(());
            }
            let _ = fs::remove_dir_all(&old);
        }
        fs::create_dir_all(path)
    }

    /// Takes back the folder of a finished lab: emptied for the next lab when `reusable` (every
    /// process of the lab is known to be gone), removed otherwise or when it cannot be emptied;
    /// left as it is with `--report`.
    pub fn give(&self, path: &Path, reusable: bool) {
        if !self.recycle {
            return;
        }
        if reusable && empty(path, Path::new("")).is_ok() {
            if let Ok(mut free) = self.free.lock() {
                free.push(path.to_path_buf());
            }
        } else {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// Empties `dir` (at `relative` inside the run folder), keeping the [`KEPT`] entries.
fn empty(dir: &Path, relative: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let name = relative.join(entry.file_name());
        let kept = KEPT
            .iter()
            .find(|(n, _)| Path::new(n) == name)
            .map(|(_, kept)| *kept);
        match kept {
            Some(Kept::Folder) if kind.is_dir() => empty(&path, &name)?,
            Some(Kept::Emptied) if kind.is_file() => {
                let meta = entry.metadata()?;
                // Truncating a file with another name (a hard link the lab made to a file of
                // somebody else's) would empty that file too: such a name is only removed.
                if meta.nlink() != 1 {
                    fs::remove_file(&path)?;
                } else if meta.len() > 0 {
                    fs::OpenOptions::new().write(true).open(&path)?.set_len(0)?;
                }
            }
            Some(Kept::Whole) if kind.is_file() => {}
            _ if kind.is_dir() => fs::remove_dir_all(&path)?,
            _ => fs::remove_file(&path)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_folder_keeps_its_inodes_and_nothing_of_the_lab() {
        use std::os::unix::fs::MetadataExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = tmp.path().join("001-a");
        let folders = Folders::new(true);
        folders.take(&first).expect("take");
        for dir in ["home/.config", "tmp", "control"] {
            fs::create_dir_all(first.join(dir)).expect("mkdir");
        }
        // (path, content, kept)
        let files = [
            ("kubeconfig", "apiVersion: v1\n", true),
            ("home/.config/tool", "x", false),
            ("home/.bash_history", "x", false),
            ("tmp/scratch", "x", false),
            ("control/out", "output", true),
            ("control/terminal.log", "log", true),
            ("control/state", "declare -x A=1", false),
            ("control/state.new", "declare -x A=2", false),
            ("control/3.in", "stdin", false),
            ("control/block", "builtin eval", true),
            ("diagnostics", "x", false),
        ];
        for (path, content, _) in files {
            fs::write(first.join(path), content).expect("write");
        }
        fs::create_dir_all(first.join("diagnostics-dir/pods")).expect("mkdir");
        let inode = |p: &Path| fs::metadata(p).expect("meta").ino();
        let before = [
            inode(&first.join("home")),
            inode(&first.join("control/out")),
        ];
        folders.give(&first, true);

        let second = tmp.path().join("002-b");
        folders.take(&second).expect("take");
        assert!(!first.exists());
        let after = [
            inode(&second.join("home")),
            inode(&second.join("control/out")),
        ];
        assert_eq!(before, after);
        for (path, content, kept) in files {
            let whole = path == "control/block";
            let path = second.join(path);
            match kept {
                true if whole => assert_eq!(fs::read_to_string(&path).expect("kept"), content),
                true => assert_eq!(fs::read(&path).expect("kept").len(), 0, "{path:?}"),
                false => assert!(!path.exists(), "{path:?} survived"),
            }
        }
        assert!(!second.join("diagnostics-dir").exists());
        assert!(second.join("tmp").is_dir());
    }

    #[test]
    fn a_kept_name_linked_to_another_file_is_removed_not_truncated() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folders = Folders::new(true);
        let first = tmp.path().join("001-a");
        folders.take(&first).expect("take");
        let precious = tmp.path().join("precious.txt");
        fs::write(&precious, "not labbook's\n").expect("write");
        fs::hard_link(&precious, first.join("kubeconfig")).expect("link");
        folders.give(&first, true);
        assert_eq!(
            fs::read_to_string(&precious).expect("still there"),
            "not labbook's\n"
        );
        let second = tmp.path().join("002-b");
        folders.take(&second).expect("take");
        assert!(!second.join("kubeconfig").exists());
    }

    #[test]
    fn a_folder_a_lab_process_may_still_use_is_removed_not_recycled() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folders = Folders::new(true);
        let first = tmp.path().join("001-a");
        folders.take(&first).expect("take");
        fs::create_dir_all(first.join("home")).expect("mkdir");
        folders.give(&first, false);
        assert!(!first.exists());
        let second = tmp.path().join("002-b");
        folders.take(&second).expect("take");
        assert!(second.is_dir());
        assert!(!second.join("home").exists(), "a fresh folder");
    }

    #[test]
    fn with_report_folders_are_kept_and_a_new_one_is_made_per_lab() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folders = Folders::new(false);
        let (first, second) = (tmp.path().join("001-a"), tmp.path().join("002-b"));
        folders.take(&first).expect("take");
        fs::write(first.join("kubeconfig"), "kept").expect("write");
        folders.give(&first, true);
        folders.take(&second).expect("take");
        assert_eq!(
            fs::read_to_string(first.join("kubeconfig")).expect("kept"),
            "kept"
        );
        assert!(second.is_dir());
    }
}
