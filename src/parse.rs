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
use crate::dialect::{self, Marker, Prepared};
use crate::error::ParseError;
use crate::infer;
use crate::model::{Dialect, Heading, Lab, Reason, Span, Step, StepKind, Warning};
use crate::placeholder;
use crate::printed::{self, RUNNABLE_LANGS};
use crate::shell;
use crate::text::{Style, sanitize};

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
    /// Whether a reader runs it (by its language, or its content when it has none).
    runnable: bool,
    /// For a block in a content tab other than its group's first: (its tab, the first tab).
    other_tab: Option<(String, String)>,
    /// The cue of the admonition the block is in.
    admonition: Option<String>,
    /// Executable Docs' `expected_similarity` comment right before the block: its value, checked.
    similarity: Option<f64>,
    /// The same comment when it holds a regular expression instead of a number.
    similarity_regex: Option<String>,
    /// All the prose after the block, up to the next block or heading ("Use Ctrl-C … when you
    /// are done" may come a few list items later).
    later: String,
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
    let prepared = dialect::prepare(source);
    let mut warnings = Vec::new();
    let (title, blocks, all_headings) = collect_blocks(&path, &prepared, &lines, &mut warnings)?;
    let (title, title_bytes) = match title {
        Some((text, bytes)) => (Some(text), Some(bytes)),
        None => (None, None),
    };
    let steps = build_steps(&path, blocks)?;
    let title = prepared.title.clone().or(title).unwrap_or_else(|| {
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
        warnings,
        snippets: prepared.snippets,
    })
}

/// The chapter title's text and the byte range of its heading.
type Title = (String, Range<usize>);

/// What the Markdown pass collects: the title, the fenced blocks and every heading.
type Collected = (Option<Title>, Vec<Block>, Vec<Heading>);

fn collect_blocks(
    path: &Path,
    prepared: &Prepared,
    lines: &LineIndex,
    warnings: &mut Vec<Warning>,
) -> Result<Collected, ParseError> {
    let source = prepared.text.as_str();
    let mut title: Option<Title> = None;
    let mut headings: Vec<(HeadingLevel, String)> = Vec::new();
    let mut heading_text: Option<(HeadingLevel, String)> = None;
    // Every heading with its line, for checks on sections without blocks (a manual Verify).
    let mut all_headings: Vec<Heading> = Vec::new();
    let mut heading_line = 0usize;
    let mut paragraph: Option<String> = None;
    let mut paragraph_depth = 0usize;
    // Whether the paragraph being read is a title (a tab's, an admonition's) or a GitHub alert,
    // which never introduce the next block.
    let mut paragraph_is_title = false;
    let mut quote_depth = 0usize;
    let mut alert_depth: Option<usize> = None;
    let mut similarity: Option<f64> = None;
    let mut similarity_regex: Option<String> = None;
    let mut last_prose: Option<String> = None;
    let mut html: Option<(usize, String)> = None;
    let mut pending: Option<(usize, Range<usize>, Annotation)> = None;
    let mut code: Option<(Range<usize>, String, String, bool)> = None;
    // The block waiting for the paragraph right after it.
    let mut wants_after: Option<usize> = None;
    // The block collecting the prose after it, up to the next block or heading.
    let mut later_for: Option<usize> = None;
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
                later_for = None;
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
                    paragraph_is_title = prepared.is_header(range.start);
                }
            }
            Event::End(TagEnd::Paragraph) => {
                paragraph_depth = paragraph_depth.saturating_sub(1);
                if paragraph_depth == 0
                    && let Some(text) = paragraph.take().map(|t| collapse(&t))
                {
                    if quote_depth > 0 && alert_depth.is_none() && is_alert(&text) {
                        alert_depth = Some(quote_depth);
                    }
                    if paragraph_is_title || alert_depth.is_some() {
                        continue;
                    }
                    if let Some(index) = later_for {
                        let later = &mut blocks[index].later;
                        if !later.is_empty() {
                            later.push(' ');
                        }
                        later.push_str(&text);
                    }
                    if let Some(index) = wants_after.take() {
                        blocks[index].after = Some(text.clone());
                    }
                    last_prose = Some(text);
                }
            }
            Event::Start(Tag::BlockQuote(_)) => {
                check_pending(path, &pending)?;
                quote_depth += 1;
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                if alert_depth == Some(quote_depth) {
                    alert_depth = None;
                }
                quote_depth = quote_depth.saturating_sub(1);
            }
            Event::Start(Tag::List(_) | Tag::Table(_) | Tag::FootnoteDefinition(_)) => {
                check_pending(path, &pending)?;
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match &kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let fenced = matches!(kind, CodeBlockKind::Fenced(_));
                if fenced && let Some(warning) = check_closed(source, lines, &range) {
                    warnings.push(warning);
                }
                code = Some((range, info, String::new(), fenced));
            }
            Event::End(TagEnd::CodeBlock) => {
                let Some((range, info, text, fenced)) = code.take() else {
                    continue;
                };
                let lang = printed::fence_lang(&info);
                let line = lines.line(range.start);
                let marker = prepared.marker(&range);
                let runnable = match marker {
                    Some(Marker::Exec) => true,
                    Some(Marker::Copy) => false,
                    None => {
                        RUNNABLE_LANGS.contains(&lang.as_str())
                            || (fenced && lang.is_empty() && printed::looks_like_commands(&text))
                    }
                };
                let annotation = match pending.take() {
                    Some((at, bytes, annotation)) if runnable || only_similar(&annotation) => {
                        Annotation {
                            line: Some(at),
                            bytes: Some(bytes),
                            ..annotation
                        }
                    }
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
                let heading: Vec<String> = headings.iter().map(|(_, t)| t.clone()).collect();
                wants_after = runnable.then_some(blocks.len());
                later_for = runnable.then_some(blocks.len());
                let other_tab = prepared
                    .tab(range.start)
                    .filter(|t| t.index > 0)
                    .map(|t| (t.name.clone(), t.first.clone()));
                blocks.push(Block {
                    admonition: prepared.admonition(range.start).map(|a| a.cue()),
                    range,
                    line,
                    lang: if marker.is_some() && lang.is_empty() {
                        "bash".into()
                    } else {
                        lang
                    },
                    text,
                    runnable,
                    other_tab,
                    similarity: similarity.take(),
                    similarity_regex: similarity_regex.take(),
                    later: String::new(),
                    title_levels: usize::from(title_heading && !heading.is_empty()),
                    heading,
                    cue: last_prose.take(),
                    after: None,
                    annotation,
                });
                last_prose = None;
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, _, buffer, _)) = code.as_mut() {
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
                if let Some((value, quoted)) = expected_similarity(&text) {
                    let at = text.find("expected_similarity").unwrap_or(0);
                    let line = line + text[..at].matches('\n').count();
                    let invalid = |e: String| {
                        ParseError::new(path, line, format!("invalid expected_similarity: {e}"))
                    };
                    // Executable Docs takes a number, or in quotes a regex the output matches.
                    if quoted && value.trim().parse::<f64>().is_err() {
                        regex::Regex::new(&value)
                            .map_err(|e| invalid(format!("not a valid regex: {e}")))?;
                        similarity_regex = Some(value);
                    } else {
                        similarity =
                            Some(crate::similarity::parse_threshold(&value).map_err(invalid)?);
                    }
                }
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

/// A fenced block should end with a closing fence. One that runs to the end of its container or of
/// the file is read as CommonMark reads it (closed there), with a warning: everything after it is
/// code, which is rarely what the author meant.
fn check_closed(source: &str, lines: &LineIndex, range: &Range<usize>) -> Option<Warning> {
    let text = &source[range.clone()];
    let closing = missing_closing_fence(text)?;
    let opening = text.lines().next().unwrap_or("");
    let opening = opening.trim_start_matches(|c: char| c.is_whitespace() || c == '>');
    Some(Warning {
        line: lines.line(range.start),
        message: format!(
            "the fence {} is never closed, so it runs to the end of its section or file: add a closing {closing} line",
            opening.trim_end(),
        ),
        missing_fence: Some(closing),
    })
}

/// The closing fence a fenced block (its text, fences included) lacks, or `None` when it is
/// closed.
fn missing_closing_fence(block: &str) -> Option<String> {
    let mut block_lines = block.lines();
    let strip = |l: &str| -> String {
        l.trim_start_matches(|c: char| c.is_whitespace() || c == '>')
            .to_string()
    };
    let opening = strip(block_lines.next().unwrap_or(""));
    let fence_char = opening.chars().next().unwrap_or('`');
    let fence_len = opening.chars().take_while(|c| *c == fence_char).count();
    let closing = block_lines.next_back().map(strip).unwrap_or_default();
    let closing = closing.trim_end();
    let closed = closing.len() >= fence_len && closing.chars().all(|c| c == fence_char);
    (!closed).then(|| fence_char.to_string().repeat(fence_len))
}

/// Whether a paragraph in a block quote opens a GitHub alert (`> [!NOTE]`).
fn is_alert(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("[!")
        && text[2..]
            .split(']')
            .next()
            .is_some_and(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphabetic()))
}

/// Whether an annotation only sets `expect=similar:`, which a block of printed output may have.
fn only_similar(annotation: &Annotation) -> bool {
    annotation.similar.is_some()
        && Annotation {
            similar: None,
            ..annotation.clone()
        } == Annotation::default()
}

/// The value of an Executable Docs `<!-- expected_similarity=0.8 -->` comment, and whether it was
/// quoted.
fn expected_similarity(html: &str) -> Option<(String, bool)> {
    let at = html.find("expected_similarity")?;
    let rest = html[at + "expected_similarity".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let (value, quoted) = match rest.strip_prefix('"') {
        Some(quoted) => (quoted.split('"').next().unwrap_or(""), true),
        None => (
            rest.split(|c: char| c.is_whitespace() || c == '-')
                .next()
                .unwrap_or(""),
            false,
        ),
    };
    Some((value.to_string(), quoted))
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The block's text as shown, with CRs removed, and the Markdown line of each of its lines.
fn shown_text(block: &mut Block) -> (String, Vec<usize>) {
    let mut text = std::mem::take(&mut block.text);
    // Most chapters have no CR at all; only rewrite the block when there is one to remove.
    if text.contains('\r') {
        text = text.replace("\r\n", "\n");
    }
    let first = block.line + 1;
    let count = text.lines().count();
    (text, (first..first + count).collect())
}

/// Prose saying that the block runs beside the previous one, in a terminal of its own.
fn second_terminal(cue: &str) -> Option<String> {
    static SECOND: std::sync::LazyLock<crate::text::Caseless> = std::sync::LazyLock::new(|| {
        crate::text::Caseless::new(
            r"\b(?:in|from|open|use)\s+(?:a\s+|an\s+|the\s+)?(?:new|another|second|separate|different|other)\s+(?:terminal|shell|tab|window|console)\b",
        )
    });
    SECOND.find(cue).map(str::to_string)
}

/// Whether there is a step before, whose output a block can show.
fn after_previous(steps: &[Step], previous: Option<usize>) -> bool {
    previous.is_some_and(|p| steps[p].kind.runs())
}

/// Whether a cue goes on with the sentence of the block before (`and then …`).
fn continues(cue: &str) -> bool {
    let cue = cue.trim_start();
    ["and then ", "and ", "then "]
        .iter()
        .any(|p| cue.starts_with(p))
}

/// The programs a step runs, for telling a transcript of it from new commands.
fn programs(analysis: &shell::Analysis) -> Vec<&str> {
    analysis
        .commands
        .iter()
        .filter(|c| !c.substituted)
        .map(|c| c.program())
        .collect()
}

fn build_steps(path: &Path, blocks: Vec<Block>) -> Result<Vec<Step>, ParseError> {
    let mut steps: Vec<Step> = Vec::with_capacity(blocks.len());
    let mut ordinals: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    // The open session a following `session-input` feeds: (step index, dialect).
    let mut open: Option<(usize, Dialect)> = None;
    // Whether the last block seen was a step, so that a block of printed output right after it
    // shows that step's output.
    let mut after_step = false;

    for mut block in blocks {
        let cue = block.cue.clone().unwrap_or_default();
        let previous = steps.iter().rposition(|s| s.kind != StepKind::Output);

        // A block that is not run: printed output of the step before it, or not a step at all.
        if !block.runnable {
            // A threshold before the block says that it is printed output.
            let forced = block.annotation.similar.is_some()
                || block.similarity.is_some()
                || block.similarity_regex.is_some();
            if forced && !after_previous(&steps, previous) {
                return Err(ParseError::new(
                    path,
                    block.annotation.line.unwrap_or(block.line),
                    format!(
                        "a similarity threshold is given for the block at line {}, but no step \
                         before it prints output to check it against",
                        block.line
                    ),
                ));
            }
            let shows = after_previous(&steps, previous)
                && (forced
                    || (after_step
                        && printed::shows_output(&block.lang, &block.text, block.cue.as_deref())));
            if !shows {
                after_step = false;
                continue;
            }
            let words = block.cue.as_deref().and_then(printed::output_cue);
            let (text, lines) = shown_text(&mut block);
            let reason = match words {
                Some(words) => Reason::Cue { words },
                None => Reason::Printed,
            };
            let step = output_step(&steps, previous, block, text, lines, reason, &mut ids);
            steps.push(step);
            continue;
        }
        after_step = true;

        let commands = printed::commands(&block.lang, &block.text, block.line + 1);
        let placeholders = placeholder::find(&commands.code, &commands.lines);
        let filled = placeholder::fill(&commands.code, &placeholders, |_| None);
        let analysis = shell::analyze(&filled, &commands.lines);

        // Printed output fenced as shell: nothing in it is a command, or the cue says it shows
        // output and its commands only repeat the step before (a transcript of it).
        if block.annotation.kind.is_none() && block.annotation.until.is_none() {
            let said = block.cue.as_deref().and_then(printed::output_cue);
            let cue_names_output = block.cue.as_deref().is_some_and(printed::names_output);
            let transcript = said.clone().filter(|_| {
                commands.printed
                    && previous.is_some_and(|p| {
                        let before = programs(&steps[p].analysis);
                        let now = programs(&analysis);
                        !now.is_empty() && now.iter().all(|c| before.contains(c))
                    })
            });
            // Under "Example output:", lines that start with no known program are printed too.
            let shown = said.clone().filter(|_| {
                after_previous(&steps, previous)
                    && (printed::looks_like_prose(&commands.code)
                        || (cue_names_output && !printed::looks_like_commands(&commands.code)))
            });
            let empty = commands.printed && commands.code.trim().is_empty();
            let reason = match transcript.or(shown) {
                Some(words) => Some(Reason::Cue { words }),
                None if empty => Some(match said {
                    Some(words) => Reason::Cue { words },
                    None => Reason::Printed,
                }),
                None => None,
            };
            if let Some(reason) = reason {
                let (text, lines) = shown_text(&mut block);
                let step = output_step(&steps, previous, block, text, lines, reason, &mut ids);
                steps.push(step);
                continue;
            }
        }
        block.text.clear();
        let (code, code_lines) = (commands.code, commands.lines);
        let inner_heading = &block.heading[block.title_levels..];
        let cue = cue.as_str();

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
        } else if let Some((tab, first)) = block.other_tab.clone() {
            (kind, reason) = (StepKind::Skip, Reason::Tab { tab, first });
        } else if let Some((k, heading)) = infer::section_kind(inner_heading, true) {
            (kind, reason) = (k, Reason::Heading { heading });
        } else if let Some(words) =
            infer::session_cue(cue).filter(|_| open.is_some() || strong_session_cue)
        {
            (kind, reason) = (StepKind::SessionInput, Reason::Cue { words });
        } else if let Some((k, words)) = block
            .admonition
            .as_deref()
            .and_then(dialect::admonition_kind)
        {
            (kind, reason) = (k, Reason::Cue { words });
        } else if let Some(words) = infer::trouble_cue(cue) {
            (kind, reason) = (StepKind::Troubleshoot, Reason::Cue { words });
        } else if let Some(words) = infer::optional_cue(cue).or_else(|| {
            // "… and then deploy v2": the sentence goes on with the optional path before it.
            continues(cue)
                .then(|| previous.map(|p| &steps[p]))
                .flatten()
                .filter(|p| p.kind == StepKind::Optional && matches!(p.reason, Reason::Cue { .. }))
                .map(|_| cue.trim().to_string())
        }) {
            (kind, reason) = (StepKind::Optional, Reason::Cue { words });
        } else if let Some((k, r, s)) = infer::command_kind(&analysis) {
            (kind, reason, opens) = (k, r, s);
        } else if let Some((k, heading)) = infer::section_kind(inner_heading, false) {
            (kind, reason) = (k, Reason::Heading { heading });
        }

        // "In a new terminal": the long-running block before this one keeps running beside it.
        if let Some(words) = second_terminal(cue)
            && let Some(p) = previous
            && steps[p].kind == StepKind::Watch
            && steps[p].reason != Reason::Annotation
        {
            steps[p].kind = StepKind::Background;
            steps[p].reason = Reason::Cue { words };
            steps[p].stop_hint = None;
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
                let base = heading_base(inner_heading);
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
                    .or_else(|| infer::stop_hint(&block.later))
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
            output_of: None,
            placeholders,
            similarity: block.similarity,
            similarity_regex: block.similarity_regex,
            printed: commands.printed,
            shown: commands.shown,
            shown_line: commands.shown_line,
        });
    }
    check_similar(path, &steps)?;
    Ok(steps)
}

/// An `expect=similar:` on a command block needs printed output to check: lines of its own, or
/// an `output` block after it.
fn check_similar(path: &Path, steps: &[Step]) -> Result<(), ParseError> {
    for step in steps {
        if step.annotation.similar.is_none() || step.kind == StepKind::Output {
            continue;
        }
        let own = !step.shown.trim().is_empty();
        let after = steps
            .iter()
            .any(|s| s.kind == StepKind::Output && s.output_of.as_deref() == Some(&step.id));
        if !own && !after {
            return Err(ParseError::new(
                path,
                step.annotation.line.unwrap_or(step.span.line),
                format!(
                    "`expect=similar` needs printed output to check, but the block at line {} \
                     shows none and no output block follows it",
                    step.span.line
                ),
            ));
        }
    }
    Ok(())
}

/// The id base of a heading path: the slugs of its headings, or `intro` before any.
fn heading_base(inner_heading: &[String]) -> String {
    if inner_heading.is_empty() {
        "intro".to_string()
    } else {
        inner_heading
            .iter()
            .map(|h| sanitize(h, Style::Slug))
            .collect::<Vec<_>>()
            .join("--")
    }
}

/// An `output` step: what the step at `previous` prints. Its id is that step's id with `-output`,
/// so that it takes no ordinal and the ids of the steps after it do not move.
fn output_step(
    steps: &[Step],
    previous: Option<usize>,
    block: Block,
    text: String,
    lines: Vec<usize>,
    reason: Reason,
    ids: &mut HashMap<String, usize>,
) -> Step {
    let output_of = previous.map(|p| steps[p].id.clone());
    let base = match &output_of {
        Some(of) => format!("{of}-output"),
        None => format!(
            "{}-output",
            heading_base(&block.heading[block.title_levels..])
        ),
    };
    let mut id = base.clone();
    let mut n = 1;
    while ids.contains_key(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    ids.insert(id.clone(), block.line);
    let (shown, shown_line) =
        printed::shown_output(&text, lines.first().copied().unwrap_or(block.line + 1));
    Step {
        id,
        kind: StepKind::Output,
        reason,
        span: Span {
            bytes: block.range,
            line: block.line,
        },
        heading: block.heading,
        cue: block.cue,
        after: block.after,
        lang: block.lang,
        code: text,
        code_lines: lines,
        dialect: Dialect::Bash,
        session: None,
        opens: None,
        stop_hint: None,
        annotation: block.annotation,
        analysis: shell::Analysis::default(),
        output_of,
        placeholders: Vec::new(),
        similarity: block.similarity,
        similarity_regex: block.similarity_regex,
        printed: true,
        shown,
        shown_line,
    }
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
    fn unclosed_fences_close_at_the_end_with_a_warning() {
        // (source, the fence's line, the code the block runs)
        let cases: &[(&str, usize, &str)] = &[
            ("# T\n\n```bash\necho hi\n", 3, "echo hi\n"),
            (
                "# T\n\n- item\n\n  ```bash\n  echo hi\n\nafter\n",
                5,
                "echo hi\n\n",
            ),
            (
                "# T\n\n~~~sh\necho a\n```\necho b\n",
                3,
                "echo a\n```\necho b\n",
            ),
        ];
        for (source, line, code) in cases {
            let lab = parse(source).expect(source);
            assert_eq!(lab.warnings.len(), 1, "{source:?}");
            assert_eq!(lab.warnings[0].line, *line, "{source:?}");
            assert!(
                lab.warnings[0].message.contains("never closed"),
                "{source:?}"
            );
            assert_eq!(lab.steps[0].code, *code, "{source:?}");
        }
        // A Killercoda marker closes its block, with no warning.
        let lab = parse("```\nls\n```{{exec}}\n\n```bash\npwd\n```\n").expect("parses");
        assert!(lab.warnings.is_empty());
        let codes: Vec<&str> = lab.steps.iter().map(|s| s.code.as_str()).collect();
        assert_eq!(codes, ["ls\n", "pwd\n"]);
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
