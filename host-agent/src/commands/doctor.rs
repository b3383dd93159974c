//! `hostctl doctor [--provider P]`: checks the host, the provider and the
//! topology before `up` (see [`crate::doctor`]); exits non-zero when any
//! check fails.

use crate::cli::{Context, coded};
use crate::doctor::{Check, Status, host, leases, linux, machines, network};
use crate::exit::Exit;
use crate::output::{self, Table};
use crate::provider::local::{LocalOptions, LocalProvider};
use crate::provider::{self, Provider, ProviderKind};
use crate::topology_source::load_checked;
use std::collections::BTreeSet;
use std::net::SocketAddr;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The provider to check; defaults to the one recorded by the last
    /// `up`, else Multipass.
    #[arg(long, value_enum)]
    provider: Option<ProviderKind>,
    /// QEMU: the base image to check (default: `$HOSTCTL_QEMU_IMAGE`).
    #[arg(long, value_name = "PATH")]
    image: Option<std::path::PathBuf>,
    /// The node agent `up` would embed (default: beside `hostctl`).
    #[arg(long, value_name = "PATH")]
    node_agent_bin: Option<std::path::PathBuf>,
    /// Only the nodes of this cluster.
    #[arg(long, value_name = "CLUSTER")]
    only: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    crate::cli::block_on(doctor_checks(ctx, args))?
}

async fn doctor_checks(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let home = ctx.home.root();
    // What `up` would use; a non-root Linux user is shown the local
    // provider's needs (root) rather than Multipass's.
    let kind = provider::choose(args.provider, home)?.unwrap_or(if cfg!(target_os = "macos") {
        ProviderKind::Multipass
    } else {
        ProviderKind::Local
    });
    let topology = load_checked(ctx.topology.as_deref())?;
    let nodes: Vec<String> = topology
        .nodes()
        .iter()
        .filter(|n| args.only.as_deref().is_none_or(|c| n.cluster == c))
        .map(|n| n.name.clone())
        .collect();
    let names: BTreeSet<String> = nodes.iter().cloned().collect();
    let mut checks = vec![Check::ok("provider", kind.as_str())];
    let (subnet, others, dhcp) = match kind {
        ProviderKind::Multipass => {
            let found = machines::multipass(&names).await;
            checks.extend(found.checks);
            (found.subnet, found.others, true)
        }
        ProviderKind::Local => {
            checks.extend(host::local_preconditions());
            let local = LocalProvider::new(home, LocalOptions::default());
            match local.list().await {
                Ok(vms) => checks.push(machines::existing(&vms, &names)),
                Err(e) => checks.push(Check::warn("machines", e.to_string())),
            }
            (None, Vec::new(), false)
        }
        ProviderKind::Qemu => {
            let image = args
                .image
                .clone()
                .or_else(|| crate::environment::QEMU_IMAGE.os().map(Into::into));
            checks.extend(linux::qemu(image.as_deref()).await);
            checks.push(linux::agent_binary(args.node_agent_bin.as_deref()));
            checks.push(host::memory(&topology, &nodes));
            let qemu = provider::open(kind, home, provider::ProviderOptions::default())?;
            match qemu.list().await {
                Ok(vms) => checks.push(machines::existing(&vms, &names)),
                Err(e) => checks.push(Check::warn("machines", e.to_string())),
            }
            (None, Vec::new(), false)
        }
    };
    match topology.resolve(subnet) {
        Ok(resolved) => {
            checks.extend(network::checks(&resolved, subnet, dhcp, &others));
            checks.extend(leases::check(&resolved, kind));
            checks.extend(moved_since_up(home, subnet));
            if matches!(kind, ProviderKind::Local | ProviderKind::Qemu) {
                let bridge = match kind {
                    ProviderKind::Qemu => crate::provider::qemu::NetNames::for_home(home).bridge(),
                    _ => crate::provider::local::Names::for_home(home).bridge(),
                };
                checks.push(linux::subnet_in_use(resolved.subnet(), &bridge).await);
            }
            let listen = resolved.host_agent_listen();
            let enrol_port = crate::agent_plane::enrol_port_for(listen.port());
            let mut ports = vec![listen, SocketAddr::new(listen.ip(), enrol_port)];
            // The daemon's default also binds loopback (daemon::DaemonConfig).
            if resolved.host_agent_listen_is_default() {
                let lo = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
                ports.push(SocketAddr::new(lo, listen.port()));
                ports.push(SocketAddr::new(lo, enrol_port));
            }
            let own_daemon = crate::daemon::lifecycle::PidLock::is_held(home).unwrap_or(false);
            checks.push(host::ports(&ports, own_daemon));
            if topology.managed_backups() {
                let storage = crate::commands::storage::real(ctx, &resolved);
                checks.extend(crate::doctor::storage::checks(&storage).await);
            }
        }
        Err(d) => checks.push(Check::fail(
            "subnet",
            format!("the topology cannot be resolved: {d}"),
        )),
    }
    // Local nodes are processes: the VM sizes in the topology do not apply.
    if kind == ProviderKind::Multipass {
        checks.push(host::memory(&topology, &nodes));
        checks.push(host::disk(&topology, &nodes, &multipass_storage()));
    }

    if topology.managed_mirrors() {
        checks.extend(mirror_checks(ctx, &topology, &nodes).await);
    }

    let text = output::render(ctx.output, &checks, || table(&checks))?;
    crate::stdout::write(&text)?;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        return Err(coded(
            Exit::Precondition,
            anyhow::anyhow!("{failed} check(s) failed"),
        ));
    }
    Ok(Exit::Ok)
}

/// Where Multipass keeps instance disks by default.
fn multipass_storage() -> std::path::PathBuf {
    if cfg!(target_os = "macos") {
        "/var/root/Library/Application Support/multipassd".into()
    } else {
        "/var/snap/multipass/common".into()
    }
}

fn table(checks: &[Check]) -> Table {
    let mut t = Table::new(["CHECK", "STATUS", "MESSAGE"]);
    for c in checks {
        t.row([
            c.name.clone(),
            c.status.as_str().to_owned(),
            c.message.clone(),
        ]);
    }
    t
}

/// The provider's network against the one the last `up` recorded: nodes
/// launched for the old one hold static addresses there, so they must be
/// recreated (`hostctl down` then `up`).
fn moved_since_up(home: &std::path::Path, subnet: Option<ipnet::Ipv4Net>) -> Option<Check> {
    let recorded = crate::workspace::read_record(&home.join(crate::workspace::NETWORK_FILE))
        .ok()?
        .subnet?;
    let now = subnet?;
    (recorded != now).then(|| {
        Check::fail(
            "network-moved",
            format!(
                "the last `up` placed the nodes on {recorded}, the provider now uses {now}: run `hostctl down` and `hostctl up` to recreate them on the new network"
            ),
        )
    })
}

/// The managed mirrors' checks (Docker, ports, memory beside the nodes).
async fn mirror_checks(
    ctx: &Context,
    topology: &topology::Topology,
    nodes: &[String],
) -> Vec<Check> {
    let docker = crate::mirrors::docker::DockerCli::new(crate::exec::real());
    let layout = crate::mirrors::layout::Layout::new(ctx.home.root());
    let available = sysinfo::System::new().map_or(0, |mut sys| {
        sys.refresh_memory();
        sys.available_memory()
    });
    let need: u64 = topology
        .nodes()
        .iter()
        .filter(|n| nodes.contains(&n.name))
        .map(|n| n.memory.bytes())
        .sum();
    crate::doctor::mirrors::checks(&docker, &layout, available, need).await
}
