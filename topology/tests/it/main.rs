//! The topology crate's integration tests, one binary: the corpus of bad files,
//! the default topology, mirrors, several environments, no panics, resolution,
//! telemetry and observability settings.
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod corpus;
mod default;
mod mirrors;
mod multiple;
mod no_panic;
mod observability;
mod resolve;
mod telemetry;
