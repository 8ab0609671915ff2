//! Whether labbook colours what it writes, decided in one place for every command, and the few
//! styles it uses (statuses and diffs).
//!
//! Precedence, as most command-line tools do it: an explicit `--color always|never` wins; then
//! `NO_COLOR` (any non-empty value turns colour off, <https://no-color.org>); then
//! `CLICOLOR_FORCE` (non-empty and not `0` turns it on, even into a pipe); then colour only when
//! the stream written to is a terminal. The decision is a `bool` handed to the code that writes,
//! so the engine never sees a command-line type. No crate: a handful of SGR codes do the job.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

/// The values of `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal, unless `NO_COLOR` is set or `CLICOLOR_FORCE` forces it.
    #[default]
    Auto,
    /// Always colour, even into a pipe or a file.
    Always,
    /// Never colour.
    Never,
}

/// The stream a command writes its coloured text to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (`labbook review`).
    Stdout,
    /// Standard error (`labbook run`'s console).
    Stderr,
}

/// The decision, from its inputs: `--color`, the values of `NO_COLOR` and `CLICOLOR_FORCE`, and
/// whether the stream is a terminal.
pub fn decide(
    choice: ColorChoice,
    no_color: Option<&OsStr>,
    clicolor_force: Option<&OsStr>,
    terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if no_color.is_some_and(|v| !v.is_empty()) => false,
        ColorChoice::Auto if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") => true,
        ColorChoice::Auto => terminal,
    }
}

/// Whether to colour what this process writes to `stream`.
pub fn enabled(choice: ColorChoice, stream: Stream) -> bool {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    decide_here(choice, terminal)
}

/// [`decide`] with this process's `NO_COLOR` and `CLICOLOR_FORCE`.
fn decide_here(choice: ColorChoice, terminal: bool) -> bool {
    decide(
        choice,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("CLICOLOR_FORCE").as_deref(),
        terminal,
    )
}

/// The `--color` value on a command line that clap has not parsed yet (the last one wins, as
/// clap does), so that clap's own help and error messages follow it too; `Auto` when absent or
/// not a value clap would accept (clap then reports it).
pub fn choice_in_args<I, S>(args: I) -> ColorChoice
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut choice = ColorChoice::Auto;
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.as_ref().to_string_lossy().into_owned();
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--color") {
            Some("") => args
                .next()
                .map(|v| v.as_ref().to_string_lossy().into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        };
        match value.as_deref() {
            Some("always") => choice = ColorChoice::Always,
            Some("never") => choice = ColorChoice::Never,
            Some("auto") => choice = ColorChoice::Auto,
            _ => {}
        }
    }
    choice
}

/// What clap's help and errors, written to a terminal or not, should do: the same decision as
/// [`enabled`], expressed in clap's terms.
pub fn for_clap(choice: ColorChoice) -> clap::ColorChoice {
    // clap looks at the stream it writes to (help to stdout, errors to stderr) by itself: it is
    // left to decide only where the terminal is what decides.
    match (decide_here(choice, false), decide_here(choice, true)) {
        (true, _) => clap::ColorChoice::Always,
        (false, false) => clap::ColorChoice::Never,
        (false, true) => clap::ColorChoice::Auto,
    }
}

/// The styles labbook uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Passed.
    Green,
    /// Failed; removed lines.
    Red,
    /// Skipped, optional, interrupted.
    Yellow,
    /// Hunk headers.
    Cyan,
    /// Titles and diff headers.
    Bold,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Green => "32",
            Style::Red => "31",
            Style::Yellow => "33",
            Style::Cyan => "36",
            Style::Bold => "1",
        }
    }
}

/// `text` in `style` when `on`, as it is otherwise.
pub fn paint(text: &str, style: Style, on: bool) -> String {
    if on {
        format!("\x1b[{}m{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}

/// Colours the unified diffs inside `text` (when `on`): a diff starts at a `--- ` line followed
/// by a `+++ ` line and lasts while lines look like a diff's, so output excerpts around it that
/// happen to start with `-` or `+` stay plain.
pub fn paint_diffs(text: &str, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len() + 16 * lines.len());
    let mut in_diff = false;
    for (i, raw) in lines.iter().enumerate() {
        let (line, end) = match raw.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (*raw, ""),
        };
        let header = line.starts_with("--- ")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("+++ "));
        in_diff = header
            || (in_diff && (line.is_empty() || line.starts_with([' ', '+', '-', '@', '\\'])));
        let style = if !in_diff {
            None
        } else if header || line.starts_with("+++ ") {
            Some(Style::Bold)
        } else if line.starts_with("@@") {
            Some(Style::Cyan)
        } else if line.starts_with('+') {
            Some(Style::Green)
        } else if line.starts_with('-') {
            Some(Style::Red)
        } else {
            None
        };
        match style {
            Some(style) => out.push_str(&paint(line, style, true)),
            None => out.push_str(line),
        }
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColorChoice::{Always, Auto, Never};

    #[test]
    fn the_flag_then_no_color_then_clicolor_force_then_the_terminal_decide() {
        type Case = (
            ColorChoice,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            bool,
        );
        let cases: [Case; 14] = [
            // choice, NO_COLOR, CLICOLOR_FORCE, terminal, colour
            (Auto, None, None, true, true),
            (Auto, None, None, false, false),
            (Auto, Some("1"), None, true, false),
            (Auto, Some(""), None, true, true),
            (Auto, None, Some("1"), false, true),
            (Auto, None, Some("0"), false, false),
            (Auto, None, Some(""), false, false),
            (Auto, None, Some("0"), true, true),
            (Auto, Some("1"), Some("1"), false, false),
            (Always, Some("1"), None, false, true),
            (Always, None, Some("0"), false, true),
            (Never, None, Some("1"), true, false),
            (Never, None, None, true, false),
            (Always, None, None, false, true),
        ];
        for (choice, no_color, force, terminal, want) in cases {
            assert_eq!(
                decide(
                    choice,
                    no_color.map(OsStr::new),
                    force.map(OsStr::new),
                    terminal
                ),
                want,
                "{choice:?} NO_COLOR={no_color:?} CLICOLOR_FORCE={force:?} terminal={terminal}"
            );
        }
    }

    #[test]
    fn only_diff_lines_are_painted() {
        let cases = [
            (
                "a.md:3\n--- accepted\n+++ new\n@@ -1 +1 @@\n-b\n+c\n context\n",
                "a.md:3\n\x1b[1m--- accepted\x1b[0m\n\x1b[1m+++ new\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-b\x1b[0m\n\x1b[32m+c\x1b[0m\n context\n",
            ),
            // An output excerpt is not a diff, even with lines that start like one.
            ("output:\n- item\n+ more", "output:\n- item\n+ more"),
            // A diff ends at the first line that is not a diff's.
            (
                "--- printed\n+++ output\n-x\nhint: look\n-y",
                "\x1b[1m--- printed\x1b[0m\n\x1b[1m+++ output\x1b[0m\n\x1b[31m-x\x1b[0m\nhint: look\n-y",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(paint_diffs(text, true), want, "{text}");
            assert_eq!(paint_diffs(text, false), text);
        }
    }

    #[test]
    fn paint_wraps_only_when_on() {
        assert_eq!(paint("ok", Style::Green, true), "\x1b[32mok\x1b[0m");
        assert_eq!(paint("ok", Style::Green, false), "ok");
    }

    #[test]
    fn the_color_flag_is_found_before_clap_parses() {
        let cases: [(&[&str], ColorChoice); 7] = [
            (&["labbook", "run", "book"], ColorChoice::Auto),
            (&["labbook", "--color", "never", "run"], ColorChoice::Never),
            (
                &["labbook", "run", "--color=always", "book"],
                ColorChoice::Always,
            ),
            (
                &["labbook", "--color", "never", "--color", "always"],
                ColorChoice::Always,
            ),
            (&["labbook", "--color", "purple"], ColorChoice::Auto),
            (&["labbook", "--color"], ColorChoice::Auto),
            (
                &["labbook", "run", "--", "--color", "never"],
                ColorChoice::Auto,
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(choice_in_args(args), expected, "{args:?}");
        }
    }
}
