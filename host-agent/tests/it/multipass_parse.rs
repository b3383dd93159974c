//! The `--format json` parsers against the real outputs kept in
//! `../shared/reference/fixtures` (read in place, never copied) and against
//! our own samples in the same shapes with the variations Multipass is known
//! or likely to produce (numbers as strings and vice versa, unknown keys).

use host_agent::provider::VmState;
use host_agent::provider::multipass::json::{self, InfoReply, ListReply, Usage};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

fn shared(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/fixtures")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("shared fixture {}: {e}", path.display()))
}

fn ours(file: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/multipass")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Both upstream list fixtures describe the same two instances.
fn check_upstream_list(reply: &ListReply) {
    let vms: Vec<_> = reply.list.iter().map(|e| e.to_vm_info()).collect();
    assert_eq!(vms.len(), 2);
    assert_eq!(vms[0].name, "bogus-instance");
    assert_eq!(vms[0].state, VmState::Running);
    assert_eq!(vms[0].addresses, vec![ip("10.21.124.56")]);
    assert_eq!(vms[1].name, "bombastic");
    assert_eq!(vms[1].state, VmState::Stopped);
    assert!(vms[1].addresses.is_empty());
    assert_eq!(reply.list[1].release, "Ubuntu 18.04 LTS");
}

/// Both upstream info fixtures: a running instance with string counts and a
/// stopped one with empty strings and objects.
fn check_upstream_info(reply: &InfoReply) {
    assert!(reply.errors.is_empty());
    let running = &reply.info["bogus-instance"];
    assert_eq!(running.cpu_count, Some(4));
    assert_eq!(running.snapshot_count, Some(1));
    assert_eq!(
        running.memory,
        Usage {
            total: Some(1_610_612_736),
            used: Some(38_797_312)
        }
    );
    assert_eq!(
        running.disks["sda1"],
        Usage {
            total: Some(6_764_573_492),
            used: Some(1_932_735_284)
        }
    );
    assert_eq!(running.load, vec![0.03, 0.1, 0.15]);
    assert_eq!(running.image_release, "16.04 LTS");
    let vm = running.to_vm_info("bogus-instance");
    assert_eq!(
        (vm.state, vm.addresses),
        (VmState::Running, vec![ip("10.21.124.56")])
    );

    let stopped = &reply.info["bombastic"];
    assert_eq!(stopped.cpu_count, None, "\"\" means not reported");
    assert_eq!(stopped.memory, Usage::default());
    assert_eq!(stopped.disks["sda1"], Usage::default());
    assert_eq!(stopped.snapshot_count, Some(3));
    assert!(stopped.load.is_empty() && stopped.ipv4.is_empty());
    assert_eq!(json::state_from(&stopped.state), VmState::Stopped);
}

#[test]
fn upstream_list_1_16() {
    check_upstream_list(&json::parse_list(&shared("multipass-list.json")).unwrap());
}

#[test]
fn upstream_list_1_17_dev_with_zones_in_insertion_order() {
    check_upstream_list(&json::parse_list(&shared("multipass-list.v1.17-dev.json")).unwrap());
}

#[test]
fn upstream_info_1_16() {
    check_upstream_info(&json::parse_info(&shared("multipass-info.json")).unwrap());
}

#[test]
fn upstream_info_1_17_dev_with_zones_in_insertion_order() {
    check_upstream_info(&json::parse_info(&shared("multipass-info.v1.17-dev.json")).unwrap());
}

#[test]
fn own_list_1_16_keeps_every_address_skips_junk_and_unknown_keys() {
    let reply = json::parse_list(&ours("list-1.16.json")).unwrap();
    let vms: Vec<_> = reply.list.iter().map(|e| e.to_vm_info()).collect();
    let names: Vec<_> = vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["mgmt-cp", "mgmt-w1", "app1-cp", "app2-cp"]);
    assert_eq!(
        vms[0].addresses,
        vec![ip("192.168.252.3"), ip("10.100.0.17")]
    );
    assert_eq!(vms[1].state, VmState::Starting);
    assert_eq!(vms[2].state, VmState::Stopped);
    assert_eq!(vms[3].state, VmState::Other("Suspended".into()));
    assert!(vms[3].addresses.is_empty(), "\"N/A\" is not an address");
}

#[test]
fn own_info_1_16_accepts_numbers_as_strings_and_strings_as_numbers() {
    let reply = json::parse_info(&ours("info-1.16.json")).unwrap();
    let cp = &reply.info["mgmt-cp"];
    assert_eq!(cp.cpu_count, Some(2));
    assert_eq!(cp.memory.total, Some(4_104_863_744));
    assert_eq!(cp.memory.used, Some(402_653_184));
    assert_eq!(cp.snapshot_count, Some(0));
    assert_eq!(cp.load, vec![0.25, 0.1, 0.05]);
    assert_eq!(cp.disks["sda1"].total, Some(41_555_521_536));
    assert_eq!(
        json::state_from(&reply.info["app1-cp"].state),
        VmState::Stopped
    );
}

#[test]
fn own_1_17_samples() {
    let list = json::parse_list(&ours("list-1.17.json")).unwrap();
    assert_eq!(
        list.list[0].to_vm_info().addresses,
        vec![ip("192.168.253.3")]
    );
    assert_eq!(list.list[1].to_vm_info().state, VmState::Stopped);

    let info = json::parse_info(&ours("info-1.17.json")).unwrap();
    let cp = &info.info["mgmt-cp"];
    assert_eq!(cp.cpu_count, Some(2));
    assert_eq!(
        cp.disks["sda1"],
        Usage {
            total: Some(41_555_521_536),
            used: Some(2_147_483_648)
        }
    );
    assert_eq!(
        cp.memory,
        Usage {
            total: Some(4_104_863_744),
            used: Some(402_653_184)
        }
    );
    assert_eq!(cp.snapshot_count, Some(1));
}

#[test]
fn nulls_and_missing_fields_default_instead_of_failing() {
    let list = json::parse_list(r#"{"list":[{"name":"a"},{"name":"b","state":null,"ipv4":null}]}"#)
        .unwrap();
    assert_eq!(list.list.len(), 2);
    assert_eq!(
        list.list[1].to_vm_info().state,
        VmState::Other(String::new())
    );
    assert!(
        json::parse_list(r#"{"list":null}"#)
            .unwrap()
            .list
            .is_empty()
    );
    assert!(json::parse_list("{}").unwrap().list.is_empty());
    let info =
        json::parse_info(r#"{"info":{"a":{"memory":null,"disks":null,"cpu_count":-1}}}"#).unwrap();
    assert_eq!(info.info["a"].cpu_count, None);
    assert!(info.info["a"].disks.is_empty());
}

#[test]
fn replies_that_are_not_the_shape_are_errors() {
    assert!(json::parse_list("list failed: cannot connect").is_err());
    assert!(
        json::parse_list(r#"{"list":[{"state":"Running"}]}"#).is_err(),
        "an entry needs a name"
    );
    let err = json::parse_info("").unwrap_err();
    assert_eq!(err.command, "info");
}
