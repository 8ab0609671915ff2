//! Printed output ("You should see:") checked against the real run, through the binary: the
//! plan names the step each printed block checks and its threshold, a run compares, fails or
//! warns with a diff headed `chapter.md:LINE`, and `report.json`, `junit.xml` and GitHub
//! annotations carry each check. Fixtures: `fixtures/printed/`.

use serde_json::Value;

use crate::support::{Labbook, Outcome, copy_dir, repo, report_json};

/// Runs `labbook run` on a copy of `fixtures/printed/<book>` with `--report`, returning the
/// outcome, the report and the temporary folder (the copy is in `<tmp>/<book>`).
fn run(book: &str, env: &[(&str, &str)]) -> (Outcome, Value, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    copy_dir(
        &repo().join("fixtures/printed").join(book),
        &tmp.path().join(book),
    );
    let mut labbook = Labbook::new()
        .args(["run", book, "--cluster", "none", "--report", "last-run"])
        .current_dir(tmp.path())
        .env_remove("GITHUB_ACTIONS");
    for (key, value) in env {
        labbook = labbook.env(key, value);
    }
    let outcome = labbook.run();
    let report = report_json(&tmp.path().join("last-run"));
    (outcome, report, tmp)
}

/// The printed checks of the lab whose path ends with `chapter`, over all its steps.
fn checks<'a>(report: &'a Value, chapter: &str) -> Vec<&'a Value> {
    let lab = report["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .find(|l| l["path"].as_str().unwrap_or("").ends_with(chapter))
        .unwrap_or_else(|| panic!("no lab {chapter} in {report}"));
    lab["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["printed"].as_array().into_iter().flatten())
        .collect()
}

fn lab_status<'a>(report: &'a Value, chapter: &str) -> &'a str {
    report["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .find(|l| l["path"].as_str().unwrap_or("").ends_with(chapter))
        .and_then(|l| l["status"].as_str())
        .unwrap_or("")
}

#[test]
fn the_plan_shows_which_step_each_printed_block_checks_and_its_threshold() {
    for format in ["text", "json"] {
        let out = Labbook::new()
            .args(["plan", "fixtures/printed/checked", "--format", format])
            .run();
        out.success();
        insta::assert_snapshot!(format!("plan_{format}"), out.stdout);
    }
}

#[test]
fn printed_output_is_checked_against_the_run() {
    let (out, report, tmp) = run("checked", &[]);
    out.code(1);
    /// A check's similarity, threshold and verdict.
    type Check<'a> = (f64, f64, &'a str);
    // (chapter, lab status, its checks)
    let cases: &[(&str, &str, &[Check])] = &[
        ("exact.md", "passed", &[(1.0, 0.9, "matched")]),
        ("redacted.md", "passed", &[(1.0, 0.9, "matched")]),
        (
            "elided.md",
            "passed",
            &[(1.0, 0.9, "matched"), (1.0, 0.9, "matched")],
        ),
        ("table.md", "passed", &[(1.0, 0.9, "matched")]),
        ("prompt.md", "passed", &[(1.0, 0.9, "matched")]),
        ("mismatch.md", "failed", &[(0.0, 0.9, "failed")]),
        // The book's threshold (0.9) fails a near miss the default (0.8) would pass...
        ("near-miss.md", "failed", &[(0.8, 0.9, "failed")]),
        // ...and a block's own threshold, in either form, passes it; Executable Docs' regex
        // form matches the output instead.
        (
            "thresholds.md",
            "passed",
            &[
                (0.8, 0.8, "matched"),
                (0.8, 0.8, "matched"),
                (1.0, 0.9, "matched"),
            ],
        ),
        // A verify checks its snapshot and its printed output: the second's snapshot matches,
        // its printed hours do not.
        (
            "verify.md",
            "failed",
            &[(1.0, 0.9, "matched"), (0.0, 0.9, "failed")],
        ),
    ];
    for (chapter, status, expected) in cases {
        assert_eq!(lab_status(&report, chapter), *status, "{chapter}: {report}");
        let found: Vec<(f64, f64, &str)> = checks(&report, chapter)
            .iter()
            .map(|c| {
                (
                    c["similarity"].as_f64().unwrap_or(-1.0),
                    c["threshold"].as_f64().unwrap_or(-1.0),
                    c["verdict"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(found, *expected, "{chapter}");
    }

    // Redaction, elisions and column widths were needed: the printed text is not the output.
    for chapter in ["redacted.md", "elided.md", "table.md"] {
        let text =
            std::fs::read_to_string(tmp.path().join("checked/src").join(chapter)).expect("chapter");
        let lab = report["labs"]
            .as_array()
            .expect("labs")
            .iter()
            .find(|l| l["path"].as_str().unwrap_or("").ends_with(chapter))
            .expect("lab");
        let output = lab["steps"][0]["output"].as_str().expect("output");
        assert!(
            !text.contains(output.trim_end()),
            "{chapter}: the book prints {output:?} as is"
        );
    }

    // A mismatch names the printed block, its figure, and shows a line diff headed by it.
    let mismatch = &checks(&report, "mismatch.md")[0];
    assert_eq!(mismatch["line"], 12);
    assert_eq!(mismatch["actual"], "the shop is closed\ncome back tomorrow");
    let diff = mismatch["diff"].as_str().expect("diff");
    assert!(diff.starts_with("checked/src/mismatch.md:12\n"), "{diff}");
    assert!(
        diff.contains("-the shop is open\n-come in\n+the shop is closed\n"),
        "{diff}"
    );
    out.stderr_has(
        "checked/src/mismatch.md:12: the printed output differs from what the step printed \
         (similarity 0, needs 0.9)",
    );
    out.stderr_has("-the shop is open");
    let hours = report["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .find(|l| l["path"].as_str().unwrap_or("").ends_with("verify.md"))
        .map(|l| &l["steps"][2])
        .expect("verify.md");
    assert_eq!(hours["kind"], "verify", "{hours}");
    assert!(
        hours["failure"]
            .as_str()
            .unwrap_or("")
            .contains("verify.md:27: the printed output differs"),
        "the snapshot passed, the printed output failed: {hours}"
    );
    // A match keeps no copy of the output.
    assert!(checks(&report, "exact.md")[0].get("actual").is_none());

    // JUnit carries the failure with its diff.
    let junit = std::fs::read_to_string(tmp.path().join("last-run/junit.xml")).expect("junit");
    assert!(
        junit.contains("mismatch.md:12: the printed output differs"),
        "{junit}"
    );
    assert!(junit.contains("+the shop is closed"), "{junit}");
}

#[test]
fn a_mismatch_only_warns_when_the_book_says_so() {
    let (out, report, tmp) = run("warned", &[("GITHUB_ACTIONS", "true")]);
    out.success();
    assert_eq!(lab_status(&report, "stale.md"), "passed");
    let found = checks(&report, "stale.md");
    assert_eq!(found.len(), 2, "{report}");
    assert_eq!(found[0]["verdict"], "warned");
    assert_eq!(found[0]["actual"], "version 2.0 & <b>beta</b>");
    assert_eq!(found[1]["verdict"], "matched");
    out.stderr_has("warnings:")
        .stderr_has("stale.md:11: the printed output differs from what the step printed");
    // A GitHub annotation at the printed block, carrying the diff.
    let annotation = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .find(|l| l.starts_with("::warning file=") && l.contains("stale.md,line=11"))
        .unwrap_or_else(|| panic!("no annotation:\n{}\n{}", out.stdout, out.stderr));
    assert!(
        annotation.contains("+version 2.0 & <b>beta</b>"),
        "{annotation}"
    );
    // JUnit keeps the case passed, with the warning and its diff beside it.
    let junit = std::fs::read_to_string(tmp.path().join("last-run/junit.xml")).expect("junit");
    assert!(!junit.contains("<failure"), "{junit}");
    let err = junit
        .split("<system-err>")
        .nth(1)
        .unwrap_or_else(|| panic!("no system-err:\n{junit}"));
    assert!(
        err.contains("warning: warned/src/stale.md:11: the printed output differs"),
        "{junit}"
    );
    assert!(
        err.contains("+version 2.0 &amp; &lt;b&gt;beta&lt;/b&gt;"),
        "{junit}"
    );
}

#[test]
fn bad_thresholds_exit_2_naming_file_and_line() {
    let cases = [
        (
            "fixtures/printed/bad/similar-out-of-range.md",
            "similar-out-of-range.md:9:",
            "outside 0–1",
        ),
        (
            "fixtures/printed/bad/expected-similarity.md",
            "expected-similarity.md:7:",
            "outside 0–1",
        ),
        (
            "fixtures/printed/bad/similar-without-output.md",
            "similar-without-output.md:3:",
            "`expect=similar` needs printed output to check",
        ),
        (
            "fixtures/printed/bad/similar-before-any-step.md",
            "similar-before-any-step.md:3:",
            "no step before it prints output",
        ),
        (
            "fixtures/printed/bad-threshold",
            "bad-threshold/book.toml:8:",
            "similarity threshold 1.5 is outside 0–1",
        ),
    ];
    for (path, location, message) in cases {
        for command in ["plan", "lint"] {
            let out = Labbook::new().args([command, path]).run();
            assert_eq!(out.code, Some(2), "{command} {path}: {}", out.stderr);
            assert!(out.stderr.contains(location), "{path}: {}", out.stderr);
            assert!(out.stderr.contains(message), "{path}: {}", out.stderr);
        }
    }
}
