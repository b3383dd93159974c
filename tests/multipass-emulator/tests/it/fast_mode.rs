//! Fast mode end to end: the emulator binary driven through a `multipass`
//! symlink with the command lines hostctl's provider uses, against the real
//! bridge, dnsmasq and network namespaces. Needs root, iproute2 and dnsmasq
//! (SKIP otherwise; a failure with `HOSTCTL_E2E_REQUIRED=1`).

use crate::common;

use common::{
    Emu, b64, can_run, gz_b64, host_number, ipv4, netns_inode, netns_inode_of_pid, wait_for,
};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

const UNIT: &str = "sleeper.service";
const STATIC: &str = "192.168.252.10";
const LONG: Duration = Duration::from_secs(60);

const AGENT_CONFIG: &str = "node: t-a\ncluster: mgmt\ncontrolPlane: true\nhost:\n  enrolEndpoint: 192.168.252.1:7444\n  endpoint: 192.168.252.1:7443\n  serverName: \"192.168.252.1\"\ncaPem: |\n  -----BEGIN CERTIFICATE-----\n  AAAA\n  -----END CERTIFICATE-----\nenrolmentToken: hct1.abc.def\nstateDir: /var/lib/hostctl-agent\nlisten: 192.168.252.10:7445\nreportIntervalSeconds: 10\nbufferCapacity: 1000\nroot: /\nlogSource: journald\ncommandRunner: real\n";

const NETPLAN: &str = "network:\n  version: 2\n  ethernets:\n    00-hostctl:\n      match:\n        driver: virtio_net\n      dhcp4: true\n      dhcp-identifier: mac\n      addresses:\n      - 192.168.252.10/24\n";

/// User-data shaped like hostctl's: a gz+b64 program, the agent config, a
/// unit, a netplan file; `netplan apply` and `systemctl enable --now`.
fn user_data(extra_runcmd: &str) -> String {
    let sleeper = format!(
        "#!/bin/sh\nexec '{}' __sleep \"$@\"\n",
        common::emulator_bin().display()
    );
    let unit = "[Unit]\nDescription=test unit\n\n[Service]\nType=simple\nExecStart=/usr/local/bin/sleeper --config /etc/hostctl/node-agent.yaml\nEnvironment=MARK=emulated\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n";
    let indent = |t: &str| t.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "#cloud-config\nhostname: t-a\nwrite_files:\n\
         - path: /usr/local/bin/sleeper\n  encoding: gz+b64\n  content: {}\n  permissions: '0755'\n\
         - path: /etc/hostctl/node-agent.yaml\n  permissions: '0600'\n  content: |\n{}\
         - path: /etc/systemd/system/{UNIT}\n  permissions: '0644'\n  content: |\n{}\
         - path: /etc/netplan/00-hostctl.yaml\n  permissions: '0600'\n  content: |\n{}\
         - path: /etc/motd.b64\n  encoding: b64\n  content: {}\n\
         - path: /etc/deferred\n  content: later\n  defer: true\n\
         runcmd:\n- [netplan, apply]\n- [systemctl, daemon-reload]\n- [systemctl, enable, --now, {UNIT}]\n{extra_runcmd}",
        gz_b64(sleeper.as_bytes()),
        indent(AGENT_CONFIG),
        indent(unit),
        indent(NETPLAN),
        b64(b"hello from b64\n"),
    )
}

fn launch(emu: &Emu, name: &str, ud: &str) -> std::process::Output {
    let file = emu
        .state
        .parent()
        .unwrap()
        .join(format!("{name}.user-data.yaml"));
    std::fs::write(&file, ud).unwrap();
    emu.run(&[
        "launch",
        "--name",
        name,
        "--cpus",
        "2",
        "--memory",
        "1G",
        "--disk",
        "5G",
        "--timeout",
        "300",
        "--cloud-init",
        file.to_str().unwrap(),
        "24.04",
    ])
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn lease_of(entry: &Value) -> String {
    let ips = ipv4(entry);
    assert_eq!(ips.len(), 2, "a lease and {STATIC}: {entry}");
    assert_eq!(
        ips[1], STATIC,
        "the static address after the lease: {entry}"
    );
    let n = host_number(&ips[0]);
    assert!((2..=254).contains(&n) && ips[0] != STATIC, "{entry}");
    ips[0].clone()
}

#[test]
fn launch_applies_write_files_and_starts_the_unit_in_its_namespace() {
    if !can_run("launch_applies_write_files_and_starts_the_unit_in_its_namespace") {
        return;
    }
    let emu = Emu::new();
    let out = launch(&emu, "t-a", &user_data(""));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emu.logs()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Launched: t-a\n");

    let root = emu.root("t-a");
    assert_eq!(mode(&root.join("usr/local/bin/sleeper")), 0o755);
    assert!(
        std::fs::read_to_string(root.join("usr/local/bin/sleeper"))
            .unwrap()
            .contains("__sleep")
    );
    assert_eq!(mode(&root.join("etc/hostctl/node-agent.yaml")), 0o600);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostctl/node-agent.yaml")).unwrap(),
        AGENT_CONFIG
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd.b64")).unwrap(),
        "hello from b64\n"
    );
    assert_eq!(
        mode(&root.join("etc/motd.b64")),
        0o644,
        "cloud-init's default mode"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/deferred")).unwrap(),
        "later"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "t-a\n"
    );
    assert!(
        root.join("etc/netplan/50-cloud-init.yaml").is_file(),
        "the fallback config"
    );

    // The unit's program runs inside the machine's namespace, started with
    // the derived agent config.
    let pid = wait_for("the unit's program", LONG, || emu.unit_pid("t-a", UNIT));
    assert_eq!(netns_inode_of_pid(pid), netns_inode("mpemu-t-a"));
    let derived = root.join("etc/hostctl/node-agent.emulated.yaml");
    let log = wait_for("the program's first output", LONG, || {
        let t = std::fs::read_to_string(emu.machine_dir("t-a").join("agent.log")).ok()?;
        t.contains("__sleep").then_some(t)
    });
    assert!(log.contains(derived.to_str().unwrap()), "{log}");
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(
        env.contains("MARK=emulated") && !env.contains("MULTIPASS_EMULATOR_STATE"),
        "{env}"
    );
    let config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&derived).unwrap()).unwrap();
    assert_eq!(config["root"], root.to_str().unwrap());
    assert_eq!(
        config["stateDir"],
        root.join("var/lib/hostctl-agent").to_str().unwrap()
    );
    assert_eq!(config["commandRunner"], "record");
    assert_eq!(config["logSource"], "file");
    assert_eq!(config["listen"], "192.168.252.10:7445");
    assert_eq!(config["enrolmentToken"], "hct1.abc.def");
    assert_eq!(mode(&derived), 0o600);

    // cloud-init's result, where the node agent's check reads it.
    let result: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("run/cloud-init/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        result["v1"]["errors"],
        serde_json::json!([]),
        "{}",
        emu.logs()
    );

    // Killed, the program comes back (Restart=always).
    common::signal_kill(pid);
    let again = wait_for("the restarted program", LONG, || {
        emu.unit_pid("t-a", UNIT).filter(|p| *p != pid)
    });
    assert_eq!(netns_inode_of_pid(again), netns_inode("mpemu-t-a"));
}

#[test]
fn netplan_gives_lease_and_static_address_and_a_reboot_gets_a_new_lease() {
    if !can_run("netplan_gives_lease_and_static_address_and_a_reboot_gets_a_new_lease") {
        return;
    }
    let emu = Emu::new();
    let out = launch(&emu, "t-a", &user_data(""));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emu.logs()
    );

    let info = emu.info("t-a");
    let first = lease_of(&info);
    assert_eq!(info["state"], "Running");
    assert_eq!(info["cpu_count"], "2");
    assert_eq!(info["memory"]["total"], 1u64 << 30);
    assert_eq!(info["disks"]["sda1"]["total"], (5u64 << 30).to_string());
    assert!(info["disks"]["sda1"]["used"].is_string());
    assert_eq!(info["snapshot_count"], "0");
    assert_eq!(info["release"], "Ubuntu 24.04.3 LTS");
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let listed = emu.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "t-a");
    assert_eq!(listed[0]["state"], "Running");
    assert_eq!(listed[0]["release"], "Ubuntu 24.04 LTS");
    assert_eq!(ipv4(&listed[0]), ipv4(&info));

    // The bootpd-format mirror lists the lease under the machine's name.
    let mac = mac_of("mpemu-t-a");
    let stripped = mac
        .split(':')
        .map(|o| o.trim_start_matches('0'))
        .map(|o| if o.is_empty() { "0" } else { o })
        .collect::<Vec<_>>()
        .join(":");
    let leases = std::fs::read_to_string(emu.state.join("dhcpd_leases")).unwrap();
    assert!(
        leases.contains(&format!(
            "\tname=t-a\n\tip_address={first}\n\thw_address=1,{stripped}\n"
        )),
        "{leases}"
    );

    // Stopped: nothing runs, no addresses, the stopped shape.
    let pid = wait_for("the unit's program", LONG, || emu.unit_pid("t-a", UNIT));
    emu.ok(&["stop", "t-a"]);
    let stopped = emu.info("t-a");
    assert_eq!(stopped["state"], "Stopped");
    assert_eq!(ipv4(&stopped), Vec::<String>::new());
    assert_eq!(stopped["cpu_count"], "");
    assert_eq!(stopped["memory"], serde_json::json!({}));
    assert!(!common::running(pid), "the program was stopped");
    assert!(
        common::ip_json("mpemu-t-a")
            .iter()
            .all(|a| a != STATIC && *a != first)
    );

    // Started: a new lease (the old one is still held), .10 again, and
    // systemd starts the enabled unit; runcmd does not run again.
    emu.ok(&["start", "t-a"]);
    let info = emu.info("t-a");
    let second = lease_of(&info);
    assert_ne!(first, second, "each boot gets a new lease");
    let pid2 = wait_for("the unit after start", LONG, || emu.unit_pid("t-a", UNIT));
    assert_ne!(pid, pid2);
    let leases = std::fs::read_to_string(emu.state.join("dhcpd_leases")).unwrap();
    assert!(
        leases.contains(&format!("ip_address={first}\n"))
            && leases.contains(&format!("ip_address={second}\n")),
        "{leases}"
    );
    let newest = leases.find(&format!("ip_address={second}\n")).unwrap();
    assert!(
        newest < leases.find(&format!("ip_address={first}\n")).unwrap(),
        "newest first:\n{leases}"
    );
    let log =
        std::fs::read_to_string(emu.machine_dir("t-a").join("cloud-init-output.log")).unwrap();
    assert_eq!(
        log.matches("runcmd: [\"netplan\", \"apply\"]").count(),
        1,
        "{log}"
    );
}

#[test]
fn parallel_launches_then_delete_recover_and_purge() {
    if !can_run("parallel_launches_then_delete_recover_and_purge") {
        return;
    }
    let emu = Emu::new();
    let touched = emu.state.parent().unwrap().join("touched");
    let plain = format!("#cloud-config\nruncmd:\n- [touch, {}]\n", touched.display());
    let plain = plain.as_str();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ["t-b", "t-c", "t-d"]
            .into_iter()
            .map(|n| {
                let emu = &emu;
                s.spawn(move || launch(emu, n, plain))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &results {
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            emu.logs()
        );
    }
    let listed = emu.list();
    let mut leases: Vec<String> = listed.iter().map(|e| ipv4(e)[0].clone()).collect();
    assert_eq!(listed.len(), 3);
    assert!(
        listed.iter().all(|e| ipv4(e).len() == 1),
        "DHCP only: {listed:?}"
    );
    leases.sort();
    leases.dedup();
    assert_eq!(leases.len(), 3, "distinct leases: {leases:?}");

    // An unknown runcmd is not run, and it marks cloud-init as failed.
    let result =
        std::fs::read_to_string(emu.root("t-b").join("run/cloud-init/result.json")).unwrap();
    assert!(result.contains("not emulated"), "{result}");
    assert!(!touched.exists(), "runcmd items are emulated, never run");

    // delete keeps the name until purge.
    emu.ok(&["delete", "t-b"]);
    let deleted = emu.info("t-b");
    assert_eq!(deleted["state"], "Deleted");
    assert!(!Path::new("/run/netns/mpemu-t-b").exists());
    let again = launch(&emu, "t-b", plain);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("launch failed: instance \"t-b\" already exists")
    );
    let start = emu.run(&["start", "t-b"]);
    assert_eq!(start.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&start.stderr)
            .contains("start failed: instance \"t-b\" is deleted")
    );
    emu.ok(&["recover", "t-b"]);
    assert_eq!(emu.info("t-b")["state"], "Stopped");
    emu.ok(&["delete", "t-b"]);
    emu.ok(&["purge"]);
    let gone = emu.run(&["info", "--format", "json", "t-b"]);
    assert_eq!(gone.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&gone.stderr).trim(),
        "info failed: instance \"t-b\" does not exist"
    );

    // delete --purge removes at once.
    emu.ok(&["delete", "--purge", "t-c"]);
    let names: Vec<String> = emu
        .list()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["t-d"]);
    assert!(!emu.machine_dir("t-c").exists());
}

#[test]
fn teardown_leaves_no_bridge_namespace_or_dnsmasq_and_repeats() {
    if !can_run("teardown_leaves_no_bridge_namespace_or_dnsmasq_and_repeats") {
        return;
    }
    let emu = Emu::new();
    let out = launch(&emu, "t-e", &user_data(""));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emu.logs()
    );
    let pid = wait_for("the unit's program", LONG, || emu.unit_pid("t-e", UNIT));
    assert!(!emu.leftovers().is_empty());
    emu.ok(&["__teardown"]);
    assert_eq!(emu.leftovers(), Vec::<String>::new());
    assert!(!common::running(pid));
    emu.ok(&["__teardown"]);
    assert_eq!(emu.list()[0]["state"], "Stopped");
}

fn mac_of(ns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-j", "link", "show", "enp0s1"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["address"].as_str().unwrap().to_owned()
}

#[test]
fn dnsmasq_skips_an_address_a_running_machine_holds_statically() {
    if !can_run("dnsmasq_skips_an_address_a_running_machine_holds_statically") {
        return;
    }
    let emu = Emu::new();
    // The first lease is .2; .3 is then held statically, so dnsmasq's ping
    // before an offer finds it taken and the next machine gets .4.
    let ud = "#cloud-config\nwrite_files:\n- path: /etc/netplan/00-hostctl.yaml\n  permissions: '0600'\n  content: |\n    network:\n      version: 2\n      ethernets:\n        00-hostctl:\n          match: {driver: virtio_net}\n          dhcp4: true\n          addresses: [192.168.252.3/24]\nruncmd:\n- [netplan, apply]\n";
    let out = launch(&emu, "t-f", ud);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emu.logs()
    );
    assert_eq!(ipv4(&emu.info("t-f")), ["192.168.252.2", "192.168.252.3"]);
    let out = launch(&emu, "t-g", "#cloud-config\n");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emu.logs()
    );
    assert_eq!(ipv4(&emu.info("t-g")), ["192.168.252.4"], "{}", emu.logs());
}
