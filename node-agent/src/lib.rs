//! hostctl's node agent: enrols with the host, reports health on its own
//! initiative, and serves typed operations over mutual TLS.
//!
//! A library as well as a binary so the integration tests and the
//! benchmark drive the same code the binary runs. The host agent must not
//! depend on it (agents never depend on each other); the configuration
//! format is documented in the README instead.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]

pub mod agent;
pub mod backoff;
pub mod config;
pub mod enrol;
pub mod etcd;
pub mod exec;
pub mod host_link;
pub mod identity;
pub mod kubeadm;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod node_tls;
pub mod prereq;
pub mod renewal;
pub mod report;
pub mod service;
pub mod state;
