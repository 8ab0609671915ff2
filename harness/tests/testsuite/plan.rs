//! End-to-end tests of `labbook plan` through the binary: the JSON contract, path kinds, and
//! bad input (exit code 2, a message naming file and line, never a panic).

use crate::support::{Labbook, Outcome};

/// `labbook <args>` from the repository root.
fn labbook(args: &[&str]) -> Outcome {
    Labbook::new().args(args).run()
}

/// The JSON a successful `labbook <args>` prints.
fn json(args: &[&str]) -> serde_json::Value {
    labbook(args).success().json()
}

#[test]
fn json_plan_follows_the_contract() {
    let plan = json(&["plan", "fixtures/labs/sessions.md", "--format", "json"]);
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&plan), ["labs"]);
    let lab = &plan["labs"][0];
    assert_eq!(keys(lab), ["path", "steps", "title"]);
    assert_eq!(lab["path"], "fixtures/labs/sessions.md");
    let steps = lab["steps"].as_array().expect("steps");
    for step in steps {
        assert_eq!(
            keys(step),
            [
                "code",
                "heading",
                "id",
                "kind",
                "line",
                "output_of",
                "session"
            ]
        );
    }
    let open = &steps[0];
    assert_eq!(open["kind"], "open-session");
    assert_eq!(open["line"], 5);
    assert_eq!(open["session"], serde_json::Value::Null);
    let input = &steps[1];
    assert_eq!(input["kind"], "session-input");
    assert_eq!(input["session"], open["id"]);
    assert_eq!(
        input["heading"],
        serde_json::json!(["Sessions", "A bash session in a new pod"])
    );
}

#[test]
fn books_follow_summary_order_and_folders_path_order() {
    let book = json(&["plan", "fixtures/books/ordered", "--format", "json"]);
    let titles: Vec<&str> = book["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .map(|l| l["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["Zeta", "Alpha"]);
    assert_eq!(
        book["labs"][1]["path"],
        "fixtures/books/ordered/src/part/alpha.md"
    );

    let folder = json(&["plan", "fixtures/books/ordered/src", "--format", "json"]);
    let titles: Vec<&str> = folder["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .map(|l| l["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["Alpha", "Not in the summary", "Zeta"]);
}

#[test]
fn text_plan_explains_each_kind() {
    let out = labbook(&["plan", "fixtures/labs/sections.md"]);
    out.success();
    let text = &out.stdout;
    for needle in [
        "setup",
        "heading: Lab Setup",
        "verify",
        "cleanup",
        "heading: Cleanup",
        "troubleshoot",
        "skip",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn bad_input_exits_2_naming_file_and_line() {
    let cases = [
        (
            "fixtures/bad/unclosed-annotation.md",
            "fixtures/bad/unclosed-annotation.md:3:",
            "never closed with `-->`",
        ),
        (
            "fixtures/bad/bad-annotation.md",
            "fixtures/bad/bad-annotation.md:5:",
            "unknown expectation",
        ),
        (
            "fixtures/bad/dangling-annotation.md",
            "fixtures/bad/dangling-annotation.md:3:",
            "not followed by a fenced code block",
        ),
        (
            "fixtures/bad/orphan-session-input.md",
            "fixtures/bad/orphan-session-input.md:7:",
            "no step before it opens one",
        ),
        (
            "fixtures/bad/binary.md",
            "fixtures/bad/binary.md:",
            "binary",
        ),
        (
            "fixtures/no-such-file.md",
            "fixtures/no-such-file.md",
            "failed to read",
        ),
    ];
    for (path, location, message) in cases {
        for format in ["text", "json"] {
            let out = labbook(&["plan", path, "--format", format]);
            let stderr = &out.stderr;
            assert_eq!(out.code, Some(2), "{path}: {stderr}");
            assert!(stderr.contains(location), "{path}: {stderr}");
            assert!(stderr.contains(message), "{path}: {stderr}");
            assert!(!stderr.contains("panicked"), "{path}: {stderr}");
        }
    }
}

#[test]
fn unclosed_fences_plan_with_a_warning_naming_the_line() {
    for (path, location) in [
        (
            "fixtures/unclosed/at-end-of-file.md",
            "fixtures/unclosed/at-end-of-file.md:5:",
        ),
        (
            "fixtures/unclosed/in-a-list.md",
            "fixtures/unclosed/in-a-list.md:5:",
        ),
    ] {
        for format in ["text", "json"] {
            let out = labbook(&["plan", path, "--format", format]);
            let stderr = &out.stderr;
            assert_eq!(out.code, Some(0), "{path}: {stderr}");
            assert!(stderr.contains(location), "{path}: {stderr}");
            assert!(stderr.contains("never closed"), "{path}: {stderr}");
        }
    }
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(labbook(&["plan"]).code, Some(2));
    assert_eq!(labbook(&["plan", "x.md", "--format", "yaml"]).code, Some(2));
    assert_eq!(labbook(&["frobnicate"]).code, Some(2));
    assert_eq!(labbook(&["--help"]).code, Some(0));
}

#[test]
fn huge_inputs_plan_without_trouble() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = dir.path().join("long-line.md");
    std::fs::write(
        &long,
        format!(
            "# Long\n\n{}\n\n```bash\necho {}\n```\n",
            "word ".repeat(40_000),
            "x".repeat(200_000)
        ),
    )
    .expect("write");
    let many = dir.path().join("many.md");
    let blocks: String = (0..3000)
        .map(|i| format!("## Step {i}\n\n```bash\necho {i}\n```\n\n"))
        .collect();
    std::fs::write(&many, format!("# Many\n\n{blocks}")).expect("write");
    let long_plan = json(&["plan", long.to_str().expect("utf-8"), "--format", "json"]);
    assert_eq!(
        long_plan["labs"][0]["steps"]
            .as_array()
            .expect("steps")
            .len(),
        1
    );
    let many_plan = json(&["plan", many.to_str().expect("utf-8"), "--format", "json"]);
    assert_eq!(
        many_plan["labs"][0]["steps"]
            .as_array()
            .expect("steps")
            .len(),
        3000
    );
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::Read as _;
    // Far more output than a pipe buffer holds, so the writer sees the pipe close.
    let mut args = vec!["plan"];
    args.extend(std::iter::repeat_n("fixtures/labs", 60));
    let mut child = Labbook::new()
        .args(&args)
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one byte, then close the pipe like `| head -c1` would.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
