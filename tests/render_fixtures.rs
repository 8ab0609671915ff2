//! Fixture-driven tests of the preprocessor: every chapter of every `fixtures/books/render-*`
//! book is preprocessed for the html and the markdown renderers, and the result is compared
//! with the accepted insta snapshot (`cargo insta review` accepts changes).

#![cfg(feature = "preprocessor")]

mod common;

use mdbook_preprocessor::Preprocessor;

use labbook::annotation::find_opening;
use labbook::render::Labbook;

fn preprocess(name: &str, renderer: &str) -> Vec<(String, String)> {
    let (ctx, book) = common::load(name, renderer);
    let book = Labbook::new()
        .run(&ctx, book)
        .expect("fixture book preprocesses");
    common::chapters(&book)
}

fn originals(name: &str) -> Vec<(String, String)> {
    let (_, book) = common::load(name, "html");
    common::chapters(&book)
}

#[test]
fn chapters_match_their_snapshots() {
    for name in common::render_books() {
        for renderer in ["html", "markdown"] {
            for (chapter, content) in preprocess(&name, renderer) {
                let key = chapter.trim_end_matches(".md").replace('/', "__");
                insta::assert_snapshot!(format!("{name}__{key}__{renderer}"), content);
            }
        }
    }
}

#[test]
fn no_annotation_comment_reaches_any_renderer() {
    for name in common::render_books() {
        for renderer in ["html", "markdown", "epub"] {
            for (chapter, content) in preprocess(&name, renderer) {
                assert_eq!(
                    find_opening(&content),
                    None,
                    "{name}/{chapter} for {renderer} keeps an annotation"
                );
            }
        }
    }
}

#[test]
fn chapters_without_steps_come_back_byte_identical() {
    for name in common::render_books() {
        let before = originals(&name);
        for renderer in ["html", "markdown"] {
            for ((chapter, original), (_, after)) in before.iter().zip(preprocess(&name, renderer))
            {
                let lab = labbook::Lab::parse(chapter, original).expect("parses");
                if lab.steps.is_empty() {
                    assert_eq!(&after, original, "{name}/{chapter} for {renderer} changed");
                }
            }
        }
    }
}

/// Other renderers get the chapter minus its annotation lines, and nothing else.
#[test]
fn markdown_renderer_gets_clean_markdown() {
    for name in common::render_books() {
        for ((chapter, original), (_, clean)) in
            originals(&name).iter().zip(preprocess(&name, "markdown"))
        {
            let expected: String = original
                .split_inclusive('\n')
                .filter(|line| find_opening(line).is_none())
                .collect();
            assert_eq!(clean, expected, "{name}/{chapter}");
        }
    }
}

#[test]
fn untrusted_snapshot_text_is_escaped() {
    let chapters = preprocess("render-kinds", "html");
    let (_, escaping) = chapters
        .iter()
        .find(|(c, _)| c == "escaping.md")
        .expect("escaping chapter");
    assert!(escaping.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!escaping.contains("<script"), "{escaping}");
    assert!(!escaping.contains("<img"), "{escaping}");
    // The book's own redaction placeholder holds `<`: escaped, then marked.
    assert!(escaping.contains(
        "<span class=\"labbook-redacted\" title=\"differs from run to run\">&lt;session-id&gt;</span>"
    ));
}
