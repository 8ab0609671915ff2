//! The printed-output check: how closely what a book prints ("You should see:") matches what the
//! step really printed.
//!
//! Both sides are redacted with the one table of [`crate::redact`] (the built-ins and the book's
//! own), so that pod hashes, ages, addresses and timestamps never count as differences. Then each
//! side is read line by line:
//!
//! - blank lines do not count, and runs of spaces are one space, so a table's column widths (which
//!   follow its longest name) never matter;
//! - a printed line that is only `...` or `…` stands for any number of lines, and `...` inside a
//!   line for any text, as in byexample;
//! - a placeholder in printed output (`<pod-name>`, `[your-ip]`) stands for one word;
//! - what a cluster client says about the session rather than as output (`If you don't see a
//!   command prompt…`, [`crate::tools::CLIENT_CHATTER`]) is skipped in the output;
//! - the rows of a printed table count in any order, unless the printed rows are sorted (then the
//!   tool sorts them too, and order matters).
//!
//! The similarity is line based: `2 × matched lines / (printed lines + output lines)`, where the
//! lines an elision stands for are not counted. 1 is a full match; 0 is nothing in common. A
//! figure at or above the threshold (0.8 unless the book or the block says otherwise) passes.
//! Figures of a few near misses are in the tests below.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// The threshold when neither the book nor the block sets one.
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// What a mismatch does to the step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMismatch {
    /// The step fails.
    #[default]
    Fail,
    /// The step passes, with a warning.
    Warn,
}

/// `book.toml`'s `[preprocessor.labbook] printed-output = { threshold, on-mismatch }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PrintedOutput {
    /// The lowest similarity that passes, from 0 to 1.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// What a mismatch does.
    #[serde(default)]
    pub on_mismatch: OnMismatch,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

impl Default for PrintedOutput {
    fn default() -> Self {
        PrintedOutput {
            threshold: DEFAULT_THRESHOLD,
            on_mismatch: OnMismatch::Fail,
        }
    }
}

/// Checks a threshold as written (`0.9`): a number from 0 to 1. The error is a message without
/// location; the caller adds file and line.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("similarity threshold `{text}` is not a number from 0 to 1"))?;
    check_threshold(value)
}

/// Checks that a threshold is from 0 to 1.
pub fn check_threshold(value: f64) -> Result<f64, String> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "similarity threshold {value} is outside 0–1: write a number like 0.8"
        ))
    }
}

/// The outcome of comparing printed output with a run's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// From 0 (nothing in common) to 1 (a match), rounded to 3 decimals.
    pub similarity: f64,
    /// The printed text, redacted: what the diff shows as expected.
    pub printed: String,
    /// The output, redacted: what the diff shows as actual.
    pub actual: String,
}

impl Comparison {
    /// Whether the similarity reaches `threshold`.
    pub fn passes(&self, threshold: f64) -> bool {
        self.similarity + 1e-9 >= threshold
    }
}

/// Compares printed output with what a step printed, both redacted by `redactor`.
pub fn compare(printed: &str, actual: &str, redactor: &Redactor) -> Comparison {
    let printed = redactor.values(printed);
    let actual = redactor.values(actual);
    let expected = sort_unsorted_tables(lines(&printed), None);
    let mut output = lines(&actual);
    for line in output.iter_mut() {
        let chatter = line.as_deref().is_some_and(|l| {
            crate::tools::CLIENT_CHATTER
                .iter()
                .any(|c| l.starts_with(c) && !printed.contains(l))
        });
        if chatter {
            *line = None;
        }
    }
    let got = sort_unsorted_tables(output, Some(&expected.1));
    let patterns: Vec<Pattern> = expected.0.iter().map(|l| Pattern::new(l)).collect();
    Comparison {
        similarity: score(&patterns, &got.0),
        printed: printed.trim_end().to_string(),
        actual: actual.trim_end().to_string(),
    }
}

/// A text's lines with runs of white space made one space; blank lines become `None` (they
/// separate tables, and are then dropped).
fn lines(text: &str) -> Vec<Option<String>> {
    text.lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (!words.is_empty()).then(|| words.join(" "))
        })
        .collect()
}

/// A table header: two or more words, each in upper case (`NAME READY STATUS`).
fn is_header(line: &str) -> bool {
    static HEADER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[A-Z][A-Z0-9_()/.%#:-]*(?: [A-Z][A-Z0-9_()/.%#:-]*)+$").expect("static regex")
    });
    HEADER.is_match(line)
}

fn is_elision(line: &str) -> bool {
    line == "..." || line == "…"
}

/// The lines without blanks, with the rows of each table whose printed rows are not sorted put
/// in order, so that their order does not count. For the printed side (`unsorted` is `None`) it
/// also returns the headers of those tables; the output's tables under the same headers are then
/// put in order too.
fn sort_unsorted_tables(
    lines: Vec<Option<String>>,
    unsorted: Option<&[String]>,
) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::with_capacity(lines.len());
    let mut headers = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(line) = &lines[i] else {
            i += 1;
            continue;
        };
        out.push(line.clone());
        i += 1;
        if !is_header(line) {
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].as_ref().is_some_and(|l| !is_header(l)) {
            i += 1;
        }
        let mut rows: Vec<String> = lines[start..i].iter().flatten().cloned().collect();
        let sort = match unsorted {
            None => {
                let body: Vec<&String> = rows.iter().filter(|r| !is_elision(r)).collect();
                let unsorted = body.windows(2).any(|w| w[0] > w[1]);
                if unsorted {
                    headers.push(line.clone());
                }
                unsorted
            }
            Some(headers) => headers.contains(line),
        };
        if sort {
            let elided = rows.iter().any(|r| is_elision(r));
            rows.retain(|r| !is_elision(r));
            rows.sort();
            if elided {
                // In an unordered table an elision stands for rows anywhere: one goes before
                // and after each row.
                out.push("...".to_string());
                for row in rows.drain(..) {
                    out.push(row);
                    out.push("...".to_string());
                }
            }
        }
        out.extend(rows);
    }
    (out, headers)
}

/// One printed line, as a pattern for an output line.
enum Pattern {
    /// `...` alone: any number of lines.
    Elision,
    /// A line to match exactly.
    Exact(String),
    /// A line with `...` or placeholders in it.
    Wild(Regex),
}

/// A placeholder the reader would see filled in: `<pod-name>`, `[your-ip]`.
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<[A-Za-z][\w.-]*>|\[[a-z][a-z0-9_-]*\]").expect("static regex"));

static WILDCARD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\.\.\.|…").expect("static regex"));

impl Pattern {
    fn new(line: &str) -> Pattern {
        if is_elision(line) {
            return Pattern::Elision;
        }
        // `<title>…</title>` is HTML, not a value to fill in.
        let placeholders: Vec<regex::Match> = PLACEHOLDER
            .find_iter(line)
            .filter(|m| {
                let name = m.as_str().trim_matches(['<', '>']);
                !(m.as_str().starts_with('<') && line.contains(&format!("</{name}>")))
            })
            .collect();
        if placeholders.is_empty() && !WILDCARD.is_match(line) {
            return Pattern::Exact(line.to_string());
        }
        let mut pattern = String::from("^");
        let mut last = 0;
        let mut holes: Vec<(usize, usize, &str)> = placeholders
            .iter()
            .map(|m| (m.start(), m.end(), r"\S+"))
            .chain(
                WILDCARD
                    .find_iter(line)
                    .map(|m| (m.start(), m.end(), ".*?")),
            )
            .collect();
        holes.sort_unstable();
        for (start, end, with) in holes {
            if start < last {
                continue;
            }
            pattern.push_str(&regex::escape(&line[last..start]));
            pattern.push_str(with);
            last = end;
        }
        pattern.push_str(&regex::escape(&line[last..]));
        pattern.push('$');
        match Regex::new(&pattern) {
            Ok(regex) => Pattern::Wild(regex),
            Err(_) => Pattern::Exact(line.to_string()),
        }
    }

    fn matches(&self, line: &str) -> bool {
        match self {
            Pattern::Elision => true,
            Pattern::Exact(text) => text == line,
            Pattern::Wild(regex) => regex.is_match(line),
        }
    }
}

/// The best alignment of printed patterns and output lines, by dynamic programming over suffixes:
/// fewest unmatched lines, where an elision takes any output lines for free. Only two rows are
/// kept, each cell carrying the counts its path needs.
fn score(patterns: &[Pattern], actual: &[String]) -> f64 {
    #[derive(Clone, Copy)]
    struct Cell {
        cost: usize,
        matched: usize,
        absorbed: usize,
    }
    let better = |a: Cell, b: Cell| {
        if (a.cost, std::cmp::Reverse(a.matched)) <= (b.cost, std::cmp::Reverse(b.matched)) {
            a
        } else {
            b
        }
    };
    let m = actual.len();
    // Row for `patterns[n..]` (none left): every output line from j on is unmatched.
    let mut next: Vec<Cell> = (0..=m)
        .map(|j| Cell {
            cost: m - j,
            matched: 0,
            absorbed: 0,
        })
        .collect();
    let mut row = next.clone();
    for pattern in patterns.iter().rev() {
        for j in (0..=m).rev() {
            let skip = Cell {
                cost: next[j].cost + usize::from(!matches!(pattern, Pattern::Elision)),
                ..next[j]
            };
            let mut best = skip;
            if j < m {
                let take = row[j + 1];
                best = better(
                    best,
                    match pattern {
                        Pattern::Elision => Cell {
                            absorbed: take.absorbed + 1,
                            ..take
                        },
                        _ => Cell {
                            cost: take.cost + 1,
                            ..take
                        },
                    },
                );
                if !matches!(pattern, Pattern::Elision) && pattern.matches(&actual[j]) {
                    let pair = next[j + 1];
                    best = better(
                        best,
                        Cell {
                            matched: pair.matched + 1,
                            ..pair
                        },
                    );
                }
            }
            row[j] = best;
        }
        std::mem::swap(&mut row, &mut next);
    }
    let best = next[0];
    let printed = patterns
        .iter()
        .filter(|p| !matches!(p, Pattern::Elision))
        .count();
    let counted = printed + m - best.absorbed;
    if counted == 0 {
        return 1.0;
    }
    let figure = 2.0 * best.matched as f64 / counted as f64;
    (figure * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(printed: &str, actual: &str) -> f64 {
        compare(printed, actual, &Redactor::default()).similarity
    }

    /// Checks a table of (printed, actual, similarity).
    fn check(cases: &[(&str, &str, f64)]) {
        for (printed, actual, want) in cases {
            assert_eq!(figure(printed, actual), *want, "{printed:?} vs {actual:?}");
        }
    }

    #[test]
    fn matches_and_near_misses_have_documented_figures() {
        // (printed, actual, similarity)
        let cases: &[(&str, &str, f64)] = &[
            // Exact, and only blank lines or trailing spaces apart.
            ("hello\nworld\n", "hello\nworld\n", 1.0),
            ("hello\n\nworld", "hello  \nworld\n\n", 1.0),
            ("", "", 1.0),
            // Only after redaction: another pod hash, age and address.
            (
                "web-7d4b9c8f6-x7k2m   1/1   Running   0   12s   10.244.0.5",
                "web-5f6b8c7d9b-bkzt4   1/1   Running   0   2m30s   10.244.1.17",
                1.0,
            ),
            // A table with other column widths.
            (
                "NAME   READY   STATUS\nweb    1/1     Running\n",
                "NAME        READY  STATUS\nweb         1/1    Running\n",
                1.0,
            ),
            // Near misses: one line of five differs → 2×4/10.
            ("a\nb\nc\nd\ne", "a\nb\nc\nd\nX", 0.8),
            // One line of two differs → 2×1/4.
            ("Running\nready", "Pending\nready", 0.5),
            // The output has one line more → 2×3/7.
            ("a\nb\nc", "a\nb\nc\nd", 0.857),
            // The printed text leaves a line out of four → 2×3/7.
            ("a\nb\nd", "a\nb\nc\nd", 0.857),
            // Two lines swapped (not a table) → 2×2/6.
            ("a\nb\nc", "a\nc\nb", 0.667),
            // Nothing in common.
            ("hello", "goodbye", 0.0),
            // kubectl's words about the session are not output, unless the book prints them.
            (
                "hello",
                "If you don't see a command prompt, try pressing enter.\nhello",
                1.0,
            ),
            (
                "If you don't see a command prompt, try pressing enter.\nhello",
                "If you don't see a command prompt, try pressing enter.\nhello",
                1.0,
            ),
            ("something", "", 0.0),
        ];
        check(cases);
    }

    #[test]
    fn elisions_match_any_lines_and_any_text() {
        // (printed, actual, similarity)
        let cases: &[(&str, &str, f64)] = &[
            ("first\n...\nlast", "first\nsecond\nthird\nlast", 1.0),
            ("first\n…\nlast", "first\nlast", 1.0),
            ("...\nlast", "a\nb\nc\nlast", 1.0),
            ("...", "anything at all\nat all", 1.0),
            ("Server: ...", "Server: istio-envoy", 1.0),
            ("version ... (build …)", "version 1.24 (build abc)", 1.0),
            // `...` inside a line still needs the rest of the line.
            ("Server: ...", "Client: istio-envoy", 0.0),
            // An elision takes lines, never makes a missing line match.
            ("first\n...\nlast", "first\nsecond", 0.667),
        ];
        check(cases);
    }

    #[test]
    fn placeholders_match_one_word() {
        // (printed, actual, similarity)
        let cases: &[(&str, &str, f64)] = &[
            ("pod/<pod-name> created", "pod/debug created", 1.0),
            ("Address: [your-ip]", "Address: 203.0.113.9", 1.0),
            ("hello <name>!", "hello two words!", 0.0),
            // HTML closed on the line is text, not a placeholder.
            ("<title>Welcome</title>", "<title>Welcome</title>", 1.0),
            ("<title>Welcome</title>", "<title>Goodbye</title>", 0.0),
        ];
        check(cases);
    }

    #[test]
    fn row_order_counts_only_when_the_printed_rows_are_sorted() {
        let sorted = "NAME STATUS\nalpha Running\nbeta Running\n";
        let unsorted = "NAME STATUS\nbeta Running\nalpha Running\n";
        // Printed unsorted: any order matches.
        assert_eq!(figure(unsorted, sorted), 1.0);
        assert_eq!(figure(unsorted, unsorted), 1.0);
        // Printed sorted: the output must be sorted too (2×2/6).
        assert_eq!(figure(sorted, unsorted), 0.667);
        // An elision in an unsorted table still stands for the rows left out.
        assert_eq!(
            figure(
                "NAME STATUS\ngamma Running\nalpha Running\n...",
                "NAME STATUS\nalpha Running\nbeta Running\ngamma Running"
            ),
            1.0
        );
    }

    #[test]
    fn thresholds_are_numbers_from_zero_to_one() {
        let cases: &[(&str, Option<f64>)] = &[
            ("0.8", Some(0.8)),
            ("1", Some(1.0)),
            ("0", Some(0.0)),
            (" 0.95 ", Some(0.95)),
            ("1.5", None),
            ("-0.1", None),
            ("NaN", None),
            ("high", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_threshold(text).ok(), *want, "{text:?}");
        }
        let comparison = Comparison {
            similarity: 0.8,
            printed: String::new(),
            actual: String::new(),
        };
        assert!(comparison.passes(0.8));
        assert!(!comparison.passes(0.81));
    }
}
