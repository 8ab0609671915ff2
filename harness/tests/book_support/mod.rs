//! Helpers of the book-building tests: a fixture book copied into a temporary folder (building
//! writes `book/` next to `book.toml`, which must not land in the repository) with the course
//! stylesheet, and the `labbook` binary run on it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the harness crate's parent).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness sits in the repository")
        .to_path_buf()
}

/// Copies `fixtures/books/<name>` into a new temporary folder, with `book/theme/labbook.css` at
/// `theme/labbook.css`. Returns the temporary folder (kept alive by the caller) and the book.
pub fn fixture_book(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let book = tmp.path().join(name);
    copy_dir(&repo().join("fixtures/books").join(name), &book);
    std::fs::create_dir_all(book.join("theme")).expect("theme folder");
    std::fs::copy(
        repo().join("book/theme/labbook.css"),
        book.join("theme/labbook.css"),
    )
    .expect("stylesheet copies");
    (tmp, book)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("destination folder");
    for entry in std::fs::read_dir(from).expect("fixture folder is readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("file copies");
        }
    }
}

/// Runs `labbook` with the fixture's stylesheet added to the html output (the fixture's own
/// `book.toml` leaves it out, so that it builds where it stands without a copy of the CSS).
pub fn labbook(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labbook"))
        .args(args)
        .current_dir(cwd)
        .env(
            "MDBOOK_OUTPUT__HTML__ADDITIONAL_CSS",
            r#"["theme/labbook.css"]"#,
        )
        .output()
        .expect("labbook starts")
}

/// Every file under a folder.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("output folder is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
