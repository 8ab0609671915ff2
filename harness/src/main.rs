//! The `labbook` binary: parse the command line and hand off to [`labbook_harness::cli::run`].

// Chapters become many small, short-lived allocations; mimalloc serves them faster than glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    labbook_harness::cli::main()
}
