//! The lab model's integration suite: fixture plans as insta snapshots, and no panic on mutated
//! or random input.

mod layers;
mod no_panic;
mod plan;
mod support;
