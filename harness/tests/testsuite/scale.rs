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

/// Writes `report` as `dir/report.json`, creating `dir`.
fn write_report(dir: &Path, report: &serde_json::Value) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string(report).expect("json"),
    )
    .expect("write");
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

/// Builds the book of `dir/course` with `course/merged/report.json` as its report.
fn build_with_merged_report(dir: &Path) {
    let toml = dir.join("course/book.toml");
    let mut text = std::fs::read_to_string(&toml).expect("book.toml");
    text.push_str("report = \"merged/report.json\"\n");
    std::fs::write(&toml, text).expect("write book.toml");
    let out = labbook_in(dir, &["build", "course"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
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
    build_with_merged_report(tmp.path());
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

    // A report changed by `change`, merged with shard 2: refused, and what the refusal says.
    let refused = |name: &str, change: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut report = json(&a.join("report.json"));
        change(&mut report);
        write_report(&tmp.path().join(name), &report);
        let out_dir = format!("merged-{name}");
        let out = labbook_in(
            tmp.path(),
            &["report", "merge", "shard2", name, "--out", &out_dir],
        );
        assert_eq!(out.code, 2, "{}", out.stderr);
        out.stderr
    };
    let newer = refused("newer", &|r| r["tools"]["labbook"] = "9.0.0".into());
    assert!(newer.contains("report contracts differ"), "{newer}");
    // Another report contract version (`version`), whatever labbook wrote it.
    let other = refused("other", &|r| {
        r["version"] = 2.into();
        r["labs"] = serde_json::json!([]);
    });
    assert!(
        other.contains("(report contract 1)") && other.contains("(report contract 2)"),
        "{other}"
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

#[test]
fn images_lists_every_source_with_file_and_line() {
    for (format, name) in [("text", "images_text"), ("json", "images_json")] {
        let out = labbook_in(&root(), &["images", "fixtures/images", "--format", format]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        insta::assert_snapshot!(name, out.stdout);
    }
    let out = labbook_in(&root(), &["images", "fixtures/images", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let images = listed["images"].as_array().expect("images");
    let find = |name: &str| {
        images
            .iter()
            .find(|i| i["image"] == name)
            .unwrap_or_else(|| panic!("{name} is listed: {}", out.stdout))
    };
    // One of each source: a heredoc manifest, a file applied by name, a folder applied, a
    // command line, and the pins of versions.env, kind/cluster.yaml and book.toml.
    assert_eq!(find("busybox:1.36")["uses"][0]["source"], "manifest");
    assert_eq!(
        find("redis")["uses"][0]["file"],
        "fixtures/images/k8s/shop.yaml"
    );
    assert_eq!(find("redis")["uses"][0]["line"], 16);
    assert_eq!(find("alpine:latest")["uses"][0]["source"], "file");
    assert_eq!(find("nicolaka/netshoot:latest")["uses"][0]["line"], 5);
    assert_eq!(find("docker.io/istio/proxyv2:1.27.1")["role"], "istio");
    assert_eq!(
        find("kindest/node:v1.33.1")["uses"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let floating: Vec<&str> = images
        .iter()
        .filter(|i| i["floating"] == true)
        .filter_map(|i| i["image"].as_str())
        .collect();
    assert_eq!(
        floating,
        [
            "alpine:latest",
            "curlimages/curl",
            "nicolaka/netshoot:latest",
            "redis"
        ]
    );
}

#[test]
fn images_of_an_unreadable_path_exit_2() {
    let out = labbook_in(&root(), &["images", "fixtures/images/nope.md"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("nope.md"), "{}", out.stderr);
}

#[test]
fn lint_warns_about_the_floating_images_of_applied_files() {
    let out = labbook_in(&root(), &["lint", "fixtures/images", "--format", "json"]);
    let found: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let floating: Vec<(String, u64)> = found["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["rule"] == "image-floating-tag")
        .map(|d| {
            (
                format!(
                    "{}:{}",
                    d["path"].as_str().unwrap_or(""),
                    d["message"].as_str().unwrap_or("")
                ),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let lines: Vec<u64> = floating.iter().map(|(_, l)| *l).collect();
    // debug.md: curl (4), netshoot (5); deploy.md: redis in shop.yaml (6), alpine in the folder (7).
    assert_eq!(lines, [4, 5, 6, 7], "{floating:?}");
    assert!(
        floating[2].0.contains("fixtures/images/k8s/shop.yaml:16"),
        "{floating:?}"
    );
}

/// A lab run with `--cluster kind` and the fake `kind` and `docker` of `fixtures/fake-tools`
/// first on PATH (`run_kind::Setup`). No real cluster: these tests prove the command sequence
/// and the report, not that a real kind loads or pulls anything.
struct KindRun(crate::run_kind::Setup);

impl KindRun {
    fn new(chapter: &str) -> KindRun {
        KindRun(crate::run_kind::Setup::new(chapter))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path(rel)
    }

    /// Unconfined: the lab's steps write into the fake tools' log, outside what a confined
    /// lab may write.
    fn labbook(&self, extra: &[&str]) -> Labbook {
        let mut args = vec!["--confine", "off"];
        args.extend(extra);
        self.0.labbook(&args)
    }

    /// The fake tools' log, without kind's resolved names and the run's own paths.
    fn log(&self) -> Vec<String> {
        self.0
            .log()
            .lines()
            .filter(|l| !l.contains("resolved name=") && !l.starts_with("docker --version"))
            .map(|l| l.split(" --kubeconfig").next().unwrap_or(l).to_string())
            .collect()
    }
}

/// A lab whose images are a heredoc manifest and two `--image` flags; each step writes a line
/// into the fake tools' log, so the log shows what ran before the first step.
const PRELOAD_LAB: &str = "# Preload\n\n## Setup\n\n```bash\necho 'step setup' >> \"$FAKE_TOOLS_LOG\"\nkubectl apply -f - <<'EOF'\napiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n    - {name: web, image: nginx:1.27}\nEOF\n```\n\n## Try it\n\n```bash\necho 'step try' >> \"$FAKE_TOOLS_LOG\"\nkubectl run probe --image=busybox:1.36 --restart=Never -- true\nkubectl run gone --image=example.invalid/gone:1 --restart=Never -- true\n```\n";

#[test]
fn preload_loads_each_image_of_the_lab_before_its_first_step() {
    let run = KindRun::new(PRELOAD_LAB);
    // The lab's kubectl is not faked into a cluster: steps may fail, the sequence is the point.
    run.labbook(&["--preload", "--keep-going"])
        .env("FAKE_DOCKER_IMAGES", "nginx:1.27")
        .env("FAKE_DOCKER_PULL_FAIL", "example.invalid/gone:1")
        .run();
    let log = run.log();
    let create = log
        .iter()
        .position(|l| l.starts_with("kind create cluster"))
        .unwrap_or_else(|| panic!("no cluster created: {log:#?}"));
    let cluster = log[create]
        .split("--name ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("cluster name")
        .to_string();
    let first_step = log
        .iter()
        .position(|l| l == "step setup")
        .unwrap_or_else(|| panic!("the first step did not run: {log:#?}"));
    let between: Vec<&str> = log[create + 1..first_step]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        between,
        [
            "docker image inspect --format {{.Id}} nginx:1.27".to_string(),
            format!("kind load docker-image nginx:1.27 --name {cluster}"),
            "docker image inspect --format {{.Id}} busybox:1.36".to_string(),
            "docker pull busybox:1.36".to_string(),
            format!("kind load docker-image busybox:1.36 --name {cluster}"),
            "docker image inspect --format {{.Id}} example.invalid/gone:1".to_string(),
            "docker pull example.invalid/gone:1".to_string(),
        ],
        "{log:#?}"
    );
    let report = json(&run.path("out/report.json"));
    let images = &report["labs"][0]["images"];
    assert_eq!(images["preloaded"], 2, "{images}");
    assert!(
        images["not_preloaded"][0]
            .as_str()
            .is_some_and(|m| m.starts_with("example.invalid/gone:1: docker pull failed")),
        "{images}"
    );
    // The fake cluster has no API server, so its Pulled events cannot be read: no count.
    assert!(images.get("pulled").is_none(), "{images}");
    assert_eq!(report["version"], 1);
}

#[test]
fn preload_waits_for_a_cluster_the_lab_creates_itself() {
    let chapter = "# Own cluster\n\n## Lab Setup\n\n```bash\nkind create cluster\necho 'step setup' >> \"$FAKE_TOOLS_LOG\"\n```\n\n## Run\n\n```bash\necho 'step run' >> \"$FAKE_TOOLS_LOG\"\nkubectl run x --image=busybox:1.36 --restart=Never -- true || true\n```\n";
    let run = KindRun::new(chapter);
    run.labbook(&[
        "--preload",
        "--registry-mirror",
        "http://kind-registry:5000",
    ])
    .env("FAKE_DOCKER_IMAGES", "busybox:1.36")
    .run();
    let log = run.log();
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}`: {log:#?}"))
    };
    // Nothing to load into before the lab's own `kind create cluster`; done before the next step.
    assert!(at("step setup") < at("kind get nodes"), "{log:#?}");
    assert!(at("kind get nodes") < at("docker exec -i"), "{log:#?}");
    assert!(
        at("docker exec -i") < at("kind load docker-image busybox:1.36"),
        "{log:#?}"
    );
    assert!(at("kind load docker-image") < at("step run"), "{log:#?}");
    let exec = &log[at("docker exec -i")];
    assert!(
        exec.ends_with(
            "-control-plane sh -c mkdir -p /etc/containerd/certs.d/docker.io && cat > /etc/containerd/certs.d/docker.io/hosts.toml"
        ),
        "{exec}"
    );
    let written: Vec<&str> = log
        .iter()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        written,
        [
            "server = \"https://registry-1.docker.io\"",
            "[host.\"http://kind-registry:5000\"]",
            "capabilities = [\"pull\", \"resolve\"]",
        ],
        "{log:#?}"
    );
    let report = json(&run.path("out/report.json"));
    assert_eq!(report["labs"][0]["images"]["preloaded"], 1, "{report}");
}

#[test]
fn preload_and_mirror_need_a_kind_cluster() {
    for flags in [
        &["--preload"][..],
        &["--registry-mirror", "http://kind-registry:5000"],
    ] {
        let mut args = vec!["run", "fixtures/sample-course"];
        args.extend(flags);
        let out = labbook_in(&root(), &args);
        assert_eq!(out.code, 2, "{flags:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("needs --cluster kind"),
            "{}",
            out.stderr
        );
    }
}

/// `labbook clusters …` with the fake kind, whose clusters are the lines of a state file.
fn clusters(dir: &Path, args: &[&str]) -> Out {
    let out = Labbook::new()
        .arg("clusters")
        .args(args)
        .current_dir(dir)
        .env("PATH", crate::support::fake_tools_path())
        .env("HOME", dir.join("home"))
        .env("KUBECONFIG", dir.join("home/user-kubeconfig"))
        .env("FAKE_TOOLS_LOG", dir.join("tools.log"))
        .env("FAKE_KIND_STATE", dir.join("kind-state"))
        .run();
    Out {
        code: out.code.unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

#[test]
fn clusters_lists_and_deletes_only_what_labbook_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("kind-state");
    let remaining = || std::fs::read_to_string(&state).expect("state");
    std::fs::write(
        &state,
        "labbook-19a2b-001-intro\nkind\ndev\nlabbook-19a2b-002-canary\nlabbook_lookalike\n",
    )
    .expect("state");

    let out = clusters(dir.path(), &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "labbook-19a2b-001-intro\nlabbook-19a2b-002-canary\n"
    );
    let out = clusters(dir.path(), &["list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        listed,
        serde_json::json!({"clusters": ["labbook-19a2b-001-intro", "labbook-19a2b-002-canary"]})
    );

    // Someone else's cluster, even named, is refused before anything is deleted.
    let out = clusters(dir.path(), &["delete", "labbook-19a2b-001-intro", "dev"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing to delete `dev`"),
        "{}",
        out.stderr
    );
    let out = clusters(dir.path(), &["delete", "labbook-19a2b-009-gone"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no such kind cluster"),
        "{}",
        out.stderr
    );
    assert!(remaining().contains("labbook-19a2b-001-intro"));

    let out = clusters(dir.path(), &["delete", "labbook-19a2b-001-intro"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        remaining(),
        "kind\ndev\nlabbook-19a2b-002-canary\nlabbook_lookalike\n"
    );
    let out = clusters(dir.path(), &["delete", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(remaining(), "kind\ndev\nlabbook_lookalike\n");
    let out = clusters(dir.path(), &["delete", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to delete"), "{}", out.stderr);

    // kind edited a throw-away kubeconfig, never the user's.
    let log = std::fs::read_to_string(dir.path().join("tools.log")).expect("log");
    let deletes: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("kind delete cluster"))
        .collect();
    assert_eq!(deletes.len(), 2, "{log}");
    assert!(
        deletes.iter().all(|l| l.contains("labbook-clusters-")),
        "{log}"
    );
    assert!(!dir.path().join("home/user-kubeconfig").exists());
    assert!(!dir.path().join("home/.kube").exists());
}

#[test]
fn a_version_matrix_is_merged_with_each_combination_kept_apart() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_dir(
        &root().join("fixtures/sample-course"),
        &tmp.path().join("course"),
    );
    // Two combinations × two shards, as the workflow's matrix runs them.
    let mut dirs = Vec::new();
    for (combo, versions) in [
        ("a", "kubernetes=v1.33.1,istio=1.26.2"),
        ("b", "kubernetes=v1.33.1,istio=1.27.1"),
    ] {
        for shard in 1..=2 {
            let dir = format!("{combo}-{shard}");
            let spec = format!("hash:{shard}/2");
            let out = labbook_in(
                tmp.path(),
                &[
                    "run",
                    "course",
                    "--partition",
                    &spec,
                    "--versions",
                    versions,
                    "--report",
                    &dir,
                ],
            );
            assert_eq!(out.code, 0, "{dir}: {}{}", out.stdout, out.stderr);
            let report = json(&tmp.path().join(&dir).join("report.json"));
            assert_eq!(
                report["versions"]["istio"],
                versions.rsplit('=').next().expect("istio")
            );
            assert_eq!(report["version"], 1);
            dirs.push(dir);
        }
    }
    let mut args = vec!["report", "merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", "course/merged"]);
    let out = labbook_in(tmp.path(), &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let merged = json(&tmp.path().join("course/merged/report.json"));
    // Every lab twice, once per combination; only the shared version is the run's own.
    let labs = merged["labs"].as_array().expect("labs");
    assert_eq!(labs.len(), 4, "{merged}");
    let mut combos: Vec<(String, String)> = labs
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap_or_default().to_string(),
                l["versions"]["istio"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    combos.sort();
    combos.dedup();
    assert_eq!(combos.len(), 4, "{combos:?}");
    assert_eq!(
        merged["versions"],
        serde_json::json!({"kubernetes": "v1.33.1"})
    );

    // The same combination twice is still a duplicate.
    let out = labbook_in(
        tmp.path(),
        &["report", "merge", "a-1", "a-1", "--out", "dup"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("istio 1.26.2"), "{}", out.stderr);

    // The book shows each lab's combinations as a table with words.
    build_with_merged_report(tmp.path());
    let html = std::fs::read_to_string(tmp.path().join("course/book/pods.html")).expect("page");
    let table = html
        .split("<table class=\"labbook-versions\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("a version table")
        // mdBook puts table rows on lines of their own.
        .replace('\n', "");
    assert_eq!(
        table,
        "<thead><tr><th>Kubernetes</th><th>Istio</th><th>Result</th></tr></thead><tbody><tr data-status=\"passed\"><td>v1.33.1</td><td>1.26.2</td><td>\u{2713} passed</td></tr><tr data-status=\"passed\"><td>v1.33.1</td><td>1.27.1</td><td>\u{2713} passed</td></tr></tbody>"
    );
}

#[test]
fn bad_versions_exit_2() {
    for (spec, message) in [
        ("kubernetes", "is not KEY=VALUE"),
        ("Kubernetes=1.33", "is not a lowercase name"),
        ("istio=", "is not a version"),
        ("istio=1,istio=2", "istio is given twice"),
    ] {
        let out = labbook_in(
            &root(),
            &["run", "fixtures/run/state.md", "--versions", spec],
        );
        assert_eq!(out.code, 2, "{spec}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{spec}: {}", out.stderr);
    }
}
