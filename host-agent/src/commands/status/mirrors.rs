//! `hostctl status`'s mirrors lines: for a topology with managed mirrors,
//! one line per mirror (Harbor, Nexus) with its state. Never fails —
//! a stopped mirror is a state (nodes keep running on cached images,
//! spec §10). The JSON form is `hostctl mirrors status -o json`.

use crate::cli::Context;
use crate::mirrors::compose::HostArch;
use crate::mirrors::docker::{Docker, DockerCli};
use crate::mirrors::layout::Layout;
use crate::mirrors::service::{HttpApis, Mirrors};
use crate::mirrors::{Endpoints, service::MirrorHealth};
use crate::workspace::Workspace;
use std::time::Duration;

/// The lines, empty when the topology does not manage mirrors.
pub async fn lines(ctx: &Context) -> Vec<String> {
    health(ctx)
        .await
        .unwrap_or_default()
        .iter()
        .map(line)
        .collect()
}

/// Each managed mirror's health (`None` when the topology manages none);
/// also `verify`'s MIRRORS fact.
pub async fn health(ctx: &Context) -> Option<Vec<MirrorHealth>> {
    let workspace = Workspace::recorded(ctx).ok()?;
    if !workspace.topology.managed_mirrors() {
        return None;
    }
    let docker = DockerCli::new(crate::exec::real());
    let mirrors = managed(ctx, &workspace, &docker);
    Some(mirrors.status(lab_ca(ctx).as_deref()).await)
}

/// This home's managed mirrors, driven through `docker` and the real APIs.
pub fn managed<'a>(ctx: &Context, workspace: &Workspace, docker: &'a dyn Docker) -> Mirrors<'a> {
    Mirrors {
        layout: Layout::new(ctx.home.root()),
        endpoints: Endpoints {
            host: workspace.resolved.host_agent_address(),
        },
        arch: HostArch::current(),
        docker,
        apis: &HttpApis,
        ready_within: Duration::ZERO,
    }
}

/// The lab root hostctl signs Harbor's certificate with (PEM).
pub fn lab_ca(ctx: &Context) -> Option<String> {
    let pki = crate::pki::open_existing(ctx).ok();
    pki.as_ref()
        .and_then(|p| p.lab_root())
        .map(|l| l.cert_pem().to_owned())
}

fn line(h: &MirrorHealth) -> String {
    format!(
        "mirror {} {}: {} ({}/{} containers running)",
        h.name, h.url, h.state, h.running, h.containers
    )
}
