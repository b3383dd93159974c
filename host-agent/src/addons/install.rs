//! Installing one rendered add-on on one cluster, idempotently (every
//! part may run again on a rerun of `up`):
//!
//! 1. its namespace, server-side applied (so its objects can land even for
//!    add-ons without a chart);
//! 2. its chart: `helm upgrade --install` of the pinned version with the
//!    rendered values, from the registry mirror or the verified chart
//!    cache ([`crate::charts::ChartStore::source`]), **without** `--wait` —
//!    hostctl waits itself, on conditions that say what is missing (Vault's
//!    pod, for one, is never Ready before hostctl unseals it, so `--wait`
//!    would hang);
//! 3. the CRDs among its readiness conditions, which its objects need;
//! 4. its objects, server-side applied;
//! 5. every readiness condition, polled until met or the deadline passes.

use super::catalogue::Readiness;
use super::error::AddonError;
use super::readiness::{Check, check, first_unmet};
use super::render::Rendered;
use crate::cluster_api::apply::{ApplyOptions, apply_yaml};
use crate::helm::{Helm, UpgradeInstall, private_file};
use std::time::Duration;

/// Time limits of one install.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `helm upgrade --install --timeout`.
    pub helm: Duration,
    /// How long its readiness conditions may take after the chart.
    pub ready: Duration,
    /// Pause between readiness polls.
    pub poll: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            helm: Duration::from_secs(600),
            ready: Duration::from_secs(900),
            poll: Duration::from_secs(3),
        }
    }
}

/// What an install talks to.
pub struct Target<'a> {
    pub helm: &'a dyn Helm,
    /// Where charts come from (mirror, cache, or a pull into the cache).
    pub charts: &'a crate::charts::ChartStore,
    pub client: &'a kube::Client,
    /// The cluster's minted admin kubeconfig (handed to helm in a 0600 file).
    pub kubeconfig: &'a str,
}

/// Installs `rendered` on the cluster of `target`; `say` gets progress.
pub async fn install(
    target: &Target<'_>,
    rendered: &Rendered,
    limits: Limits,
    say: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), AddonError> {
    let addon = rendered.addon;
    let kube = |what: &str| {
        let (addon, what) = (addon.name.to_owned(), what.to_owned());
        move |source| AddonError::Kube {
            addon,
            what,
            source: Box::new(source),
        }
    };
    if addon.namespace != "kube-system" {
        let ns = crate::cluster_config::manifests::psa::addon_namespace(addon.namespace);
        apply_yaml(
            target.client,
            "namespace",
            &ns.to_string(),
            ApplyOptions::default(),
        )
        .await
        .map_err(kube("apply its namespace"))?;
    }
    if let (Some(chart), Some(values)) = (addon.chart, &rendered.values) {
        let source = target
            .charts
            .source(target.helm, &chart)
            .await
            .map_err(|source| AddonError::Chart {
                addon: addon.name.to_owned(),
                source: Box::new(source),
            })?;
        say(&format!(
            "helm upgrade --install {}",
            source.describe(&chart)
        ));
        let helm_err = |source| AddonError::Helm {
            addon: addon.name.to_owned(),
            source: Box::new(source),
        };
        let values_file = private_file("values", values).map_err(helm_err)?;
        let kubeconfig_file = private_file("kubeconfig", target.kubeconfig).map_err(helm_err)?;
        target
            .helm
            .upgrade_install(&UpgradeInstall {
                release: addon.name,
                chart: &source.reference,
                version: chart.version,
                registry: &source.registry,
                namespace: addon.namespace,
                values_file: values_file.path(),
                kubeconfig_file: kubeconfig_file.path(),
                wait: false,
                timeout: limits.helm,
            })
            .await
            .map_err(helm_err)?;
    }
    let crds_only = |r: &Readiness| matches!(r, Readiness::Crd(_));
    wait(target.client, rendered, limits, crds_only, say).await?;
    for (m, path) in rendered.manifests.iter().zip(rendered.manifest_paths()) {
        say(&format!("apply {path}"));
        apply_yaml(target.client, &path, &m.yaml, ApplyOptions::default())
            .await
            .map_err(kube(&format!("apply {path}")))?;
    }
    wait(target.client, rendered, limits, |_| true, say).await
}

/// Polls the readiness conditions `which` selects until all are met.
async fn wait(
    client: &kube::Client,
    rendered: &Rendered,
    limits: Limits,
    which: impl Fn(&Readiness) -> bool,
    say: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), AddonError> {
    let addon = rendered.addon;
    let conditions: Vec<Readiness> = addon.readiness.iter().copied().filter(which).collect();
    if conditions.is_empty() {
        return Ok(());
    }
    let started = tokio::time::Instant::now();
    let mut last_said = String::new();
    loop {
        let checks: Vec<Check> =
            check(client, addon, &conditions)
                .await
                .map_err(|source| AddonError::Kube {
                    addon: addon.name.to_owned(),
                    what: "read its readiness".to_owned(),
                    source: Box::new(source),
                })?;
        let Some(waiting) = first_unmet(&checks) else {
            return Ok(());
        };
        if started.elapsed() >= limits.ready {
            return Err(AddonError::NotReady {
                addon: addon.name.to_owned(),
                seconds: limits.ready.as_secs(),
                waiting,
            });
        }
        if waiting != last_said {
            say(&format!("waiting for {waiting}"));
            last_said = waiting;
        }
        tokio::time::sleep(limits.poll).await;
    }
}
