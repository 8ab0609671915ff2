//! Other Markdown dialects, read as CommonMark without moving a byte.
//!
//! Courses are written for mkdocs-material, Hugo, Killercoda and Executable Docs as well as mdBook.
//! Before the one Markdown pass, [`prepare`] rewrites their constructs *in place*, into CommonMark
//! that pulldown-cmark reads the way their own renderer would, keeping every byte offset, so that
//! step spans still point into the chapter as written:
//!
//! - a UTF-8 BOM and YAML (`---`) or TOML (`+++`) front matter become blanks; the `title` is kept;
//! - an admonition (`!!! tip "Stuck?"`, `???`, `???+`) and a content tab (`=== "Linux"`) become a
//!   list item, whose indented content CommonMark then reads as the item's blocks;
//! - Hugo's `{{< text bash >}}` … `{{< /text >}}` become a fence, and its `@file@` links plain paths;
//! - a Killercoda closing line ```` ```{{exec}} ```` becomes a plain closing fence, marked.
//!
//! What the rewrite found (tabs, admonitions, snippet includes, markers) is returned beside the text,
//! for the pass to give blocks their tab, their admonition cue and their marker.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// A chapter rewritten into CommonMark of the same byte length, with what the rewrite found.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The rewritten text; byte `i` of it is byte `i` of the chapter, or a blank standing for it.
    pub text: String,
    /// The front matter's `title`.
    pub title: Option<String>,
    /// Content tabs, in order.
    pub tabs: Vec<Tab>,
    /// Admonitions, in order (an outer one before the ones nested in it).
    pub admonitions: Vec<Admonition>,
    /// Byte offsets where a header line (a tab's or an admonition's) starts: its text is a title,
    /// not prose that introduces the next block.
    pub headers: Vec<Range<usize>>,
    /// Killercoda markers, by the byte offset of the closing fence they were on.
    pub markers: Vec<(usize, Marker)>,
    /// mkdocs `--8<--` snippet includes.
    pub snippets: Vec<Snippet>,
}

/// One tab of a mkdocs-material content tab group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tab {
    /// From the `===` line to the end of the tab's content.
    pub bytes: Range<usize>,
    /// Which group the tab belongs to, counted from 0 in the chapter.
    pub group: usize,
    /// The tab's place in its group, from 0.
    pub index: usize,
    /// The tab's label.
    pub name: String,
    /// The label of the group's first tab: the one the lab runs.
    pub first: String,
}

/// A mkdocs-material admonition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admonition {
    /// From the `!!!` line to the end of its content.
    pub bytes: Range<usize>,
    /// Its type: `note`, `tip`, `warning`, ...
    pub kind: String,
    /// Its title, when it has one.
    pub title: Option<String>,
}

impl Admonition {
    /// The words a reader sees on top of the box: what serves as the cue of the blocks inside.
    pub fn cue(&self) -> String {
        match &self.title {
            Some(title) if !title.is_empty() => format!("{} ({})", title, self.kind),
            _ => self.kind.clone(),
        }
    }
}

/// A Killercoda marker on a closing fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// ```` ```{{exec}} ````: the reader clicks it to run it in the terminal.
    Exec,
    /// ```` ```{{copy}} ````: the reader copies it; it is not run.
    Copy,
}

/// A mkdocs `--8<--` snippet include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The 1-based line of the include.
    pub line: usize,
    /// The file it includes, as written (relative to the docs folder).
    pub file: String,
}

static ADMONITION: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(
        r#"^([ \t]*)(!!!|\?\?\?\+?)[ \t]+([A-Za-z][\w-]*)((?:[ \t]+[A-Za-z][\w-]*)*)(?:[ \t]+(?:"([^"]*)"|'([^']*)'))?[ \t]*$"#,
    )
});
static TAB: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(r#"^([ \t]*)(===\+?|===!)[ \t]+(?:"([^"]*)"|'([^']*)')[ \t]*$"#)
});
static HUGO_OPEN: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(
        r#"^([ \t]*(?:>[ \t]?)*)\{\{<\s*text\s+(?:syntax\s*=\s*)?"?([A-Za-z][\w+-]*)"?[^>]*>\}\}[ \t]*$"#,
    )
});
static HUGO_CLOSE: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(r"^([ \t]*(?:>[ \t]?)*)\{\{<\s*/text\s*>\}\}[ \t]*$")
});
static HUGO_FILE_LINK: LazyLock<Regex> =
    LazyLock::new(|| crate::text::static_regex(r"@([\w.-]+(?:/[\w.-]+)+)@"));
static KILLERCODA: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(
        r"^([ \t]*(?:>[ \t]?)*)(`{3,}|~{3,})\{\{(exec|copy)(?:[ \t]+[^}]*)?\}\}[ \t]*$",
    )
});
static FENCE: LazyLock<Regex> =
    LazyLock::new(|| crate::text::static_regex(r"^[ \t]*(?:>[ \t]?)*[ \t]*(`{3,}|~{3,})(.*)$"));
static SNIPPET: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::static_regex(r#"^[ \t]*(?:>[ \t]?)*-{2,}8<-{2,}[ \t]+["']([^"']+)["'][ \t]*$"#)
});

/// A line of the chapter: its byte range without the line break.
struct Line {
    start: usize,
    end: usize,
}

fn lines_of(source: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, _) in source.match_indices('\n') {
        let end = if i > start && source.as_bytes()[i - 1] == b'\r' {
            i - 1
        } else {
            i
        };
        lines.push(Line { start, end });
        start = i + 1;
    }
    if start < source.len() {
        lines.push(Line {
            start,
            end: source.len(),
        });
    }
    lines
}

/// The indentation width of a line (a tab counts to the next multiple of 4).
fn indent(text: &str) -> usize {
    let mut width = 0;
    for c in text.chars() {
        match c {
            ' ' => width += 1,
            '\t' => width += 4 - width % 4,
            _ => break,
        }
    }
    width
}

/// The first byte of a line after its indentation and block-quote markers: every construct
/// [`prepare`] rewrites starts with one of a few bytes, so other lines skip the regexes.
fn lead_byte(line: &str) -> Option<u8> {
    line.trim_start_matches([' ', '\t', '>'])
        .as_bytes()
        .first()
        .copied()
}

/// Rewrites the dialects in `source` into CommonMark of the same length (see the module doc).
pub(crate) fn prepare(source: &str) -> Prepared {
    let mut bytes = source.as_bytes().to_vec();
    let mut prepared = Prepared::default();
    let lines = lines_of(source);
    let text = |l: &Line| &source[l.start..l.end];
    let blank = |bytes: &mut Vec<u8>, range: Range<usize>| {
        for b in &mut bytes[range] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    };

    let mut first = 0;
    if source.starts_with('\u{feff}') {
        blank(&mut bytes, 0..3);
    }
    if let Some(line) = lines.first() {
        let opening = text(line).trim_start_matches('\u{feff}').trim_end();
        let closing = |l: &Line| {
            text(l).trim_end() == opening || (opening == "---" && text(l).trim_end() == "...")
        };
        if (opening == "---" || opening == "+++")
            && let Some(close) = lines[1..].iter().position(closing)
        {
            let close = close + 1;
            prepared.title = front_matter_title(lines[1..close].iter().map(text), opening == "+++");
            blank(&mut bytes, 0..lines[close].end);
            first = close + 1;
        }
    }

    // The open fence: (fence char, its length, whether a Hugo text block opened it).
    let mut fence: Option<(u8, usize, bool)> = None;
    // Open containers: (indentation of the marker, index in tabs or admonitions, is a tab).
    let mut open: Vec<(usize, usize, bool)> = Vec::new();
    let mut group: Option<(usize, usize)> = None; // (indentation, group number) of the last tab group
    let mut groups = 0usize;
    let mut last_content_end = 0usize;

    for line in &lines[first..] {
        let t = text(line);
        if let Some((ch, len, hugo)) = fence {
            if hugo {
                if let Some(c) = HUGO_CLOSE.captures(t) {
                    let at = line.start + c[1].len();
                    write_over(&mut bytes, at..line.end, "```");
                    fence = None;
                } else {
                    for m in HUGO_FILE_LINK.find_iter(t) {
                        let at = line.start + m.start();
                        bytes[at] = b' ';
                        bytes[line.start + m.end() - 1] = b' ';
                    }
                }
            } else if !matches!(lead_byte(t), Some(b'`' | b'~')) {
                // Only a line starting with a fence character can close the block.
            } else if let Some(c) = t.contains("{{").then(|| KILLERCODA.captures(t)).flatten() {
                let marker = c.get(2).map_or("", |m| m.as_str());
                if marker.as_bytes()[0] == ch && marker.len() >= len {
                    let at = line.start + c[1].len() + marker.len();
                    blank(&mut bytes, at..line.end);
                    let kind = if &c[3] == "exec" {
                        Marker::Exec
                    } else {
                        Marker::Copy
                    };
                    prepared.markers.push((line.start, kind));
                    fence = None;
                }
            } else if let Some(c) = FENCE.captures(t) {
                let f = &c[1];
                if f.as_bytes()[0] == ch && f.len() >= len && c[2].trim().is_empty() {
                    fence = None;
                }
            }
            if let Some(c) = (fence.is_some() && t.contains("8<"))
                .then(|| SNIPPET.captures(t))
                .flatten()
            {
                prepared.snippets.push(Snippet {
                    line: source[..line.start].matches('\n').count() + 1,
                    file: c[1].to_string(),
                });
            }
            if !t.trim().is_empty() {
                last_content_end = line.end;
            }
            continue;
        }

        // Containers end at the first non-blank line indented no deeper than their marker.
        if !t.trim().is_empty() {
            let width = indent(t);
            while let Some(&(at, index, is_tab)) = open.last() {
                if width > at {
                    break;
                }
                close_container(&mut prepared, index, is_tab, last_content_end);
                open.pop();
            }
            if group.is_some_and(|(at, _)| width < at || (width == at && !TAB.is_match(t))) {
                group = None;
            }
        }

        // Most lines are prose: only lines that start like a construct go through the regexes.
        if !matches!(
            lead_byte(t),
            Some(b'`' | b'~' | b'!' | b'?' | b'=' | b'{' | b'-')
        ) {
            if !t.trim().is_empty() {
                last_content_end = line.end;
            }
            continue;
        }
        // The regexes cost more than the rest of the line's work: each runs only on lines that
        // hold what it needs.
        if let Some(c) = t.contains("{{<").then(|| HUGO_OPEN.captures(t)).flatten() {
            let at = line.start + c[1].len();
            write_over(&mut bytes, at..line.end, &format!("```{}", &c[2]));
            fence = Some((b'`', 3, true));
        } else if let Some(c) = FENCE.captures(t) {
            fence = Some((c[1].as_bytes()[0], c[1].len(), false));
        } else if let Some(c) = ADMONITION.captures(t) {
            let width = indent(&c[1]);
            let marker = c.get(2).expect("group 2");
            write_over(
                &mut bytes,
                line.start + marker.start()..line.start + marker.end(),
                if marker.len() == 4 { "-  ~" } else { "-  " },
            );
            prepared.admonitions.push(Admonition {
                bytes: line.start..line.end,
                kind: c[3].to_ascii_lowercase(),
                title: c.get(5).or(c.get(6)).map(|m| m.as_str().to_string()),
            });
            prepared.headers.push(line.start..line.end);
            open.push((width, prepared.admonitions.len() - 1, false));
        } else if let Some(c) = TAB.captures(t) {
            let width = indent(&c[1]);
            let marker = c.get(2).expect("group 2");
            write_over(
                &mut bytes,
                line.start + marker.start()..line.start + marker.end(),
                "-  ",
            );
            let name = c.get(3).or(c.get(4)).map_or("", |m| m.as_str()).to_string();
            let (number, index, first) = match group {
                Some((at, number)) if at == width => {
                    let index = prepared.tabs.iter().filter(|t| t.group == number).count();
                    let first = prepared
                        .tabs
                        .iter()
                        .find(|t| t.group == number)
                        .map(|t| t.name.clone())
                        .unwrap_or_default();
                    (number, index, first)
                }
                _ => {
                    groups += 1;
                    group = Some((width, groups - 1));
                    (groups - 1, 0, name.clone())
                }
            };
            prepared.tabs.push(Tab {
                bytes: line.start..line.end,
                group: number,
                index,
                name,
                first,
            });
            prepared.headers.push(line.start..line.end);
            open.push((width, prepared.tabs.len() - 1, true));
        } else if let Some(c) = SNIPPET.captures(t) {
            prepared.snippets.push(Snippet {
                line: source[..line.start].matches('\n').count() + 1,
                file: c[1].to_string(),
            });
        }
        if !t.trim().is_empty() {
            last_content_end = line.end;
        }
    }
    while let Some((_, index, is_tab)) = open.pop() {
        close_container(&mut prepared, index, is_tab, last_content_end);
    }
    // Only ASCII blanks and ASCII fences replaced whole lines or ASCII runs, so the text is still UTF-8.
    prepared.text = String::from_utf8(bytes).unwrap_or_else(|_| source.to_string());
    prepared
}

fn close_container(prepared: &mut Prepared, index: usize, is_tab: bool, end: usize) {
    let range = if is_tab {
        &mut prepared.tabs[index].bytes
    } else {
        &mut prepared.admonitions[index].bytes
    };
    range.end = range.end.max(end);
}

/// Writes `with` over the start of `range` and blanks the rest of it.
fn write_over(bytes: &mut [u8], range: Range<usize>, with: &str) {
    for (i, b) in bytes[range].iter_mut().enumerate() {
        *b = with.as_bytes().get(i).copied().unwrap_or(b' ');
    }
}

/// The `title` of YAML or TOML front matter.
fn front_matter_title<'a>(lines: impl Iterator<Item = &'a str>, toml: bool) -> Option<String> {
    for line in lines {
        let rest = if toml {
            line.strip_prefix("title")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
        } else {
            line.strip_prefix("title:")
        };
        if let Some(value) = rest {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            return (!value.is_empty()).then(|| value.to_string());
        }
    }
    None
}

impl Prepared {
    /// The innermost tab holding the byte `at`.
    pub fn tab(&self, at: usize) -> Option<&Tab> {
        self.tabs.iter().rfind(|t| t.bytes.contains(&at))
    }

    /// The innermost admonition holding the byte `at`.
    pub fn admonition(&self, at: usize) -> Option<&Admonition> {
        self.admonitions.iter().rfind(|a| a.bytes.contains(&at))
    }

    /// Whether the byte `at` is on a tab's or an admonition's header line.
    pub fn is_header(&self, at: usize) -> bool {
        self.headers.iter().any(|h| h.contains(&at))
    }

    /// The Killercoda marker on the closing fence of a block spanning `range`, if any.
    pub fn marker(&self, range: &Range<usize>) -> Option<Marker> {
        self.markers
            .iter()
            .find(|(at, _)| range.contains(at) || *at == range.end)
            .map(|(_, m)| *m)
    }
}

/// An admonition that says its blocks are for when something fails (a `tip` titled "Stuck?").
static TROUBLE: LazyLock<crate::text::Caseless> = LazyLock::new(|| {
    crate::text::Caseless::new(
        r"\b(stuck|troubleshoot\w*|not work\w*|fail\w*|problems?|errors?|debug\w*|bug)\b|\bhelp\b.*\?",
    )
});
/// An admonition that says its blocks are optional.
static OPTIONAL: LazyLock<crate::text::Caseless> = LazyLock::new(|| {
    crate::text::Caseless::new(r"\b(optional(ly)?|alternative(ly)?|bonus|extra credit)\b")
});

/// The kind an admonition's cue gives the blocks inside it, with the words that say so.
pub(crate) fn admonition_kind(cue: &str) -> Option<(crate::kinds::StepKind, String)> {
    use crate::kinds::StepKind;
    if TROUBLE.is_match(cue) {
        Some((StepKind::Troubleshoot, cue.to_string()))
    } else if OPTIONAL.is_match(cue) {
        Some((StepKind::Optional, cue.to_string()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_keep_every_offset() {
        let cases = [
            "\u{feff}# T\n",
            "---\ntitle: \"A lab\"\nweight: 2\n---\n# T\n",
            "+++\ntitle = 'Toml lab'\n+++\n\ntext\n",
            "!!! tip \"Stuck?\"\n    ```bash\n    kubectl get pods\n    ```\n",
            "=== \"Linux\"\n\n    ```bash\n    ls\n    ```\n\n=== \"macOS\"\n\n    ```bash\n    ls -G\n    ```\n",
            "1.  Step:\n\n    {{< text bash >}}\n    $ kubectl apply -f @samples/x.yaml@\n    {{< /text >}}\n",
            "```bash\nls\n```{{exec}}\n",
            "??? é \"ünïcödé\"\n    text\n",
        ];
        for source in cases {
            let prepared = prepare(source);
            assert_eq!(prepared.text.len(), source.len(), "{source:?}");
            assert_eq!(
                prepared.text.matches('\n').count(),
                source.matches('\n').count(),
                "{source:?}"
            );
        }
    }

    #[test]
    fn front_matter_gives_the_title() {
        let cases: &[(&str, Option<&str>)] = &[
            ("---\ntitle: \"A lab\"\n---\n", Some("A lab")),
            ("\u{feff}---\ntitle: Plain\n---\n", Some("Plain")),
            ("+++\ntitle = \"Toml lab\"\n+++\n", Some("Toml lab")),
            ("---\nweight: 2\n---\n", None),
            ("---\ntitle: never closed\n", None),
            ("text\n---\ntitle: not front matter\n---\n", None),
        ];
        for (source, title) in cases {
            assert_eq!(prepare(source).title.as_deref(), *title, "{source:?}");
        }
    }

    #[test]
    fn tabs_form_groups() {
        let source = "=== \"Linux\"\n    a\n=== \"macOS\"\n    b\n\ntext\n\n=== \"One\"\n    c\n";
        let prepared = prepare(source);
        let tabs: Vec<(usize, usize, &str, &str)> = prepared
            .tabs
            .iter()
            .map(|t| (t.group, t.index, t.name.as_str(), t.first.as_str()))
            .collect();
        assert_eq!(
            tabs,
            [
                (0, 0, "Linux", "Linux"),
                (0, 1, "macOS", "Linux"),
                (1, 0, "One", "One")
            ]
        );
        assert_eq!(
            &source[prepared.tabs[1].bytes.clone()],
            "=== \"macOS\"\n    b"
        );
    }

    #[test]
    fn admonitions_and_markers() {
        let source = "!!! tip \"Stuck?\"\n    ```bash\n    !!! not an admonition\n    ```\n\n??? note\n    x\n";
        let prepared = prepare(source);
        let found: Vec<String> = prepared.admonitions.iter().map(Admonition::cue).collect();
        assert_eq!(found, ["Stuck? (tip)", "note"]);
        let kinds: Vec<Option<&str>> = [
            "Stuck? (tip)",
            "note",
            "Optional: a faster way (info)",
            "failure",
        ]
        .iter()
        .map(|c| admonition_kind(c).map(|(k, _)| k.name()))
        .collect();
        assert_eq!(
            kinds,
            [
                Some("troubleshoot"),
                None,
                Some("optional"),
                Some("troubleshoot")
            ]
        );
        let source = "```\nls\n```{{exec}}\n\n```\nvi x\n```{{copy}}\n";
        let prepared = prepare(source);
        let markers: Vec<Marker> = prepared.markers.iter().map(|(_, m)| *m).collect();
        assert_eq!(markers, [Marker::Exec, Marker::Copy]);
        assert!(prepared.text.starts_with("```\nls\n```        \n"));
    }
}
