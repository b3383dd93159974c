//! `hostctl status`'s mirrors lines: for a topology with managed mirrors,
//! one line per mirror (Harbor, Nexus) with its state. Never fails —
//! a stopped mirror is a state (nodes keep running on cached images,
//! spec §10). The JSON form is `hostctl mirrors status -o json`.

use crate::cli::Context;
use crate::mirrors::docker::DockerCli;
use crate::mirrors::service::MirrorHealth;
use crate::workspace::Workspace;

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
    let mirrors = crate::commands::mirrors::real(ctx, &workspace, &docker);
    Some(
        mirrors
            .status(crate::commands::mirrors::lab_ca(ctx).as_deref())
            .await,
    )
}

fn line(h: &MirrorHealth) -> String {
    format!(
        "mirror {} {}: {} ({}/{} containers running)",
        h.name, h.url, h.state, h.running, h.containers
    )
}
