//! `mdbook-labbook`: the mdBook 0.5 preprocessor that marks every runnable block of a course.
//!
//! `mdbook-labbook supports <renderer>` answers mdBook's question (every renderer is supported);
//! without arguments it reads `[context, book]` JSON on stdin and writes the book to stdout.
//! `--version` and `--help` print what they say. Errors name the file and line and exit with
//! code 2.

use std::process::ExitCode;

const HELP: &str = "\
mdbook-labbook: the labbook preprocessor for mdBook 0.5

Marks every runnable block of a course: its badge, step number and anchor, the expected output
of checks, and a \"last verified\" banner on each lab.

Usage:
  mdbook-labbook                      read mdBook's [context, book] JSON on stdin, write the book
  mdbook-labbook supports <renderer>  exit 0: every renderer is supported
  mdbook-labbook --version            print the version
  mdbook-labbook --help               print this help

Enable it in book.toml:
  [preprocessor.labbook]
";

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    match first.as_deref() {
        Some("--version" | "-V") => {
            println!("mdbook-labbook {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdbook-labbook: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> mdbook_preprocessor::errors::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    mdbook_labbook::preprocessor::run_command(
        &args,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    )?;
    Ok(())
}
