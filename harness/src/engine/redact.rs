//! Redactions live in the model crate ([`labbook::redact`]), so that the harness, the printed-output
//! check and the lint share one table; the engine uses them from here.

pub use labbook::redact::{RedactError, Redactor, align_tables};
