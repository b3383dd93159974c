//! `Kubeadm.Init` through the real service over mutual TLS, with the
//! kubeadm stand-in: files placed with kubeadm's modes, phases streamed in
//! order, a failure at every phase named with both tails, and the
//! idempotent rerun.

use crate::kubeadm_support;
use test_support::node_harness as harness;

use harness::TestResult;
use kubeadm_support::{
    Node, apiserver_readyz_standin, collect, dead_endpoints, outcome, phases, start,
};
use proto::v1::{ErrorCode, KubeadmInitRequest, KubeadmResetRequest, PlacedFile};

const CONFIG: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";

fn file(path: &str, contents: &str, mode: u32) -> PlacedFile {
    PlacedFile {
        path: path.into(),
        contents: contents.as_bytes().to_vec(),
        mode,
    }
}

fn request(ca_pem: &str, ca_key: &str) -> KubeadmInitRequest {
    KubeadmInitRequest {
        config_yaml: CONFIG.into(),
        files: vec![
            file("pki/ca.crt", ca_pem, 0o644),
            // Asked for 0644: a key is placed 0600 whatever is asked.
            file("pki/ca.key", ca_key, 0o644),
            file("pki/etcd/ca.key", "etcd ca key", 0o600),
            file("pki/sa.pub", "sa pub", 0o755),
            file(
                "admission/admission-config.yaml",
                "kind: AdmissionConfiguration\n",
                0o644,
            ),
        ],
    }
}

#[tokio::test]
async fn init_places_files_streams_phases_and_a_rerun_is_already_done() -> TestResult {
    let (ca_pem, ca_key, readyz) = apiserver_readyz_standin()?;
    let mut endpoints = dead_endpoints()?;
    endpoints.apiserver = readyz;
    let node = start(true, endpoints).await?;
    let events = collect(node.host().await?.init(request(&ca_pem, &ca_key)).await).await?;
    assert_eq!(outcome(&events), Ok(false), "{events:#?}");

    assert_eq!(
        std::fs::read_to_string(node.path("etc/kubernetes/pki/ca.crt"))?,
        ca_pem
    );
    for (rel, mode) in [
        ("etc/kubernetes/pki", 0o755),
        ("etc/kubernetes/pki/etcd", 0o755),
        ("etc/kubernetes/admission", 0o755),
        ("etc/kubernetes/pki/ca.crt", 0o644),
        ("etc/kubernetes/pki/ca.key", 0o600),
        ("etc/kubernetes/pki/etcd/ca.key", 0o600),
        ("etc/kubernetes/pki/sa.pub", 0o644),
        ("etc/kubernetes/admission/admission-config.yaml", 0o644),
        ("etc/hostctl/kubeadm.yaml", 0o600),
    ] {
        assert_eq!(node.mode(rel)?, mode, "{rel}");
    }
    assert_eq!(
        std::fs::read_to_string(node.path("etc/hostctl/kubeadm.yaml"))?,
        CONFIG
    );
    let config = node.path("etc/hostctl/kubeadm.yaml");
    assert_eq!(
        node.calls()?,
        [vec![
            "init".to_owned(),
            "--config".into(),
            config.display().to_string()
        ]]
    );

    let expected = [
        "kubeadm/place",
        "kubeadm/[init]",
        "kubeadm/[preflight]",
        "kubeadm/[certs]",
        "kubeadm/[kubeconfig]",
        "kubeadm/[etcd]",
        "kubeadm/[control-plane]",
        "kubeadm/[kubelet-start]",
        "kubeadm/[wait-control-plane]",
        "kubeadm/[kubelet-check]",
        "kubeadm/[control-plane-check]",
        "kubeadm/[upload-config]",
        "kubeadm/[kubelet]",
        "kubeadm/[upload-certs]",
        "kubeadm/[mark-control-plane]",
        "kubeadm/[bootstrap-token]",
        "kubeadm/[kubelet-finalize]",
        "kubeadm/[addons]",
        "kubeadm",
    ];
    assert_eq!(phases(&events), expected);
    // The pre-placed CA is what kubeadm used (the stand-in says so, as
    // kubeadm does), and the banner came through.
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert!(messages.contains(&"[certs] Using existing ca certificate authority"));
    assert!(messages.contains(&"Your Kubernetes control-plane has initialized successfully!"));
    let percents: Vec<f32> = events.iter().map(|e| e.percent).collect();
    assert!(percents.windows(2).all(|w| w[1] >= w[0]), "{percents:?}");
    assert_eq!(percents.last(), Some(&100.0));
    assert!(
        events
            .iter()
            .all(|e| e.meta.as_ref().is_some_and(|m| m.node == "n1"))
    );

    // admin.conf exists and /readyz answers: nothing to do, kubeadm not run.
    let again = collect(node.host().await?.init(request(&ca_pem, &ca_key)).await).await?;
    assert_eq!(outcome(&again), Ok(true));
    assert_eq!(node.calls()?.len(), 1);
    Ok(())
}

/// An init that failed after kubeadm wrote `admin.conf`, on a node whose
/// API server then answers, looks finished; but the agent knows its own
/// init never succeeded, so the rerun resets the node and initialises it
/// again instead of answering "already done" (the phases after the failure
/// — here upload-config onwards — would otherwise never run).
#[tokio::test]
async fn a_rerun_after_a_late_failure_resets_and_initialises_again() -> TestResult {
    let (ca_pem, ca_key, readyz) = apiserver_readyz_standin()?;
    let mut endpoints = dead_endpoints()?;
    endpoints.apiserver = readyz;
    let node = start(true, endpoints).await?;
    node.control(r#"{"init": {"fail": "upload-config"}}"#)?;
    let failed = collect(node.host().await?.init(request(&ca_pem, &ca_key)).await).await?;
    assert!(outcome(&failed).is_err(), "{failed:#?}");
    assert!(node.path("etc/kubernetes/admin.conf").is_file());

    node.control("{}")?;
    let again = collect(node.host().await?.init(request(&ca_pem, &ca_key)).await).await?;
    assert_eq!(outcome(&again), Ok(false), "{again:#?}");
    assert_eq!(node.commands()?, ["init", "reset", "init"]);
    let recover = again
        .iter()
        .find(|e| e.phase == "kubeadm/recover")
        .ok_or("no recover event")?;
    assert!(
        recover.message.contains("did not succeed"),
        "{}",
        recover.message
    );
    // The CA set was placed again after the reset removed it.
    assert_eq!(
        std::fs::read_to_string(node.path("etc/kubernetes/pki/ca.crt"))?,
        ca_pem
    );

    // That init succeeded: now the node is done, and kubeadm is not run.
    let third = collect(node.host().await?.init(request(&ca_pem, &ca_key)).await).await?;
    assert_eq!(outcome(&third), Ok(true));
    assert_eq!(node.commands()?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn initialised_but_unhealthy_is_refused_with_the_way_out() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    let first = collect(node.host().await?.init(request("ca", "key")).await).await?;
    assert_eq!(outcome(&first), Ok(false));
    let again = collect(node.host().await?.init(request("ca", "key")).await).await?;
    let err = outcome(&again)
        .err()
        .ok_or("a rerun on an unhealthy node must fail")?;
    assert_eq!(err.code, ErrorCode::FailedPrecondition as i32);
    assert!(
        err.message.contains("admin.conf") && err.message.contains("Reset"),
        "{}",
        err.message
    );
    assert_eq!(node.commands()?, ["init"], "kubeadm must not run again");
    Ok(())
}

/// Every phase marker the stand-in can fail at, and the name kubeadm gives
/// the failing (sub)phase in `error execution phase …`.
const FAILING_PHASES: &[(&str, &str)] = &[
    ("certs", "certs/apiserver"),
    ("kubeconfig", "kubeconfig/admin"),
    ("etcd", "etcd/local"),
    ("control-plane", "control-plane/apiserver"),
    ("kubelet-start", "kubelet-start"),
    ("wait-control-plane", "wait-control-plane"),
    ("upload-config", "upload-config/kubeadm"),
    ("upload-certs", "upload-certs"),
    ("mark-control-plane", "mark-control-plane"),
    ("bootstrap-token", "bootstrap-token"),
    (
        "kubelet-finalize",
        "kubelet-finalize/enable-client-cert-rotation",
    ),
    ("addons", "addons/coredns"),
];

async fn failed_init(node: &Node) -> TestResult<proto::v1::Error> {
    let events = collect(node.host().await?.init(request("ca", "key")).await).await?;
    Ok(outcome(&events).err().ok_or("init must fail")?)
}

#[tokio::test]
async fn a_failure_at_each_phase_names_it_with_both_tails() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    for (marker, kubeadm_name) in FAILING_PHASES {
        node.control(&format!(r#"{{"init": {{"fail": "{marker}"}}}}"#))?;
        let err = failed_init(&node).await?;
        assert_eq!(err.code, ErrorCode::CommandFailed as i32, "{marker}");
        assert!(
            err.message.contains(&format!("({kubeadm_name})")),
            "{marker}: {}",
            err.message
        );
        assert!(err.message.contains("exit status 1"), "{}", err.message);
        assert!(
            err.detail
                .contains(&format!("error execution phase {kubeadm_name}:")),
            "{marker}: {}",
            err.detail
        );
        assert!(
            err.detail.contains("kubeadm output (last lines):"),
            "{}",
            err.detail
        );
        // The file log source has no kubelet unit; the section says so.
        assert!(
            err.detail
                .contains("kubelet journal (last 40 lines):\n(kubelet journal unavailable:"),
            "{}",
            err.detail
        );
        // Reset between attempts so the next init starts from a clean node.
        let reset = collect(node.host().await?.reset(KubeadmResetRequest {}).await).await?;
        assert_eq!(outcome(&reset), Ok(false), "{marker}");
    }
    Ok(())
}

#[tokio::test]
async fn preflight_and_validation_failures_are_classified() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    node.control(r#"{"init": {"fail": "preflight"}}"#)?;
    let err = failed_init(&node).await?;
    assert!(err.message.contains("(preflight)"), "{}", err.message);
    assert!(
        err.detail
            .contains("[ERROR Port-10250]: Port 10250 is in use"),
        "{}",
        err.detail
    );
    node.control(r#"{"init": {"fail": "validation"}}"#)?;
    let err = failed_init(&node).await?;
    assert!(err.message.contains("(validation)"), "{}", err.message);
    assert!(err.detail.contains("Invalid value"), "{}", err.detail);
    Ok(())
}

#[tokio::test]
async fn a_second_operation_while_one_runs_is_refused() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    node.control(r#"{"init": {"delaySeconds": 2}}"#)?;
    let mut client = node.host().await?;
    let first = client.init(request("ca", "key")).await?;
    let second = node.host().await?.reset(KubeadmResetRequest {}).await;
    let status = second.err().ok_or("a concurrent call must be refused")?;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("kubeadm already running"),
        "{}",
        status.message()
    );
    let events = collect(Ok(first)).await?;
    assert_eq!(outcome(&events), Ok(false));
    // Free again once the stream has ended.
    let reset = collect(node.host().await?.reset(KubeadmResetRequest {}).await).await?;
    assert_eq!(outcome(&reset), Ok(false));
    Ok(())
}

/// A lost control plane's recovery restores etcd's data before kubeadm
/// runs: kubeadm refuses a non-empty `/var/lib/etcd` (as the real one
/// does), unless the seed restore's note says the data is there on
/// purpose; then the agent waives exactly that check, the stand-in records
/// the data as present when init started, and a successful init removes
/// the note (the next init is checked as usual).
#[tokio::test]
async fn a_seeded_data_dir_is_refused_by_kubeadm_unless_the_seed_note_waives_its_check()
-> TestResult {
    use node_agent::etcd::seeded::{self, Seeded};
    let (ca_pem, ca_key, readyz) = apiserver_readyz_standin()?;
    let mut endpoints = dead_endpoints()?;
    endpoints.apiserver = readyz;
    let node = start(true, endpoints).await?;
    let member = node.path("var/lib/etcd/member/snap");
    std::fs::create_dir_all(&member)?;
    std::fs::write(member.join("db"), vec![7u8; 4096])?;

    // Data without the note: kubeadm's own refusal, named.
    let err = failed_init(&node).await?;
    assert!(
        err.detail
            .contains("[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty"),
        "{}",
        err.detail
    );
    let reset = collect(node.host().await?.reset(KubeadmResetRequest {}).await).await?;
    assert_eq!(outcome(&reset), Ok(false));

    let root = node.path("");
    seeded::mark(
        &root,
        &Seeded {
            data_dir: "/var/lib/etcd".into(),
            revision: 42,
            cluster: "c1".into(),
        },
    )?;
    let events = collect(node.host().await?.init(request(&ca_pem, &ca_key)).await).await?;
    assert_eq!(outcome(&events), Ok(false), "{events:#?}");
    let last = node.calls()?.last().cloned().unwrap_or_default();
    assert!(
        last.contains(&"--ignore-preflight-errors=DirAvailable--var-lib-etcd".to_owned()),
        "{last:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("holds a restored snapshot")),
        "{events:#?}"
    );
    assert_eq!(
        seeded::read(&root),
        None,
        "a successful init removes the note"
    );
    Ok(())
}

/// The note without the data (a reset after a failed init emptied
/// `/var/lib/etcd`): an init would start an empty etcd and present it as
/// the recovered cluster, so it is refused with the way out.
#[tokio::test]
async fn a_seed_note_whose_data_is_gone_refuses_the_init() -> TestResult {
    use node_agent::etcd::seeded::{self, Seeded};
    let node = start(true, dead_endpoints()?).await?;
    seeded::mark(
        &node.path(""),
        &Seeded {
            data_dir: "/var/lib/etcd".into(),
            revision: 42,
            cluster: "c1".into(),
        },
    )?;
    let err = failed_init(&node).await?;
    assert_eq!(err.code, ErrorCode::FailedPrecondition as i32, "{err:?}");
    assert!(err.message.contains("--restart"), "{}", err.message);
    assert!(node.calls()?.is_empty(), "kubeadm must not run");
    Ok(())
}
