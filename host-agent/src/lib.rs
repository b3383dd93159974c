//! The host agent: reads the topology, owns the PKI, drives the provider,
//! serves the node agents and answers the CLI.
//!
//! Module map (follow the names):
//! - [`addons`]: the platform add-on catalogue (Argo CD, …): render, install, readiness, fit.
//! - [`gitops`]: the platform Git repository hostctl publishes to and serves (HTTPS, read-only) to Argo CD.
//! - [`cli`]: argument parsing and dispatch; one file per command under [`commands`].
//! - [`home`]: the `$HOSTCTL_HOME` layout.
//! - [`workspace`]: "resolve once": the topology resolved against the network `up` recorded, for every command.
//! - [`environment`]: every environment variable hostctl reads, documented once.
//! - [`logging`]: the stderr logger every command installs (`HOSTCTL_LOG`).
//! - [`output`]: `-o table|json|yaml` rendering shared by every command.
//! - [`exit`]: the documented exit codes.
//! - [`provider`]: the machine providers behind one trait.
//! - [`agent_plane`]: ports and limits the daemon, CLI and providers share.
//! - [`daemon`]: `hostctl daemon` (Host, Enrolment and Control services) and its client.
//! - [`store`]: the daemon's crash-safe report store.
//! - [`snapshots`]: etcd snapshots on the host (store, sink, node calls).
//! - [`node_config`]: the node agent's config file as the host renders it.
//! - [`cluster_config`]: the Kubernetes configuration rendered on the host (kubeadm, Cilium values, manifests).
//! - [`cluster_api`]: talking to the clusters' API servers (kube-rs): kubeconfigs, readiness, server-side apply.
//! - [`helm`]: the Helm CLI behind a narrow interface (Cilium).
//! - [`doctor`]: `hostctl doctor`'s checks (host, provider, network).
//! - [`up_trace`]: tracing of `up` (one trace, node spans via the daemon).
//! - [`exec`]: the one door for running other programs.
//! - [`orchestrator`]: `up` as a graph of persisted, parallel steps.
//! - [`mirrors`]: Harbor and Nexus on the host's Docker (`mirrors: { managed: true }`).
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]

pub mod addons;
pub mod agent_plane;
pub mod charts;
pub mod cli;
pub mod cluster_api;
pub mod cluster_config;
pub mod commands;
pub mod daemon;
pub mod doctor;
pub mod environment;
pub mod exec;
pub mod exit;
pub mod fsutil;
pub mod gitops;
pub mod helm;
pub mod home;
pub mod host;
pub mod logging;
pub mod mirrors;
pub mod node_config;
pub mod orchestrator;
pub mod output;
pub mod pki;
pub mod provider;
pub mod recover;
pub mod secrets;
pub mod snapshots;
pub mod state_file;
pub mod stdout;
pub mod storage;
pub mod store;
pub mod topology_source;
pub mod up_trace;
pub mod verify;
pub mod workspace;
