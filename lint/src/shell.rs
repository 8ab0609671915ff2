//! Built-in shell checks: bash-only syntax in POSIX `sh`, heredocs the shell will mangle, and the
//! parser's syntax errors when ShellCheck is not there.
//!
//! The lint does not parse shell code: it reads what the model's one visitor
//! ([`labbook::shell::analyze`]) recorded on each step (words, assignments, heredocs). Only a
//! single word is split into its pieces here, and a heredoc *body* is scanned by hand, because it
//! is not shell code but text in which the shell expands `$` and backticks — a few rules from the
//! bash manual, not a grammar.

use std::sync::LazyLock;

use brush_parser::word::{Parameter, ParameterExpr, WordPiece};
use regex::Regex;

use super::{Severity, Sink};
use labbook::model::{Dialect, Lab, Step};
use labbook::shell::WordRole;

/// Runs the built-in checks that do not depend on ShellCheck.
pub(crate) fn check(lab: &Lab, sink: &mut Sink<'_>) {
    let defined = definitions(lab);
    for step in &lab.steps {
        if !step.kind.runs() {
            continue;
        }
        if step.dialect == Dialect::Sh {
            bashisms(step, sink);
        }
        heredocs(step, &defined, sink);
    }
}

/// The fallback when ShellCheck is not installed: the parser's own syntax errors.
pub(crate) fn syntax(lab: &Lab, sink: &mut Sink<'_>) {
    for step in &lab.steps {
        if let Some(error) = &step.analysis.error {
            // brush-parser reads bash; a zsh block may be fine where bash is not.
            let severity = if step.dialect == Dialect::Zsh {
                Severity::Warning
            } else {
                Severity::Error
            };
            sink.emit(
                "shell-syntax",
                severity,
                error.line,
                format!(
                    "the block is not valid {} syntax: {}",
                    step.dialect,
                    error.message.trim()
                ),
                Some("a reader pasting this block gets a syntax error; install ShellCheck for a precise diagnosis".into()),
            );
        }
    }
}

/// `{1..10}` and `{a,b}`: brace expansion, which POSIX sh leaves as literal text.
static BRACE_EXPANSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{(-?\d+\.\.-?\d+(\.\.-?\d+)?|[A-Za-z]\.\.[A-Za-z]|[^{}\s]*,[^{}\s]*)\}")
        .expect("static regex")
});

struct Bashisms {
    found: Vec<(usize, Severity, String)>,
}

impl Bashisms {
    fn pieces(
        &mut self,
        pieces: &[brush_parser::word::WordPieceWithSource],
        line: usize,
        quoted: bool,
    ) {
        for piece in pieces {
            match &piece.piece {
                // Inside double quotes, braces are literal in every shell.
                WordPiece::Text(text) if !quoted => {
                    if let Some(m) = BRACE_EXPANSION.find(text) {
                        self.found.push((
                            line,
                            Severity::Error,
                            format!(
                                "brace expansion `{}` is bash-only: a POSIX sh leaves it as literal text",
                                m.as_str()
                            ),
                        ));
                    }
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => self.pieces(inner, line, true),
                WordPiece::ParameterExpansion(expr) => {
                    if let Some(name) = array_parameter(expr) {
                        self.found.push((
                            line,
                            Severity::Error,
                            format!("`{name}` indexes an array, and POSIX sh has no arrays"),
                        ));
                    }
                }
                // The commands inside `$( … )` are words of their own in the analysis.
                _ => {}
            }
        }
    }
}

fn array_parameter(expr: &ParameterExpr) -> Option<String> {
    let parameter = match expr {
        ParameterExpr::Parameter { parameter, .. } => parameter,
        _ => return None,
    };
    match parameter {
        Parameter::NamedWithIndex { name, index } => Some(format!("${{{name}[{index}]}}")),
        Parameter::NamedWithAllIndices { name, .. } => Some(format!("${{{name}[@]}}")),
        _ => None,
    }
}

impl Bashisms {
    fn word(&mut self, text: &str, line: usize) {
        let options = brush_parser::ParserOptions::default();
        if let Ok(pieces) = brush_parser::word::parse(text, &options) {
            self.pieces(&pieces, line, false);
        }
    }
}

fn bashisms(step: &Step, sink: &mut Sink<'_>) {
    let mut visitor = Bashisms { found: Vec::new() };
    for word in &step.analysis.words {
        match &word.role {
            WordRole::Plain => {}
            WordRole::Assignment { target, array } => {
                if *array {
                    visitor.found.push((
                        word.line,
                        Severity::Error,
                        format!("`{target}` assigns an array, and POSIX sh has no arrays"),
                    ));
                }
            }
            WordRole::ExtendedTest => {
                visitor.found.push((
                    word.line,
                    Severity::Warning,
                    "`[[ … ]]` is bash syntax: dash has no `[[`, and busybox sh only when built with bash compatibility".into(),
                ));
                continue;
            }
        }
        visitor.word(&word.text, word.line);
    }
    let shell = step.session.as_ref().map_or_else(
        || "a POSIX sh".to_string(),
        |s| format!("the sh of session `{s}`"),
    );
    for (line, severity, message) in visitor.found {
        sink.emit(
            "sh-bashism",
            severity,
            line,
            format!("{message} (this block runs in {shell})"),
            Some("write POSIX sh (`i=1; while [ $i -le 10 ]; do …; i=$((i+1)); done`, `[ … ]`), or open the session with `bash` in an image that has it".into()),
        );
    }
}

/// Variables known to be set: the environment any reader has, and bash's own.
const ENVIRONMENT: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "PWD",
    "OLDPWD",
    "SHELL",
    "TERM",
    "LANG",
    "HOSTNAME",
    "TMPDIR",
    "KUBECONFIG",
    "KIND_CLUSTER_NAME",
    "RANDOM",
    "SECONDS",
    "LINENO",
    "UID",
    "EUID",
    "PPID",
    "BASH_VERSION",
    "OSTYPE",
    "HOSTTYPE",
    "IFS",
    "PS1",
];

/// Where the lab sets variables: (Markdown line, name).
fn definitions(lab: &Lab) -> Vec<(usize, String)> {
    lab.steps
        .iter()
        .flat_map(|step| &step.analysis.assignments)
        .map(|a| (a.line, a.name.clone()))
        .collect()
}

/// A `$` or backtick the shell acts on inside an unquoted heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// `$1`, `$150`: a positional parameter, empty in a terminal.
    Positional(String),
    /// `$$`, `$?`, `$#`, `$@`, `$*`, `$!`, `$-`.
    Special(String),
    /// `$NAME`.
    Named(String),
    /// `${…}`, `$(…)`, `$((…))`: written on purpose.
    Deliberate,
    /// A backtick: runs the text up to the next one as a command.
    Backtick,
}

/// Scans a heredoc body as bash reads an unquoted one: `(0-based line, expansion)`.
pub(crate) fn expansions(body: &str) -> Vec<(usize, Expansion)> {
    let mut found = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                // Inside a heredoc, a backslash only escapes `$`, backtick, backslash and newline.
                '\\' if matches!(chars.get(i + 1), Some('$' | '`' | '\\')) => i += 2,
                '`' => {
                    found.push((index, Expansion::Backtick));
                    // The text up to the closing backtick is the command; skip it.
                    i = chars[i + 1..]
                        .iter()
                        .position(|c| *c == '`')
                        .map_or(chars.len(), |p| i + p + 2);
                }
                '$' => {
                    let next = chars.get(i + 1).copied();
                    match next {
                        Some('(' | '{') => {
                            found.push((index, Expansion::Deliberate));
                            i += 2;
                        }
                        Some(c) if c.is_ascii_digit() => {
                            let end = chars[i + 1..]
                                .iter()
                                .position(|c| {
                                    !(c.is_ascii_alphanumeric() || matches!(c, '.' | ','))
                                })
                                .map_or(chars.len(), |p| i + 1 + p);
                            let text: String = chars[i..end].iter().collect();
                            let text = text.trim_end_matches(['.', ',']).to_string();
                            found.push((index, Expansion::Positional(text)));
                            i = end;
                        }
                        Some(c @ ('$' | '?' | '#' | '@' | '*' | '!' | '-')) => {
                            found.push((index, Expansion::Special(format!("${c}"))));
                            i += 2;
                        }
                        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                            let end = chars[i + 1..]
                                .iter()
                                .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
                                .map_or(chars.len(), |p| i + 1 + p);
                            found.push((
                                index,
                                Expansion::Named(chars[i + 1..end].iter().collect()),
                            ));
                            i = end;
                        }
                        // `$` before a space, punctuation or the end of the line stays literal.
                        _ => i += 1,
                    }
                }
                _ => i += 1,
            }
        }
    }
    found
}

fn heredocs(step: &Step, defined: &[(usize, String)], sink: &mut Sink<'_>) {
    for command in &step.analysis.commands {
        let Some(heredoc) = &command.heredoc else {
            continue;
        };
        if heredoc.quoted {
            continue;
        }
        let markdown = |body_index: usize| -> usize {
            match step.code_lines.iter().position(|l| *l == heredoc.body_line) {
                Some(start) => step
                    .code_lines
                    .get(start + body_index)
                    .copied()
                    .unwrap_or(heredoc.body_line + body_index),
                None => heredoc.body_line + body_index,
            }
        };
        let is_defined = |name: &str, line: usize| {
            ENVIRONMENT.contains(&name) || defined.iter().any(|(l, n)| n == name && *l <= line)
        };
        let mut mangled: Vec<(usize, String, String)> = Vec::new();
        let mut unset_env: Vec<(usize, String)> = Vec::new();
        let mut backtick_line = None;
        for (index, expansion) in expansions(&heredoc.body) {
            let line = markdown(index);
            match expansion {
                Expansion::Positional(text) => {
                    let digit = &text[1..2];
                    let rest = &text[2..];
                    let becomes = if rest.is_empty() {
                        "nothing".to_string()
                    } else {
                        format!("`{rest}`")
                    };
                    mangled.push((
                        line,
                        text.clone(),
                        format!("`${digit}` is empty, so `{text}` becomes {becomes}"),
                    ));
                }
                Expansion::Special(text) => mangled.push((
                    line,
                    text.clone(),
                    format!("`{text}` is a special shell parameter"),
                )),
                Expansion::Named(name) if !is_defined(&name, line) => {
                    if name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        unset_env.push((line, name));
                    } else {
                        mangled.push((
                            line,
                            format!("${name}"),
                            format!("`${name}` is never set, so it becomes nothing"),
                        ));
                    }
                }
                Expansion::Backtick => {
                    backtick_line.get_or_insert(line);
                }
                Expansion::Named(_) | Expansion::Deliberate => {}
            }
        }
        let delimiter = &heredoc.delimiter;
        let help = Some(format!(
            "quote the delimiter (`<<'{delimiter}'`) to keep the text as written, or escape each `$` that must stay (`\\$`)"
        ));
        if let Some((line, _, first)) = mangled.first() {
            let more = match mangled.len() {
                1 => String::new(),
                n => format!(" ({} more on later lines)", n - 1),
            };
            sink.emit(
                "heredoc-unquoted-dollar",
                Severity::Error,
                *line,
                format!("the heredoc's delimiter `{delimiter}` is unquoted, so the shell expands `$` in its text: {first}{more}"),
                help.clone(),
            );
        }
        if mangled.is_empty()
            && let Some((line, name)) = unset_env.first()
        {
            sink.emit(
                "heredoc-unquoted-dollar",
                Severity::Warning,
                *line,
                format!("the heredoc expands `${name}`, which the lab never sets; unless the reader's environment has it, it becomes nothing"),
                Some(format!("set `{name}` in an earlier step, or quote the delimiter (`<<'{delimiter}'`) if the text must stay literal")),
            );
        }
        if let Some(line) = backtick_line {
            sink.emit(
                "heredoc-unquoted-backtick",
                Severity::Error,
                line,
                format!("the heredoc's delimiter `{delimiter}` is unquoted, so the shell runs the text between backticks as a command and inserts its output"),
                Some(format!("quote the delimiter (`<<'{delimiter}'`), or escape the backticks (`\\``)")),
            );
        }
    }
}

/// The names a block's commands use, as a set (for tests).
#[cfg(test)]
fn found_names(body: &str) -> std::collections::BTreeSet<String> {
    expansions(body)
        .into_iter()
        .map(|(_, e)| format!("{e:?}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic;
    use std::path::Path;

    fn lint(markdown: &str) -> Vec<Diagnostic> {
        let lab = Lab::parse("t.md", markdown).expect("parses");
        let mut sink = Sink::new(Path::new("t.md"));
        check(&lab, &mut sink);
        sink.into_diagnostics()
    }

    #[test]
    fn heredoc_bodies_are_scanned_like_bash_does() {
        let cases: &[(&str, &[&str])] = &[
            ("costs $150/hour", &["Positional(\"$150\")"]),
            ("a $1.2M budget.", &["Positional(\"$1.2M\")"]),
            ("price: $ 5, or 5$", &[]),
            ("home is $HOME", &["Named(\"HOME\")"]),
            (
                "pid $$ and ${NAME} and $(date)",
                &["Special(\"$$\")", "Deliberate"],
            ),
            ("escaped \\$100", &[]),
            ("run `date` now", &["Backtick"]),
            ("'single $quotes' stay", &["Named(\"quotes\")"]),
        ];
        for (body, expected) in cases {
            let expected: std::collections::BTreeSet<String> =
                expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(found_names(body), expected, "{body}");
        }
    }

    #[test]
    fn heredoc_rules() {
        type Expected<'a> = &'a [(&'a str, Severity, usize)];
        let cases: &[(&str, Expected)] = &[
            (
                "cat > a.md <<EOF\n# Costs\n- rate: $150/hour\nEOF",
                &[("heredoc-unquoted-dollar", Severity::Error, 6)],
            ),
            ("cat > a.md <<'EOF'\n- rate: $150/hour\nEOF", &[]),
            ("cat > a.md <<EOF\n- rate: \\$150/hour\nEOF", &[]),
            ("NAME=web\ncat > a.txt <<EOF\nname: $NAME\nEOF", &[]),
            (
                "cat > a.txt <<EOF\nname: $NAME\nEOF",
                &[("heredoc-unquoted-dollar", Severity::Warning, 5)],
            ),
            (
                "cat > a.txt <<EOF\nname: $name\nEOF",
                &[("heredoc-unquoted-dollar", Severity::Error, 5)],
            ),
            (
                "cat > a.md <<EOF\nRun `make` first.\nEOF",
                &[("heredoc-unquoted-backtick", Severity::Error, 5)],
            ),
            ("kubectl apply -f - <<EOF\nimage: $(cat tag)\nEOF", &[]),
        ];
        for (code, expected) in cases {
            let found: Vec<(String, Severity, usize)> =
                lint(&format!("# T\n\n```bash\n{code}\n```\n"))
                    .into_iter()
                    .map(|d| (d.rule, d.severity, d.line))
                    .collect();
            let expected: Vec<(String, Severity, usize)> = expected
                .iter()
                .map(|(r, s, l)| (r.to_string(), *s, *l))
                .collect();
            assert_eq!(found, expected, "{code}");
        }
    }

    #[test]
    fn bashisms_in_sh_sessions() {
        let markdown = "# T\n\n```bash\nkubectl run t --image=curlimages/curl --restart=Never --rm -it -- sh\n```\n\nInside the pod:\n\n```bash\nfor i in {1..10}; do curl -s http://web/; done\nlist=(a b)\nif [[ -n \"$x\" ]]; then echo \"${list[0]}\"; fi\necho '{1..3}' \"{a,b}\"\nexit\n```\n";
        let found: Vec<(usize, Severity)> = lint(markdown)
            .into_iter()
            .filter(|d| d.rule == "sh-bashism")
            .map(|d| (d.line, d.severity))
            .collect();
        assert_eq!(
            found,
            [
                (10, Severity::Error),
                (11, Severity::Error),
                (12, Severity::Warning),
                (12, Severity::Error)
            ]
        );
        let bash = "# T\n\n```bash\nkubectl run t --image=nicolaka/netshoot --restart=Never --rm -it -- bash\n```\n\nInside the pod:\n\n```bash\nfor i in {1..10}; do curl -s http://web/; done\n```\n";
        assert!(lint(bash).is_empty());
    }
}
