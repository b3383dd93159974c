//! The add-ons' part of `install-plan.yaml`: one step per add-on of the
//! cluster, in catalogue order, with its chart, files, dependencies and
//! what hostctl waits for — the same facts the graph's `addon/…` steps act
//! on, written for review.

use super::catalogue::{Addon, ChartRepo, Readiness};
use super::render::Rendered;
use crate::cluster_config::install_plan::{Apply, Helm, Step};

/// The step every add-on waits for when it depends on no other add-on:
/// the cluster's base manifests (storage classes, address pools).
pub const BASE_STEP: &str = "manifests";

/// The install-plan steps of `rendered`.
pub fn steps(rendered: &[Rendered]) -> Vec<Step> {
    rendered.iter().map(step).collect()
}

fn step(r: &Rendered) -> Step {
    let addon = r.addon;
    let after = if addon.depends_on.is_empty() {
        vec![BASE_STEP.to_owned()]
    } else {
        addon.depends_on.iter().map(|d| (*d).to_owned()).collect()
    };
    let helm = addon.chart.zip(r.values_path()).map(|(chart, values)| {
        let (repo, reference) = match chart.repo {
            ChartRepo::Http(url) => (url.to_owned(), chart.name.to_owned()),
            ChartRepo::Oci(url) => (url.to_owned(), format!("{url}/{}", chart.name)),
        };
        Helm {
            repo,
            chart: reference,
            namespace: addon.namespace.to_owned(),
            values,
        }
    });
    let files = r.manifest_paths();
    let apply = (!files.is_empty()).then_some(Apply {
        url: None,
        files,
        server_side: true,
    });
    Step {
        name: addon.name.to_owned(),
        version: addon.chart.map(|c| c.version.to_owned()),
        after,
        helm,
        apply,
        ready: addon.readiness.iter().map(|r| describe(addon, r)).collect(),
    }
}

/// A readiness condition as a person reads it.
pub fn describe(addon: &Addon, readiness: &Readiness) -> String {
    let ns = addon.namespace;
    match readiness {
        Readiness::Deployment(name) => format!("Deployment {ns}/{name} available"),
        Readiness::StatefulSet(name) => format!("StatefulSet {ns}/{name} ready"),
        Readiness::DaemonSet(name) => format!("DaemonSet {ns}/{name} ready on every node"),
        Readiness::Crd(name) => format!("CustomResourceDefinition {name} established"),
        Readiness::Condition(c) => {
            let namespaced = crate::cluster_api::resources::lookup(c.api_version, c.kind)
                .is_none_or(|k| k.namespaced);
            let at = if namespaced {
                format!("{ns}/{}", c.name)
            } else {
                c.name.to_owned()
            };
            format!("{} {at} {}", c.kind, c.condition)
        }
    }
}
