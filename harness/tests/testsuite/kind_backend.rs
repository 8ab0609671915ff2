//! The kind backend driven through its API (as the engine drives it) against test doubles of
//! `kind` from `fixtures/fake-tools/`.
//!
//! Each test re-runs itself in a child process whose `PATH` starts with the fake tools and whose
//! `HOME` and `KUBECONFIG` are a temp dir and a poisoned file: that is the only way to give the
//! backend's own process, not just its children, an environment of its own. The parent prepares
//! the sandbox, runs the child, and reads what the fake kind logged. No test reaches beyond
//! loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use labbook::Lab;
use labbook_harness::cluster::LabCluster;
use labbook_harness::cluster::kind::{KindCluster, KindOptions, TeardownOutcome};

use crate::support::{fake_tools_path, repo};

/// Set in the child: the sandbox directory.
const CHILD: &str = "LABBOOK_KIND_TEST_SANDBOX";

/// The sandbox when running as the child, `None` in the parent.
fn child_sandbox() -> Option<PathBuf> {
    std::env::var_os(CHILD).map(PathBuf::from)
}

/// A temp dir with a HOME, run directories, the fake kind's log and state, and a poisoned
/// kubeconfig that nothing may use.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("home")).expect("home");
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("tools.log")).unwrap_or_default()
    }

    /// The commands the fake tools ran, without their indented details.
    fn commands(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(str::to_string)
            .collect()
    }

    fn home_kubeconfig(&self) -> PathBuf {
        self.path().join("home/.kube/config")
    }

    /// The command that runs `test` as a child in this sandbox.
    fn child(&self, test: &str) -> Command {
        // The suite's test names carry their module.
        let test = format!("kind_backend::{test}");
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args([&test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, self.path())
            .env("PATH", fake_tools_path())
            .env("HOME", self.path().join("home"))
            .env("KUBECONFIG", self.path().join("poisoned-kubeconfig"))
            .env("FAKE_TOOLS_LOG", self.path().join("tools.log"))
            .env("FAKE_KIND_STATE", self.path().join("clusters"))
            .env("KIND_NODE_IMAGE", "kindest/node:v1.34.0")
            .env_remove("KIND_CLUSTER_NAME");
        command
    }

    fn run(&self, test: &str) -> Output {
        let output = self.child(test).output().expect("child runs");
        assert!(
            output.status.success(),
            "child {test} failed:\n{}\n{}\nfake tools log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        output
    }
}

/// In the child: the backend of one lab, as the engine would make it.
fn backend(sandbox: &Path, lab: &str, keep: bool) -> KindCluster {
    let mut options = KindOptions::new("t1", lab, sandbox.join("runs").join(lab));
    options.keep_cluster = keep;
    KindCluster::new(options).expect("backend")
}

fn lab(markdown: &str) -> Lab {
    Lab::parse("lab.md", markdown).expect("parses")
}

const PLAIN_LAB: &str = "# Lab\n\n```bash\nkubectl create deployment web --image=nginx\nkubectl expose deployment web --port 80\n```\n\n## Verify\n\n```bash\nkubectl get pods\n```\n";

const KIND_UP_LAB: &str =
    "# Lab\n\n## Lab Setup\n\n```bash\nmake kind-up\n```\n\n```bash\nkubectl get pods\n```\n";

/// Runs a lab's shell command the way the engine would: with the backend's environment.
fn lab_shell(backend: &KindCluster, code: &str) {
    let status = Command::new("sh")
        .args(["-c", code])
        .envs(backend.env())
        .status()
        .expect("sh");
    assert!(status.success(), "{code}");
}

#[test]
fn the_harness_creates_checks_and_deletes_its_cluster() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(PLAIN_LAB);
        let mut kind = backend(&sandbox, "lab-one", false);
        let env = kind.env();
        let kubeconfig = sandbox.join("runs/lab-one/kubeconfig");
        assert_eq!(
            env,
            [
                (
                    "KIND_CLUSTER_NAME".to_string(),
                    "labbook-t1-lab-one".to_string()
                ),
                ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
            ]
        );
        kind.before_lab(&lab).expect("created");
        for step in &lab.steps {
            kind.before_step(&lab, step).expect("owned context");
        }
        kind.teardown().expect("deleted");
        // Idempotent: the second call (an interrupt racing the normal end) does nothing.
        kind.teardown().expect("no-op");
        assert_eq!(
            kind.teardown_handle().run().expect("no-op"),
            TeardownOutcome::AlreadyDone
        );
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.run("the_harness_creates_checks_and_deletes_its_cluster");
    let kubeconfig = sandbox.path().join("runs/lab-one/kubeconfig");
    let config = repo().join("book/kind/cluster.yaml");
    let config = config.canonicalize().unwrap_or(config);
    let commands = sandbox.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    let create = &commands[0];
    assert!(
        create.starts_with(&format!(
            "kind create cluster --name labbook-t1-lab-one --kubeconfig {} --wait 120s --config ",
            kubeconfig.display()
        )),
        "{create}"
    );
    assert!(
        create.ends_with("/book/kind/cluster.yaml --image kindest/node:v1.34.0"),
        "{create}"
    );
    assert!(create.contains(&*config.file_name().expect("name").to_string_lossy()));
    assert_eq!(
        commands[1],
        format!(
            "kind delete cluster --name labbook-t1-lab-one --kubeconfig {}",
            kubeconfig.display()
        )
    );
    assert!(
        !sandbox.home_kubeconfig().exists(),
        "~/.kube/config was created"
    );
}

#[test]
fn a_lab_that_runs_make_kind_up_creates_exactly_that_cluster() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(KIND_UP_LAB);
        let mut kind = backend(&sandbox, "kind-up", false);
        kind.before_lab(&lab).expect("nothing to do");
        // The lab's Makefile runs a bare `kind create cluster`, as course Makefiles do.
        kind.before_step(&lab, &lab.steps[0])
            .expect("no cluster yet is fine");
        lab_shell(&kind, "kind create cluster");
        kind.before_step(&lab, &lab.steps[1])
            .expect("the lab made our cluster");
        // A lab that switches to a cluster of its own is refused, naming what it found.
        lab_shell(&kind, "kind create cluster --name rogue");
        let refused = kind.before_step(&lab, &lab.steps[1]).expect_err("refused");
        let message = refused.to_string();
        assert!(
            message.contains("current context `kind-rogue`"),
            "{message}"
        );
        assert!(message.contains("`kind-labbook-t1-kind-up`"), "{message}");
        kind.teardown().expect("deleted");
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.run("a_lab_that_runs_make_kind_up_creates_exactly_that_cluster");
    let kubeconfig = sandbox.path().join("runs/kind-up/kubeconfig");
    let log = sandbox.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "kind create cluster", "{log}");
    assert_eq!(
        lines[1],
        format!(
            "  resolved name=labbook-t1-kind-up kubeconfig={}",
            kubeconfig.display()
        ),
        "{log}"
    );
    assert_eq!(
        sandbox.commands().last().expect("a delete"),
        &format!(
            "kind delete cluster --name labbook-t1-kind-up --kubeconfig {}",
            kubeconfig.display()
        )
    );
    assert!(
        !sandbox.home_kubeconfig().exists(),
        "~/.kube/config was created"
    );
}

#[test]
fn teardown_runs_after_a_failure_and_when_the_backend_is_dropped() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(PLAIN_LAB);
        let mut kind = backend(&sandbox, "fails", false);
        kind.before_lab(&lab).expect("created");
        // A verify failed: the engine collects diagnostics. The fake cluster's API server is a
        // closed loopback port, so the files say what could not be listed.
        let dir = sandbox.join("diagnostics");
        let files = kind.diagnose(&lab, &dir).expect("diagnostics");
        assert_eq!(files, [dir.join("events.txt"), dir.join("pods.txt")]);
        let events = std::fs::read_to_string(dir.join("events.txt")).expect("events");
        assert!(events.contains("failed to list events"), "{events}");
        kind.teardown().expect("deleted");

        // A panic between before_lab and teardown: dropping the backend deletes the cluster.
        let mut dropped = backend(&sandbox, "panics", false);
        dropped.before_lab(&lab).expect("created");
        drop(dropped);
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.run("teardown_runs_after_a_failure_and_when_the_backend_is_dropped");
    let deletes: Vec<String> = sandbox
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("kind delete cluster"))
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    assert!(deletes[0].starts_with("kind delete cluster --name labbook-t1-fails "));
    assert!(deletes[1].starts_with("kind delete cluster --name labbook-t1-panics "));
    let clusters = std::fs::read_to_string(sandbox.path().join("clusters")).expect("state");
    assert_eq!(clusters, "", "clusters left: {clusters}");
}

#[test]
fn sigint_during_a_lab_tears_the_cluster_down() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(PLAIN_LAB);
        let mut kind = backend(&sandbox, "interrupted", false);
        // As the engine would: listen for Ctrl+C before starting, tear down from the handler.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut interrupt = runtime
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            })
            .expect("SIGINT handler");
        kind.before_lab(&lab).expect("created");
        let teardown = kind.teardown_handle();
        let handler = std::thread::spawn(move || {
            runtime.block_on(interrupt.recv());
            let outcome = teardown.run().expect("deleted");
            assert_eq!(outcome, TeardownOutcome::Deleted);
            println!("TORN DOWN");
            std::process::exit(130);
        });
        println!("READY");
        std::io::stdout().flush().expect("flush");
        // A long step: the lab is mid-way when the interrupt comes.
        handler.join().expect("handler");
        unreachable!("the handler exits the process");
    }
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .child("sigint_during_a_lab_tears_the_cluster_down")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("child");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        let read = stdout.read_line(&mut line).expect("read");
        assert!(
            read > 0,
            "the child ended before it was ready; log:\n{}",
            sandbox.log()
        );
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    let status = child.wait().expect("exit");
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("TORN DOWN"), "{rest}");
    let commands = sandbox.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(
        commands[1].starts_with("kind delete cluster --name labbook-t1-interrupted --kubeconfig "),
        "{commands:#?}"
    );
}

#[test]
fn parallel_labs_get_their_own_cluster_and_kubeconfig() {
    if let Some(sandbox) = child_sandbox() {
        let workers: Vec<_> = ["lab-a", "lab-b", "lab-c"]
            .into_iter()
            .map(|slug| {
                let sandbox = sandbox.clone();
                std::thread::spawn(move || {
                    let lab = lab(PLAIN_LAB);
                    let mut kind = backend(&sandbox, slug, false);
                    kind.before_lab(&lab).expect("created");
                    for step in &lab.steps {
                        kind.before_step(&lab, step).expect("owned");
                    }
                    let text = std::fs::read_to_string(kind.kubeconfig()).expect("kubeconfig");
                    assert!(text.contains(&format!("current-context: kind-labbook-t1-{slug}")));
                    kind.teardown().expect("deleted");
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("lab");
        }
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.run("parallel_labs_get_their_own_cluster_and_kubeconfig");
    let commands = sandbox.commands();
    for slug in ["lab-a", "lab-b", "lab-c"] {
        let kubeconfig = sandbox.path().join("runs").join(slug).join("kubeconfig");
        let ours: Vec<&String> = commands
            .iter()
            .filter(|c| c.contains(&format!("--name labbook-t1-{slug} ")))
            .collect();
        assert_eq!(ours.len(), 2, "{commands:#?}");
        assert!(ours[0].starts_with("kind create cluster"));
        assert!(ours[1].starts_with("kind delete cluster"));
        for command in ours {
            assert!(
                command.contains(&format!("--kubeconfig {} ", kubeconfig.display()))
                    || command.ends_with(&kubeconfig.display().to_string())
            );
        }
    }
}

#[test]
fn keep_cluster_leaves_it_running_and_says_how_to_reach_it() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(PLAIN_LAB);
        let mut kind = backend(&sandbox, "kept", true);
        kind.before_lab(&lab).expect("created");
        kind.teardown().expect("kept");
        drop(kind);
        return;
    }
    let sandbox = Sandbox::new();
    let output = sandbox.run("keep_cluster_leaves_it_running_and_says_how_to_reach_it");
    let commands = sandbox.commands();
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert!(commands[0].starts_with("kind create cluster --name labbook-t1-kept"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("kept kind cluster labbook-t1-kept: export KUBECONFIG="),
        "{stderr}"
    );
    assert!(
        stderr.contains("kind delete cluster --name labbook-t1-kept"),
        "{stderr}"
    );
}

#[test]
fn a_failed_create_names_the_cluster_and_kinds_error() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(PLAIN_LAB);
        let mut kind = backend(&sandbox, "broken", false);
        let error = kind.before_lab(&lab).expect_err("create fails").to_string();
        assert!(
            error.starts_with("failed to create kind cluster labbook-t1-broken: "),
            "{error}"
        );
        assert!(error.contains("could not find a log line"), "{error}");
        // The engine still tears down, which clears whatever a half-made create left.
        kind.teardown().expect("deleted");
        return;
    }
    let sandbox = Sandbox::new();
    let output = sandbox
        .child("a_failed_create_names_the_cluster_and_kinds_error")
        .env("FAKE_KIND_FAIL", "create")
        .output()
        .expect("child");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let commands = sandbox.commands();
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[1].starts_with("kind delete cluster --name labbook-t1-broken"));
}

/// A tiny loopback HTTP server standing in for the kind cluster's API server: it answers GETs
/// with canned JSON by path, leaves watches open, and records every request line.
struct ApiServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl ApiServer {
    fn start(routes: Vec<(&'static str, serde_json::Value)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut open_watches = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some(watch) = answer(stream, &routes, &log) {
                    open_watches.push(watch);
                }
            }
        });
        ApiServer { url, requests }
    }
}

/// Answers one connection; returns it when it is a watch to be left open.
fn answer(
    mut stream: TcpStream,
    routes: &[(&'static str, serde_json::Value)],
    log: &Mutex<Vec<String>>,
) -> Option<TcpStream> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? <= 2 {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1)?.to_string();
    log.lock().expect("log").push(target.clone());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if query.contains("watch=true") {
        return Some(stream);
    }
    let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
        Some((_, body)) => ("200 OK", body.to_string()),
        None => (
            "404 Not Found",
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "code": 404, "metadata": {}})
            .to_string(),
        ),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    None
}

fn list(items: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "7"}, "items": items})
}

#[test]
fn settle_diagnostics_and_leftovers_use_only_the_isolated_kubeconfig() {
    if let Some(sandbox) = child_sandbox() {
        let lab = lab(PLAIN_LAB);
        let mut options = KindOptions::new("t1", "api", sandbox.join("runs/api"));
        // Bounded well below the default, should the fake server ever stop answering.
        options.settle_limit = std::time::Duration::from_secs(20);
        let mut kind = KindCluster::new(options).expect("backend");
        kind.before_lab(&lab).expect("created");
        let verify = lab.steps.last().expect("verify");
        let (_waited, warning) = kind.settle(&lab, verify).expect("settled");
        assert_eq!(warning, None);
        let files = kind
            .diagnose(&lab, &sandbox.join("diag"))
            .expect("diagnostics");
        assert_eq!(files.len(), 2);
        // An engine that is itself async calls the hooks from inside its runtime.
        let engine = tokio::runtime::Runtime::new().expect("runtime");
        let warnings = engine.block_on(async { kind.leftovers(&lab).expect("checked") });
        assert_eq!(
            warnings,
            ["left behind in namespace default after cleanup: deployment/web, service/web"]
        );
        kind.teardown().expect("deleted");
        // After the teardown the kubeconfig has no cluster: nothing to check, nothing to settle.
        assert_eq!(kind.leftovers(&lab).expect("nothing"), Vec::<String>::new());
        let (_, warning) = kind.settle(&lab, verify).expect("nothing");
        assert!(warning.expect("a warning").contains("has no cluster"));
        return;
    }
    let d = "/api/v1/namespaces/default";
    let named = |kind: &str, name: &str| serde_json::json!({"kind": kind, "metadata": {"name": name, "namespace": "default"}});
    let rolled_out = serde_json::json!({
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
    });
    let server = ApiServer::start(vec![
        (
            "/api/v1/namespaces/default/pods",
            list(serde_json::json!([])),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            list(serde_json::json!([rolled_out])),
        ),
        (
            "/api/v1/namespaces/default/events",
            list(serde_json::json!([])),
        ),
        (
            "/api/v1/namespaces/default/services",
            list(serde_json::json!([
                named("Service", "kubernetes"),
                named("Service", "web")
            ])),
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            list(serde_json::json!([named("ConfigMap", "kube-root-ca.crt")])),
        ),
    ]);
    // A kubeconfig that must never be used: $HOME's and $KUBECONFIG's both point at a sentinel.
    let sentinel = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    sentinel.set_nonblocking(true).expect("nonblocking");
    let poison = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-labbook-t1-api\nclusters:\n- cluster:\n    server: http://{}\n  name: c\ncontexts:\n- context:\n    cluster: c\n    user: u\n  name: kind-labbook-t1-api\nusers:\n- name: u\n  user: {{}}\n",
        sentinel.local_addr().expect("addr")
    );
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.home_kubeconfig().parent().expect("dir")).expect("mkdir");
    std::fs::write(sandbox.home_kubeconfig(), &poison).expect("poison");
    std::fs::write(sandbox.path().join("poisoned-kubeconfig"), &poison).expect("poison");

    let output = sandbox
        .child("settle_diagnostics_and_leftovers_use_only_the_isolated_kubeconfig")
        .env("FAKE_KIND_SERVER", &server.url)
        .output()
        .expect("child");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        matches!(sentinel.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "something used the poisoned kubeconfig"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.home_kubeconfig()).expect("home"),
        poison
    );
    let requests = server.requests.lock().expect("log").clone();
    for path in [
        format!("{d}/pods?"),
        "/apis/apps/v1/namespaces/default/deployments?".to_string(),
        format!("{d}/events?"),
        format!("{d}/services?"),
        format!("{d}/configmaps?"),
        "/apis/networking.istio.io/v1/namespaces/default/virtualservices?".to_string(),
    ] {
        assert!(
            requests.iter().any(|r| r.starts_with(&path)),
            "no {path} in {requests:#?}"
        );
    }
    assert!(
        requests.iter().all(|r| r.contains("/namespaces/default/")),
        "{requests:#?}"
    );
}
