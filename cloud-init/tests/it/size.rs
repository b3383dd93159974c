//! How big the user-data gets for a realistically sized node agent, and the
//! bounds the README documents.
//!
//! The binary is `$HOSTCTL_NODE_AGENT_BINARY`, else `target/release/node-agent`
//! when it has been built, else a synthetic 8 MiB blob (see [`synthetic`]).
//! Run with `--nocapture` to see the numbers.

use crate::common;

use std::path::PathBuf;

use cloud_init::{Error, MULTIPASS_USER_DATA_LIMIT, ensure_fits};

const MIB: usize = 1024 * 1024;

/// Everything in the user-data except the base64 payload (YAML keys, the
/// agent config, the unit, netplan) stays under this many bytes.
const FIXED_OVERHEAD_BOUND: usize = 4096;

/// A stand-in with the gzip ratio of the real node agent (stripped x86_64
/// release build: 0.424; other Rust release binaries measured with `gzip -9`:
/// cargo 0.364, rustup 0.378, rustfmt 0.353): in every 4 KiB page, 27/64
/// pseudo-random bytes (incompressible, like machine code and tables) and the
/// rest zeros (padding, which gzip removes).
fn synthetic(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = vec![0u8; len];
    for page in out.chunks_mut(4096) {
        let random = page.len() * 27 / 64;
        for byte in &mut page[..random] {
            // xorshift64: deterministic, dependency-free noise.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = (state >> 24) as u8;
        }
    }
    out
}

fn realistic_binary() -> (String, Vec<u8>) {
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/node-agent");
    let path = std::env::var_os("HOSTCTL_NODE_AGENT_BINARY")
        .map(PathBuf::from)
        .or_else(|| release.is_file().then_some(release));
    match path {
        Some(path) => {
            let bytes = std::fs::read(&path).unwrap();
            (path.display().to_string(), bytes)
        }
        None => (
            "synthetic 8 MiB blob (27/64 random, rest zeros)".to_owned(),
            synthetic(8 * MIB),
        ),
    }
}

#[test]
fn user_data_is_the_payload_plus_a_small_fixed_part() {
    let (source, binary) = realistic_binary();
    let data = common::node(&binary);
    let rendered = data.render().unwrap();
    let gz = data.node_agent.compressed_len();
    let b64 = data.node_agent.encoded().len();
    println!("binary: {source}");
    println!(
        "binary {} B, gzip {} B ({:.3}), base64 {} B, user-data {} B ({:.3} of binary), Multipass limit {} B: {}",
        binary.len(),
        gz,
        gz as f64 / binary.len() as f64,
        b64,
        rendered.len(),
        rendered.len() as f64 / binary.len() as f64,
        MULTIPASS_USER_DATA_LIMIT,
        if rendered.len() <= MULTIPASS_USER_DATA_LIMIT {
            "fits"
        } else {
            "DOES NOT FIT"
        },
    );
    assert_eq!(b64, gz.div_ceil(3) * 4);
    assert!(
        rendered.len() <= b64 + FIXED_OVERHEAD_BOUND,
        "{} B of user-data for a {b64} B payload",
        rendered.len()
    );
}

#[test]
fn synthetic_blob_compresses_like_a_rust_binary() {
    let binary = synthetic(2 * MIB);
    let payload = cloud_init::AgentPayload::from_binary(&binary).unwrap();
    let ratio = payload.compressed_len() as f64 / binary.len() as f64;
    assert!((0.41..0.44).contains(&ratio), "ratio {ratio}");
}

/// At the agent's gzip ratio the user-data is about 0.57 of the binary, so
/// an agent of up to ~7 MiB fits through Multipass and an 8 MiB one does
/// not; the error names the sizes instead of Multipass's RESOURCE_EXHAUSTED.
#[test]
fn multipass_limit_is_enforced() {
    let fits = common::node(&synthetic(6 * MIB)).render().unwrap();
    ensure_fits(&fits, MULTIPASS_USER_DATA_LIMIT).unwrap();

    let too_big = common::node(&synthetic(8 * MIB)).render().unwrap();
    match ensure_fits(&too_big, MULTIPASS_USER_DATA_LIMIT) {
        Err(Error::TooLarge { size, limit }) => {
            assert_eq!((size, limit), (too_big.len(), MULTIPASS_USER_DATA_LIMIT));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}
