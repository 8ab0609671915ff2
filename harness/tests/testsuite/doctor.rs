//! `labbook doctor` in the situations a maintainer meets, with test doubles of the tools from
//! `fixtures/fake-tools/` on a `PATH` that holds nothing else.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use labbook_harness::doctor::{Doctor, Engine};

use crate::support::{Labbook, repo};

fn fakes() -> PathBuf {
    repo().join("fixtures/fake-tools")
}

/// A bin folder with the given fake tools; `docker` is wrapped so that its engine is `engine`.
fn bin(dir: &Path, tools: &[&str], engine: &str) -> OsString {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in tools {
        let target = fakes().join(tool);
        if *tool == "docker" {
            let script = format!(
                "#!/bin/sh\nFAKE_DOCKER_ENGINE={engine} exec '{}' \"$@\"\n",
                target.display()
            );
            executable(&bin.join(tool), &script);
        } else {
            std::os::unix::fs::symlink(&target, bin.join(tool)).expect("symlink");
        }
    }
    bin.into_os_string()
}

/// `labbook doctor` in `dir` with only `path` on `PATH` and `home` as `HOME`.
fn doctor(path: &OsString, home: &Path, dir: &Path) -> crate::support::Outcome {
    Labbook::new()
        .arg("doctor")
        .env("PATH", path)
        .env("HOME", home)
        .current_dir(dir)
        .run()
}

/// Writes an executable script.
fn executable(path: &Path, script: &str) {
    std::fs::write(path, script).expect("script written");
    let mut perms = std::fs::metadata(path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

struct Situation {
    name: &'static str,
    tools: &'static [&'static str],
    engine: &'static str,
    kind_usable: bool,
    says: &'static [&'static str],
    never_says: &'static [&'static str],
}

const ALL: &[&str] = &[
    "docker",
    "kind",
    "kubectl",
    "istioctl",
    "helm",
    "shellcheck",
];

#[test]
fn situations() {
    let situations = [
        Situation {
            name: "a laptop with everything and Docker running",
            tools: ALL,
            engine: "up",
            kind_usable: true,
            says: &[
                "docker      28.2.2",
                "kind        v0.31.0",
                "kubectl     v1.34.1",
                "istioctl    1.27.3",
                "helm        v3.19.0+g3d8990f",
                "shellcheck  0.10.0",
                "Docker engine: running (server 28.2.2)",
                "kind  usable",
            ],
            never_says: &["not found", "To use --cluster kind", "Optional"],
        },
        Situation {
            name: "a build container: docker client without an engine, no kind",
            tools: &["docker", "kubectl", "shellcheck"],
            engine: "down",
            kind_usable: false,
            says: &[
                "kind        not found",
                "Docker engine: not reachable: Cannot connect to the Docker daemon",
                "kind  not usable: kind cannot run here, because",
                "- the docker client is installed but no Docker engine answers it",
                "- kind is not installed",
                "To use --cluster kind:",
                "- docker: start a Docker engine",
                "- kind: `go install sigs.k8s.io/kind@latest`",
                "For the course's service-mesh labs:\n  - istioctl",
                "Optional:\n  - helm",
            ],
            never_says: &["kind  usable", "- kubectl"],
        },
        Situation {
            name: "no docker at all",
            tools: &["kind", "kubectl"],
            engine: "down",
            kind_usable: false,
            says: &[
                "docker      not found",
                "Docker engine: no docker client",
                "- docker is not installed, so there is no engine to run kind's node containers",
                "- docker: install Docker Engine or Docker Desktop",
            ],
            never_says: &["kind is not installed", "start a Docker engine"],
        },
        Situation {
            name: "an engine that never answers",
            tools: &["docker", "kind", "kubectl"],
            engine: "hang",
            kind_usable: false,
            says: &[
                "Docker engine: no answer from `docker info` within 0.5 s",
                "`docker info` did not answer within 0.5 s",
                "- docker: start a Docker engine",
            ],
            never_says: &["kind is not installed"],
        },
        Situation {
            name: "Docker running but no kubectl",
            tools: &["docker", "kind"],
            engine: "up",
            kind_usable: false,
            says: &[
                "- kubectl is not installed",
                "- kubectl: see https://kubernetes.io/docs/tasks/tools/",
            ],
            never_says: &["Docker engine answers", "- docker:"],
        },
        Situation {
            name: "nothing installed",
            tools: &[],
            engine: "down",
            kind_usable: false,
            says: &[
                "- docker is not installed",
                "- kind is not installed",
                "- kubectl is not installed",
            ],
            never_says: &[" usable: one throw-away"],
        },
    ];
    for situation in situations {
        let dir = tempfile::tempdir().expect("tempdir");
        let doctor = Doctor {
            path: bin(dir.path(), situation.tools, situation.engine),
            timeout: Duration::from_millis(500),
            pins: BTreeMap::new(),
        };
        let survey = doctor.survey();
        let report = survey.render();
        assert_eq!(
            survey.kind_usable(),
            situation.kind_usable,
            "{}:\n{report}",
            situation.name
        );
        for text in situation.says {
            assert!(
                report.contains(text),
                "{}: missing {text:?} in\n{report}",
                situation.name
            );
        }
        for text in situation.never_says {
            assert!(
                !report.contains(text),
                "{}: unexpected {text:?} in\n{report}",
                situation.name
            );
        }
        if situation.engine == "hang" {
            assert_eq!(survey.engine, Engine::NoAnswer(Duration::from_millis(500)));
        }
    }
}

#[test]
fn pinned_versions_are_compared_and_named_in_the_advice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = BTreeMap::from([
        ("KIND_VERSION".to_string(), "v0.30.0".to_string()),
        ("KUBECTL_VERSION".to_string(), "v1.34.1".to_string()),
        ("ISTIO_VERSION".to_string(), "1.27.3".to_string()),
    ]);
    let doctor = Doctor {
        path: bin(dir.path(), &["docker", "kind", "kubectl"], "up"),
        timeout: Duration::from_secs(10),
        pins,
    };
    let report = doctor.survey().render();
    assert!(
        report.contains("kind        v0.31.0 (the book pins v0.30.0)"),
        "{report}"
    );
    assert!(report.contains("kubectl     v1.34.1 "), "{report}");
    assert!(!report.contains("v1.34.1 (the book pins"), "{report}");
    assert!(report.contains("- istioctl 1.27.3: "), "{report}");
}

#[test]
fn the_cli_prints_the_survey_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = bin(dir.path(), &["docker", "kubectl"], "down");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let output = doctor(&path, &home, dir.path());
    output
        .success()
        .stdout_has("kind  not usable: kind cannot run here")
        .stdout_has("none  usable");
    let stdout = &output.stdout;
    assert!(stdout.starts_with("Tools\n"), "{stdout}");
    assert!(!home.join(".kube").exists());
}

/// `labbook doctor` with a tool whose version is longer than any column width used to be, a
/// version that differs from the book's pin, and tools missing: every row's columns start at
/// the same offset, and each missing tool's advice is an install step from its project, at the
/// pinned version, never a script of this repository.
#[test]
fn columns_stay_aligned_and_advice_works_outside_this_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = bin(dir.path(), &["docker", "kind", "helm"], "up");
    let bin_dir = PathBuf::from(&path);
    let long_version = "v1.34.1-an-unusually-long-build-name+0123456789abcdef";
    executable(
        &bin_dir.join("kubectl"),
        &format!("#!/bin/sh\necho 'Client Version: {long_version}'\n"),
    );
    let course = dir.path().join("course");
    std::fs::create_dir_all(course.join("book")).expect("book");
    std::fs::write(
        course.join("book/versions.env"),
        "KIND_VERSION=v0.30.0\nKUBECTL_VERSION=v1.34.1\nISTIO_VERSION=1.27.3\n",
    )
    .expect("versions.env");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let output = doctor(&path, &home, &course);
    output.success();
    let stdout = &output.stdout;

    let rows: Vec<&str> = stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), ALL.len(), "{stdout}");
    let versions = [
        ("docker", "28.2.2"),
        ("kind", "v0.31.0 (the book pins v0.30.0)"),
        ("kubectl", long_version),
        ("istioctl", "not found"),
        ("helm", "v3.19.0+g3d8990f"),
        ("shellcheck", "not found"),
    ];
    let offset = |row: &str, needle: &str| {
        row.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {row:?}:\n{stdout}"))
    };
    let mut version_at = std::collections::BTreeSet::new();
    let mut path_at = std::collections::BTreeSet::new();
    for (row, (name, version)) in rows.iter().zip(versions) {
        assert!(row.starts_with(&format!("  {name} ")), "{row:?}:\n{stdout}");
        version_at.insert(offset(row, version));
        if version != "not found" {
            path_at.insert(offset(row, &bin_dir.display().to_string()));
        }
    }
    assert_eq!(
        version_at.len(),
        1,
        "versions start at {version_at:?}:\n{stdout}"
    );
    assert_eq!(path_at.len(), 1, "paths start at {path_at:?}:\n{stdout}");
    // The backends' verdicts start at one offset too.
    let backends: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Cluster backends")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.trim_start().starts_with('-'))
        .collect();
    assert_eq!(backends.len(), 2, "{stdout}");
    let verdict_at: std::collections::BTreeSet<Option<usize>> =
        backends.iter().map(|l| l[2..].find("  ")).collect();
    assert_eq!(verdict_at.len(), 1, "{stdout}");

    for advice in [
        "- istioctl 1.27.3: `curl -sL https://istio.io/downloadIstioctl | ISTIO_VERSION=1.27.3 sh -`",
        "- shellcheck: `labbook lint` checks shell blocks with it when it is installed: `apt-get install shellcheck`",
    ] {
        assert!(stdout.contains(advice), "{advice:?} not in\n{stdout}");
    }
    assert!(
        !stdout.contains("ci/"),
        "a script of this repository:\n{stdout}"
    );

    // kind and kubectl missing: their advice is the projects' own, at the pinned versions.
    let bare = bin(&dir.path().join("bare"), &["docker"], "up");
    let output = doctor(&bare, &home, &course);
    output
        .success()
        .stdout_has("- kind v0.30.0: `curl -Lo ./kind https://kind.sigs.k8s.io/dl/v0.30.0/kind-")
        .stdout_has("go install sigs.k8s.io/kind@v0.30.0")
        .stdout_has("- kubectl v1.34.1: `curl -LO https://dl.k8s.io/release/v1.34.1/bin/")
        .stdout_has("https://kubernetes.io/docs/tasks/tools/");
    assert!(!output.stdout.contains("ci/"), "{}", output.stdout);
}
