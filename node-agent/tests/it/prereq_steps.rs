//! Prerequisites against a temporary root with the recording stand-in:
//! what is written, what would have been run (argv, no shell), how a rerun
//! resumes, and how a failure is reported.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use node_agent::exec::{RECORD_PATH, Recorded, RecordingRunner};
use node_agent::prereq::Inputs;
use node_agent::prereq::run::{ALREADY_DONE, APPLIED, Prerequisites, StepFailed};
use node_agent::prereq::steps::Step;
use proto::v1::progress_event::Outcome;
use proto::v1::{NodeMeta, PrerequisitesRequest, ProgressEvent};
use tokio::sync::mpsc;

pub(crate) type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    pub(crate) fn new() -> TestResult<Node> {
        Ok(Node {
            dir: tempfile::tempdir()?,
        })
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn log(&self) -> PathBuf {
        node_agent::config::rooted(&self.root(), RECORD_PATH)
    }

    pub(crate) fn runner(&self) -> RecordingRunner {
        RecordingRunner::new(self.log())
    }

    pub(crate) fn file(&self, path: &str) -> TestResult<String> {
        Ok(std::fs::read_to_string(node_agent::config::rooted(
            &self.root(),
            path,
        ))?)
    }

    fn recorded(&self) -> TestResult<Vec<Recorded>> {
        Ok(RecordingRunner::read(&self.log())?)
    }

    /// Runs once; returns the outcome and every event.
    pub(crate) async fn run(
        &self,
        runner: RecordingRunner,
        inputs: &Inputs,
    ) -> (Result<bool, StepFailed>, Vec<ProgressEvent>) {
        let p = Prerequisites {
            root: self.root(),
            state_dir: self.root().join("var/lib/hostctl-agent"),
            runner: Arc::new(runner),
            meta: NodeMeta {
                node: "n1".into(),
                cluster: "test".into(),
            },
        };
        let (tx, mut rx) = mpsc::channel(256);
        let outcome = p.run(inputs, &tx).await;
        drop(tx);
        let mut events = Vec::new();
        while let Some(Ok(e)) = rx.recv().await {
            events.push(e);
        }
        (outcome, events)
    }
}

pub(crate) fn inputs(proxy: &str, mirror: &str) -> TestResult<Inputs> {
    Ok(Inputs::from_request(&PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        apt_proxy: proxy.into(),
        registry_mirror: mirror.into(),
        ..PrerequisitesRequest::default()
    })?)
}

fn argv(args: &[&str]) -> Recorded {
    Recorded::Argv(args.iter().map(|a| (*a).to_owned()).collect())
}

/// The per-step verdicts (`done` / `already done`) in stream order.
fn verdicts(events: &[ProgressEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e.outcome.is_none() && (e.message == APPLIED || e.message == ALREADY_DONE))
        .map(|e| (e.phase.clone(), e.message.clone()))
        .collect()
}

fn phases(verdict: &str) -> Vec<(String, String)> {
    Step::ALL
        .iter()
        .map(|s| (format!("prerequisites/{}", s.name()), verdict.to_owned()))
        .collect()
}

fn mode(path: &Path) -> TestResult<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[tokio::test]
async fn first_run_writes_the_files_and_records_argv_in_order() -> TestResult {
    let node = Node::new()?;
    std::fs::create_dir_all(node.root().join("etc"))?;
    std::fs::write(
        node.root().join("etc/fstab"),
        "UUID=x / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
    )?;
    let (outcome, events) = node
        .run(
            node.runner(),
            &inputs("http://10.0.0.1:8081", "https://10.0.0.1:8443")?,
        )
        .await;
    assert!(!outcome?, "a fresh root was reported as already done");

    assert_eq!(verdicts(&events), phases(APPLIED));
    let last = events.last().ok_or("no events")?;
    assert_eq!(last.phase, "prerequisites");
    assert!(
        matches!(last.outcome, Some(Outcome::Done(ref d)) if !d.already_done),
        "{last:?}"
    );
    assert_eq!(last.percent, 100.0);

    let pin = "1.35.0-*";
    let expected = vec![
        argv(&["swapoff", "-a"]),
        argv(&["modprobe", "overlay"]),
        argv(&["modprobe", "br_netfilter"]),
        argv(&["sysctl", "--system"]),
        argv(&["apt-get", "update"]),
        argv(&["apt-get", "install", "-y", "containerd"]),
        argv(&["systemctl", "enable", "--now", "containerd"]),
        argv(&["systemctl", "restart", "containerd"]),
        Recorded::Fetch("https://pkgs.k8s.io/core:/stable:/v1.35/deb/Release.key".into()),
        argv(&["apt-get", "update"]),
        argv(&[
            "apt-get",
            "install",
            "-y",
            "--allow-change-held-packages",
            &format!("kubelet={pin}"),
            &format!("kubeadm={pin}"),
            &format!("kubectl={pin}"),
        ]),
        argv(&["apt-mark", "hold", "kubelet", "kubeadm", "kubectl"]),
    ];
    assert_eq!(node.recorded()?, expected);

    assert!(
        node.file("/etc/modules-load.d/k8s.conf")?
            .contains("overlay\nbr_netfilter\n")
    );
    let sysctl = node.file("/etc/sysctl.d/99-kubernetes.conf")?;
    for line in [
        "net.bridge.bridge-nf-call-iptables = 1",
        "net.bridge.bridge-nf-call-ip6tables = 1",
        "net.ipv4.ip_forward = 1",
    ] {
        assert!(sysctl.contains(line), "{sysctl}");
    }
    let fstab = node.file("/etc/fstab")?;
    assert!(fstab.contains("UUID=x / ext4 defaults 0 1\n"));
    assert!(fstab.contains("# disabled by hostctl"), "{fstab}");
    let containerd = node.file("/etc/containerd/config.toml")?;
    assert!(containerd.contains("SystemdCgroup = true"), "{containerd}");
    assert!(containerd.contains("config_path = \"/etc/containerd/certs.d\""));
    assert!(containerd.contains("registry.k8s.io/pause:3.10.1"));
    for registry in ["docker.io", "registry.k8s.io"] {
        let hosts = node.file(&format!("/etc/containerd/certs.d/{registry}/hosts.toml"))?;
        assert!(
            hosts.contains("[host.\"https://10.0.0.1:8443\"]"),
            "{hosts}"
        );
    }
    assert_eq!(
        node.file("/etc/apt/sources.list.d/kubernetes.list")?
            .lines()
            .last(),
        Some(
            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /"
        )
    );
    let proxy = node.file("/etc/apt/apt.conf.d/90hostctl-proxy")?;
    assert!(proxy.contains("Acquire::https::Proxy \"http://10.0.0.1:8081\";"));
    assert!(
        node.file("/etc/crictl.yaml")?
            .contains("unix:///run/containerd/containerd.sock")
    );
    // The keyring holds the de-armoured (binary) stand-in key.
    let keyring = node
        .root()
        .join("etc/apt/keyrings/kubernetes-apt-keyring.gpg");
    assert_eq!(std::fs::read(&keyring)?.first(), Some(&0x99));
    assert_eq!(mode(&keyring)?, 0o644);
    assert_eq!(mode(&node.root().join("etc/apt/keyrings"))?, 0o755);
    assert_eq!(
        mode(&node.root().join("etc/sysctl.d/99-kubernetes.conf"))?,
        0o644
    );
    let state = node.root().join("var/lib/hostctl-agent/prereq-state.json");
    assert_eq!(mode(&state)?, 0o600);
    Ok(())
}

#[tokio::test]
async fn a_rerun_is_already_done_and_runs_nothing() -> TestResult {
    let node = Node::new()?;
    let i = inputs("", "")?;
    node.run(node.runner(), &i).await.0?;
    let before = node.recorded()?.len();
    let (outcome, events) = node.run(node.runner(), &i).await;
    assert!(outcome?, "a complete node was not reported as already done");
    assert_eq!(verdicts(&events), phases(ALREADY_DONE));
    assert!(matches!(
        events.last().and_then(|e| e.outcome.clone()),
        Some(Outcome::Done(d)) if d.already_done
    ));
    assert_eq!(
        node.recorded()?.len(),
        before,
        "the rerun recorded commands"
    );
    Ok(())
}

#[tokio::test]
async fn changed_inputs_redo_only_the_affected_steps() -> TestResult {
    let node = Node::new()?;
    node.run(node.runner(), &inputs("", "")?).await.0?;
    let before = node.recorded()?.len();

    let (outcome, events) = node
        .run(node.runner(), &inputs("http://10.0.0.1:8081", "")?)
        .await;
    assert!(!outcome?);
    let redone: Vec<String> = verdicts(&events)
        .into_iter()
        .filter(|(_, v)| v == APPLIED)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(redone, ["prerequisites/apt-proxy"]);
    assert_eq!(
        node.recorded()?.len(),
        before,
        "the proxy step runs no command"
    );
    assert!(
        node.file("/etc/apt/apt.conf.d/90hostctl-proxy")?
            .contains("10.0.0.1:8081")
    );

    // Adding a mirror redoes containerd's configuration (and restarts it).
    let (_, events) = node
        .run(
            node.runner(),
            &inputs("http://10.0.0.1:8081", "https://m:8443")?,
        )
        .await;
    let redone: Vec<String> = verdicts(&events)
        .into_iter()
        .filter(|(_, v)| v == APPLIED)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(redone, ["prerequisites/containerd-config"]);
    assert_eq!(
        node.recorded()?.last(),
        Some(&argv(&["systemctl", "restart", "containerd"]))
    );

    // Removing both undoes them: the files are gone.
    node.run(node.runner(), &inputs("", "")?).await.0?;
    assert!(
        !node
            .root()
            .join("etc/apt/apt.conf.d/90hostctl-proxy")
            .exists()
    );
    assert!(
        !node
            .root()
            .join("etc/containerd/certs.d/docker.io/hosts.toml")
            .exists()
    );
    Ok(())
}

#[tokio::test]
async fn a_deleted_file_is_put_back() -> TestResult {
    let node = Node::new()?;
    let i = inputs("", "")?;
    node.run(node.runner(), &i).await.0?;
    std::fs::remove_file(node.root().join("etc/crictl.yaml"))?;
    let (_, events) = node.run(node.runner(), &i).await;
    assert!(verdicts(&events).contains(&("prerequisites/crictl".into(), APPLIED.into())));
    assert!(node.root().join("etc/crictl.yaml").exists());
    Ok(())
}

#[tokio::test]
async fn a_missing_package_names_the_step_and_the_package_and_resumes() -> TestResult {
    let node = Node::new()?;
    let i = inputs("", "")?;
    let failing = node.runner().fail_when(
        &["apt-get", "install", "-y", "--allow-change-held-packages"],
        100,
        "Reading package lists...\nE: Unable to locate package kubeadm\n",
    );
    let (outcome, events) = node.run(failing, &i).await;
    let failed = outcome.err().ok_or("the run succeeded")?;
    assert_eq!(failed.step, "kubernetes-packages");
    let last = events.last().ok_or("no events")?;
    assert_eq!(last.phase, "prerequisites/kubernetes-packages");
    let Some(Outcome::Error(error)) = &last.outcome else {
        return Err(format!("last event is not an error: {last:?}").into());
    };
    assert!(
        error.message.contains("kubernetes-packages"),
        "{}",
        error.message
    );
    assert!(error.message.contains("kubeadm"), "{}", error.message);
    assert!(
        error.message.contains("pkgs.k8s.io/core:/stable:/v1.35"),
        "{}",
        error.message
    );
    assert_eq!(error.code, proto::v1::ErrorCode::NotFound as i32);

    let state = node.file("/var/lib/hostctl-agent/prereq-state.json")?;
    assert!(state.contains("kubernetes-repo"), "{state}");
    assert!(!state.contains("kubernetes-packages"), "{state}");
    assert!(
        !node.recorded()?.contains(&argv(&[
            "apt-mark", "hold", "kubelet", "kubeadm", "kubectl"
        ])),
        "held after a failed install"
    );

    // The repository is fixed: the rerun resumes at the failed step.
    let (outcome, events) = node.run(node.runner(), &i).await;
    assert!(!outcome?);
    let applied: Vec<(String, String)> = verdicts(&events)
        .into_iter()
        .filter(|(_, v)| v == APPLIED)
        .collect();
    // The failed step and the one the failure kept from running.
    assert_eq!(
        applied,
        [
            (
                "prerequisites/kubernetes-packages".to_owned(),
                APPLIED.to_owned()
            ),
            ("prerequisites/crictl".to_owned(), APPLIED.to_owned()),
        ]
    );
    assert!(
        node.file("/var/lib/hostctl-agent/prereq-state.json")?
            .contains("kubernetes-packages")
    );
    Ok(())
}

/// A flat repository (`apt_repository`): its list is written, apt reads it
/// alone, pkgs.k8s.io's key and list go away (left by an earlier run),
/// and a package it lacks is named with the repository's URL.
#[tokio::test]
async fn a_flat_repository_replaces_the_sources_and_pkgs_k8s_io() -> TestResult {
    let node = Node::new()?;
    for left in [
        "etc/apt/sources.list.d/kubernetes.list",
        "etc/apt/keyrings/kubernetes-apt-keyring.gpg",
    ] {
        let path = node.root().join(left);
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        std::fs::write(path, "left by an earlier run")?;
    }
    let url = "http://10.0.0.1:8082/debs";
    let mirrored = Inputs::from_request(&PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        apt_repository: format!("{url}/"),
        ..PrerequisitesRequest::default()
    })?;
    let only_mirror = [
        "apt-get",
        "-o",
        "Dir::Etc::SourceList=/etc/apt/sources.list.d/hostctl-mirror.list",
        "-o",
        "Dir::Etc::SourceParts=-",
        "-o",
        "APT::Get::List-Cleanup=0",
    ];
    let mut install = only_mirror.to_vec();
    install.extend(["install", "-y", "--allow-change-held-packages"]);
    let failing = node.runner().fail_when(
        &install,
        100,
        "E: Unable to locate package kubelet\nE: Unable to locate package kubeadm\n",
    );
    let (outcome, events) = node.run(failing, &mirrored).await;
    let failed = outcome.err().ok_or("the mirror has no kubeadm")?;
    assert_eq!(failed.step, "kubernetes-packages");
    let Some(Outcome::Error(error)) = events.last().and_then(|e| e.outcome.clone()) else {
        return Err("no error event".into());
    };
    let missing = format!("packages kubelet, kubeadm are not available from {url}");
    assert!(error.message.contains(&missing), "{}", error.message);
    assert_eq!(
        node.file("/etc/apt/sources.list.d/hostctl-mirror.list")?
            .lines()
            .last(),
        Some(format!("deb [trusted=yes] {url}/ ./").as_str())
    );
    for gone in [
        "etc/apt/sources.list.d/kubernetes.list",
        "etc/apt/keyrings/kubernetes-apt-keyring.gpg",
    ] {
        assert!(!node.root().join(gone).exists(), "{gone} is still there");
    }
    let recorded = node.recorded()?;
    let apt: Vec<&Recorded> = recorded
        .iter()
        .filter(|r| matches!(r, Recorded::Argv(a) if a[0] == "apt-get"))
        .collect();
    assert_eq!(apt.len(), 4, "{recorded:?}");
    for r in &apt {
        assert!(
            matches!(r, Recorded::Argv(a) if a.starts_with(&only_mirror.map(String::from))),
            "{r:?}"
        );
    }
    assert!(
        !recorded.iter().any(|r| matches!(r, Recorded::Fetch(_))),
        "pkgs.k8s.io's key was fetched: {recorded:?}"
    );
    Ok(())
}
