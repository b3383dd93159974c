//! The last lines of `up`: each cluster's API and node readiness as the
//! host sees them now (the same probe as `hostctl status`), so the run
//! ends with the fact a user acts on — "the API answers, 2/2 Ready" —
//! rather than only step timings.

use crate::cluster_api::cluster_health;
use crate::orchestrator::steps::UpContext;
use crate::orchestrator::steps::targets::Targets;
use crate::output::OutputFormat;

/// Prints one line per cluster the run builds (stderr when stdout is
/// JSON/YAML).
pub async fn clusters(format: OutputFormat, up: &UpContext, targets: &Targets) {
    for cluster in targets.clusters().iter().map(|c| c.name()) {
        let health = cluster_health(&up.cluster.pki, &up.resolved, cluster.as_str()).await;
        let api = match (&health.api.ok, &health.api.version, &health.api.error) {
            (true, Some(v), _) => format!("API ok ({v})"),
            (true, None, _) => "API ok".to_owned(),
            (false, _, Some(e)) => format!("API down: {e}"),
            (false, _, None) => "API down".to_owned(),
        };
        let nodes = match (&health.nodes_ready, &health.nodes_detail) {
            (Some(ratio), None) => format!(", nodes {ratio} Ready"),
            (Some(ratio), Some(detail)) => format!(", nodes {ratio} Ready ({detail})"),
            (None, _) => String::new(),
        };
        let line = format!("cluster {cluster}: {api}{nodes}");
        match format {
            OutputFormat::Table => {
                let _ = crate::stdout::line(&line);
            }
            _ => eprintln!("{line}"),
        }
    }
}

/// Which kubeconfig `up` changed, and how to stop it doing so; `None` when
/// it changed none (`--no-kubeconfig`, or no cluster step ran).
pub fn kubeconfig(up: &UpContext) -> Option<String> {
    let target = up.cluster.kubeconfig_target.as_ref()?;
    let record = up.cluster.merged.load().ok()?;
    let names = record.files.get(target)?;
    let contexts: Vec<&str> = up
        .resolved
        .topology()
        .clusters()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| names.contains(*c))
        .collect();
    (!contexts.is_empty()).then(|| {
        format!(
            "kubeconfig: contexts {} merged into {} (other entries untouched; `up --no-kubeconfig` leaves it alone, `down --purge` removes them)",
            contexts.join(", "),
            target.display()
        )
    })
}
