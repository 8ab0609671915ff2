//! `labbook build`: the book is built in process with the labbook preprocessor, for every
//! renderer the book configures, and bad books exit 2 naming the file and line.

use labbook_harness::build::{Preprocess, build};

use crate::support::{Labbook, files, fixture_book};

#[test]
fn builds_every_renderer_and_says_where() {
    let (tmp, book) = fixture_book("render-kinds");
    let output = Labbook::new()
        .args(["build", "render-kinds"])
        .current_dir(tmp.path())
        .with_course_css()
        .run();
    output.success();
    assert_eq!(
        output.stdout,
        "Built the book: render-kinds/book/html/index.html\n\
         Built the markdown output: render-kinds/book/markdown\n"
    );

    let kinds = std::fs::read_to_string(book.join("book/html/kinds.html")).expect("kinds.html");
    assert_eq!(kinds.matches("class=\"labbook-step\"").count(), 18);
    for needle in [
        "data-kind=\"session-input\"",
        "Opens a shell in the <code>debug</code> pod",
        "Type inside the <code>debug</code> pod",
        "class=\"labbook-expected\"",
        "data-status=\"passed\"",
        "theme/labbook-",
    ] {
        assert!(kinds.contains(needle), "kinds.html lacks {needle}");
    }
    let markdown = std::fs::read_to_string(book.join("book/markdown/lists.md")).expect("lists.md");
    assert!(markdown.contains("> ```bash\n> kubectl get events -n lists\n> ```"));
    assert!(!markdown.contains("labbook-step"));

    // In pages and Markdown a raw `<!--` is a comment. (The search index holds the text of the
    // pages, where a snapshot may print `<!-- labbook: … -->` as plain output.)
    for file in files(&book.join("book")) {
        let page = file.extension().is_some_and(|e| e == "html" || e == "md");
        let Ok(content) = std::fs::read_to_string(&file) else {
            continue;
        };
        if !page {
            continue;
        }
        assert_eq!(
            labbook::annotation::find_opening(&content),
            None,
            "{} keeps an annotation comment",
            file.display()
        );
    }
}

#[test]
fn builds_the_current_folder_by_default() {
    let (_tmp, book) = fixture_book("render-unverified");
    let output = Labbook::new()
        .arg("build")
        .current_dir(&book)
        .with_course_css()
        .run();
    output.success();
    assert_eq!(output.stdout, "Built the book: book/index.html\n");
    let page = std::fs::read_to_string(book.join("book/first-lab.html")).expect("page");
    assert!(page.contains("Not verified yet"));
}

/// Pages without labs come out of `labbook build` exactly as a stock build writes them.
#[test]
fn pages_without_labs_match_a_stock_build() {
    let (_tmp, book) = fixture_book("render-kinds");
    let stock_book = book.with_file_name("stock");
    std::fs::rename(&book, &stock_book).expect("rename");
    build(&stock_book, Preprocess::Stock).expect("stock build");
    let (_tmp2, book) = fixture_book("render-kinds");
    build(&book, Preprocess::Labbook).expect("labbook build");
    // Every page names the search index, whose content (and so its hashed name) differs.
    let search_index = regex::Regex::new(r"searchindex-[0-9a-f]+\.js").expect("regex");
    let read = |path: std::path::PathBuf| {
        let text = std::fs::read_to_string(&path).expect("page");
        search_index
            .replace_all(&text, "searchindex.js")
            .into_owned()
    };
    for page in ["index.html", "prose.html"] {
        let stock = read(stock_book.join("book/html").join(page));
        let ours = read(book.join("book/html").join(page));
        assert!(stock == ours, "{page} differs from the stock build");
    }
    let stock = std::fs::read_to_string(stock_book.join("book/html/kinds.html")).expect("page");
    assert!(!stock.contains("labbook-step"));
}

#[test]
fn bad_books_exit_2_naming_the_file() {
    let (tmp, book) = fixture_book("render-unverified");
    let broken = tmp.path().join("broken");
    std::fs::rename(&book, &broken).expect("rename");
    std::fs::write(
        broken.join("src/first-lab.md"),
        "# Lab\n\n```bash\nls\n```\n\n<!-- labbook: timeout=soon -->\n```bash\nls\n```\n",
    )
    .expect("write chapter");
    let (tmp2, book2) = fixture_book("render-unverified");
    std::fs::write(book2.join("report.json"), "{\"labs\": oops}").expect("write report");

    let cases = [
        (
            tmp.path().join("missing"),
            "missing/book.toml: `labbook build` needs an mdBook folder",
        ),
        (
            broken,
            "src/first-lab.md:7: invalid annotation: `timeout=soon` is not a duration",
        ),
        (book2, "report.json:1: failed to parse the run report"),
    ];
    for (path, needle) in cases {
        let output = Labbook::new()
            .arg("build")
            .arg(&path)
            .current_dir(tmp2.path())
            .with_course_css()
            .run();
        let stderr = &output.stderr;
        assert_eq!(output.code, Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(needle), "{}: {stderr}", path.display());
        assert!(!path.join("book/index.html").exists(), "{}", path.display());
    }
}
