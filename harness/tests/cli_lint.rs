//! End-to-end tests of `labbook lint` through the binary: exit codes, the JSON contract and the
//! text form. ShellCheck is turned off (`LABBOOK_SHELLCHECK=off`) so that the output does not
//! depend on the machine; `lint/tests/testsuite/fixtures.rs` covers ShellCheck itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_labbook"))
        .arg("lint")
        .args(args)
        .env("LABBOOK_SHELLCHECK", "off")
        .current_dir(root())
        .output()
        .expect("labbook runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exit_codes_follow_the_contract() {
    let cases: &[(&[&str], i32)] = &[
        (&["fixtures/lint/canary-lab"], 0),
        (&["fixtures/lint/selector-mismatch/good.md"], 0),
        // Warnings only: the lint passes.
        (&["fixtures/lint/label-managed-pods/bad.md"], 0),
        (&["fixtures/lint/selector-mismatch/bad.md"], 1),
        (
            &[
                "fixtures/lint/selector-mismatch/good.md",
                "fixtures/lint/heredoc-unquoted-dollar/bad.md",
                "--format",
                "json",
            ],
            1,
        ),
        (&["fixtures/lint/does-not-exist.md"], 2),
        (&["fixtures/bad/unterminated-fence.md"], 2),
        (&["--format", "yaml", "fixtures/lint/canary-lab"], 2),
        (&[], 2),
    ];
    for (args, code) in cases {
        let out = lint(args);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{args:?}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
}

#[test]
fn json_follows_the_contract() {
    let out = lint(&[
        "fixtures/lint/cleanup-leftover/bad.md",
        "fixtures/lint/heredoc-unquoted-dollar/bad.md",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let top: Vec<&String> = json.as_object().expect("object").keys().collect();
    assert_eq!(top, ["diagnostics"]);
    let diagnostics = json["diagnostics"].as_array().expect("array");
    assert_eq!(diagnostics.len(), 3);
    for d in diagnostics {
        let mut keys: Vec<&String> = d.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["line", "message", "path", "rule", "severity"]);
        assert!(d["line"].as_u64().is_some_and(|l| l > 0));
        assert!(matches!(
            d["severity"].as_str(),
            Some("error" | "warning" | "info")
        ));
    }
    assert_eq!(
        diagnostics[0]["path"],
        "fixtures/lint/cleanup-leftover/bad.md"
    );
    assert_eq!(diagnostics[0]["rule"], "cleanup-leftover");
    assert_eq!(diagnostics[2]["rule"], "heredoc-unquoted-dollar");
    assert_eq!(diagnostics[2]["line"], 6);
    assert_eq!(diagnostics[2]["severity"], "error");
}

#[test]
fn text_reads_like_a_compiler() {
    let out = lint(&["fixtures/lint/heredoc-unquoted-dollar/bad.md"]);
    let text = stdout(&out);
    let mut lines = text.lines();
    let first = lines.next().expect("a diagnostic");
    assert!(
        first.starts_with(
            "fixtures/lint/heredoc-unquoted-dollar/bad.md:6: error[heredoc-unquoted-dollar]: "
        ),
        "{text}"
    );
    assert_eq!(lines.next(), Some("  |"));
    assert_eq!(lines.next(), Some("6 | - Starter: $20/month"));
    assert_eq!(lines.next(), Some("  |"));
    assert!(lines.next().is_some_and(|l| l.starts_with("  = help: ")));
    assert_eq!(
        text.lines().last(),
        Some("lint: 1 error, 0 warnings, 0 infos in 1 lab")
    );
}

#[test]
fn without_shellcheck_it_says_so_once() {
    let out = lint(&[
        "fixtures/lint/canary-lab",
        "fixtures/lint/sh-bashism/good.md",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert_eq!(err.matches("note:").count(), 1, "{err}");
    assert!(err.contains("ShellCheck"), "{err}");
    assert!(stdout(&out).ends_with("lint: 0 errors, 0 warnings, 0 infos in 2 labs\n"));
}

#[test]
fn bad_input_names_the_file_and_line() {
    let out = lint(&["fixtures/bad/unterminated-fence.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("fixtures/bad/unterminated-fence.md:"),
        "{}",
        stderr(&out)
    );
}
