//! `--color auto|always|never`, `NO_COLOR` and `CLICOLOR_FORCE`, through the binary: statuses of
//! a passing and a failing lab and the snapshot diff in `labbook run`'s console, and the diffs of
//! `labbook review`. Tests run without a terminal, so `auto` means no colour unless forced; one
//! test gives labbook a real terminal with util-linux `script`.

use std::path::{Path, PathBuf};

use crate::support::{Labbook, Outcome, copy_dir, repo};

/// Green `PASSED` (the passing lab), red `FAILED` (the failing one), a red removed line in the
/// snapshot diff.
const PASSED: &str = "\x1b[32mPASSED\x1b[0m A lab that passes";
const FAILED: &str = "\x1b[31mFAILED\x1b[0m A lab that fails";
const STEP_PASSED: &str = "\x1b[32mpassed\x1b[0m    verify";
const REMOVED: &str = "\x1b[31m-colour   red\x1b[0m";

/// A copy of `fixtures/ecosystem` (a lab that passes, one whose snapshot differs).
fn course() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("course");
    copy_dir(&repo().join("fixtures/ecosystem"), &root);
    (tmp, root)
}

/// `labbook [--color WHEN] run .` in `root`, with only the colour variables in `env` set.
fn run(root: &Path, color: Option<&str>, env: &[(&str, &str)]) -> Outcome {
    let mut labbook = Labbook::new()
        .current_dir(root)
        .env("TMPDIR", root.parent().expect("tmp"))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("GITHUB_ACTIONS");
    if let Some(color) = color {
        labbook = labbook.args(["--color", color]);
    }
    for (key, value) in env {
        labbook = labbook.env(key, value);
    }
    let outcome = labbook.args(["run", "."]).run();
    outcome.code(1);
    outcome
}

#[test]
fn run_colours_statuses_and_diffs_only_when_asked_or_forced() {
    let (_tmp, root) = course();
    // (what, --color, environment, coloured)
    type Case = (
        &'static str,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
        bool,
    );
    let cases: [Case; 8] = [
        ("default, no terminal", None, &[], false),
        ("--color always", Some("always"), &[], true),
        ("--color never", Some("never"), &[], false),
        ("NO_COLOR=1", None, &[("NO_COLOR", "1")], false),
        ("empty NO_COLOR", None, &[("NO_COLOR", "")], false),
        ("CLICOLOR_FORCE=1", None, &[("CLICOLOR_FORCE", "1")], true),
        (
            "--color never beats CLICOLOR_FORCE",
            Some("never"),
            &[("CLICOLOR_FORCE", "1")],
            false,
        ),
        (
            "--color always beats NO_COLOR",
            Some("always"),
            &[("NO_COLOR", "1")],
            true,
        ),
    ];
    for (what, color, env, coloured) in cases {
        let outcome = run(&root, color, env);
        let stderr = &outcome.stderr;
        if coloured {
            for needle in [PASSED, FAILED, STEP_PASSED, REMOVED] {
                assert!(
                    stderr.contains(needle),
                    "{what}: no {needle:?} in\n{stderr}"
                );
            }
        } else {
            assert!(!stderr.contains('\x1b'), "{what}: escapes in\n{stderr}");
            assert!(
                !outcome.stdout.contains('\x1b'),
                "{what}: {}",
                outcome.stdout
            );
            assert!(
                stderr.contains("PASSED A lab that passes"),
                "{what}: {stderr}"
            );
            assert!(stderr.contains("-colour   red\n"), "{what}: {stderr}");
        }
        // The plain text is the same either way: colour only wraps words.
        let plain = strip(stderr);
        assert!(
            plain.contains("FAILED A lab that fails") && plain.contains("  passed    verify "),
            "{what}: {plain}"
        );
    }
}

#[test]
fn review_follows_the_same_decision() {
    let (_tmp, root) = course();
    run(&root, Some("never"), &[]);
    let review = |color: &str, env: &[(&str, &str)]| {
        let mut labbook = Labbook::new()
            .current_dir(&root)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (key, value) in env {
            labbook = labbook.env(key, value);
        }
        let outcome = labbook.args(["--color", color, "review"]).run();
        outcome.success();
        outcome.stdout
    };
    assert!(review("always", &[("NO_COLOR", "1")]).contains(REMOVED));
    assert!(!review("never", &[("CLICOLOR_FORCE", "1")]).contains('\x1b'));
    assert!(review("auto", &[("CLICOLOR_FORCE", "1")]).contains(REMOVED));
    assert!(!review("auto", &[]).contains('\x1b'));
    // The flag is global: after the subcommand too.
    let after = Labbook::new()
        .current_dir(&root)
        .args(["review", "--color", "always"])
        .run();
    assert!(after.stdout.contains(REMOVED), "{}", after.stdout);
}

#[test]
fn a_wrong_color_value_is_bad_usage() {
    Labbook::new()
        .args(["--color", "sometimes", "plan", "fixtures/labs"])
        .run()
        .code(2)
        .stderr_has("sometimes");
}

/// On a real terminal (util-linux `script` gives labbook one), `auto` colours, and `NO_COLOR`
/// still turns it off.
#[test]
fn auto_colours_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed, so there is no terminal to test");
        return;
    }
    let (_tmp, root) = course();
    let on_terminal = |env: &[(&str, &str)]| {
        let command = format!("'{}' run src/passing.md", env!("CARGO_BIN_EXE_labbook"));
        let mut script = std::process::Command::new("script");
        script
            .args(["-qefc", &command, "/dev/null"])
            .current_dir(&root)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .stdin(std::process::Stdio::null());
        for (key, value) in env {
            script.env(key, value);
        }
        let output = script.output().expect("script runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let coloured = on_terminal(&[]);
    assert!(coloured.contains(PASSED), "{coloured}");
    let plain = on_terminal(&[("NO_COLOR", "1")]);
    assert!(plain.contains("PASSED A lab that passes"), "{plain}");
    assert!(!plain.contains("\x1b[32m"), "{plain}");
}

/// `text` without SGR escapes.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('m').map_or(after.len(), |i| i + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn clap_help_and_errors_follow_the_same_decision() {
    let help = |args: &[&str], env: &[(&str, &str)]| {
        let mut labbook = Labbook::new()
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .args(args);
        for (key, value) in env {
            labbook = labbook.env(key, value);
        }
        let outcome = labbook.run();
        format!("{}{}", outcome.stdout, outcome.stderr)
    };
    assert!(help(&["--color", "always", "--help"], &[]).contains('\x1b'));
    assert!(!help(&["--color", "never", "--help"], &[("CLICOLOR_FORCE", "1")]).contains('\x1b'));
    assert!(!help(&["--help"], &[]).contains('\x1b'));
    assert!(help(&["no-such-command"], &[("CLICOLOR_FORCE", "1")]).contains('\x1b'));
    assert!(
        !help(
            &["no-such-command"],
            &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
        )
        .contains('\x1b')
    );
}
