//! The preprocessor's integration suite: fixture books rendered for html and markdown as insta
//! snapshots, the `mdbook-labbook` binary speaking mdBook's protocol, and stock mdBook running it.

mod mdbook;
mod protocol;
mod render;
mod support;
