//! The bridge between a topology and the `certs` crate: which clusters get
//! CA sets and which names the host certificate carries.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use certs::{Pki, PkiSpec};
use topology::Topology;

/// Names every host certificate carries besides the host's address on the
/// node network: the CLI reaches the daemon's services on loopback.
const LOOPBACK_SANS: [&str; 2] = ["127.0.0.1", "localhost"];

/// The PKI inputs for `topology`, with the host's address resolved against
/// the declared node network.
pub fn spec_for(topology: &Topology) -> PkiSpec {
    let mut host_sans: Vec<String> = Vec::new();
    if let Ok(resolved) = topology.resolve(None) {
        host_sans.push(resolved.host_agent_address().to_string());
    }
    host_sans.extend(LOOPBACK_SANS.iter().map(|s| s.to_string()));
    PkiSpec {
        clusters: topology.clusters().iter().map(|c| c.name.clone()).collect(),
        host_sans,
    }
}

/// Opens the PKI under `$HOSTCTL_HOME`, creating whatever the topology needs
/// and is missing; damaged material fails with [`Exit::Pki`].
pub fn ensure_pki(ctx: &Context, topology: &Topology) -> anyhow::Result<Pki> {
    Pki::open_or_init(ctx.home.root(), &spec_for(topology)).map_err(|e| coded(Exit::Pki, e))
}
