//! Loading a course from a path: a chapter file, a folder of chapters, or an mdBook folder.
//!
//! A book's chapters are taken in `SUMMARY.md` order; a plain folder's Markdown files in path order.
//! A chapter or folder inside a book still belongs to that book: its snapshots live beside
//! `book.toml` and the book's `[preprocessor.labbook]` settings apply.

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag};
use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::model::Lab;
use crate::parse::{LineIndex, markdown_options};

pub use crate::redact::Redaction;

/// Settings from `book.toml`'s `[preprocessor.labbook]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CourseConfig {
    /// Where a reader stands when a lab starts, relative to the book folder. Default: the
    /// chapter's own folder.
    pub start_dir: Option<PathBuf>,
    /// Extra redactions, on top of the built-in ones.
    #[serde(default)]
    pub redactions: Vec<Redaction>,
    /// Values for the placeholders readers fill in (`<your-namespace>` is filled by
    /// `your-namespace = "shop"`), used by `labbook run` and the lint.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    /// The `report.json` of the last run, relative to the book folder, shown as "last verified".
    pub report: Option<PathBuf>,
    /// How printed output ("You should see:") is checked against a run: the threshold and what a
    /// mismatch does.
    #[serde(default)]
    pub printed_output: crate::similarity::PrintedOutput,
    /// The versions the course supports (`[preprocessor.labbook.versions]`): each combination
    /// is a column of the version matrix CI runs, and of the per-lab table in the book.
    pub versions: Option<Versions>,
    /// mdBook's own preprocessor keys, accepted and ignored.
    #[serde(default, skip_serializing)]
    pub command: Option<toml::Value>,
    /// mdBook's own preprocessor key.
    #[serde(default, skip_serializing)]
    pub before: Option<toml::Value>,
    /// mdBook's own preprocessor key.
    #[serde(default, skip_serializing)]
    pub after: Option<toml::Value>,
    /// mdBook's own preprocessor key.
    #[serde(default, skip_serializing)]
    pub renderers: Option<toml::Value>,
    /// mdBook's own preprocessor key.
    #[serde(default, skip_serializing)]
    pub optional: Option<toml::Value>,
}

/// The versions a course supports, from `[preprocessor.labbook.versions]`: every Kubernetes
/// release with every Istio release is one combination of the version matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Versions {
    /// Kubernetes releases, as the tags of kind node images (`v1.33.1`), or whole node images.
    #[serde(default)]
    pub kubernetes: Vec<String>,
    /// Istio releases (`1.27.0`).
    #[serde(default)]
    pub istio: Vec<String>,
}

/// A loaded course: its labs, and where its book (if any) lives.
#[derive(Debug, Clone)]
pub struct Course {
    /// The mdBook folder holding `book.toml`, when the course is (part of) a book.
    pub book: Option<PathBuf>,
    /// The book's `src` folder, when there is a book.
    pub src: Option<PathBuf>,
    /// The book's labbook settings (defaults without a book).
    pub config: CourseConfig,
    /// The labs, in reading order.
    pub labs: Vec<Lab>,
}

impl Course {
    /// The folder that holds the accepted snapshots of a lab: `snapshots/` beside `book.toml`,
    /// or beside the chapter when there is no book.
    pub fn snapshot_dir(&self, lab: &Lab) -> PathBuf {
        match &self.book {
            Some(book) => book.join("snapshots"),
            None => lab.path.parent().unwrap_or(Path::new("")).join("snapshots"),
        }
    }

    /// The folder a reader starts a lab in.
    pub fn start_dir(&self, lab: &Lab) -> PathBuf {
        match (&self.book, &self.config.start_dir) {
            (Some(book), Some(start)) => book.join(start),
            _ => lab.path.parent().unwrap_or(Path::new("")).to_path_buf(),
        }
    }

    /// The root of the tree a sandbox copies: the book folder, or the folder of the chapters.
    pub fn root(&self) -> PathBuf {
        if let Some(book) = &self.book {
            return book.clone();
        }
        let mut dirs = self
            .labs
            .iter()
            .map(|l| l.path.parent().unwrap_or(Path::new("")));
        let first = dirs.next().unwrap_or(Path::new("")).to_path_buf();
        dirs.fold(first, |common, dir| {
            common
                .ancestors()
                .find(|a| dir.starts_with(a))
                .unwrap_or(Path::new(""))
                .to_path_buf()
        })
    }
}

/// Loads a chapter file, a folder of chapters, or a book folder.
pub fn load(path: &Path) -> Result<Course, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() && path.join("book.toml").is_file() {
        return load_book(path);
    }
    let (book, src, config) = match find_book(path) {
        Some(book) => {
            let (src, config) = read_book_toml(&book)?;
            (Some(book), Some(src), config)
        }
        None => (None, None, CourseConfig::default()),
    };
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        let mut walk = Walk::new(path);
        walk.markdown_files(path, &mut files)?;
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let labs = files
        .iter()
        .map(|f| load_chapter(f))
        .collect::<Result<_, _>>()?;
    Ok(Course {
        book,
        src,
        config,
        labs,
    })
}

/// The largest chapter, `book.toml` or `SUMMARY.md` labbook reads: far above any real chapter,
/// far below what `/dev/zero` would make it allocate.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a course file: regular files only (a FIFO would block forever, a device never end) and
/// at most [`MAX_FILE_BYTES`].
fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read as _;
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |what: String| LoadError::Binary {
        path: path.to_path_buf(),
        line: 1,
        what,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            "a folder"
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&kind) {
            "a FIFO"
        } else if std::os::unix::fs::FileTypeExt::is_char_device(&kind)
            || std::os::unix::fs::FileTypeExt::is_block_device(&kind)
        {
            "a device"
        } else {
            "a special file"
        };
        return Err(refuse(format!("it is {what}, not a regular file")));
    }
    let too_big = || refuse(format!("it is larger than {} MiB", MAX_FILE_BYTES >> 20));
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_file`] as UTF-8 text.
fn read_text(path: &Path) -> Result<String, LoadError> {
    String::from_utf8(read_file(path)?).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        LoadError::Binary {
            path: path.to_path_buf(),
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
            what: "it is not UTF-8 text (binary data?)".into(),
        }
    })
}

/// Reads and parses one chapter file.
pub fn load_chapter(path: &Path) -> Result<Lab, LoadError> {
    let text = read_text(path)?;
    Ok(Lab::parse(path, &text)?)
}

fn find_book(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let start = if absolute.is_dir() {
        absolute.as_path()
    } else {
        absolute.parent()?
    };
    let found = start.ancestors().find(|a| a.join("book.toml").is_file())?;
    // Keep the book path in the user's own terms (relative if they gave a relative path).
    let depth = start.strip_prefix(found).ok()?.components().count();
    let mut book = if absolute.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new("")).to_path_buf()
    };
    for _ in 0..depth {
        book.push("..");
    }
    Some(normalize(&book))
}

/// Removes `.` and `x/..` pairs without touching the file system, so paths stay readable (the
/// lint resolves `make -C dir` with it too).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) =>
            {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn read_book_toml(book: &Path) -> Result<(PathBuf, CourseConfig), LoadError> {
    let file = book.join("book.toml");
    let text = read_text(&file)?;
    let value: toml::Table = toml::from_str(&text).map_err(|source| LoadError::BookToml {
        path: file.clone(),
        source,
    })?;
    let src = value
        .get("book")
        .and_then(|b| b.get("src"))
        .and_then(|s| s.as_str())
        .unwrap_or("src");
    let config = match value.get("preprocessor").and_then(|p| p.get("labbook")) {
        Some(table) => table
            .clone()
            .try_into::<CourseConfig>()
            .map_err(|e| LoadError::Config {
                path: file.clone(),
                message: e.message().to_string(),
            })?,
        None => CourseConfig::default(),
    };
    if let Err(message) = crate::similarity::check_threshold(config.printed_output.threshold) {
        // `printed-output = { threshold = … }`, or `threshold = …` under its own table.
        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.contains("printed-output"))
            .unwrap_or(0);
        let line = (start..lines.len())
            .find(|&i| lines[i].contains("threshold"))
            .unwrap_or(start)
            + 1;
        return Err(LoadError::ConfigAt {
            path: file,
            line,
            message: format!("printed-output: {message}"),
        });
    }
    for redaction in &config.redactions {
        if let Err(e) = regex::Regex::new(&redaction.pattern) {
            return Err(LoadError::Config {
                path: file,
                message: format!(
                    "redaction `{}` is not a valid regex: {e}",
                    redaction.pattern
                ),
            });
        }
    }
    Ok((book.join(src), config))
}

fn load_book(book: &Path) -> Result<Course, LoadError> {
    let book = normalize(book);
    let (src, config) = read_book_toml(&book)?;
    let summary = src.join("SUMMARY.md");
    let text = read_text(&summary)?;
    let lines = LineIndex::new(&text);
    let mut labs = Vec::new();
    for (event, range) in Parser::new_ext(&text, markdown_options()).into_offset_iter() {
        let Event::Start(Tag::Link { dest_url, .. }) = event else {
            continue;
        };
        let dest = dest_url.split('#').next().unwrap_or("");
        if dest.is_empty() || dest.contains("://") {
            continue;
        }
        let chapter = src.join(dest);
        if !chapter.is_file() {
            return Err(LoadError::MissingChapter {
                summary,
                line: lines.line(range.start),
                chapter,
            });
        }
        labs.push(load_chapter(&chapter)?);
    }
    Ok(Course {
        book: Some(book),
        src: Some(src),
        config,
        labs,
    })
}

/// The walk of a folder of chapters. Folder links are followed only when they lead to a folder
/// inside the course not walked yet: `self -> .` does not read the chapters again and again, and
/// `link -> /` does not walk the whole file system.
struct Walk {
    root: Option<PathBuf>,
    visited: std::collections::HashSet<PathBuf>,
}

impl Walk {
    fn new(root: &Path) -> Walk {
        Walk {
            root: std::fs::canonicalize(root).ok(),
            visited: std::collections::HashSet::new(),
        }
    }

    /// Whether to walk `dir`: a real folder of the course, first time seen.
    fn enter(&mut self, dir: &Path) -> bool {
        let Ok(real) = std::fs::canonicalize(dir) else {
            return false;
        };
        let inside = self.root.as_ref().is_none_or(|root| real.starts_with(root));
        inside && self.visited.insert(real)
    }

    fn markdown_files(&mut self, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
        if !self.enter(dir) {
            return Ok(());
        }
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                if !matches!(
                    name.as_str(),
                    "snapshots" | "target" | "node_modules" | "book"
                ) {
                    self.markdown_files(&path, out)?;
                }
            } else if name.ends_with(".md") && name != "SUMMARY.md" {
                out.push(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_paths_readable() {
        let cases = [
            ("book/src/m2/..", "book/src"),
            ("./book", "book"),
            ("a/b/../../..", ".."),
            ("", "."),
            ("a/b/../c/./d", "a/c/d"),
            ("a/..", "."),
            ("../x", "../x"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize(Path::new(input)),
                PathBuf::from(expected),
                "{input}"
            );
        }
    }
}
