//! The rendered YAML parses back to what the model says: files, modes,
//! encodings, the exact binary, and argv-only commands in the right order.

use crate::common;

use common::{AGENT_CONFIG, FAKE_BINARY, decode_gz_b64, node, parse};
use serde_json::{Value, json};

fn rendered_doc(binary: &[u8]) -> Value {
    let text = node(binary).render().unwrap();
    assert!(text.starts_with("#cloud-config\n"), "missing header");
    parse(&text)
}

fn file<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["write_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not written"))
}

#[test]
fn files_have_the_promised_modes_and_encodings() {
    let doc = rendered_doc(FAKE_BINARY);
    let expect = [
        ("/usr/local/bin/node-agent", "0755", Some("gz+b64")),
        ("/etc/hostctl/node-agent.yaml", "0600", None),
        (
            "/etc/systemd/system/hostctl-node-agent.service",
            "0644",
            None,
        ),
        ("/etc/netplan/60-hostctl.yaml", "0600", None),
    ];
    assert_eq!(doc["write_files"].as_array().unwrap().len(), expect.len());
    for (path, mode, encoding) in expect {
        let f = file(&doc, path);
        // A string, not the YAML 1.1 integer an unquoted 0600 would become.
        assert_eq!(f["permissions"], json!(mode), "{path}");
        assert_eq!(f["encoding"].as_str(), encoding, "{path}");
        assert!(f.get("defer").is_none(), "{path} is deferred");
    }
}

#[test]
fn payload_decodes_to_the_original_binary() {
    // Bytes of every value, including ones that are not UTF-8 or YAML-safe.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let doc = rendered_doc(&binary);
    let content = file(&doc, "/usr/local/bin/node-agent")["content"]
        .as_str()
        .unwrap();
    assert_eq!(decode_gz_b64(content), binary);
}

#[test]
fn text_files_are_verbatim() {
    let doc = rendered_doc(FAKE_BINARY);
    assert_eq!(
        file(&doc, "/etc/hostctl/node-agent.yaml")["content"],
        json!(AGENT_CONFIG)
    );
    let unit = file(&doc, "/etc/systemd/system/hostctl-node-agent.service")["content"]
        .as_str()
        .unwrap();
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/bin/node-agent --config /etc/hostctl/node-agent.yaml\n"
        )
    );
    let netplan = parse(
        file(&doc, "/etc/netplan/60-hostctl.yaml")["content"]
            .as_str()
            .unwrap(),
    );
    let eth = &netplan["network"]["ethernets"]["00-hostctl"];
    assert_eq!(eth["match"]["driver"], json!("virtio_net"));
    assert_eq!(eth["addresses"], json!(["192.168.252.21/24"]));
    assert_eq!(eth["dhcp4"], json!(true));
}

#[test]
fn runcmd_is_argv_lists_applying_the_address_before_starting_the_agent() {
    let doc = rendered_doc(FAKE_BINARY);
    let runcmd = doc["runcmd"].as_array().unwrap();
    for item in runcmd {
        let argv = item
            .as_array()
            .unwrap_or_else(|| panic!("{item} is not a list"));
        assert!(argv.iter().all(Value::is_string), "{item}");
    }
    assert_eq!(
        runcmd,
        &vec![
            json!(["netplan", "apply"]),
            json!(["systemctl", "daemon-reload"]),
            json!(["systemctl", "enable", "--now", "hostctl-node-agent.service"]),
        ]
    );
}

#[test]
fn no_heavy_work_and_hostname_applied() {
    let doc = rendered_doc(FAKE_BINARY);
    assert_eq!(doc["hostname"], json!("app1-worker-0"));
    assert_eq!(doc["preserve_hostname"], json!(false));
    assert_eq!(doc["manage_etc_hosts"], json!(true));
    assert_eq!(doc["package_update"], json!(false));
    assert_eq!(doc["package_upgrade"], json!(false));
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for forbidden in ["packages", "users", "bootcmd", "scripts"] {
        assert!(!keys.contains(&forbidden), "{forbidden} present");
    }
}

#[test]
fn without_stable_address_there_is_no_netplan() {
    let mut data = node(FAKE_BINARY);
    data.network = None;
    let doc = parse(&data.render().unwrap());
    assert!(
        doc["write_files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["path"] != "/etc/netplan/60-hostctl.yaml")
    );
    assert_eq!(doc["runcmd"][0], json!(["systemctl", "daemon-reload"]));
}

#[test]
fn empty_agent_config_is_refused() {
    let mut data = node(FAKE_BINARY);
    data.agent_config_yaml = " \n".to_owned();
    assert!(matches!(
        data.render(),
        Err(cloud_init::Error::EmptyAgentConfig)
    ));
}
