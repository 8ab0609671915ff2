//! Layer 1 of the model: small text rules everyone must apply the same way: ids and slugs,
//! cutting a line for display, and compiling the model's own regexes.

/// How [`sanitize`] turns text into an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Step ids from headings: lowercase letters and digits (any script), other runs of
    /// characters as one dash, no dash at the ends (`Set Up: Kind` → `set-up-kind`).
    Slug,
    /// Names for other programs (kind clusters, DNS labels): like [`Style::Slug`], but ASCII only.
    AsciiSlug,
    /// Parts of file names and HTML anchors: letters, digits, `-`, `_` and `.` kept as written,
    /// every other character one dash (`m1__lab`, `verify-2`).
    FileName,
}

/// Turns text into an id in the given style. Every id labbook derives from text (step ids,
/// snapshot names, anchors, cluster names) goes through here.
pub fn sanitize(text: &str, style: Style) -> String {
    match style {
        Style::FileName => text
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect(),
        Style::Slug => slug(
            text.chars().flat_map(char::to_lowercase),
            char::is_alphanumeric,
        ),
        Style::AsciiSlug => slug(text.chars().map(|c| c.to_ascii_lowercase()), |c: char| {
            c.is_ascii_alphanumeric()
        }),
    }
}

fn slug(chars: impl Iterator<Item = char>, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    for c in chars {
        if keep(c) {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Cuts `text` to at most `max` characters, marking a cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Compiles one of the model's own patterns, with `\w`, `\s`, `\d` and `\b` read as ASCII.
///
/// Markdown cues, prompts and names are matched against ASCII words. Unicode classes make
/// each pattern's automaton many times larger: compiling the model's two dozen patterns with
/// them cost about 80 million instructions, most of a small `labbook plan`. Use
/// [`ascii_classes`] for patterns that are not compiled here (a [`regex::RegexSet`]).
///
/// # Panics
///
/// When the pattern is not a valid regex: the patterns are constants, checked by the tests.
pub fn static_regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(&ascii_classes(pattern)).expect("static regex")
}

/// One of the model's own patterns that ignores case: written in lowercase, and matched against
/// the text with its ASCII capitals lowered. The offsets do not change, so what it finds is cut
/// from the text itself. `(?i)` multiplies the literals the regex crate extracts to look for
/// first: one cue pattern took 1.35 ms to compile with it and 0.22 ms without, and a `labbook
/// run` compiles a dozen of them before its first step.
#[derive(Debug)]
pub struct Caseless(regex::Regex);

impl Caseless {
    /// Compiles `pattern` like [`static_regex`].
    ///
    /// # Panics
    ///
    /// When the pattern is not a valid regex, or holds a capital letter that no escape
    /// explains (it could never match): the patterns are constants, checked by the tests.
    pub fn new(pattern: &str) -> Caseless {
        let mut escaped = false;
        for c in pattern.chars() {
            assert!(
                escaped || !c.is_ascii_uppercase(),
                "a caseless pattern is written in lowercase: {pattern}"
            );
            escaped = !escaped && c == '\\';
        }
        Caseless(static_regex(pattern))
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(&lowered(text))
    }

    /// The leftmost match in `text`.
    pub fn find<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.0.find(&lowered(text)).map(|m| &text[m.range()])
    }

    /// Capture group `index` of the leftmost match in `text`.
    pub fn group<'t>(&self, text: &'t str, index: usize) -> Option<&'t str> {
        let lowered = lowered(text);
        let range = self.0.captures(&lowered)?.get(index)?.range();
        Some(&text[range])
    }
}

/// `text` with its ASCII capitals lowered (the same bytes everywhere else).
fn lowered(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(text.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Rewrites the Perl classes of a pattern as their ASCII forms (`\w` → `[0-9A-Za-z_]`, `\b` →
/// `(?-u:\b)`), inside and outside bracket classes. Everything else is kept as written.
pub fn ascii_classes(pattern: &str) -> String {
    const WORD: &str = "0-9A-Za-z_";
    // `\x20`, not a space: verbose `(?x)` patterns drop spaces, even inside a class.
    const SPACE: &str = "\\t\\n\\x0B\\x0C\\r\\x20";
    const DIGIT: &str = "0-9";
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut chars = pattern.chars().peekable();
    // Depth of bracket classes: inside one, a class is spliced in without its brackets.
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push(c);
                    break;
                };
                let members = match next {
                    'w' | 'W' => Some(WORD),
                    's' | 'S' => Some(SPACE),
                    'd' | 'D' => Some(DIGIT),
                    _ => None,
                };
                match (members, class_depth) {
                    (Some(members), 0) => {
                        let negate = if next.is_ascii_uppercase() { "^" } else { "" };
                        out.push_str(&format!("[{negate}{members}]"));
                    }
                    // A negated class inside brackets has no spliced form: leave it Unicode.
                    (Some(members), _) if next.is_ascii_lowercase() => out.push_str(members),
                    _ if class_depth == 0 && matches!(next, 'b' | 'B') => {
                        out.push_str(&format!("(?-u:\\{next})"));
                    }
                    _ => {
                        out.push(c);
                        out.push(next);
                    }
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member, not the end.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caseless_patterns_match_any_ascii_case_and_cut_from_the_text() {
        let pattern = Caseless::new(r"\b(?:open|use)\s+a\s+(new|second)\s+terminal\b");
        let cases: [(&str, Option<&str>, Option<&str>); 5] = [
            (
                "Open a NEW Terminal now",
                Some("Open a NEW Terminal"),
                Some("NEW"),
            ),
            (
                "use a second terminal",
                Some("use a second terminal"),
                Some("second"),
            ),
            (
                "Über: USE A Second TERMINAL",
                Some("USE A Second TERMINAL"),
                Some("Second"),
            ),
            ("open the terminal", None, None),
            ("", None, None),
        ];
        for (text, found, group) in cases {
            assert_eq!(pattern.find(text), found, "{text}");
            assert_eq!(pattern.is_match(text), found.is_some(), "{text}");
            assert_eq!(pattern.group(text, 1), group, "{text}");
        }
    }

    #[test]
    #[should_panic(expected = "written in lowercase")]
    fn a_caseless_pattern_with_a_capital_is_refused() {
        Caseless::new(r"\bVerify\b");
    }

    #[test]
    fn a_caseless_pattern_may_escape_capitals() {
        assert!(Caseless::new(r"a\Sb").is_match("A-B"));
    }

    #[test]
    fn ids_in_each_style() {
        let cases = [
            ("Set Up: Kind", Style::Slug, "set-up-kind"),
            ("  Überblick -- Teil 2 ", Style::Slug, "überblick-teil-2"),
            ("---", Style::Slug, ""),
            (
                "  Überblick -- Teil 2 ",
                Style::AsciiSlug,
                "berblick-teil-2",
            ),
            ("Module_1/Lab.MD", Style::AsciiSlug, "module-1-lab-md"),
            ("m1__lab", Style::FileName, "m1__lab"),
            ("verify 2/ä", Style::FileName, "verify-2-ä"),
            ("a..b c", Style::FileName, "a..b-c"),
        ];
        for (text, style, want) in cases {
            assert_eq!(sanitize(text, style), want, "{text:?} {style:?}");
        }
    }

    #[test]
    fn truncate_marks_the_cut() {
        let cases = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("a bit longer", 5, "a bit…"),
            ("ünïcödé", 3, "ünï…"),
        ];
        for (text, max, want) in cases {
            assert_eq!(truncate(text, max), want, "{text}");
        }
    }

    #[test]
    fn perl_classes_become_ascii() {
        let cases = [
            (r"\w+", r"[0-9A-Za-z_]+"),
            (r"\W", r"[^0-9A-Za-z_]"),
            (r"[\w.-]+", r"[0-9A-Za-z_.-]+"),
            (r"\bfoo\b", r"(?-u:\b)foo(?-u:\b)"),
            (r"[\b]", r"[\b]"),
            (r"a\s*b", r"a[\t\n\x0B\x0C\r\x20]*b"),
            (r"[^\s$#]", r"[^\t\n\x0B\x0C\r\x20$#]"),
            (r"[^\S]", r"[^\S]"),
            (r"[]\w]", r"[]0-9A-Za-z_]"),
            (r"[[:alpha:]\d]x\d", r"[[:alpha:]0-9]x[0-9]"),
            (r"\\w \.", r"\\w \."),
            (r"\p{L}\D", r"\p{L}[^0-9]"),
            ("trailing\\", "trailing\\"),
        ];
        for (pattern, want) in cases {
            assert_eq!(ascii_classes(pattern), want, "{pattern}");
        }
    }

    #[test]
    fn ascii_patterns_match_as_before_on_ascii_text() {
        let cases = [
            (r"(?i)\bstop\b", "Please STOP now", true),
            (r"(?i)\bstop\b", "nonstop", false),
            (r"^\s*[\w.-]+@[\w.-]+\$", "  root@pod-1.x$", true),
            (r"\d+ pods?", "3 pods", true),
            (r"(?x) a \s b", "a b", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                static_regex(pattern).is_match(text),
                want,
                "{pattern} on {text}"
            );
        }
    }
}
