//! The NoCloud seed of a VM-mode machine: a vfat disk labelled `CIDATA`
//! holding exactly `user-data` (the file given to `launch`, byte for byte)
//! and `meta-data`. No `network-config`: Multipass passes none for the
//! default NIC, so cloud-init's fallback config (DHCP on the first NIC)
//! applies, and user-data's netplan files amend it, as on a Mac.
//!
//! Built with `mkfs.vfat` and `mcopy` (mtools): nothing is mounted.

use anyhow::{Context as _, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// `meta-data`: the instance id is new per launch (a relaunched name runs
/// cloud-init again), the hostname is the instance name.
pub fn meta_data(name: &str, instance: &str) -> String {
    format!("instance-id: {name}-{instance}\nlocal-hostname: {name}\ncloud-name: multipass\n")
}

/// Writes the seed image `seed`, staging the two files in `stage`.
pub fn write(seed: &Path, stage: &Path, user_data: &str, meta: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(stage)?;
    let ud = stage.join("user-data");
    let md = stage.join("meta-data");
    crate::fsutil::write_atomic(&ud, user_data.as_bytes(), 0o600)?;
    crate::fsutil::write_atomic(&md, meta.as_bytes(), 0o600)?;
    // Room for the content plus vfat's overhead; 2 MiB at least.
    let kib = ((user_data.len() + meta.len()) as u64 / 1024 * 5 / 4 + 512).max(2048);
    let _ = std::fs::remove_file(seed);
    let seed_arg = seed.to_string_lossy().into_owned();
    run(
        "mkfs.vfat",
        &["-n", "CIDATA", "-C", &seed_arg, &kib.to_string()],
    )?;
    let ud_arg = ud.to_string_lossy().into_owned();
    let md_arg = md.to_string_lossy().into_owned();
    let copied = run("mcopy", &["-i", &seed_arg, &ud_arg, &md_arg, "::/"]);
    let _ = std::fs::remove_file(&ud);
    let _ = std::fs::remove_file(&md);
    copied
}

fn run(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let program = crate::ip::find_program(tool)
        .with_context(|| format!("{tool} is not installed (dosfstools / mtools)"))?;
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {tool}"))?;
    if !out.status.success() {
        bail!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_names_the_instance_and_multipass() {
        let m = meta_data("n1", "abc");
        assert_eq!(
            m,
            "instance-id: n1-abc\nlocal-hostname: n1\ncloud-name: multipass\n"
        );
    }

    #[test]
    fn the_seed_holds_only_user_data_and_meta_data_under_cidata() {
        if crate::ip::find_program("mkfs.vfat").is_none()
            || crate::ip::find_program("mdir").is_none()
        {
            test_support::skip(
                "the_seed_holds_only_user_data_and_meta_data_under_cidata",
                "dosfstools/mtools not installed",
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("mpemu-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let seed = dir.join("seed.img");
        write(
            &seed,
            &dir.join("stage"),
            "#cloud-config\n",
            &meta_data("n1", "1"),
        )
        .unwrap();
        let s = seed.to_str().unwrap();
        let listing = Command::new("mdir")
            .args(["-i", s, "-b", "::/"])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(
            listing.contains("user-data") && listing.contains("meta-data"),
            "{listing}"
        );
        assert!(!listing.contains("network-config"), "{listing}");
        let label = Command::new("mlabel")
            .args(["-i", s, "-s", "::"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&label.stdout).contains("CIDATA"));
        let copy = dir.join("back");
        Command::new("mcopy")
            .args(["-i", s, "::/user-data"])
            .arg(&copy)
            .status()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "#cloud-config\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
