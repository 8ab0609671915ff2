//! Helpers shared by the model's tests.

use std::path::Path;

/// The workspace root, where `fixtures/` lives. The tests name fixtures relative to it, as a
/// course author names chapters relative to the course, so paths in snapshots stay short.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
