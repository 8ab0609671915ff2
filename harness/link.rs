//! Build script of the `labbook` binary: links it as a position-dependent executable.
//!
//! As a position-independent executable, every start of `labbook` first applies 55,000
//! relocations and copies the pages they touch: about 1.3 ms, a third of `labbook --version`,
//! paid at every run and, where a lab's shell is started through the confinement helper
//! (`labbook __confine`, without cgroups), once more per lab. Linked at a fixed address, the
//! binary needs none. The libraries it loads, its heap and its stack are still placed at random.

fn main() {
    // Only the binary: the library and the test binaries link as usual.
    println!("cargo:rustc-link-arg-bin=labbook=-no-pie");
}
