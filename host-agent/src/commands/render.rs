//! `hostctl render --out DIR`: writes everything hostctl would apply, for
//! review and for outside checkers. The layout is part of the interface:
//! `DIR/topology.yaml` (resolved: defaults filled in, addresses concrete),
//! and the Kubernetes configuration under `DIR/nodes/` and `DIR/clusters/`
//! (see [`crate::cluster_config::render_all`]), and each node's cloud-init
//! `DIR/nodes/<node>/user-data` (see `render/user_data.rs`).

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::fsutil::write_atomic;
use crate::workspace::Workspace;
use ipnet::Ipv4Net;
use std::path::PathBuf;

mod user_data;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write into (created if missing; files are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Resolve host numbers against this subnet instead of the one the last
    /// `up` recorded (else the declared one), e.g. 192.168.252.0/24.
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<Ipv4Net>,

    /// Embed this node-agent binary in each user-data (default: a marked
    /// placeholder; `make node-agent-dist` builds the shipped one).
    #[arg(long, value_name = "PATH")]
    pub node_agent_bin: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::explicit(ctx, args.subnet)?;
    let resolved = workspace.resolved;
    crate::topology_source::print_warnings(resolved.warnings());
    let path = args.out.join("topology.yaml");
    write_atomic(&path, resolved.to_yaml().as_bytes(), 0o644)?;
    crate::stdout::line(format_args!("{}", path.display()))?;
    render_kubernetes(ctx, &resolved, args)?;
    // The fit report is in DIR/fit.txt; its warnings also go to stderr,
    // where a reviewer running render sees them.
    for finding in crate::addons::fit::report(resolved.topology()).warnings() {
        eprintln!("{finding}");
    }
    print_buffers(&resolved);
    Ok(Exit::Ok)
}

/// C2 in numbers: how long each app cluster's shippers hold what mgmt
/// cannot take, derived from the rendered settings.
fn print_buffers(resolved: &topology::Resolved) {
    use crate::addons::observability::{alloy, buffer::APP_AGENT};
    let mgmt_exists = resolved.topology().mgmt_cluster().is_some();
    for cluster in resolved.topology().clusters() {
        let ships = crate::addons::observability::prometheus::AGENT.applies(
            cluster.role,
            crate::addons::Available::new(mgmt_exists, false),
        );
        if ships {
            eprintln!(
                "note: {}: {}; logs: Alloy retries a batch {} times",
                cluster.name,
                APP_AGENT.explain(),
                alloy::retries_for(APP_AGENT.buffered_outage())
            );
        }
    }
}

/// Writes the kubeadm configs, Cilium values and manifests. The PKI is
/// used when it exists (real discovery pins and Cluster Mesh CA) and never
/// created here: rendering must not mint CAs as a side effect.
fn render_kubernetes(
    ctx: &Context,
    resolved: &topology::Resolved,
    args: &Args,
) -> anyhow::Result<()> {
    let out = args.out.as_path();
    let pki = match certs::Pki::open(ctx.home.root()) {
        Ok(pki) => Some(pki),
        Err(certs::PkiError::NotInitialised { path }) => {
            eprintln!(
                "warning: no PKI at {}: kubeadm CA pins and the Cluster Mesh CA are placeholders (`hostctl up` creates the PKI)",
                path.display()
            );
            None
        }
        Err(e) => return Err(coded(Exit::Pki, e)),
    };
    // The Git server's certificate is pinned in Argo CD's values once the
    // daemon has made it; before that the values carry no pin.
    let platform = crate::gitops::platform_source(resolved, ctx.home.root())?;
    for path in crate::cluster_config::render_all(resolved, pki.as_ref(), &platform, out)? {
        crate::stdout::line(format_args!("{}", path.display()))?;
    }
    // Cloud-init user-data per node (see `render/user_data.rs`).
    for path in user_data::write_all(
        resolved,
        pki.as_ref().map(|p| p.agent_ca_pem()),
        args.node_agent_bin.as_deref(),
        out,
    )? {
        crate::stdout::line(format_args!("{}", path.display()))?;
    }
    Ok(())
}
