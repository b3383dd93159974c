//! The node agent's configuration, adapted to a fast-mode machine.
//!
//! On a real VM the agent's `--config` file (YAML, camelCase; see
//! node-agent/src/config.rs) says `root: /`, and the agent probes `/etc`,
//! keeps its key in `/var/lib/hostctl-agent` and runs apt, systemctl and
//! modprobe. A fast-mode machine has no OS of its own: it shares this
//! host's kernel and file system. So the supervisor starts the agent with a
//! derived copy of that file, written beside it as `*.emulated.yaml`,
//! changing only what locates the machine, exactly as hostctl's local
//! provider does for its nodes:
//!
//! - `root` → the machine's root directory,
//! - `stateDir` → the same path under that root,
//! - `commandRunner` → `record` (commands are written to
//!   `<root>/var/log/hostctl/commands.jsonl` instead of run on this host),
//! - `logSource` → `file` (there is no journal for the machine).
//!
//! Everything else (node, cluster, host endpoints, CA, token, listen
//! address, kubeadm binary) stays as user-data wrote it: that is what the
//! test is about.

use anyhow::{Context as _, bail};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the agent keeps its state unless the file says otherwise (the
/// node agent's own default).
const DEFAULT_STATE_DIR: &str = "/var/lib/hostctl-agent";

/// The derived file for `original` (`node-agent.yaml` →
/// `node-agent.emulated.yaml`, same directory).
pub fn emulated_path(original: &Path) -> PathBuf {
    let stem = original
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    original.with_file_name(format!("{stem}.emulated.yaml"))
}

/// The derived configuration text.
pub fn derive(text: &str, machine_root: &Path) -> anyhow::Result<String> {
    let mut doc: Value = serde_saphyr::from_str(text).context("the agent config is not YAML")?;
    let Some(map) = doc.as_object_mut() else {
        bail!("the agent config is not a mapping");
    };
    let state_dir = map
        .get("stateDir")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_STATE_DIR)
        .to_owned();
    let rooted_state = crate::write_files::rooted(machine_root, &state_dir).context("stateDir")?;
    let path = |p: &Path| Value::String(p.to_string_lossy().into_owned());
    map.insert("root".into(), path(machine_root));
    map.insert("stateDir".into(), path(&rooted_state));
    map.insert("commandRunner".into(), Value::String("record".into()));
    map.insert("logSource".into(), Value::String("file".into()));
    serde_saphyr::to_string(&doc).context("rendering the derived agent config")
}

/// `ExecStart=` arguments with `--config PATH` (or `--config=PATH`)
/// pointing at a derived copy under `machine_root`; written 0600 (it holds
/// the enrolment token). Arguments without `--config` pass unchanged.
pub fn rewrite_args(args: &[String], machine_root: &Path) -> anyhow::Result<Vec<OsString>> {
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let (config, joined): (&str, bool) = if a == "--config" {
            (args.get(i + 1).context("--config without a path")?, false)
        } else if let Some(p) = a.strip_prefix("--config=") {
            (p, true)
        } else {
            out.push(OsString::from(a));
            i += 1;
            continue;
        };
        let original = crate::write_files::rooted(machine_root, config)?;
        let text = std::fs::read_to_string(&original)
            .with_context(|| format!("reading the agent config {}", original.display()))?;
        let derived_path = emulated_path(&original);
        crate::fsutil::write_atomic(
            &derived_path,
            derive(&text, machine_root)?.as_bytes(),
            0o600,
        )?;
        if joined {
            let mut arg = OsString::from("--config=");
            arg.push(derived_path.as_os_str());
            out.push(arg);
            i += 1;
        } else {
            out.push("--config".into());
            out.push(derived_path.into_os_string());
            i += 2;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "node: mgmt-cp\ncluster: mgmt\ncontrolPlane: true\nhost:\n  enrolEndpoint: 192.168.252.1:7444\n  endpoint: 192.168.252.1:7443\n  serverName: \"192.168.252.1\"\ncaPem: |\n  -----BEGIN CERTIFICATE-----\n  AAAA\n  -----END CERTIFICATE-----\nenrolmentToken: hct1.abc.def\nstateDir: /var/lib/hostctl-agent\nlisten: 192.168.252.10:7445\nreportIntervalSeconds: 10\nbufferCapacity: 1000\nroot: /\nlogSource: journald\ncommandRunner: real\nkubeadm:\n  binary: /opt/kubeadm\n  alwaysRun: false\n";

    #[test]
    fn only_the_machine_locating_fields_change() {
        let root = Path::new("/state/machines/mgmt-cp/root");
        let text = derive(CONFIG, root).unwrap();
        let before: Value = serde_saphyr::from_str(CONFIG).unwrap();
        let after: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(after["root"], "/state/machines/mgmt-cp/root");
        assert_eq!(
            after["stateDir"],
            "/state/machines/mgmt-cp/root/var/lib/hostctl-agent"
        );
        assert_eq!(after["commandRunner"], "record");
        assert_eq!(after["logSource"], "file");
        let changed = ["root", "stateDir", "commandRunner", "logSource"];
        for (k, v) in before.as_object().unwrap() {
            if !changed.contains(&k.as_str()) {
                assert_eq!(&after[k], v, "{k} changed");
            }
        }
        assert_eq!(
            after.as_object().unwrap().len(),
            before.as_object().unwrap().len()
        );
    }

    #[test]
    fn a_missing_state_dir_gets_the_agents_default_under_the_root() {
        let text = derive("node: n\n", Path::new("/r")).unwrap();
        assert!(text.contains("/r/var/lib/hostctl-agent"), "{text}");
        assert_eq!(
            emulated_path(Path::new("/r/etc/hostctl/node-agent.yaml")),
            Path::new("/r/etc/hostctl/node-agent.emulated.yaml")
        );
    }
}
