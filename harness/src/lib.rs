//! labbook-harness: the `labbook` command line: plan, run, lint, build and doctor.
//!
//! The binary's `main` only calls [`cli::run`]; each subcommand lives in its own module and
//! consumes the one lab model from the `labbook` crate.

pub mod build;
pub mod cli;
pub mod cluster;
pub mod clusters;
pub mod color;
pub mod doctor;
pub mod engine;
pub mod github;
pub mod images;
pub mod init;
pub mod lint;
pub mod partition;
pub mod plan;
pub mod report_merge;
pub mod review;
pub mod snapshots;
pub mod step_filter;
pub mod summary;
