//! Real VMs: `hostctl up --provider qemu` boots one node from the test
//! image; cloud-init installs and starts the node agent under systemd; the
//! agent enrols over mTLS with this machine's host agent and reports from
//! inside the VM, then runs the prerequisites against the VM's real apt,
//! pointed at a flat repository this test builds and serves
//! ([`tests::apt_mirror`]): containerd installs from it, the Kubernetes
//! packages it lacks fail as a classified error. Each boot costs 1.5–3 min
//! under TCG, so one VM serves every check of the working path, in order,
//! in one test; a second test boots one VM with a corrupted enrolment
//! token. The tests take a lock so they never boot at the same time (two
//! TCG guests on a small CI machine would each take twice as long).

use std::time::{Duration, Instant};
use tests::apt_mirror::{self, AptMirror};
use tests::qemu::{QemuEnv, can_run_vms};

const NODE: &str = "mgmt-cp";

/// What the test's repository carries: containerd and what it needs that
/// the test image lacks. The Kubernetes packages are deliberately absent.
const MIRRORED: [&str; 2] = ["containerd", "runc"];

/// `up --timeout` for the node with a corrupted token: far longer than a
/// boot, so only the early refusal (not the timeout) can end the wait in
/// the time the test takes.
const BROKEN_ENROL_TIMEOUT: &str = "1500";

/// One VM at a time (see the module documentation).
fn one_vm_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    tests::suite::enter();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn host_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn vm_node_enrols_reports_from_inside_restarts_under_systemd_and_is_removed() {
    let _one = one_vm_at_a_time();
    if !can_run_vms("qemu_vm") {
        return;
    }
    let started = Instant::now();
    let q = QemuEnv::new(21, &[NODE]);
    eprintln!("image ready after {:?}", started.elapsed());
    let mirror = apt_mirror::can_build("qemu_vm").then(|| {
        let mut m = AptMirror::build(&MIRRORED, q.env.host_address(), 18021);
        q.set_apt_repository(&m.url());
        // The address exists once `up` has made the bridge.
        m.serve(Duration::from_secs(1200));
        m
    });
    eprintln!("apt repository ready after {:?}", started.elapsed());

    // up: boot, cloud-init, enrolment, first report, then the
    // prerequisites inside the VM against the test's repository.
    let up = q.hostctl(&[
        "up",
        "--nodes-only",
        "--provider",
        "qemu",
        "--report-interval",
        "5",
        // A boot under TCG takes ~4 min here, and three times that on a
        // loaded machine (seen in a rehearsal): the deadline is generous.
        "--timeout",
        "1200",
    ]);
    let up_out = String::from_utf8_lossy(&up.stdout).into_owned();
    let up_err = String::from_utf8_lossy(&up.stderr).into_owned();
    let row = up_out
        .lines()
        .find(|l| l.starts_with(NODE))
        .unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells.len() >= 4 && cells[1..4].iter().all(|c| c.ends_with('s')),
        "render, launch and enrol must be done:\n{up_out}\n{up_err}"
    );
    eprintln!("up done after {:?}:\n{up_err}", started.elapsed());
    if let Some(mirror) = &mirror {
        prerequisites_used_the_repository(&q, mirror, up.status.success(), &up_err);
    }
    let vm = q.env.home().join("qemu").join(NODE);
    assert!(vm.join("disk.qcow2").is_file() && vm.join("seed.img").is_file());

    // The report comes from the VM: its boot id, kernel and memory.
    let reports = q.env.history(NODE);
    let last = reports
        .last()
        .and_then(|r| r.report.clone())
        .expect("a report");
    let system = last.system.clone().expect("system info in the report");
    let guest_boot_id = q.guest(NODE, &["/bin/cat", "/proc/sys/kernel/random/boot_id"]);
    let guest_kernel = q.guest(NODE, &["/bin/uname", "-r"]);
    assert_eq!(system.boot_id, guest_boot_id.stdout.trim());
    assert_ne!(
        system.boot_id,
        host_boot_id(),
        "the report must not come from the host"
    );
    assert_eq!(system.kernel, guest_kernel.stdout.trim());
    assert!(
        system.memory_total_bytes > 1 << 30 && system.memory_total_bytes <= 4 << 30,
        "memory {} is the VM's (topology: 4GiB), not the host's",
        system.memory_total_bytes
    );

    // hostctl logs: the VM's journal.
    let logs = q.hostctl_ok(&["logs", NODE, "--tail", "200"]);
    assert!(
        logs.contains("hostctl-node-agent") || logs.contains("node-agent"),
        "logs do not show the VM's journal:\n{logs}"
    );

    // Kill the agent: systemd restarts it and it reports again under a new
    // instance, with the key and certificate it has (no new token).
    let instance = last.agent_instance.clone();
    let kill = q.guest(
        NODE,
        &[
            "/bin/systemctl",
            "kill",
            "-s",
            "KILL",
            "hostctl-node-agent.service",
        ],
    );
    assert_eq!(kill.exit_code, 0, "{kill:?}");
    let restarted = tests::poll::until(
        "a report from the restarted agent",
        Duration::from_secs(120),
        Duration::from_secs(2),
        || {
            q.env
                .history(NODE)
                .into_iter()
                .filter_map(|r| r.report)
                .find(|r| r.agent_instance != instance)
        },
        || "no report under a new agent instance".to_owned(),
    );
    assert_eq!(
        restarted.system.map(|s| s.boot_id).unwrap_or_default(),
        system.boot_id,
        "same VM boot: the agent restarted, not the VM"
    );
    let restarts = q.guest(
        NODE,
        &[
            "/bin/systemctl",
            "show",
            "-p",
            "NRestarts",
            "--value",
            "hostctl-node-agent.service",
        ],
    );
    assert!(
        restarts.stdout.trim().parse::<u32>().unwrap_or(0) >= 1,
        "{restarts:?}"
    );
    eprintln!("restart checked after {:?}", started.elapsed());

    // down --purge removes the VM, its files, tap and bridge.
    q.hostctl_ok(&["down", "--purge"]);
    assert!(!vm.exists(), "{} survived down --purge", vm.display());
    let left = q.leftovers();
    assert!(left.is_empty(), "down --purge left behind: {left:?}");
    eprintln!("total {:?}", started.elapsed());
}

/// The prerequisites ran against the VM's real apt and the test's
/// repository: containerd came from it and is installed; the Kubernetes
/// packages it lacks failed `up` with the classified error, naming them
/// and the repository.
fn prerequisites_used_the_repository(q: &QemuEnv, mirror: &AptMirror, up_ok: bool, up_err: &str) {
    assert!(
        !up_ok,
        "up must fail: the repository has no kubeadm\n{up_err}"
    );
    // `<node>: prerequisites failed at kubernetes-packages: packages …
    // kubeadm … are not available from <url>` (PrereqError::PackageMissing).
    let from = format!("are not available from {}", mirror.url());
    let line = up_err
        .lines()
        .find(|l| l.contains(&from))
        .unwrap_or_else(|| panic!("no {from:?} in:\n{up_err}"));
    for expected in [NODE, "kubernetes-packages", "kubeadm"] {
        assert!(line.contains(expected), "{expected:?} not in {line:?}");
    }
    let fetched = mirror.requests();
    assert!(
        fetched.iter().any(|p| p.contains("Packages")),
        "apt never read the index: {fetched:?}"
    );
    assert!(
        fetched.iter().any(|p| p.contains("containerd_")),
        "containerd was not fetched from the repository: {fetched:?}"
    );
    let status = q.guest(
        NODE,
        &[
            "/usr/bin/dpkg-query",
            "-W",
            "-f=${Status} ${Version}",
            "containerd",
        ],
    );
    assert!(
        status.stdout.starts_with("install ok installed"),
        "containerd is not installed in the VM: {status:?}"
    );
    let kubeadm = q.guest(NODE, &["/usr/bin/dpkg-query", "-W", "kubeadm"]);
    assert_ne!(
        kubeadm.exit_code, 0,
        "kubeadm cannot be installed: {kubeadm:?}"
    );
}

/// Broken user-data fails clearly: the VM boots with a token the host never
/// issued, so the agent is refused; `up` must stop waiting as soon as the
/// host refuses the node (not after its enrolment timeout) and fail naming
/// the node, the refusal, and what the VM itself says (cloud-init's result,
/// the agent unit's state and the agent's own account), read through the
/// guest agent.
#[test]
fn vm_with_a_corrupted_enrolment_token_fails_up_with_the_vms_own_account() {
    let _one = one_vm_at_a_time();
    if !can_run_vms("qemu_vm") {
        return;
    }
    let started = Instant::now();
    let mut q = QemuEnv::new(22, &[NODE]);
    q.corrupt_enrolment_tokens();
    let up = q.hostctl(&[
        "up",
        "--nodes-only",
        "--provider",
        "qemu",
        "--timeout",
        BROKEN_ENROL_TIMEOUT,
    ]);
    let err = String::from_utf8_lossy(&up.stderr).into_owned();
    eprintln!("up failed after {:?}:\n{err}", started.elapsed());
    assert!(!up.status.success(), "up must fail:\n{err}");
    for expected in [
        format!("{NODE}: the host refused its enrolment"),
        "unknown enrolment token".to_owned(),
        "read from the VM".to_owned(),
        // `cloud-init status --long`: the boot finished and said how.
        "status: done".to_owned(),
        // The unit's state and the agent's own refusal from the journal.
        "hostctl-node-agent.service".to_owned(),
        "the host refused enrolment (PermissionDenied)".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        !err.contains("did not enrol and report within"),
        "the refusal must end the wait, not the timeout:\n{err}"
    );
    // The refusal is the host's, for the token the test corrupted: the VM
    // really got it (and never the real one).
    let config = q.guest(NODE, &["/bin/cat", "/etc/hostctl/node-agent.yaml"]);
    assert!(
        config.stdout.contains(tests::qemu::CORRUPTED_SECRET),
        "{config:?}"
    );
    eprintln!("total {:?}", started.elapsed());
}
