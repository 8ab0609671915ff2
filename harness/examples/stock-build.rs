//! `stock-build [BOOK_DIR]`: builds a book exactly as `labbook build` does, minus the labbook
//! preprocessor: the baseline that `ci/bench-build.sh` measures `labbook build` against.
//!
//! It goes through the same in-process mdBook driver, so the two differ only by the preprocessor.

use std::path::PathBuf;
use std::process::ExitCode;

use labbook_harness::build::{Preprocess, build};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let book = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    build(&book, Preprocess::Stock)?;
    Ok(())
}
