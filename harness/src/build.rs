//! `labbook build`: build the book with mdBook in process, with the labbook preprocessor
//! registered, so that nothing but labbook needs installing.
//!
//! The preprocessor is registered under the same name as `[preprocessor.labbook]`, so it
//! replaces the `mdbook-labbook` command mdBook would otherwise look for on the `PATH`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mdbook_driver::MDBook;

use crate::cli::EXIT_OK;

/// Whether a build runs the labbook preprocessor; the stock build exists to measure its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocess {
    /// Build as `labbook build` does.
    Labbook,
    /// Build as stock `mdbook build` would, with `[preprocessor.labbook]` left out.
    Stock,
}

/// What a build wrote, per renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The renderer (`html`, `markdown`, ...).
    pub renderer: String,
    /// Where it wrote its output.
    pub dir: PathBuf,
}

/// Builds the book and prints where each renderer's output went.
pub fn run(book: &Path) -> anyhow::Result<u8> {
    for built in build(book, Preprocess::Labbook)? {
        if built.renderer == "html" {
            println!("Built the book: {}", built.dir.join("index.html").display());
        } else {
            println!(
                "Built the {} output: {}",
                built.renderer,
                built.dir.display()
            );
        }
    }
    Ok(EXIT_OK)
}

/// Builds a book folder (holding `book.toml`) with every renderer it configures.
pub fn build(book: &Path, preprocess: Preprocess) -> anyhow::Result<Vec<Built>> {
    let toml = book.join("book.toml");
    if !toml.is_file() {
        anyhow::bail!(
            "failed to find {}: `labbook build` needs an mdBook folder",
            toml.display()
        );
    }
    if preprocess == Preprocess::Labbook {
        // The lab model compiles its patterns on first use; do that on the other core while
        // mdBook reads the configuration and the chapters.
        std::thread::spawn(mdbook_labbook::warm_up);
    }
    // mdBook resolves the book's paths against its root; an absolute root keeps them right
    // whatever the current folder, and shown paths stay as the user wrote them.
    let root = std::path::absolute(book)
        .with_context(|| format!("failed to resolve {}", book.display()))?;
    let mut config = mdbook_driver::config::Config::from_disk(&toml)
        .with_context(|| format!("failed to read {}", toml.display()))?;
    config
        .update_from_env()
        .context("failed to apply MDBOOK_* environment overrides")?;
    if preprocess == Preprocess::Stock {
        let mut tables: std::collections::BTreeMap<String, serde_json::Value> = config
            .preprocessors()
            .with_context(|| format!("failed to read [preprocessor] in {}", toml.display()))?;
        tables.remove(mdbook_labbook::preprocessor::NAME);
        config
            .set("preprocessor", tables)
            .context("failed to leave out [preprocessor.labbook]")?;
    }
    let renderers: Vec<String> = match config.outputs::<serde_json::Value>() {
        Ok(outputs) if !outputs.is_empty() => outputs.into_keys().collect(),
        _ => vec!["html".to_string()],
    };
    let mut md = MDBook::load_with_config(&root, config)
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("failed to load the book {}", book.display()))?;
    if preprocess == Preprocess::Labbook {
        md.with_preprocessor(mdbook_labbook::Labbook::new());
    }
    md.build()
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("failed to build the book {}", book.display()))?;
    Ok(renderers
        .into_iter()
        .map(|renderer| {
            let dir = md.build_dir_for(&renderer);
            let dir = dir
                .strip_prefix(std::env::current_dir().unwrap_or_default())
                .map(Path::to_path_buf)
                .unwrap_or(dir);
            Built { renderer, dir }
        })
        .collect())
}
