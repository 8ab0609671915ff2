//! Author annotations: `<!-- labbook: key=value … -->` comments right before a fence.
//!
//! Annotations override inference. The grammar is whitespace-separated `key=value` pairs, where a
//! value may be double-quoted like a shell word (`until="rolled out"`, `expect=contains:"hello"`).
//! Anything that does not parse is an error: a silently ignored annotation would make an author
//! believe a check exists when it does not.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::kinds::{Dialect, StepKind};

/// The opening of an annotation comment, in its canonical spelling.
pub const PREFIX: &str = "<!-- labbook:";

/// Finds the opening of an annotation comment, however it is spaced (`<!--labbook:`, `<!--\n labbook :`).
pub fn find_opening(text: &str) -> Option<std::ops::Range<usize>> {
    static OPENING: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| crate::text::static_regex(r"<!--\s*labbook\s*:"));
    OPENING.find(text).map(|m| m.range())
}

/// The default tolerance of a `split:` expectation, in percentage points.
pub const DEFAULT_SPLIT_TOLERANCE: f64 = 15.0;

/// How the output of a step is asserted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Expect {
    /// Compare the redacted output with the accepted snapshot (the default for verify steps).
    Snapshot,
    /// The block's last failing command (or the block) exits with this code.
    Exit {
        /// The expected exit code.
        code: i32,
    },
    /// The output contains this text.
    Contains {
        /// The text.
        text: String,
    },
    /// The output matches this regular expression.
    Regex {
        /// The pattern (validated when parsed).
        pattern: String,
    },
    /// Counts of labels in the output are within a tolerance of the given shares.
    Split {
        /// Each label and its expected share in percent; the shares add up to 100.
        shares: Vec<(String, f64)>,
        /// Allowed deviation, in percentage points.
        tolerance: f64,
    },
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Snapshot => f.write_str("snapshot"),
            Expect::Exit { code } => write!(f, "exit:{code}"),
            Expect::Contains { text } => write!(f, "contains:{text:?}"),
            Expect::Regex { pattern } => write!(f, "regex:{pattern:?}"),
            Expect::Split { shares, tolerance } => {
                f.write_str("split:")?;
                for (label, share) in shares {
                    write!(f, "{label}={share},")?;
                }
                write!(f, "tolerance={tolerance}")
            }
        }
    }
}

/// The explicit settings of one block. Every field is `None` when the block has no annotation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Annotation {
    /// `kind=`: overrides the inferred kind.
    pub kind: Option<StepKind>,
    /// `id=`: overrides the generated step id.
    pub id: Option<String>,
    /// `timeout=`: the step's time limit.
    pub timeout: Option<Duration>,
    /// `until=`: the regex that stops a watch.
    pub until: Option<String>,
    /// `shell=`: the dialect that runs the block.
    pub shell: Option<Dialect>,
    /// `retry=`: re-run a verify until it passes or this time is up.
    pub retry: Option<Duration>,
    /// `expect=`: how the output is asserted.
    pub expect: Option<Expect>,
    /// `expect=similar:0.9`: the similarity threshold of the printed output this block holds or
    /// the blocks after it show (see [`crate::similarity`]).
    pub similar: Option<f64>,
    /// `var.NAME=VALUE`: values for placeholders the reader fills in, from this block on.
    pub vars: Vec<(String, String)>,
    /// 1-based line of the comment, when there is one.
    pub line: Option<usize>,
    /// Byte range of the comment in the chapter, from `<!--` to `-->` inclusive, so that the
    /// preprocessor can remove it without reading the Markdown again.
    #[serde(skip)]
    pub bytes: Option<std::ops::Range<usize>>,
}

impl Annotation {
    /// Whether the block had an annotation at all.
    pub fn is_present(&self) -> bool {
        self.line.is_some()
    }
}

/// Parses the text of an annotation comment, from `<!-- labbook:` to `-->` inclusive.
///
/// The returned error is a message without location; the caller adds file and line.
pub fn parse(comment: &str) -> Result<Annotation, String> {
    let comment = comment.trim();
    let body = match find_opening(comment) {
        Some(opening) if opening.start == 0 => &comment[opening.end..],
        _ => return Err(format!("an annotation must start with `{PREFIX}`")),
    };
    let body = body
        .strip_suffix("-->")
        .ok_or_else(|| "annotation comment is not closed with `-->`".to_string())?;
    let words = shell_words::split(body)
        .map_err(|e| format!("failed to split annotation into key=value pairs: {e}"))?;
    if words.is_empty() {
        return Err("empty annotation: write at least one key=value pair".into());
    }
    let mut annotation = Annotation::default();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}` is not a key=value pair"))?;
        if value.is_empty() {
            return Err(format!("`{key}=` has no value"));
        }
        let duplicate = match key {
            "kind" => annotation.kind.replace(parse_kind(value)?).is_some(),
            "id" => annotation.id.replace(parse_id(value)?).is_some(),
            "timeout" => annotation
                .timeout
                .replace(parse_duration(key, value)?)
                .is_some(),
            "retry" => annotation
                .retry
                .replace(parse_duration(key, value)?)
                .is_some(),
            "until" => annotation.until.replace(parse_regex(key, value)?).is_some(),
            "shell" => {
                annotation
                    .shell
                    .replace(Dialect::from_shell(value).ok_or_else(|| {
                        format!("unknown shell `{value}`: use one of bash, sh, zsh")
                    })?)
                    .is_some()
            }
            "expect" if value.starts_with("similar") => {
                annotation.similar.replace(parse_similar(value)?).is_some()
            }
            "expect" => annotation.expect.replace(parse_expect(value)?).is_some(),
            _ if key.starts_with("var.") && key.len() > 4 => {
                let name = &key[4..];
                let given = annotation.vars.iter().any(|(n, _)| n == name);
                annotation.vars.push((name.to_string(), value.to_string()));
                given
            }
            _ => {
                return Err(format!(
                    "unknown annotation key `{key}`: use kind, id, timeout, until, shell, retry, expect or var.NAME"
                ));
            }
        };
        if duplicate {
            return Err(format!("`{key}` is given twice"));
        }
    }
    Ok(annotation)
}

fn parse_kind(value: &str) -> Result<StepKind, String> {
    StepKind::from_name(value).ok_or_else(|| {
        let names: Vec<&str> = StepKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind `{value}`: use one of {}", names.join(", "))
    })
}

fn parse_id(value: &str) -> Result<String, String> {
    let valid = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid && !value.starts_with('.') {
        Ok(value.to_string())
    } else {
        Err(format!(
            "id `{value}` may only hold letters, digits, `-`, `_` and `.`, and must not start with `.`"
        ))
    }
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, String> {
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("`{key}={value}` is not a duration like 30, 30s or 2m: {e}"))
}

fn parse_regex(key: &str, value: &str) -> Result<String, String> {
    regex::Regex::new(value)
        .map(|_| value.to_string())
        .map_err(|e| format!("`{key}` is not a valid regex: {e}"))
}

/// Parses `similar:0.9`, the threshold of a printed-output check.
fn parse_similar(value: &str) -> Result<f64, String> {
    match value.strip_prefix("similar:") {
        Some(threshold) => crate::similarity::parse_threshold(threshold)
            .map_err(|e| format!("`expect={value}`: {e}")),
        None => Err(format!(
            "`expect={value}` needs a threshold from 0 to 1, like expect=similar:0.9"
        )),
    }
}

/// Parses the value of `expect=`.
pub fn parse_expect(value: &str) -> Result<Expect, String> {
    let (form, arg) = value.split_once(':').unwrap_or((value, ""));
    match form {
        "snapshot" if arg.is_empty() => Ok(Expect::Snapshot),
        "exit" => arg
            .parse::<i32>()
            .map(|code| Expect::Exit { code })
            .map_err(|_| format!("`expect=exit:{arg}` needs a number, like exit:1")),
        "contains" if !arg.is_empty() => Ok(Expect::Contains {
            text: arg.to_string(),
        }),
        "regex" if !arg.is_empty() => {
            parse_regex("expect=regex", arg).map(|pattern| Expect::Regex { pattern })
        }
        "split" => parse_split(arg),
        _ => Err(format!(
            "unknown expectation `{value}`: use snapshot, exit:N, contains:\"…\", regex:\"…\", split:v1=90,v2=10 or similar:0.9"
        )),
    }
}

fn parse_split(arg: &str) -> Result<Expect, String> {
    let mut shares = Vec::new();
    let mut tolerance = DEFAULT_SPLIT_TOLERANCE;
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (label, number) = part
            .split_once('=')
            .ok_or_else(|| format!("split part `{part}` is not label=percent"))?;
        let number: f64 = number
            .trim_end_matches('%')
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && (0.0..=100.0).contains(n))
            .ok_or_else(|| format!("split part `{part}` needs a percentage from 0 to 100"))?;
        if label == "tolerance" {
            tolerance = number;
        } else if label.is_empty() {
            return Err(format!("split part `{part}` has no label"));
        } else {
            shares.push((label.to_string(), number));
        }
    }
    if shares.len() < 2 {
        return Err("a split needs at least two labels, like split:v1=90,v2=10".into());
    }
    let total: f64 = shares.iter().map(|(_, s)| s).sum();
    if (total - 100.0).abs() > 0.01 {
        return Err(format!("split shares add up to {total}, not 100"));
    }
    Ok(Expect::Split { shares, tolerance })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_annotations() {
        let cases: &[(&str, Annotation)] = &[
            (
                "<!-- labbook: kind=verify -->",
                Annotation {
                    kind: Some(StepKind::Verify),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook: id=canary-check timeout=2m retry=30s -->",
                Annotation {
                    id: Some("canary-check".into()),
                    timeout: Some(Duration::from_secs(120)),
                    retry: Some(Duration::from_secs(30)),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook: kind=watch until=\"successfully rolled out\" -->",
                Annotation {
                    kind: Some(StepKind::Watch),
                    until: Some("successfully rolled out".into()),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook: shell=sh expect=contains:\"Hello world\" -->",
                Annotation {
                    shell: Some(Dialect::Sh),
                    expect: Some(Expect::Contains {
                        text: "Hello world".into(),
                    }),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook:\n  expect=exit:1\n-->",
                Annotation {
                    expect: Some(Expect::Exit { code: 1 }),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook: expect=split:v1=90,v2=10,tolerance=20 -->",
                Annotation {
                    expect: Some(Expect::Split {
                        shares: vec![("v1".into(), 90.0), ("v2".into(), 10.0)],
                        tolerance: 20.0,
                    }),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook: expect=similar:0.9 -->",
                Annotation {
                    similar: Some(0.9),
                    ..Default::default()
                },
            ),
            (
                "<!-- labbook: expect=regex:\"v[12]\" timeout=45 -->",
                Annotation {
                    expect: Some(Expect::Regex {
                        pattern: "v[12]".into(),
                    }),
                    timeout: Some(Duration::from_secs(45)),
                    ..Default::default()
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&parse(text).expect(text), expected, "{text}");
        }
    }

    #[test]
    fn rejects_invalid_annotations() {
        let cases: &[(&str, &str)] = &[
            ("<!-- labbook: -->", "empty annotation"),
            ("<!-- labbook: kind=verify", "not closed"),
            ("<!-- labbook: kind=nope -->", "unknown kind `nope`"),
            (
                "<!-- labbook: colour=blue -->",
                "unknown annotation key `colour`",
            ),
            ("<!-- labbook: verify -->", "is not a key=value pair"),
            ("<!-- labbook: timeout=soon -->", "is not a duration"),
            ("<!-- labbook: until=\"(\" -->", "not a valid regex"),
            ("<!-- labbook: until=\"open -->", "failed to split"),
            ("<!-- labbook: expect=exit:x -->", "needs a number"),
            (
                "<!-- labbook: expect=split:v1=90 -->",
                "at least two labels",
            ),
            (
                "<!-- labbook: expect=split:v1=90,v2=20 -->",
                "add up to 110",
            ),
            (
                "<!-- labbook: expect=split:v1=x,v2=20 -->",
                "needs a percentage",
            ),
            ("<!-- labbook: expect=maybe -->", "unknown expectation"),
            ("<!-- labbook: kind=run kind=verify -->", "given twice"),
            ("<!-- labbook: id=../etc -->", "may only hold"),
            ("<!-- labbook: shell=fish -->", "unknown shell"),
            ("<!-- labbook: expect=similar:1.5 -->", "outside 0–1"),
            ("<!-- labbook: expect=similar:high -->", "not a number"),
            ("<!-- labbook: expect=similar -->", "needs a threshold"),
            (
                "<!-- labbook: expect=similar:0.9 expect=similar:0.8 -->",
                "given twice",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
