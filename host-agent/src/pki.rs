//! The bridge between a workspace and the `certs` crate: which clusters get
//! CA sets and which names the host certificate carries.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use certs::{Pki, PkiSpec};
use topology::Resolved;

/// Names every host certificate carries besides the host's address on the
/// node network: the CLI reaches the daemon's services on loopback.
const LOOPBACK_SANS: [&str; 2] = ["127.0.0.1", "localhost"];

/// The PKI inputs for a resolved topology: the host certificate names the
/// host address the nodes really dial (the workspace's, resolved against
/// the provider's network), never the declared one.
pub fn spec_for(resolved: &Resolved) -> PkiSpec {
    let mut host_sans = vec![resolved.host_agent_address().to_string()];
    host_sans.extend(LOOPBACK_SANS.iter().map(|s| s.to_string()));
    PkiSpec {
        clusters: resolved
            .topology()
            .clusters()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        host_sans,
    }
}

/// Opens the existing PKI for a command that must not create one. A missing
/// PKI is a precondition (`hostctl up` or `init` has not run: exit 5), not
/// damage (exit 4).
pub fn open_existing(ctx: &Context) -> anyhow::Result<Pki> {
    Pki::open(ctx.home.root()).map_err(pki_exit)
}

/// The exit code of a PKI failure: [`Exit::Precondition`] when there is no
/// PKI yet, else [`Exit::Pki`].
pub fn pki_exit(e: certs::PkiError) -> anyhow::Error {
    match e {
        certs::PkiError::NotInitialised { .. } => coded(Exit::Precondition, e),
        other => coded(Exit::Pki, other),
    }
}

/// Opens the PKI under `$HOSTCTL_HOME`, creating whatever the topology needs
/// and is missing, and re-issuing the host leaf when the names nodes dial
/// changed (see [`certs::HostSanChange`]); damaged material fails with
/// [`Exit::Pki`].
pub fn ensure_pki(ctx: &Context, resolved: &Resolved) -> anyhow::Result<Pki> {
    Pki::open_or_init(ctx.home.root(), &spec_for(resolved)).map_err(|e| coded(Exit::Pki, e))
}
