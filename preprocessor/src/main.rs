//! `mdbook-labbook`: the mdBook 0.5 preprocessor that marks every runnable block of a course.
//!
//! `mdbook-labbook supports <renderer>` answers mdBook's question (every renderer is supported);
//! without arguments it reads `[context, book]` JSON on stdin and writes the book to stdout.
//! Errors name the file and line and exit with code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
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
