//! Understanding the commands in a block, with a real shell parser (brush-parser).
//!
//! Kind inference, the lint and the harness need to know what a block runs: which commands, on
//! which Markdown line, with which heredocs and redirections, and whether something is sent to the
//! background or loops forever. Regexes over lines get quoting, heredocs and `$( … )` wrong, so the
//! block is parsed into an AST and walked.

use brush_parser::ParserOptions;
use brush_parser::ast;
use brush_parser::ast::SourceLocation;
use brush_parser::word::WordPiece;
use serde::Serialize;

/// A heredoc attached to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word, without quotes.
    pub delimiter: String,
    /// Whether the delimiter is quoted (`<<'EOF'`), so that the body is taken literally.
    pub quoted: bool,
    /// The body as written.
    pub body: String,
    /// The Markdown line of the body's first line.
    pub body_line: usize,
}

/// One simple command found in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// The words with quotes removed (`kubectl`, `get`, `pods`, ...); expansions are kept as text.
    pub argv: Vec<String>,
    /// The Markdown line the command starts on.
    pub line: usize,
    /// A heredoc fed to the command's stdin.
    pub heredoc: Option<Heredoc>,
    /// Files the command's stdout is written to (`> f`, `>> f`).
    pub writes: Vec<String>,
    /// Whether the command is started in the background with `&`.
    pub background: bool,
    /// Whether the command runs inside a command substitution `$( … )`.
    pub substituted: bool,
    /// Whether a failure of the command is handled by the shell (`a || b`, `if a`, `while a`).
    pub guarded: bool,
}

impl Command {
    /// The command's name without any directory (`kubectl` for `/usr/bin/kubectl`).
    pub fn program(&self) -> &str {
        self.argv
            .first()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .unwrap_or("")
    }

    /// The words after the program name.
    pub fn args(&self) -> &[String] {
        self.argv.get(1..).unwrap_or(&[])
    }

    /// The file this command writes from a heredoc (`cat > f <<EOF`, `tee f <<EOF`), as written:
    /// what makes a block a `write-file` step, and what the harness snapshots.
    pub fn written_file(&self) -> Option<String> {
        crate::infer::written_file(self)
    }
}

/// A block's code that the parser rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShellError {
    /// The Markdown line of the problem.
    pub line: usize,
    /// The parser's message.
    pub message: String,
}

/// Everything known about a block's commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// The simple commands, in source order (substitutions before the command using them).
    pub commands: Vec<Command>,
    /// Markdown lines of `while true`-style loops that never end by themselves.
    pub endless_loops: Vec<usize>,
    /// The parse error, if the block is not valid shell; `commands` is then a best effort.
    pub error: Option<ShellError>,
}

/// Parses `code` and lists its commands. `lines[i]` is the Markdown line of the code's line `i`.
pub fn analyze(code: &str, lines: &[usize]) -> Analysis {
    let map_line = |line: usize| -> usize {
        lines
            .get(line.saturating_sub(1))
            .or(lines.last())
            .copied()
            .unwrap_or(0)
    };
    let mut walker = Walker {
        analysis: Analysis::default(),
        lines: &map_line,
        substituted: false,
        line_offset: 0,
    };
    match parse_program(code) {
        Ok(program) => walker.program(&program),
        Err(error) => {
            walker.analysis.error = Some(ShellError {
                line: map_line(error.0),
                message: error.1,
            });
            walker.fallback(code);
        }
    }
    walker.analysis
}

/// Parses a program, turning parser errors (and any panic inside the parser) into a message.
fn parse_program(code: &str) -> Result<ast::Program, (usize, String)> {
    let options = ParserOptions::default();
    let mut parser = brush_parser::Parser::new(std::io::Cursor::new(code.as_bytes()), &options);
    parser.parse_program().map_err(|e| {
        let line = match &e {
            brush_parser::ParseError::ParsingNear(p) => p.line,
            brush_parser::ParseError::Tokenizing {
                position: Some(p), ..
            } => p.line,
            _ => code.lines().count().max(1),
        };
        (line, e.to_string())
    })
}

struct Walker<'a> {
    analysis: Analysis,
    lines: &'a dyn Fn(usize) -> usize,
    substituted: bool,
    /// Added to parser lines when walking the inside of a substitution.
    line_offset: usize,
}

impl Walker<'_> {
    fn line_of(&self, loc: Option<brush_parser::SourceSpan>) -> Option<usize> {
        loc.map(|span| (self.lines)(span.start.line + self.line_offset))
    }

    fn program(&mut self, program: &ast::Program) {
        for list in &program.complete_commands {
            self.list(list, false);
        }
    }

    fn list(&mut self, list: &ast::CompoundList, guarded: bool) {
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            let background = matches!(separator, ast::SeparatorOperator::Async);
            let has_more = !and_or.additional.is_empty();
            // In `a && b || c` every pipeline but the last has its failure handled by the shell.
            self.pipeline(&and_or.first, guarded || has_more, background);
            let count = and_or.additional.len();
            for (i, next) in and_or.additional.iter().enumerate() {
                let pipeline = match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => p,
                };
                self.pipeline(pipeline, guarded || i + 1 < count, background);
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline, guarded: bool, background: bool) {
        let guarded = guarded || pipeline.bang;
        for command in &pipeline.seq {
            self.command(command, guarded, background);
        }
    }

    fn command(&mut self, command: &ast::Command, guarded: bool, background: bool) {
        match command {
            ast::Command::Simple(simple) => self.simple(simple, guarded, background),
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound, guarded, background);
                if let Some(redirects) = redirects {
                    for redirect in &redirects.0 {
                        self.redirect_words(redirect);
                    }
                }
            }
            ast::Command::Function(function) => {
                self.compound(&function.body.0, guarded, background);
            }
            ast::Command::ExtendedTest(..) => {}
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand, guarded: bool, background: bool) {
        match compound {
            ast::CompoundCommand::BraceGroup(group) => self.list(&group.list, guarded),
            ast::CompoundCommand::Subshell(sub) => self.list(&sub.list, guarded),
            ast::CompoundCommand::ForClause(f) => {
                for word in f.values.iter().flatten() {
                    self.substitutions(word);
                }
                self.list(&f.body.list, guarded);
            }
            ast::CompoundCommand::ArithmeticForClause(f) => self.list(&f.body.list, guarded),
            ast::CompoundCommand::CaseClause(c) => {
                self.substitutions(&c.value);
                for item in &c.cases {
                    if let Some(cmd) = &item.cmd {
                        self.list(cmd, guarded);
                    }
                }
            }
            ast::CompoundCommand::IfClause(i) => {
                self.list(&i.condition, true);
                self.list(&i.then, guarded);
                for branch in i.elses.iter().flatten() {
                    if let Some(condition) = &branch.condition {
                        self.list(condition, true);
                    }
                    self.list(&branch.body, guarded);
                }
            }
            ast::CompoundCommand::WhileClause(ast::WhileOrUntilClauseCommand(cond, body, loc))
            | ast::CompoundCommand::UntilClause(ast::WhileOrUntilClauseCommand(cond, body, loc)) => {
                let is_while = matches!(compound, ast::CompoundCommand::WhileClause(_));
                if is_while && is_always_true(cond) && !mentions_break(&body.list) && !background {
                    let line = self.line_of(Some(loc.clone())).unwrap_or(0);
                    self.analysis.endless_loops.push(line);
                }
                self.list(cond, true);
                self.list(&body.list, guarded);
            }
            ast::CompoundCommand::Coprocess(c) => self.command(&c.body, guarded, true),
            ast::CompoundCommand::Arithmetic(_) => {}
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, guarded: bool, background: bool) {
        let items: Vec<&ast::CommandPrefixOrSuffixItem> = simple
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .chain(simple.suffix.iter().flat_map(|s| s.0.iter()))
            .collect();
        let first_word =
            simple
                .word_or_name
                .iter()
                .chain(items.iter().filter_map(|item| match item {
                    ast::CommandPrefixOrSuffixItem::Word(w)
                    | ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => Some(w),
                    _ => None,
                }));
        let line = first_word
            .filter_map(|w| self.line_of(w.location()))
            .next()
            .unwrap_or_else(|| (self.lines)(1 + self.line_offset));

        let mut argv: Vec<String> = simple
            .word_or_name
            .iter()
            .map(|w| unquote(&w.value))
            .collect();
        let mut heredoc = None;
        let mut writes = Vec::new();
        let mut words: Vec<&ast::Word> = simple.word_or_name.iter().collect();
        let prefix_len = simple.prefix.as_ref().map_or(0, |p| p.0.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(word) => {
                    // Only suffix words are arguments; prefix items are assignments and redirects.
                    argv.push(unquote(&word.value));
                    words.push(word);
                }
                // After the command name, `app=web` is an argument (`kubectl label … app=web`),
                // not an assignment.
                ast::CommandPrefixOrSuffixItem::AssignmentWord(_, word)
                    if index >= prefix_len && !argv.is_empty() =>
                {
                    argv.push(unquote(&word.value));
                    words.push(word);
                }
                ast::CommandPrefixOrSuffixItem::AssignmentWord(_, word) => words.push(word),
                ast::CommandPrefixOrSuffixItem::IoRedirect(ast::IoRedirect::HereDocument(
                    _,
                    doc,
                )) => {
                    let body_line = self
                        .line_of(doc.doc.location())
                        .or_else(|| self.line_of(doc.here_end.location()).map(|l| l + 1))
                        .unwrap_or(line + 1);
                    heredoc = Some(Heredoc {
                        delimiter: unquote(&doc.here_end.value),
                        quoted: !doc.requires_expansion,
                        body: doc.doc.value.clone(),
                        body_line,
                    });
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(ast::IoRedirect::File(
                    fd,
                    ast::IoFileRedirectKind::Write
                    | ast::IoFileRedirectKind::Append
                    | ast::IoFileRedirectKind::Clobber,
                    ast::IoFileRedirectTarget::Filename(target),
                )) if fd.is_none_or(|fd| fd == 1) => {
                    let file = unquote(&target.value);
                    if file != "/dev/null" {
                        writes.push(file);
                    }
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(redirect) => {
                    self.redirect_words(redirect)
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                    self.list(&sub.list, true);
                }
            }
        }
        for word in words {
            self.substitutions(word);
        }
        if argv.is_empty() {
            return;
        }
        self.analysis.commands.push(Command {
            argv,
            line,
            heredoc,
            writes,
            background,
            substituted: self.substituted,
            guarded,
        });
    }

    fn redirect_words(&mut self, redirect: &ast::IoRedirect) {
        if let ast::IoRedirect::File(_, _, ast::IoFileRedirectTarget::ProcessSubstitution(_, sub)) =
            redirect
        {
            self.list(&sub.list, true);
        }
    }

    /// Walks the command substitutions inside a word, so that `$(kubectl get pod …)` is seen.
    fn substitutions(&mut self, word: &ast::Word) {
        if !word.value.contains("$(") && !word.value.contains('`') {
            return;
        }
        let Ok(pieces) = brush_parser::word::parse(&word.value, &ParserOptions::default()) else {
            return;
        };
        let base_line = word.location().map_or(1, |l| l.start.line) + self.line_offset;
        let mut inner = Vec::new();
        collect_substitutions(&pieces, &mut inner);
        for code in inner {
            if let Ok(program) = parse_program(&code) {
                let saved = (self.substituted, self.line_offset);
                self.substituted = true;
                self.line_offset = base_line - 1;
                self.program(&program);
                (self.substituted, self.line_offset) = saved;
            }
        }
    }

    /// Without an AST, still find the commands, one logical line at a time.
    fn fallback(&mut self, code: &str) {
        for (index, text) in code.lines().enumerate() {
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let Ok(words) = shell_words::split(text) else {
                continue;
            };
            let background = words.last().is_some_and(|w| w == "&");
            let argv: Vec<String> = words.into_iter().filter(|w| w != "&").collect();
            if argv.is_empty() {
                continue;
            }
            self.analysis.commands.push(Command {
                argv,
                line: (self.lines)(index + 1),
                heredoc: None,
                writes: Vec::new(),
                background,
                substituted: false,
                guarded: false,
            });
        }
    }
}

fn collect_substitutions(
    pieces: &[brush_parser::word::WordPieceWithSource],
    out: &mut Vec<String>,
) {
    for piece in pieces {
        match &piece.piece {
            WordPiece::CommandSubstitution(code)
            | WordPiece::BackquotedCommandSubstitution(code) => {
                out.push(code.clone());
            }
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => collect_substitutions(inner, out),
            _ => {}
        }
    }
}

fn unquote(word: &str) -> String {
    // Quote removal must respect nesting: `'{"a":1}'` keeps its double quotes. brush's
    // `unquote_str` drops every quote character, so the word is parsed into pieces instead.
    let unquoted = match brush_parser::word::parse(word, &ParserOptions::default()) {
        Ok(pieces) => {
            let mut out = String::new();
            unquote_pieces(word, &pieces, &mut out);
            out
        }
        Err(_) => brush_parser::unquote_str(word),
    };
    // A `\` that ends the word is a line continuation; drop it.
    unquoted.trim_end_matches('\\').to_string()
}

fn unquote_pieces(
    source: &str,
    pieces: &[brush_parser::word::WordPieceWithSource],
    out: &mut String,
) {
    for piece in pieces {
        match &piece.piece {
            WordPiece::Text(text)
            | WordPiece::SingleQuotedText(text)
            | WordPiece::AnsiCQuotedText(text) => out.push_str(text),
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => unquote_pieces(source, inner, out),
            WordPiece::EscapeSequence(escape) => {
                out.push_str(escape.strip_prefix('\\').unwrap_or(escape));
            }
            // Expansions stay as written (`$POD`, `$(…)`): their value is unknown here.
            _ => out.push_str(
                source
                    .get(piece.start_index..piece.end_index)
                    .unwrap_or_default(),
            ),
        }
    }
}

/// `while true`, `while :` and `while [ 1 ]`-style conditions.
fn is_always_true(condition: &ast::CompoundList) -> bool {
    let [ast::CompoundListItem(and_or, _)] = condition.0.as_slice() else {
        return false;
    };
    if !and_or.additional.is_empty() || and_or.first.bang {
        return false;
    }
    let [ast::Command::Simple(simple)] = and_or.first.seq.as_slice() else {
        return false;
    };
    let name = simple.word_or_name.as_ref().map(|w| w.value.as_str());
    matches!(name, Some("true" | ":")) && simple.suffix.as_ref().is_none_or(|s| s.0.is_empty())
}

fn mentions_break(list: &ast::CompoundList) -> bool {
    let text = list.to_string();
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .any(|w| w == "break" || w == "exit" || w == "return")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_after_the_command_are_arguments() {
        let analysis = analyze("A=1 kubectl label pod -l app=web version=v1\nB=2", &[1, 2]);
        assert_eq!(analysis.commands.len(), 1);
        assert_eq!(
            analysis.commands[0].argv,
            ["kubectl", "label", "pod", "-l", "app=web", "version=v1"]
        );
    }

    #[test]
    fn quote_removal_respects_nesting() {
        let cases = [
            (r#"'{"a":1}'"#, r#"{"a":1}"#),
            (r#""x $B \"y\" $(date)""#, r#"x $B "y" $(date)"#),
            (r"z\ w", "z w"),
            ("~/x", "~/x"),
            ("plain", "plain"),
            (r"end\", "end"),
        ];
        for (word, expected) in cases {
            assert_eq!(unquote(word), expected, "{word}");
        }
    }

    fn lines(code: &str) -> Vec<usize> {
        (1..=code.lines().count().max(1)).map(|l| l + 100).collect()
    }

    #[test]
    fn finds_commands_with_lines_and_flags() {
        struct Case {
            code: &'static str,
            programs: &'static [&'static str],
            first_line: usize,
        }
        let cases = [
            Case {
                code: "kubectl get pods\nkubectl get svc",
                programs: &["kubectl", "kubectl"],
                first_line: 101,
            },
            Case {
                code: "kubectl describe pod $(kubectl get pod -l app=x -o name) | grep -A5 Containers",
                programs: &["kubectl", "kubectl", "grep"],
                first_line: 101,
            },
            Case {
                code: "for i in {1..3}; do\n  curl -s http://web/\ndone | sort | uniq -c",
                programs: &["curl", "sort", "uniq"],
                first_line: 102,
            },
            Case {
                code: "\n\nPOD=$(kubectl get pods -o name)\necho \"$POD\"",
                programs: &["kubectl", "echo"],
                first_line: 103,
            },
        ];
        for case in cases {
            let analysis = analyze(case.code, &lines(case.code));
            assert_eq!(analysis.error, None, "{}", case.code);
            let programs: Vec<&str> = analysis.commands.iter().map(Command::program).collect();
            assert_eq!(programs, case.programs, "{}", case.code);
            assert_eq!(analysis.commands[0].line, case.first_line, "{}", case.code);
        }
    }

    #[test]
    fn heredocs_redirects_and_background() {
        let code = "cat > costs.md <<EOF\nPrice: $150\nEOF\nkubectl apply -f - <<'YAML'\nkind: Pod\nYAML\nkubectl port-forward svc/web 8080:80 &\n";
        let analysis = analyze(code, &lines(code));
        let cat = &analysis.commands[0];
        assert_eq!(cat.writes, vec!["costs.md".to_string()]);
        let doc = cat.heredoc.as_ref().expect("heredoc");
        assert!(!doc.quoted);
        assert_eq!(doc.delimiter, "EOF");
        assert!(doc.body.contains("$150"));
        let apply = &analysis.commands[1];
        assert!(apply.heredoc.as_ref().expect("heredoc").quoted);
        assert!(apply.writes.is_empty());
        assert_eq!(apply.line, 104);
        assert!(analysis.commands[2].background);
        assert_eq!(analysis.commands[2].line, 107);
    }

    #[test]
    fn guards_and_endless_loops() {
        let code = "grep -q x f || echo missing\nif kubectl get ns a; then echo yes; fi\nwhile true; do date; sleep 1; done";
        let analysis = analyze(code, &lines(code));
        let guarded: Vec<(&str, bool)> = analysis
            .commands
            .iter()
            .map(|c| (c.program(), c.guarded))
            .collect();
        assert_eq!(
            guarded,
            [
                ("grep", true),
                ("echo", false),
                ("kubectl", true),
                ("echo", false),
                ("true", true),
                ("date", false),
                ("sleep", false)
            ]
        );
        assert_eq!(analysis.endless_loops, vec![103]);
        let bounded = analyze("while true; do date; break; done", &[1]);
        assert!(bounded.endless_loops.is_empty());
    }

    #[test]
    fn syntax_errors_keep_a_best_effort_command_list() {
        let code = "kubectl get pods\ncat <<EOF\nnever ends";
        let analysis = analyze(code, &lines(code));
        let error = analysis.error.expect("error");
        assert!(error.line >= 101);
        assert_eq!(analysis.commands[0].program(), "kubectl");
    }
}
