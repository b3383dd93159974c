//! The `registry-down` drill (§9.1: Harbor down, cached images keep
//! running): Harbor's containers are stopped (its data kept); while it is
//! down, no pod that was Running on an app cluster stops, and a pod whose
//! image every node already holds still starts — the pause image, which
//! every pod sandbox uses, with `imagePullPolicy: IfNotPresent`; Harbor is
//! started again and must report healthy.

use super::record::{DrillStore, Running};
use super::{DrillError, DrillName, DrillReport, Observation, Pace, Started, until, worst};
use crate::mirrors::service::Mirrors;
use crate::verify::Verdict;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The sandbox image the node agent configures containerd with
/// (node-agent `prereq::files::SANDBOX_IMAGE`): cached on every node that
/// runs a pod.
pub const CACHED_IMAGE: &str = "registry.k8s.io/pause:3.10.1";
/// The drill's own pod.
pub const PROBE_POD: &str = "hostctl-drill-cached-image";
const PROBE_NAMESPACE: &str = "default";

const DOWN: &str = "Harbor can be taken away: stopped for the drill";
const KEEP: &str = "running pods keep running while Harbor is down";
const CACHED: &str = "a pod whose image is cached still starts while Harbor is down";
const BACK: &str = "Harbor is healthy again after the drill";

/// The drill against `mirrors`, observing `clusters` (the app clusters
/// `up` built, each with a client or why not).
pub async fn run(
    mirrors: &Mirrors<'_>,
    lab_ca: Option<&str>,
    clusters: &[(String, Result<kube::Client, String>)],
    store: &DrillStore,
    pace: Pace,
) -> Result<DrillReport, DrillError> {
    let started = Started::now();
    let mut steps = Vec::new();
    if store.running(DrillName::RegistryDown)?.stopped_harbor {
        steps.push("an earlier registry-down did not finish: starting Harbor first".into());
        mirrors.start_harbor().await.map_err(mirror)?;
        store.clear_running(DrillName::RegistryDown)?;
    }
    if !harbor_healthy(mirrors, lab_ca).await {
        return Err(DrillError::Precondition(
            "Harbor is not healthy: `hostctl mirrors status` says why, `hostctl mirrors up` repairs it"
                .into(),
        ));
    }
    let before = running_pods(clusters).await;
    store.mark_running(
        DrillName::RegistryDown,
        &Running {
            stopped_harbor: true,
            ..Running::default()
        },
    )?;
    steps.push("stopping Harbor's containers (data kept)".into());
    let stopped = mirrors.stop_harbor().await.map_err(mirror);
    let mut observations = Vec::new();
    if stopped.is_ok() {
        observations.push(match harbor_healthy(mirrors, lab_ca).await {
            false => Observation::new("§9.1", DOWN, Verdict::Holds, vec!["Harbor is down".into()]),
            true => Observation::new("§9.1", DOWN, Verdict::Broken, vec!["still healthy".into()]),
        });
        observations.push(still_running(clusters, &before).await);
        observations.push(cached_start(clusters, pace).await);
    }
    steps.push("starting Harbor again".into());
    mirrors.start_harbor().await.map_err(mirror)?;
    store.clear_running(DrillName::RegistryDown)?;
    stopped?;
    let back = until(pace, || async {
        harbor_healthy(mirrors, lab_ca).await.then_some(())
    })
    .await;
    observations.push(match back {
        Some(()) => Observation::new("§9.1", BACK, Verdict::Holds, vec!["healthy".into()]),
        None => Observation::new(
            "§9.1",
            BACK,
            Verdict::Broken,
            vec![format!("not healthy within {} s", pace.deadline.as_secs())],
        ),
    });
    Ok(started.report(DrillName::RegistryDown, steps, observations))
}

fn mirror(e: crate::mirrors::error::MirrorError) -> DrillError {
    DrillError::Precondition(e.to_string())
}

async fn harbor_healthy(mirrors: &Mirrors<'_>, lab_ca: Option<&str>) -> bool {
    mirrors
        .status(lab_ca)
        .await
        .iter()
        .any(|h| h.name == "harbor" && h.state == "healthy")
}

/// `namespace/name` of every Running pod, per cluster that answered.
async fn running_pods(
    clusters: &[(String, Result<kube::Client, String>)],
) -> Vec<(String, Result<BTreeSet<String>, String>)> {
    let mut out = Vec::new();
    for (name, client) in clusters {
        let pods = match client {
            Ok(c) => running_of(c).await,
            Err(e) => Err(e.clone()),
        };
        out.push((name.clone(), pods));
    }
    out
}

async fn running_of(client: &kube::Client) -> Result<BTreeSet<String>, String> {
    let pods: kube::Api<Pod> = kube::Api::all(client.clone());
    let list = tokio::time::timeout(
        crate::cluster_api::health::STATUS_TIMEOUT,
        pods.list(&ListParams::default()),
    )
    .await
    .map_err(|_| "the pod list did not answer".to_owned())?
    .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or_default(),
                p.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect())
}

async fn still_running(
    clusters: &[(String, Result<kube::Client, String>)],
    before: &[(String, Result<BTreeSet<String>, String>)],
) -> Observation {
    if clusters.is_empty() {
        return Observation::new(
            "§9.1",
            KEEP,
            Verdict::NotInstalled,
            vec!["no app cluster built yet".into()],
        );
    }
    let now = running_pods(clusters).await;
    let mut verdict = Verdict::NotInstalled;
    let mut observed = Vec::new();
    for ((name, was), (_, is)) in before.iter().zip(&now) {
        let (v, line) = match (was, is) {
            (Ok(was), Ok(is)) => match was.difference(is).cloned().collect::<Vec<_>>() {
                lost if lost.is_empty() => (
                    Verdict::Holds,
                    format!("{name}: all {} Running pods still Running", was.len()),
                ),
                lost => (
                    Verdict::Broken,
                    format!("{name}: stopped running: {}", lost.join(", ")),
                ),
            },
            (Err(e), _) | (_, Err(e)) => (Verdict::CannotTell, format!("{name}: {e}")),
        };
        verdict = worst(verdict, v);
        observed.push(line);
    }
    Observation::new("§9.1", KEEP, verdict, observed)
}

/// The drill's pod: the cached image, never pulled, within every policy
/// the app clusters enforce (requests and limits, not privileged, the
/// `restricted` Pod Security profile, `app`/`version` labels).
pub fn probe_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": PROBE_POD, "namespace": PROBE_NAMESPACE,
                     "labels": {"app": PROBE_POD, "version": "1",
                                "app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65535,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "pause", "image": CACHED_IMAGE, "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "1m", "memory": "8Mi"},
                              "limits": {"cpu": "10m", "memory": "16Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "privileged": false,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

async fn cached_start(
    clusters: &[(String, Result<kube::Client, String>)],
    pace: Pace,
) -> Observation {
    if clusters.is_empty() {
        return Observation::new(
            "§9.1",
            CACHED,
            Verdict::NotInstalled,
            vec!["no app cluster built yet".into()],
        );
    }
    let mut verdict = Verdict::NotInstalled;
    let mut observed = Vec::new();
    for (name, client) in clusters {
        let (v, line) = match client {
            Ok(c) => start_cached(c, pace).await,
            Err(e) => (Verdict::CannotTell, e.clone()),
        };
        verdict = worst(verdict, v);
        observed.push(format!("{name}: {line}"));
    }
    Observation::new("§9.1", CACHED, verdict, observed)
}

async fn start_cached(client: &kube::Client, pace: Pace) -> (Verdict, String) {
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), PROBE_NAMESPACE);
    let apply = PatchParams::apply("hostctl-drill").force();
    if let Err(e) = pods
        .patch(PROBE_POD, &apply, &Patch::Apply(probe_pod()))
        .await
    {
        return (Verdict::CannotTell, format!("creating {PROBE_POD}: {e}"));
    }
    let running = until(pace, || {
        let pods = pods.clone();
        async move {
            let pod = pods.get_opt(PROBE_POD).await.ok().flatten()?;
            (pod.status?.phase.as_deref() == Some("Running")).then_some(())
        }
    })
    .await;
    let _ = pods.delete(PROBE_POD, &DeleteParams::default()).await;
    match running {
        Some(()) => (
            Verdict::Holds,
            format!("{PROBE_POD} ({CACHED_IMAGE}) Running"),
        ),
        None => (
            Verdict::Broken,
            format!(
                "{PROBE_POD} ({CACHED_IMAGE}) not Running within {} s",
                pace.deadline.as_secs()
            ),
        ),
    }
}
