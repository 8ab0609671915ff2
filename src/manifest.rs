//! Layer 5 (the model): the manifests a lab applies, found and parsed once.
//!
//! A manifest is the body of a heredoc fed to `kubectl apply|create|replace -f -` (directly, or
//! through `cat <<EOF | kubectl apply -f -`), or a file a heredoc writes (`cat > app.yaml <<EOF`)
//! that a later `kubectl apply -f app.yaml` may read. [`Lab::manifests`] finds them all and parses
//! each one's YAML once, keeping the line of every node; the lint checks them against schemas and
//! replays them, and the kind backend reads their namespaces.

use crate::kubectl::Invocation;
use crate::model::{Lab, Step};
use crate::shell::Command;
use crate::yaml::{self, Node, YamlError};

/// Where a manifest's text goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Fed on stdin to `kubectl apply|create|replace -f -`.
    Stdin,
    /// Written to this file (as written in the command, `./` included).
    File(String),
}

/// One manifest: a heredoc body, where it goes, and its parsed documents.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The index of the step in [`Lab::steps`].
    pub step: usize,
    /// The index, in the step's [`crate::shell::Analysis::commands`], of the command that applies
    /// the manifest (for [`Target::Stdin`]) or writes it (for [`Target::File`]).
    pub command: usize,
    /// Where the text goes.
    pub target: Target,
    /// The heredoc body, as written.
    pub body: String,
    /// Whether the heredoc's delimiter is quoted, so that the shell expands nothing in the body.
    pub quoted: bool,
    /// The Markdown line of each line of the body (index 0 is body line 1).
    pub lines: Vec<usize>,
    /// The documents (lines within the body), or why the body is not YAML. Empty documents are
    /// left out.
    pub documents: Result<Vec<Node>, YamlError>,
}

impl Manifest {
    /// The Markdown line of a line (1-based) of the body.
    pub fn markdown_line(&self, body_line: usize) -> usize {
        markdown_line(&self.lines, body_line)
    }

    /// Whether the shell expands `$` in the body, so that some values are unknown until it runs.
    pub fn expands(&self) -> bool {
        !self.quoted && self.body.contains('$')
    }

    /// Whether the manifest is written to a file named like YAML (`.yaml`, `.yml`).
    pub fn is_yaml_file(&self) -> bool {
        matches!(&self.target, Target::File(f) if f.ends_with(".yaml") || f.ends_with(".yml"))
    }

    /// The parsed documents; none when the body is not YAML.
    pub fn documents(&self) -> &[Node] {
        self.documents.as_deref().unwrap_or_default()
    }
}

/// The manifests of a lab, in the order of the lab's commands.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Every manifest.
    pub all: Vec<Manifest>,
}

impl Manifests {
    /// The manifest fed on stdin to command `command` of step `step`.
    pub fn stdin(&self, step: usize, command: usize) -> Option<&Manifest> {
        self.all
            .iter()
            .find(|m| m.step == step && m.command == command && m.target == Target::Stdin)
    }

    /// The manifest command `command` of step `step` writes to a file.
    pub fn file(&self, step: usize, command: usize) -> Option<&Manifest> {
        self.all
            .iter()
            .find(|m| m.step == step && m.command == command && matches!(m.target, Target::File(_)))
    }

    /// The last manifest written to `file` (`./` ignored) at or before step `upto`.
    pub fn written(&self, file: &str, upto: usize) -> Option<&Manifest> {
        let wanted = file.trim_start_matches("./");
        self.all.iter().rev().find(|m| {
            m.step <= upto
                && matches!(&m.target, Target::File(f) if f.trim_start_matches("./") == wanted)
        })
    }

    /// The manifests that command `command` of step `step` applies, when it is a
    /// `kubectl apply|create|replace`: its stdin for `-f -`, and for `-f file` the last manifest
    /// the lab wrote to that file by then.
    pub fn applied(&self, lab: &Lab, step: usize, command: usize) -> Vec<&Manifest> {
        let Some(kubectl) = lab
            .steps
            .get(step)
            .and_then(|s| s.analysis.commands.get(command))
            .and_then(applies)
        else {
            return Vec::new();
        };
        kubectl
            .flag_values(&["-f", "--filename"])
            .into_iter()
            .filter_map(|file| match file {
                "-" => self.stdin(step, command),
                file => self.written(file, step),
            })
            .collect()
    }
}

/// The kubectl invocation of a command that applies manifests (`kubectl apply|create|replace`,
/// also wrapped as in `timeout 60 kubectl apply …`).
fn applies(command: &Command) -> Option<Invocation<'_>> {
    Invocation::wrapped(command).filter(|k| matches!(k.sub, "apply" | "create" | "replace"))
}

impl Lab {
    /// The manifests the lab applies or writes, each parsed once. See [`Manifests`].
    pub fn manifests(&self) -> Manifests {
        // Files that some `kubectl apply -f` reads are manifests whatever their name.
        let read_files: Vec<&str> = self
            .steps
            .iter()
            .flat_map(|s| &s.analysis.commands)
            .filter_map(applies)
            .flat_map(|k| k.flag_values(&["-f", "--filename"]))
            .map(|f| f.trim_start_matches("./"))
            .collect();
        let mut all = Vec::new();
        for (s, step) in self.steps.iter().enumerate() {
            let commands = &step.analysis.commands;
            for (c, command) in commands.iter().enumerate() {
                let reads_stdin = applies(command)
                    .is_some_and(|k| k.flag_values(&["-f", "--filename"]).contains(&"-"));
                if reads_stdin {
                    let heredoc_command = if command.heredoc.is_some() {
                        Some(command)
                    } else {
                        // `cat <<EOF | kubectl apply -f -`: the heredoc belongs to `cat`.
                        commands[..c].iter().rev().find(|p| {
                            p.line == command.line
                                && p.program() == "cat"
                                && p.heredoc.is_some()
                                && p.writes.is_empty()
                        })
                    };
                    if let Some(m) = heredoc_command.and_then(|h| manifest(step, h)) {
                        all.push(Manifest {
                            step: s,
                            command: c,
                            target: Target::Stdin,
                            ..m
                        });
                    }
                } else if let Some(file) = command.written_file() {
                    let named = file.ends_with(".yaml")
                        || file.ends_with(".yml")
                        || read_files.contains(&file.trim_start_matches("./"));
                    if named && let Some(m) = manifest(step, command) {
                        all.push(Manifest {
                            step: s,
                            command: c,
                            target: Target::File(file),
                            ..m
                        });
                    }
                }
            }
        }
        Manifests { all }
    }
}

/// The manifest in a command's heredoc, parsed; `step` and `command` are filled in by the caller.
fn manifest(step: &Step, command: &Command) -> Option<Manifest> {
    let heredoc = command.heredoc.as_ref()?;
    let count = heredoc.body.lines().count().max(1);
    let lines = match step.code_lines.iter().position(|l| *l == heredoc.body_line) {
        Some(start) => (0..count)
            .map(|i| {
                step.code_lines
                    .get(start + i)
                    .copied()
                    .unwrap_or(heredoc.body_line + i)
            })
            .collect(),
        None => (0..count).map(|i| heredoc.body_line + i).collect(),
    };
    Some(Manifest {
        step: 0,
        command: 0,
        target: Target::Stdin,
        body: heredoc.body.clone(),
        quoted: heredoc.quoted,
        lines,
        documents: yaml::parse_documents(&heredoc.body),
    })
}

/// The Markdown line of a line (1-based) of a body whose lines sit at `lines` (index 0 is body
/// line 1); a line past the end maps to the body's last line.
pub fn markdown_line(lines: &[usize], body_line: usize) -> usize {
    lines
        .get(body_line.saturating_sub(1))
        .or(lines.last())
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(code: &str) -> Lab {
        Lab::parse("lab.md", &format!("# Lab\n\n```bash\n{code}\n```\n")).expect("parses")
    }

    #[test]
    fn manifests_are_found_with_their_target_and_lines() {
        struct Case {
            name: &'static str,
            code: &'static str,
            /// (target, kinds of the documents, Markdown line of the first body line)
            want: &'static [(&'static str, &'static [&'static str], usize)],
        }
        let cases = [
            Case {
                name: "stdin heredoc",
                code: "kubectl apply -f - <<EOF\nkind: Pod\n---\nkind: Service\nEOF",
                want: &[("-", &["Pod", "Service"], 5)],
            },
            Case {
                name: "cat piped into kubectl",
                code: "cat <<'EOF' | kubectl create -f -\nkind: Namespace\nEOF",
                want: &[("-", &["Namespace"], 5)],
            },
            Case {
                name: "wrapped kubectl",
                code: "timeout 30 kubectl apply -f - <<EOF\nkind: Pod\nEOF",
                want: &[("-", &["Pod"], 5)],
            },
            Case {
                name: "yaml files, and other files only when applied",
                code: "cat > a.yaml <<EOF\nkind: A\nEOF\ncat > notes.txt <<EOF\nhello\nEOF\ntee b.json <<EOF\nkind: B\nEOF\nkubectl apply -f ./b.json",
                want: &[("a.yaml", &["A"], 5), ("b.json", &["B"], 11)],
            },
            Case {
                name: "not applied, not written",
                code: "kubectl get pods\ncat <<EOF\nkind: Pod\nEOF\nkubectl apply -f app.yaml",
                want: &[],
            },
        ];
        for case in cases {
            let found: Vec<(String, Vec<String>, usize)> = lab(case.code)
                .manifests()
                .all
                .iter()
                .map(|m| {
                    let target = match &m.target {
                        Target::Stdin => "-".to_string(),
                        Target::File(f) => f.clone(),
                    };
                    let kinds = m
                        .documents()
                        .iter()
                        .filter_map(|d| d.get("kind").and_then(Node::as_str))
                        .collect();
                    (target, kinds, m.markdown_line(1))
                })
                .collect();
            let want: Vec<(String, Vec<String>, usize)> = case
                .want
                .iter()
                .map(|(t, k, l)| (t.to_string(), k.iter().map(|s| s.to_string()).collect(), *l))
                .collect();
            assert_eq!(found, want, "{}", case.name);
        }
    }

    #[test]
    fn applied_resolves_stdin_and_files_written_earlier() {
        let lab = Lab::parse(
            "lab.md",
            "# Lab\n\n```bash\ncat > vs.yaml <<EOF\nkind: Old\nEOF\n```\n\n```bash\nkubectl apply -f vs.yaml -f - <<EOF\nkind: Stdin\nEOF\n```\n\n```bash\ncat > vs.yaml <<EOF\nkind: New\nEOF\nkubectl apply -f ./vs.yaml\n```\n",
        )
        .expect("parses");
        let manifests = lab.manifests();
        let kinds = |step: usize, command: usize| -> Vec<String> {
            manifests
                .applied(&lab, step, command)
                .iter()
                .flat_map(|m| m.documents())
                .filter_map(|d| d.get("kind").and_then(Node::as_str))
                .collect()
        };
        assert_eq!(kinds(1, 0), ["Old", "Stdin"]);
        assert_eq!(kinds(2, 1), ["New"]);
        assert!(kinds(0, 0).is_empty(), "cat applies nothing");
    }

    #[test]
    fn invalid_yaml_keeps_its_error_and_line() {
        let lab = lab("kubectl apply -f - <<EOF\nkind: Pod\n  bad: [\nEOF");
        let manifests = lab.manifests();
        let error = manifests.all[0].documents.as_ref().expect_err("not YAML");
        assert!(error.line >= 1);
        assert!(manifests.all[0].documents().is_empty());
    }
}
