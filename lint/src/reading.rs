//! How the chapter was read: placeholders left for the reader, fences never closed, snippet includes
//! whose file is missing.
//!
//! These are not errors in the lab's logic, but each one stops `labbook run` or makes the chapter
//! read differently from what its author meant, so the author hears about each once, by name.

use std::path::{Path, PathBuf};

use super::{Severity, Sink};
use labbook::course::Course;
use labbook::model::Lab;

/// Runs the checks on one lab.
pub(crate) fn check(course: &Course, lab: &Lab, sink: &mut Sink<'_>) {
    for warning in &lab.warnings {
        sink.emit(
            "unclosed-fence",
            Severity::Warning,
            warning.line,
            warning.message.clone(),
            None,
        );
    }
    placeholders(course, lab, sink);
    snippets(lab, sink);
}

/// One diagnostic per step that holds placeholders the book does not fill.
fn placeholders(course: &Course, lab: &Lab, sink: &mut Sink<'_>) {
    for (index, step) in lab.steps.iter().enumerate() {
        if !step.kind.runs() {
            continue;
        }
        let mut names: Vec<&str> = Vec::new();
        for p in &step.placeholders {
            let filled =
                labbook::model::placeholder_value(lab, index, &course.config.variables, &p.name)
                    .is_some();
            if !filled && !names.contains(&p.text.as_str()) {
                names.push(&p.text);
            }
        }
        let Some(first) = step.placeholders.first() else {
            continue;
        };
        if names.is_empty() {
            continue;
        }
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        sink.emit(
            "placeholder",
            Severity::Warning,
            first.line,
            format!("the reader must replace {list} before running this block"),
            Some(
                "give values under `[preprocessor.labbook] variables` in book.toml, or with a \
                 `var.NAME=VALUE` annotation; `labbook run` refuses the step until then"
                    .into(),
            ),
        );
    }
}

/// The folders an mkdocs snippet path may be relative to: the chapter's folder and every folder
/// above it (mkdocs resolves from the project root or the docs folder).
fn snippet_bases(chapter: &Path) -> Vec<PathBuf> {
    chapter
        .parent()
        .map(|dir| dir.ancestors().map(Path::to_path_buf).collect())
        .unwrap_or_default()
}

fn snippets(lab: &Lab, sink: &mut Sink<'_>) {
    let bases = snippet_bases(&lab.path);
    for snippet in &lab.snippets {
        let found = bases.iter().any(|base| {
            base.join(&snippet.file).is_file() || base.join("docs").join(&snippet.file).is_file()
        });
        if !found {
            sink.emit(
                "snippet-missing",
                Severity::Warning,
                snippet.line,
                format!(
                    "snippet `{}` is not found from the chapter's folder or the folders above it",
                    snippet.file
                ),
                Some(
                    "mkdocs would insert nothing here (or fail the build with `check_paths`)"
                        .into(),
                ),
            );
        }
    }
}
