//! `labbook lint`: load the courses, run the checks, print the diagnostics as text or JSON.
//!
//! The text form reads like a compiler's: `path:line: severity[rule]: message`, the Markdown
//! line with a gutter, and a `help:` hint, then a summary. The JSON form is the contract
//! `{"diagnostics":[{"path","line","rule","severity","message"}]}`. Notes that are not tied to a
//! line (ShellCheck missing) go to stderr, once. Under GitHub Actions (`GITHUB_ACTIONS=true`)
//! every diagnostic is also printed as an `::error`/`::warning`/`::notice` annotation.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use labbook_lint::{Diagnostic, Options, Outcome, Severity, ShellcheckMode};

use crate::cli::{EXIT_FAILED, EXIT_OK, Format};

/// Lints every path; exit code 1 when an error was found.
pub fn run(paths: &[PathBuf], format: Format) -> anyhow::Result<u8> {
    let courses = paths
        .iter()
        .map(|p| labbook::course::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    crate::plan::require_labs(paths, &courses)?;
    let options = Options {
        shellcheck: ShellcheckMode::from_env(),
    };
    let outcome = labbook_lint::lint(&courses, &options);
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    match format {
        Format::Json => {
            let json = labbook_lint::to_json(&outcome.diagnostics);
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => {
            let sources: HashMap<&Path, &str> = courses
                .iter()
                .flat_map(|c| c.labs.iter())
                .map(|lab| (lab.path.as_path(), lab.source.as_str()))
                .collect();
            let labs = courses.iter().map(|c| c.labs.len()).sum();
            print!("{}", render(&outcome, &sources, labs));
        }
    }
    if crate::github::actions() {
        print!("{}", annotations(&outcome.diagnostics));
    }
    Ok(if outcome.has_errors() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// The diagnostics as GitHub Actions annotations (`GITHUB_ACTIONS=true`), with their help.
pub fn annotations(diagnostics: &[Diagnostic]) -> String {
    use crate::github::{Level, annotation};
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
            Severity::Info => Level::Notice,
        };
        let mut message = d.message.clone();
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        let title = format!("labbook lint: {}", d.rule);
        let _ = writeln!(
            out,
            "{}",
            annotation(
                level,
                &d.path.display().to_string(),
                d.line,
                &title,
                &message
            )
        );
    }
    out
}

/// Renders the diagnostics and the summary for a person.
pub fn render(outcome: &Outcome, sources: &HashMap<&Path, &str>, labs: usize) -> String {
    let mut out = String::new();
    for diagnostic in &outcome.diagnostics {
        let source = sources.get(diagnostic.path.as_path()).copied();
        render_one(&mut out, diagnostic, source);
    }
    let count = |severity: Severity, word: &str| {
        let n = outcome.count(severity);
        format!("{n} {word}{}", if n == 1 { "" } else { "s" })
    };
    let _ = writeln!(
        out,
        "lint: {}, {}, {} in {labs} lab{}",
        count(Severity::Error, "error"),
        count(Severity::Warning, "warning"),
        count(Severity::Info, "info"),
        if labs == 1 { "" } else { "s" }
    );
    out
}

fn render_one(out: &mut String, d: &Diagnostic, source: Option<&str>) {
    let _ = writeln!(
        out,
        "{}:{}: {}[{}]: {}",
        d.path.display(),
        d.line,
        d.severity,
        d.rule,
        d.message
    );
    let text = source.and_then(|s| s.lines().nth(d.line.saturating_sub(1)));
    let width = d.line.to_string().len();
    let pad = " ".repeat(width);
    if let Some(text) = text {
        let text = text.trim_end();
        let shown: String = if text.chars().count() > 120 {
            format!("{}…", text.chars().take(119).collect::<String>())
        } else {
            text.to_string()
        };
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {shown}", d.line);
        let _ = writeln!(out, "{pad} |");
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_like_a_compiler() {
        let outcome = Outcome {
            diagnostics: vec![Diagnostic {
                path: PathBuf::from("ch/lab.md"),
                line: 3,
                rule: "heredoc-unquoted-dollar".into(),
                severity: Severity::Error,
                message: "the shell expands `$150`".into(),
                help: Some("quote the delimiter".into()),
            }],
            notes: Vec::new(),
        };
        let sources: HashMap<&Path, &str> =
            [(Path::new("ch/lab.md"), "# T\n\nrate: $150/hour\n")].into();
        assert_eq!(
            render(&outcome, &sources, 1),
            "ch/lab.md:3: error[heredoc-unquoted-dollar]: the shell expands `$150`\n  |\n3 | rate: $150/hour\n  |\n  = help: quote the delimiter\n\nlint: 1 error, 0 warnings, 0 infos in 1 lab\n"
        );
    }
}
