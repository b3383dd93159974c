//! `hostctl recover <scenario>`: the spec's recovery scenarios (§10.3) as
//! commands (the checks that need no cluster are in [`crate::recover`]).
//! Each prints `[n/N] <step> … done in <t>`, then the total against the
//! scenario's RTO; a rerun after a failure continues from the step that
//! failed with the source the first run chose ([`runner`]).

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::RecoverError;

mod cluster;
mod etcd;
mod kube;
mod node;
mod resource;
mod runner;
mod snapshot;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// etcd data damage (RTO 30 min): restore the cluster's newest (or a
    /// named) etcd snapshot, from the host or the object store, and wait
    /// for its API server.
    Etcd(etcd::EtcdArgs),
    /// A lost control-plane node (RTO 1 h): recreate its machine with the
    /// same name, address and PKI, restore the cluster's newest (or a
    /// named) etcd snapshot onto it before kubeadm starts the control
    /// plane, and finish the cluster with `up`'s steps; workers keep their
    /// certificates.
    Node(node::NodeArgs),
    /// A deleted resource (RTO 5 min): sync it through the Argo CD
    /// Application that owns it, else restore it from Velero's newest (or
    /// a named) backup, and check it is back.
    Resource(resource::ResourceArgs),
    /// A lost cluster (RTO 2 h): re-provision it with the same PKI and
    /// addresses, its Velero location read-only, restore the daily
    /// schedule's newest (or a named) backup, then Velero read-write and
    /// the cluster back to GitOps; for mgmt, Vault first.
    Cluster(cluster::ClusterArgs),
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &args.command {
        Sub::Etcd(a) => crate::cli::block_on(etcd::recover_etcd(ctx, a))?,
        Sub::Node(a) => crate::cli::block_on(node::recover_node(ctx, a))?,
        Sub::Resource(a) => crate::cli::block_on(resource::recover_resource(ctx, a))?,
        Sub::Cluster(a) => crate::cli::block_on(cluster::recover_cluster(ctx, a))?,
    }
}

/// A recovery's refusals (another cluster's snapshot, a copy that fails its
/// checks, none to restore) exit with [`Exit::Precondition`]; the store or
/// the disk failing is a plain failure.
fn refusal(e: RecoverError) -> anyhow::Error {
    match e {
        RecoverError::WrongCluster { .. }
        | RecoverError::Mismatch { .. }
        | RecoverError::BadMetadata { .. }
        | RecoverError::Conflict { .. }
        | RecoverError::NoSnapshot { .. } => coded(Exit::Precondition, e),
        other => other.into(),
    }
}
