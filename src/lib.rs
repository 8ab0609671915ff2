//! labbook turns course Markdown into labs that can be planned, linted, run and published.
//!
//! There is one model: [`Lab`] and its [`Step`]s, parsed from a chapter by [`Lab::parse`] and loaded
//! from a chapter, a folder or an mdBook by [`course::load`]. The preprocessor only renders a `Lab`,
//! the harness only runs one, and the lint only checks one; none of them reads Markdown on its own.

pub mod annotation;
pub mod course;
pub mod dialect;
pub mod error;
pub mod infer;
pub mod kubectl;
pub mod model;
mod parse;
pub mod placeholder;
pub mod plan;
pub mod printed;
pub mod report;
pub mod shell;
pub mod snapshot;

pub use annotation::{Annotation, Expect};
pub use course::{Course, CourseConfig};
pub use error::{LoadError, ParseError};
pub use model::Heading;
pub use model::{Dialect, Lab, Reason, SessionInfo, Span, Step, StepKind, Warning};
pub use placeholder::Placeholder;
