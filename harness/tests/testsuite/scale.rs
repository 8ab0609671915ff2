//! End-to-end tests of running a large course through the binary: `--partition` on `plan` and
//! `run`, and `report merge` of the shards, read back by `labbook build`'s banners.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::{Labbook, copy_dir, repo};

fn root() -> PathBuf {
    repo().to_path_buf()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn labbook_in(dir: &Path, args: &[&str]) -> Out {
    let out = Labbook::new()
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .run();
    Out {
        code: out.code.unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report exists");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The lab paths of `labbook plan --format json`.
fn planned(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["plan", "--format", "json"];
    all.extend(args);
    let out = labbook_in(dir, &all);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    plan["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .map(|lab| lab["path"].as_str().expect("path").to_string())
        .collect()
}

#[test]
fn plan_shards_cover_every_lab_once() {
    let paths = [
        "fixtures/labs",
        "fixtures/run",
        "fixtures/sample-course",
        "fixtures/books/render-kinds",
    ];
    let whole: Vec<String> = planned(&root(), &paths);
    assert!(whole.len() > 10, "{whole:?}");
    for strategy in ["slice", "hash"] {
        for total in [1, 2, 3, 5] {
            let mut union = Vec::new();
            for shard in 1..=total {
                let spec = format!("{strategy}:{shard}/{total}");
                let mut args = paths.to_vec();
                args.extend(["--partition", &spec]);
                union.extend(planned(&root(), &args));
            }
            let unique: BTreeSet<&String> = union.iter().collect();
            assert_eq!(unique.len(), union.len(), "{strategy}/{total}: overlap");
            assert_eq!(
                unique,
                whole.iter().collect::<BTreeSet<_>>(),
                "{strategy}/{total}: union"
            );
        }
    }
}

#[test]
fn hash_shards_do_not_depend_on_how_the_path_is_spelled() {
    let a = planned(
        &root(),
        &["fixtures/sample-course", "--partition", "hash:1/2"],
    );
    let b = planned(
        &root().join("fixtures"),
        &["./sample-course", "--partition", "hash:1/2"],
    );
    let names = |v: Vec<String>| -> Vec<String> {
        v.iter()
            .map(|p| p.rsplit('/').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(names(a), names(b));
}

#[test]
fn bad_partitions_exit_2_with_a_clear_message() {
    let cases = [
        ("3/2", "expected `slice:K/N` or `hash:K/N`"),
        ("hash:3/2", "between 1 and the total"),
        ("slice:0/4", "between 1 and the total"),
        ("hash:x/y", "whole numbers"),
        ("garbage", "expected `slice:K/N` or `hash:K/N`"),
    ];
    for (spec, message) in cases {
        for command in ["plan", "run"] {
            let out = labbook_in(
                &root(),
                &[command, "fixtures/run/state.md", "--partition", spec],
            );
            assert_eq!(out.code, 2, "{command} {spec}: {}", out.stderr);
            assert!(
                out.stderr.contains(message),
                "{command} {spec}: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn an_empty_shard_passes_and_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_dir(&root().join("fixtures/run"), &tmp.path().join("run"));
    // One chapter, three shards: two of them are empty.
    let out = labbook_in(
        tmp.path(),
        &[
            "run",
            "run/state.md",
            "--partition",
            "slice:2/3",
            "--report",
            "out",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("shard slice:2/3 has no labs: nothing to run, the shard passes"),
        "{said}"
    );
    assert_eq!(
        json(&tmp.path().join("out/report.json"))["labs"],
        serde_json::json!([])
    );
}

/// Runs the sample course in two hash shards from a copy in `tmp`; returns the shard folders.
fn run_two_shards(tmp: &Path) -> [PathBuf; 2] {
    copy_dir(&root().join("fixtures/sample-course"), &tmp.join("course"));
    for shard in 1..=2 {
        let spec = format!("hash:{shard}/2");
        let report = format!("shard{shard}");
        let out = labbook_in(
            tmp,
            &["run", "course", "--partition", &spec, "--report", &report],
        );
        assert_eq!(out.code, 0, "{spec}: {}{}", out.stdout, out.stderr);
    }
    [tmp.join("shard1"), tmp.join("shard2")]
}

fn testsuites(junit: &str) -> BTreeSet<String> {
    junit
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("<testsuite ") || l.starts_with("<testcase "))
        .map(|l| {
            // Times differ in formatting only through the run; the names and counts must match.
            l.split(" time=").next().unwrap_or(l).to_string()
        })
        .collect()
}

#[test]
fn merged_shards_lose_nothing_and_read_as_one_report_in_the_book() {
    let tmp = tempfile::tempdir().expect("tmp");
    let [a, b] = run_two_shards(tmp.path());
    let (ra, rb) = (json(&a.join("report.json")), json(&b.join("report.json")));
    assert_eq!(
        ra["labs"].as_array().map(Vec::len),
        Some(1),
        "hash:1/2 of 2"
    );
    assert_eq!(
        rb["labs"].as_array().map(Vec::len),
        Some(1),
        "hash:2/2 of 2"
    );

    let out = labbook_in(
        tmp.path(),
        &[
            "report",
            "merge",
            "shard1",
            "shard2",
            "--out",
            "course/merged",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("merged 2 labs from 2 reports"),
        "{}",
        out.stdout
    );
    let merged_dir = tmp.path().join("course/merged");
    let merged = json(&merged_dir.join("report.json"));
    let mut expected = ra["labs"].as_array().expect("labs").clone();
    expected.extend(rb["labs"].as_array().expect("labs").iter().cloned());
    assert_eq!(merged["labs"], serde_json::Value::Array(expected));
    assert_eq!(merged["backend"], "none");
    assert_eq!(merged["tools"], ra["tools"]);

    let junit = |dir: &Path| std::fs::read_to_string(dir.join("junit.xml")).expect("junit");
    let mut shards = testsuites(&junit(&a));
    shards.extend(testsuites(&junit(&b)));
    assert!(shards.len() > 4, "{shards:?}");
    assert_eq!(testsuites(&junit(&merged_dir)), shards);

    // Round trip: merging the merged report alone changes nothing.
    let out = labbook_in(
        tmp.path(),
        &["report", "merge", "course/merged", "--out", "again"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&tmp.path().join("again/report.json")), merged);

    // The book's banners read the merged report as one report.
    let toml = tmp.path().join("course/book.toml");
    let mut text = std::fs::read_to_string(&toml).expect("book.toml");
    text.push_str("report = \"merged/report.json\"\n");
    std::fs::write(&toml, text).expect("write book.toml");
    let out = labbook_in(tmp.path(), &["build", "course"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for page in ["files.html", "pods.html"] {
        let html =
            std::fs::read_to_string(tmp.path().join("course/book").join(page)).expect("page built");
        assert!(
            html.contains("class=\"labbook-banner\" data-status=\"passed\""),
            "{page} has no passed banner"
        );
        assert!(!html.contains("did not include this lab"), "{page}");
    }
}

#[test]
fn merges_that_would_mislead_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let [a, _] = run_two_shards(tmp.path());
    let out = labbook_in(
        tmp.path(),
        &[
            "report", "merge", "shard1", "shard2", "shard1", "--out", "m1",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    let lab = json(&a.join("report.json"))["labs"][0]["path"]
        .as_str()
        .expect("path")
        .to_string();
    assert!(
        out.stderr
            .contains(&format!("{lab}: in shard1/report.json, shard1/report.json")),
        "{}",
        out.stderr
    );
    assert!(!tmp.path().join("m1/report.json").exists());

    let mut newer = json(&a.join("report.json"));
    newer["tools"]["labbook"] = "9.0.0".into();
    std::fs::create_dir_all(tmp.path().join("newer")).expect("mkdir");
    std::fs::write(
        tmp.path().join("newer/report.json"),
        serde_json::to_string(&newer).expect("json"),
    )
    .expect("write");
    let out = labbook_in(
        tmp.path(),
        &["report", "merge", "shard2", "newer", "--out", "m2"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("report contracts differ"),
        "{}",
        out.stderr
    );

    let out = labbook_in(tmp.path(), &["report", "merge", "missing", "--out", "m3"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("failed to read missing/report.json"),
        "{}",
        out.stderr
    );

    // An existing report is never overwritten.
    let out = labbook_in(
        tmp.path(),
        &["report", "merge", "shard2", "--out", "shard1"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("already holds a report.json"),
        "{}",
        out.stderr
    );
}

/// Runs `fixtures/run/selection.md` (from a copy) with `args`; returns the exit code, the ids of
/// the steps in the report, and what the last reported step printed.
fn run_selection(args: &[&str]) -> (i32, Vec<String>, String, String) {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        root().join("fixtures/run/selection.md"),
        tmp.path().join("selection.md"),
    )
    .expect("copy");
    let mut all = vec!["run", "selection.md", "--report", "out"];
    all.extend(args);
    let out = labbook_in(tmp.path(), &all);
    let report = tmp.path().join("out/report.json");
    if !report.exists() {
        return (out.code, vec![], String::new(), out.stderr);
    }
    let report = json(&report);
    let steps = report["labs"][0]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids = steps
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    let last = steps
        .last()
        .and_then(|s| s["output"].as_str())
        .unwrap_or_default()
        .trim()
        .to_string();
    (out.code, ids, last, out.stderr)
}

#[test]
fn only_from_and_until_run_part_of_a_lab_after_its_setup() {
    let cases: [(&[&str], &[&str], &str); 7] = [
        (
            &[],
            &[
                "prepare-the-desk-1",
                "first-exercise-1",
                "second-exercise-1",
                "third-exercise-1",
            ],
            "setup first second still-second third",
        ),
        (
            &["--only", "third-exercise-1"],
            &["prepare-the-desk-1", "third-exercise-1"],
            "setup third",
        ),
        // A Markdown line inside the second block (its second command).
        (
            &["--only", "22"],
            &["prepare-the-desk-1", "second-exercise-1"],
            "",
        ),
        (
            &["--from", "second-exercise-1"],
            &[
                "prepare-the-desk-1",
                "second-exercise-1",
                "third-exercise-1",
            ],
            "setup second still-second third",
        ),
        (
            &["--until", "first-exercise-1"],
            &["prepare-the-desk-1", "first-exercise-1"],
            "",
        ),
        (
            &["--from", "first-exercise-1", "--until", "second-exercise-1"],
            &[
                "prepare-the-desk-1",
                "first-exercise-1",
                "second-exercise-1",
            ],
            "",
        ),
        (
            &["--only", "third-exercise-1", "--no-setup"],
            &["third-exercise-1"],
            "third",
        ),
    ];
    for (args, ids, last) in cases {
        let (code, got, output, stderr) = run_selection(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(got, ids, "{args:?}");
        if !last.is_empty() {
            assert_eq!(output, last, "{args:?}");
        }
    }
}

#[test]
fn unknown_steps_exit_2() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--only", "no-such-step"],
            "failed to find step `no-such-step` in selection.md",
        ),
        (
            &["--from", "999"],
            "failed to find step `999` in selection.md",
        ),
        (&["--until", "4"], "failed to find step `4`"),
        (
            &["--only", "first-exercise-1", "--from", "first-exercise-1"],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let (code, ids, _, stderr) = run_selection(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(ids.is_empty(), "{args:?} ran {ids:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
