//! End-to-end tests of `labbook lint` through the binary: exit codes, the JSON contract and the
//! text form. ShellCheck is turned off (`LABBOOK_SHELLCHECK=off`) so that the output does not
//! depend on the machine; `lint/tests/testsuite/fixtures.rs` covers ShellCheck itself.

use crate::support::{Labbook, Outcome};

/// `labbook lint <args>` from the repository root, with ShellCheck off.
fn lint(args: &[&str]) -> Outcome {
    Labbook::new()
        .arg("lint")
        .args(args)
        .env("LABBOOK_SHELLCHECK", "off")
        .run()
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
            out.code,
            Some(*code),
            "{args:?}\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{args:?}");
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
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let json = out.json();
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
    let text = &out.stdout;
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
    assert_eq!(out.code, Some(0));
    let err = &out.stderr;
    assert_eq!(err.matches("note:").count(), 1, "{err}");
    assert!(err.contains("ShellCheck"), "{err}");
    assert!(
        out.stdout
            .ends_with("lint: 0 errors, 0 warnings, 0 infos in 2 labs\n")
    );
}

#[test]
fn bad_input_names_the_file_and_line() {
    let out = lint(&["fixtures/bad/unterminated-fence.md"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("fixtures/bad/unterminated-fence.md:"),
        "{}",
        out.stderr
    );
}
