//! `labbook doctor`: which tools a course needs are installed, at which versions, and which
//! cluster backend can run here.
//!
//! Each tool is run with its version flag (with a short time limit, so a hung tool cannot hang
//! the doctor), and `docker info` tells whether a Docker engine answers: kind runs its nodes as
//! containers, so the `kind` backend needs an engine, not just the docker client. The report ends
//! with what to install or start for what is missing. Probes get `KUBECONFIG=/dev/null`, so
//! nothing here ever reads the user's kubeconfig.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::Backend;

/// Where the pinned versions of the course's tools live, relative to the repository root.
pub const VERSIONS_FILE: &str = "book/versions.env";

/// What a tool is needed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The `kind` backend cannot run without it.
    Kind,
    /// The course's service-mesh labs run it.
    Course,
    /// Only some labs or commands use it.
    Optional,
}

/// A tool the doctor looks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Tool {
    /// The program name.
    pub name: &'static str,
    /// The arguments that make it print its version.
    pub version_args: &'static [&'static str],
    /// What it is needed for.
    pub need: Need,
    /// The variable of `book/versions.env` that pins its version, if any.
    pub pin: Option<&'static str>,
    /// How to get it, from its project (never a script of this repository: the reader of a
    /// course may not have it).
    pub install: &'static str,
    /// How to get the pinned version, when the book pins one: `{version}` is replaced by it
    /// (`1.27.3`), `{tag}` by it with a leading `v` (`v1.27.3`), `{os}` and `{arch}` by this
    /// machine's (`linux`, `amd64`).
    pub install_pinned: Option<&'static str>,
}

impl Tool {
    /// How to install this tool here, at `pin` when the book pins a version.
    pub fn install_step(&self, pin: Option<&str>) -> String {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        match (self.install_pinned, pin) {
            (Some(template), Some(pin)) => {
                let version = pin.trim_start_matches('v');
                template
                    .replace("{version}", version)
                    .replace("{tag}", &format!("v{version}"))
                    .replace("{os}", os)
                    .replace("{arch}", arch)
            }
            _ => self.install.replace("{os}", os).replace("{arch}", arch),
        }
    }
}

/// The tools, in the order they are listed.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "docker",
        version_args: &["--version"],
        need: Need::Kind,
        pin: None,
        install: "install Docker Engine or Docker Desktop (https://docs.docker.com/engine/install/): \
                  kind runs each cluster node as a container",
        install_pinned: None,
    },
    Tool {
        name: "kind",
        version_args: &["version"],
        need: Need::Kind,
        pin: Some("KIND_VERSION"),
        install: "`go install sigs.k8s.io/kind@latest`, or a release binary from \
                  https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
        install_pinned: Some(
            "`curl -Lo ./kind https://kind.sigs.k8s.io/dl/{tag}/kind-{os}-{arch} && chmod +x \
             ./kind`, then move it onto PATH (or `go install sigs.k8s.io/kind@{tag}`)",
        ),
    },
    Tool {
        name: "kubectl",
        version_args: &["version", "--client"],
        need: Need::Kind,
        pin: Some("KUBECTL_VERSION"),
        install: "see https://kubernetes.io/docs/tasks/tools/ (e.g. `curl -LO \
                  \"https://dl.k8s.io/release/$(curl -Ls \
                  https://dl.k8s.io/release/stable.txt)/bin/{os}/{arch}/kubectl\"`)",
        install_pinned: Some(
            "`curl -LO https://dl.k8s.io/release/{tag}/bin/{os}/{arch}/kubectl && chmod +x \
             kubectl`, then move it onto PATH (see https://kubernetes.io/docs/tasks/tools/)",
        ),
    },
    Tool {
        name: "istioctl",
        version_args: &["version", "--remote=false"],
        need: Need::Course,
        pin: Some("ISTIO_VERSION"),
        install: "`curl -sL https://istio.io/downloadIstioctl | sh -` puts it in \
                  ~/.istioctl/bin (see https://istio.io/latest/docs/setup/install/istioctl/)",
        install_pinned: Some(
            "`curl -sL https://istio.io/downloadIstioctl | ISTIO_VERSION={version} sh -` puts \
             it in ~/.istioctl/bin (see https://istio.io/latest/docs/setup/install/istioctl/)",
        ),
    },
    Tool {
        name: "helm",
        version_args: &["version", "--short"],
        need: Need::Optional,
        pin: None,
        install: "only labs that install Helm charts need it: see \
                  https://helm.sh/docs/intro/install/",
        install_pinned: None,
    },
    Tool {
        name: "shellcheck",
        version_args: &["--version"],
        need: Need::Optional,
        pin: None,
        install: "`labbook lint` checks shell blocks with it when it is installed: \
                  `apt-get install shellcheck` (Debian, Ubuntu), `brew install shellcheck` \
                  (macOS), or see https://github.com/koalaman/shellcheck#installing",
        install_pinned: None,
    },
];

/// What probing one tool found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Not on `PATH`.
    Missing,
    /// Found and printed a version.
    Found {
        /// Where.
        path: PathBuf,
        /// The version, as the tool printed it (`v1.34.1`, `28.2.2`).
        version: String,
    },
    /// Found, but its version command failed or hung.
    Broken {
        /// Where.
        path: PathBuf,
        /// What happened.
        problem: String,
    },
}

/// Whether a Docker engine answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// There is no docker client to ask.
    NoClient,
    /// An engine answered, with its version.
    Up(String),
    /// `docker info` failed; what it said.
    Down(String),
    /// `docker info` did not finish in time.
    NoAnswer(Duration),
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Each tool of [`TOOLS`] with what was found.
    pub tools: Vec<(&'static Tool, Probe)>,
    /// The Docker engine.
    pub engine: Engine,
    /// The versions pinned in `book/versions.env`, when found.
    pub pins: BTreeMap<String, String>,
}

/// How to look: which `PATH`, how long to wait for each tool, which pins to compare with.
#[derive(Debug, Clone)]
pub struct Doctor {
    /// The `PATH` searched and given to the tools.
    pub path: OsString,
    /// The time limit of each probe.
    pub timeout: Duration,
    /// Pinned versions (`KIND_VERSION`, ...), from `book/versions.env`.
    pub pins: BTreeMap<String, String>,
}

impl Doctor {
    /// The doctor of this process: its `PATH`, a 10 s limit per probe, and the pins of the
    /// `book/versions.env` found from the current directory up.
    pub fn from_env() -> Self {
        let pins = std::env::current_dir()
            .ok()
            .and_then(|dir| crate::cluster::find_upwards(&dir, VERSIONS_FILE))
            .and_then(|file| std::fs::read_to_string(file).ok())
            .map(|text| parse_versions(&text))
            .unwrap_or_default();
        Doctor {
            path: std::env::var_os("PATH").unwrap_or_default(),
            timeout: Duration::from_secs(10),
            pins,
        }
    }

    /// Probes every tool and the Docker engine.
    pub fn survey(&self) -> Survey {
        let tools: Vec<(&'static Tool, Probe)> =
            TOOLS.iter().map(|tool| (tool, self.probe(tool))).collect();
        let engine = match tools.iter().find(|(t, _)| t.name == "docker") {
            Some((_, Probe::Found { path, .. } | Probe::Broken { path, .. })) => self.engine(path),
            _ => Engine::NoClient,
        };
        Survey {
            tools,
            engine,
            pins: self.pins.clone(),
        }
    }

    fn probe(&self, tool: &Tool) -> Probe {
        let Some(path) = which(tool.name, &self.path) else {
            return Probe::Missing;
        };
        match self.run(&path, tool.version_args) {
            Ok(Ran::Finished {
                success: true,
                stdout,
                stderr,
            }) => match find_version(&stdout).or_else(|| find_version(&stderr)) {
                Some(version) => Probe::Found { path, version },
                None => Probe::Broken {
                    path,
                    problem: format!("printed no version: {}", first_line(&stdout, &stderr)),
                },
            },
            Ok(Ran::Finished { stdout, stderr, .. }) => Probe::Broken {
                path,
                problem: format!(
                    "`{} {}` failed: {}",
                    tool.name,
                    tool.version_args.join(" "),
                    first_line(&stderr, &stdout)
                ),
            },
            Ok(Ran::TimedOut) => Probe::Broken {
                path,
                problem: format!("did not answer within {} s", self.timeout.as_secs_f32()),
            },
            Err(e) => Probe::Broken {
                path,
                problem: format!("could not be run: {e}"),
            },
        }
    }

    fn engine(&self, docker: &Path) -> Engine {
        match self.run(docker, &["info", "--format", "{{.ServerVersion}}"]) {
            Ok(Ran::Finished {
                success: true,
                stdout,
                ..
            }) if !stdout.trim().is_empty() => Engine::Up(stdout.trim().to_string()),
            Ok(Ran::Finished { stdout, stderr, .. }) => Engine::Down(last_line(&stderr, &stdout)),
            Ok(Ran::TimedOut) => Engine::NoAnswer(self.timeout),
            Err(e) => Engine::Down(e.to_string()),
        }
    }

    fn run(&self, program: &Path, args: &[&str]) -> std::io::Result<Ran> {
        let handle = duct::cmd(program, args)
            .env("PATH", &self.path)
            .env("KUBECONFIG", "/dev/null")
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .start()?;
        match handle.wait_timeout(self.timeout)? {
            Some(output) => Ok(Ran::Finished {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }),
            None => {
                let _ = handle.kill();
                Ok(Ran::TimedOut)
            }
        }
    }
}

enum Ran {
    Finished {
        success: bool,
        stdout: String,
        stderr: String,
    },
    TimedOut,
}

/// The executable `name` in the first directory of `path` that has it.
pub fn which(name: &str, path: &OsString) -> Option<PathBuf> {
    labbook::tools::which(name, path)
}

/// The first word that looks like a version: `v1.34.1`, `28.2.2`, `0.10.0`, `v3.19.0+g3d8990f`.
fn find_version(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '\''))
        .find(|w| {
            let digits = w.strip_prefix('v').unwrap_or(w);
            digits.starts_with(|c: char| c.is_ascii_digit()) && digits.contains('.')
        })
        .map(str::to_string)
}

fn first_line(text: &str, fallback: &str) -> String {
    text.lines()
        .chain(fallback.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string()
}

fn last_line(text: &str, fallback: &str) -> String {
    let last = |t: &str| {
        t.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_string)
    };
    last(text)
        .or_else(|| last(fallback))
        .unwrap_or_else(|| "no output".to_string())
}

/// `KEY=value` lines of `book/versions.env` (optionally `export`ed, optionally quoted).
pub fn parse_versions(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.split(" #").next().unwrap_or(v).trim();
            (
                k.trim().to_string(),
                v.trim_matches(|c| c == '"' || c == '\'').to_string(),
            )
        })
        .collect()
}

impl Survey {
    fn probe(&self, name: &str) -> Option<&Probe> {
        self.tools
            .iter()
            .find(|(t, _)| t.name == name)
            .map(|(_, p)| p)
    }

    /// Why the kind backend cannot run here; empty when it can.
    pub fn kind_blockers(&self) -> Vec<String> {
        let mut why = Vec::new();
        match (self.probe("docker"), &self.engine) {
            (Some(Probe::Missing) | None, _) => why.push(
                "docker is not installed, so there is no engine to run kind's node containers"
                    .to_string(),
            ),
            (_, Engine::Down(said)) => why.push(format!(
                "the docker client is installed but no Docker engine answers it (`docker info`: {said})"
            )),
            (_, Engine::NoAnswer(limit)) => why.push(format!(
                "the docker client is installed but `docker info` did not answer within {} s",
                limit.as_secs_f32()
            )),
            (_, Engine::NoClient) => why.push("docker does not run".to_string()),
            (_, Engine::Up(_)) => {}
        }
        for name in ["kind", "kubectl"] {
            match self.probe(name) {
                Some(Probe::Found { .. }) => {}
                Some(Probe::Broken { problem, .. }) => why.push(format!("{name} {problem}")),
                _ => why.push(format!("{name} is not installed")),
            }
        }
        why
    }

    /// Whether `--cluster kind` can run here.
    pub fn kind_usable(&self) -> bool {
        self.kind_blockers().is_empty()
    }

    /// The report, for a person.
    pub fn render(&self) -> String {
        let mut out = String::from("Tools\n");
        let mut rows = Vec::new();
        for (tool, probe) in &self.tools {
            let pin = tool.pin.and_then(|key| self.pins.get(key));
            let (version, path) = match probe {
                Probe::Missing => ("not found".to_string(), String::new()),
                Probe::Found { path, version } => {
                    let mut v = version.clone();
                    if let Some(pin) = pin
                        && !same_version(version, pin)
                    {
                        let _ = write!(v, " (the book pins {pin})");
                    }
                    (v, path.display().to_string())
                }
                Probe::Broken { path, problem } => {
                    (format!("broken: {problem}"), path.display().to_string())
                }
            };
            rows.push([tool.name.to_string(), version, path]);
        }
        out.push_str(&columns(&rows));
        let engine = match &self.engine {
            Engine::NoClient => "no docker client".to_string(),
            Engine::Up(version) => format!("running (server {version})"),
            Engine::Down(said) => format!("not reachable: {said}"),
            Engine::NoAnswer(limit) => {
                format!(
                    "no answer from `docker info` within {} s",
                    limit.as_secs_f32()
                )
            }
        };
        let _ = writeln!(out, "\nDocker engine: {engine}");

        out.push_str("\nCluster backends\n");
        let width = Backend::ALL
            .iter()
            .map(|b| b.name().chars().count())
            .max()
            .unwrap_or(0);
        for backend in Backend::ALL {
            let blockers = match backend {
                Backend::None => Vec::new(),
                Backend::Kind { .. } => self.kind_blockers(),
            };
            let name = format!("{:<width$}", backend.name());
            if blockers.is_empty() {
                let _ = writeln!(out, "  {name}  usable: {}", backend.summary());
            } else {
                let _ = writeln!(
                    out,
                    "  {name}  not usable: {} cannot run here, because",
                    backend.name()
                );
                for blocker in &blockers {
                    let _ = writeln!(out, "        - {blocker}");
                }
            }
        }

        let mut kind_steps = Vec::new();
        match (self.probe("docker"), &self.engine) {
            (Some(Probe::Missing) | None, _) => {
                kind_steps.push(format!("docker: {}", TOOLS[0].install_step(None)));
            }
            (_, Engine::Down(_) | Engine::NoAnswer(_)) => kind_steps.push(
                "docker: start a Docker engine (`sudo systemctl start docker`, or open Docker \
                 Desktop) and check that `docker info` works for this user; a container or VM \
                 without its own engine cannot run kind"
                    .to_string(),
            ),
            _ => {}
        }
        let mut course_steps = Vec::new();
        let mut optional_steps = Vec::new();
        for (tool, probe) in &self.tools {
            if tool.name == "docker" || matches!(probe, Probe::Found { .. }) {
                continue;
            }
            let pin = tool.pin.and_then(|key| self.pins.get(key));
            let line = format!(
                "{}{}: {}",
                tool.name,
                pin.map(|v| format!(" {v}")).unwrap_or_default(),
                tool.install_step(pin.map(String::as_str))
            );
            match tool.need {
                Need::Kind => kind_steps.push(line),
                Need::Course => course_steps.push(line),
                Need::Optional => optional_steps.push(line),
            }
        }
        for (title, steps) in [
            ("To use --cluster kind", kind_steps),
            ("For the course's service-mesh labs", course_steps),
            ("Optional", optional_steps),
        ] {
            if !steps.is_empty() {
                let _ = writeln!(out, "\n{title}:");
                for step in steps {
                    let _ = writeln!(out, "  - {step}");
                }
            }
        }
        out
    }
}

/// Rows as left-aligned columns two spaces apart, each as wide as its widest cell (in
/// characters), indented by two; trailing blanks trimmed.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, " {cell:<width$} ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Whether a printed version is the pinned one (`v1.34.1` and `1.34.1` are the same).
fn same_version(found: &str, pin: &str) -> bool {
    let norm = |v: &str| v.trim_start_matches('v').to_string();
    norm(found) == norm(pin)
        || norm(found).starts_with(&format!("{}-", norm(pin)))
        || norm(found).starts_with(&format!("{}+", norm(pin)))
}

/// `labbook doctor`: prints the survey of this machine. Always exits 0: the `none` backend is
/// always usable, and the report says what the others need.
pub fn run() -> anyhow::Result<u8> {
    print!("{}", Doctor::from_env().survey().render());
    println!("\nConfinement: {}", crate::engine::confine::probe());
    Ok(crate::cli::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_what_tools_print() {
        let cases = [
            ("Docker version 28.2.2, build e6534b4", Some("28.2.2")),
            ("kind v0.31.0 go1.25.5 linux/amd64", Some("v0.31.0")),
            (
                "Client Version: v1.34.1\nKustomize Version: v5.7.1",
                Some("v1.34.1"),
            ),
            ("client version: 1.27.3", Some("1.27.3")),
            ("v3.19.0+g3d8990f", Some("v3.19.0+g3d8990f")),
            (
                "ShellCheck - shell script analysis tool\nversion: 0.10.0",
                Some("0.10.0"),
            ),
            ("no numbers here", None),
        ];
        for (text, want) in cases {
            assert_eq!(find_version(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn versions_env_lines() {
        let pins = parse_versions(
            "# pinned\nKIND_VERSION=v0.30.0\nexport KUBECTL_VERSION=\"v1.34.1\"\nISTIO_VERSION='1.27.3' # mesh\n\n",
        );
        assert_eq!(pins["KIND_VERSION"], "v0.30.0");
        assert_eq!(pins["KUBECTL_VERSION"], "v1.34.1");
        assert_eq!(pins["ISTIO_VERSION"], "1.27.3");
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let row = |a: &str, b: &str, c: &str| [a.to_string(), b.to_string(), c.to_string()];
        let text = columns(&[
            row("kind", "v0.31.0 (the book pins v0.30.0)", "/bin/kind"),
            row("shellcheck", "0.10.0", "/usr/bin/shellcheck"),
            row("helm", "not found", ""),
        ]);
        assert_eq!(
            text,
            "  kind        v0.31.0 (the book pins v0.30.0)  /bin/kind\n\
             \x20 shellcheck  0.10.0                           /usr/bin/shellcheck\n\
             \x20 helm        not found\n"
        );
    }

    #[test]
    fn install_steps_come_from_the_projects_and_name_the_pin() {
        let tool = |name: &str| TOOLS.iter().find(|t| t.name == name).expect(name);
        let cases = [
            (
                "kind",
                Some("v0.30.0"),
                "https://kind.sigs.k8s.io/dl/v0.30.0/kind-",
            ),
            (
                "kind",
                Some("0.30.0"),
                "go install sigs.k8s.io/kind@v0.30.0",
            ),
            ("kind", None, "go install sigs.k8s.io/kind@latest"),
            (
                "kubectl",
                Some("v1.34.1"),
                "https://dl.k8s.io/release/v1.34.1/bin/",
            ),
            ("kubectl", None, "https://kubernetes.io/docs/tasks/tools/"),
            ("istioctl", Some("v1.27.3"), "ISTIO_VERSION=1.27.3 sh -"),
            ("istioctl", None, "https://istio.io/downloadIstioctl | sh -"),
            ("shellcheck", None, "apt-get install shellcheck"),
            (
                "helm",
                Some("v3.19.0"),
                "https://helm.sh/docs/intro/install/",
            ),
        ];
        for (name, pin, needle) in cases {
            let step = tool(name).install_step(pin);
            assert!(step.contains(needle), "{name} {pin:?}: {step}");
            assert!(
                !step.contains('{'),
                "{name} {pin:?}: unfilled placeholder in {step}"
            );
        }
        for tool in TOOLS {
            for pin in [None, Some("1.0.0")] {
                let step = tool.install_step(pin);
                assert!(
                    !step.contains("ci/"),
                    "{}: a script of this repository: {step}",
                    tool.name
                );
            }
        }
    }

    #[test]
    fn pinned_versions_compare_loosely() {
        for (found, pin, same) in [
            ("v1.34.1", "v1.34.1", true),
            ("1.27.3", "1.27.3", true),
            ("v0.31.0", "v0.30.0", false),
            ("v1.32.4-dispatcher", "v1.32.4", true),
            ("1.27.3", "v1.27.3", true),
        ] {
            assert_eq!(same_version(found, pin), same, "{found} {pin}");
        }
    }
}
