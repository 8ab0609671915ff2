//! Redactions: what makes a lab's output stable from run to run before it is compared with, or
//! stored as, a snapshot, or with the output a book prints.
//!
//! Cluster output is full of values that change on every run: generated pod names, ages, IP
//! addresses, timestamps, uids, resourceVersions, curl timings, and kubectl tables whose column
//! widths follow the longest name. Each is replaced by a readable placeholder (`web-[hash]-[id]`,
//! `[age]`, `[ip]`, `[timestamp]`, `[uid]`, ...) because the book shows snapshots to readers as
//! "Expected output". A book adds its own regexes in `[preprocessor.labbook] redactions`; they run
//! first, on the raw output, because their authors wrote them against what the tools print.
//!
//! This is the one table of redactions: the harness redacts outputs with it, the printed-output
//! check (the `similarity` module) redacts both what the book prints and what the run printed, and the
//! lint compares printed output with accepted snapshots through it.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

/// A book's own regex redaction, applied to outputs before they are compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// The regular expression to find.
    pub pattern: String,
    /// What to put in its place, e.g. `[session-id]`.
    pub replacement: String,
}

/// A book redaction whose pattern does not compile.
#[derive(Debug, thiserror::Error)]
#[error("failed to compile redaction `{pattern}`")]
pub struct RedactError {
    /// The pattern as written in `book.toml`.
    pub pattern: String,
    /// The regex error.
    #[source]
    pub source: regex::Error,
}

/// The redactions of one course: the book's own, then the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    custom: Vec<(Regex, String)>,
}

/// What a built-in rule puts in place of a match.
enum Replace {
    /// A fixed replacement, with `$1`-style group references.
    Text(&'static str),
    /// A function of the match (to keep some values, like loopback addresses).
    With(fn(&Captures) -> String),
}

struct Rule {
    regex: Regex,
    replace: Replace,
}

/// The alphabet Kubernetes uses for generated name suffixes and template hashes (no vowels, no
/// `0`, `1`, `3`), so that generated names never spell words.
const K8S_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

fn rule(pattern: &str, replace: Replace) -> Rule {
    let pattern = pattern.replace("{ALPHA}", &format!("[{K8S_ALPHABET}]"));
    Rule {
        regex: Regex::new(&pattern).expect("built-in redaction regex"),
        replace,
    }
}

/// Keeps addresses that are the same everywhere (loopback, any) readable.
fn ip(caps: &Captures) -> String {
    let text = &caps[0];
    if text.starts_with("127.") || text == "0.0.0.0" || text == "::1" {
        text.to_string()
    } else {
        "[ip]".to_string()
    }
}

/// Keeps CPU quantities (`cpu: 500m`) that look like durations.
fn age(caps: &Captures) -> String {
    if caps.name("cpu").is_some() {
        caps[0].to_string()
    } else {
        format!("{}[age]", &caps["pre"])
    }
}

const MONTH: &str = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const WEEKDAY: &str = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let http_date =
        format!(r"\b{WEEKDAY}, \d{{1,2}} {MONTH} \d{{4}} \d{{2}}:\d{{2}}:\d{{2}} GMT\b");
    let date_cmd =
        format!(r"\b{WEEKDAY} {MONTH} [ \d]\d \d{{2}}:\d{{2}}:\d{{2}}(?: [A-Z]{{2,5}})? \d{{4}}\b");
    vec![
        // Terminal colours, which some tools print even without a TTY.
        rule(r"\x1b\[[0-9;?]*[A-Za-z]", Replace::Text("")),
        rule(r"\bsha256:[0-9a-f]{64}\b", Replace::Text("sha256:[digest]")),
        // Timestamps: RFC 3339 / ISO 8601 (with Go's `+0000 UTC` tail), HTTP dates, `date`,
        // klog headers (keeping the severity letter), then bare clock times.
        rule(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|\s?[+-]\d{2}:?\d{2})?(?: (?:UTC|GMT)\b)?",
            Replace::Text("[timestamp]"),
        ),
        rule(&http_date, Replace::Text("[timestamp]")),
        rule(&date_cmd, Replace::Text("[timestamp]")),
        rule(
            r"\b([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\b",
            Replace::Text("${1}[timestamp]"),
        ),
        rule(
            r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            Replace::Text("[uid]"),
        ),
        rule(
            r#"(resourceVersion["']?\s*[:=]\s*["']?)\d+"#,
            Replace::Text("${1}[version]"),
        ),
        // curl timings and other measured times: `time_total: 0.012`, `Time: 0.012s`, and a line
        // that is only a long decimal (`curl -w '%{time_total}\n'`).
        rule(
            r#"\b((?:time_[a-z_]+|[Tt]ime|[Ee]lapsed|[Dd]uration|[Ll]atency)["']?\s*[:=]\s*["']?)\d+(?:\.\d+)?(?:\s?(?:ms|µs|us|s)\b)?"#,
            Replace::Text("${1}[time]"),
        ),
        rule(r"(?m)^\d+\.\d{4,}s?$", Replace::Text("[time]")),
        // IPv6: eight groups, or compressed with `::` and at least one group after it.
        rule(
            r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5}\b|::[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6}\b",
            Replace::With(ip),
        ),
        rule(
            r"\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b",
            Replace::Text("[timestamp]"),
        ),
        rule(
            r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b",
            Replace::With(ip),
        ),
        // Generated names: Deployment pods (template hash + suffix), ReplicaSets (hash), then
        // Job / DaemonSet / bare pods (suffix only) where a pod name is expected: the first
        // column of a table, or after `pod/`.
        rule(
            r"\b([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)-{ALPHA}{6,10}-{ALPHA}{5}\b",
            Replace::Text("${1}-[hash]-[id]"),
        ),
        rule(
            r"\b([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)-{ALPHA}{9,10}\b",
            Replace::Text("${1}-[hash]"),
        ),
        rule(
            r"(?m)^(\s*(?:pod/)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)-{ALPHA}{5}(\s|$)",
            Replace::Text("${1}-[id]${2}"),
        ),
        rule(
            r"\b(pods?/[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)-{ALPHA}{5}\b",
            Replace::Text("${1}-[id]"),
        ),
        // Durations: sub-second or fractional (`12.5ms`, `1.2s`), then kubectl ages (`12s`,
        // `3m4s`, `2d`, `5h30m`), standing as a word of their own.
        rule(
            r"\b\d+(?:\.\d+)?(?:ms|µs|us|ns)\b|\b\d+\.\d+s\b",
            Replace::Text("[duration]"),
        ),
        rule(
            r#"(?m)(?P<pre>^|[\s(,=\[])(?P<cpu>(?i:cpu)["']?:\s*["']?)?\d+[ydhms](?:\d+[dhms])*\b"#,
            Replace::With(age),
        ),
    ]
});

impl Redactor {
    /// The built-in redactions plus a book's own, which run first.
    pub fn new(custom: &[Redaction]) -> Result<Redactor, RedactError> {
        let custom = custom
            .iter()
            .map(|r| {
                Regex::new(&r.pattern)
                    .map(|regex| (regex, r.replacement.clone()))
                    .map_err(|source| RedactError {
                        pattern: r.pattern.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Redactor { custom })
    }

    /// Redacts a command's output for a snapshot: values, then table columns.
    pub fn output(&self, text: &str) -> String {
        align_tables(&self.values(text))
    }

    /// Redacts values only, keeping the layout (for file contents, where spacing is meaningful).
    pub fn values(&self, text: &str) -> String {
        let mut text = text.replace("\r\n", "\n");
        for (regex, replacement) in &self.custom {
            text = regex.replace_all(&text, replacement.as_str()).into_owned();
        }
        for rule in RULES.iter() {
            text = match &rule.replace {
                Replace::Text(t) => rule.regex.replace_all(&text, *t).into_owned(),
                Replace::With(f) => rule.regex.replace_all(&text, *f).into_owned(),
            };
        }
        text
    }
}

/// The separator between table columns: kubectl pads with at least three spaces.
const COLUMN_GAP: &str = "   ";

static CELL_GAP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" {2,}|\t+").expect("static"));

/// Re-aligns tables, whose cells are separated by two or more spaces (or tabs): their columns
/// are padded to the widest cell, with kubectl's three-space gap. Once names are redacted the
/// widths no longer depend on them, and the table still reads as a table. A table is a header row
/// of upper-case column names (`NAME   READY   STATUS`) and the rows under it, or, without a
/// header (`--no-headers`, a report printed with `printf "%-30s %8d"`), two or more rows with the
/// same number of cells that do not all start alike. Other lines with wide gaps (`progress  10%`)
/// keep their spacing. Leading indentation and single spaces inside cells are kept; trailing
/// spaces are dropped.
pub fn align_tables(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if !is_row(lines[i]) {
            out.push(lines[i].trim_end().to_string());
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && is_row(lines[i]) {
            i += 1;
        }
        let run = &lines[start..i];
        let header = run.iter().position(|l| is_header(l)).unwrap_or(run.len());
        let (before, table) = run.split_at(header);
        if headerless_table(before) {
            out.extend(align(before));
        } else {
            out.extend(before.iter().map(|l| l.trim_end().to_string()));
        }
        out.extend(align(table));
    }
    out.join("\n")
}

/// Rows without a header that still form a table: at least two, all with the same number of
/// cells, not all with the same first cell (which is a repeated label, not a column).
fn headerless_table(rows: &[&str]) -> bool {
    let split: Vec<Vec<&str>> = rows.iter().map(|r| split_row(r).1).collect();
    split.len() > 1
        && split.iter().all(|cells| cells.len() == split[0].len())
        && split.iter().any(|cells| cells[0] != split[0][0])
}

/// A table's header: two or more cells, each made of upper-case words (`NAME`, `CLUSTER-IP`,
/// `PORT(S)`, `NOMINATED NODE`).
fn is_header(line: &str) -> bool {
    let (_, cells) = split_row(line);
    cells.len() > 1
        && cells.iter().all(|cell| {
            cell.starts_with(|c: char| c.is_ascii_uppercase())
                && cell.chars().all(|c| {
                    c.is_ascii_uppercase() || c.is_ascii_digit() || " -_()/.%#:".contains(c)
                })
        })
}

fn split_row(line: &str) -> (&str, Vec<&str>) {
    let body = line.trim_start_matches([' ', '\t']);
    let indent = &line[..line.len() - body.len()];
    (indent, CELL_GAP.split(body.trim_end()).collect())
}

fn is_row(line: &str) -> bool {
    split_row(line).1.len() > 1
}

fn align(rows: &[&str]) -> Vec<String> {
    let rows: Vec<(&str, Vec<&str>)> = rows.iter().map(|r| split_row(r)).collect();
    let columns = rows.iter().map(|(_, cells)| cells.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|(_, cells)| cells.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|(indent, cells)| {
            let mut line = indent.to_string();
            for (c, cell) in cells.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < cells.len() {
                    let pad = widths[c] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(COLUMN_GAP);
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_replaced_by_readable_placeholders() {
        let cases = [
            // Generated pod names.
            ("web-7d4b9c8f6-x7k2m", "web-[hash]-[id]"),
            ("pod/web-5f6b8c7d9b-qz2wp", "pod/web-[hash]-[id]"),
            ("my-app-v2-7d4b9c8f6-x7k2m 1/1", "my-app-v2-[hash]-[id] 1/1"),
            (
                "replicaset.apps/web-7d4b9c8f6 created",
                "replicaset.apps/web-[hash] created",
            ),
            ("pi-x7k2m   0/1", "pi-[id]   0/1"),
            ("pod/pi-x7k2m deleted", "pod/pi-[id] deleted"),
            ("web-0   1/1", "web-0   1/1"),
            ("hello-world", "hello-world"),
            // Ages and durations.
            ("Running   0   12s", "Running   0   [age]"),
            (
                "Running   1 (5m4s ago)   2d",
                "Running   1 ([age] ago)   [age]",
            ),
            ("Age: 3h", "Age: [age]"),
            ("took 12.5ms", "took [duration]"),
            ("cpu: 500m", "cpu: 500m"),
            ("nginx:1.27", "nginx:1.27"),
            ("web-2d", "web-2d"),
            // Addresses.
            ("10.244.0.17", "[ip]"),
            (
                "ClusterIP 10.96.12.4 <none> 80/TCP",
                "ClusterIP [ip] <none> 80/TCP",
            ),
            (
                "Forwarding from 127.0.0.1:8080",
                "Forwarding from 127.0.0.1:8080",
            ),
            ("fd00:10:244::5", "[ip]"),
            ("2001:db8:0:0:0:0:2:1", "[ip]"),
            ("[::1]:8080", "[::1]:8080"),
            ("std::string", "std::string"),
            // Timestamps.
            ("2024-05-01T12:34:56Z", "[timestamp]"),
            ("2024-05-01T12:34:56.123456+02:00 msg", "[timestamp] msg"),
            ("2024-05-01 12:34:56 +0000 UTC", "[timestamp]"),
            ("date: Wed, 01 May 2024 12:34:56 GMT", "date: [timestamp]"),
            ("Wed May  1 12:34:56 UTC 2024", "[timestamp]"),
            ("I0501 12:34:56.123456 main.go", "I[timestamp] main.go"),
            ("at 12:34:56", "at [timestamp]"),
            // Identifiers.
            ("uid: 3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", "uid: [uid]"),
            (
                "resourceVersion: \"123456\"",
                "resourceVersion: \"[version]\"",
            ),
            (
                "\"resourceVersion\":\"42\"",
                "\"resourceVersion\":\"[version]\"",
            ),
            ("image@sha256:abc", "image@sha256:abc"),
            (
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "sha256:[digest]",
            ),
            // Timings.
            ("time_total: 0.012345", "time_total: [time]"),
            ("Time: 0.012s", "Time: [time]"),
            ("0.004512", "[time]"),
            ("3.5", "3.5"),
            // Colours.
            ("\x1b[32mok\x1b[0m", "ok"),
        ];
        let redactor = Redactor::default();
        for (input, expected) in cases {
            assert_eq!(redactor.values(input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn book_redactions_run_first() {
        let redactor = Redactor::new(&[Redaction {
            pattern: r"session-[0-9]+".into(),
            replacement: "session-[n]".into(),
        }])
        .expect("valid");
        assert_eq!(
            redactor.values("session-42 at 10.0.0.1"),
            "session-[n] at [ip]"
        );
        let bad = Redactor::new(&[Redaction {
            pattern: "(".into(),
            replacement: String::new(),
        }]);
        assert!(bad.is_err());
    }

    #[test]
    fn tables_are_aligned_whatever_the_name_lengths() {
        let cases = [
            (
                "NAME      READY   STATUS\nweb-1     1/1     Running\n",
                "NAME    READY   STATUS\nweb-1   1/1     Running\n",
            ),
            (
                "NAME                 READY   STATUS\nmy-long-pod-name-1   1/1     Running",
                "NAME                 READY   STATUS\nmy-long-pod-name-1   1/1     Running",
            ),
            (
                "  INDENTED  YES\n  a  b",
                "  INDENTED   YES\n  a          b",
            ),
            ("one space only", "one space only"),
            // Not tables: no header row of upper-case names, and one row or a repeated label.
            (
                "progress  10%\nprogress  100%",
                "progress  10%\nprogress  100%",
            ),
            ("progress  10%", "progress  10%"),
            ("  indented:  yes", "  indented:  yes"),
            // A table without a header.
            (
                "checks          4\nretries and timeouts    12",
                "checks                 4\nretries and timeouts   12",
            ),
            (
                "key  value\nNAME  AGE\nweb  1s",
                "key  value\nNAME   AGE\nweb    1s",
            ),
            (
                "NAME  PORT(S)\nweb  80/TCP\n\nNAME  CLUSTER-IP\nsvc  [ip]",
                "NAME   PORT(S)\nweb    80/TCP\n\nNAME   CLUSTER-IP\nsvc    [ip]",
            ),
            ("trailing   \nnext", "trailing\nnext"),
            ("A\tB\na\tb", "A   B\na   b"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(align_tables(input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn two_runs_with_different_names_and_ages_agree() {
        let run1 = "NAME                   READY   STATUS    RESTARTS   AGE   IP\n\
                    web-7d4b9c8f6-x7k2m    1/1     Running   0          12s   10.244.0.5\n\
                    web-7d4b9c8f6-q2wzp    1/1     Running   0          13s   10.244.0.6\n";
        let run2 = "NAME                    READY   STATUS    RESTARTS   AGE     IP\n\
                    web-5f6b8c7d9b-bkzt4    1/1     Running   0          2m30s   10.244.1.17\n\
                    web-5f6b8c7d9b-r7vxn    1/1     Running   0          2m31s   10.244.1.18\n";
        let redactor = Redactor::default();
        assert_eq!(redactor.output(run1), redactor.output(run2));
        assert!(redactor.output(run1).contains("web-[hash]-[id]   1/1"));
    }
}
