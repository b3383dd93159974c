//! "Resolve once": the one resolved view of a home that every command uses —
//! the topology, the node network it is resolved against, and so every
//! address (nodes, host agent, MetalLB pools) and the host certificate's
//! names.
//!
//! Before this module, the topology was resolved in about eleven places
//! against three subnet sources (the declared network, the provider's
//! report, a `--subnet` flag), so one run could render node configs that
//! dial 192.168.252.1 while the host certificate named 192.168.64.1. Now:
//!
//! - `hostctl up` asks the provider which network its machines really use
//!   ([`Workspace::from_provider`]) and records the answer in
//!   `$HOSTCTL_HOME/network.json`;
//! - every other command ([`Workspace::recorded`]) resolves against that
//!   record, so `status`, `logs`, `etcd`, `kubeconfig`, `doctor`, `render`
//!   and the daemon see exactly the addresses `up` gave the nodes, without
//!   asking the provider again (a Multipass call per command would also be
//!   slow, and a stopped machine would change the answer);
//! - `render --subnet` ([`Workspace::explicit`]) previews another one.
//!
//! With nothing recorded, the declared network is used.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::provider::Provider;
use crate::state_file::{StateDocument, StateFileError};
use crate::topology_source::{self, TopologySource};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use topology::{Resolved, Topology};

/// The record `up` keeps of the network it resolved against.
pub const NETWORK_FILE: &str = "network.json";

/// `$HOSTCTL_HOME/network.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The node network the provider reported (absent: the declared one).
    pub subnet: Option<Ipv4Net>,
    /// Which provider reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl StateDocument for NetworkRecord {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str = "remove it; the next `hostctl up` asks the provider again";
}

/// Where the subnet in use came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubnetOrigin {
    /// Reported by the named provider during this command.
    Provider(String),
    /// Recorded by an earlier `up` (with the provider that reported it).
    Recorded(Option<String>),
    /// Given on the command line.
    Explicit,
    /// The topology's `network.cidr`.
    Declared,
}

/// One command's resolved view of the home. See the module documentation.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub source: TopologySource,
    pub topology: Topology,
    pub resolved: Resolved,
    pub origin: SubnetOrigin,
    record_path: PathBuf,
}

impl Workspace {
    /// For commands that only look (everything but `up`): the network the
    /// last `up` recorded, else the declared one. Invalid topologies exit
    /// with [`Exit::InvalidTopology`].
    pub fn recorded(ctx: &Context) -> anyhow::Result<Workspace> {
        Self::explicit(ctx, None)
    }

    /// `render --subnet`: the given subnet, else as [`Workspace::recorded`].
    pub fn explicit(ctx: &Context, subnet: Option<Ipv4Net>) -> anyhow::Result<Workspace> {
        let (source, topology) = load(ctx)?;
        let record_path = ctx.home.root().join(NETWORK_FILE);
        let (subnet, origin) = match subnet {
            Some(subnet) => (Some(subnet), SubnetOrigin::Explicit),
            None => match read_record(&record_path)? {
                NetworkRecord {
                    subnet: Some(subnet),
                    provider,
                } => (Some(subnet), SubnetOrigin::Recorded(provider)),
                NetworkRecord { subnet: None, .. } => (None, SubnetOrigin::Declared),
            },
        };
        Self::resolve(source, topology, subnet, origin, record_path)
    }

    /// For `up`: asks the provider which network its machines use (see
    /// [`Provider::subnet`]); [`Workspace::record`] then keeps the answer.
    /// `topology` is the one `up` already loaded (to know its machines).
    pub async fn from_provider(
        ctx: &Context,
        topology: Topology,
        provider: &dyn Provider,
    ) -> anyhow::Result<Workspace> {
        let source = TopologySource::locate(ctx.topology.as_deref());
        let subnet = provider
            .subnet()
            .await
            .map_err(crate::commands::up::provider_exit)?;
        let origin = match subnet {
            Some(_) => SubnetOrigin::Provider(provider.name().to_owned()),
            None => SubnetOrigin::Declared,
        };
        let record_path = ctx.home.root().join(NETWORK_FILE);
        Self::resolve(source, topology, subnet, origin, record_path)
    }

    fn resolve(
        source: TopologySource,
        topology: Topology,
        subnet: Option<Ipv4Net>,
        origin: SubnetOrigin,
        record_path: PathBuf,
    ) -> anyhow::Result<Workspace> {
        let resolved = topology.resolve(subnet).map_err(|d| {
            coded(
                Exit::InvalidTopology,
                anyhow::anyhow!(
                    "{} cannot be resolved against {}:\n{d}",
                    source.describe(),
                    subnet.map_or_else(|| "its declared network".to_owned(), |s| s.to_string())
                ),
            )
        })?;
        Ok(Workspace {
            source,
            topology,
            resolved,
            origin,
            record_path,
        })
    }

    /// The node network in use.
    pub fn subnet(&self) -> Ipv4Net {
        self.resolved.subnet()
    }

    /// Writes `network.json` (`up`, after the provider answered), so that
    /// later commands resolve exactly as this one did.
    pub fn record(&self, provider: &str) -> Result<(), StateFileError> {
        let record = NetworkRecord {
            subnet: Some(self.subnet()),
            provider: Some(provider.to_owned()),
        };
        record.save(&self.record_path)
    }

    /// The topology file, when it is one (the daemon is told which).
    pub fn topology_file(&self) -> Option<&Path> {
        match &self.source {
            TopologySource::File(path) => Some(path.as_path()),
            TopologySource::BuiltIn => None,
        }
    }
}

fn load(ctx: &Context) -> anyhow::Result<(TopologySource, Topology)> {
    let topology = topology_source::load_checked(ctx.topology.as_deref())?;
    Ok((TopologySource::locate(ctx.topology.as_deref()), topology))
}

/// The recorded network; a damaged record is a clear error, never a guess.
pub fn read_record(path: &Path) -> anyhow::Result<NetworkRecord> {
    NetworkRecord::load(path).map_err(|e| coded(Exit::Precondition, e))
}
