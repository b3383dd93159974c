//! The cloud-init crate's integration tests, one binary: golden user-data,
//! network config, round trips, the upstream schema, the user-data size budget.
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod common;
mod golden;
mod network;
mod roundtrip;
mod schema;
mod size;
