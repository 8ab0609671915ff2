//! Layer 7: the container images a lab or a course uses, each with the file and line it comes
//! from.
//!
//! `labbook images` lists them, the lint warns about floating tags, and `run --cluster kind
//! --preload` loads them into each lab's cluster; all three ask this module, so "which images
//! does this command or manifest use" is answered in one place: [`of_command`] for a command
//! line, [`of_document`] for a manifest, and [`of_lab`] / [`of_course`] on top of them.
//!
//! Sources:
//!
//! - `--image` of `kubectl run|create|debug` and the `container=image` pairs of `kubectl set
//!   image`; `--image` of `kind create cluster` is the node image;
//! - the containers of manifests in heredocs ([`Lab::manifests`]), and of manifest files in the
//!   course that a lab applies with `kubectl apply|create|replace -f FILE|DIR`;
//! - the course's pins: `*_IMAGE=` lines of `versions.env` (the node image when the key names
//!   one), `ISTIO_VERSION=` (the images `istioctl install` deploys: `istio/pilot` and
//!   `istio/proxyv2` at that version), the nodes of `kind/cluster.yaml`, and the versions of
//!   `book.toml`'s `[preprocessor.labbook.versions]`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::course::{Course, normalize};
use crate::kubectl::{Grammar, Invocation, is_dynamic};
use crate::model::Lab;
use crate::shell::Command;
use crate::yaml::{Node, Value};

/// Where a reference to an image was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command line: `--image`, `kubectl set image`.
    Command,
    /// A manifest in a heredoc.
    Manifest,
    /// A manifest file of the course that a lab applies.
    File,
    /// A version pin: `versions.env` or `kind/cluster.yaml`.
    Pin,
    /// A version of the matrix `book.toml` declares (`[preprocessor.labbook.versions]`): one
    /// of the alternatives CI runs, not all used by one run.
    Matrix,
}

impl Source {
    /// The source's name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Source::Command => "command",
            Source::Manifest => "manifest",
            Source::File => "file",
            Source::Pin => "pin",
            Source::Matrix => "matrix",
        }
    }
}

/// What runs the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A container of the lab's workloads.
    Workload,
    /// A kind node (`kindest/node`): the cluster itself, never loaded into it.
    Node,
    /// Istio's control plane or sidecar, deployed by `istioctl install`.
    Istio,
}

/// How firmly a reference names one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tag {
    /// A tag other than `latest`.
    Pinned,
    /// A digest (`@sha256:…`), with or without a tag.
    Digest,
    /// The `latest` tag: floating.
    Latest,
    /// No tag, which means `latest`: floating.
    Untagged,
    /// Holds a shell expansion (`$IMAGE`): known only when the lab runs.
    Dynamic,
}

impl Tag {
    /// Reads a reference: `nginx:1.27` is pinned, `localhost:5000/app` untagged.
    pub fn of(image: &str) -> Tag {
        if is_dynamic(image) {
            return Tag::Dynamic;
        }
        if image.contains('@') {
            return Tag::Digest;
        }
        let last = image.rsplit('/').next().unwrap_or(image);
        match last.split_once(':') {
            Some((_, "latest")) => Tag::Latest,
            Some(_) => Tag::Pinned,
            None => Tag::Untagged,
        }
    }

    /// Whether the tag may point at another image tomorrow (`:latest`, or no tag).
    pub fn is_floating(self) -> bool {
        matches!(self, Tag::Latest | Tag::Untagged)
    }
}

/// One reference to an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ImageUse {
    /// The reference as written (`nginx:1.27`, `$IMAGE`).
    pub image: String,
    /// The file it is written in: a chapter, a manifest file, `versions.env`, `book.toml`.
    pub file: PathBuf,
    /// The 1-based line in that file.
    pub line: usize,
    /// For a manifest file ([`Source::File`]): the command that applies it.
    pub applied_at: Option<AppliedAt>,
    /// Where it was found.
    pub source: Source,
    /// What runs it.
    pub role: Role,
    /// How firmly it names one image.
    pub tag: Tag,
}

/// The chapter and Markdown line of a command that applies a manifest file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AppliedAt {
    /// The chapter.
    pub chapter: PathBuf,
    /// The Markdown line of the command.
    pub line: usize,
}

/// The images one command line names, with what runs them: the one reader of image flags.
pub fn of_command(command: &Command) -> Vec<(String, Role)> {
    if command.program() == "kind" {
        let Some(grammar) = Grammar::of("kind") else {
            return Vec::new();
        };
        let kind = Invocation::read(&grammar, command.args(), command.line);
        if kind.sub == "create" && kind.positionals.first() == Some(&"cluster") {
            return kind
                .flag_values(&["--image"])
                .into_iter()
                .map(|i| (i.to_string(), Role::Node))
                .collect();
        }
        return Vec::new();
    }
    let Some(kubectl) = Invocation::wrapped(command) else {
        return Vec::new();
    };
    let images: Vec<&str> = match kubectl.sub {
        "run" | "create" | "debug" => kubectl.flag_values(&["--image"]),
        "set" => match kubectl.shift() {
            // `set image deploy/web web=nginx:1.28`, `set image deployment web web=…`.
            Some(("image", rest)) => rest
                .positionals
                .iter()
                .filter_map(|p| p.split_once('=').map(|(_, image)| image))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    images
        .into_iter()
        .filter(|i| !i.is_empty())
        .map(|i| (i.to_string(), Role::Workload))
        .collect()
}

/// The images of one manifest document, with the line (within the parsed text) of each
/// `image:` value: the containers, init containers and ephemeral containers at any depth (pods,
/// pod templates, job templates of CronJobs).
pub fn of_document(document: &Node) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    collect(document, false, &mut found);
    found
}

fn collect(node: &Node, in_containers: bool, found: &mut Vec<(String, usize)>) {
    match &node.value {
        Value::Map(entries) => {
            for entry in entries {
                if in_containers
                    && entry.key == "image"
                    && let Some(image) = entry.value.as_str()
                {
                    found.push((image, entry.value.line));
                    continue;
                }
                let containers = matches!(
                    entry.key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                );
                collect(&entry.value, containers, found);
            }
        }
        // A list of containers: each item is a container.
        Value::Seq(items) => {
            for item in items {
                collect(item, in_containers, found);
            }
        }
        Value::Null | Value::Scalar(_) => {}
    }
}

fn image_use(
    image: String,
    file: &Path,
    line: usize,
    source: Source,
    role: Role,
    applied_at: Option<AppliedAt>,
) -> ImageUse {
    ImageUse {
        tag: Tag::of(&image),
        image,
        file: file.to_path_buf(),
        line,
        applied_at,
        source,
        role,
    }
}

impl Lab {
    /// The images the lab's own Markdown names: command lines and heredoc manifests of the
    /// blocks that run (not `skip` or `output`), in the order of the lab's commands. Manifest
    /// files on disk need the course: see [`of_lab`].
    pub fn images(&self) -> Vec<ImageUse> {
        let mut found = Vec::new();
        let manifests = self.manifests();
        for (s, step) in self.steps.iter().enumerate() {
            if !step.kind.runs() {
                continue;
            }
            for (c, command) in step.analysis.commands.iter().enumerate() {
                for (image, role) in of_command(command) {
                    found.push(image_use(
                        image,
                        &self.path,
                        command.line,
                        Source::Command,
                        role,
                        None,
                    ));
                }
                let heredocs = manifests
                    .all
                    .iter()
                    .filter(|m| m.step == s && m.command == c);
                for manifest in heredocs {
                    for document in manifest.documents() {
                        for (image, line) in of_document(document) {
                            found.push(image_use(
                                image,
                                &self.path,
                                manifest.markdown_line(line),
                                Source::Manifest,
                                Role::Workload,
                                None,
                            ));
                        }
                    }
                }
            }
        }
        found
    }
}

/// The largest manifest file read; larger ones are not manifests a lab applies by hand.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The images of a lab: [`Lab::images`], and those of the manifest files in the course that the
/// lab applies (`kubectl apply -f k8s/app.yaml`, or every `.yaml`/`.yml`/`.json` of a folder),
/// read relative to the folder the lab starts in. Files a heredoc of the lab writes are already
/// in [`Lab::images`]; URLs and `$VAR` paths cannot be read and are left out.
pub fn of_lab(course: &Course, lab: &Lab) -> Vec<ImageUse> {
    let mut found = lab.images();
    let manifests = lab.manifests();
    let start = course.start_dir(lab);
    let mut seen: Vec<PathBuf> = Vec::new();
    for (s, step) in lab.steps.iter().enumerate() {
        if !step.kind.runs() {
            continue;
        }
        for command in &step.analysis.commands {
            let Some(kubectl) = Invocation::wrapped(command)
                .filter(|k| matches!(k.sub, "apply" | "create" | "replace"))
            else {
                continue;
            };
            for file in kubectl.flag_values(&["-f", "--filename"]) {
                if file == "-"
                    || file.contains("://")
                    || is_dynamic(file)
                    || manifests.written(file, s).is_some()
                {
                    continue;
                }
                for path in manifest_files(&normalize(&start.join(file))) {
                    if seen.contains(&path) {
                        continue;
                    }
                    seen.push(path.clone());
                    for (image, line) in file_images(&path) {
                        found.push(image_use(
                            image,
                            &path,
                            line,
                            Source::File,
                            Role::Workload,
                            Some(AppliedAt {
                                chapter: lab.path.clone(),
                                line: command.line,
                            }),
                        ));
                    }
                }
            }
        }
    }
    found
}

/// A manifest file, or the manifest files directly in a folder (as `kubectl apply -f DIR`).
fn manifest_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    files
}

/// The images of a manifest file; nothing when it cannot be read or is not YAML (the lint and
/// kubectl say why; this list only says what would run).
fn file_images(path: &Path) -> Vec<(String, usize)> {
    let readable = std::fs::metadata(path).is_ok_and(|m| m.len() <= MAX_MANIFEST_BYTES);
    let Some(text) = readable
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
    else {
        return Vec::new();
    };
    crate::yaml::parse_documents(&text)
        .map(|documents| documents.iter().flat_map(of_document).collect())
        .unwrap_or_default()
}

/// The images `istioctl install` deploys for an Istio release: istiod and the sidecar proxy.
pub fn istio_images(version: &str) -> [String; 2] {
    [
        format!("docker.io/istio/pilot:{version}"),
        format!("docker.io/istio/proxyv2:{version}"),
    ]
}

/// The kind node image of a Kubernetes release (`v1.33.1`, or `1.33.1`).
pub fn node_image(kubernetes: &str) -> String {
    if kubernetes.contains('/') || kubernetes.contains(':') {
        return kubernetes.to_string();
    }
    format!(
        "kindest/node:v{}",
        kubernetes.strip_prefix('v').unwrap_or(kubernetes)
    )
}

/// The images the course pins outside its chapters: `versions.env`, `kind/cluster.yaml` and
/// `book.toml`'s `[preprocessor.labbook.versions]`, in that order.
pub fn pinned(course: &Course) -> Vec<ImageUse> {
    let root = course.root();
    let mut found = Vec::new();
    let env = root.join("versions.env");
    if let Ok(text) = std::fs::read_to_string(&env) {
        for (i, line) in text.lines().enumerate() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim().trim_matches(['"', '\'']));
            if key.starts_with('#') || value.is_empty() {
                continue;
            }
            if key.ends_with("_IMAGE") {
                let role = if key.contains("NODE") {
                    Role::Node
                } else {
                    Role::Workload
                };
                found.push(image_use(
                    value.into(),
                    &env,
                    i + 1,
                    Source::Pin,
                    role,
                    None,
                ));
            } else if key == "ISTIO_VERSION" {
                for image in istio_images(value) {
                    found.push(image_use(
                        image,
                        &env,
                        i + 1,
                        Source::Pin,
                        Role::Istio,
                        None,
                    ));
                }
            }
        }
    }
    let kind = root.join("kind").join("cluster.yaml");
    for (image, line) in std::fs::read_to_string(&kind)
        .ok()
        .and_then(|text| crate::yaml::parse_documents(&text).ok())
        .unwrap_or_default()
        .iter()
        .flat_map(|config| config.get("nodes").map(node_images).unwrap_or_default())
    {
        found.push(image_use(image, &kind, line, Source::Pin, Role::Node, None));
    }
    if let (Some(book), Some(versions)) = (&course.book, &course.config.versions) {
        let toml = book.join("book.toml");
        let text = std::fs::read_to_string(&toml).unwrap_or_default();
        // The toml crate keeps no lines: the line is where the quoted value is written.
        let line_of = |value: &str| {
            let quoted = [format!("\"{value}\""), format!("'{value}'")];
            text.lines()
                .position(|l| quoted.iter().any(|q| l.contains(q.as_str())))
                .map_or(1, |i| i + 1)
        };
        for kubernetes in &versions.kubernetes {
            let line = line_of(kubernetes);
            found.push(image_use(
                node_image(kubernetes),
                &toml,
                line,
                Source::Matrix,
                Role::Node,
                None,
            ));
        }
        for istio in &versions.istio {
            let line = line_of(istio);
            for image in istio_images(istio) {
                found.push(image_use(
                    image,
                    &toml,
                    line,
                    Source::Matrix,
                    Role::Istio,
                    None,
                ));
            }
        }
    }
    found
}

fn node_images(nodes: &Node) -> Vec<(String, usize)> {
    match &nodes.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|n| n.get("image"))
            .filter_map(|i| Some((i.as_str()?, i.line)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every image of a course: each lab's ([`of_lab`]), then the pins ([`pinned`]).
pub fn of_course(course: &Course) -> Vec<ImageUse> {
    let mut found: Vec<ImageUse> = course.labs.iter().flat_map(|l| of_lab(course, l)).collect();
    found.extend(pinned(course));
    found
}

/// What `run --preload` loads into a lab's cluster: the lab's workload images and the pinned
/// Istio and workload images of its course, each once, leaving out node images, the matrix's
/// other versions and references only the shell can resolve. `istio` is the Istio release the
/// run stands for (`run --versions istio=…`), whose images replace the pinned ones.
pub fn preload(course: &Course, lab: &Lab, istio: Option<&str>) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    let mut add = |image: String| {
        if !images.contains(&image) {
            images.push(image);
        }
    };
    for used in of_lab(course, lab).into_iter().chain(pinned(course)) {
        if used.role == Role::Node || used.tag == Tag::Dynamic || used.source == Source::Matrix {
            continue;
        }
        match (used.role, istio) {
            (Role::Istio, Some(version)) => istio_images(version).into_iter().for_each(&mut add),
            _ => add(used.image),
        }
    }
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(code: &str) -> Lab {
        Lab::parse("lab.md", &format!("# Lab\n\n```bash\n{code}\n```\n")).expect("parses")
    }

    #[test]
    fn tags_are_read_from_the_last_path_segment() {
        let cases = [
            ("nginx:1.27", Tag::Pinned),
            ("nginx", Tag::Untagged),
            ("nginx:latest", Tag::Latest),
            ("localhost:5000/app", Tag::Untagged),
            ("localhost:5000/app:v2", Tag::Pinned),
            ("kindest/node:v1.33.1@sha256:0a1b", Tag::Digest),
            ("busybox@sha256:0a1b", Tag::Digest),
            ("$IMAGE", Tag::Dynamic),
            ("nginx:${TAG}", Tag::Dynamic),
        ];
        for (image, want) in cases {
            assert_eq!(Tag::of(image), want, "{image}");
        }
        assert!(Tag::Latest.is_floating() && Tag::Untagged.is_floating());
        assert!(!Tag::Pinned.is_floating() && !Tag::Dynamic.is_floating());
    }

    #[test]
    fn command_lines_name_their_images() {
        let cases: &[(&str, &[&str])] = &[
            (
                "kubectl run c --image=curlimages/curl:8.14.1 -- sleep 1",
                &["curlimages/curl:8.14.1"],
            ),
            (
                "kubectl -n demo run c --image busybox:1.36",
                &["busybox:1.36"],
            ),
            (
                "kubectl create deployment web --image=nginx:1.27 --image=redis:7",
                &["nginx:1.27", "redis:7"],
            ),
            (
                "kubectl set image deploy/web web=nginx:1.28 side=envoy:1",
                &["nginx:1.28", "envoy:1"],
            ),
            ("kubectl set image deployment web web=nginx", &["nginx"]),
            (
                "kubectl debug -it web --image=nicolaka/netshoot:v0.13",
                &["nicolaka/netshoot:v0.13"],
            ),
            ("timeout 60 kubectl run x --image=alpine:3", &["alpine:3"]),
            ("kubectl set env deploy/web A=b", &[]),
            ("kubectl get pods -o wide", &[]),
            ("docker run --image=not-kubectl", &[]),
        ];
        for (code, want) in cases {
            let lab = lab(code);
            let found: Vec<String> = of_command(&lab.steps[0].analysis.commands[0])
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            assert_eq!(found, *want, "{code}");
        }
        let kind = lab("kind create cluster --name x --image kindest/node:v1.33.1");
        assert_eq!(
            of_command(&kind.steps[0].analysis.commands[0]),
            [("kindest/node:v1.33.1".to_string(), Role::Node)]
        );
    }

    #[test]
    fn manifests_name_every_container_image_with_its_line() {
        let lab = lab(concat!(
            "kubectl apply -f - <<'EOF'\n",
            "apiVersion: apps/v1\n",
            "kind: Deployment\n",
            "spec:\n",
            "  template:\n",
            "    spec:\n",
            "      initContainers:\n",
            "      - name: init\n",
            "        image: busybox:1.36\n",
            "      containers:\n",
            "      - name: web\n",
            "        image: nginx\n",
            "        env:\n",
            "        - {name: image, value: not-an-image}\n",
            "---\n",
            "kind: ConfigMap\n",
            "data: {image: not-a-container}\n",
            "EOF",
        ));
        let found: Vec<(String, usize, Tag)> = lab
            .images()
            .into_iter()
            .map(|u| (u.image, u.line, u.tag))
            .collect();
        // The fence opens on line 3, the body starts on line 5.
        assert_eq!(
            found,
            [
                ("busybox:1.36".to_string(), 12, Tag::Pinned),
                ("nginx".to_string(), 15, Tag::Untagged)
            ]
        );
    }

    #[test]
    fn preload_takes_the_run_s_istio_and_leaves_nodes_and_variables_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("versions.env"),
            "KIND_NODE_IMAGE=kindest/node:v1.33.1\nISTIO_VERSION=1.26.2\nCURL_IMAGE=curlimages/curl:8.14.1\n",
        )
        .expect("versions.env");
        let chapter = dir.path().join("lab.md");
        std::fs::write(
            &chapter,
            "# Lab\n\n```bash\nkubectl run a --image=busybox:1.36\nkubectl run b --image=\"$X\"\nkubectl run c --image=curlimages/curl:8.14.1\n```\n",
        )
        .expect("chapter");
        let course = crate::course::load(&chapter).expect("loads");
        let lab = &course.labs[0];
        assert_eq!(
            preload(&course, lab, None),
            [
                "busybox:1.36",
                "curlimages/curl:8.14.1",
                "docker.io/istio/pilot:1.26.2",
                "docker.io/istio/proxyv2:1.26.2",
            ]
        );
        assert_eq!(
            preload(&course, lab, Some("1.27.3"))[2..],
            [
                "docker.io/istio/pilot:1.27.3",
                "docker.io/istio/proxyv2:1.27.3"
            ]
        );
    }

    #[test]
    fn node_images_from_versions() {
        assert_eq!(node_image("v1.33.1"), "kindest/node:v1.33.1");
        assert_eq!(node_image("1.34.0"), "kindest/node:v1.34.0");
        assert_eq!(node_image("kindest/node:v1.32.0"), "kindest/node:v1.32.0");
    }
}
