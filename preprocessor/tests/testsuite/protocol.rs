//! The `mdbook-labbook` binary speaks mdBook 0.5's preprocessor protocol: `supports <renderer>`
//! answers with its exit code, and `[context, book]` JSON on stdin comes back as the book on
//! stdout, exactly as the in-process preprocessor renders it.

use crate::support::{self as common, at_root};

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use mdbook_preprocessor::Preprocessor;
use mdbook_preprocessor::book::{Book, Chapter};

fn mdbook_labbook(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdbook-labbook"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mdbook-labbook starts");
    // A closed pipe is fine: `supports` does not read its input.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("mdbook-labbook ends")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn supports_every_renderer() {
    at_root();
    for renderer in ["html", "markdown", "epub"] {
        let output = mdbook_labbook(&["supports", renderer], b"");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{renderer}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn preprocesses_json_like_the_library() {
    at_root();
    for name in common::render_books() {
        for renderer in ["html", "markdown"] {
            let (ctx, book) = common::load(&name, renderer);
            let input = serde_json::to_vec(&(&ctx, &book)).expect("input serializes");
            let output = mdbook_labbook(&[], &input);
            assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
            let from_binary: Book =
                serde_json::from_slice(&output.stdout).expect("stdout is a book");
            let in_process = mdbook_labbook::Labbook::new()
                .run(&ctx, book)
                .expect("preprocesses");
            assert_eq!(from_binary, in_process, "{name} for {renderer}");
        }
    }
}

#[test]
fn bad_input_exits_2_with_a_message() {
    at_root();
    let bad_chapter = {
        let (ctx, mut book) = common::load("render-unverified", "html");
        book.push_item(Chapter::new(
            "Broken",
            "# Broken\n\n<!-- labbook: kind=bogus -->\n```bash\nls\n```\n".into(),
            "broken.md",
            Vec::new(),
        ));
        serde_json::to_vec(&(&ctx, &book)).expect("input serializes")
    };
    let broken_report = {
        let (mut ctx, book) = common::load("render-unverified", "html");
        // A report that is not JSON, through the book's own setting.
        ctx.config
            .set("preprocessor.labbook.report", "src/first-lab.md")
            .expect("setting");
        serde_json::to_vec(&(&ctx, &book)).expect("input serializes")
    };
    let cases: [(&[&str], Vec<u8>, &str); 5] = [
        (
            &[],
            b"not json".to_vec(),
            "failed to read mdBook's input on stdin",
        ),
        (&[], b"".to_vec(), "failed to read mdBook's input on stdin"),
        (
            &[],
            bad_chapter,
            "fixtures/books/render-unverified/src/broken.md:3: invalid annotation: unknown kind `bogus`",
        ),
        (
            &[],
            broken_report,
            "fixtures/books/render-unverified/src/first-lab.md:1: failed to parse the run report",
        ),
        (
            &["render", "now"],
            Vec::new(),
            "usage is `mdbook-labbook [supports <renderer>]`",
        ),
    ];
    for (args, input, needle) in cases {
        let output = mdbook_labbook(args, &input);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn version_and_help_answer_without_reading_stdin() {
    let version = mdbook_labbook(&["--version"], b"");
    assert!(version.status.success(), "{}", stderr(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("mdbook-labbook {}\n", env!("CARGO_PKG_VERSION"))
    );
    for flag in ["--help", "-h"] {
        let help = mdbook_labbook(&[flag], b"");
        assert!(help.status.success(), "{}", stderr(&help));
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("mdbook-labbook supports <renderer>"),
            "{text}"
        );
        assert!(text.contains("[preprocessor.labbook]"), "{text}");
    }
}
