//! The base image a VM boots and the per-VM copy-on-write overlay over it.
//! The image is either a disk file (an Ubuntu cloud image, booted through
//! its own boot loader) or a directory holding `rootfs.img`, `vmlinuz` and
//! `initrd.img` (what `make test-image` builds), booted with QEMU's direct
//! kernel boot.

use super::state::BootRecord;
use crate::exec::{Cmd, ExecError, RealRunner, Runner as _};
use std::path::{Path, PathBuf};

/// Why the base image or an overlay is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "no base image: set {} to a cloud image file or an image directory (rootfs.img, vmlinuz, initrd.img; `make test-image` builds one)",
        crate::environment::QEMU_IMAGE.name
    )]
    NotConfigured,
    #[error("base image {}: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error("qemu-img is not installed or not on PATH (install qemu-utils)")]
    QemuImgMissing,
    #[error("{0}")]
    Exec(#[from] ExecError),
}

/// Resolves the configured image into what a VM boots from.
pub async fn resolve(image: &Path) -> Result<BootRecord, ImageError> {
    let unusable = |reason: &str| ImageError::Unusable {
        path: image.to_path_buf(),
        reason: reason.to_owned(),
    };
    let image = std::fs::canonicalize(image).map_err(|e| unusable(&e.to_string()))?;
    let (base, kernel, initrd) = if image.is_dir() {
        let part = |name: &str| {
            let p = image.join(name);
            p.is_file().then_some(p)
        };
        let base = part("rootfs.img").ok_or_else(|| unusable("the directory has no rootfs.img"))?;
        (base, part("vmlinuz"), part("initrd.img"))
    } else {
        (image.clone(), None, None)
    };
    let base_format = format_of(&base).await?;
    Ok(BootRecord {
        base,
        base_format,
        kernel,
        initrd,
    })
}

/// `qemu-img info`'s idea of the file's format (`raw`, `qcow2`).
async fn format_of(path: &Path) -> Result<String, ImageError> {
    let out = qemu_img(&["info", "--output=json", &path.to_string_lossy()]).await?;
    let info: serde_json::Value = serde_json::from_str(&out).map_err(|e| ImageError::Unusable {
        path: path.to_path_buf(),
        reason: format!("unreadable qemu-img info: {e}"),
    })?;
    info.get("format")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ImageError::Unusable {
            path: path.to_path_buf(),
            reason: "qemu-img reports no format".into(),
        })
}

/// Creates the VM's qcow2 overlay backed by the base image, `size_bytes`
/// large (the base's own size when that is bigger: an overlay cannot shrink).
pub async fn create_overlay(
    boot: &BootRecord,
    overlay: &Path,
    size_bytes: u64,
) -> Result<(), ImageError> {
    let base = boot.base.to_string_lossy();
    let overlay = overlay.to_string_lossy();
    let size = size_bytes.to_string();
    let mut args = vec![
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        &boot.base_format,
        "-b",
        &base,
        &overlay,
        &size,
    ];
    match qemu_img(&args).await {
        // A base larger than the asked size: the overlay takes the base's.
        Err(ImageError::Exec(ExecError::Exit { stderr, .. })) if stderr.contains("smaller") => {
            args.pop();
            qemu_img(&args).await.map(drop)
        }
        other => other.map(drop),
    }
}

async fn qemu_img(args: &[&str]) -> Result<String, ImageError> {
    let program = crate::exec::find_program("qemu-img").ok_or(ImageError::QemuImgMissing)?;
    let output = RealRunner.run(&Cmd::new(program).args(args)).await?;
    Ok(output.stdout_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_image_boots_its_kernel_and_the_overlay_is_backed_by_it() {
        if crate::exec::find_program("qemu-img").is_none() {
            test_support::skip(
                "a_directory_image_boots_its_kernel_and_the_overlay_is_backed_by_it",
                "qemu-img not installed",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image");
        std::fs::create_dir(&image).unwrap();
        std::fs::write(image.join("rootfs.img"), vec![0u8; 1 << 20]).unwrap();
        std::fs::write(image.join("vmlinuz"), b"k").unwrap();
        std::fs::write(image.join("initrd.img"), b"i").unwrap();
        let boot = resolve(&image).await.unwrap();
        assert_eq!(boot.base_format, "raw");
        assert!(boot.kernel.is_some() && boot.initrd.is_some());
        let overlay = dir.path().join("disk.qcow2");
        create_overlay(&boot, &overlay, 8 << 20).await.unwrap();
        assert_eq!(format_of(&overlay).await.unwrap(), "qcow2");
        let missing = resolve(&dir.path().join("nothing")).await.unwrap_err();
        assert!(missing.to_string().contains("nothing"), "{missing}");
    }
}
