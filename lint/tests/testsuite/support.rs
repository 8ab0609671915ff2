//! Helpers shared by the lint's tests.

use std::path::{Path, PathBuf};
use std::sync::Once;

/// The workspace root, where `fixtures/` lives.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits inside the workspace")
        .to_path_buf()
}

/// Makes the workspace root the working folder, so that fixtures are named as an author names
/// chapters (`fixtures/lint/…`) and the paths in diagnostics and snapshots stay the same
/// whichever crate runs them. Every test calls it first; it acts once.
pub fn at_root() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_current_dir(root()).expect("the workspace root exists"));
}
