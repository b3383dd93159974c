//! "Resolve once": every command resolves the topology against the network
//! `up` recorded, so none of them can disagree with `up` about an address;
//! a provider whose subnet moved re-issues the host leaf from the same CA.

use async_trait::async_trait;
use host_agent::cli::Context;
use host_agent::home::Home;
use host_agent::output::OutputFormat;
use host_agent::provider::{LaunchSpec, Provider, ProviderError, VmInfo};
use host_agent::workspace::{SubnetOrigin, Workspace};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// A provider that only answers `subnet` (what `up` asks before anything).
struct ReportsSubnet(Option<Ipv4Net>);

#[async_trait]
impl Provider for ReportsSubnet {
    fn name(&self) -> &'static str {
        "multipass"
    }
    async fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        Ok(Vec::new())
    }
    async fn info(&self, _: &str) -> Result<Option<VmInfo>, ProviderError> {
        Ok(None)
    }
    async fn launch(&self, spec: &LaunchSpec) -> Result<VmInfo, ProviderError> {
        Err(ProviderError::NotFound(spec.name.clone()))
    }
    async fn start(&self, name: &str) -> Result<(), ProviderError> {
        Err(ProviderError::NotFound(name.to_owned()))
    }
    async fn stop(&self, name: &str) -> Result<(), ProviderError> {
        Err(ProviderError::NotFound(name.to_owned()))
    }
    async fn delete(&self, name: &str, _: bool) -> Result<(), ProviderError> {
        Err(ProviderError::NotFound(name.to_owned()))
    }
    async fn subnet(&self) -> Result<Option<Ipv4Net>, ProviderError> {
        Ok(self.0)
    }
}

fn context(home: &Path, topology: &Path) -> Context {
    Context {
        home: Home::resolve(Some(home.to_path_buf())),
        output: OutputFormat::Json,
        topology: Some(topology.to_path_buf()),
    }
}

fn mac_network() -> Ipv4Net {
    "192.168.252.0/24".parse().unwrap()
}

/// Every address a command can use: nodes, host agent, pools.
fn addresses(w: &Workspace) -> Vec<String> {
    let r = &w.resolved;
    let mut out: Vec<String> = r.node_ips().map(|(n, ip)| format!("{n}={ip}")).collect();
    out.push(format!("host={}", r.host_agent_address()));
    for c in r.topology().clusters() {
        out.push(format!("{}-pool={:?}", c.name, r.pool(&c.name)));
    }
    out
}

/// A home and the default topology (declared 192.168.64.0/24) in a file.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("hostctl.yaml");
    std::fs::write(&topology, topology::default_yaml()).unwrap();
    (dir, topology)
}

fn up_workspace(ctx: &Context, subnet: Ipv4Net) -> Workspace {
    // As hostctl creates it (umask 077): closed to other users.
    std::fs::create_dir_all(ctx.home.root()).unwrap();
    std::fs::set_permissions(
        ctx.home.root(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topology = host_agent::topology_source::load_checked(ctx.topology.as_deref()).unwrap();
    let w = rt
        .block_on(Workspace::from_provider(
            ctx,
            topology,
            &ReportsSubnet(Some(subnet)),
        ))
        .unwrap();
    w.record("multipass").unwrap();
    w
}

#[test]
fn every_command_resolves_to_the_addresses_up_used() {
    let (dir, topology) = setup();
    let home = dir.path().join("home");
    let ctx = context(&home, &topology);
    // Before any `up`: the declared network.
    let before = Workspace::recorded(&ctx).unwrap();
    assert_eq!(before.origin, SubnetOrigin::Declared);
    assert_eq!(
        before.subnet(),
        "192.168.64.0/24".parse::<Ipv4Net>().unwrap()
    );

    let up = up_workspace(&ctx, mac_network());
    assert_eq!(up.origin, SubnetOrigin::Provider("multipass".into()));
    assert_eq!(
        up.resolved.host_agent_address(),
        Ipv4Addr::new(192, 168, 252, 1)
    );
    assert_eq!(
        up.resolved.node_ip("mgmt-cp"),
        Some(Ipv4Addr::new(192, 168, 252, 10))
    );
    let expected = addresses(&up);

    // status, logs, etcd, kubeconfig, doctor's record check, the daemon:
    let recorded = Workspace::recorded(&ctx).unwrap();
    assert_eq!(
        recorded.origin,
        SubnetOrigin::Recorded(Some("multipass".into()))
    );
    assert_eq!(addresses(&recorded), expected);
    // render and kubeconfig without --subnet:
    assert_eq!(
        addresses(&Workspace::explicit(&ctx, None).unwrap()),
        expected
    );
    // the daemon's view (which nodes may enrol, at which addresses):
    let daemon =
        host_agent::daemon::topology::config_from_resolved(home.clone(), &recorded.resolved);
    assert_eq!(
        daemon.nodes["mgmt-cp"].addresses,
        vec![std::net::IpAddr::from([192, 168, 252, 10])]
    );
    assert_eq!(
        daemon.advertise,
        Some(std::net::IpAddr::from([192, 168, 252, 1]))
    );
    // the host certificate's names:
    let spec = host_agent::pki::spec_for(&recorded.resolved);
    assert!(
        spec.host_sans.contains(&"192.168.252.1".to_owned()),
        "{spec:?}"
    );
    assert!(
        !spec.host_sans.iter().any(|s| s.starts_with("192.168.64.")),
        "{spec:?}"
    );
    // An explicit --subnet previews another network without changing the record.
    let preview = Workspace::explicit(&ctx, Some("10.9.0.0/24".parse().unwrap())).unwrap();
    assert_eq!(preview.origin, SubnetOrigin::Explicit);
    assert_eq!(addresses(&Workspace::recorded(&ctx).unwrap()), expected);
}

#[test]
fn the_binary_renders_and_mints_kubeconfigs_for_the_recorded_network() {
    let (dir, topology) = setup();
    let home = dir.path().join("home");
    let ctx = context(&home, &topology);
    up_workspace(&ctx, mac_network());
    let hostctl = env!("CARGO_BIN_EXE_hostctl");
    let out = dir.path().join("render");
    let run = |args: &[&str]| {
        let output = Command::new(hostctl)
            .arg("--home")
            .arg(&home)
            .arg("--topology")
            .arg(&topology)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "hostctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&["render", "--out", out.to_str().unwrap()]);
    let resolved = std::fs::read_to_string(out.join("topology.yaml")).unwrap();
    assert!(resolved.contains("192.168.252.10"), "{resolved}");
    assert!(!resolved.contains("192.168.64."), "{resolved}");
    let user_data = std::fs::read_to_string(out.join("nodes/mgmt-cp/user-data")).unwrap();
    assert!(
        user_data.contains("serverName: \"192.168.252.1\"")
            || user_data.contains("serverName: 192.168.252.1"),
        "{user_data}"
    );
    assert!(
        user_data.contains("- 192.168.252.10/24"),
        "the netplan pins the node's address: {user_data}"
    );
    let kubeadm = std::fs::read_to_string(out.join("nodes/mgmt-cp/kubeadm.yaml")).unwrap();
    assert!(kubeadm.contains("192.168.252.10"), "{kubeadm}");
    assert!(!kubeadm.contains("192.168.64."), "{kubeadm}");
    host_agent::pki::ensure_pki(&ctx, &Workspace::recorded(&ctx).unwrap().resolved).unwrap();
    let kubeconfig = run(&["kubeconfig", "mgmt"]);
    assert!(
        kubeconfig.contains("https://192.168.252.10:6443"),
        "{kubeconfig}"
    );
}

#[test]
fn a_moved_provider_subnet_reissues_the_host_leaf_and_keeps_the_ca() {
    let (dir, topology) = setup();
    let home = dir.path().join("home");
    let ctx = context(&home, &topology);
    // `hostctl init` before any up: the declared network's host address.
    let declared = Workspace::recorded(&ctx).unwrap();
    let first = host_agent::pki::ensure_pki(&ctx, &declared.resolved).unwrap();
    assert!(first.host_reissued().is_none());
    let ca = first.agent_ca_pem().to_owned();
    // The first `up` on a Mac learns the provider's network.
    let up = up_workspace(&ctx, mac_network());
    let pki = host_agent::pki::ensure_pki(&ctx, &up.resolved).unwrap();
    let change = pki.host_reissued().expect("re-issued for the new address");
    assert!(
        change.after.contains(&"192.168.252.1".to_owned()),
        "{change}"
    );
    assert!(
        change.before.contains(&"192.168.64.1".to_owned()),
        "{change}"
    );
    assert_eq!(
        pki.agent_ca_pem(),
        ca,
        "nodes pin the CA: it must not change"
    );
    // Stable from then on.
    let again =
        host_agent::pki::ensure_pki(&ctx, &Workspace::recorded(&ctx).unwrap().resolved).unwrap();
    assert!(again.host_reissued().is_none());
}
