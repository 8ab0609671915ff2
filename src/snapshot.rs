//! Accepted outputs as insta `.snap` files: where they live, how they are named, and their format.
//!
//! The harness writes them (`--accept`) and compares against them; the preprocessor shows them as
//! "Expected output". Both go through this module so that they agree on names. The files use
//! insta's format (a YAML header between `---` lines, then the content), so `cargo insta review`
//! can accept a pending `.snap.new` written next to the accepted file.

use std::path::{Path, PathBuf};

use crate::course::Course;
use crate::model::{Lab, Step};
use crate::text::{Style, sanitize};

/// The extension of accepted snapshots.
pub const EXTENSION: &str = "snap";
/// The extension of pending snapshots, as `cargo insta review` expects.
pub const PENDING_EXTENSION: &str = "snap.new";

/// The chapter part of snapshot names: [`Lab::key`] within the course's book.
pub fn chapter_key(course: &Course, lab: &Lab) -> String {
    lab.key(course.src.as_deref())
}

/// The accepted snapshot file of a step: `<snapshot dir>/<chapter key>__<step id>.snap`.
pub fn path(course: &Course, lab: &Lab, step: &Step) -> PathBuf {
    course.snapshot_dir(lab).join(format!(
        "{}__{}.{EXTENSION}",
        chapter_key(course, lab),
        sanitize(&step.id, Style::FileName)
    ))
}

/// The pending snapshot beside an accepted one.
pub fn pending_path(accepted: &Path) -> PathBuf {
    let mut name = accepted.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    accepted.with_file_name(name)
}

/// The metadata written in a snapshot's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The chapter file, as shown to the user (`book/src/module/README.md`).
    pub source: String,
    /// The Markdown line of the block.
    pub line: usize,
    /// The step's code (first line), for readers of the diff.
    pub expression: String,
}

/// Renders a snapshot file in insta's format.
pub fn render(header: &Header, content: &str) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = format!(
        "---\nsource: {}\nassertion_line: {}\nexpression: {}\n---\n",
        quote(&header.source),
        header.line,
        quote(&header.expression)
    );
    out.push_str(content);
    if !content.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The content of a snapshot file (everything after the header), as insta stores it.
pub fn content(file_text: &str) -> String {
    let body = file_text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n").map(|(_, body)| body))
        .unwrap_or(file_text);
    body.strip_suffix('\n').unwrap_or(body).to_string()
}

/// Reads the accepted content of a step's snapshot, if one exists.
pub fn read_accepted(course: &Course, lab: &Lab, step: &Step) -> Option<String> {
    std::fs::read_to_string(path(course, lab, step))
        .ok()
        .map(|text| content(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_content_round_trip() {
        let header = Header {
            source: "book/src/m.md".into(),
            line: 12,
            expression: "kubectl get \"pods\"".into(),
        };
        for content_text in [
            "one line",
            "two\nlines",
            "",
            "---\nlooks like a header\n---\n",
        ] {
            let file = render(&header, content_text);
            assert!(file.starts_with("---\nsource: \"book/src/m.md\"\nassertion_line: 12\n"));
            assert_eq!(
                content(&file),
                content_text.strip_suffix('\n').unwrap_or(content_text)
            );
        }
    }

    #[test]
    fn pending_sits_beside_accepted() {
        assert_eq!(
            pending_path(Path::new("book/snapshots/m__a-1.snap")),
            PathBuf::from("book/snapshots/m__a-1.snap.new")
        );
    }
}
