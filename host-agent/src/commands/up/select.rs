//! `up --only CLUSTER`: which nodes this run brings up.

use crate::cli::coded;
use crate::exit::Exit;
use topology::Resolved;

/// The nodes of `only` (every node without it); an unknown cluster is a
/// usage error that lists the known ones.
pub fn nodes(resolved: &Resolved, only: Option<&str>) -> anyhow::Result<Vec<String>> {
    let topology = resolved.topology();
    if let Some(cluster) = only
        && topology.cluster(cluster).is_none()
    {
        let known: Vec<&str> = topology
            .clusters()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(coded(
            Exit::Usage,
            anyhow::anyhow!(
                "no cluster {cluster} in the topology (clusters: {}); fix --only",
                known.join(", ")
            ),
        ));
    }
    Ok(topology
        .nodes()
        .iter()
        .filter(|n| only.is_none_or(|c| n.cluster == c))
        .map(|n| n.name.clone())
        .collect())
}
