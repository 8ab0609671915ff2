//! `labbook run --cluster kind` end to end through the binary, with the fake `kind` of
//! `fixtures/fake-tools` first on PATH: one cluster per lab, exported to the lab, deleted at the
//! end (also on SIGINT), kept with `--keep-cluster`, and `~/.kube/config` never touched.
//!
//! These tests prove the harness's side of the contract only; no real cluster is involved.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Labbook, fake_tools_path};

/// A folder with one chapter, `course/lab.md`, run on the fake kind (also used by `scale.rs`).
pub(crate) struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    pub(crate) fn new(chapter: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("course")).expect("course dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::write(dir.path().join("course/lab.md"), chapter).expect("chapter");
        Setup { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `labbook run course/lab.md --cluster kind --report out <extra>` with the fake tools first
    /// on `PATH` and a `HOME` and `KUBECONFIG` of the test's own.
    pub(crate) fn labbook(&self, extra: &[&str]) -> Labbook {
        self.bare(&[
            "run",
            "course/lab.md",
            "--cluster",
            "kind",
            "--report",
            "out",
        ])
        .args(extra)
    }

    /// `labbook <args>` in this folder, with the fake tools and the test's own `HOME`.
    pub(crate) fn bare(&self, args: &[&str]) -> Labbook {
        Labbook::new()
            .args(args)
            .current_dir(self.dir.path())
            .env("PATH", fake_tools_path())
            .env("HOME", self.path("home"))
            .env("KUBECONFIG", self.path("home/user-kubeconfig"))
            .env("FAKE_TOOLS_LOG", self.path("tools.log"))
            .env("FAKE_KIND_STATE", self.path("kind-state"))
            .env_remove("KIND_CLUSTER_NAME")
            .env_remove("GITHUB_ACTIONS")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path("tools.log")).unwrap_or_default()
    }
}

const LAB: &str = "# Kind lab\n\n## Lab Setup\n\n```bash\nkind create cluster\necho \"cluster=$KIND_CLUSTER_NAME\"\n```\n\n## Step\n\n```bash\necho \"kubeconfig=$KUBECONFIG\"\n```\n";

fn cluster_names(log: &str, verb: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with(&format!("kind {verb} cluster")))
        .filter_map(|l| {
            l.split("--name ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn a_lab_gets_its_own_cluster_which_is_deleted_at_the_end() {
    let setup = Setup::new(LAB);
    setup.labbook(&[]).run().success();

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.path("out/report.json")).expect("report"))
            .expect("json");
    assert_eq!(report["backend"], "kind");
    let outputs: String = report["labs"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["output"].as_str().unwrap_or_default().to_string())
        .collect();
    let cluster = outputs
        .lines()
        .find_map(|l| l.strip_prefix("cluster="))
        .expect("the lab saw KIND_CLUSTER_NAME")
        .to_string();
    assert!(cluster.starts_with("labbook-"), "{cluster}");
    let kubeconfig = outputs
        .lines()
        .find_map(|l| l.strip_prefix("kubeconfig="))
        .expect("KUBECONFIG");
    assert!(
        !kubeconfig.contains("user-kubeconfig"),
        "the lab saw the user's kubeconfig: {kubeconfig}"
    );
    assert!(!kubeconfig.contains("/home/"), "{kubeconfig}");

    // The lab's own `kind create cluster` made exactly its cluster, and the harness deleted it.
    let log = setup.log();
    assert!(
        log.contains(&format!("name={cluster}")) || log.contains(&cluster),
        "{log}"
    );
    assert_eq!(
        cluster_names(&log, "delete"),
        std::slice::from_ref(&cluster),
        "{log}"
    );
    assert!(
        !setup.path("home/.kube/config").exists(),
        "~/.kube/config was written"
    );
    assert!(
        !setup.path("home/user-kubeconfig").exists(),
        "the user's KUBECONFIG was written"
    );
}

#[test]
fn keep_cluster_does_not_delete() {
    let setup = Setup::new(LAB);
    setup.labbook(&["--keep-cluster"]).run().success();
    assert!(
        cluster_names(&setup.log(), "delete").is_empty(),
        "{}",
        setup.log()
    );
}

/// A lab that leaves its cluster to the harness (a lab running `kind create cluster` itself would
/// create it again on a reused cluster, unless run with `--no-setup`).
const PLAIN_LAB: &str = "# Kind lab\n\n## Step\n\n```bash\necho \"cluster=$KIND_CLUSTER_NAME kubeconfig=$KUBECONFIG\"\n```\n";

/// The clusters the fake kind holds.
fn kind_state(setup: &Setup) -> Vec<String> {
    std::fs::read_to_string(setup.path("kind-state"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn reuse_runs_a_lab_on_the_kept_cluster_without_creating_or_deleting_it() {
    let setup = Setup::new(PLAIN_LAB);
    setup.labbook(&["--keep-cluster"]).run().success();
    let kept = kind_state(&setup);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let name = &kept[0];
    let creates = cluster_names(&setup.log(), "create");
    assert_eq!(creates, kept, "{}", setup.log());

    let out = setup.labbook(&["--reuse", name]).run();
    out.success()
        .stderr_has(&format!("reusing kind cluster {name}"))
        .stderr_has(&format!("kept kind cluster {name}"));
    let log = setup.log();
    assert_eq!(cluster_names(&log, "create"), kept, "created again: {log}");
    assert!(cluster_names(&log, "delete").is_empty(), "deleted: {log}");
    assert_eq!(kind_state(&setup), kept);

    // The lab ran on the kept cluster, through a copy of its kubeconfig in the new run folder.
    let report = crate::support::report_json(&setup.path("out"));
    let output = report["labs"][0]["steps"][0]["output"]
        .as_str()
        .expect("output")
        .to_string();
    assert!(output.contains(&format!("cluster={name} ")), "{output}");
    let kubeconfig = output
        .split("kubeconfig=")
        .nth(1)
        .expect("KUBECONFIG")
        .trim();
    let text = std::fs::read_to_string(kubeconfig).expect("the lab's kubeconfig");
    assert!(
        text.contains(&format!("current-context: kind-{name}")),
        "{text}"
    );
    // And a second reuse finds it there.
    setup.labbook(&["--reuse", name]).run().success();
    assert!(cluster_names(&setup.log(), "delete").is_empty());
}

#[test]
fn reuse_refuses_what_it_cannot_own() {
    let setup = Setup::new(PLAIN_LAB);
    setup.labbook(&["--keep-cluster"]).run().success();
    let kept = kind_state(&setup)[0].clone();
    std::fs::write(
        setup.path("course/second.md"),
        PLAIN_LAB.replace("Kind lab", "Second lab"),
    )
    .expect("second chapter");
    // A kind cluster labbook did not make, and one of its own without a kubeconfig.
    std::fs::write(
        setup.path("kind-state"),
        format!("{kept}\nkind\nlabbook-zz-nokubeconfig\n"),
    )
    .expect("state");
    let log_before = setup.log();

    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--reuse", "kind"],
            "refusing to reuse `kind`: labbook runs only on clusters it made".into(),
        ),
        (
            vec!["--reuse", "labbook-zz-gone"],
            "no such kind cluster (`kind get clusters` does not list it".into(),
        ),
        (
            vec!["--reuse", "labbook-zz-nokubeconfig"],
            "failed to reuse `labbook-zz-nokubeconfig`: no kubeconfig for it".into(),
        ),
    ];
    for (extra, message) in &cases {
        setup.labbook(extra).run().code(2).stderr_has(message);
    }
    let base = ["run", "course/lab.md"];
    let no_kind = [&base[..], &["--report", "out", "--reuse", &kept]].concat();
    setup
        .bare(&no_kind)
        .run()
        .code(2)
        .stderr_has("--reuse needs --cluster kind");
    let no_report = [&base[..], &["--cluster", "kind", "--reuse", &kept]].concat();
    setup
        .bare(&no_report)
        .run()
        .code(2)
        .stderr_has("--reuse needs --report DIR");
    let two_labs = [
        "run",
        "course",
        "--cluster",
        "kind",
        "--report",
        "out",
        "--reuse",
        &kept,
    ];
    setup
        .bare(&two_labs)
        .run()
        .code(2)
        .stderr_has("these paths hold 2 labs");

    // Nothing was created or deleted by the refused runs.
    let log = setup.log();
    let after = &log[log_before.len()..];
    assert!(
        !after.contains("create cluster") && !after.contains("delete cluster"),
        "{after}"
    );
    assert_eq!(
        kind_state(&setup),
        [kept.as_str(), "kind", "labbook-zz-nokubeconfig"]
    );
}

#[test]
fn sigint_during_a_step_still_deletes_the_cluster() {
    let chapter = "# Kind lab\n\n## Lab Setup\n\n```bash\nkind create cluster\n```\n\n## Wait\n\n```bash\necho waiting\nsleep 30\n```\n\n## Cleanup\n\n```bash\necho cleaned > \"$HOME/cleanup-ran\"\n```\n";
    let setup = Setup::new(chapter);
    // The lab runs the fake kind itself, whose log lies in the test's folder, outside what
    // confinement lets a lab write.
    let mut child = setup
        .labbook(&["--confine", "off"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the lab is inside its long step (the fake kind has created the cluster).
    let started = Instant::now();
    while !setup.log().contains("kind create cluster") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the lab never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "SIGINT did not stop the 30 s step"
    );
    assert_ne!(status.code(), Some(0));
    let log = setup.log();
    assert_eq!(cluster_names(&log, "delete").len(), 1, "{log}");
}
