//! Command lines for the `multipass` client, built in one place so that the
//! flags, units and validation rules of k8s-bootstrap.md §4.1 are applied
//! the same way by every operation.

use super::network::MacAddr;
use crate::provider::{LaunchSpec, ProviderError};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Checks Multipass's instance-name rule (letters, digits and hyphens,
/// starting with a letter and ending alphanumeric) before any call. Besides
/// giving a clear error early, it guarantees a name can never be read as a
/// flag (`--all`, `--purge`) by the client.
pub fn check_name(operation: &str, name: &str) -> Result<(), ProviderError> {
    let bytes = name.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ProviderError::failed(
            operation,
            name,
            "Multipass instance names are letters, digits and hyphens, \
             starting with a letter and ending with a letter or digit",
        ))
    }
}

/// A size in the units `--memory`/`--disk` accept: the largest binary suffix
/// (`K`, `M`, `G`; Multipass reads them as powers of 1024) that divides it
/// exactly, else plain bytes, so that nothing is rounded away.
pub fn size_arg(bytes: u64) -> String {
    match bytes {
        0 => "0".to_owned(),
        b if b % GIB == 0 => format!("{}G", b / GIB),
        b if b % MIB == 0 => format!("{}M", b / MIB),
        b if b % KIB == 0 => format!("{}K", b / KIB),
        b => b.to_string(),
    }
}

/// `--network` for the optional stable-address NIC: `mode=manual` so that
/// Multipass leaves its configuration to our netplan, which matches `mac`.
pub fn network_arg(bridge: &str, mac: MacAddr) -> String {
    format!("name={bridge},mode=manual,mac={mac}")
}

/// Everything `launch` needs besides the spec.
#[derive(Debug, Clone, Copy)]
pub struct LaunchOptions<'a> {
    pub image: &'a str,
    pub timeout: Duration,
    pub user_data: Option<&'a Path>,
    pub network: Option<(&'a str, MacAddr)>,
}

/// `launch --name N --cpus C --memory M --disk D --timeout S
/// [--cloud-init FILE] [--network SPEC] <image>`.
pub fn launch(spec: &LaunchSpec, opts: LaunchOptions<'_>) -> Vec<OsString> {
    // `--timeout` must be a positive integer number of seconds.
    let timeout = opts.timeout.as_secs().max(1);
    let mut args: Vec<OsString> = vec![
        "launch".into(),
        "--name".into(),
        spec.name.clone().into(),
        "--cpus".into(),
        spec.cpus.max(1).to_string().into(),
        "--memory".into(),
        size_arg(spec.memory_bytes).into(),
        "--disk".into(),
        size_arg(spec.disk_bytes).into(),
        "--timeout".into(),
        timeout.to_string().into(),
    ];
    if let Some(path) = opts.user_data {
        args.push("--cloud-init".into());
        args.push(path.as_os_str().to_owned());
    }
    if let Some((bridge, mac)) = opts.network {
        args.push("--network".into());
        args.push(network_arg(bridge, mac).into());
    }
    args.push(opts.image.into());
    args
}

/// `<command> <name>` plus fixed flags, for start/stop/delete/info.
pub fn on_instance(command: &str, flags: &[&str], name: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![command.into()];
    args.extend(flags.iter().map(OsString::from));
    args.push(name.into());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_largest_exact_suffix() {
        assert_eq!(size_arg(4 * GIB), "4G");
        assert_eq!(size_arg(1536 * MIB), "1536M");
        assert_eq!(size_arg(129 * KIB), "129K");
        assert_eq!(size_arg(1000), "1000");
    }

    #[test]
    fn names_that_could_be_flags_are_refused() {
        for bad in ["", "--all", "-x", "1node", "node-", "a b", "a_b", "näme"] {
            assert!(check_name("start", bad).is_err(), "{bad:?}");
        }
        for good in ["a", "mgmt-cp", "app1-w2", "X9"] {
            assert!(check_name("start", good).is_ok(), "{good:?}");
        }
    }
}
