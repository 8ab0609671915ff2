//! Helpers shared by the preprocessor tests: fixture books loaded as mdBook would hand them to a
//! preprocessor.

use std::path::{Path, PathBuf};
use std::sync::Once;

use mdbook_preprocessor::PreprocessorContext;
use mdbook_preprocessor::book::{Book, Chapter};
use mdbook_preprocessor::config::Config;

/// The fixture books of the render tests, `fixtures/books/render-*`, by name.
pub fn render_books() -> Vec<String> {
    let dir = root().join("fixtures/books");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures/books is readable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("render-"))
        .collect();
    names.sort();
    names
}

/// A fixture book's folder, relative to the crate (where cargo runs the tests).
pub fn book_dir(name: &str) -> PathBuf {
    Path::new("fixtures/books").join(name)
}

/// The context and book mdBook would give the preprocessor for a renderer. Chapters come in
/// `SUMMARY.md` order, as the lab model loads them.
pub fn load(name: &str, renderer: &str) -> (PreprocessorContext, Book) {
    let root = book_dir(name);
    let config = Config::from_disk(root.join("book.toml")).expect("book.toml parses");
    let course = labbook::course::load(&root).expect("fixture book loads");
    let src = root.join("src");
    let mut book = Book::new();
    for lab in &course.labs {
        let relative = lab.path.strip_prefix(&src).expect("chapter under src");
        book.push_item(Chapter::new(
            &lab.title,
            lab.source.clone(),
            relative,
            Vec::new(),
        ));
    }
    (
        PreprocessorContext::new(root, config, renderer.to_string()),
        book,
    )
}

/// Each chapter's path (relative to `src`) and content.
pub fn chapters(book: &Book) -> Vec<(String, String)> {
    book.chapters()
        .map(|c| {
            let path = c.source_path.clone().unwrap_or_default();
            (path.to_string_lossy().replace('\\', "/"), c.content.clone())
        })
        .collect()
}

/// The workspace root, where `fixtures/` lives.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits inside the workspace")
        .to_path_buf()
}

/// Makes the workspace root the working folder, so that fixture books are named as mdBook names
/// them (`fixtures/books/…`) and the paths in rendered pages and snapshots stay the same whichever
/// crate runs them. Every test calls it first; it acts once.
pub fn at_root() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_current_dir(root()).expect("the workspace root exists"));
}
