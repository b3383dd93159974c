//! node-agent's integration tests, one binary: a node agent against the stand-
//! in host agent (`test_support::node_harness`), a real etcd, the kubeadm
//! stand-in.
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod checks;
mod enrolment;
mod etcd_schedule;
mod etcd_seed;
mod etcd_snapshot_restore;
mod etcd_support;
mod kubeadm_init;
mod kubeadm_join;
mod kubeadm_reset;
mod kubeadm_support;
mod node_service;
mod prereq_mirrors;
mod prereq_service;
mod prereq_steps;
mod process;
mod renewal;
mod reports;
