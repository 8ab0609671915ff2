//! The `labbook` binary: parse the command line and hand off to [`labbook_harness::cli::run`].

fn main() -> std::process::ExitCode {
    labbook_harness::cli::main()
}
