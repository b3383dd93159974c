//! The NoCloud seed: a small vfat disk labelled `CIDATA` with `user-data`,
//! `meta-data` and `network-config`, which cloud-init finds by its label.
//! Built with `mkfs.vfat` and `mcopy` (mtools) so nothing is mounted and no
//! privileges are needed.

use crate::exec::{Cmd, ExecError, RealRunner, Runner as _};
use std::path::{Path, PathBuf};

/// 2 MiB: the user-data embeds the node-agent binary (gz+b64, a few MiB
/// for a release build), so the seed is sized from its content instead.
const MIN_SEED_KIB: u64 = 2048;

/// Why the seed could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{tool} is not installed or not on PATH ({package})")]
    ToolMissing { tool: String, package: String },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Exec(#[from] ExecError),
}

/// What the seed carries.
#[derive(Debug, Clone)]
pub struct SeedFiles<'a> {
    pub user_data: &'a str,
    pub meta_data: &'a str,
    pub network_config: Option<&'a str>,
}

/// `meta-data` for NoCloud. The instance id changes with every launch, so a
/// relaunched node (same name, new overlay) runs cloud-init again.
pub fn meta_data(node: &str, instance: &str) -> String {
    format!("instance-id: hostctl-{node}-{instance}\nlocal-hostname: {node}\n")
}

/// Writes `seed` (a raw vfat image) from `files`, staging them in `scratch`.
pub async fn write(seed: &Path, scratch: &Path, files: &SeedFiles<'_>) -> Result<(), SeedError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeedError::Io { path, source }
    };
    std::fs::create_dir_all(scratch).map_err(io(scratch))?;
    let mut staged = vec![
        stage(scratch, "user-data", files.user_data)?,
        stage(scratch, "meta-data", files.meta_data)?,
    ];
    if let Some(network) = files.network_config {
        staged.push(stage(scratch, "network-config", network)?);
    }
    let content: u64 = staged
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let kib = (content / 1024 * 5 / 4 + 512).max(MIN_SEED_KIB);
    match std::fs::remove_file(seed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(io(seed)(source)),
    }
    let seed_arg = seed.as_os_str().to_string_lossy().into_owned();
    run(
        "mkfs.vfat",
        "dosfstools",
        &[
            "-n".into(),
            "CIDATA".into(),
            "-C".into(),
            seed_arg.clone(),
            kib.to_string(),
        ],
    )
    .await?;
    let mut args = vec!["-i".to_owned(), seed_arg];
    args.extend(staged.iter().map(|p| p.to_string_lossy().into_owned()));
    args.push("::/".to_owned());
    let copied = run("mcopy", "mtools", &args).await;
    for path in &staged {
        let _ = std::fs::remove_file(path);
    }
    copied
}

/// Writes one file 0600: user-data holds the enrolment token.
fn stage(dir: &Path, name: &str, text: &str) -> Result<PathBuf, SeedError> {
    let path = dir.join(name);
    crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| SeedError::Io {
        path: e.path,
        source: e.source,
    })?;
    Ok(path)
}

async fn run(tool: &str, package: &str, args: &[String]) -> Result<(), SeedError> {
    let program = crate::exec::find_program(tool).ok_or_else(|| SeedError::ToolMissing {
        tool: tool.to_owned(),
        package: format!("install {package}"),
    })?;
    RealRunner.run(&Cmd::new(program).args(args)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_names_the_node_and_a_fresh_instance() {
        let text = meta_data("app1-cp", "1700000000");
        assert!(text.contains("instance-id: hostctl-app1-cp-1700000000\n"));
        assert!(text.contains("local-hostname: app1-cp\n"));
    }

    #[tokio::test]
    async fn seed_holds_the_three_files_under_the_cidata_label() {
        if crate::exec::find_program("mkfs.vfat").is_none()
            || crate::exec::find_program("mcopy").is_none()
        {
            test_support::skip(
                "seed_holds_the_three_files_under_the_cidata_label",
                "dosfstools/mtools not installed",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed.img");
        let files = SeedFiles {
            user_data: "#cloud-config\n",
            meta_data: &meta_data("n1", "1"),
            network_config: Some("network: {version: 2}\n"),
        };
        write(&seed, &dir.path().join("stage"), &files)
            .await
            .unwrap();
        let mtools = |tool: &str, args: [&str; 2]| Cmd::new(tool).arg("-i").arg(&seed).args(args);
        let listing = RealRunner
            .run(&mtools("mdir", ["-b", "::/"]))
            .await
            .unwrap();
        let listing = listing.stdout_text();
        for name in ["user-data", "meta-data", "network-config"] {
            assert!(listing.contains(name), "{listing}");
        }
        let label = RealRunner
            .run(&mtools("mlabel", ["-s", "::"]))
            .await
            .unwrap();
        assert!(label.stdout_text().contains("CIDATA"));
        assert!(!dir.path().join("stage/user-data").exists());
    }
}
