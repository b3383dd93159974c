//! systemd unit files, as far as starting a service needs: find the unit
//! on the machine, read its `[Service]` `ExecStart=` and `Environment=`,
//! and resolve the program inside the machine's root.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// Where systemd looks for system units, most specific first.
const UNIT_DIRS: &[&str] = &[
    "etc/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
];
/// systemd's fixed search path for an `ExecStart=` without a slash.
const EXEC_PATH: &[&str] = &[
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

/// What the emulator takes from a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub exec_start: Vec<String>,
    pub environment: Vec<(String, String)>,
}

/// `hostctl-node-agent` → `hostctl-node-agent.service`.
pub fn unit_name(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// The unit file under the machine's root.
pub fn find(root: &Path, unit: &str) -> anyhow::Result<PathBuf> {
    let unit = unit_name(unit);
    UNIT_DIRS
        .iter()
        .map(|d| root.join(d).join(&unit))
        .find(|p| p.is_file())
        .with_context(|| format!("Unit {unit} not found."))
}

/// Reads `[Service]`: the last `ExecStart=` (an empty one resets the list,
/// as systemd does) and every `Environment=` assignment.
pub fn parse(text: &str) -> anyhow::Result<Unit> {
    let mut unit = Unit::default();
    let mut section = String::new();
    let mut logical = String::new();
    for raw in text.lines() {
        // A trailing backslash continues the line.
        if let Some(head) = raw.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_owned();
            continue;
        }
        if section != "Service" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim() {
            "ExecStart" => {
                // Prefixes `-@:+!` change error handling and privileges;
                // the emulator runs everything as root anyway.
                let v = value.trim().trim_start_matches(['-', '@', ':', '+', '!']);
                unit.exec_start = split_words(v)?;
            }
            "Environment" => {
                for word in split_words(value.trim())? {
                    if let Some((k, v)) = word.split_once('=') {
                        unit.environment.push((k.to_owned(), v.to_owned()));
                    }
                }
            }
            _ => {}
        }
    }
    if unit.exec_start.is_empty() {
        bail!("the unit has no ExecStart=");
    }
    Ok(unit)
}

/// systemd's word splitting: whitespace separates, single and double
/// quotes group, a backslash escapes the next character.
pub fn split_words(text: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                cur.push(chars.next().context("a trailing backslash")?);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unbalanced quotes in {text:?}");
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The program of `ExecStart=` inside the machine's root: an absolute path
/// under the root, or a bare name searched in systemd's fixed path there.
/// A fast-mode machine has no OS of its own, so a program that is not in
/// its root does not exist for it.
pub fn resolve_program(root: &Path, program: &str) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = if program.starts_with('/') {
        vec![crate::write_files::rooted(root, program)?]
    } else if program.contains('/') {
        bail!("ExecStart={program}: a relative path is not allowed");
    } else {
        EXEC_PATH
            .iter()
            .map(|d| root.join(d).join(program))
            .collect()
    };
    use std::os::unix::fs::PermissionsExt as _;
    candidates
        .into_iter()
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .with_context(|| {
            format!(
                "ExecStart program {program} is not an executable file in the machine's root {}",
                root.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = "[Unit]\nDescription=hostctl node agent\nAfter=network-online.target\n\n\
        [Service]\nType=simple\nExecStart=/usr/bin/false\nExecStart=\n\
        ExecStart=/usr/local/bin/node-agent --config /etc/hostctl/node-agent.yaml\n\
        Environment=RUST_LOG=info \"A=b c\"\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n";

    #[test]
    fn exec_start_and_environment_come_from_the_service_section() {
        let u = parse(UNIT).unwrap();
        assert_eq!(
            u.exec_start,
            [
                "/usr/local/bin/node-agent",
                "--config",
                "/etc/hostctl/node-agent.yaml"
            ]
        );
        assert_eq!(
            u.environment,
            [
                ("RUST_LOG".into(), "info".into()),
                ("A".into(), "b c".into())
            ]
        );
        assert!(parse("[Service]\nType=simple\n").is_err());
        assert_eq!(
            parse("[Service]\nExecStart=-/bin/x \\\n  --y\n")
                .unwrap()
                .exec_start,
            ["/bin/x", "--y"]
        );
    }

    #[test]
    fn words_split_like_systemd() {
        assert_eq!(
            split_words("a 'b c' \"d\\\"e\" f\\ g").unwrap(),
            ["a", "b c", "d\"e", "f g"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_err());
        assert_eq!(unit_name("x"), "x.service");
        assert_eq!(unit_name("x.socket"), "x.socket");
    }
}
