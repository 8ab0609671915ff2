//! The preprocessor's integration suite: fixture books rendered for html and markdown as insta
//! snapshots, and the `mdbook-labbook` binary speaking mdBook's protocol.

mod protocol;
mod render;
mod support;
