//! Reading user-data the way cloud-init does, for the keys the emulator
//! applies: `hostname`, `write_files` and `runcmd`. Every other key is
//! accepted and ignored (cloud-config has hundreds; a real image would act
//! on them, the emulator says in the output log that it did not).

use serde_json::Value;

pub const HEADER: &str = "#cloud-config";

/// Keys the emulator applies; the rest are listed as ignored in the log.
const APPLIED: &[&str] = &["hostname", "write_files", "runcmd"];
/// Keys that change nothing a fast-mode machine could show.
const HARMLESS: &[&str] = &[
    "preserve_hostname",
    "manage_etc_hosts",
    "package_update",
    "package_upgrade",
    "fqdn",
];

/// The parts of a cloud-config the emulator acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserData {
    pub hostname: Option<String>,
    pub write_files: Vec<WriteFile>,
    pub runcmd: Vec<RunCommand>,
    /// Top-level keys neither applied nor harmless, for the output log.
    pub ignored: Vec<String>,
}

/// One `write_files` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteFile {
    pub path: String,
    pub content: String,
    pub encoding: Option<String>,
    /// The mode; `None` means cloud-init's default, 0644.
    pub permissions: Option<u32>,
    pub owner: Option<String>,
    pub append: bool,
    /// Written in the final stage (`write-files-deferred`), after every
    /// non-deferred file and before `runcmd` runs.
    pub defer: bool,
}

/// One `runcmd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// A list: cloud-init quotes each element, so it runs exactly as given.
    Argv(Vec<String>),
    /// A string: pasted into a shell script as is.
    Shell(String),
}

/// Parses user-data text; the error says why cloud-init would not use it.
pub fn parse(text: &str) -> Result<UserData, String> {
    let first = text.lines().next().unwrap_or("").trim_end();
    if first != HEADER {
        return Err(format!(
            "user-data does not start with {HEADER} (first line {first:?}); cloud-init does not read it as cloud-config"
        ));
    }
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let map = match doc {
        Value::Object(map) => map,
        Value::Null => return Ok(UserData::default()),
        other => return Err(format!("cloud-config must be a mapping, not {other}")),
    };
    let mut out = UserData {
        hostname: map.get("hostname").map(scalar_text),
        ..UserData::default()
    };
    if let Some(files) = map.get("write_files") {
        let items = files.as_array().ok_or("write_files must be a list")?;
        for (i, item) in items.iter().enumerate() {
            out.write_files
                .push(write_file(item).map_err(|e| format!("write_files[{i}]: {e}"))?);
        }
    }
    if let Some(cmds) = map.get("runcmd") {
        let items = cmds.as_array().ok_or("runcmd must be a list")?;
        for (i, item) in items.iter().enumerate() {
            out.runcmd.push(match item {
                Value::Array(words) => RunCommand::Argv(words.iter().map(scalar_text).collect()),
                Value::String(s) => RunCommand::Shell(s.clone()),
                other => {
                    return Err(format!(
                        "runcmd[{i}]: {other} is neither a list nor a string"
                    ));
                }
            });
        }
    }
    out.ignored = map
        .keys()
        .filter(|k| !APPLIED.contains(&k.as_str()) && !HARMLESS.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(out)
}

fn write_file(item: &Value) -> Result<WriteFile, String> {
    let path = item
        .get("path")
        .map(scalar_text)
        .filter(|p| !p.is_empty())
        .ok_or("no path")?;
    let permissions = match item.get("permissions") {
        None | Some(Value::Null) => None,
        // cloud-init's decode_perms: a string is octal, an integer is the
        // mode itself (what a YAML 1.1 parser makes of an unquoted 0644).
        Some(Value::String(s)) => Some(
            u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
                .map_err(|_| format!("permissions {s:?} are not octal"))?,
        ),
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("permissions {n} are not a mode"))?,
        ),
        Some(other) => return Err(format!("permissions {other} are not a mode")),
    };
    let flag = |key: &str| match item.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on"),
        _ => false,
    };
    Ok(WriteFile {
        path,
        content: item.get("content").map(scalar_text).unwrap_or_default(),
        encoding: item.get("encoding").map(scalar_text),
        permissions,
        owner: item.get("owner").map(scalar_text),
        append: flag("append"),
        defer: flag("defer"),
    })
}

/// A scalar as text (YAML may have read `8080` or `true` as non-strings).
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"#cloud-config
hostname: mgmt-cp
package_update: false
users: []
write_files:
- path: /usr/local/bin/node-agent
  content: >-
    H4sIAAAA
  encoding: gz+b64
  permissions: "0755"
- path: /etc/x
  content: |
    hello
  permissions: "0600"
  owner: root:root
  defer: true
runcmd:
- - systemctl
  - daemon-reload
- [netplan, apply]
- echo hi
"#;

    #[test]
    fn reads_hostname_files_and_commands() {
        let u = parse(SAMPLE).unwrap();
        assert_eq!(u.hostname.as_deref(), Some("mgmt-cp"));
        assert_eq!(u.write_files.len(), 2);
        let bin = &u.write_files[0];
        assert_eq!(bin.content, "H4sIAAAA");
        assert_eq!(bin.encoding.as_deref(), Some("gz+b64"));
        assert_eq!(bin.permissions, Some(0o755));
        assert!(!bin.defer);
        let x = &u.write_files[1];
        assert_eq!(
            (x.content.as_str(), x.permissions, x.defer),
            ("hello\n", Some(0o600), true)
        );
        assert_eq!(
            u.runcmd,
            [
                RunCommand::Argv(vec!["systemctl".into(), "daemon-reload".into()]),
                RunCommand::Argv(vec!["netplan".into(), "apply".into()]),
                RunCommand::Shell("echo hi".into()),
            ]
        );
        assert_eq!(u.ignored, ["users"]);
    }

    #[test]
    fn refuses_what_cloud_init_would_not_read() {
        assert!(
            parse("#!/bin/sh\necho\n")
                .unwrap_err()
                .contains("#cloud-config")
        );
        assert!(parse("#cloud-config\nwrite_files: 3\n").is_err());
        assert!(parse("#cloud-config\nwrite_files: [{content: x}]\n").is_err());
        assert_eq!(parse("#cloud-config\n").unwrap(), UserData::default());
    }
}
