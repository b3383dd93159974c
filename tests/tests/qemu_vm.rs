//! Real VMs: `hostctl up --provider qemu` boots one node from the test
//! image; cloud-init installs and starts the node agent under systemd; the
//! agent enrols over mTLS with this machine's host agent and reports from
//! inside the VM. One VM serves every check (each boot costs 1.5–2 min
//! under TCG), so the checks run in order in one test.

use std::time::{Duration, Instant};
use tests::qemu::{QemuEnv, can_run_vms};

const NODE: &str = "mgmt-cp";

fn host_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn vm_node_enrols_reports_from_inside_restarts_under_systemd_and_is_removed() {
    if !can_run_vms("qemu_vm") {
        return;
    }
    let started = Instant::now();
    let q = QemuEnv::new(21, &[NODE]);
    eprintln!("image ready after {:?}", started.elapsed());

    // up: boot, cloud-init, enrolment, first report. The prerequisites
    // step then runs inside the VM against its real system; its own
    // failures are the node agent's (reported, not hidden), so this test
    // requires the steps up to enrolment and names any later failure.
    let up = q.hostctl(&[
        "up",
        "--nodes-only",
        "--provider",
        "qemu",
        "--report-interval",
        "5",
        "--timeout",
        "420",
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
    if !up.status.success() {
        eprintln!("NOTE: up failed after enrolment (node agent prerequisites):\n{up_err}");
    }
    eprintln!("up done after {:?}", started.elapsed());
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
