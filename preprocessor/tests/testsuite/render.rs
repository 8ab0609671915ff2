//! Fixture-driven tests of the preprocessor: every chapter of every `fixtures/books/render-*`
//! book is preprocessed for the html and the markdown renderers, and the result is compared
//! with the accepted insta snapshot (`cargo insta review` accepts changes).

use crate::support::{self as common, at_root};

use mdbook_preprocessor::Preprocessor;

use labbook::annotation::find_opening;
use mdbook_labbook::Labbook;

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
    at_root();
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
    at_root();
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
    at_root();
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
    at_root();
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
    at_root();
    let chapters = preprocess("render-kinds", "html");
    let (_, escaping) = chapters
        .iter()
        .find(|(c, _)| c == "escaping.md")
        .expect("escaping chapter");
    assert!(escaping.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!escaping.contains("<script"), "{escaping}");
    assert!(!escaping.contains("<img"), "{escaping}");
    // The book's own redaction placeholder holds `<`: escaped, then marked.
    assert!(escaping.contains("<var>&lt;session-id&gt;</var>"));
}

/// A book rooted at `fixtures/`, with default settings and no report.
fn fixture_book() -> mdbook_labbook::Book {
    mdbook_labbook::Book::new(
        "fixtures".into(),
        "fixtures".into(),
        labbook::CourseConfig::default(),
        None,
    )
}

/// Every chapter of `fixtures/labs`, with its path and text.
fn lab_fixtures() -> Vec<(std::path::PathBuf, String)> {
    let dir = common::root().join("fixtures/labs");
    std::fs::read_dir(dir)
        .expect("fixtures/labs")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let source = std::fs::read_to_string(&path).expect("fixture");
            (path, source)
        })
        .collect()
}

/// Wrapping must never break a block: every lab fixture, rendered for html, still holds the same
/// runnable blocks with the same code, and no annotation comment.
#[test]
fn rendered_chapters_keep_their_blocks() {
    at_root();
    let book = fixture_book();
    let mut checked = 0;
    for (path, source) in lab_fixtures() {
        let lab = labbook::Lab::parse(&path, &source).expect("fixture parses");
        for output in [mdbook_labbook::Output::Html, mdbook_labbook::Output::Clean] {
            let rendered = book.render(&lab, output);
            assert_eq!(find_opening(&rendered), None, "{}", path.display());
            let again = labbook::Lab::parse(&path, &rendered).expect("rendered chapter parses");
            let codes = |lab: &labbook::Lab| -> Vec<String> {
                lab.steps.iter().map(|s| s.code.clone()).collect()
            };
            assert_eq!(
                codes(&again),
                codes(&lab),
                "{} ({output:?})",
                path.display()
            );
            checked += lab.steps.len();
        }
    }
    assert!(checked > 50, "only {checked} steps checked");
}

/// Chapters cut anywhere (an unfinished edit, a file without a final newline) render without a
/// panic, and what parses keeps its blocks.
#[test]
fn truncated_chapters_render_without_panic() {
    at_root();
    let book = fixture_book();
    for (path, source) in lab_fixtures() {
        for cut in (0..=source.len()).step_by(5) {
            let Some(part) = source.get(..cut) else {
                continue;
            };
            let Ok(lab) = labbook::Lab::parse(&path, part) else {
                continue;
            };
            let rendered = book.render(&lab, mdbook_labbook::Output::Html);
            let again = labbook::Lab::parse(&path, &rendered)
                .unwrap_or_else(|e| panic!("{} cut at {cut}: {e}", path.display()));
            assert_eq!(
                again.steps.len(),
                lab.steps.len(),
                "{} cut at {cut}",
                path.display()
            );
        }
    }
}

/// Only labs (a step that runs, not only `skip`) get the "last verified" banner.
#[test]
fn only_labs_get_a_banner() {
    at_root();
    let mut seen = (0, 0);
    for name in common::render_books() {
        for ((chapter, original), (_, html)) in
            originals(&name).iter().zip(preprocess(&name, "html"))
        {
            let lab = labbook::Lab::parse(chapter, original).expect("parses");
            let has_banner = html.contains("class=\"labbook-banner\"");
            assert_eq!(has_banner, lab.is_lab(), "{name}/{chapter}");
            if lab.is_lab() {
                seen.0 += 1;
            } else if !lab.steps.is_empty() {
                seen.1 += 1;
            }
        }
    }
    assert!(
        seen.0 > 0 && seen.1 > 0,
        "fixtures cover labs and skip-only chapters: {seen:?}"
    );
}
