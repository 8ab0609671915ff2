//! Errors raised while reading course files and parsing chapters into labs.
//!
//! Every error names the file, and the line where one is known, because an author has to find and
//! fix the Markdown; the CLI maps all of them to exit code 2.

use std::path::PathBuf;

/// A chapter that cannot be understood as a lab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct ParseError {
    /// The chapter file.
    pub path: PathBuf,
    /// The 1-based line the problem starts on.
    pub line: usize,
    /// What is wrong, in lowercase, without the location.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(path: &std::path::Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// A course path that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist or cannot be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not text.
    #[error("{}:{line}: failed to read chapter: {what}", path.display())]
    Binary {
        /// The file.
        path: PathBuf,
        /// The line of the first offending byte.
        line: usize,
        /// What was found.
        what: String,
    },
    /// `book.toml` is not valid.
    #[error("failed to parse {}", path.display())]
    BookToml {
        /// The `book.toml` file.
        path: PathBuf,
        /// The TOML error.
        #[source]
        source: toml::de::Error,
    },
    /// `book.toml` holds a `[preprocessor.labbook]` setting labbook cannot use.
    #[error("{}: failed to read [preprocessor.labbook]: {message}", path.display())]
    Config {
        /// The `book.toml` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `[preprocessor.labbook]` setting out of range, at a known line of `book.toml`.
    #[error("{}:{line}: failed to read [preprocessor.labbook]: {message}", path.display())]
    ConfigAt {
        /// The `book.toml` file.
        path: PathBuf,
        /// The line of the setting.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `SUMMARY.md` links to a chapter that does not exist.
    #[error("{}:{line}: failed to find chapter {}", summary.display(), chapter.display())]
    MissingChapter {
        /// The `SUMMARY.md` file.
        summary: PathBuf,
        /// The line of the link.
        line: usize,
        /// The chapter path as linked.
        chapter: PathBuf,
    },
    /// A chapter could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl LoadError {
    /// The 1-based line the error points at, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            LoadError::Binary { line, .. }
            | LoadError::MissingChapter { line, .. }
            | LoadError::ConfigAt { line, .. } => Some(*line),
            LoadError::Parse(e) => Some(e.line),
            _ => None,
        }
    }
}
