//! The expectations that are not snapshots: `exit:N`, `contains:"…"`, `regex:"…"` and `split:`.
//!
//! Each check returns `Err` with a sentence for the report when the output does not meet it.
//! Checks read the raw output (not the redacted one): authors write them against what the tools
//! print.

use std::collections::BTreeMap;

use labbook::Expect;
use regex::Regex;

/// Checks `output` and the block's exit code against an expectation other than a snapshot.
/// A snapshot expectation always passes here; snapshots are compared elsewhere.
pub fn check(expect: &Expect, output: &str, exit_code: i32) -> Result<(), String> {
    match expect {
        Expect::Snapshot => Ok(()),
        Expect::Exit { code } => {
            if exit_code == *code {
                Ok(())
            } else {
                Err(format!("expected exit code {code}, got {exit_code}"))
            }
        }
        Expect::Contains { text } => {
            if output.contains(text.as_str()) {
                Ok(())
            } else {
                Err(format!("the output does not contain {text:?}"))
            }
        }
        Expect::Regex { pattern } => match Regex::new(pattern) {
            Ok(regex) if regex.is_match(output) => Ok(()),
            Ok(_) => Err(format!("the output does not match the regex {pattern:?}")),
            Err(e) => Err(format!("the regex {pattern:?} is not valid: {e}")),
        },
        Expect::Split { shares, tolerance } => check_split(shares, *tolerance, output),
    }
}

/// Counts each label in the output. A line that is `uniq -c` output (`<count> <text>`) counts
/// `<count>` for each label in its text; any other line counts 1 for each label it contains as a
/// word.
pub fn count_labels(labels: &[&str], output: &str) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = labels.iter().map(|l| (l.to_string(), 0)).collect();
    let words: Vec<(String, Regex)> = labels
        .iter()
        .filter_map(|label| {
            // A label "as a word": not glued to letters, digits, `_` or `-` on either side, so
            // that `v1` does not count inside `v10` or `web-v1-x`.
            let pattern = format!(r"(?:^|[^\w-]){}(?:[^\w-]|$)", regex::escape(label));
            Regex::new(&pattern).ok().map(|r| (label.to_string(), r))
        })
        .collect();
    for line in output.lines() {
        let (weight, text) = uniq_count(line).unwrap_or((1, line));
        for (label, regex) in &words {
            if regex.is_match(text) {
                *counts.entry(label.clone()).or_default() += weight;
            }
        }
    }
    counts
}

/// `      12 Hello from v1` → `(12, "Hello from v1")`.
fn uniq_count(line: &str) -> Option<(u64, &str)> {
    let trimmed = line.trim_start();
    let digits = trimmed.len()
        - trimmed
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    if digits == 0 {
        return None;
    }
    let (count, rest) = trimmed.split_at(digits);
    let text = rest.strip_prefix([' ', '\t'])?;
    Some((count.parse().ok()?, text))
}

fn check_split(shares: &[(String, f64)], tolerance: f64, output: &str) -> Result<(), String> {
    let labels: Vec<&str> = shares.iter().map(|(l, _)| l.as_str()).collect();
    let counts = count_labels(&labels, output);
    let total: u64 = counts.values().sum();
    if total == 0 {
        return Err(format!(
            "none of the labels {} appear in the output",
            labels.join(", ")
        ));
    }
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (label, expected) in shares {
        let count = counts.get(label).copied().unwrap_or(0);
        let share = 100.0 * count as f64 / total as f64;
        seen.push(format!("{label}={count} ({share:.1}%)"));
        if (share - expected).abs() > tolerance {
            problems.push(format!(
                "{label} is {share:.1}%, expected {expected}% ± {tolerance}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "traffic split out of tolerance: {}; counted {} of {total}",
            problems.join("; "),
            seen.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_expectations() {
        let cases: Vec<(Expect, &str, i32, bool)> = vec![
            (Expect::Snapshot, "anything", 3, true),
            (Expect::Exit { code: 0 }, "", 0, true),
            (Expect::Exit { code: 7 }, "", 7, true),
            (Expect::Exit { code: 7 }, "", 0, false),
            (
                Expect::Contains {
                    text: "hello".into(),
                },
                "say hello world",
                0,
                true,
            ),
            (Expect::Contains { text: "bye".into() }, "hello", 0, false),
            (
                Expect::Regex {
                    pattern: r"^v\d+$".into(),
                },
                "v12",
                0,
                true,
            ),
            (
                Expect::Regex {
                    pattern: r"^v\d+$".into(),
                },
                "x12",
                0,
                false,
            ),
        ];
        for (expect, output, code, ok) in cases {
            assert_eq!(
                check(&expect, output, code).is_ok(),
                ok,
                "{expect} on {output:?}"
            );
        }
    }

    #[test]
    fn labels_are_counted_from_lines_and_uniq_counts() {
        let cases = [
            ("v1\nv2\nv1\n", vec![("v1", 2), ("v2", 1)]),
            ("     80 v1\n     20 v2\n", vec![("v1", 80), ("v2", 20)]),
            (
                "  3 Hello from v1\nHello from v2\n",
                vec![("v1", 3), ("v2", 1)],
            ),
            ("v10\nweb-v1-x\nv1.\n", vec![("v1", 1), ("v2", 0)]),
            ("", vec![("v1", 0), ("v2", 0)]),
        ];
        for (output, expected) in cases {
            let counts = count_labels(&["v1", "v2"], output);
            let expected: BTreeMap<String, u64> =
                expected.into_iter().map(|(l, c)| (l.into(), c)).collect();
            assert_eq!(counts, expected, "output: {output:?}");
        }
    }

    #[test]
    fn splits_within_tolerance_pass() {
        let split = |v1: f64, v2: f64, tolerance: f64| Expect::Split {
            shares: vec![("v1".into(), v1), ("v2".into(), v2)],
            tolerance,
        };
        let cases = [
            (split(80.0, 20.0, 10.0), "     75 v1\n     25 v2\n", true),
            (split(80.0, 20.0, 10.0), "     60 v1\n     40 v2\n", false),
            (split(50.0, 50.0, 0.0), "v1\nv2\n", true),
            (split(100.0, 0.0, 5.0), "v1\nv1\n", true),
            (split(80.0, 20.0, 10.0), "nothing here\n", false),
        ];
        for (expect, output, ok) in cases {
            let result = check(&expect, output, 0);
            assert_eq!(result.is_ok(), ok, "{expect} on {output:?}: {result:?}");
        }
    }
}
