//! What the `bootstrap` suite puts around a real `hostctl up` so it can run
//! the whole graph on a developer machine: the kubeadm STAND-IN on the
//! nodes (through a wrapper that gives it the node's root), the helm
//! STAND-IN on the host, local copies of the upstream manifests, and the
//! stand-in Kubernetes API server ([`crate::kube_api`]) serving on
//! `<control plane>:6443` from inside the control plane's network
//! namespace — where a real kube-apiserver would listen.

use crate::kube_api::{self, ApiServer, Recorded, State};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The repository's root (this crate is `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// node-agent's kubeadm stand-in (see its fixtures README).
pub fn kubeadm_standin() -> PathBuf {
    repo().join("node-agent/tests/fixtures/kubeadm-standin")
}

/// host-agent's helm stand-in (records to `$HELM_STANDIN_DIR/calls.jsonl`).
pub fn helm_standin() -> PathBuf {
    repo().join("host-agent/tests/fixtures/helm-standin")
}

/// Writes `<dir>/kubeadm`: runs the stand-in with `KUBEADM_STANDIN_ROOT`
/// set to the calling node's root, found from the configuration path the
/// node agent passes (`<root>/etc/hostctl/kubeadm.yaml`), or for `reset`,
/// which takes none, from the calling agent's own `--config`
/// (`<root>/etc/hostctl/node-agent.yaml`, read from `/proc/$PPID/cmdline`).
/// Every node runs the same wrapper; each gets its own root.
pub fn write_kubeadm_wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("kubeadm");
    let script = format!(
        "#!/bin/sh\n\
         # TEST WRAPPER around the kubeadm stand-in (not kubeadm).\n\
         cfg=''; prev=''\n\
         for a in \"$@\"; do [ \"$prev\" = --config ] && cfg=\"$a\"; prev=\"$a\"; done\n\
         root=\"${{cfg%/etc/hostctl/kubeadm.yaml}}\"\n\
         if [ -z \"$cfg\" ]; then\n\
           agent=$(tr '\\0' '\\n' < /proc/$PPID/cmdline | sed -n '/^--config$/{{n;p;}}')\n\
           root=\"${{agent%/etc/hostctl/node-agent.yaml}}\"\n\
         fi\n\
         [ -n \"$root\" ] || {{ echo 'wrapper: no --config, and none on the calling agent' >&2; exit 97; }}\n\
         KUBEADM_STANDIN_ROOT=\"$root\" exec {} \"$@\"\n",
        kubeadm_standin().display()
    );
    std::fs::write(&path, script).expect("write kubeadm wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The objects `<dir>/gateway-api` and `<dir>/metallb` stand for: one CRD
/// each (and MetalLB's namespace), applied instead of the pinned URLs.
pub fn write_manifests(dir: &Path) -> Vec<&'static str> {
    let crd = |name: &str, group: &str, kind: &str, plural: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
             metadata:\n  name: {name}\nspec:\n  group: {group}\n  scope: Namespaced\n\
             names:\n    kind: {kind}\n    plural: {plural}\n    singular: {}\n\
             versions:\n  - name: v1\n    served: true\n    storage: true\n\
             \x20   schema:\n      openAPIV3Schema:\n        type: object\n",
            kind.to_lowercase()
        )
    };
    let files = [
        (
            "gateway-api/standard-install.yaml",
            crd(
                "gateways.gateway.networking.k8s.io",
                "gateway.networking.k8s.io",
                "Gateway",
                "gateways",
            ),
        ),
        (
            "metallb/metallb-native.yaml",
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: metallb-system\n---\n{}",
                crd(
                    "ipaddresspools.metallb.io",
                    "metallb.io",
                    "IPAddressPool",
                    "ipaddresspools"
                )
            ),
        ),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write manifest");
    }
    vec![
        "gateways.gateway.networking.k8s.io",
        "metallb-system",
        "ipaddresspools.metallb.io",
    ]
}

/// The stand-in API server running in a node's network namespace, started
/// by a watcher thread as soon as the namespace and the cluster's CA exist
/// (`hostctl up` creates both before the node can even enrol).
pub struct NetnsApi {
    pub state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl NetnsApi {
    /// Watches for `/run/netns/<netns>` and `home`'s PKI, then serves on
    /// `0.0.0.0:6443` inside the namespace with a certificate for `names`.
    pub fn start_when_ready(
        home: &Path,
        netns: &str,
        cluster: &str,
        names: &[String],
        state: State,
    ) -> NetnsApi {
        let state = Arc::new(Mutex::new(state));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (home, netns, cluster) = (home.to_path_buf(), netns.to_owned(), cluster.to_owned());
        let (names, shared) = (names.to_vec(), state.clone());
        let thread = std::thread::spawn(move || {
            let pki = wait_for(&home, &netns, &cluster)?;
            enter_netns_when_mounted(&netns)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 6443));
                let _server: ApiServer = kube_api::serve(&pki, &cluster, addr, &refs, shared).await;
                let _ = stopped.await;
            });
            Ok(())
        });
        NetnsApi {
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").requests.clone()
    }

    /// Stops serving; panics with the watcher's error if it never served.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) if !std::thread::panicking() => panic!("stand-in API server: {e}"),
                _ => {}
            }
        }
    }
}

impl Drop for NetnsApi {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long the watcher waits for `up` to create the namespace.
const WATCH_LIMIT: Duration = Duration::from_secs(120);

fn wait_for(home: &Path, netns: &str, cluster: &str) -> Result<certs::Pki, String> {
    let started = Instant::now();
    let ns = Path::new("/run/netns").join(netns);
    loop {
        if ns.exists()
            && let Ok(pki) = certs::Pki::open(home)
            && pki.cluster(cluster).is_ok()
        {
            return Ok(pki);
        }
        if started.elapsed() > WATCH_LIMIT {
            return Err(format!(
                "{} or the PKI of {cluster} never appeared",
                ns.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`enter_netns`], retried until [`WATCH_LIMIT`]: `ip netns add` creates
/// the file before it bind-mounts the namespace on it, and a `setns` in
/// between fails (seen once as a stand-in API server that never started).
fn enter_netns_when_mounted(netns: &str) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match enter_netns(netns) {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > WATCH_LIMIT => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Moves this thread (only) into the named network namespace.
fn enter_netns(netns: &str) -> Result<(), String> {
    let file = std::fs::File::open(Path::new("/run/netns").join(netns))
        .map_err(|e| format!("open netns {netns}: {e}"))?;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("setns {netns}: {e}"))
}

/// Every line of a `calls.jsonl` as JSON (none when the file is absent).
pub fn calls(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The role the default topology gives `cluster` (the suites' clusters
/// are the default's).
pub fn role_of(cluster: &str) -> topology::ClusterRole {
    topology::default_topology()
        .cluster(cluster)
        .map_or(topology::ClusterRole::App, |c| c.role)
}

/// Every readiness object of every catalogue add-on a cluster of `role`
/// gets, ready (for suites that run whole clusters against the stand-in
/// API server): a mgmt stand-in holds no Kyverno, as a real mgmt does not.
pub fn ready_addon_objects(
    role: topology::ClusterRole,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    use crate::kube_api::{crd, custom_object, daemonset, deployment, statefulset};
    use host_agent::addons::{Readiness, catalogue};
    let mut objects = std::collections::BTreeMap::new();
    for addon in catalogue().iter().filter(|a| a.placement.includes(role)) {
        for r in addon.readiness {
            let (path, value) = match *r {
                Readiness::Crd(name) => crd(name, true),
                Readiness::Deployment(name) => deployment(addon.namespace, name, true),
                Readiness::StatefulSet(name) => statefulset(addon.namespace, name, true),
                Readiness::DaemonSet(name) => daemonset(addon.namespace, name, true),
                Readiness::Condition(c) => {
                    let kind = host_agent::cluster_api::resources::lookup(c.api_version, c.kind)
                        .unwrap_or_else(|| panic!("{} is not in the resource table", c.kind));
                    custom_object(
                        c.api_version,
                        c.kind,
                        kind.plural,
                        kind.namespaced.then_some(addon.namespace),
                        c.name,
                        c.condition,
                        true,
                    )
                }
            };
            objects.insert(path, value);
        }
    }
    objects
}

/// The real OpenBao server standing in for mgmt's in-cluster Vault in an
/// end-to-end `up`: the home's PKI is created first (as `up` would), the
/// server serves a certificate under its lab root, and the returned
/// variable points `up`'s Vault bootstrap at it. `None` (after the skip,
/// a failure where CI requires it) without a `bao` binary.
pub fn vault_for_up(
    home: &Path,
    test: &str,
) -> Option<(test_support::openbao::Bao, (String, String))> {
    let binary = test_support::openbao::bao_or_skip(test)?;
    let resolved = topology::default_topology()
        .resolve(None)
        .expect("default resolves");
    let pki = certs::Pki::open_or_init(home, &host_agent::pki::spec_for(&resolved)).expect("pki");
    let dir = home.join("stand-ins").join("openbao");
    std::fs::create_dir_all(&dir).expect("mkdir openbao");
    let bao = test_support::openbao::start_under_lab_root(&binary, &dir, &pki).expect("bao starts");
    let var = ("HOSTCTL_VAULT_ADDRESS".to_owned(), bao.address());
    Some((bao, var))
}
