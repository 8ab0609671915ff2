//! Built-in shell checks: bash-only syntax in POSIX `sh`, heredocs the shell will mangle, and the
//! parser's syntax errors when ShellCheck is not there.
//!
//! The code is parsed with brush-parser (the same parser the lab model uses) and walked; only a
//! heredoc *body* is scanned by hand, because it is not shell code but text in which the shell
//! expands `$` and backticks — a few rules from the bash manual, not a grammar.

use std::sync::LazyLock;

use brush_parser::ast::{self, SourceLocation};
use brush_parser::word::{Parameter, ParameterExpr, WordPiece};
use regex::Regex;

use super::{Severity, Sink};
use labbook::model::{Dialect, Lab, Step, StepKind};

/// What a walk over a block's AST reports; every line is 1-based within the block's code.
pub(crate) trait Visit {
    /// A word (command name, argument, loop value, assignment value).
    fn word(&mut self, _word: &ast::Word, _line: usize) {}
    /// A variable assignment (`a=1`, `a=(x y)`, `a[0]=x`).
    fn assignment(&mut self, _assignment: &ast::Assignment, _line: usize) {}
    /// The variable of a `for` loop.
    fn for_variable(&mut self, _name: &str, _line: usize) {}
    /// A `[[ … ]]` test.
    fn extended_test(&mut self, _line: usize) {}
    /// An and-or list (`a && b || c`, or a single pipeline).
    fn and_or(&mut self, _list: &ast::AndOrList, _line: usize) {}
}

/// Parses `code` and walks it; returns false when it does not parse.
pub(crate) fn walk(code: &str, visitor: &mut dyn Visit) -> bool {
    let options = brush_parser::ParserOptions::default();
    let mut parser = brush_parser::Parser::new(std::io::Cursor::new(code.as_bytes()), &options);
    match parser.parse_program() {
        Ok(program) => {
            for list in &program.complete_commands {
                walk_list(list, visitor);
            }
            true
        }
        Err(_) => false,
    }
}

fn line_of(loc: Option<brush_parser::SourceSpan>) -> usize {
    loc.map_or(1, |l| l.start.line.max(1))
}

fn walk_list(list: &ast::CompoundList, visitor: &mut dyn Visit) {
    for ast::CompoundListItem(and_or, _) in &list.0 {
        let line = line_of(and_or.first.seq.first().and_then(|c| c.location()));
        visitor.and_or(and_or, line);
        walk_pipeline(&and_or.first, visitor);
        for next in &and_or.additional {
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => walk_pipeline(p, visitor),
            }
        }
    }
}

fn walk_pipeline(pipeline: &ast::Pipeline, visitor: &mut dyn Visit) {
    for command in &pipeline.seq {
        walk_command(command, visitor);
    }
}

fn walk_command(command: &ast::Command, visitor: &mut dyn Visit) {
    match command {
        ast::Command::Simple(simple) => {
            let items = simple
                .prefix
                .iter()
                .flat_map(|p| p.0.iter())
                .chain(simple.suffix.iter().flat_map(|s| s.0.iter()));
            if let Some(word) = &simple.word_or_name {
                visitor.word(word, line_of(word.location()));
            }
            for item in items {
                match item {
                    ast::CommandPrefixOrSuffixItem::Word(word) => {
                        visitor.word(word, line_of(word.location()));
                    }
                    ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, word) => {
                        let line = line_of(Some(assignment.loc.clone()));
                        visitor.assignment(assignment, line);
                        visitor.word(word, line);
                    }
                    ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                        walk_list(&sub.list, visitor);
                    }
                    ast::CommandPrefixOrSuffixItem::IoRedirect(_) => {}
                }
            }
        }
        ast::Command::Compound(compound, _) => walk_compound(compound, visitor),
        ast::Command::Function(function) => walk_compound(&function.body.0, visitor),
        ast::Command::ExtendedTest(test, _) => {
            visitor.extended_test(line_of(Some(test.loc.clone())));
        }
    }
}

fn walk_compound(compound: &ast::CompoundCommand, visitor: &mut dyn Visit) {
    match compound {
        ast::CompoundCommand::BraceGroup(group) => walk_list(&group.list, visitor),
        ast::CompoundCommand::Subshell(sub) => walk_list(&sub.list, visitor),
        ast::CompoundCommand::ForClause(f) => {
            visitor.for_variable(&f.variable_name, line_of(Some(f.loc.clone())));
            for word in f.values.iter().flatten() {
                visitor.word(word, line_of(word.location()));
            }
            walk_list(&f.body.list, visitor);
        }
        ast::CompoundCommand::ArithmeticForClause(f) => walk_list(&f.body.list, visitor),
        ast::CompoundCommand::CaseClause(c) => {
            for item in &c.cases {
                if let Some(cmd) = &item.cmd {
                    walk_list(cmd, visitor);
                }
            }
        }
        ast::CompoundCommand::IfClause(i) => {
            walk_list(&i.condition, visitor);
            walk_list(&i.then, visitor);
            for branch in i.elses.iter().flatten() {
                if let Some(condition) = &branch.condition {
                    walk_list(condition, visitor);
                }
                walk_list(&branch.body, visitor);
            }
        }
        ast::CompoundCommand::WhileClause(ast::WhileOrUntilClauseCommand(cond, body, _))
        | ast::CompoundCommand::UntilClause(ast::WhileOrUntilClauseCommand(cond, body, _)) => {
            walk_list(cond, visitor);
            walk_list(&body.list, visitor);
        }
        ast::CompoundCommand::Coprocess(c) => walk_command(&c.body, visitor),
        ast::CompoundCommand::Arithmetic(_) => {}
    }
}

/// Runs the built-in checks that do not depend on ShellCheck.
pub(crate) fn check(lab: &Lab, sink: &mut Sink<'_>) {
    let defined = definitions(lab);
    for step in &lab.steps {
        if step.kind == StepKind::Skip {
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
                WordPiece::CommandSubstitution(code) => {
                    let mut inner = Bashisms { found: Vec::new() };
                    walk(code, &mut inner);
                    self.found.extend(
                        inner
                            .found
                            .into_iter()
                            .map(|(l, s, m)| (line + l.saturating_sub(1), s, m)),
                    );
                }
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

impl Visit for Bashisms {
    fn word(&mut self, word: &ast::Word, line: usize) {
        let options = brush_parser::ParserOptions::default();
        if let Ok(pieces) = brush_parser::word::parse(&word.value, &options) {
            self.pieces(&pieces, line, false);
        }
    }

    fn assignment(&mut self, assignment: &ast::Assignment, line: usize) {
        let array = matches!(assignment.value, ast::AssignmentValue::Array(_))
            || matches!(assignment.name, ast::AssignmentName::ArrayElementName(..));
        if array {
            self.found.push((
                line,
                Severity::Error,
                format!(
                    "`{}` assigns an array, and POSIX sh has no arrays",
                    assignment.name
                ),
            ));
        }
    }

    fn extended_test(&mut self, line: usize) {
        self.found.push((
            line,
            Severity::Warning,
            "`[[ … ]]` is bash syntax: dash has no `[[`, and busybox sh only when built with bash compatibility".into(),
        ));
    }
}

fn bashisms(step: &Step, sink: &mut Sink<'_>) {
    let mut visitor = Bashisms { found: Vec::new() };
    walk(&step.code, &mut visitor);
    let shell = step.session.as_ref().map_or_else(
        || "a POSIX sh".to_string(),
        |s| format!("the sh of session `{s}`"),
    );
    for (line, severity, message) in visitor.found {
        sink.emit(
            "sh-bashism",
            severity,
            step.markdown_line(line - 1),
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
    struct Definitions<'a> {
        step: &'a Step,
        found: Vec<(usize, String)>,
        next_is_name: bool,
    }
    impl Visit for Definitions<'_> {
        fn assignment(&mut self, assignment: &ast::Assignment, line: usize) {
            let name = match &assignment.name {
                ast::AssignmentName::VariableName(n)
                | ast::AssignmentName::ArrayElementName(n, _) => n,
            };
            self.found
                .push((self.step.markdown_line(line - 1), name.clone()));
        }
        fn for_variable(&mut self, name: &str, line: usize) {
            self.found
                .push((self.step.markdown_line(line - 1), name.to_string()));
        }
        fn word(&mut self, word: &ast::Word, line: usize) {
            // `export A=1`, `read A`, `declare A`: the words after the command name.
            let value = word.value.as_str();
            if matches!(
                value,
                "export" | "read" | "declare" | "local" | "readonly" | "typeset"
            ) {
                self.next_is_name = true;
                return;
            }
            if self.next_is_name && !value.starts_with('-') {
                let name: String = value
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    self.found.push((self.step.markdown_line(line - 1), name));
                }
            }
        }
        fn and_or(&mut self, _list: &ast::AndOrList, _line: usize) {
            self.next_is_name = false;
        }
    }
    let mut found = Vec::new();
    for step in &lab.steps {
        let mut visitor = Definitions {
            step,
            found: Vec::new(),
            next_is_name: false,
        };
        walk(&step.code, &mut visitor);
        found.extend(visitor.found);
    }
    found
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
