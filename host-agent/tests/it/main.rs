//! host-agent's integration tests, one binary (a module per area; the stand-ins
//! and fixtures they share are in `test-support` and the `*_support` modules).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod addons_argocd_credentials;
mod addons_hostctl_metrics;
mod addons_k8sgpt;
mod addons_lab_ca;
mod addons_secrets;
mod addons_upstream_schema;
mod addons_velero;
mod charts_cache;
mod charts_managed_harbor;
mod charts_real_helm;
mod cli_topology;
mod cluster_api_apply;
mod cluster_api_ready;
mod cluster_config_cilium;
mod cluster_config_kubeadm;
mod cluster_config_manifests;
mod cluster_config_render;
mod cluster_config_support;
mod connections;
mod daemon_process;
mod drill_registry;
mod enrolment;
mod etcd_store;
mod etcd_store_support;
mod gitops_server;
mod helm_cli;
mod kubeconfig_merge;
mod listen_address;
mod mirrors_address;
mod mirrors_api;
mod mirrors_compose;
mod mirrors_lifecycle;
mod multipass_failures;
mod multipass_parse;
mod multipass_provider;
mod multipass_support;
mod observability_c2;
mod observability_rules;
mod observability_schema;
mod orchestrator_graph;
mod orchestrator_render;
mod recover_etcd_cli;
mod recover_etcd_store;
mod recover_resource;
mod recover_resource_support;
mod recover_vault;
mod refusals;
mod renewal;
mod reports;
mod storage_compose;
mod storage_garage;
mod vault_bootstrap;
mod vault_snapshot;
mod verify_live;
mod workspace;
