//! The lint's integration suite: every rule's `bad.md` and `good.md` fixture, the correct labs,
//! and the JSON diagnostics as insta snapshots.

mod fixtures;
mod support;
