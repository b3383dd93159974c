//! Is an add-on up? Each [`Readiness`] of its catalogue entry read through
//! the API as `kubectl rollout status` and `kubectl wait` read it: a
//! Deployment whose controller has seen its latest spec and has every
//! replica updated and available, a StatefulSet with every replica ready,
//! a DaemonSet ready on every node it is scheduled to, a CRD `Established`,
//! a custom resource's condition `True`.

use super::catalogue::{Addon, Readiness};
use super::plan::describe;
use crate::cluster_api::KubeError;
use crate::cluster_api::apply::classify;
use crate::cluster_api::resources::lookup;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::DynamicObject;
use serde::Serialize;

/// One condition's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The condition as a person reads it.
    pub what: String,
    pub ready: bool,
    /// Why not, when not (e.g. `0/1 available`, `not created yet`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// `conditions` (some or all of `addon`'s) on the cluster `client` talks to.
pub async fn check(
    client: &kube::Client,
    addon: &Addon,
    conditions: &[Readiness],
) -> Result<Vec<Check>, KubeError> {
    let mut out = Vec::with_capacity(conditions.len());
    for r in conditions {
        let what = describe(addon, r);
        let why_not = match r {
            Readiness::Deployment(name) => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), addon.namespace);
                get(&api, name, &what)
                    .await?
                    .map_or(Some(absent()), |d| deployment(&d))
            }
            Readiness::StatefulSet(name) => {
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), addon.namespace);
                get(&api, name, &what)
                    .await?
                    .map_or(Some(absent()), |s| statefulset(&s))
            }
            Readiness::DaemonSet(name) => {
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), addon.namespace);
                get(&api, name, &what)
                    .await?
                    .map_or(Some(absent()), |d| daemonset(&d))
            }
            Readiness::Crd(name) => {
                let api: Api<CustomResourceDefinition> = Api::all(client.clone());
                get(&api, name, &what)
                    .await?
                    .map_or(Some(absent()), |c| crd(&c))
            }
            Readiness::Condition(c) => {
                let kind = lookup(c.api_version, c.kind).ok_or_else(|| KubeError::UnknownKind {
                    source_name: format!("readiness of add-on {}", addon.name),
                    index: 0,
                    api_version: c.api_version.to_owned(),
                    kind: c.kind.to_owned(),
                })?;
                let resource = kind.api_resource();
                let api: Api<DynamicObject> = if kind.namespaced {
                    Api::namespaced_with(client.clone(), addon.namespace, &resource)
                } else {
                    Api::all_with(client.clone(), &resource)
                };
                get(&api, c.name, &what)
                    .await?
                    .map_or(Some(absent()), |o| condition(&o, c.condition))
            }
        };
        out.push(Check {
            what,
            ready: why_not.is_none(),
            why_not,
        });
    }
    Ok(out)
}

/// The first condition that is not met, as one line (`None`: all are).
pub fn first_unmet(checks: &[Check]) -> Option<String> {
    checks.iter().find(|c| !c.ready).map(|c| {
        format!(
            "{}: {}",
            c.what,
            c.why_not.as_deref().unwrap_or("not ready")
        )
    })
}

async fn get<K>(api: &Api<K>, name: &str, what: &str) -> Result<Option<K>, KubeError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|e| classify(e, what))
}

fn absent() -> String {
    "not created yet".to_owned()
}

/// Generation seen by the controller, else "the controller has not seen
/// the latest spec" (a rollout that has not started looks finished).
fn observed(generation: Option<i64>, observed: Option<i64>) -> Option<String> {
    match (generation, observed) {
        (Some(g), Some(o)) if o >= g => None,
        (None, _) => None,
        _ => Some("its controller has not seen the latest spec yet".to_owned()),
    }
}

fn deployment(d: &Deployment) -> Option<String> {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    observed(d.metadata.generation, status.observed_generation).or_else(|| {
        let updated = status.updated_replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        (updated < want || available < want)
            .then(|| format!("{available}/{want} available, {updated}/{want} updated"))
    })
}

fn statefulset(s: &StatefulSet) -> Option<String> {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = s.status.clone().unwrap_or_default();
    observed(s.metadata.generation, status.observed_generation).or_else(|| {
        let ready = status.ready_replicas.unwrap_or(0);
        (ready < want).then(|| format!("{ready}/{want} ready"))
    })
}

fn daemonset(d: &DaemonSet) -> Option<String> {
    let status = d.status.clone().unwrap_or_default();
    observed(d.metadata.generation, status.observed_generation).or_else(|| {
        let want = status.desired_number_scheduled;
        let ready = status.number_ready;
        let updated = status.updated_number_scheduled.unwrap_or(0);
        (want == 0 || ready < want || updated < want)
            .then(|| format!("{ready}/{want} ready, {updated}/{want} updated"))
    })
}

/// `status.conditions[type=condition]` is `True`; else its reason and
/// message, which say why (cert-manager's, ESO's and Argo CD's do).
fn condition(o: &DynamicObject, condition: &str) -> Option<String> {
    let found = o
        .data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .find(|c| c["type"] == condition);
    match found {
        Some(c) if c["status"] == "True" => None,
        Some(c) => {
            let said = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            let why = [said("reason"), said("message")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            Some(format!(
                "{condition} is {}{}",
                c["status"].as_str().unwrap_or("Unknown"),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                }
            ))
        }
        None => Some(format!("no {condition} condition yet")),
    }
}

fn crd(c: &CustomResourceDefinition) -> Option<String> {
    let established = c
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|cond| cond.type_ == "Established" && cond.status == "True");
    (!established).then(|| "not Established yet".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn de<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_deployment_is_ready_only_when_its_latest_spec_is_available() {
        let d = |gen_: i64, obs: i64, avail: i32| -> Deployment {
            de(json!({"metadata": {"name": "x", "generation": gen_},
                      "spec": {"replicas": 1, "selector": {}, "template": {}},
                      "status": {"observedGeneration": obs, "updatedReplicas": 1, "availableReplicas": avail}}))
        };
        assert_eq!(deployment(&d(2, 2, 1)), None);
        assert_eq!(
            deployment(&d(2, 2, 0)).as_deref(),
            Some("0/1 available, 1/1 updated")
        );
        assert!(deployment(&d(3, 2, 1)).unwrap().contains("latest spec"));
    }

    #[test]
    fn a_statefulset_daemonset_and_crd_read_their_own_status() {
        let s: StatefulSet = de(json!({"metadata": {"name": "x"},
            "spec": {"replicas": 1, "selector": {}, "serviceName": "x", "template": {}},
            "status": {"replicas": 1, "readyReplicas": 0}}));
        assert_eq!(statefulset(&s).as_deref(), Some("0/1 ready"));
        let d: DaemonSet = de(json!({"metadata": {"name": "x"},
            "status": {"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2,
                       "currentNumberScheduled": 2, "numberMisscheduled": 0}}));
        assert_eq!(daemonset(&d), None);
        let c: CustomResourceDefinition = de(json!({"metadata": {"name": "x"},
            "spec": {"group": "g", "names": {"kind": "K", "plural": "ks"}, "scope": "Namespaced", "versions": []},
            "status": {"conditions": [{"type": "Established", "status": "False"}]}}));
        assert_eq!(crd(&c).as_deref(), Some("not Established yet"));
    }

    #[test]
    fn a_custom_condition_is_met_only_when_true_and_says_why_not() {
        let o = |conditions: serde_json::Value| -> DynamicObject {
            de(
                json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                      "metadata": {"name": "lab-ca"}, "status": {"conditions": conditions}}),
            )
        };
        assert_eq!(
            condition(&o(json!([{"type": "Ready", "status": "True"}])), "Ready"),
            None
        );
        assert_eq!(
            condition(
                &o(
                    json!([{"type": "Ready", "status": "False", "reason": "ErrGetKeyPair",
                           "message": "secret \"lab-ca\" not found"}])
                ),
                "Ready"
            )
            .as_deref(),
            Some("Ready is False (ErrGetKeyPair: secret \"lab-ca\" not found)")
        );
        assert_eq!(
            condition(&o(json!([])), "Ready").as_deref(),
            Some("no Ready condition yet")
        );
    }
}
