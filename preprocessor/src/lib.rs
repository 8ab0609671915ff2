//! The book side of labbook: a lab, rendered into its chapter for mdBook.
//!
//! For the `html` renderer every step's fenced block is wrapped in a
//! `<div class="labbook-step" data-kind="…">` carrying a badge that says what to do with it, its
//! number and a stable anchor, and, for checked steps, the expected output; each lab (a chapter
//! with a step that runs, [`Lab::is_lab`]) gets a banner saying when it was last verified. Every
//! other renderer gets the chapter with its annotation comments removed and nothing else changed.
//!
//! The chapter is never re-rendered: the wrapper is spliced into the source by the byte spans the
//! model recorded, and the fenced block stays Markdown so mdBook still highlights it. Chapters
//! without steps come back byte-identical.

mod banner;
mod html;
pub mod preprocessor;
mod printed;
mod step;

use std::ops::Range;
use std::path::{Path, PathBuf};

use regex::Regex;

use labbook::course::{Course, CourseConfig};
use labbook::model::{Lab, Step, StepKind};
use labbook::report::Report;
use labbook::snapshot;
use labbook::text::{Style, sanitize};

pub use html::escape;
/// The mdBook preprocessor crate this module implements, for callers that drive mdBook themselves.
pub use mdbook_preprocessor;
pub use preprocessor::{Labbook, RenderError};

/// The stylesheet of the marks the preprocessor adds (badges, expected output, banners), shipped
/// with the tool: `labbook init` writes it as `theme/labbook.css`, and a book lists it in
/// `[output.html] additional-css`. Without it expected output shows as unlabelled text.
pub const STYLESHEET: &str = include_str!("labbook.css");

/// Where `labbook init` puts the stylesheet, relative to the book folder.
pub const STYLESHEET_PATH: &str = "theme/labbook.css";

/// Builds the lab model's lazily compiled parts (regular expressions, the shell parser) by
/// parsing a small chapter that reaches them.
///
/// `labbook build` calls it on a spare thread while mdBook loads the book, so that the
/// preprocessor does not pay for them when it starts.
pub fn warm_up() {
    const CHAPTER: &str = "# Lab\n\n## Lab Setup\n\nOptionally, first:\n\n\
        <!-- labbook: id=w timeout=1m until=\"x\" expect=contains:\"x\" -->\n\
        ```bash\nkubectl get pods -w &\ncat > f <<'EOF'\nx\nEOF\n```\n\n\
        Stop with Ctrl+C when done.\n\n## Verify\n\n\
        ```bash\nkubectl run d --image=busybox --restart=Never -it --rm -- sh\n```\n\n\
        Inside the `d` pod:\n\n```sh\nwget -qO- web\n```\n\n## Troubleshooting\n\n\
        ```bash\nwhile true; do ls; done\n```\n\n## Cleanup\n\n```bash\nls\n```\n\n\
        ## Next Steps\n\n```bash\nls\n```\n";
    let _ = Lab::parse("warm-up.md", CHAPTER);
}

/// What a renderer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The html renderer: steps wrapped and annotated, a banner per lab.
    Html,
    /// Any other renderer: annotation comments removed, nothing else changed.
    Clean,
}

impl Output {
    /// The output for an mdBook renderer name.
    pub fn for_renderer(renderer: &str) -> Output {
        if renderer == "html" {
            Output::Html
        } else {
            Output::Clean
        }
    }
}

/// Everything rendering needs besides the lab: the course (where snapshots live, the book's
/// settings) and the last run's report.
#[derive(Debug)]
pub struct Book {
    course: Course,
    report: Option<Report>,
    placeholders: Regex,
    /// File names in the book's snapshot folder, listed on first use.
    snapshots: std::sync::OnceLock<std::collections::HashSet<std::ffi::OsString>>,
}

impl Book {
    /// A book whose chapters live under `src` in the book folder `root`.
    pub fn new(root: PathBuf, src: PathBuf, config: CourseConfig, report: Option<Report>) -> Book {
        let placeholders = placeholder_regex(&config);
        Book {
            course: Course {
                book: Some(root),
                src: Some(src),
                config,
                labs: Vec::new(),
            },
            report,
            placeholders,
            snapshots: std::sync::OnceLock::new(),
        }
    }

    /// The course this book renders (its `labs` are empty: chapters come one by one).
    pub fn course(&self) -> &Course {
        &self.course
    }

    /// Parses a chapter's Markdown (`relative` to the book's `src`) and renders it.
    ///
    /// Returns `None` when the chapter has no steps, so that the caller leaves it untouched.
    pub fn render_chapter(
        &self,
        relative: &Path,
        content: &str,
        output: Output,
    ) -> Result<Option<String>, labbook::error::ParseError> {
        // No fence, no step: skip the parse for prose chapters, unless an annotation stands in
        // one (the parse reports it, and it must not reach the page).
        let fenced = content.contains("```") || content.contains("~~~");
        if !fenced && labbook::annotation::find_opening(content).is_none() {
            return Ok(None);
        }
        let src = self.course.src.clone().unwrap_or_default();
        let lab = Lab::parse(src.join(relative), content)?;
        if lab.steps.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.render(&lab, output)))
    }

    /// Renders a parsed lab for an output. A lab without steps comes back unchanged.
    pub fn render(&self, lab: &Lab, output: Output) -> String {
        let source = lab.source.as_str();
        if lab.steps.is_empty() {
            return source.to_string();
        }
        let mut edits: Vec<Edit> = Vec::with_capacity(lab.steps.len() * 2 + 1);
        // Only a lab gets a banner: a chapter whose blocks are all `skip` is not verified by a run.
        if output == Output::Html && lab.is_lab() {
            let (at, prefix) = match &lab.title_bytes {
                Some(title) => (
                    line_end(source, title.end),
                    container_prefix(source, title.start),
                ),
                None => (0, String::new()),
            };
            let mut text = String::new();
            if at > 0 && !source[..at].ends_with('\n') {
                text.push('\n');
            }
            let blank = prefix.trim_end();
            text.push_str(&format!(
                "{blank}\n{prefix}{}\n{blank}\n",
                banner::banner(self.report.as_ref(), &lab.path)
            ));
            edits.push(Edit::insert(at, text));
        }
        for (index, step) in lab.steps.iter().enumerate() {
            if let Some(comment) = step.annotation.bytes.clone().filter(|r| !r.is_empty()) {
                edits.push(Edit {
                    range: comment_removal(source, comment),
                    text: String::new(),
                });
            }
            if output == Output::Html {
                self.wrap(lab, index, step, &mut edits);
            }
        }
        apply(source, edits)
    }

    /// Adds the edits that wrap one step's block.
    fn wrap(&self, lab: &Lab, index: usize, step: &Step, edits: &mut Vec<Edit>) {
        let source = lab.source.as_str();
        let span = step.span.bytes.clone();
        if span.end > source.len() || span.start > span.end {
            return;
        }
        let prefix = container_prefix(source, span.start);
        let blank = prefix.trim_end();
        let anchor = self.anchor(lab, step);
        // Two HTML blocks per step, the opening line and the closing one: mdBook tokenizes each
        // HTML block on its own, so fewer and smaller blocks keep the build fast.
        let mut head = format!(
            "<div class=\"labbook-step\" data-kind=\"{kind}\" id=\"{anchor}\">\
             <a href=\"#{anchor}\">Step {number}</a> \
             <span class=\"labbook-badge\">{badge}</span>",
            kind = step.kind.name(),
            anchor = escape(&anchor),
            number = index + 1,
            badge = step::badge(lab, step),
        );
        if step.kind == StepKind::SessionInput
            && let Some(opener) = step::session_of(lab, step)
        {
            let number = lab
                .steps
                .iter()
                .position(|s| s.id == opener.id)
                .map_or(0, |i| i + 1);
            head.push_str(&format!(
                " <a class=\"labbook-step-session\" href=\"#{}\">into the shell from step {number}</a>",
                escape(&self.anchor(lab, opener))
            ));
        }
        edits.push(Edit::insert(
            span.start,
            format!("{head}\n{blank}\n{prefix}"),
        ));

        let at = line_end(source, span.end);
        let mut tail = String::new();
        if !source[..at].ends_with('\n') {
            tail.push('\n');
        }
        // A fence never closed would swallow the markup below as code: close it first.
        if let Some(fence) = lab
            .warnings
            .iter()
            .find(|w| w.line == step.span.line)
            .and_then(|w| w.missing_fence.as_ref())
        {
            tail.push_str(&prefix);
            tail.push_str(fence);
            tail.push('\n');
        }
        tail.push_str(blank);
        tail.push('\n');
        tail.push_str(&prefix);
        let expected = match step::expectation(step) {
            None => step::Expected::Nothing,
            Some(labbook::annotation::Expect::Snapshot) => {
                step::Expected::Snapshot(self.accepted_snapshot(lab, step))
            }
            Some(rule) => step::Expected::Rule(rule),
        };
        let redact = |raw: &str| self.mark_placeholders(raw);
        if let Some(panel) = step::expected_panel(&expected, &redact) {
            tail.push_str(&panel);
        }
        if let Some(note) = printed::note(self.report.as_ref(), lab, step) {
            tail.push_str(&note);
        }
        tail.push_str("</div>\n");
        tail.push_str(blank);
        tail.push('\n');
        edits.push(Edit::insert(at, tail));
    }

    /// The accepted snapshot of a step. The snapshot folder is listed once, so that the many
    /// steps without a snapshot cost no file system call.
    fn accepted_snapshot(&self, lab: &Lab, step: &Step) -> Option<String> {
        let path = snapshot::path(&self.course, lab, step);
        let listed = self.snapshots.get_or_init(|| {
            std::fs::read_dir(self.course.snapshot_dir(lab))
                .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default()
        });
        if !listed.contains(path.file_name()?) {
            return None;
        }
        snapshot::read_accepted(&self.course, lab, step)
    }

    /// The stable anchor of a step: chapter and step id, so that anchors stay unique on the
    /// print page, where all chapters share one document.
    fn anchor(&self, lab: &Lab, step: &Step) -> String {
        format!(
            "step-{}--{}",
            snapshot::chapter_key(&self.course, lab),
            sanitize(&step.id, Style::FileName)
        )
    }

    /// Escapes snapshot text for a `<pre>`, marking redaction placeholders (`[pod-hash]`, `[age]`,
    /// the book's own replacements) as `<var>`, the element for a value that varies; the panel
    /// says once what they mean. Placeholders are found in the raw text, so that a replacement
    /// can never match inside an escape like `&amp;`.
    fn mark_placeholders(&self, raw: &str) -> String {
        let mut out = String::with_capacity(raw.len() + raw.len() / 8);
        let mut last = 0;
        for found in self.placeholders.find_iter(raw) {
            out.push_str(&html::escape_pre(&raw[last..found.start()]));
            out.push_str("<var>");
            out.push_str(&escape(found.as_str()));
            out.push_str("</var>");
            last = found.end();
        }
        out.push_str(&html::escape_pre(&raw[last..]));
        out
    }
}

/// The placeholders redactions leave in snapshots: the built-in `[lowercase-words]` and the
/// book's own replacements (longest first, so that one is not cut short by another).
fn placeholder_regex(config: &CourseConfig) -> Regex {
    let mut own: Vec<&str> = config
        .redactions
        .iter()
        .map(|r| r.replacement.as_str())
        .filter(|r| !r.trim().is_empty())
        .collect();
    own.sort_by_key(|r| std::cmp::Reverse(r.len()));
    let mut pattern: String = own.iter().map(|r| regex::escape(r) + "|").collect();
    pattern.push_str(r"\[[a-z][a-z0-9_-]*\]");
    Regex::new(&pattern)
        .unwrap_or_else(|_| Regex::new(r"\[[a-z][a-z0-9_-]*\]").expect("static regex"))
}

/// One change to the chapter source: `range` replaced by `text`.
#[derive(Debug)]
struct Edit {
    range: Range<usize>,
    text: String,
}

impl Edit {
    fn insert(at: usize, text: String) -> Edit {
        Edit {
            range: at..at,
            text,
        }
    }
}

/// Applies non-overlapping edits; insertions at the same place keep the order they were added.
fn apply(source: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let extra: usize = edits.iter().map(|e| e.text.len()).sum();
    let mut out = String::with_capacity(source.len() + extra);
    let mut cursor = 0;
    for edit in edits {
        // Spans come from the model, so they are in bounds and on char boundaries; an edit that
        // would overlap an earlier one is dropped rather than corrupt the chapter.
        let valid = edit.range.start >= cursor
            && edit.range.end <= source.len()
            && source.is_char_boundary(edit.range.start)
            && source.is_char_boundary(edit.range.end);
        if !valid {
            continue;
        }
        out.push_str(&source[cursor..edit.range.start]);
        out.push_str(&edit.text);
        cursor = edit.range.end;
    }
    out.push_str(&source[cursor..]);
    out
}

/// What stands before `at` on its line, as it must stand before every line inserted there to stay
/// in the same container: block-quote markers and indentation are kept, list markers become
/// spaces (the width of a list item's content).
fn container_prefix(source: &str, at: usize) -> String {
    let at = at.min(source.len());
    let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    source[start..at]
        .chars()
        .map(|c| {
            if c == '>' || c == '\t' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// The start of the line after the one holding `at - 1`: where text can be inserted after a
/// block that ends at `at` (the source's end if that line is the last).
fn line_end(source: &str, at: usize) -> usize {
    let at = at.min(source.len());
    if at > 0 && source.as_bytes()[at - 1] == b'\n' {
        return at;
    }
    source[at..].find('\n').map_or(source.len(), |i| at + i + 1)
}

/// What to remove for an annotation comment: its whole line(s) when it stands alone on them,
/// otherwise (in a block quote, say) just the comment.
fn comment_removal(source: &str, comment: Range<usize>) -> Range<usize> {
    if comment.end > source.len() {
        return comment;
    }
    let line_start = source[..comment.start].rfind('\n').map_or(0, |i| i + 1);
    let after = &source[comment.end..];
    let rest = after.find('\n').map_or(after.len(), |i| i + 1);
    // Only container prefixes (indentation, block-quote markers) may precede it.
    let alone = source[line_start..comment.start]
        .chars()
        .all(|c| matches!(c, ' ' | '\t' | '>'))
        && after[..rest].trim().is_empty();
    if alone {
        line_start..comment.end + rest
    } else {
        comment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Book {
        Book::new(
            PathBuf::from("/nowhere/book"),
            PathBuf::from("/nowhere/book/src"),
            CourseConfig::default(),
            None,
        )
    }

    fn render(source: &str, output: Output) -> String {
        let lab = Lab::parse("/nowhere/book/src/ch.md", source).expect("parses");
        book().render(&lab, output)
    }

    #[test]
    fn prefixes_keep_blocks_in_their_container() {
        let cases = [
            ("```bash", 0, ""),
            ("   ```bash", 3, "   "),
            ("1. ```bash", 3, "   "),
            ("- > ```bash", 4, "  > "),
            ("x\n>\t```bash", 4, ">\t"),
        ];
        for (source, at, expected) in cases {
            assert_eq!(container_prefix(source, at), expected, "{source:?}");
        }
    }

    #[test]
    fn line_ends_are_found_after_blocks() {
        let cases = [
            ("```\nx", 3, 4),
            ("```\n", 4, 4),
            ("```", 3, 3),
            ("```  \r\nz", 3, 7),
            ("", 0, 0),
        ];
        for (source, at, expected) in cases {
            assert_eq!(line_end(source, at), expected, "{source:?}");
        }
    }

    #[test]
    fn comments_alone_on_their_line_take_the_line_with_them() {
        let cases = [
            ("a\n<!-- c -->\nb", 2..12, "a\nb"),
            ("a\n  <!-- c -->  \r\nb", 4..14, "a\nb"),
            ("> <!-- c -->\n> b", 2..12, "> b"),
            ("- <!-- c -->\n  b", 2..12, "- \n  b"),
            ("<!-- c -->", 0..10, ""),
        ];
        for (source, comment, expected) in cases {
            let removal = comment_removal(source, comment);
            let out = format!("{}{}", &source[..removal.start], &source[removal.end..]);
            assert_eq!(out, expected, "{source:?}");
        }
    }

    #[test]
    fn chapters_without_steps_are_untouched() {
        for source in [
            "",
            "# Only prose\n\nText.\n",
            "```yaml\na: 1\n```\n",
            "<!-- just a note -->\n",
        ] {
            for output in [Output::Html, Output::Clean] {
                assert_eq!(render(source, output), source);
                let rendered = book()
                    .render_chapter(Path::new("ch.md"), source, output)
                    .expect("parses");
                assert_eq!(rendered, None);
            }
        }
    }

    #[test]
    fn placeholders_are_marked_in_raw_text_and_everything_else_escaped() {
        let mut config = CourseConfig::default();
        for replacement in ["<session-id>", "amp", "lt"] {
            config.redactions.push(labbook::course::Redaction {
                pattern: "x".into(),
                replacement: replacement.into(),
            });
        }
        let book = Book::new("b".into(), "b/src".into(), config, None);
        let cases = [
            (
                "web-[pod-hash] [age]",
                "web-<var>[pod-hash]</var> <var>[age]</var>",
            ),
            (
                "<session-id> & <b>",
                "<var>&lt;session-id&gt;</var> &amp; &lt;b&gt;",
            ),
            ("a&b\n[ip]\n", "a&amp;b&#10;<var>[ip]</var>&#10;"),
            ("[NotOne] [x y]", "[NotOne] [x y]"),
            ("salt", "sa<var>lt</var>"),
        ];
        for (raw, expected) in cases {
            // `amp` and `lt` are placeholders too, yet never found inside `&amp;` or `&lt;`.
            assert_eq!(book.mark_placeholders(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn annotations_without_a_block_are_errors_even_in_prose_chapters() {
        let err = book()
            .render_chapter(
                Path::new("prose.md"),
                "# Prose\n\n<!-- labbook: kind=run -->\n\nNo block follows.\n",
                Output::Clean,
            )
            .expect_err("dangling annotation");
        assert_eq!(err.line, 3);
        assert!(
            err.to_string()
                .starts_with("/nowhere/book/src/prose.md:3: "),
            "{err}"
        );
    }

    #[test]
    fn clean_output_only_loses_annotations() {
        let source = "# T\n\n<!-- labbook: kind=verify -->\n```bash\nls\n```\n\n> <!-- labbook: id=q -->\n> ```sh\n> ls\n> ```\n";
        assert_eq!(
            render(source, Output::Clean),
            "# T\n\n```bash\nls\n```\n\n> ```sh\n> ls\n> ```\n"
        );
    }

    #[test]
    fn html_wraps_blocks_without_moving_them_out_of_lists() {
        let source = "# T\n\n1. First:\n\n   ```bash\n   echo one\n   ```\n2. Then:\n   ```bash\n   echo two\n   ```";
        let out = render(source, Output::Html);
        assert!(
            out.contains(
                "\n   <div class=\"labbook-step\" data-kind=\"run\" id=\"step-ch--intro-1\">"
            ),
            "{out}"
        );
        assert!(
            out.contains("</span>\n\n   ```bash\n   echo one\n   ```\n\n   </div>\n\n2. Then:"),
            "{out}"
        );
        assert!(
            out.ends_with("   ```bash\n   echo two\n   ```\n\n   </div>\n\n"),
            "{out}"
        );
    }
}
