//! Every rendered user-data passes cloud-init's schemas; broken ones do not.

use crate::common;

use cloud_init::{AgentPayload, Hostname, NodeUserData};
use common::{FAKE_BINARY, cloud_init_schema, node, temp_file, validate_cloud_config};

fn assert_valid(user_data: &str) {
    let file = temp_file(user_data);
    let strict = validate_cloud_config(file.path());
    assert!(
        strict.ok,
        "validate-cloud-config rejected:\n{}\n---\n{user_data}",
        strict.output
    );
    if let Some(debian) = cloud_init_schema(file.path()) {
        assert!(
            debian.ok,
            "cloud-init schema rejected:\n{}\n---\n{user_data}",
            debian.output
        );
    }
}

#[test]
fn node_with_stable_address_is_valid() {
    assert_valid(&node(FAKE_BINARY).render().unwrap());
}

#[test]
fn node_without_stable_address_is_valid() {
    let plain = NodeUserData::new(
        Hostname::new("mgmt-cp").unwrap(),
        AgentPayload::from_binary(FAKE_BINARY).unwrap(),
        common::AGENT_CONFIG,
    )
    .unwrap();
    assert_valid(&plain.render().unwrap());
}

/// Edits a rendered document through serde_json (the only way to get keys
/// the model cannot express) and renders it back with the header.
fn broken(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let rendered = node(FAKE_BINARY).render().unwrap();
    let mut doc = common::parse(&rendered);
    edit(&mut doc);
    format!("#cloud-config\n{}", serde_saphyr::to_string(&doc).unwrap())
}

fn assert_rejected(user_data: &str, needle: &str) {
    let file = temp_file(user_data);
    let verdict = validate_cloud_config(file.path());
    assert!(!verdict.ok, "accepted a broken document:\n{user_data}");
    assert!(
        verdict.output.contains(needle),
        "rejection does not mention {needle:?}:\n{}",
        verdict.output
    );
}

#[test]
fn validator_rejects_unknown_top_level_key() {
    let doc = broken(|doc| {
        doc["run_my_script"] = serde_json::json!("curl http://x | sh");
    });
    assert_rejected(&doc, "run_my_script");
}

#[test]
fn validator_rejects_bad_encoding_and_permissions_type() {
    let doc = broken(|doc| {
        doc["write_files"][0]["encoding"] = serde_json::json!("zstd+b64");
    });
    assert_rejected(&doc, "write_files.0.encoding");
    let doc = broken(|doc| {
        doc["write_files"][1]["permissions"] = serde_json::json!(["0600"]);
    });
    assert_rejected(&doc, "write_files.1.permissions");
}

#[test]
fn validator_rejects_missing_header() {
    let rendered = node(FAKE_BINARY).render().unwrap();
    let headless = rendered.trim_start_matches("#cloud-config\n");
    assert_rejected(headless, "#cloud-config");
}
