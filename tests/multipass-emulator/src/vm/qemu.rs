//! A VM-mode machine's QEMU: its files, its command line (pure, so it is
//! unit-tested), the KVM probe and the daemonized start.
//!
//! Direct kernel boot of the test image's kernel and initrd with a qcow2
//! overlay of its root file system, the NoCloud seed as a second disk, one
//! virtio NIC on a tap device of the emulated bridge with the machine's
//! MAC (as Multipass's `-nic vmnet-shared,…,model=virtio-net-pci,mac=…`),
//! a guest-agent channel and QMP.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The files of one VM.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
}

impl Files {
    pub fn overlay(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }
    pub fn seed(&self) -> PathBuf {
        self.dir.join("seed.img")
    }
    /// Serial console: kernel, systemd and cloud-init output, all boots.
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    pub fn qga(&self) -> PathBuf {
        self.dir.join("qga.sock")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }

    /// QEMU's pid when the one started with this pid file runs.
    pub fn running_pid(&self) -> Option<i32> {
        let pid = crate::process::read_pid(&self.pidfile())?;
        let marker = self.pidfile().to_string_lossy().into_owned();
        crate::process::alive_with(pid, &[&marker]).then_some(pid)
    }
}

/// Hardware virtualisation or software emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// What the command line is made from.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub name: &'a str,
    pub cpus: u32,
    pub memory_mib: u64,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub tap: &'a str,
    pub mac: &'a str,
    pub accel: Accel,
}

/// QEMU's arguments (without the program).
pub fn argv(plan: &Plan<'_>, files: &Files) -> Vec<String> {
    let p = |path: &Path| path.to_string_lossy().into_owned();
    let mut a: Vec<String> = vec![
        "-name".into(),
        plan.name.into(),
        "-machine".into(),
        "q35".into(),
    ];
    match plan.accel {
        Accel::Kvm => a.extend(["-accel", "kvm", "-cpu", "host"].map(String::from)),
        Accel::Tcg => a.extend(["-accel", "tcg"].map(String::from)),
    }
    a.extend([
        "-m".into(),
        plan.memory_mib.to_string(),
        "-smp".into(),
        plan.cpus.to_string(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-drive".into(),
        format!(
            "file={},if=virtio,format=qcow2,discard=unmap",
            p(&files.overlay())
        ),
        "-drive".into(),
        format!("file={},if=virtio,format=raw,readonly=on", p(&files.seed())),
        "-kernel".into(),
        p(plan.kernel),
        "-initrd".into(),
        p(plan.initrd),
        "-append".into(),
        "console=ttyS0 root=/dev/vda rw".into(),
        "-nic".into(),
        format!(
            "tap,ifname={},script=no,downscript=no,model=virtio-net-pci,mac={}",
            plan.tap, plan.mac
        ),
        "-device".into(),
        "virtio-rng-pci".into(),
        "-chardev".into(),
        format!("file,id=console,path={},append=on", p(&files.console())),
        "-serial".into(),
        "chardev:console".into(),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", p(&files.qmp())),
        "-chardev".into(),
        format!("socket,id=qga,path={},server=on,wait=off", p(&files.qga())),
        "-device".into(),
        "virtio-serial-pci".into(),
        "-device".into(),
        "virtserialport,chardev=qga,name=org.qemu.guest_agent.0".into(),
        "-pidfile".into(),
        p(&files.pidfile()),
        "-daemonize".into(),
    ]);
    a
}

/// KVM when it really works here, else TCG; probed once per state
/// directory (`MULTIPASS_EMULATOR_ACCEL=kvm|tcg` decides instead).
/// `/dev/kvm` being there is not enough, nor a paused VM staying alive:
/// under nested virtualisation a KVM guest can sit at its first
/// instruction forever. So the probe boots the image's kernel and waits
/// for its first console line.
pub fn accel(state: &Path, kernel: &Path) -> Accel {
    match std::env::var("MULTIPASS_EMULATOR_ACCEL").as_deref() {
        Ok("kvm") => return Accel::Kvm,
        Ok("tcg") => return Accel::Tcg,
        _ => {}
    }
    let cache = state.join("accel");
    match std::fs::read_to_string(&cache)
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some("kvm") => return Accel::Kvm,
        Some("tcg") => return Accel::Tcg,
        _ => {}
    }
    let found = if kvm_boots(kernel) {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    let _ = std::fs::write(
        &cache,
        if found == Accel::Kvm {
            "kvm\n"
        } else {
            "tcg\n"
        },
    );
    found
}

/// Whether a KVM guest gets as far as the kernel's first message.
fn kvm_boots(kernel: &Path) -> bool {
    use std::io::Read as _;
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let Some(qemu) = crate::ip::find_program("qemu-system-x86_64") else {
        return false;
    };
    if !usable {
        return false;
    }
    let child = Command::new(qemu)
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-machine",
            "q35",
            "-m",
            "256",
            "-nodefaults",
        ])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
        ])
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(13).any(|w| w == b"Linux version") {
                    let _ = tx.send(());
                    break;
                }
            }
        });
    }
    let booted = rx.recv_timeout(Duration::from_secs(15)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    booted
}

/// Starts QEMU; it daemonizes once the VM runs, or fails with its message.
pub fn spawn(args: &[String]) -> anyhow::Result<()> {
    let qemu = crate::ip::find_program("qemu-system-x86_64")
        .context("qemu-system-x86_64 is not installed")?;
    let out = Command::new(&qemu)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", qemu.display()))?;
    if !out.status.success() {
        bail!(
            "qemu failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `qemu-img create` of the overlay, at least as large as the backing file.
pub fn create_overlay(files: &Files, backing: &Path, size: u64) -> anyhow::Result<()> {
    let qemu_img = crate::ip::find_program("qemu-img").context("qemu-img is not installed")?;
    let backing_size = std::fs::metadata(backing)
        .with_context(|| format!("{}", backing.display()))?
        .len();
    let out = Command::new(qemu_img)
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(backing)
        .arg(files.overlay())
        .arg(size.max(backing_size).to_string())
        .stdin(Stdio::null())
        .output()
        .context("running qemu-img")?;
    if !out.status.success() {
        bail!(
            "qemu-img create failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn boots_the_kernel_with_overlay_seed_tap_and_agent_channel() {
        let files = Files {
            dir: PathBuf::from("/s/machines/n1/vm"),
        };
        let plan = Plan {
            name: "n1",
            cpus: 2,
            memory_mib: 2048,
            kernel: Path::new("/img/vmlinuz"),
            initrd: Path::new("/img/initrd.img"),
            tap: "mpt01234567",
            mac: "52:54:00:01:02:03",
            accel: Accel::Tcg,
        };
        let a = argv(&plan, &files);
        assert_eq!(after(&a, "-accel"), ["tcg"]);
        assert_eq!(after(&a, "-m"), ["2048"]);
        assert_eq!(after(&a, "-kernel"), ["/img/vmlinuz"]);
        assert_eq!(
            after(&a, "-nic"),
            [
                "tap,ifname=mpt01234567,script=no,downscript=no,model=virtio-net-pci,mac=52:54:00:01:02:03"
            ]
        );
        let drives = after(&a, "-drive");
        assert!(drives[0].starts_with("file=/s/machines/n1/vm/disk.qcow2,"));
        assert!(drives[1].contains("seed.img") && drives[1].contains("readonly=on"));
        assert!(
            after(&a, "-device")
                .contains(&"virtserialport,chardev=qga,name=org.qemu.guest_agent.0")
        );
        assert_eq!(a.last().map(String::as_str), Some("-daemonize"));
        let kvm = argv(
            &Plan {
                accel: Accel::Kvm,
                ..plan
            },
            &files,
        );
        assert_eq!(after(&kvm, "-cpu"), ["host"]);
    }
}
