//! cloud-init's `write_files` module, into a machine's root directory: the
//! content decoded as its `encoding` says, the file created with its
//! directories, then given its mode, as `cc_write_files` does.

use crate::cloud_config::WriteFile;
use anyhow::{Context as _, bail};
use base64::Engine as _;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

/// cloud-init's default mode for written files.
const DEFAULT_MODE: u32 = 0o644;

/// The bytes an entry stands for. Unknown encodings are written as text,
/// with a warning, as cloud-init does ("assuming text/plain").
pub fn decode(content: &str, encoding: Option<&str>) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    let enc = encoding.unwrap_or("text/plain").trim().to_ascii_lowercase();
    let b64 = |text: &str| {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .context("content is not valid base64")
    };
    let gunzip = |bytes: &[u8]| -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .context("content is not valid gzip")?;
        Ok(out)
    };
    Ok(match enc.as_str() {
        "b64" | "base64" => (b64(content)?, None),
        "gz+b64" | "gzip+base64" | "gz+base64" | "gzip+b64" => (gunzip(&b64(content)?)?, None),
        "gz" | "gzip" => (gunzip(content.as_bytes())?, None),
        "text/plain" | "plain" | "text" | "" => (content.as_bytes().to_vec(), None),
        other => (
            content.as_bytes().to_vec(),
            Some(format!("unknown encoding {other:?}, assuming text/plain")),
        ),
    })
}

/// `path` (absolute, inside the machine) under `root`; refuses `..` so
/// user-data can never write outside the machine.
pub fn rooted(root: &Path, path: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(path);
    if !p.is_absolute() {
        bail!("{path:?} is not an absolute path");
    }
    let mut out = root.to_path_buf();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => bail!("{path:?} leaves the root"),
        }
    }
    Ok(out)
}

/// Writes one entry under `root`; returns warnings for the output log.
pub fn write(root: &Path, file: &WriteFile) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let (bytes, warning) =
        decode(&file.content, file.encoding.as_deref()).with_context(|| file.path.clone())?;
    warnings.extend(warning);
    let target = rooted(root, &file.path)?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(file.append)
        .truncate(!file.append)
        .open(&target)
        .with_context(|| format!("creating {}", target.display()))?;
    f.write_all(&bytes)
        .with_context(|| format!("writing {}", target.display()))?;
    let mode = file.permissions.unwrap_or(DEFAULT_MODE);
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", target.display()))?;
    if let Some(owner) = &file.owner {
        let root_owner = matches!(owner.as_str(), "root" | "root:root" | "0" | "0:0");
        if !root_owner {
            warnings.push(format!(
                "{}: owner {owner:?} not emulated (a fast-mode machine has no users); left owned by root",
                file.path
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    fn gz_b64(data: &[u8]) -> String {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(data).unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
    }

    #[test]
    fn every_encoding_decodes() {
        let plain = b"#!/bin/sh\necho hi\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(plain);
        for enc in ["b64", "base64", "BASE64"] {
            assert_eq!(decode(&b64, Some(enc)).unwrap().0, plain, "{enc}");
        }
        let gz = gz_b64(plain);
        for enc in ["gz+b64", "gzip+base64"] {
            assert_eq!(decode(&gz, Some(enc)).unwrap().0, plain, "{enc}");
        }
        let wrapped = format!("{}\n  {}", &gz[..10], &gz[10..]);
        assert_eq!(decode(&wrapped, Some("gz+b64")).unwrap().0, plain);
        assert_eq!(decode("x", None).unwrap(), (b"x".to_vec(), None));
        assert!(decode("x", Some("rot13")).unwrap().1.is_some());
        assert!(decode("!!", Some("b64")).is_err());
    }

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/m/root");
        assert_eq!(rooted(root, "/etc/x").unwrap(), Path::new("/m/root/etc/x"));
        assert!(rooted(root, "/etc/../../x").is_err());
        assert!(rooted(root, "etc/x").is_err());
    }
}
