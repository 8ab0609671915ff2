//! Layer 2 of the model: understanding the commands in a block, with a real shell parser
//! (brush-parser).
//!
//! Kind inference, the lint and the harness need to know what a block runs: which commands, on
//! which Markdown line, with which heredocs and redirections, which variables it sets, which files
//! it writes, and whether something is sent to the background or loops forever. Regexes over lines
//! get quoting, heredocs and `$( … )` wrong, so the block is parsed into an AST once, and walked
//! once, by the one visitor here; everyone else reads the [`Analysis`] it leaves on the step.

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
    /// Every redirection to or from a file, in order (`2> err.log`, `< in.txt`, `>&2`).
    pub redirects: Vec<Redirect>,
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
        self.heredoc.as_ref()?;
        if let Some(file) = self.writes.first() {
            return Some(file.clone());
        }
        if self.program() == "tee" {
            return self.args().iter().find(|a| !a.starts_with('-')).cloned();
        }
        None
    }
}

/// A redirection of a command to or from a file or descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redirect {
    /// The descriptor redirected, when written (`2` in `2> f`).
    pub fd: Option<u32>,
    /// The operator: `<`, `>`, `>>`, `<>`, `>|`, `<&` or `>&`.
    pub operator: String,
    /// The file (or descriptor) as written, quotes removed.
    pub target: String,
}

/// How a block sets a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// `A=1` on its own: a shell variable from here on.
    Shell,
    /// `A=1 cmd`: in the environment of that one command.
    Command,
    /// `export A=1`, `declare A`, `local`, `readonly`, `typeset`.
    Declare,
    /// The variable of a `for` loop.
    Loop,
    /// `read A`.
    Read,
}

/// A variable the block sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// The variable's name (`a` for `a[0]=x`).
    pub name: String,
    /// The value as written, quotes removed; `None` when the shell decides it (`read A`, a loop
    /// variable, `export A`).
    pub value: Option<String>,
    /// How it is set.
    pub binding: Binding,
    /// The Markdown line.
    pub line: usize,
}

/// What a [`Word`] is in the syntax around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WordRole {
    /// A command name, an argument or a loop value.
    Plain,
    /// An assignment word (`a=1`, `a=(x y)`); `target` is the name as written (`a[0]`).
    Assignment {
        /// The assigned name as written (`a`, `a[0]`).
        target: String,
        /// Whether it assigns an array (`a=(x y)`, `a[0]=x`).
        array: bool,
    },
    /// A `[[ … ]]` test (its words are not listed).
    ExtendedTest,
}

/// A word as written, before expansion, with its Markdown line: what checks of the shell's own
/// syntax (bash-only brace expansion, arrays) read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    /// The word as written, quotes and expansions included (`"${list[0]}"`, `{1..3}`).
    pub text: String,
    /// What the word is.
    pub role: WordRole,
    /// The Markdown line.
    pub line: usize,
}

/// An `a || b` in a block: the program that ends the pipeline before `||` and the one that
/// starts the pipeline after it (`grep -q ok || echo missing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// The last program of the pipeline whose failure is handled, as written, when it is a
    /// simple command.
    pub checked: Option<String>,
    /// The first program of the fallback, as written, when it is a simple command.
    pub fallback: Option<String>,
    /// The Markdown line of the and-or list.
    pub line: usize,
}

/// Builtins whose arguments declare variables.
const DECLARATIONS: &[&str] = &["export", "declare", "local", "readonly", "typeset"];

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
    /// The variables the block sets, in source order.
    pub assignments: Vec<Assignment>,
    /// The words of the block in source order (those inside `$( … )` after the command using
    /// them); heredoc bodies, redirection targets and `case` values are not listed.
    pub words: Vec<Word>,
    /// The `a || b` fallbacks, in source order.
    pub fallbacks: Vec<Fallback>,
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
            self.fallbacks(and_or);
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

    fn fallbacks(&mut self, and_or: &ast::AndOrList) {
        let line = self
            .line_of(and_or.first.seq.first().and_then(|c| c.location()))
            .unwrap_or_else(|| (self.lines)(1 + self.line_offset));
        let program = |command: Option<&ast::Command>| match command? {
            ast::Command::Simple(simple) => simple.word_or_name.as_ref().map(|w| w.value.clone()),
            _ => None,
        };
        let mut previous = &and_or.first;
        for next in &and_or.additional {
            let (ast::AndOr::And(pipeline) | ast::AndOr::Or(pipeline)) = next;
            if let ast::AndOr::Or(fallback) = next {
                self.analysis.fallbacks.push(Fallback {
                    checked: program(previous.seq.last()),
                    fallback: program(fallback.seq.first()),
                    line,
                });
            }
            previous = pipeline;
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
            ast::Command::ExtendedTest(test, _) => {
                self.word_at("[[".into(), WordRole::ExtendedTest, Some(test.loc.clone()));
            }
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand, guarded: bool, background: bool) {
        match compound {
            ast::CompoundCommand::BraceGroup(group) => self.list(&group.list, guarded),
            ast::CompoundCommand::Subshell(sub) => self.list(&sub.list, guarded),
            ast::CompoundCommand::ForClause(f) => {
                let line = self.line_of(Some(f.loc.clone())).unwrap_or(0);
                self.analysis.assignments.push(Assignment {
                    name: f.variable_name.clone(),
                    value: None,
                    binding: Binding::Loop,
                    line,
                });
                for word in f.values.iter().flatten() {
                    self.word(word, WordRole::Plain, word.location());
                }
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
        if let Some(name) = &simple.word_or_name {
            self.word(name, WordRole::Plain, name.location());
        }
        let mut heredoc = None;
        let mut writes = Vec::new();
        let mut redirects = Vec::new();
        let mut assignments = Vec::new();
        let mut words: Vec<&ast::Word> = simple.word_or_name.iter().collect();
        let prefix_len = simple.prefix.as_ref().map_or(0, |p| p.0.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(word) => {
                    // Only suffix words are arguments; prefix items are assignments and redirects.
                    self.word(word, WordRole::Plain, word.location());
                    argv.push(unquote(&word.value));
                    words.push(word);
                }
                ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, word) => {
                    let role = WordRole::Assignment {
                        target: assignment.name.to_string(),
                        array: matches!(assignment.value, ast::AssignmentValue::Array(_))
                            || matches!(assignment.name, ast::AssignmentName::ArrayElementName(..)),
                    };
                    self.word(word, role, Some(assignment.loc.clone()));
                    words.push(word);
                    // After the command name, `app=web` is an argument (`kubectl label … app=web`),
                    // not an assignment.
                    if index >= prefix_len && !argv.is_empty() {
                        argv.push(unquote(&word.value));
                    } else {
                        assignments.push(self.assignment(assignment));
                    }
                }
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
                ast::CommandPrefixOrSuffixItem::IoRedirect(redirect) => {
                    if let ast::IoRedirect::File(fd, kind, target) = redirect {
                        let target = match target {
                            ast::IoFileRedirectTarget::Filename(w) => Some(unquote(&w.value)),
                            ast::IoFileRedirectTarget::Fd(fd) => Some(fd.to_string()),
                            _ => None,
                        };
                        if let Some(target) = target {
                            let stdout = fd.is_none_or(|fd| fd == 1)
                                && matches!(
                                    kind,
                                    ast::IoFileRedirectKind::Write
                                        | ast::IoFileRedirectKind::Append
                                        | ast::IoFileRedirectKind::Clobber
                                );
                            let is_file = matches!(
                                redirect,
                                ast::IoRedirect::File(_, _, ast::IoFileRedirectTarget::Filename(_))
                            );
                            if stdout && is_file && target != "/dev/null" {
                                writes.push(target.clone());
                            }
                            redirects.push(Redirect {
                                fd: fd.and_then(|fd| u32::try_from(fd).ok()),
                                operator: kind.to_string(),
                                target,
                            });
                        }
                    }
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
        let binding = if argv.is_empty() {
            Binding::Shell
        } else {
            Binding::Command
        };
        for mut assignment in assignments {
            assignment.binding = binding;
            self.analysis.assignments.push(assignment);
        }
        if argv.is_empty() {
            return;
        }
        self.declarations(&argv, line);
        self.analysis.commands.push(Command {
            argv,
            line,
            heredoc,
            writes,
            redirects,
            background,
            substituted: self.substituted,
            guarded,
        });
    }

    /// An assignment word before (or without) a command; its binding is set by the caller.
    fn assignment(&self, assignment: &ast::Assignment) -> Assignment {
        let name = match &assignment.name {
            ast::AssignmentName::VariableName(n) | ast::AssignmentName::ArrayElementName(n, _) => {
                n.clone()
            }
        };
        let value = match &assignment.value {
            ast::AssignmentValue::Scalar(word) => unquote(&word.value),
            ast::AssignmentValue::Array(_) => assignment.value.to_string(),
        };
        Assignment {
            name,
            value: Some(value),
            binding: Binding::Shell,
            line: self.line_of(Some(assignment.loc.clone())).unwrap_or(0),
        }
    }

    /// The variables `export A=1`, `declare -x A`, `read A B` set.
    fn declarations(&mut self, argv: &[String], line: usize) {
        let binding = match argv[0].as_str() {
            "read" => Binding::Read,
            name if DECLARATIONS.contains(&name) => Binding::Declare,
            _ => return,
        };
        for arg in argv[1..].iter().filter(|a| !a.starts_with('-')) {
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                self.analysis.assignments.push(Assignment {
                    name,
                    value: value.filter(|_| binding == Binding::Declare),
                    binding,
                    line,
                });
            }
        }
    }

    fn word(&mut self, word: &ast::Word, role: WordRole, loc: Option<brush_parser::SourceSpan>) {
        self.word_at(word.value.clone(), role, loc);
    }

    fn word_at(&mut self, text: String, role: WordRole, loc: Option<brush_parser::SourceSpan>) {
        let line = self
            .line_of(loc)
            .unwrap_or_else(|| (self.lines)(1 + self.line_offset));
        self.analysis.words.push(Word { text, role, line });
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
                redirects: Vec::new(),
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
    // Most words hold nothing to remove (expansions stay as written); parsing one costs more
    // than analysing the rest of its command.
    if !word.contains(['\'', '"', '\\']) {
        return word.to_string();
    }
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
            ("$HOME/x", "$HOME/x"),
            ("${NS:-default}", "${NS:-default}"),
            ("$(kubectl get ns -o name)", "$(kubectl get ns -o name)"),
            ("`date`-{a,b}*", "`date`-{a,b}*"),
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
    fn assignments_and_how_they_bind() {
        let code = "NS=demo\nKUBECONFIG=/tmp/k kubectl get pods\nexport A=1 B\nread -r C\nfor i in 1 2; do echo $i; done\nkubectl label pod p app=web\nlist=(a b)";
        let analysis = analyze(code, &lines(code));
        let found: Vec<(&str, Option<&str>, Binding, usize)> = analysis
            .assignments
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref(), a.binding, a.line))
            .collect();
        assert_eq!(
            found,
            [
                ("NS", Some("demo"), Binding::Shell, 101),
                ("KUBECONFIG", Some("/tmp/k"), Binding::Command, 102),
                ("A", Some("1"), Binding::Declare, 103),
                ("B", None, Binding::Declare, 103),
                ("C", None, Binding::Read, 104),
                ("i", None, Binding::Loop, 105),
                ("list", Some("(a b)"), Binding::Shell, 107),
            ]
        );
    }

    #[test]
    fn redirections_and_written_files() {
        struct Case {
            code: &'static str,
            redirects: &'static [(Option<u32>, &'static str, &'static str)],
            writes: &'static [&'static str],
            written_file: Option<&'static str>,
        }
        let cases = [
            Case {
                code: "cat > a.yaml <<EOF\nx\nEOF",
                redirects: &[(None, ">", "a.yaml")],
                writes: &["a.yaml"],
                written_file: Some("a.yaml"),
            },
            Case {
                code: "cat <<'EOF' >> \"my notes.md\"\nx\nEOF",
                redirects: &[(None, ">>", "my notes.md")],
                writes: &["my notes.md"],
                written_file: Some("my notes.md"),
            },
            Case {
                code: "tee -a out.txt <<EOF\nx\nEOF",
                redirects: &[],
                writes: &[],
                written_file: Some("out.txt"),
            },
            Case {
                code: "make build 2> err.log > /dev/null < in.txt",
                redirects: &[
                    (Some(2), ">", "err.log"),
                    (None, ">", "/dev/null"),
                    (None, "<", "in.txt"),
                ],
                writes: &[],
                written_file: None,
            },
            Case {
                code: "echo hi > out.txt",
                redirects: &[(None, ">", "out.txt")],
                writes: &["out.txt"],
                written_file: None,
            },
        ];
        for case in cases {
            let analysis = analyze(case.code, &lines(case.code));
            let command = &analysis.commands[0];
            let redirects: Vec<(Option<u32>, &str, &str)> = command
                .redirects
                .iter()
                .map(|r| (r.fd, r.operator.as_str(), r.target.as_str()))
                .collect();
            assert_eq!(redirects, case.redirects, "{}", case.code);
            assert_eq!(command.writes, case.writes, "{}", case.code);
            assert_eq!(
                command.written_file().as_deref(),
                case.written_file,
                "{}",
                case.code
            );
        }
    }

    #[test]
    fn words_fallbacks_and_tests_in_source_order() {
        let code =
            "if [[ -n $x ]]; then a[0]=1; fi\ngrep -q ok f || echo missing\necho $(printf {1..3})";
        let analysis = analyze(code, &lines(code));
        let words: Vec<(&str, &WordRole, usize)> = analysis
            .words
            .iter()
            .map(|w| (w.text.as_str(), &w.role, w.line))
            .collect();
        let element = WordRole::Assignment {
            target: "a[0]".into(),
            array: true,
        };
        assert_eq!(
            words,
            [
                ("[[", &WordRole::ExtendedTest, 101),
                ("a[0]=1", &element, 101),
                ("grep", &WordRole::Plain, 102),
                ("-q", &WordRole::Plain, 102),
                ("ok", &WordRole::Plain, 102),
                ("f", &WordRole::Plain, 102),
                ("echo", &WordRole::Plain, 102),
                ("missing", &WordRole::Plain, 102),
                ("echo", &WordRole::Plain, 103),
                ("$(printf {1..3})", &WordRole::Plain, 103),
                ("printf", &WordRole::Plain, 103),
                ("{1..3}", &WordRole::Plain, 103),
            ]
        );
        assert_eq!(
            analysis.fallbacks,
            [Fallback {
                checked: Some("grep".into()),
                fallback: Some("echo".into()),
                line: 102,
            }]
        );
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
