//! Rendering the typed documents to text.
//!
//! Rendering is serialisation and nothing else: no templates, so no value
//! can break the YAML structure, whatever characters it contains.

use serde::Serialize;

use crate::{CloudConfig, Error, NetworkConfig};

/// The first line cloud-init requires to treat user-data as cloud-config.
pub const CLOUD_CONFIG_HEADER: &str = "#cloud-config\n";

/// The largest user-data `multipass launch` gets to its daemon: the client
/// sends it in one gRPC `LaunchRequest`, and multipassd's server keeps gRPC's
/// default 4 MiB receive cap (`make_server` in `src/daemon/daemon_rpc.cpp`
/// sets none). 64 KiB are kept back for the request's other fields and for
/// the client's YAML re-serialisation.
pub const MULTIPASS_USER_DATA_LIMIT: usize = 4 * 1024 * 1024 - 64 * 1024;

impl CloudConfig {
    /// `#cloud-config` + YAML, after the cross-entry checks.
    pub fn render(&self) -> Result<String, Error> {
        self.check()?;
        Ok(format!("{CLOUD_CONFIG_HEADER}{}", to_yaml(self)?))
    }
}

impl NetworkConfig {
    /// YAML for a netplan file or a NoCloud `network-config`.
    pub fn render(&self) -> Result<String, Error> {
        to_yaml(self)
    }
}

/// Refuses user-data that a transport with the given limit would reject,
/// so the error is ours and says what is too big, not the transport's.
pub fn ensure_fits(rendered: &str, limit: usize) -> Result<(), Error> {
    if rendered.len() > limit {
        return Err(Error::TooLarge {
            size: rendered.len(),
            limit,
        });
    }
    Ok(())
}

/// serde-saphyr's defaults suit cloud-init: YAML 1.1-ambiguous strings
/// (`'0600'`, `'no'`) are quoted, multi-line strings become literal blocks,
/// and a long single-line string (the base64 payload) stays one unwrapped
/// line, which every reader parses back unchanged.
fn to_yaml<T: Serialize>(value: &T) -> Result<String, Error> {
    Ok(serde_saphyr::to_string(value)?)
}
