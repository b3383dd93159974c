//! kube-prometheus-stack on every cluster (platform-addons §2.5): the full
//! stack on mgmt (Prometheus with 15 days on `local-path`, a Thanos
//! sidecar, Alertmanager, Thanos Ruler, kube-state-metrics, node-exporter)
//! and, on app clusters, the same chart in agent mode: a PrometheusAgent
//! that scrapes locally and remote-writes to mgmt's Thanos Receive,
//! buffering in its WAL while mgmt is away (C2, [`super::buffer`]).
//!
//! Two catalogue entries for one chart because the two roles run
//! different workloads (the fit report sizes each from its own table).
//! Both set `fullnameOverride: kps`, so every object has the same name on
//! every cluster (`kps-prometheus`, `kps-operator`), whatever the release.
//!
//! Alert rules are evaluated in one place: Thanos Ruler on mgmt, over
//! Thanos Query, which sees every cluster (agents evaluate no rules).
//! The chart's default rules carry the `cluster` label in their
//! aggregations and the label that only the ruler selects, so mgmt's
//! Prometheus does not evaluate them a second time.

use super::NAMESPACE;
use super::buffer::APP_AGENT;
use crate::addons::budget::{Replicas, Resources, Workload, resources_of};
use crate::addons::catalogue::{
    Addon, Chart, ChartRepo, CustomCondition, Manifest, Placement, Readiness,
};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, manifest, no_objects};
use serde_json::{Value, json};

/// kube-prometheus-stack (operator v0.93.1, Prometheus v3.14.0).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://prometheus-community.github.io/helm-charts"),
    name: "kube-prometheus-stack",
    version: "88.5.3",
    digest: None,
};

/// The name prefix of every object the chart creates (`fullnameOverride`).
pub const FULLNAME: &str = "kps";
/// The Prometheus (mgmt) and PrometheusAgent (app) object's name, and its
/// Service's (port [`PROMETHEUS_PORT`]).
pub const PROMETHEUS: &str = "kps-prometheus";
/// Prometheus' HTTP port on its Service.
pub const PROMETHEUS_PORT: u16 = 9090;
/// The Thanos sidecar's discovery Service (gRPC StoreAPI for Thanos Query).
pub const THANOS_DISCOVERY: &str = "kps-thanos-discovery";
/// Thanos Ruler's Service (its StoreAPI serves the recording rules' results).
pub const THANOS_RULER: &str = "kps-thanos-ruler";
/// Alertmanager's Service and port.
pub const ALERTMANAGER: &str = "kps-alertmanager";
pub const ALERTMANAGER_PORT: u16 = 9093;
/// The label that sends a PrometheusRule to Thanos Ruler (the one
/// evaluator, see the module doc) and its value.
pub const EVALUATOR_LABEL: &str = "hostctl.dev/evaluator";
pub const EVALUATOR: &str = "thanos-ruler";
/// The Thanos image the sidecar runs (the same release as the thanos chart's).
pub const THANOS_IMAGE: &str = "quay.io/thanos/thanos:v0.42.4";

/// SPEC §12's Prometheus sizes; the rest from platform-addons §6.
const MGMT_WORKLOADS: &[Workload] = &[
    Workload::one(
        "prometheus-kps-prometheus",
        Resources::new(200, 512),
        Resources::new(1000, 2048),
        700,
    ),
    // A container of Prometheus' pod: its requests add to the same node.
    Workload::one(
        "thanos-sidecar",
        Resources::new(20, 64),
        Resources::new(0, 256),
        120,
    ),
    Workload::one(
        "kps-operator",
        Resources::new(50, 64),
        Resources::new(0, 256),
        60,
    ),
    Workload::one(
        "kube-state-metrics",
        Resources::new(20, 64),
        Resources::new(0, 256),
        60,
    ),
    NODE_EXPORTER,
    Workload::one(
        "alertmanager-kps-alertmanager",
        Resources::new(10, 32),
        Resources::new(0, 128),
        30,
    ),
    Workload::one(
        "thanos-ruler-kps-thanos-ruler",
        Resources::new(20, 64),
        Resources::new(0, 256),
        60,
    ),
];

/// SPEC §12's agent sizes (tight: platform-addons §6).
const APP_WORKLOADS: &[Workload] = &[
    Workload::one(
        "prom-agent-kps-prometheus",
        Resources::new(50, 128),
        Resources::new(200, 256),
        180,
    ),
    Workload::one(
        "kps-operator",
        Resources::new(20, 48),
        Resources::new(0, 192),
        50,
    ),
    Workload::one(
        "kube-state-metrics",
        Resources::new(10, 48),
        Resources::new(0, 192),
        50,
    ),
    NODE_EXPORTER,
];

const NODE_EXPORTER: Workload = Workload {
    name: "node-exporter",
    replicas: Replicas::EveryNode,
    requests: Resources::new(10, 32),
    limits: Resources::new(0, 64),
    expected_mib: 20,
};

/// The full stack on mgmt.
pub const STACK: Addon = Addon {
    name: "prometheus-stack",
    summary: "Prometheus (15 days, Thanos sidecar), Alertmanager, Thanos Ruler, exporters",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values: mgmt_values,
    objects,
    readiness: &[
        Readiness::Deployment("kps-operator"),
        Readiness::Condition(CustomCondition {
            api_version: "monitoring.coreos.com/v1",
            kind: "Prometheus",
            name: PROMETHEUS,
            condition: "Available",
        }),
    ],
    workloads: MGMT_WORKLOADS,
    hook: None,
};

/// The agent on app clusters, writing to mgmt's Thanos Receive once that
/// is up (`after_mgmt`), buffering before and whenever mgmt is away.
pub const AGENT: Addon = Addon {
    name: "prometheus-agent",
    summary: "Prometheus in agent mode: scrapes here, remote-writes to mgmt, buffers in its WAL",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::App,
    depends_on: &[],
    after_mgmt: &["thanos"],
    needs_backup_target: false,
    values: agent_values,
    objects: no_objects,
    readiness: &[
        Readiness::Deployment("kps-operator"),
        Readiness::Condition(CustomCondition {
            api_version: "monitoring.coreos.com/v1alpha1",
            kind: "PrometheusAgent",
            name: PROMETHEUS,
            condition: "Available",
        }),
    ],
    workloads: APP_WORKLOADS,
    hook: None,
};

/// A `volumeClaimTemplate` on `local-path` of `size`.
fn volume(size: &str) -> Value {
    json!({"volumeClaimTemplate": {"spec": {
        "storageClassName": "local-path",
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }}})
}

/// What both roles share: names, CRDs, no kube-proxy (Cilium replaces
/// it), no Grafana (its own release), exporters sized.
fn common(workloads: &[Workload]) -> serde_json::Map<String, Value> {
    let values = json!({
        "fullnameOverride": FULLNAME,
        "crds": {"enabled": true},
        "kubeProxy": {"enabled": false},
        "grafana": {"enabled": false},
        "windowsMonitoring": {"enabled": false},
        "prometheusOperator": {"resources": resources_of(workloads, "kps-operator")},
        "kube-state-metrics": {"resources": resources_of(workloads, "kube-state-metrics")},
        "prometheus-node-exporter": {"resources": resources_of(workloads, "node-exporter")},
    });
    match values {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// Values for mgmt: keys as in kube-prometheus-stack 88.5.3's
/// `values.yaml`. Every ServiceMonitor, PodMonitor, ScrapeConfig and
/// PrometheusRule in the cluster is selected, not only the chart's own
/// (`*NilUsesHelmValues: false`), so hostctl's and other add-ons' are
/// scraped; rules only by the ruler.
fn mgmt_values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let ruler_selector = json!({"matchLabels": {EVALUATOR_LABEL: EVALUATOR}});
    let alertmanagers = json!({"alertmanagers": [{
        "api_version": "v2",
        "static_configs": [format!("{ALERTMANAGER}.{NAMESPACE}.svc:{ALERTMANAGER_PORT}")],
    }]});
    let mut values = common(MGMT_WORKLOADS);
    values.extend(
        json!({
            "defaultRules": {
                "create": true,
                "labels": {EVALUATOR_LABEL: EVALUATOR},
                "additionalAggregationLabels": ["cluster"],
            },
            "alertmanager": {"enabled": true, "alertmanagerSpec": {
                "replicas": 1,
                "resources": resources_of(MGMT_WORKLOADS, "alertmanager-kps-alertmanager"),
                "storage": volume("1Gi"),
            }},
            "prometheus": {
                "thanosService": {"enabled": true},
                "prometheusSpec": {
                    "retention": "15d",
                    "retentionSize": "18GiB",
                    "storageSpec": volume("20Gi"),
                    "resources": resources_of(MGMT_WORKLOADS, "prometheus-kps-prometheus"),
                    "externalLabels": {"cluster": ctx.cluster},
                    "thanos": {
                        "image": THANOS_IMAGE,
                        "resources": resources_of(MGMT_WORKLOADS, "thanos-sidecar"),
                    },
                    "serviceMonitorSelectorNilUsesHelmValues": false,
                    "podMonitorSelectorNilUsesHelmValues": false,
                    "probeSelectorNilUsesHelmValues": false,
                    "scrapeConfigSelectorNilUsesHelmValues": false,
                    "ruleSelectorNilUsesHelmValues": false,
                    // Rules are the ruler's (module doc): select none here.
                    "ruleSelector": {"matchLabels": {EVALUATOR_LABEL: "prometheus"}},
                },
            },
            "thanosRuler": {"enabled": true, "thanosRulerSpec": {
                "queryEndpoints": [super::thanos::query_address()],
                "alertmanagersConfig": {"secret": alertmanagers},
                "ruleSelectorNilUsesHelmValues": false,
                "ruleSelector": ruler_selector,
                "ruleNamespaceSelector": {},
                "resources": resources_of(MGMT_WORKLOADS, "thanos-ruler-kps-thanos-ruler"),
                "storage": volume("2Gi"),
            }},
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    Ok(Value::Object(values))
}

/// Values for an app cluster: the chart in agent mode, writing to mgmt's
/// Thanos Receive as tenant `<cluster>` with the buffer's settings; no
/// Alertmanager and no rules here (mgmt's ruler evaluates them).
fn agent_values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let endpoints = super::endpoints(ctx.resolved, AGENT.name)?;
    let mut values = common(APP_WORKLOADS);
    values.extend(
        json!({
            "defaultRules": {"create": false},
            "alertmanager": {"enabled": false},
            "prometheus": {
                "agentMode": true,
                "prometheusSpec": {
                    "externalLabels": {"cluster": ctx.cluster},
                    "remoteWrite": [APP_AGENT.remote_write(&endpoints.remote_write, ctx.cluster)],
                    "additionalArgs": APP_AGENT.additional_args(),
                    "storageSpec": volume(APP_AGENT.wal_volume),
                    "resources": resources_of(APP_WORKLOADS, "prom-agent-kps-prometheus"),
                    "serviceMonitorSelectorNilUsesHelmValues": false,
                    "podMonitorSelectorNilUsesHelmValues": false,
                    "probeSelectorNilUsesHelmValues": false,
                    "scrapeConfigSelectorNilUsesHelmValues": false,
                },
            },
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    Ok(Value::Object(values))
}

/// hostctl's own rules, on mgmt where the one evaluator runs, each
/// labelled for it.
fn objects(_: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let mut rules = super::rules::rule_objects(topology::ClusterRole::Mgmt);
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    for rule in &mut rules {
        if let Some(metadata) = rule.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = metadata.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(EVALUATOR_LABEL.into(), json!(EVALUATOR));
            }
        }
    }
    Ok(vec![manifest(
        "10-rules.yaml",
        "hostctl's alert rules (C2 buffering, log shipping, the agent plane,\n\
         snapshot age), evaluated by Thanos Ruler over every cluster.",
        &rules,
    )?])
}
