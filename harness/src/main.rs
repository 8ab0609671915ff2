//! The `labbook` binary: parse the command line and hand off to [`labbook_harness::cli::run`].

// Chapters become many small, short-lived allocations; mimalloc serves them faster than glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3 headers), which the sys
/// crate does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Steps print up to 4 MiB each, read whole once; mimalloc keeps freed memory for a second by
/// default, so a lab that prints fast held a dozen of those buffers at once (120 MB of memory for
/// 200 MB of output). Returned at once, the run stays near 80 MB, at no cost we could measure.
#[allow(unsafe_code)]
fn return_freed_memory_at_once() {
    // SAFETY: sets one of mimalloc's options, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

fn main() -> std::process::ExitCode {
    return_freed_memory_at_once();
    labbook_harness::cli::main()
}
