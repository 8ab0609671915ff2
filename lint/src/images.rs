//! Floating image tags: `:latest`, or no tag (which means `latest`), in a lab's commands, its
//! heredoc manifests and the manifest files it applies.
//!
//! A floating tag makes the lab run whatever the registry serves that day, so its accepted
//! snapshots and the book's "verified" banner stop meaning anything. The images come from
//! [`labbook::images::of_lab`], the one reader `labbook images` and `run --preload` use too.

use super::{Severity, Sink};
use labbook::course::Course;
use labbook::images::{Tag, of_lab};
use labbook::model::Lab;

/// Warns once per floating reference, at its Markdown line (for a manifest file, at the
/// command that applies it, naming the file's own line).
pub(crate) fn check(course: &Course, lab: &Lab, sink: &mut Sink<'_>) {
    for used in of_lab(course, lab) {
        let what = match used.tag {
            Tag::Latest => "the `latest` tag",
            Tag::Untagged => "no tag, which means `latest`",
            Tag::Pinned | Tag::Digest | Tag::Dynamic => continue,
        };
        let (line, place) = match &used.applied_at {
            Some(applied) => (
                applied.line,
                format!(" (in {}:{})", used.file.display(), used.line),
            ),
            None => (used.line, String::new()),
        };
        sink.emit(
            "image-floating-tag",
            Severity::Warning,
            line,
            format!(
                "image `{}`{place} has {what}: the lab runs whatever the registry serves that day",
                used.image
            ),
            Some("pin a version tag (or a digest), and list it in `labbook images`".into()),
        );
    }
}
