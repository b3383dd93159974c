//! Shared fixtures and checks for the integration tests.
//!
//! The validators live in `../shared` beside the checkout (see
//! shared/README.md): they are run from here, never copied into the project.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use cloud_init::network::InterfaceMatch;
use cloud_init::{
    AgentPayload, Hostname, LeaseNeighbour, NodeAddress, NodeUserData, StableAddress,
};

/// The directory holding `shared/` (two levels above this crate).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// A stand-in for the agent binary: an ELF magic and some text, enough for
/// checks that do not care about size.
pub const FAKE_BINARY: &[u8] = b"\x7fELF\x02\x01\x01\0hostctl fake node-agent for tests\n";

/// An agent configuration in the shape the node agent reads; the fields are
/// illustrative (this crate writes the text verbatim).
pub const AGENT_CONFIG: &str = "\
host: 192.168.64.1:7443
node: app1-worker-0
ca_pin: sha256:3f1c0c1bd2b2bd6c5a0c1c0f5e1b3a7a3c8f6f0f3e2b9d6d1c4a5b6c7d8e9f00
enrolment_token: hct1.4f2a9c.single-use-example
";

pub fn stable_address() -> StableAddress {
    StableAddress {
        interface: InterfaceMatch::MacAddress("52:54:00:4b:ab:cd".parse().unwrap()),
        address: "192.168.64.21/24".parse().unwrap(),
        gateway: Some("192.168.64.1".parse().unwrap()),
        nameservers: vec!["192.168.64.1".parse().unwrap()],
    }
}

/// The address a Multipass node's user-data pins beside its lease.
pub fn lease_neighbour() -> LeaseNeighbour {
    LeaseNeighbour {
        address: "192.168.252.21/24".parse().unwrap(),
    }
}

/// The node document the tests render: fake binary, the address beside the
/// lease (what Multipass nodes get).
pub fn node(binary: &[u8]) -> NodeUserData {
    NodeUserData::new(
        Hostname::new("app1-worker-0").unwrap(),
        AgentPayload::from_binary(binary).unwrap(),
        AGENT_CONFIG,
    )
    .unwrap()
    .with_address(NodeAddress::BesideLease(lease_neighbour()))
}

/// Writes `text` to a fresh temporary file and returns its handle (the file
/// lives as long as the handle).
pub fn temp_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

/// Output of a validator run.
pub struct Verdict {
    pub ok: bool,
    pub output: String,
}

fn run(command: &mut Command) -> Verdict {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    Verdict {
        ok: out.status.success(),
        output: format!(
            "{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// shared/tools/validate-cloud-config: cloud-init 26.2's strict schema
/// (plus Debian's `cloud-init schema` when installed).
pub fn validate_cloud_config(path: &Path) -> Verdict {
    run(Command::new(shared_dir().join("tools/validate-cloud-config")).arg(path))
}

/// Debian's `cloud-init schema --config-file`, or `None` when cloud-init is
/// absent and `HOSTCTL_SKIP_CLOUD_INIT_SCHEMA=1` allows skipping it.
pub fn cloud_init_schema(path: &Path) -> Option<Verdict> {
    let installed = Command::new("cloud-init").arg("--version").output().is_ok();
    if !installed {
        if std::env::var("HOSTCTL_SKIP_CLOUD_INIT_SCHEMA").as_deref() == Ok("1") {
            test_support::skip(
                "cloud-init schema check",
                "cloud-init not installed (HOSTCTL_SKIP_CLOUD_INIT_SCHEMA=1)",
            );
            return None;
        }
        panic!(
            "`cloud-init` is not installed: install Debian's cloud-init \
             (apt-get install cloud-init) or set HOSTCTL_SKIP_CLOUD_INIT_SCHEMA=1"
        );
    }
    Some(run(Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(path)))
}

/// Validates a network-config document against cloud-init's v2 schema with
/// Python's jsonschema, the way validate-cloud-config does for user-data.
pub fn validate_network_config(path: &Path) -> Verdict {
    const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
for e in errors:
    print(".".join(map(str, e.path)) or "<root>", e.message[:300])
sys.exit(1 if errors else 0)
"#;
    run(Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(shared_dir().join("reference/cloud-init/schema-network-config-v2.json"))
        .arg(path))
}

/// Parses rendered YAML (without the header) into a JSON value.
pub fn parse(yaml: &str) -> serde_json::Value {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Reverses `gz+b64`.
pub fn decode_gz_b64(content: &str) -> Vec<u8> {
    let gz = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut out)
        .unwrap();
    out
}
