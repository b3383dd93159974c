//! The whole `hostctl up` graph end to end on the local provider: real
//! hostctl and node agents in namespaces; kubeadm and helm STAND-INs; the
//! stand-in Kubernetes API server on the control plane's `:6443` inside
//! its namespace. A regression anywhere in `up` fails here.

use host_agent::cluster_api::apply::parse_documents;
use host_agent::orchestrator::{STATE_FILE, StepStatus, UpState};
use host_agent::provider::local::Names;
use host_agent::state_file::StateDocument as _;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tests::LocalEnv;
use tests::bootstrap::{NetnsApi, calls, helm_standin, write_kubeadm_wrapper, write_manifests};
use tests::kube_api::{State, node};

const CP: &str = "app1-cp";
const WORKER: &str = "app1-worker-0";

/// Stand-ins and files one run of `up` is pointed at, for one cluster
/// (its control plane and first worker).
struct Rig {
    env: LocalEnv,
    cluster: &'static str,
    cp: String,
    worker: String,
    kubeconfig: PathBuf,
    helm_dir: PathBuf,
    vars: Vec<(String, String)>,
    crds: Vec<&'static str>,
}

impl Rig {
    fn new(net: u8) -> Rig {
        Rig::for_cluster(net, "app1")
    }

    fn for_cluster(net: u8, cluster: &'static str) -> Rig {
        let (cp, worker) = (format!("{cluster}-cp"), format!("{cluster}-worker-0"));
        let env = LocalEnv::new(net, &[cp.as_str(), worker.as_str()]);
        let tools = env.home().join("stand-ins");
        let (manifests, helm_dir) = (tools.join("manifests"), tools.join("helm"));
        std::fs::create_dir_all(&helm_dir).expect("mkdir");
        let wrapper = write_kubeadm_wrapper(&tools);
        let crds = write_manifests(&manifests);
        let kubeconfig = tools.join("kubeconfig");
        std::fs::write(&kubeconfig, OTHER_KUBECONFIG).expect("kubeconfig");
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let vars = vec![
            ("HOSTCTL_KUBEADM".to_owned(), path(&wrapper)),
            ("HOSTCTL_HELM".to_owned(), path(&helm_standin())),
            ("HELM_STANDIN_DIR".to_owned(), path(&helm_dir)),
            ("HOSTCTL_MANIFESTS_DIR".to_owned(), path(&manifests)),
            ("KUBECONFIG".to_owned(), path(&kubeconfig)),
        ];
        Rig {
            env,
            cluster,
            cp,
            worker,
            kubeconfig,
            helm_dir,
            vars,
            crds,
        }
    }

    /// The stand-in API server for the cluster in its control plane's
    /// namespace, with both nodes registered and Ready.
    fn api(&self) -> NetnsApi {
        self.api_with(State {
            objects: tests::bootstrap::ready_addon_objects(),
            ..State::default()
        })
    }

    /// [`Rig::api`] answering from `state` as well.
    fn api_with(&self, state: State) -> NetnsApi {
        let cp_ip = self.ip(&self.cp);
        let names = ["127.0.0.1".to_owned(), "kubernetes".to_owned(), cp_ip];
        let state = State {
            nodes: vec![node(&self.cp, true), node(&self.worker, true)],
            ..state
        };
        let netns = Names::for_home(self.env.home()).netns(&self.cp);
        NetnsApi::start_when_ready(self.env.home(), &netns, self.cluster, &names, state)
    }

    /// A node's address: the default topology's host number in the test subnet.
    fn ip(&self, node: &str) -> String {
        let host = topology::default_topology()
            .nodes()
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.address.host_number_in(self.env.subnet))
            .unwrap_or_else(|| panic!("{node} has no host number"));
        std::net::Ipv4Addr::from(u32::from(self.env.subnet.network()) + host).to_string()
    }

    fn up(&self) -> std::process::Output {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.env.hostctl_with_env(
            &[
                "up",
                "--provider",
                "local",
                "--report-interval",
                "1",
                "--timeout",
                "90",
                "--ready-timeout",
                "30",
            ],
            &vars,
        )
    }

    fn up_ok(&self) -> String {
        let out = self.up();
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "up failed ({}):\n{text}", out.status);
        text
    }

    fn root(&self, node: &str) -> PathBuf {
        self.env.node_dir(node).join("root")
    }

    /// The kubeadm stand-in's recorded commands on `node` (`init`, `join`).
    fn kubeadm_calls(&self, node: &str) -> Vec<String> {
        calls(&self.root(node).join("kubeadm-standin/calls.jsonl"))
            .iter()
            .filter_map(|c| c["argv"][0].as_str().map(str::to_owned))
            .collect()
    }

    fn state(&self) -> UpState {
        UpState::load(&self.env.home().join(STATE_FILE)).expect("up state")
    }
}

/// A user's kubeconfig with a context of their own, which must survive.
const OTHER_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\n\
    clusters:\n- name: elsewhere\n  cluster:\n    server: https://192.0.2.1:6443\n\
    users:\n- name: me\n  user:\n    token: abc\n\
    contexts:\n- name: elsewhere\n  context:\n    cluster: elsewhere\n    user: me\n\
    current-context: elsewhere\n";

#[test]
fn up_runs_the_whole_graph_and_a_second_up_changes_nothing() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let rig = Rig::new(71);
    let api = rig.api();
    let started = Instant::now();
    let out = rig.up_ok();
    eprintln!(
        "{out}\nfirst up took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Every step of the graph is done.
    let state = rig.state();
    let expected = [
        "render/app1-cp",
        "prerequisites/app1-worker-0",
        "kubeadm-init/app1",
        "kubeconfig/app1",
        "cni/app1",
        "kubeadm-join/app1-worker-0",
        "nodes-ready/app1",
        "addons/app1",
    ];
    for id in expected {
        let record = state.steps.iter().find(|(k, _)| k.as_str() == id);
        assert_eq!(
            record.map(|(_, r)| r.status),
            Some(StepStatus::Done),
            "{id}: {record:?}"
        );
    }
    assert!(
        out.contains("cluster app1: API ok (v1.35.2), nodes 2/2 Ready"),
        "{out}"
    );

    // kubeadm: init on the control plane with the host's CA set placed …
    assert_eq!(rig.kubeadm_calls(CP), ["init"]);
    assert_eq!(rig.kubeadm_calls(WORKER), ["join"]);
    let pki = certs::Pki::open(rig.env.home()).expect("pki");
    let cluster = pki.cluster("app1").expect("app1 pki");
    let placed_ca =
        std::fs::read(rig.root(CP).join("etc/kubernetes/pki/ca.crt")).expect("placed ca.crt");
    let ca = cluster
        .files()
        .into_iter()
        .find(|f| f.relative_path == "ca.crt");
    assert_eq!(Some(placed_ca), ca.map(|f| f.contents));
    assert!(
        rig.root(CP)
            .join("etc/kubernetes/admission/admission-config.yaml")
            .is_file()
    );
    let init = read(&rig.root(CP).join("etc/hostctl/kubeadm.yaml"));
    assert!(init.contains("kind: InitConfiguration"), "{init}");
    assert!(
        init.contains(&format!("{}:6443", rig.ip(CP))),
        "endpoint: {init}"
    );

    // … and join on the worker with the CA's pin and the token whose
    // Secret the host created in kube-system.
    let requests = api.requests();
    let secrets: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/namespaces/kube-system/secrets")
        .map(|r| serde_json::from_str(&r.body).expect("secret json"))
        .collect();
    assert_eq!(secrets.len(), 1, "one bootstrap token Secret");
    let secret = &secrets[0];
    assert_eq!(secret["type"], "bootstrap.kubernetes.io/token");
    let data = &secret["stringData"];
    assert_eq!(
        secret["metadata"]["name"],
        format!(
            "bootstrap-token-{}",
            data["token-id"].as_str().unwrap_or("")
        )
    );
    assert_eq!(data["usage-bootstrap-authentication"], "true");
    assert_eq!(
        data["auth-extra-groups"],
        "system:bootstrappers:kubeadm:default-node-token"
    );
    let token = format!(
        "{}.{}",
        data["token-id"].as_str().unwrap_or(""),
        data["token-secret"].as_str().unwrap_or("")
    );
    let join = read(&rig.root(WORKER).join("etc/hostctl/kubeadm.yaml"));
    assert!(join.contains(&token), "token {token} not in:\n{join}");
    assert!(
        join.contains(&cluster.ca_cert_hash()),
        "CA pin not in:\n{join}"
    );

    // kubeconfig: merged next to the user's own context, stored 0600.
    let merged = read(&rig.kubeconfig);
    assert!(merged.contains("name: app1"), "{merged}");
    assert!(merged.contains("name: elsewhere"), "{merged}");
    assert!(merged.contains("current-context: elsewhere"), "{merged}");
    let stored = rig.env.home().join("kubeconfigs/app1.conf");
    let mode = std::fs::metadata(&stored)
        .expect("stored kubeconfig")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Cilium through helm: pinned chart, values rendered with the mesh CA.
    let helm = calls(&rig.helm_dir.join("calls.jsonl"));
    let install = helm
        .iter()
        .find(|c| c["argv"][0] == "upgrade")
        .unwrap_or_else(|| panic!("no helm upgrade in {helm:?}"));
    let argv: Vec<&str> = install["argv"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        argv.windows(2).any(|w| w
            == [
                "--version",
                host_agent::cluster_config::versions::CILIUM_CHART_VERSION
            ]),
        "{argv:?}"
    );
    let values = install["values"].as_str().unwrap_or_default();
    assert!(values.contains("clustermesh"), "{values}");
    assert_eq!(install["kubeconfig_mode"], 0o600);

    // Server-side apply of every CRD, MetalLB object and base manifest.
    let applied: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.content_type.contains("apply-patch"))
        .map(|r| r.path.as_str())
        .collect();
    for name in &rig.crds {
        assert!(
            applied.iter().any(|p| p.ends_with(&format!("/{name}"))),
            "{name}: {applied:?}"
        );
    }
    let resolved = topology::load_file(&rig.env.topology)
        .expect("topology")
        .topology
        .resolve(None)
        .expect("resolve");
    for (file, yaml) in
        host_agent::cluster_config::manifests::for_cluster(&resolved, "app1").expect("render")
    {
        for doc in parse_documents(&file, &yaml).expect("parse") {
            let suffix = format!(
                "/{}/{}",
                doc.kind.plural,
                doc.object.metadata.name.as_deref().unwrap_or("?")
            );
            assert!(
                applied.iter().any(|p| p.ends_with(&suffix)),
                "{} not applied: {applied:?}",
                doc.describe()
            );
        }
    }

    // status shows the API as the host sees it (once the control plane's
    // report says its API server is initialised: one interval).
    let app1_api = || {
        let text = rig.env.hostctl_ok(&["status", "-o", "json"]);
        let status: Value = serde_json::from_str(&text).expect("status json");
        status["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "app1")
            .map(|c| c["api"].clone())
            .unwrap_or_default()
    };
    tests::poll::until(
        "status to show app1's API ok",
        Duration::from_secs(10),
        Duration::from_millis(300),
        || (app1_api()["api"]["ok"] == true).then_some(()),
        || format!("{:#}", app1_api()),
    );

    // A second up: nothing initialised or joined again.
    let again = rig.up_ok();
    assert_eq!(rig.kubeadm_calls(CP), ["init"], "{again}");
    assert_eq!(rig.kubeadm_calls(WORKER), ["join"], "{again}");
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "a second token was minted");
    api.stop();
    rig.env.finish();
}

#[test]
fn a_failed_init_names_its_phase_blocks_the_join_and_a_rerun_completes() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let rig = Rig::new(72);
    // The control plane never comes up: kubeadm fails waiting for it, and
    // no API server answers.
    let control = rig.root(CP).join("kubeadm-standin/control.json");
    std::fs::create_dir_all(control.parent().expect("dir")).expect("mkdir");
    std::fs::write(&control, r#"{"init": {"fail": "wait-control-plane"}}"#).expect("control");
    let out = rig.up();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up succeeded:\n{stderr}");
    eprintln!("{stderr}");
    assert!(stderr.contains("kubeadm-init/app1"), "{stderr}");
    assert!(stderr.contains("wait-control-plane"), "{stderr}");
    // The node's supporting output reaches the user under the error:
    // kubeadm's own failure line and the kubelet journal's section.
    assert!(stderr.contains("kubeadm output (last lines):"), "{stderr}");
    assert!(
        stderr.contains("error execution phase wait-control-plane"),
        "{stderr}"
    );
    assert!(stderr.contains("kubelet journal"), "{stderr}");
    assert!(
        rig.kubeadm_calls(WORKER).is_empty(),
        "the join was attempted"
    );
    let state = rig.state();
    let join = state
        .steps
        .iter()
        .find(|(k, _)| k.as_str() == "kubeadm-join/app1-worker-0")
        .map(|(_, r)| r.status);
    assert_ne!(join, Some(StepStatus::Done));

    // Cleared: the control plane answers now; the rerun completes. kubeadm
    // left admin.conf behind and the API server answers, which looks like a
    // finished init: the node agent knows its init failed, so it resets the
    // node before initialising it again.
    std::fs::remove_file(&control).expect("clear the failure");
    let api = rig.api();
    let again = rig.up_ok();
    assert!(again.contains("nodes 2/2 Ready"), "{again}");
    assert!(again.contains("kubeadm/recover"), "{again}");
    assert_eq!(rig.kubeadm_calls(CP), ["init", "reset", "init"]);
    assert_eq!(rig.kubeadm_calls(WORKER), ["join"]);
    api.stop();
    rig.env.finish();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The readiness the stand-in reports: every other add-on ready at once,
/// Argo CD's CRDs Established after one look and its Deployments available
/// after two, as a controller would bring them up.
fn argocd_coming_up() -> State {
    use tests::kube_api::{crd, deployment, statefulset};
    let mut state = State {
        objects: tests::bootstrap::ready_addon_objects(),
        ..State::default()
    };
    let addon = host_agent::addons::Addon::named("argocd").expect("catalogue has argocd");
    for r in addon.readiness {
        let (later, (path, ready)) = match *r {
            host_agent::addons::Readiness::Crd(name) => (1, crd(name, true)),
            host_agent::addons::Readiness::Deployment(name) => {
                (2, deployment(addon.namespace, name, true))
            }
            host_agent::addons::Readiness::StatefulSet(name) => {
                (0, statefulset(addon.namespace, name, true))
            }
            other => panic!("no stand-in readiness for {other:?}"),
        };
        state.objects.remove(&path);
        state.later.insert(path, (later, ready));
    }
    state
}

#[test]
fn platform_addons_install_in_order_wait_for_readiness_and_resume_after_a_failure() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let mut rig = Rig::for_cluster(73, "mgmt");
    // mgmt's Vault is a real OpenBao server on the host's loopback.
    let Some((vault, var)) = tests::bootstrap::vault_for_up(rig.env.home(), "bootstrap vault")
    else {
        return;
    };
    rig.vars.push(var);
    let mut state = argocd_coming_up();
    // Argo CD's registrations fail once: the API refuses the first
    // ApplicationSet (as an admission webhook would).
    state.patch_errors.insert(
        "platform-app".into(),
        (
            422,
            tests::kube_api::status(422, "Invalid", "denied by the stand-in"),
        ),
    );
    let api = rig.api_with(state);
    let out = rig.up();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "up succeeded:\n{stderr}");
    assert!(stderr.contains("addon/mgmt/argocd-platform"), "{stderr}");
    assert!(stderr.contains("denied by the stand-in"), "{stderr}");
    let status_of = |state: &UpState, id: &str| {
        state
            .steps
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, r)| r.status)
    };
    let state = rig.state();
    assert_eq!(
        status_of(&state, "addon/mgmt/argocd"),
        Some(StepStatus::Done)
    );
    assert_eq!(
        status_of(&state, "addon/mgmt/argocd-platform"),
        Some(StepStatus::Failed)
    );

    // Order: Argo CD's chart, then its readiness as the API reported it
    // (every Deployment read until available), then its registrations.
    let requests = api.requests();
    let position = |pred: &dyn Fn(&tests::kube_api::Recorded) -> bool| {
        requests
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no such request in {requests:#?}"))
    };
    let deployment_gets = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/deployments/argocd-server"))
        .count();
    assert!(
        deployment_gets >= 3,
        "argocd-server was read {deployment_gets} time(s): readiness was not waited for"
    );
    let last_ready_read = requests
        .iter()
        .rposition(|r| r.method == "GET" && r.path.contains("/namespaces/argocd/"))
        .unwrap_or_default();
    let first_registration =
        position(&|r| r.method == "PATCH" && r.path.contains("/namespaces/argocd/secrets/"));
    assert!(
        last_ready_read < first_registration,
        "registrations were applied before Argo CD was ready"
    );
    let helm_upgrades = |calls: &[Value], release: &str| {
        calls
            .iter()
            .filter(|c| c["argv"][0] == "upgrade" && c["argv"][2] == release)
            .count()
    };
    let helm = calls(&rig.helm_dir.join("calls.jsonl"));
    assert_eq!(helm_upgrades(&helm, "argocd"), 1, "{helm:?}");
    let install = helm
        .iter()
        .find(|c| c["argv"][2] == "argocd")
        .expect("argocd install");
    let argv: Vec<&str> = install["argv"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        argv.windows(2).any(|w| w == ["--version", "10.1.1"]),
        "{argv:?}"
    );
    assert!(!argv.contains(&"--wait"), "hostctl waits itself: {argv:?}");
    assert!(
        install["values"]
            .as_str()
            .unwrap_or_default()
            .contains("dex:\n  enabled: false"),
        "{install}"
    );

    // The failure cleared, a rerun resumes: Argo CD is not installed again,
    // its registrations are applied.
    api.state
        .lock()
        .expect("state")
        .patch_errors
        .remove("platform-app");
    let again = rig.up_ok();
    let helm = calls(&rig.helm_dir.join("calls.jsonl"));
    assert_eq!(helm_upgrades(&helm, "argocd"), 1, "reinstalled:\n{again}");
    let state = rig.state();
    for id in ["addon/mgmt/argocd", "addon/mgmt/argocd-platform"] {
        assert_eq!(status_of(&state, id), Some(StepStatus::Done), "{id}");
    }
    let applied: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect();
    for object in [
        "/namespaces/argocd/secrets/cluster-mgmt",
        "/namespaces/argocd/secrets/repo-platform",
        "/namespaces/argocd/appprojects/platform",
        "/namespaces/argocd/applicationsets/platform-app",
        "/namespaces/argocd/applicationsets/platform-mgmt",
    ] {
        assert!(
            applied.iter().any(|p| p.ends_with(object)),
            "{object} not applied: {applied:?}"
        );
    }

    // addons status shows the result, as the cluster reports it.
    let text = rig
        .env
        .hostctl_ok(&["addons", "status", "mgmt", "-o", "json"]);
    let status: Value = serde_json::from_str(&text).expect("status json");
    let named = |status: &Value, name: &str| -> Value {
        status["clusters"][0]["addons"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no add-on {name} in {status}"))
    };
    let argocd = named(&status, "argocd");
    assert_eq!(argocd["installed_version"], "10.1.1", "{text}");
    assert_eq!(argocd["state"], "done", "{text}");
    assert_eq!(argocd["ready"], true, "{text}");
    assert_eq!(named(&status, "argocd-platform")["state"], "done", "{text}");
    // Phase 1 of the PKI came first: cert-manager, then its lab-CA issuer,
    // ready when the API reports the ClusterIssuer's Ready condition.
    for name in ["cert-manager", "lab-ca", "vault"] {
        assert_eq!(named(&status, name)["state"], "done", "{text}");
        assert_eq!(named(&status, name)["ready"], true, "{text}");
    }
    // Vault was bootstrapped through its API by the add-on's step: the
    // real server is initialised and unsealed, the key files are private.
    let said = rig.env.hostctl_with_env(
        &["-o", "json", "vault", "status"],
        &[("HOSTCTL_VAULT_ADDRESS", vault.address().as_str())],
    );
    let vault_status: Value = serde_json::from_slice(&said.stdout).expect("vault status json");
    assert_eq!(vault_status["initialized"], true, "{vault_status}");
    assert_eq!(vault_status["sealed"], false, "{vault_status}");
    let keys = rig.env.home().join("pki/vault");
    for file in ["unseal.key", "admin.token"] {
        let mode = std::fs::metadata(keys.join(file))
            .expect(file)
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    assert!(
        applied
            .iter()
            .any(|p| p.ends_with("/clusterissuers/lab-ca")),
        "{applied:?}"
    );
    // … and why not, when not: a Deployment that loses its pod.
    let (path, down) = tests::kube_api::deployment("argocd", "argocd-repo-server", false);
    api.state.lock().expect("state").objects.insert(path, down);
    let text = rig
        .env
        .hostctl_ok(&["addons", "status", "mgmt", "-o", "json"]);
    let status: Value = serde_json::from_str(&text).expect("status json");
    let argocd = named(&status, "argocd");
    assert_eq!(argocd["ready"], false, "{text}");
    assert!(
        argocd["why_not"]
            .as_str()
            .unwrap_or_default()
            .contains("argocd-repo-server available: 0/1 available"),
        "{text}"
    );
    api.stop();
    rig.env.finish();
}
