//! Accepted outputs as insta `.snap` files: where they live, how they are named, and their format.
//!
//! The harness writes them (`--accept`) and compares against them; the preprocessor shows them as
//! "Expected output". Both go through this module so that they agree on names. The files use
//! insta's format (a YAML header between `---` lines, then the content), so `cargo insta review`
//! can accept a pending `.snap.new` written next to the accepted file.

use std::path::{Path, PathBuf};

use crate::course::Course;
use crate::model::{Lab, Step, StepKind};
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

/// The metadata written in a snapshot's header: the fields insta itself writes.
///
/// An accepted `.snap` holds `source` and `expression` only, as insta writes them since it dropped
/// `assertion_line` from accepted files: inserting prose above a block then changes no header.
/// A pending `.snap.new` also holds `assertion_line`, as insta's do, so that a review can say
/// where the block is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// The chapter file relative to the repository root (`book/src/module/README.md`), as insta
    /// names the source file relative to its workspace; `cargo insta review` shows it.
    pub source: String,
    /// The Markdown line of the block; written in pending snapshots only.
    pub assertion_line: Option<usize>,
    /// The step's code (first line), for readers of the diff.
    pub expression: String,
}

/// Renders a snapshot file in insta's format, byte for byte as insta writes it: so that
/// `cargo insta review` accepting a `.snap.new` and `labbook run --accept` write the same file.
pub fn render(header: &Header, content: &str) -> String {
    let mut out = format!("---\nsource: {}\n", yaml_string(&header.source));
    if let Some(line) = header.assertion_line {
        out.push_str(&format!("assertion_line: {line}\n"));
    }
    out.push_str(&format!(
        "expression: {}\n---\n",
        yaml_string(&header.expression)
    ));
    out.push_str(content);
    if !content.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A YAML scalar as insta's emitter writes it: plain when that reads back as the same string,
/// else double-quoted with insta's escapes.
fn yaml_string(text: &str) -> String {
    let starts = |c: char| "&*?|-<>=!%@".contains(c);
    let special = |c: char| {
        matches!(
            c,
            ':' | '{' | '}' | '[' | ']' | ',' | '#' | '`' | '"' | '\'' | '\\' | '\t' | '\n' | '\r'
        ) || matches!(c, '\0'..='\x06' | '\x0e'..='\x1a' | '\x1c'..='\x1f')
    };
    let keyword = [
        "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE", "false",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];
    let quote = text.is_empty()
        || text.starts_with(' ')
        || text.ends_with(' ')
        || text.starts_with(starts)
        || text.contains(special)
        || keyword.contains(&text)
        || text.starts_with('.')
        || text.starts_with("0x")
        || text.parse::<i64>().is_ok()
        || text.parse::<f64>().is_ok();
    if !quote {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads the header of a snapshot file (ours or insta's); unknown fields are ignored.
pub fn header(file_text: &str) -> Header {
    let mut header = Header::default();
    let Some(rest) = file_text.strip_prefix("---\n") else {
        return header;
    };
    for line in rest.lines().take_while(|l| *l != "---") {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let value = if value.starts_with('"') {
            serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_string())
        } else {
            value.to_string()
        };
        match key {
            "source" => header.source = value,
            "assertion_line" => header.assertion_line = value.parse().ok(),
            "expression" => header.expression = value,
            _ => {}
        }
    }
    header
}

/// The root of the repository a path is in: the nearest folder above it holding `.git`, or
/// `None` outside a repository.
pub fn repository_root(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

/// How a chapter is named in snapshot headers: relative to the repository root, as insta names
/// sources; outside a repository, relative to the book folder (or just the file name), so that
/// running from another folder never rewrites a header.
pub fn source_name(course: &Course, lab: &Lab) -> String {
    let chapter = std::path::absolute(&lab.path).unwrap_or_else(|_| lab.path.clone());
    let base = repository_root(&chapter).or_else(|| {
        course
            .book
            .as_ref()
            .and_then(|book| std::path::absolute(book).ok())
    });
    let relative = base
        .and_then(|base| chapter.strip_prefix(base).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(lab.path.file_name().unwrap_or_default()));
    relative.to_string_lossy().replace('\\', "/")
}

/// Whether a step's output is compared with a snapshot: verify and write-file steps by default,
/// any step with `expect=snapshot`.
pub fn expected(step: &Step) -> bool {
    match &step.annotation.expect {
        Some(expect) => *expect == crate::annotation::Expect::Snapshot,
        None => matches!(step.kind, StepKind::Verify | StepKind::WriteFile),
    }
}

/// The content of a snapshot file (everything after the header), as insta stores it.
pub fn content(file_text: &str) -> String {
    let body = file_text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n").map(|(_, body)| body))
        .unwrap_or(file_text);
    body.strip_suffix('\n').unwrap_or(body).to_string()
}

/// A snapshot file that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotReadError {
    /// The file could not be read.
    #[error("failed to read snapshot {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a snapshot.
    #[error("failed to read snapshot {}: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

/// What is wrong with a snapshot file's text, if anything: it must open with an insta header
/// (`---` … `---`).
pub fn check_format(text: &str) -> Result<(), String> {
    let Some(rest) = text.strip_prefix("---\n") else {
        return Err("it does not start with the `---` line of a snapshot header".into());
    };
    if !rest.starts_with("---\n") && !rest.contains("\n---\n") {
        return Err("its header has no closing `---` line (is the file truncated?)".into());
    }
    Ok(())
}

/// Reads a snapshot file's content: `Ok(None)` when there is no file, an error naming the
/// problem when there is one that is not a snapshot (not UTF-8, no header, truncated header).
pub fn read(path: &Path) -> Result<Option<String>, SnapshotReadError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SnapshotReadError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let malformed = |problem: String| SnapshotReadError::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
        malformed(format!("it is not UTF-8 text (line {line})"))
    })?;
    check_format(&text).map_err(malformed)?;
    Ok(Some(text))
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
        let mut header = Header {
            source: "book/src/m.md".into(),
            assertion_line: None,
            expression: "kubectl get \"pods\"".into(),
        };
        for content_text in [
            "one line",
            "two\nlines",
            "",
            "---\nlooks like a header\n---\n",
        ] {
            let file = render(&header, content_text);
            assert!(
                file.starts_with(
                    "---\nsource: book/src/m.md\nexpression: \"kubectl get \\\"pods\\\"\"\n---\n"
                ),
                "{file}"
            );
            assert_eq!(
                content(&file),
                content_text.strip_suffix('\n').unwrap_or(content_text)
            );
            assert_eq!(self::header(&file), header);
        }
        header.assertion_line = Some(12);
        let pending = render(&header, "x");
        assert!(pending.contains("\nassertion_line: 12\n"), "{pending}");
        assert_eq!(self::header(&pending), header);
    }

    #[test]
    fn yaml_scalars_are_quoted_as_insta_quotes_them() {
        let cases = [
            ("book/src/m.md", "book/src/m.md"),
            ("echo hello", "echo hello"),
            ("", "\"\""),
            ("kubectl get pods -n shop", "kubectl get pods -n shop"),
            ("- item", "\"- item\""),
            ("a: b", "\"a: b\""),
            ("true", "\"true\""),
            ("42", "\"42\""),
            ("1.5", "\"1.5\""),
            (".hidden", "\".hidden\""),
            ("echo \"$greeting\"", "\"echo \\\"$greeting\\\"\""),
            ("printf 'a\tb'", "\"printf 'a\\tb'\""),
            ("tab\there", "\"tab\\there\""),
            ("bell\x07", "bell\x07"),
            ("esc\x1b[0m", "\"esc\\u001b[0m\""),
            ("naïve café", "naïve café"),
            (" padded", "\" padded\""),
        ];
        for (text, expected) in cases {
            assert_eq!(yaml_string(text), expected, "{text:?}");
        }
    }

    #[test]
    fn malformed_snapshots_say_what_is_wrong() {
        let cases = [
            ("---\nsource: a\n---\nbody\n", None),
            ("---\n---\nbody\n", None),
            ("body only\n", Some("does not start")),
            ("---\nsource: \"a\"\nassertion_li", Some("no closing `---`")),
        ];
        for (text, problem) in cases {
            let got = check_format(text).err();
            match problem {
                None => assert_eq!(got, None, "{text:?}"),
                Some(p) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(p)),
                    "{text:?}: {got:?}"
                ),
            }
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
