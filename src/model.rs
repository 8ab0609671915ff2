//! The lab model: a chapter is a [`Lab`], and each runnable block in it is a [`Step`].
//!
//! A step keeps everything the preprocessor, the harness and the lint need to know about the block
//! without going back to the Markdown: where it is (byte range and line), under which headings, what
//! prose introduces it, what it runs, in which shell, and why it was given its kind.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::annotation::Annotation;
pub use crate::kinds::{Dialect, StepKind};
use crate::placeholder::Placeholder;
use crate::redact::Redactor;
use crate::shell::Analysis;
use crate::similarity::Comparison;
use crate::text::{Style, sanitize};

/// Where a block sits in its chapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Byte range of the whole block, fences included (and its annotation comment, if any, is not).
    pub bytes: Range<usize>,
    /// 1-based line of the opening fence.
    pub line: usize,
}

/// Why a step was given its kind; shown by `labbook plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum Reason {
    /// An explicit `<!-- labbook: kind=… -->` annotation.
    Annotation,
    /// A heading in the step's heading path.
    Heading {
        /// The heading text.
        heading: String,
    },
    /// The prose just before the block.
    Cue {
        /// The words of the cue that decided.
        words: String,
    },
    /// A command in the block.
    Command {
        /// What the command does, e.g. "opens a bash shell in pod `debug`".
        what: String,
        /// The Markdown line of the command.
        line: usize,
    },
    /// Another tab of a content tab group: the lab runs the group's first tab.
    Tab {
        /// The tab's label.
        tab: String,
        /// The label of the group's first tab.
        first: String,
    },
    /// What the block holds is printed output, not commands.
    Printed,
    /// Nothing says otherwise.
    Default,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Annotation => f.write_str("annotation"),
            Reason::Heading { heading } => write!(f, "heading: {heading}"),
            Reason::Cue { words } => write!(f, "cue: \"{words}\""),
            Reason::Command { what, line } => write!(f, "command {what} (line {line})"),
            Reason::Tab { tab, first } => {
                write!(f, "another tab: \"{tab}\" (the lab runs \"{first}\")")
            }
            Reason::Printed => f.write_str("printed output, not commands"),
            Reason::Default => f.write_str("an ordinary command"),
        }
    }
}

/// How an `open-session` step opens its shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The tool that opens it: `kubectl` or `docker`.
    pub tool: String,
    /// The pod, workload or container the shell runs in, as written (`debug`, `deployment/web`).
    pub target: Option<String>,
    /// The image, when the command starts a new pod or container.
    pub image: Option<String>,
    /// The shell's dialect: what the `session-input` blocks are typed into.
    pub dialect: Dialect,
    /// The shell command as written (`bash`, `/bin/sh`), or `None` when the image's default runs.
    pub shell: Option<String>,
    /// Whether `kubectl run --rm` deletes the pod when the session ends.
    pub remove: bool,
    /// Whether a `kubectl run` session sets `--restart=Never`.
    pub restart_never: bool,
    /// The Markdown line of the command.
    pub line: usize,
}

/// One runnable block of a lab.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Stable id: the slug of the heading path plus the ordinal under it, or an explicit `id=`.
    pub id: String,
    /// What the block is for.
    pub kind: StepKind,
    /// Why it has that kind.
    pub reason: Reason,
    /// Where the block is.
    pub span: Span,
    /// The headings above the block, outermost first (the chapter title included).
    pub heading: Vec<String>,
    /// The prose paragraph just before the block.
    pub cue: Option<String>,
    /// The prose paragraph just after the block ("Stop watching with Ctrl+C when …").
    pub after: Option<String>,
    /// The fence's language (`bash`, `console`, ...).
    pub lang: String,
    /// What a reader types: the block's text, or for `console` blocks only the `$ ` commands.
    pub code: String,
    /// The Markdown line of each line of `code`.
    pub code_lines: Vec<usize>,
    /// The shell that runs the block.
    pub dialect: Dialect,
    /// For `session-input`: the id of the `open-session` step it feeds.
    pub session: Option<String>,
    /// For `open-session`: how the shell is opened.
    pub opens: Option<SessionInfo>,
    /// For `watch`: what the prose says to wait for before pressing Ctrl+C.
    pub stop_hint: Option<String>,
    /// The explicit settings from the block's annotation.
    pub annotation: Annotation,
    /// The commands the block runs, as understood by the shell parser.
    pub analysis: Analysis,
    /// For `output`: the id of the step whose printed output it shows.
    pub output_of: Option<String>,
    /// Values the reader must fill in before running the block.
    pub placeholders: Vec<Placeholder>,
    /// Executable Docs' `expected_similarity` comment before the block, checked to be from 0 to 1.
    pub similarity: Option<f64>,
    /// The same comment written as a quoted regular expression the output must match.
    pub similarity_regex: Option<String>,
    /// Whether some lines of the block are printed output, which the reader does not type.
    pub printed: bool,
    /// The printed output the block shows: for `output`, its text without `$ ` command lines; for
    /// other steps, the lines after their commands (empty when there are none).
    pub shown: String,
    /// The Markdown line of the first line of `shown`.
    pub shown_line: usize,
}

/// Printed output a step's run is checked against: an `output` block after it, or the printed
/// lines of its own block.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintedExpectation<'a> {
    /// The id of the block that holds the printed text.
    pub block: &'a str,
    /// The Markdown line of the printed text.
    pub line: usize,
    /// The printed text.
    pub text: &'a str,
    /// The block's own threshold (`expect=similar:`, `expected_similarity`), or `None` for the
    /// book's.
    pub threshold: Option<f64>,
    /// Executable Docs' `expected_similarity="regex"`: the output must match it (similarity 1),
    /// instead of resembling the text.
    pub pattern: Option<&'a str>,
}

impl PrintedExpectation<'_> {
    /// Compares what the step printed with this printed output: by similarity, or by the
    /// block's regular expression when it has one (matched against the output as printed).
    pub fn compare(&self, actual: &str, redactor: &Redactor) -> Comparison {
        let mut comparison = crate::similarity::compare(self.text, actual, redactor);
        if let Some(pattern) = self.pattern {
            let output = actual.replace("\r\n", "\n");
            let matched = regex::Regex::new(pattern)
                .is_ok_and(|regex| regex.is_match(output.trim_end_matches('\n')));
            comparison.similarity = if matched { 1.0 } else { 0.0 };
        }
        comparison
    }
}

impl Step {
    /// The 1-based number of the step within its lab, as shown to readers.
    pub fn number(&self, lab: &Lab) -> usize {
        lab.steps
            .iter()
            .position(|s| std::ptr::eq(s, self))
            .map_or(0, |i| i + 1)
    }

    /// The Markdown line of the `index`-th (0-based) line of `code`.
    pub fn markdown_line(&self, code_line: usize) -> usize {
        self.code_lines
            .get(code_line)
            .copied()
            .unwrap_or(self.span.line)
    }

    /// The code with each placeholder filled by `value(name)`, or by a plain word made of its
    /// name: what the shell parser and ShellCheck should read.
    pub fn filled_code(&self, value: impl Fn(&str) -> Option<String>) -> String {
        if self.placeholders.is_empty() {
            return self.code.clone();
        }
        crate::placeholder::fill(&self.code, &self.placeholders, value)
    }

    /// The innermost heading, if any.
    pub fn section(&self) -> Option<&str> {
        self.heading.last().map(String::as_str)
    }
}

/// A heading of a chapter, kept so that sections without any block (a manual check) can be seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heading {
    /// 1 for `#`, 2 for `##`, and so on.
    pub level: u8,
    /// The heading's text.
    pub text: String,
    /// 1-based line of the heading.
    pub line: usize,
}

/// A chapter understood as a lab (whether it really is one: [`Lab::is_lab`]).
#[derive(Debug, Clone, Serialize)]
pub struct Lab {
    /// The chapter's path, as the user named it (or relative to the book).
    pub path: PathBuf,
    /// The chapter's first level-1 heading, or its file name.
    pub title: String,
    /// The runnable blocks, in order.
    pub steps: Vec<Step>,
    /// Every heading of the chapter, in order (the title included).
    #[serde(skip)]
    pub headings: Vec<Heading>,
    /// Byte range of the heading that gave the title, when a level-1 heading did; the
    /// preprocessor puts the lab's banner right after it.
    #[serde(skip)]
    pub title_bytes: Option<Range<usize>>,
    /// The chapter's Markdown, unchanged.
    #[serde(skip)]
    pub source: String,
    /// What the author should know about how the chapter was read (a fence never closed).
    #[serde(skip)]
    pub warnings: Vec<Warning>,
    /// mkdocs `--8<--` snippet includes, for the lint to check that their files exist.
    #[serde(skip)]
    pub snippets: Vec<crate::dialect::Snippet>,
}

/// The value of the placeholder `name` for the step at `index` of `lab`: from the last
/// `var.NAME=` annotation at or before that step, else from the book's `variables`.
pub fn placeholder_value(
    lab: &Lab,
    index: usize,
    variables: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Option<String> {
    lab.steps
        .iter()
        .take(index + 1)
        .rev()
        .find_map(|s| {
            s.annotation
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
        .or_else(|| variables.get(name).cloned())
}

/// Something the parser read in a forgiving way, that the author should fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// 1-based line.
    pub line: usize,
    /// What was read, and how to fix it.
    pub message: String,
    /// For a fence never closed: the closing fence it lacks (the preprocessor adds it before
    /// its own markup, which would otherwise become code).
    pub missing_fence: Option<String>,
}

impl Lab {
    /// The one identity of a chapter: its path relative to the book's `src` folder (given as
    /// `book_src`; the file name alone without a book, or when the chapter is outside it), without
    /// `.md`, with `/` written as `__`, in [`Style::FileName`] (`m1__lab`).
    ///
    /// Snapshot names, run folders (and so kind cluster names) and HTML anchors are all made from
    /// it, so that a chapter is the same chapter everywhere.
    pub fn key(&self, book_src: Option<&Path>) -> String {
        let relative = book_src
            .and_then(|src| self.path.strip_prefix(src).ok())
            .unwrap_or_else(|| Path::new(self.path.file_name().unwrap_or_default()));
        let text = relative
            .with_extension("")
            .to_string_lossy()
            .replace(['/', '\\'], "__");
        sanitize(&text, Style::FileName)
    }

    /// Whether the chapter is a lab: it has at least one step that runs (see [`StepKind::runs`]).
    /// A chapter of prose, or of blocks that are all `skip`, is not a lab.
    pub fn is_lab(&self) -> bool {
        self.steps.iter().any(|s| s.kind.runs())
    }

    /// The step with the given id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The printed output the step at `index` is checked against: the printed lines of its own
    /// block, then each `output` block that shows what it prints. A step that never runs, or
    /// whose output is not its own to compare (a background step, a session's transcript), has
    /// none.
    pub fn printed_expectations(&self, index: usize) -> Vec<PrintedExpectation<'_>> {
        let Some(step) = self.steps.get(index) else {
            return Vec::new();
        };
        if !step.kind.runs() || matches!(step.kind, StepKind::Background | StepKind::OpenSession) {
            return Vec::new();
        }
        let own = !step.shown.trim().is_empty();
        let mut found = Vec::new();
        if own {
            found.push(PrintedExpectation {
                block: &step.id,
                line: step.shown_line,
                text: &step.shown,
                threshold: step.annotation.similar.or(step.similarity),
                pattern: step.similarity_regex.as_deref(),
            });
        }
        // The parser puts the output blocks of a step right after it.
        for output in self.steps[index + 1..]
            .iter()
            .take_while(|s| s.kind == StepKind::Output)
            .filter(|s| s.output_of.as_deref() == Some(&step.id))
        {
            // A command block's `expect=similar` is for the output blocks after it, unless it
            // shows printed lines of its own.
            let inherited = (!own).then_some(step.annotation.similar).flatten();
            found.push(PrintedExpectation {
                block: &output.id,
                line: output.span.line,
                text: &output.shown,
                threshold: output
                    .annotation
                    .similar
                    .or(output.similarity)
                    .or(inherited),
                pattern: output.similarity_regex.as_deref(),
            });
        }
        found
    }

    /// The `session-input` steps that feed the given `open-session` step, in order.
    pub fn session_inputs<'a>(&'a self, session_id: &'a str) -> impl Iterator<Item = &'a Step> {
        self.steps
            .iter()
            .filter(move |s| s.session.as_deref() == Some(session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_skip_steps_do_not_run() {
        for kind in StepKind::ALL {
            assert_eq!(
                kind.runs(),
                !matches!(kind, StepKind::Skip | StepKind::Output),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_lab_has_a_step_that_runs() {
        let cases = [
            ("# Prose\n\nNo block.\n", false),
            ("# Config\n\n```yaml\na: 1\n```\n", false),
            (
                "# Skipped\n\n<!-- labbook: kind=skip -->\n```bash\necho hi\n```\n",
                false,
            ),
            ("# Lab\n\n```bash\necho hi\n```\n", true),
            (
                "# Mixed\n\n<!-- labbook: kind=skip -->\n```bash\necho a\n```\n\n```bash\necho b\n```\n",
                true,
            ),
        ];
        for (source, expected) in cases {
            let lab = Lab::parse("ch.md", source).expect("parses");
            assert_eq!(lab.is_lab(), expected, "{source}");
        }
    }

    #[test]
    fn printed_expectations_come_with_their_threshold() {
        let source = "# T\n\n## Own lines\n\n```console\n$ echo a\na\n```\n\n\
            ## Inherited\n\n<!-- labbook: expect=similar:0.5 -->\n```bash\necho b\n```\n\n\
            Output:\n\n```text\nb\n```\n\n\
            ## Regex\n\n```bash\necho c\n```\n\n\
            <!-- expected_similarity=\"^c$\" -->\n```text\nc\n```\n\n\
            ## Skipped\n\n<!-- labbook: kind=skip -->\n```bash\necho d\n```\n\nOutput:\n\n```text\nd\n```\n";
        let lab = Lab::parse("ch.md", source).expect("parses");
        // (step index, [(block, line, text, threshold, pattern)])
        type Row<'a> = (&'a str, usize, &'a str, Option<f64>, Option<&'a str>);
        let cases: &[(usize, &[Row])] = &[
            (0, &[("own-lines-1", 7, "a\n", None, None)]),
            (1, &[("inherited-1-output", 19, "b\n", Some(0.5), None)]),
            (3, &[("regex-1-output", 30, "c\n", None, Some("^c$"))]),
            (5, &[]),
            (6, &[]),
        ];
        for (index, want) in cases {
            let found: Vec<Row> = lab
                .printed_expectations(*index)
                .iter()
                .map(|e| (e.block, e.line, e.text, e.threshold, e.pattern))
                .collect();
            assert_eq!(found, *want, "step {index}");
        }
        let redactor = Redactor::default();
        let regex = &lab.printed_expectations(3)[0];
        assert_eq!(regex.compare("c\n", &redactor).similarity, 1.0);
        assert_eq!(regex.compare("cc\n", &redactor).similarity, 0.0);
    }

    #[test]
    fn a_chapter_key_is_its_path_in_the_book() {
        let cases = [
            ("book/src/m1/lab.md", Some("book/src"), "m1__lab"),
            ("book/src/README.md", Some("book/src"), "README"),
            (
                "book/src/m 2/Lab (draft).md",
                Some("book/src"),
                "m-2__Lab--draft-",
            ),
            ("book/src/m1/lab.md", None, "lab"),
            ("elsewhere/m1/lab.md", Some("book/src"), "lab"),
            ("lab.v2.md", None, "lab.v2"),
        ];
        for (path, src, want) in cases {
            let lab = Lab {
                path: PathBuf::from(path),
                title: "T".into(),
                steps: Vec::new(),
                headings: Vec::new(),
                title_bytes: None,
                source: String::new(),
                warnings: Vec::new(),
                snippets: Vec::new(),
            };
            assert_eq!(lab.key(src.map(Path::new)), want, "{path}");
        }
    }
}
