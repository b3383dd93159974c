//! network-config v2 documents validate against cloud-init's v2 schema.

use crate::common;

use cloud_init::StableAddress;
use cloud_init::network::{InterfaceMatch, InterfaceName};
use common::{parse, stable_address, temp_file, validate_network_config};
use serde_json::json;

fn assert_valid(address: &StableAddress) -> serde_json::Value {
    let yaml = address.network_config().unwrap().render().unwrap();
    let file = temp_file(&yaml);
    let verdict = validate_network_config(file.path());
    assert!(
        verdict.ok,
        "v2 schema rejected:\n{}\n---\n{yaml}",
        verdict.output
    );
    parse(&yaml)
}

#[test]
fn matched_by_mac_with_gateway_and_dns() {
    // All-digit MAC: unquoted, a YAML 1.1 reader (PyYAML, in cloud-init)
    // would read it as a base-60 integer and the schema's `string` would fail.
    let mut address = stable_address();
    address.interface = InterfaceMatch::MacAddress("52:54:00:12:34:56".parse().unwrap());
    let doc = assert_valid(&address);
    let eth = &doc["network"]["ethernets"]["hostctl0"];
    assert_eq!(eth["match"]["macaddress"], json!("52:54:00:12:34:56"));
    assert_eq!(eth["set-name"], json!("hostctl0"));
    assert_eq!(
        eth["routes"],
        json!([{"to": "0.0.0.0/0", "via": "192.168.64.1", "metric": 200}])
    );
    assert_eq!(eth["nameservers"], json!({"addresses": ["192.168.64.1"]}));
}

#[test]
fn matched_by_name_without_gateway() {
    let address = StableAddress {
        interface: InterfaceMatch::Name(InterfaceName::new("enp0s3").unwrap()),
        address: "10.13.31.13/24".parse().unwrap(),
        gateway: None,
        nameservers: Vec::new(),
    };
    let doc = assert_valid(&address);
    let eth = &doc["network"]["ethernets"]["hostctl0"];
    assert_eq!(eth["match"], json!({"name": "enp0s3"}));
    assert!(eth.get("set-name").is_none());
    assert!(eth.get("routes").is_none());
    assert!(eth.get("nameservers").is_none());
}

#[test]
fn beside_the_lease_on_the_default_nic() {
    let yaml = common::lease_neighbour()
        .network_config()
        .unwrap()
        .render()
        .unwrap();
    let file = temp_file(&yaml);
    let verdict = validate_network_config(file.path());
    assert!(
        verdict.ok,
        "v2 schema rejected:\n{}\n---\n{yaml}",
        verdict.output
    );
    let doc = parse(&yaml);
    let eth = &doc["network"]["ethernets"]["00-hostctl"];
    assert_eq!(eth["match"], json!({"driver": "virtio_net"}));
    assert_eq!(eth["dhcp4"], json!(true));
    assert_eq!(eth["dhcp-identifier"], json!("mac"));
    assert_eq!(eth["addresses"], json!(["192.168.252.21/24"]));
    assert!(eth.get("routes").is_none() && eth.get("set-name").is_none());
}

#[test]
fn validator_rejects_a_broken_document() {
    let yaml = stable_address().network_config().unwrap().render().unwrap();
    let broken = yaml.replace("version: 2", "version: 3");
    assert_ne!(yaml, broken);
    let file = temp_file(&broken);
    assert!(!validate_network_config(file.path()).ok);
}
