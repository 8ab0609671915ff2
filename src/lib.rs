//! labbook turns course Markdown into labs that can be planned, linted, run and published.
//!
//! There is one model: [`Lab`] and its [`Step`]s, parsed from a chapter by [`Lab::parse`] and loaded
//! from a chapter, a folder or an mdBook by [`course::load`]. The preprocessor only renders a `Lab`,
//! the harness only runs one, and the lint only checks one; none of them reads Markdown on its own.
//!
//! # Layers
//!
//! The modules form layers; each uses only the layers before it, so there is no import cycle:
//!
//! 1. [`kinds`] (step kinds, shell dialects), [`tools`] (which programs talk to a cluster, which
//!    commands and `make` targets create one), [`text`] (ids, slugs, truncation), [`error`] and
//!    [`redact`] (the one table of redactions);
//!    [`printed`] (fence info strings, prompts, printed output), [`placeholder`] (values the
//!    reader fills in) and [`dialect`] (mkdocs, Hugo, Killercoda and front matter read as
//!    CommonMark);
//! 2. [`shell`]: the one visitor over brush-parser's syntax tree: commands, assignments,
//!    redirections, heredocs and the files they write; [`similarity`]: printed output matched
//!    against a run's output;
//! 3. [`kubectl`] (the one flag reader, for kubectl, istioctl and kind) and [`yaml`] (YAML with
//!    lines, parsed once);
//! 4. [`annotation`]: `<!-- labbook: … -->` comments;
//! 5. [`model`] (`Lab`, `Step`, [`Lab::key`]) and [`manifest`] ([`Lab::manifests`]);
//! 6. `parse` with [`infer`]: Markdown into a `Lab` ([`Lab::parse`]);
//! 7. [`course`]: chapters, folders and books; [`images`]: the container images a lab or a
//!    course uses, with their file and line;
//! 8. the output contract on top of it: [`plan`], [`report`] and [`snapshot`].
//!
//! `tests/testsuite/layers.rs` checks the order.

pub mod annotation;
pub mod course;
pub mod dialect;
pub mod error;
pub mod images;
pub mod infer;
pub mod kinds;
pub mod kubectl;
pub mod manifest;
pub mod model;
mod parse;
pub mod placeholder;
pub mod plan;
pub mod printed;
pub mod redact;
pub mod report;
pub mod shell;
pub mod similarity;
pub mod snapshot;
pub mod text;
pub mod tools;
pub mod yaml;

pub use annotation::{Annotation, Expect};
pub use course::{Course, CourseConfig};
pub use error::{LoadError, ParseError};
pub use model::Heading;
pub use model::{Dialect, Lab, Reason, SessionInfo, Span, Step, StepKind, Warning};
pub use placeholder::Placeholder;
