//! Accepted snapshots as a whole: which files the labs refer to, what `--accept` did to them, and
//! `labbook snapshots --unreferenced list|delete` for the files no step refers to any more (after a
//! heading was renamed, say), as `cargo insta test --unreferenced` does for Rust tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use labbook::report::{Report, StepStatus};
use labbook::{Course, snapshot};

use crate::cli::{EXIT_FAILED, EXIT_OK};

/// The snapshot files a set of chapters refers to, and the folders they live in.
#[derive(Debug, Default)]
pub struct Referenced {
    /// Every accepted snapshot a step of a lab compares with.
    pub files: BTreeSet<PathBuf>,
    /// The snapshot folders of those labs.
    pub dirs: BTreeSet<PathBuf>,
}

/// The snapshots referred to by every chapter that shares a snapshot folder with `course`: the
/// whole book for a book, else every chapter in the folders of the given ones. A single chapter
/// of a book would otherwise make its neighbours' snapshots look unreferenced.
pub fn referenced(course: &Course) -> anyhow::Result<Referenced> {
    let mut scope: Vec<Course> = Vec::new();
    match &course.book {
        Some(book) => scope.push(labbook::course::load(book)?),
        None => {
            let folders: BTreeSet<PathBuf> = course
                .labs
                .iter()
                .map(|lab| lab.path.parent().unwrap_or(Path::new(".")).to_path_buf())
                .collect();
            for folder in folders {
                let folder = if folder.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    folder
                };
                scope.push(labbook::course::load(&folder)?);
            }
        }
    }
    let mut referenced = Referenced::default();
    for course in &scope {
        for lab in &course.labs {
            referenced.dirs.insert(course.snapshot_dir(lab));
            for step in lab.steps.iter().filter(|s| snapshot::expected(s)) {
                referenced.files.insert(snapshot::path(course, lab, step));
            }
        }
    }
    Ok(referenced)
}

/// The accepted snapshot files in the snapshot folders that no step refers to. Only files in
/// insta's format (starting with `---`) count: labbook never touches what it did not write.
pub fn unreferenced(referenced: &Referenced) -> anyhow::Result<Vec<PathBuf>> {
    let mut orphans = Vec::new();
    for dir in &referenced.dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", dir.display())),
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("failed to read {}", dir.display()))?
                .path();
            let is_snap = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".snap"));
            if !is_snap || referenced.files.contains(&path) || !path.is_file() {
                continue;
            }
            let looks_like_ours =
                std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with("---\n"));
            if looks_like_ours {
                orphans.push(path);
            }
        }
    }
    orphans.sort();
    Ok(orphans)
}

/// What to do with unreferenced snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unreferenced {
    /// Print them; exit 1 when there are any (so CI can refuse them).
    List,
    /// Delete them, with their pending `.snap.new`.
    Delete,
}

/// `labbook snapshots --unreferenced list|delete PATH...`.
pub fn run(paths: &[PathBuf], action: Unreferenced) -> anyhow::Result<u8> {
    let mut orphans = BTreeSet::new();
    for path in paths {
        let course = labbook::course::load(path)?;
        orphans.extend(unreferenced(&referenced(&course)?)?);
    }
    let mut text = String::new();
    for orphan in &orphans {
        match action {
            Unreferenced::List => text.push_str(&format!("{}\n", orphan.display())),
            Unreferenced::Delete => {
                std::fs::remove_file(orphan)
                    .with_context(|| format!("failed to delete {}", orphan.display()))?;
                let pending = snapshot::pending_path(orphan);
                if pending.is_file() {
                    std::fs::remove_file(&pending)
                        .with_context(|| format!("failed to delete {}", pending.display()))?;
                }
                text.push_str(&format!("deleted {}\n", orphan.display()));
            }
        }
    }
    let count = orphans.len();
    let summary = match (action, count) {
        (_, 0) => "labbook: no unreferenced snapshots".to_string(),
        (Unreferenced::List, n) => format!(
            "labbook: {n} unreferenced snapshot(s); delete them with `labbook snapshots --unreferenced delete`"
        ),
        (Unreferenced::Delete, n) => format!("labbook: deleted {n} unreferenced snapshot(s)"),
    };
    crate::cli::print_stdout(&text)?;
    eprintln!("{summary}");
    Ok(if action == Unreferenced::List && count > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// The accepted snapshots of a run's labs before an `--accept` run, to tell afterwards which
/// were created, updated or left unchanged.
pub struct BeforeAccept {
    files: BTreeMap<(String, String), (PathBuf, Option<String>)>,
    dirs: Vec<Referenced>,
}

impl BeforeAccept {
    /// Reads the accepted snapshots of every lab of `courses`.
    pub fn take(courses: &[Course]) -> BeforeAccept {
        let mut files = BTreeMap::new();
        for course in courses {
            for lab in course.labs.iter().filter(|l| l.is_lab()) {
                for step in lab.steps.iter().filter(|s| snapshot::expected(s)) {
                    let path = snapshot::path(course, lab, step);
                    let content = std::fs::read_to_string(&path)
                        .ok()
                        .map(|t| snapshot::content(&t));
                    files.insert(
                        (lab.path.display().to_string(), step.id.clone()),
                        (path, content),
                    );
                }
            }
        }
        let dirs = courses.iter().filter_map(|c| referenced(c).ok()).collect();
        BeforeAccept { files, dirs }
    }

    /// The summary line that ends an `--accept` run.
    pub fn summary(&self, report: &Report) -> String {
        let (mut created, mut updated, mut unchanged, mut not_recorded) = (0, 0, 0, 0);
        for lab in &report.labs {
            for step in &lab.steps {
                let Some((path, before)) = self.files.get(&(lab.path.clone(), step.id.clone()))
                else {
                    continue;
                };
                let after = std::fs::read_to_string(path)
                    .ok()
                    .map(|t| snapshot::content(&t));
                // A printed-output check runs only after the snapshot was accepted: a step it
                // failed still recorded its snapshot.
                let recorded = matches!(step.status, StepStatus::Passed | StepStatus::Stopped)
                    || step
                        .printed
                        .iter()
                        .any(|c| c.verdict == labbook::report::PrintedVerdict::Failed);
                match (before, after) {
                    (_, None) => not_recorded += 1,
                    _ if !recorded => not_recorded += 1,
                    (None, Some(_)) => created += 1,
                    (Some(old), Some(new)) if *old == new => unchanged += 1,
                    (Some(_), Some(_)) => updated += 1,
                }
            }
        }
        let orphans: BTreeSet<PathBuf> = self
            .dirs
            .iter()
            .filter_map(|r| unreferenced(r).ok())
            .flatten()
            .collect();
        let mut text = format!(
            "labbook: snapshots: {created} created, {updated} updated, {unchanged} unchanged, {} unreferenced",
            orphans.len()
        );
        if not_recorded > 0 {
            text.push_str(&format!(
                ", {not_recorded} not recorded (their step failed or did not run)"
            ));
        }
        if !orphans.is_empty() {
            text.push_str(
                "\n  list them with `labbook snapshots --unreferenced list`, \
                 delete them with `labbook snapshots --unreferenced delete`",
            );
        }
        text
    }
}
