//! VM mode end to end: a real QEMU VM of the test image on the emulated
//! network. Runs only when `MULTIPASS_EMULATOR_TEST_IMAGE` names an image
//! directory (`tools/test-image/build.sh` prints it; building one needs a
//! Debian mirror, which these tests never reach), plus root, iproute2,
//! dnsmasq, QEMU and mtools; SKIP otherwise. With `netplan.io` in the image
//! (its `packages` list), the user-data's netplan file must also give the
//! machine its static address.

use crate::common;

use common::{Emu, can_run, host_number, ipv4};
use std::path::PathBuf;

fn image() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("MULTIPASS_EMULATOR_TEST_IMAGE")?);
    ["rootfs.img", "vmlinuz", "initrd.img"]
        .iter()
        .all(|f| dir.join(f).is_file())
        .then_some(dir)
}

fn has_netplan(image: &std::path::Path) -> bool {
    std::fs::read_to_string(image.join("packages"))
        .is_ok_and(|p| p.lines().any(|l| l.starts_with("netplan.io ")))
}

#[test]
#[ignore = "boots a VM (minutes under TCG); CI runs hostctl's own VM-mode test \
            (tests/tests/multipass_emulated.rs) instead. Run with --ignored and \
            MULTIPASS_EMULATOR_TEST_IMAGE"]
fn vm_mode_boots_the_test_image_with_the_user_data_on_the_emulated_network() {
    let test = "vm_mode_boots_the_test_image_with_the_user_data_on_the_emulated_network";
    let Some(image) = image() else {
        test_support::skip(
            test,
            "set MULTIPASS_EMULATOR_TEST_IMAGE to a test image directory",
        );
        return;
    };
    if !can_run(test) {
        return;
    }
    let netplan = has_netplan(&image);
    let mut emu = Emu::new();
    emu.env = vec![
        ("MULTIPASS_EMULATOR_MODE".into(), "vm".into()),
        (
            "MULTIPASS_EMULATOR_IMAGE".into(),
            image.to_string_lossy().into_owned(),
        ),
    ];
    let mut ud = String::from(
        "#cloud-config\nwrite_files:\n- path: /etc/emulator-test\n  content: hello\n  permissions: '0600'\n",
    );
    let mut runcmd = String::from("runcmd:\n- [touch, /var/tmp/runcmd-ran]\n");
    if netplan {
        ud.push_str("- path: /etc/netplan/00-hostctl.yaml\n  permissions: '0600'\n  content: |\n    network:\n      version: 2\n      ethernets:\n        00-hostctl:\n          match: {driver: virtio_net}\n          dhcp4: true\n          dhcp-identifier: mac\n          addresses: [192.168.252.10/24]\n");
        runcmd.push_str("- [netplan, apply]\n");
    }
    ud.push_str(&runcmd);
    let file = emu.state.parent().unwrap().join("user-data.yaml");
    std::fs::write(&file, ud).unwrap();
    emu.ok(&[
        "launch",
        "--name",
        "t-vm",
        "--cpus",
        "1",
        "--memory",
        "1G",
        "--disk",
        "4G",
        "--timeout",
        "900",
        "--cloud-init",
        file.to_str().unwrap(),
        "24.04",
    ]);
    let info = emu.info("t-vm");
    assert_eq!(info["state"], "Running");
    let ips = ipv4(&info);
    assert!(!ips.is_empty(), "{info}");
    let lease = host_number(&ips[0]);
    assert!(
        (2..=254).contains(&lease) && ips[0].starts_with("192.168.252."),
        "{info}"
    );
    if netplan {
        assert!(
            ips.iter().any(|a| a == "192.168.252.10"),
            "netplan's static address: {info}"
        );
    }
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(emu.machine_dir("t-vm").join("machine.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        record["cloud_init"]["errors"],
        serde_json::json!([]),
        "{}",
        emu.logs()
    );
    let leases = std::fs::read_to_string(emu.state.join("dhcpd_leases")).unwrap();
    assert!(
        leases.contains(&format!("ip_address={}\n", ips[0])),
        "{leases}"
    );

    emu.ok(&["stop", "t-vm"]);
    let stopped = emu.info("t-vm");
    assert_eq!(stopped["state"], "Stopped");
    assert_eq!(ipv4(&stopped), Vec::<String>::new());
    emu.ok(&["start", "t-vm", "--timeout", "900"]);
    let again = emu.info("t-vm");
    assert_eq!(again["state"], "Running");
    assert!(!ipv4(&again).is_empty(), "{again}");
    emu.ok(&["delete", "--purge", "t-vm"]);
    assert!(emu.list().is_empty());
}
