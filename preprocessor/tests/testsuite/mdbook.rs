//! Stock mdBook 0.5 with this crate's `mdbook-labbook` binary as its preprocessor, set up as a
//! course sets it up (`[preprocessor.labbook] command = …` in book.toml): `mdbook build` writes
//! banners on lab pages only and the stylesheet the book lists, warns when it lists none, and
//! `mdbook test` still tests a chapter's Rust samples with labbook in the chain.
//!
//! The course is a copy of `fixtures/ecosystem` (a prose introduction, a page of `skip` examples,
//! a lab that passes and one that fails) in a temporary folder. `.ci/run` installs the `mdbook`
//! matching Cargo.lock's `mdbook-driver`; elsewhere the tests are skipped, with the reason, when
//! no `mdbook` 0.5 is found (`$LABBOOK_MDBOOK`, else `mdbook` on `PATH`). Under CI (`CI=true`) a
//! missing mdBook fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::root;

/// The `mdbook` to drive, when it is mdBook 0.5 (the protocol this preprocessor speaks).
fn mdbook_or_skip() -> Option<PathBuf> {
    let program = std::env::var_os("LABBOOK_MDBOOK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("mdbook"));
    let why = match Command::new(&program).arg("--version").output() {
        Ok(output) if String::from_utf8_lossy(&output.stdout).starts_with("mdbook v0.5.") => {
            return Some(program);
        }
        Ok(output) => format!(
            "`{} --version` says {:?}, not mdBook 0.5",
            program.display(),
            String::from_utf8_lossy(&output.stdout).trim()
        ),
        Err(e) => format!("{} cannot be run: {e}", program.display()),
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{why}; CI must run the mdBook tests (.ci/run installs mdBook with `cargo install`)"
    );
    eprintln!(
        "skipped: {why} (cargo install mdbook --locked --version <Cargo.lock's mdbook-driver>)"
    );
    None
}

/// A copy of `fixtures/ecosystem` whose book.toml runs the built `mdbook-labbook`, with `extra`
/// appended. Returns the temporary folder (kept alive by the caller) and the course.
fn course(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let course = tmp.path().join("course");
    copy_dir(&root().join("fixtures/ecosystem"), &course);
    let toml = course.join("book.toml");
    let text = std::fs::read_to_string(&toml).expect("book.toml");
    let command = format!(
        "[preprocessor.labbook]\ncommand = {}\n",
        toml::Value::String(env!("CARGO_BIN_EXE_mdbook-labbook").to_string())
    );
    assert!(text.contains("[preprocessor.labbook]\n"), "{text}");
    let text = text.replace("[preprocessor.labbook]\n", &command);
    std::fs::write(&toml, format!("{text}{extra}")).expect("book.toml written");
    (tmp, course)
}

/// The course with the stylesheet as `labbook init` writes it, listed in `[output.html]`.
fn course_with_stylesheet() -> (tempfile::TempDir, PathBuf) {
    let (tmp, course) = course(&format!(
        "\n[output.html]\nadditional-css = [\"{}\"]\n",
        mdbook_labbook::STYLESHEET_PATH
    ));
    let css = course.join(mdbook_labbook::STYLESHEET_PATH);
    std::fs::create_dir_all(css.parent().expect("theme")).expect("theme folder");
    std::fs::write(&css, mdbook_labbook::STYLESHEET).expect("stylesheet");
    (tmp, course)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("destination folder");
    for entry in std::fs::read_dir(from).expect("fixture folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("file copies");
        }
    }
}

/// `mdbook <args>` in `course`.
fn mdbook(program: &Path, course: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(course)
        .env_remove("MDBOOK_OUTPUT__HTML__ADDITIONAL_CSS")
        .output()
        .expect("mdbook runs")
}

fn all(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn mdbook_build_puts_banners_on_lab_pages_only_and_ships_the_stylesheet() {
    let Some(program) = mdbook_or_skip() else {
        return;
    };
    let (_tmp, course) = course_with_stylesheet();
    let build = mdbook(&program, &course, &["build"]);
    assert!(build.status.success(), "{}", all(&build));
    assert!(
        !all(&build).contains("stylesheet"),
        "a stylesheet warning although the book lists it:\n{}",
        all(&build)
    );
    let page = |name: &str| {
        std::fs::read_to_string(course.join("book").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    // The introduction (README.md becomes index.html) and the page of `skip` examples are not
    // labs; the two labs have one banner each.
    for (name, banners) in [
        ("index.html", 0),
        ("authoring.html", 0),
        ("passing.html", 1),
        ("failing.html", 1),
    ] {
        let html = page(name);
        assert_eq!(
            html.matches("<div class=\"labbook-banner\"").count(),
            banners,
            "{name}:\n{html}"
        );
    }
    let passing = page("passing.html");
    assert!(
        passing.contains("<pre class=\"labbook-expected-body\">hello, reader</pre>"),
        "{passing}"
    );
    assert!(passing.contains("class=\"labbook-step\""), "{passing}");
    // The page links the stylesheet (mdBook 0.5 names it with a content hash), and the file it
    // links is labbook's.
    let href = passing
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("theme/labbook") && href.ends_with(".css"))
        .unwrap_or_else(|| panic!("no link to the stylesheet:\n{passing}"))
        .to_string();
    assert_eq!(
        std::fs::read_to_string(course.join("book").join(&href)).expect("linked stylesheet"),
        mdbook_labbook::STYLESHEET,
        "{href}"
    );
}

#[test]
fn mdbook_build_warns_when_the_book_lists_no_stylesheet() {
    let Some(program) = mdbook_or_skip() else {
        return;
    };
    let (_tmp, course) = course("");
    let build = mdbook(&program, &course, &["build"]);
    assert!(build.status.success(), "{}", all(&build));
    let text = all(&build);
    assert!(
        text.contains("mdbook-labbook: warning: the book does not load labbook's stylesheet"),
        "{text}"
    );
    assert!(text.contains("additional-css"), "{text}");
}

/// `mdbook test` runs the preprocessor too: Rust samples in a chapter with labbook blocks are
/// still tested (a wrong one fails the run), and a broken annotation stops it with its file and
/// line.
#[test]
fn mdbook_test_tests_rust_samples_with_labbook_in_the_chain() {
    let Some(program) = mdbook_or_skip() else {
        return;
    };
    let (_tmp, course) = course("");
    let summary = course.join("src/SUMMARY.md");
    let mut text = std::fs::read_to_string(&summary).expect("SUMMARY.md");
    text.push_str("- [Rust samples](samples.md)\n");
    std::fs::write(&summary, text).expect("SUMMARY.md written");
    let chapter = |sum: u32| {
        format!(
            "# Rust samples\n\n## Verify the shell\n\n```bash\necho ready\n```\n\n\
             ```rust\nfn main() {{\n    assert_eq!(2 + 2, {sum});\n}}\n```\n"
        )
    };
    let samples = course.join("src/samples.md");
    let cases = [
        (chapter(4), true, "Testing chapter 'Rust samples'"),
        (chapter(5), false, "One or more tests failed"),
        (
            "# Rust samples\n\n<!-- labbook: kind=bogus -->\n```bash\nls\n```\n".to_string(),
            false,
            "src/samples.md:3: invalid annotation: unknown kind `bogus`",
        ),
    ];
    for (content, passes, says) in cases {
        std::fs::write(&samples, &content).expect("chapter written");
        let test = mdbook(&program, &course, &["test"]);
        let text = all(&test);
        assert_eq!(test.status.success(), passes, "{content}\n{text}");
        assert!(text.contains(says), "{content}\n{text}");
    }
}
