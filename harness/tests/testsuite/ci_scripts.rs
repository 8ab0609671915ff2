//! The CI scripts in `ci/`, run from a copy of the repository layout with test doubles: a `curl`
//! that refuses to download (nothing here may reach the network) and a `labbook` that records
//! its calls. What is checked is the scripts' own logic: pinned versions come from
//! `book/versions.env` and a missing one stops them with a clear message, and `run-course.sh`
//! runs, copies the report and builds the book in that order, exiting with the run's status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::repo;

const FULL: &str = "KIND_VERSION=v0.30.0\nKIND_NODE_IMAGE=kindest/node:v1.34.0\nKUBECTL_VERSION=v1.34.1\nISTIO_VERSION=1.27.3\n";

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    /// A repository layout with the real `ci/` scripts, an empty `book/`, and `versions`.
    fn new(versions: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("ci")).expect("ci");
        std::fs::create_dir_all(dir.path().join("book")).expect("book");
        std::fs::create_dir_all(dir.path().join("bin")).expect("bin");
        for script in [
            "versions.sh",
            "install-tools.sh",
            "run-course.sh",
            "report.sh",
            "matrix.sh",
            "run-shard.sh",
            "merge-course.sh",
        ] {
            std::fs::copy(
                repo().join("ci").join(script),
                dir.path().join("ci").join(script),
            )
            .expect("copy");
        }
        if let Some(versions) = versions {
            std::fs::write(dir.path().join("book/versions.env"), versions).expect("versions");
        }
        let tree = Tree { dir };
        tree.tool(
            "curl",
            "printf '%s\\n' \"curl $*\" >> \"$TREE/calls\"\necho 'curl: (6) no network in tests' >&2\nexit 6\n",
        );
        tree.tool(
            "labbook",
            "printf '%s\\n' \"labbook $* (KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-})\" >> \"$TREE/calls\"\n\
             if [ \"$1\" = run ]; then\n\
               if [ -z \"${FAKE_NO_REPORT:-}\" ]; then mkdir -p out && echo '{\"labs\":[]}' > out/report.json; fi\n\
               exit \"${FAKE_RUN_STATUS:-0}\"\n\
             fi\n",
        );
        tree
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tool(&self, name: &str, body: &str) {
        script(&self.path().join("bin").join(name), body);
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = std::env::join_paths(std::iter::once(self.path().join("bin")).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH");
        Command::new("bash")
            .arg(self.path().join("ci").join(script))
            .args(args)
            .env("PATH", path)
            .env("TREE", self.path())
            .env("LABBOOK", self.path().join("bin/labbook"))
            .env_remove("KIND_NODE_IMAGE")
            .envs(env.iter().copied())
            .current_dir(self.path())
            .output()
            .expect("bash runs")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Writes an executable `sh` script.
fn script(file: &Path, body: &str) {
    std::fs::write(file, format!("#!/bin/sh\n{body}")).expect("tool");
    let mut perms = std::fs::metadata(file).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(file, perms).expect("chmod");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn missing_pins_stop_the_scripts_before_anything_runs() {
    struct Case {
        script: &'static str,
        versions: Option<&'static str>,
        says: &'static str,
    }
    let cases = [
        Case {
            script: "install-tools.sh",
            versions: None,
            says: "book/versions.env is missing; it pins the course's tools",
        },
        Case {
            script: "install-tools.sh",
            versions: Some("KIND_VERSION=v0.30.0\nKUBECTL_VERSION=\n"),
            says: "does not set KUBECTL_VERSION ISTIO_VERSION",
        },
        Case {
            script: "run-course.sh",
            versions: None,
            says: "book/versions.env is missing",
        },
        Case {
            script: "run-course.sh",
            versions: Some("KIND_VERSION=v0.30.0\nKUBECTL_VERSION=v1.34.1\nISTIO_VERSION=1.27.3\n"),
            says: "does not set KIND_NODE_IMAGE",
        },
    ];
    for case in cases {
        let tree = Tree::new(case.versions);
        let output = tree.run(case.script, &["bin-out"], &[]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {}",
            case.script,
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(case.says),
            "{}: {}",
            case.script,
            stderr(&output)
        );
        assert_eq!(tree.calls(), Vec::<String>::new(), "{}", case.script);
    }
}

#[test]
fn install_tools_needs_a_bin_dir_and_downloads_the_pinned_kind_first() {
    let tree = Tree::new(Some(FULL));
    let usage = tree.run("install-tools.sh", &[], &[]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    assert!(stderr(&usage).contains("usage: ci/install-tools.sh BIN_DIR"));

    // The fake curl refuses, so the script stops at the first download, which names the pin.
    let output = tree.run("install-tools.sh", &["bin-out"], &[]);
    assert!(!output.status.success());
    let calls = tree.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0]
            .contains("https://github.com/kubernetes-sigs/kind/releases/download/v0.30.0/kind-"),
        "{calls:?}"
    );
    assert!(!tree.path().join("bin-out/kind").exists());
}

#[test]
fn run_course_runs_copies_the_report_and_builds_the_book() {
    for status in ["0", "1"] {
        let tree = Tree::new(Some(FULL));
        let output = tree.run("run-course.sh", &[], &[("FAKE_RUN_STATUS", status)]);
        assert_eq!(
            output.status.code(),
            Some(status.parse().expect("status")),
            "{}",
            stderr(&output)
        );
        let image = "(KIND_NODE_IMAGE=kindest/node:v1.34.0)";
        assert_eq!(
            tree.calls(),
            [
                format!("labbook doctor {image}"),
                format!("labbook run book --cluster kind --jobs 2 --report out {image}"),
                format!("labbook build book {image}"),
            ]
        );
        let copied: PathBuf = tree.path().join("book/report.json");
        assert_eq!(
            std::fs::read_to_string(copied).expect("copied"),
            std::fs::read_to_string(tree.path().join("out/report.json")).expect("report")
        );
    }
}

#[test]
fn run_course_without_a_report_stops_before_building() {
    let tree = Tree::new(Some(FULL));
    let output = tree.run(
        "run-course.sh",
        &[],
        &[
            ("FAKE_RUN_STATUS", "2"),
            ("FAKE_NO_REPORT", "1"),
            ("JOBS", "3"),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("the run wrote no out/report.json (exit status 2)"));
    let calls = tree.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].starts_with("labbook run book --cluster kind --jobs 3 --report out"));
    assert!(!tree.path().join("book/report.json").exists());
}

#[test]
fn run_course_records_uploads_pending_snapshots_and_writes_the_job_summary() {
    let tree = Tree::new(Some(FULL));
    std::fs::create_dir_all(tree.path().join("book/snapshots")).expect("snapshots");
    std::fs::write(
        tree.path().join("book/snapshots/m__verify-1.snap.new"),
        "---\n",
    )
    .expect("w");
    std::fs::write(tree.path().join("book/snapshots/m__verify-2.snap"), "---\n").expect("w");
    let summary = tree.path().join("summary.md");
    let output = tree.run(
        "run-course.sh",
        &[],
        &[
            ("ACCEPT", "1"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let image = "(KIND_NODE_IMAGE=kindest/node:v1.34.0)";
    assert_eq!(
        tree.calls(),
        [
            format!("labbook doctor {image}"),
            format!("labbook run book --cluster kind --jobs 2 --report out --accept {image}"),
            format!("labbook report summary out {image}"),
            format!("labbook build book {image}"),
        ]
    );
    assert!(
        tree.path()
            .join("out/pending-snapshots/m__verify-1.snap.new")
            .is_file()
    );
    assert!(
        !tree
            .path()
            .join("out/pending-snapshots/m__verify-2.snap")
            .exists()
    );
    assert!(
        summary.is_file(),
        "the summary is appended to $GITHUB_STEP_SUMMARY"
    );
}

/// `make tools` in book/ runs the same installer; a second run keeps what is already pinned.
#[test]
fn install_tools_keeps_tools_already_at_their_pinned_version() {
    let tree = Tree::new(Some(FULL));
    let out = tree.path().join("bin-out");
    std::fs::create_dir_all(&out).expect("bin-out");
    for (name, version) in [
        ("kind", "echo 'kind v0.30.0 go1.25.1 linux/amd64'"),
        ("kubectl", "echo 'Client Version: v1.34.1'"),
        ("istioctl", "echo 'client version: 1.27.3'"),
    ] {
        script(&out.join(name), &format!("{version}\n"));
    }
    let output = tree.run("install-tools.sh", &["bin-out"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(tree.calls(), Vec::<String>::new());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in [
        "kind v0.30.0 already in bin-out",
        "kubectl v1.34.1 already in bin-out",
        "istioctl 1.27.3 already in bin-out",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }

    // Another kubectl version is replaced: the download starts (and the fake curl refuses it).
    script(&out.join("kubectl"), "echo 'Client Version: v1.33.0'\n");
    let output = tree.run("install-tools.sh", &["bin-out"], &[]);
    assert!(!output.status.success());
    let calls = tree.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].contains("https://dl.k8s.io/release/v1.34.1/bin/"),
        "{calls:?}"
    );
}

#[test]
fn the_matrix_is_every_declared_combination_times_the_shards() {
    let tree = Tree::new(Some(FULL));
    std::fs::write(
        tree.path().join("book/book.toml"),
        "[book]\ntitle = \"t\"\n\n[preprocessor.labbook.versions]\nkubernetes = [\"v1.33.1\", \"v1.34.0\"]\nistio = [\"1.27.3\"]\n",
    )
    .expect("book.toml");
    let output = tree.run("matrix.sh", &["book"], &[("SHARDS", "2")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let matrix: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let jobs: Vec<String> = matrix["include"]
        .as_array()
        .expect("include")
        .iter()
        .map(|j| {
            format!(
                "{} {} {}/{}",
                j["kubernetes"], j["istio"], j["shard"], j["shards"]
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            "\"v1.33.1\" \"1.27.3\" 1/2",
            "\"v1.33.1\" \"1.27.3\" 2/2",
            "\"v1.34.0\" \"1.27.3\" 1/2",
            "\"v1.34.0\" \"1.27.3\" 2/2",
        ]
    );
    let bad = tree.run("matrix.sh", &["book"], &[("SHARDS", "0")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("SHARDS must be a whole number above 0"));
}

#[test]
fn a_shard_pulls_the_images_once_and_runs_its_partition_with_its_versions() {
    for (kubernetes, istio, versions, node) in [
        (
            "v1.33.1",
            "1.26.2",
            "kubernetes=v1.33.1,istio=1.26.2",
            "kindest/node:v1.33.1",
        ),
        // Without a combination, the pins of versions.env.
        (
            "",
            "",
            "kubernetes=v1.34.0,istio=1.27.3",
            "kindest/node:v1.34.0",
        ),
    ] {
        let tree = Tree::new(Some(FULL));
        tree.tool(
            "docker",
            "printf '%s\\n' \"docker $*\" >> \"$TREE/calls\"\n",
        );
        tree.tool(
            "labbook",
            "printf '%s\\n' \"labbook $* (KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-})\" >> \"$TREE/calls\"\n\
             case \"$1\" in\n\
               images) echo '{\"images\":[{\"image\":\"nginx:1.27\",\"tag\":\"pinned\"},{\"image\":\"$IMG\",\"tag\":\"dynamic\"}]}' ;;\n\
               run) mkdir -p out && echo '{\"labs\":[]}' > out/report.json ;;\n\
             esac\n",
        );
        let output = tree.run(
            "run-shard.sh",
            &[],
            &[
                ("SHARD", "2"),
                ("SHARDS", "3"),
                ("KUBERNETES", kubernetes),
                ("ISTIO", istio),
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let image = format!("(KIND_NODE_IMAGE={node})");
        assert_eq!(
            tree.calls(),
            [
                format!("labbook images book --format json {image}"),
                "docker pull --quiet nginx:1.27".to_string(),
                format!("docker pull --quiet {node}"),
                format!(
                    "labbook run book --cluster kind --preload --jobs 2 --report out --partition hash:2/3 --versions {versions} {image}"
                ),
            ]
        );
    }
}

#[test]
fn the_merge_job_merges_every_shard_then_builds_the_book_and_fails_on_a_failed_lab() {
    for (labs, status) in [
        ("[{\"status\":\"passed\"}]", 0),
        ("[{\"status\":\"passed\"},{\"status\":\"failed\"}]", 1),
    ] {
        let tree = Tree::new(Some(FULL));
        tree.tool(
            "labbook",
            &format!(
                "printf '%s\\n' \"labbook $*\" >> \"$TREE/calls\"\n\
                 if [ \"$1\" = report ] && [ \"$2\" = merge ]; then\n\
                   mkdir -p out/merged && echo '{{\"labs\":{labs}}}' > out/merged/report.json\n\
                 fi\n"
            ),
        );
        for shard in ["shards/a", "shards/b"] {
            std::fs::create_dir_all(tree.path().join(shard)).expect("shard");
        }
        let output = tree.run("merge-course.sh", &["shards/a", "shards/b"], &[]);
        assert_eq!(output.status.code(), Some(status), "{}", stderr(&output));
        let root = tree.path().display().to_string();
        assert_eq!(
            tree.calls(),
            [
                format!("labbook report merge {root}/shards/a {root}/shards/b --out out/merged"),
                "labbook build book".to_string(),
            ]
        );
        assert!(tree.path().join("book/report.json").is_file());
    }
    let usage = Tree::new(Some(FULL)).run("merge-course.sh", &[], &[]);
    assert_eq!(usage.status.code(), Some(2));
}
