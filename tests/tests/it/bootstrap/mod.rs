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

mod kubelet_play;
mod platform;
mod policy;
mod recover_cluster;
mod recover_etcd;
mod recover_node;
mod recover_resource;
mod vault_drill;
mod velero_play;

const CP: &str = "app1-cp";
/// `up`'s timings for the recoveries that run it, short as the rig's `up`.
const UP_TIMING: [&str; 6] = [
    "--report-interval",
    "1",
    "--timeout",
    "90",
    "--ready-timeout",
    "30",
];
const WORKER: &str = "app1-worker-0";

/// Stand-ins and files one run of `up` is pointed at, for one cluster
/// (its control plane and first worker).
pub(super) struct Rig {
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
            objects: tests::bootstrap::ready_addon_objects(tests::bootstrap::role_of(self.cluster)),
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

    /// `node`'s machine is lost: its supervisor and agent killed, its
    /// namespace (its network) and its disk gone; the provider still lists
    /// it, as Multipass lists a dead VM.
    fn lose_machine(&self, node: &str) {
        for pid in [self.env.supervisor_pid(node), self.env.agent_pid(node)]
            .into_iter()
            .flatten()
        {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
        let netns = Names::for_home(self.env.home()).netns(node);
        let status = std::process::Command::new("ip")
            .args(["netns", "del", &netns])
            .status()
            .expect("ip netns del");
        assert!(status.success(), "ip netns del {netns}");
        std::fs::remove_dir_all(self.root(node)).expect("remove the node's disk");
    }

    /// `hostctl recover <scenario> <args…> --yes` with the rig's stand-ins:
    /// whether it succeeded, and both streams.
    fn recover(&self, scenario: &[&str]) -> (bool, String) {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut args = vec!["recover"];
        args.extend_from_slice(scenario);
        args.push("--yes");
        let out = self.env.hostctl_with_env(&args, &vars);
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `crictl` and `ctr` on the agents' PATH: node-agent's STAND-INs, which
    /// run Debian etcd 3.4's `etcdctl snapshot restore` for `ctr run … etcdutl`;
    /// returns their state directory (`$CRI_STANDIN_DIR`).
    fn with_cri_stand_ins(&mut self) -> PathBuf {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node-agent/tests/fixtures");
        let tools = self.env.home().join("stand-ins");
        let bin = tools.join("bin");
        let state = tools.join("cri");
        std::fs::create_dir_all(&bin).expect("mkdir");
        std::fs::create_dir_all(&state).expect("mkdir");
        for (name, fixture) in [("crictl", "crictl-standin"), ("ctr", "ctr-standin")] {
            std::os::unix::fs::symlink(fixtures.join(fixture), bin.join(name)).expect("symlink");
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.vars.push(("PATH".to_owned(), path));
        self.vars
            .push(("CRI_STANDIN_DIR".to_owned(), state.display().to_string()));
        state
    }

    /// [`Rig::recover`] of a scenario that runs `up`, with `up`'s short
    /// timings.
    fn recover_with_up(&self, scenario: &[&str]) -> (bool, String) {
        self.recover(&[scenario, &UP_TIMING].concat())
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
    policy::status_reads_kyverno(&rig, &api);

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
