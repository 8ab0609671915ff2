//! The harness's integration suite: the `labbook` binary end to end (plan, lint, run, build,
//! doctor), the kind backend against test doubles, the CI scripts, and the built book in a
//! browser. Every test starts the binary through [`support::Labbook`].

mod browser;
mod build;
mod ci_scripts;
mod color;
mod doctor;
mod ecosystem;
mod hostile_fs;
mod hostile_terminal;
mod kind_backend;
mod lint;
mod plan;
mod printed;
mod run;
mod run_kind;
mod scale;
mod support;
