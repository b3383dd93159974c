//! host-agent's integration tests, one binary (a module per area; the stand-ins
//! and fixtures they share are in `test-support` and the `*_support` modules).

mod cli_topology;
mod connections;
mod daemon_process;
mod enrolment;
mod etcd_store;
mod etcd_store_support;
mod helm_cli;
mod k8s_cilium;
mod k8s_kubeadm;
mod k8s_manifests;
mod k8s_render;
mod k8s_support;
mod kube_apply;
mod kube_ready;
mod kubeconfig_merge;
mod listen_address;
mod multipass_failures;
mod multipass_parse;
mod multipass_provider;
mod multipass_support;
mod orchestrator_graph;
mod orchestrator_render;
mod refusals;
mod renewal;
mod reports;
mod workspace;
