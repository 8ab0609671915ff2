//! Markdown → [`Lab`]: one pass over pulldown-cmark's offset iterator.
//!
//! The pass collects, for every fenced block, its byte range, its line, the heading path above it,
//! the paragraph before it (the cue) and after it, and the annotation comment right before it. Kind
//! inference and session binding then run over the collected blocks in order.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::annotation::{self, Annotation};
use crate::error::ParseError;
use crate::infer;
use crate::model::{Dialect, Heading, Lab, Reason, Span, Step, StepKind};
use crate::shell;
use crate::text::{Style, sanitize};

/// Fence languages whose blocks a reader runs.
pub const RUNNABLE_LANGS: [&str; 5] = ["bash", "sh", "shell", "zsh", "console"];

/// The Markdown extensions mdBook enables, so that headings and blocks are seen as mdBook sees them.
pub fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Byte offsets of line starts, for offset → 1-based line lookups.
pub(crate) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(crate) fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// A fenced block as found in the Markdown, before inference.
struct Block {
    range: Range<usize>,
    line: usize,
    lang: String,
    text: String,
    heading: Vec<String>,
    /// How many leading entries of `heading` are the chapter title (0 or 1).
    title_levels: usize,
    cue: Option<String>,
    after: Option<String>,
    annotation: Annotation,
}

impl Lab {
    /// Parses a chapter's Markdown into a lab.
    ///
    /// `path` is only used to name the chapter in errors and output.
    pub fn parse(path: impl Into<PathBuf>, source: &str) -> Result<Lab, ParseError> {
        parse_lab(path.into(), source)
    }
}

pub(crate) fn parse_lab(path: PathBuf, source: &str) -> Result<Lab, ParseError> {
    if let Some(nul) = source.find('\0') {
        let line = LineIndex::new(source).line(nul);
        return Err(ParseError::new(
            &path,
            line,
            "failed to parse chapter: it holds binary data (a NUL byte), not Markdown text",
        ));
    }
    let lines = LineIndex::new(source);
    let (title, blocks, all_headings) = collect_blocks(&path, source, &lines)?;
    let (title, title_bytes) = match title {
        Some((text, bytes)) => (Some(text), Some(bytes)),
        None => (None, None),
    };
    let steps = build_steps(&path, blocks)?;
    let title = title.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(Lab {
        path,
        title,
        steps,
        headings: all_headings,
        title_bytes,
        source: source.to_string(),
    })
}

/// The chapter title's text and the byte range of its heading.
type Title = (String, Range<usize>);

/// What the Markdown pass collects: the title, the fenced blocks and every heading.
type Collected = (Option<Title>, Vec<Block>, Vec<Heading>);

fn collect_blocks(path: &Path, source: &str, lines: &LineIndex) -> Result<Collected, ParseError> {
    let mut title: Option<Title> = None;
    let mut headings: Vec<(HeadingLevel, String)> = Vec::new();
    let mut heading_text: Option<(HeadingLevel, String)> = None;
    // Every heading with its line, for checks on sections without blocks (a manual Verify).
    let mut all_headings: Vec<Heading> = Vec::new();
    let mut heading_line = 0usize;
    let mut paragraph: Option<String> = None;
    let mut paragraph_depth = 0usize;
    let mut last_prose: Option<String> = None;
    let mut html: Option<(usize, String)> = None;
    let mut pending: Option<(usize, Range<usize>, Annotation)> = None;
    let mut code: Option<(Range<usize>, String, String)> = None;
    // The block waiting for the paragraph right after it.
    let mut wants_after: Option<usize> = None;
    let mut blocks: Vec<Block> = Vec::new();
    let mut title_heading = false;

    for (event, range) in Parser::new_ext(source, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                check_pending(path, &pending)?;
                heading_text = Some((level, String::new()));
                heading_line = lines.line(range.start);
                last_prose = None;
                wants_after = None;
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading_text.take() {
                    let text = collapse(&text);
                    all_headings.push(Heading {
                        level: level as u8,
                        text: text.clone(),
                        line: heading_line,
                    });
                    headings.retain(|(l, _)| *l < level);
                    if level == HeadingLevel::H1 && title.is_none() && headings.is_empty() {
                        title = Some((text.clone(), range));
                        title_heading = true;
                    } else if level == HeadingLevel::H1 {
                        title_heading = false;
                    }
                    headings.push((level, text));
                }
            }
            Event::Start(Tag::Paragraph) => {
                check_pending(path, &pending)?;
                paragraph_depth += 1;
                if paragraph_depth == 1 {
                    paragraph = Some(String::new());
                }
            }
            Event::End(TagEnd::Paragraph) => {
                paragraph_depth = paragraph_depth.saturating_sub(1);
                if paragraph_depth == 0
                    && let Some(text) = paragraph.take().map(|t| collapse(&t))
                {
                    if let Some(index) = wants_after.take() {
                        blocks[index].after = Some(text.clone());
                    }
                    last_prose = Some(text);
                }
            }
            Event::Start(
                Tag::List(_) | Tag::BlockQuote(_) | Tag::Table(_) | Tag::FootnoteDefinition(_),
            ) => {
                check_pending(path, &pending)?;
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match &kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                if matches!(kind, CodeBlockKind::Fenced(_)) {
                    check_closed(path, source, lines, &range)?;
                }
                code = Some((range, info, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                let Some((range, info, text)) = code.take() else {
                    continue;
                };
                let lang = fence_lang(&info);
                let line = lines.line(range.start);
                let runnable = RUNNABLE_LANGS.contains(&lang.as_str());
                let annotation = match pending.take() {
                    Some((at, bytes, annotation)) if runnable => Annotation {
                        line: Some(at),
                        bytes: Some(bytes),
                        ..annotation
                    },
                    Some((at, _, _)) => {
                        return Err(ParseError::new(
                            path,
                            at,
                            format!(
                                "annotation applies to a `{}` block (line {line}), which labbook never runs",
                                if lang.is_empty() { "plain" } else { &lang }
                            ),
                        ));
                    }
                    None => Annotation::default(),
                };
                if runnable {
                    let heading: Vec<String> = headings.iter().map(|(_, t)| t.clone()).collect();
                    wants_after = Some(blocks.len());
                    blocks.push(Block {
                        range,
                        line,
                        lang,
                        text,
                        title_levels: usize::from(title_heading && !heading.is_empty()),
                        heading,
                        cue: last_prose.take(),
                        after: None,
                        annotation,
                    });
                } else {
                    wants_after = None;
                }
                last_prose = None;
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, _, buffer)) = code.as_mut() {
                    buffer.push_str(&text);
                } else if let Some((_, buffer)) = heading_text.as_mut() {
                    buffer.push_str(&text);
                } else if let Some(buffer) = paragraph.as_mut() {
                    buffer.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(buffer) = paragraph.as_mut() {
                    buffer.push(' ');
                }
            }
            Event::Start(Tag::HtmlBlock) => {
                html = Some((lines.line(range.start), String::new()));
            }
            Event::Html(text) => {
                if let Some((_, buffer)) = html.as_mut() {
                    buffer.push_str(&text);
                }
            }
            Event::End(TagEnd::HtmlBlock) => {
                let Some((line, text)) = html.take() else {
                    continue;
                };
                let block_start = range.start;
                let Some(at) = annotation::find_opening(&text).map(|r| r.start) else {
                    continue;
                };
                check_pending(path, &pending)?;
                let line = line + text[..at].matches('\n').count();
                let comment = &text[at..];
                let end = comment.find("-->").ok_or_else(|| {
                    ParseError::new(path, line, "annotation comment is never closed with `-->`")
                })?;
                let parsed = annotation::parse(&comment[..end + 3]).map_err(|message| {
                    ParseError::new(path, line, format!("invalid annotation: {message}"))
                })?;
                if annotation::find_opening(&comment[end + 3..]).is_some() {
                    return Err(ParseError::new(
                        path,
                        line,
                        "two annotations in a row: merge them into one comment",
                    ));
                }
                // The comment's bytes in the chapter itself: the collected text has container
                // prefixes (`> `, list indentation) removed, so its offsets cannot be used.
                // The same comment is the same n-th `<!--` in both.
                let nth = text[..at].matches("<!--").count();
                let raw = &source[range];
                let bytes = raw
                    .match_indices("<!--")
                    .nth(nth)
                    .and_then(|(open, _)| {
                        let end = raw[open..].find("-->")?;
                        Some(block_start + open..block_start + open + end + 3)
                    })
                    .unwrap_or(block_start..block_start);
                pending = Some((line, bytes, parsed));
            }
            Event::InlineHtml(text) if annotation::find_opening(&text).is_some() => {
                return Err(ParseError::new(
                    path,
                    lines.line(range.start),
                    "an annotation must stand on its own line, right before a fenced block",
                ));
            }
            _ => {}
        }
    }
    check_pending(path, &pending)?;
    Ok((title, blocks, all_headings))
}

fn check_pending(
    path: &Path,
    pending: &Option<(usize, Range<usize>, Annotation)>,
) -> Result<(), ParseError> {
    match pending {
        Some((line, _, _)) => Err(ParseError::new(
            path,
            *line,
            "annotation is not followed by a fenced code block",
        )),
        None => Ok(()),
    }
}

/// A fenced block must end with a closing fence; one that runs to the end of its container or of
/// the file means the author forgot to close it, and everything after it would be read as code.
fn check_closed(
    path: &Path,
    source: &str,
    lines: &LineIndex,
    range: &Range<usize>,
) -> Result<(), ParseError> {
    let text = &source[range.clone()];
    let mut block_lines = text.lines();
    let opening = block_lines.next().unwrap_or("");
    let strip = |l: &str| -> String {
        l.trim_start_matches(|c: char| c.is_whitespace() || c == '>')
            .to_string()
    };
    let opening = strip(opening);
    let fence_char = opening.chars().next().unwrap_or('`');
    let fence_len = opening.chars().take_while(|c| *c == fence_char).count();
    let closing = block_lines.next_back().map(strip).unwrap_or_default();
    let closing = closing.trim_end();
    let closed = closing.len() >= fence_len && closing.chars().all(|c| c == fence_char);
    if closed {
        Ok(())
    } else {
        Err(ParseError::new(
            path,
            lines.line(range.start),
            format!(
                "code fence `{}` is never closed: add a closing `{}` line",
                opening.trim_end(),
                fence_char.to_string().repeat(fence_len)
            ),
        ))
    }
}

fn fence_lang(info: &str) -> String {
    info.split(|c: char| c.is_whitespace() || c == ',' || c == '{')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The commands a reader types, with the Markdown line of each code line.
/// Takes the block's text: nothing else reads it afterwards.
fn reader_code(block: &mut Block) -> (String, Vec<usize>) {
    let first = block.line + 1;
    if block.lang != "console" {
        let mut text = std::mem::take(&mut block.text);
        // Most chapters have no CR at all; only rewrite the block when there is one to remove.
        if text.contains('\r') {
            text = text.replace("\r\n", "\n");
        }
        let count = text.lines().count();
        return (text, (first..first + count).collect());
    }
    let mut code = String::new();
    let mut lines = Vec::new();
    let mut continuing = false;
    for (i, raw) in block.text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        let trimmed = raw.trim_start();
        let command = if let Some(rest) = trimmed.strip_prefix("$ ") {
            Some(rest)
        } else if continuing {
            Some(trimmed.strip_prefix("> ").unwrap_or(raw))
        } else if !lines.is_empty() && lines.last() == Some(&(first + i - 1)) {
            trimmed.strip_prefix("> ")
        } else {
            None
        };
        if let Some(command) = command {
            code.push_str(command);
            code.push('\n');
            lines.push(first + i);
            continuing = command.ends_with('\\');
        } else {
            continuing = false;
        }
    }
    (code, lines)
}

fn build_steps(path: &Path, blocks: Vec<Block>) -> Result<Vec<Step>, ParseError> {
    let mut steps: Vec<Step> = Vec::with_capacity(blocks.len());
    let mut ordinals: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    // The open session a following `session-input` feeds: (step index, dialect).
    let mut open: Option<(usize, Dialect)> = None;

    for mut block in blocks {
        let (code, code_lines) = reader_code(&mut block);
        let analysis = shell::analyze(&code, &code_lines);
        let inner_heading = &block.heading[block.title_levels..];
        let cue = block.cue.as_deref().unwrap_or("");

        let mut opens = None;
        let mut session = None;
        let (mut kind, mut reason) = (StepKind::Run, Reason::Default);
        let strong_session_cue = cue
            .trim_start()
            .get(..6)
            .is_some_and(|start| start.eq_ignore_ascii_case("inside"));

        // A stop condition only makes sense for a watch, so `until=` alone says "watch".
        let annotated_kind = block.annotation.kind.or(block
            .annotation
            .until
            .as_ref()
            .map(|_| StepKind::Watch));
        if let Some(k) = annotated_kind {
            (kind, reason) = (k, Reason::Annotation);
            if k == StepKind::OpenSession {
                opens = infer::command_kind(&analysis).and_then(|(_, _, s)| s);
            }
        } else if let Some((k, heading)) = infer::section_kind(inner_heading, true) {
            (kind, reason) = (k, Reason::Heading { heading });
        } else if let Some(words) =
            infer::session_cue(cue).filter(|_| open.is_some() || strong_session_cue)
        {
            (kind, reason) = (StepKind::SessionInput, Reason::Cue { words });
        } else if let Some(words) = infer::optional_cue(cue) {
            (kind, reason) = (StepKind::Optional, Reason::Cue { words });
        } else if let Some((k, r, s)) = infer::command_kind(&analysis) {
            (kind, reason, opens) = (k, r, s);
        } else if let Some((k, heading)) = infer::section_kind(inner_heading, false) {
            (kind, reason) = (k, Reason::Heading { heading });
        }

        let mut dialect = Dialect::Bash;
        match kind {
            StepKind::SessionInput => {
                let Some((index, session_dialect)) = open else {
                    return Err(ParseError::new(
                        path,
                        block.line,
                        "this block is typed inside a pod shell, but no step before it opens one \
                         (expected `kubectl run|exec -it … -- sh` just before)",
                    ));
                };
                session = Some(steps[index].id.clone());
                dialect = session_dialect;
                let exits = analysis
                    .commands
                    .last()
                    .is_some_and(|c| c.program() == "exit" && !c.substituted);
                if exits {
                    open = None;
                }
            }
            StepKind::OpenSession => {
                open = opens.as_ref().map(|s| (steps.len(), s.dialect));
            }
            _ => open = None,
        }
        if let Some(shell) = block.annotation.shell {
            dialect = shell;
        }

        let id = match &block.annotation.id {
            Some(id) => id.clone(),
            None => {
                let base = if inner_heading.is_empty() {
                    "intro".to_string()
                } else {
                    inner_heading
                        .iter()
                        .map(|h| sanitize(h, Style::Slug))
                        .collect::<Vec<_>>()
                        .join("--")
                };
                let n = ordinals.entry(base.clone()).or_insert(0);
                *n += 1;
                format!("{base}-{n}")
            }
        };
        if let Some(first) = ids.insert(id.clone(), block.line) {
            return Err(ParseError::new(
                path,
                block.annotation.line.unwrap_or(block.line),
                format!("step id `{id}` is already used by the block at line {first}"),
            ));
        }

        let stop_hint = (kind == StepKind::Watch)
            .then(|| {
                block
                    .after
                    .as_deref()
                    .and_then(infer::stop_hint)
                    .or_else(|| infer::stop_hint(cue))
            })
            .flatten();

        steps.push(Step {
            id,
            kind,
            reason,
            span: Span {
                bytes: block.range,
                line: block.line,
            },
            heading: block.heading,
            cue: block.cue,
            after: block.after,
            lang: block.lang,
            code,
            code_lines,
            dialect,
            session,
            opens,
            stop_hint,
            annotation: block.annotation,
            analysis,
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<Lab, ParseError> {
        parse_lab(PathBuf::from("chapter.md"), source)
    }

    #[test]
    fn bad_input_names_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("# T\n\n```bash\necho hi\n", 3, "never closed"),
            (
                "# T\n\n- item\n\n  ```bash\n  echo hi\n\nafter\n",
                5,
                "never closed",
            ),
            (
                "# T\n\n<!-- labbook: kind=verify\n\n```bash\necho\n```\n",
                3,
                "never closed with `-->`",
            ),
            (
                "# T\n\n<!-- labbook: kind=bogus -->\n```bash\necho\n```\n",
                3,
                "unknown kind",
            ),
            (
                "# T\n\n<!-- labbook: kind=verify -->\n\ntext\n",
                3,
                "not followed by a fenced code block",
            ),
            (
                "# T\n\n<!-- labbook: kind=verify -->\n```yaml\na: 1\n```\n",
                3,
                "never runs",
            ),
            (
                "# T\n\nInside the debug pod:\n\n```bash\ncurl x\n```\n",
                5,
                "no step before it opens one",
            ),
            (
                "# T\n\n<!-- labbook: kind=session-input -->\n```sh\nls\n```\n",
                4,
                "no step before it opens one",
            ),
            (
                "# T\n\n<!-- labbook: id=a -->\n```sh\nls\n```\n\n<!-- labbook: id=a -->\n```sh\nls\n```\n",
                8,
                "already used",
            ),
            ("# T\n\nbinary\0junk\n", 3, "binary data"),
            (
                "# T\n\ntext <!-- labbook: kind=run --> more\n",
                3,
                "on its own line",
            ),
        ];
        for (source, line, needle) in cases {
            let err = parse(source).expect_err(source);
            assert_eq!(err.line, *line, "{source:?}: {err}");
            assert!(err.message.contains(needle), "{source:?}: {err}");
        }
    }

    #[test]
    fn fences_in_lists_quotes_and_crlf_are_steps() {
        let source = "# T\r\n\r\n1. First:\r\n\r\n   ```bash\r\n   echo one\r\n   ```\r\n\r\n> ```sh\r\n> echo two\r\n> ```\r\n\r\n````markdown\r\n```bash\r\nnot run\r\n```\r\n````\r\n";
        let lab = parse(source).expect("parses");
        let codes: Vec<&str> = lab.steps.iter().map(|s| s.code.as_str()).collect();
        assert_eq!(codes, ["echo one\n", "echo two\n"]);
        assert_eq!(lab.steps[0].span.line, 5);
        assert_eq!(lab.steps[0].code_lines, [6]);
        assert_eq!(lab.steps[1].span.line, 9);
    }

    #[test]
    fn console_blocks_run_only_prompt_lines() {
        let source = "# T\n\n```console\n$ kubectl get pods\nNAME READY\nweb  1/1\n$ echo a \\\n  b\n$ cat <<EOF\n> x\n> EOF\n```\n";
        let lab = parse(source).expect("parses");
        assert_eq!(
            lab.steps[0].code,
            "kubectl get pods\necho a \\\n  b\ncat <<EOF\nx\nEOF\n"
        );
        assert_eq!(lab.steps[0].code_lines, [4, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn ids_are_stable_per_heading() {
        let before = "# T\n\n## A\n\n```bash\na\n```\n\n## B\n\n```bash\nb\n```\n";
        let after =
            "# T\n\n## A\n\n```bash\nnew\n```\n\n```bash\na\n```\n\n## B\n\n```bash\nb\n```\n";
        let ids = |s: &str| {
            parse(s)
                .expect("parses")
                .steps
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(before), ["a-1", "b-1"]);
        assert_eq!(ids(after), ["a-1", "a-2", "b-1"]);
    }

    #[test]
    fn long_lines_and_many_blocks() {
        let long = format!(
            "# T\n\n{}\n\n```bash\necho {}\n```\n",
            "x".repeat(200_000),
            "y".repeat(200_000)
        );
        assert_eq!(parse(&long).expect("parses").steps.len(), 1);
        let many: String = (0..3000)
            .map(|i| format!("```bash\necho {i}\n```\n\n"))
            .collect();
        let lab = parse(&many).expect("parses");
        assert_eq!(lab.steps.len(), 3000);
        assert_eq!(lab.steps[2999].id, "intro-3000");
    }

    #[test]
    fn annotation_and_title_bytes_point_into_the_source() {
        // (source, title text by bytes, annotation comment texts by bytes)
        let cases: &[(&str, Option<&str>, &[&str])] = &[
            (
                "# T\n\n<!-- labbook: kind=run -->\n```bash\nx\n```\n",
                Some("# T\n"),
                &["<!-- labbook: kind=run -->"],
            ),
            (
                "Title\n=====\n\n<!-- note --> <!-- labbook: id=a -->\n```bash\nx\n```\n",
                Some("Title\n=====\n"),
                &["<!-- labbook: id=a -->"],
            ),
            (
                "> <!--\n>   labbook: kind=skip\n> -->\n> ```sh\n> echo two\n> ```\n",
                None,
                &["<!--\n>   labbook: kind=skip\n> -->"],
            ),
            (
                "## Not a title\n\n- item\n\n  <!-- labbook: id=b -->\n  ```bash\n  y\n  ```\n",
                None,
                &["<!-- labbook: id=b -->"],
            ),
        ];
        for (source, title, comments) in cases {
            let lab = parse(source).expect(source);
            assert_eq!(
                lab.title_bytes.clone().map(|r| &source[r]),
                *title,
                "{source:?}"
            );
            let found: Vec<&str> = lab
                .steps
                .iter()
                .filter_map(|s| s.annotation.bytes.clone())
                .map(|r| &source[r])
                .collect();
            assert_eq!(found, *comments, "{source:?}");
        }
    }
}
