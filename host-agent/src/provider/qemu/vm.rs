//! One VM as a QEMU process: its files, its command line, the acceleration
//! probe, and starting it daemonized with a pid file so it outlives the
//! `hostctl` that started it. Building the argv is pure (unit-tested);
//! only [`probe_accel`] and [`spawn`] run anything, through [`crate::exec`].

use super::state::VmRecord;
use crate::exec::{Cmd, ExecError, RealRunner, Runner as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Finds a program on `$PATH` or in the sbin directories `sudo` may drop
/// (here because `doctor` and the end-to-end suites look QEMU's tools up
/// through this module).
pub use crate::exec::find_program;

/// The node agent's Node/Provisioning port inside the VM.
pub const NODE_AGENT_PORT: u16 = proto::contract::ports::NODE_SERVICE;

/// The files of one VM, all in its directory.
#[derive(Debug, Clone)]
pub struct VmFiles {
    pub dir: PathBuf,
}

impl VmFiles {
    pub fn new(dir: &Path) -> VmFiles {
        VmFiles {
            dir: dir.to_path_buf(),
        }
    }
    /// The copy-on-write disk backed by the base image.
    pub fn overlay(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }
    pub fn seed(&self) -> PathBuf {
        self.dir.join("seed.img")
    }
    /// The serial console (kernel, systemd and cloud-init output); appended
    /// across boots.
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    /// QMP, for a clean power-down or an immediate quit.
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    /// The guest agent's channel (used when the image runs qemu-guest-agent).
    pub fn qga(&self) -> PathBuf {
        self.dir.join("qga.sock")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }

    /// The running QEMU's pid: the pid file's, when that process is alive
    /// and is the QEMU started with this pid file (pids are reused).
    pub fn running_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.pidfile()).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let marker = self.pidfile().to_string_lossy().into_owned();
        crate::provider::process::alive_with(pid, &[&marker]).then_some(pid)
    }
}

/// How the guest runs: hardware virtualisation or software emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// The VM's NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicPlan {
    /// A tap device on the provider's bridge (root).
    Tap { ifname: String },
    /// User-mode networking: the guest's gateway is the topology's host
    /// address, which QEMU maps to the host's loopback, and the node
    /// agent's port is forwarded from `127.0.0.1:<host_port>`.
    User {
        subnet: ipnet::Ipv4Net,
        host_address: Ipv4Addr,
        host_port: u16,
    },
}

/// QEMU's arguments for `vm` (without the program).
pub fn argv(vm: &VmRecord, files: &VmFiles, accel: Accel, nic: &NicPlan) -> Vec<String> {
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut args: Vec<String> = vec!["-name".into(), format!("hostctl,debug-threads=off")];
    args.extend(["-machine".into(), "q35".into()]);
    match accel {
        Accel::Kvm => args.extend(["-accel", "kvm", "-cpu", "host"].map(String::from)),
        Accel::Tcg => args.extend(["-accel", "tcg"].map(String::from)),
    }
    args.extend([
        "-m".into(),
        vm.memory_mib.to_string(),
        "-smp".into(),
        vm.cpus.to_string(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-drive".into(),
        format!(
            "file={},if=virtio,format=qcow2,discard=unmap",
            path(files.overlay())
        ),
        "-drive".into(),
        format!(
            "file={},if=virtio,format=raw,readonly=on",
            path(files.seed())
        ),
    ]);
    if let (Some(kernel), Some(initrd)) = (&vm.boot.kernel, &vm.boot.initrd) {
        args.extend([
            "-kernel".into(),
            path(kernel.clone()),
            "-initrd".into(),
            path(initrd.clone()),
            "-append".into(),
            "console=ttyS0 root=/dev/vda rw".into(),
        ]);
    }
    let netdev = match nic {
        NicPlan::Tap { ifname } => format!("tap,id=net0,ifname={ifname},script=no,downscript=no"),
        NicPlan::User {
            subnet,
            host_address,
            host_port,
        } => format!(
            "user,id=net0,net={subnet},host={host_address},hostfwd=tcp:127.0.0.1:{host_port}-{}:{NODE_AGENT_PORT}",
            vm.address
        ),
    };
    args.extend([
        "-netdev".into(),
        netdev,
        "-device".into(),
        format!("virtio-net-pci,netdev=net0,mac={}", vm.mac),
        "-device".into(),
        "virtio-rng-pci".into(),
        "-chardev".into(),
        format!("file,id=console,path={},append=on", path(files.console())),
        "-serial".into(),
        "chardev:console".into(),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", path(files.qmp())),
        "-chardev".into(),
        format!(
            "socket,id=qga,path={},server=on,wait=off",
            path(files.qga())
        ),
        "-device".into(),
        "virtio-serial-pci".into(),
        "-device".into(),
        "virtserialport,chardev=qga,name=org.qemu.guest_agent.0".into(),
        "-pidfile".into(),
        path(files.pidfile()),
        "-daemonize".into(),
    ]);
    args
}

/// How long a KVM guest gets to show that it runs.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// Whether KVM really works here. `/dev/kvm` existing is not enough, and
/// neither is a paused `-cpu host` machine staying alive: under nested
/// virtualisation QEMU may abort as it sets up the vCPU, and on some hosts a
/// KVM guest starts and then never gets anywhere (a VM of the test image sat
/// with an empty console for minutes, while TCG booted it). So the probe
/// runs a guest and waits for its first output: `kernel` booted to its first
/// console line when the image has one, else the firmware's first debug line
/// (SeaBIOS on port 0x402). The reason for TCG is returned for the log.
pub async fn probe_accel(qemu: &Path, kernel: Option<&Path>) -> (Accel, Option<String>) {
    let accel = crate::environment::QEMU_ACCEL;
    match accel.string().as_deref() {
        Some("kvm") => return (Accel::Kvm, None),
        Some("tcg") => return (Accel::Tcg, Some(format!("{}=tcg", accel.name))),
        _ => {}
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return (
            Accel::Tcg,
            Some("/dev/kvm is missing or not accessible".into()),
        );
    }
    let base = Cmd::new(qemu).args([
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-machine",
        "q35",
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    let cmd = match kernel {
        Some(kernel) => base
            .args(["-serial", "stdio", "-kernel"])
            .arg(kernel)
            .args(["-append", "console=ttyS0 panic=-1"]),
        None => base.args([
            "-serial",
            "none",
            "-chardev",
            "stdio,id=probe",
            "-device",
            "isa-debugcon,iobase=0x402,chardev=probe",
        ]),
    };
    let child = cmd
        .spawner()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop()
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return (
                Accel::Tcg,
                Some(format!("the KVM probe did not start: {e}")),
            );
        }
    };
    let Some(mut stdout) = child.stdout.take() else {
        return (Accel::Tcg, Some("the KVM probe has no output".into()));
    };
    let first_output = async {
        use tokio::io::AsyncReadExt as _;
        let mut byte = [0u8; 1];
        matches!(stdout.read(&mut byte).await, Ok(1))
    };
    let ran = tokio::time::timeout(PROBE_LIMIT, first_output).await;
    let _ = child.kill().await;
    match ran {
        Ok(true) => (Accel::Kvm, None),
        Ok(false) => {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use tokio::io::AsyncReadExt as _;
                let _ = pipe.read_to_string(&mut stderr).await;
            }
            let reason = stderr
                .lines()
                .last()
                .unwrap_or("QEMU exited at once")
                .trim();
            (Accel::Tcg, Some(format!("KVM is not usable: {reason}")))
        }
        Err(_) => (
            Accel::Tcg,
            Some(format!(
                "a KVM guest showed no sign of running within {} s (nested virtualisation?)",
                PROBE_LIMIT.as_secs()
            )),
        ),
    }
}

/// Starts QEMU daemonized: it returns once the VM runs (or failed to
/// start, with QEMU's own message), so it runs to completion like any tool.
pub async fn spawn(qemu: &Path, args: &[String]) -> Result<(), ExecError> {
    RealRunner.run(&Cmd::new(qemu).args(args)).await.map(drop)
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
    fn tap_vm_boots_its_kernel_from_the_overlay_with_the_seed_and_a_pidfile() {
        let vm = VmRecord::example();
        let files = VmFiles::new(&vm.dir);
        let nic = NicPlan::Tap {
            ifname: "hq000000t14".into(),
        };
        let args = argv(&vm, &files, Accel::Tcg, &nic);
        assert_eq!(after(&args, "-accel"), ["tcg"]);
        assert_eq!(after(&args, "-m"), ["1024"]);
        assert_eq!(after(&args, "-smp"), ["2"]);
        let drives = after(&args, "-drive");
        assert!(drives[0].starts_with("file=/h/qemu/n1/disk.qcow2,if=virtio,format=qcow2"));
        assert!(drives[1].contains("seed.img") && drives[1].contains("readonly=on"));
        assert_eq!(after(&args, "-kernel"), ["/img/vmlinuz"]);
        assert!(after(&args, "-append")[0].contains("root=/dev/vda"));
        assert_eq!(
            after(&args, "-netdev"),
            ["tap,id=net0,ifname=hq000000t14,script=no,downscript=no"]
        );
        assert!(
            after(&args, "-device").contains(&"virtio-net-pci,netdev=net0,mac=52:54:00:01:02:03")
        );
        assert_eq!(after(&args, "-pidfile"), ["/h/qemu/n1/qemu.pid"]);
        assert_eq!(args.last().map(String::as_str), Some("-daemonize"));
    }

    #[test]
    fn user_mode_maps_the_host_address_and_forwards_the_agent_port() {
        let mut vm = VmRecord::example();
        vm.boot.kernel = None;
        let files = VmFiles::new(&vm.dir);
        let nic = NicPlan::User {
            subnet: "10.252.1.0/24".parse().unwrap(),
            host_address: "10.252.1.1".parse().unwrap(),
            host_port: 40123,
        };
        let args = argv(&vm, &files, Accel::Kvm, &nic);
        assert_eq!(after(&args, "-cpu"), ["host"]);
        assert!(
            after(&args, "-kernel").is_empty(),
            "no kernel: boot the disk"
        );
        assert_eq!(
            after(&args, "-netdev"),
            [
                "user,id=net0,net=10.252.1.0/24,host=10.252.1.1,hostfwd=tcp:127.0.0.1:40123-10.252.1.20:7445"
            ]
        );
    }
}
