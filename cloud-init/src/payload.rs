//! The node-agent binary, encoded for `write_files`.
//!
//! The binary travels inside the user-data (`encoding: gz+b64`) rather than
//! being fetched at boot: the agent is the component that makes a VM's
//! failures visible, so its own installation must not depend on the network,
//! the host being up, or a second transfer channel. See the crate README for
//! the measured sizes and the limit this implies.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::GzBuilder;

use crate::Error;

/// The gzip-then-base64 encoding of an executable, ready to be the content
/// of a `gz+b64` `write_files` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPayload {
    encoded: String,
    original_len: usize,
    compressed_len: usize,
}

impl AgentPayload {
    /// Compresses at the best level: the binary is encoded once per `up`
    /// while every byte saved shortens the user-data that Multipass parses
    /// and ships in one gRPC message. The gzip header carries no name and a
    /// zero mtime, so equal inputs give byte-identical user-data (stable
    /// renders, reviewable diffs, golden tests).
    pub fn from_binary(binary: &[u8]) -> Result<Self, Error> {
        if binary.is_empty() {
            return Err(Error::EmptyBinary);
        }
        let mut encoder = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::best());
        encoder.write_all(binary).map_err(Error::Compress)?;
        let gz = encoder.finish().map_err(Error::Compress)?;
        Ok(Self {
            encoded: STANDARD.encode(&gz),
            original_len: binary.len(),
            compressed_len: gz.len(),
        })
    }

    /// The base64 text that goes into the YAML.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// Size of the binary as given, for size reports.
    pub fn original_len(&self) -> usize {
        self.original_len
    }

    /// Size after gzip, before base64, for size reports.
    pub fn compressed_len(&self) -> usize {
        self.compressed_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let data = vec![7u8; 10_000];
        let a = AgentPayload::from_binary(&data).unwrap();
        let b = AgentPayload::from_binary(&data).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.original_len(), 10_000);
        assert!(a.compressed_len() < 200);
        assert_eq!(a.encoded().len(), a.compressed_len().div_ceil(3) * 4);
    }

    #[test]
    fn refuses_empty_binary() {
        assert!(matches!(
            AgentPayload::from_binary(&[]),
            Err(Error::EmptyBinary)
        ));
    }
}
