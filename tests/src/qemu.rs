//! A QEMU environment for the real-VM suites (`tests/tests/qemu_*.rs`): a
//! [`LocalEnv`] (home, node network, topology, daemon access) whose nodes
//! are QEMU VMs booted from the test image (`tools/test-image/build.sh`,
//! built once and cached), with the size-optimised node agent embedded in
//! their user-data (a debug build is far over cloud-init's size budget).
//!
//! The tests act inside a VM only through the QEMU guest agent the test
//! image runs (no SSH, nothing baked into the provisioning path).

use crate::LocalEnv;
use host_agent::provider::qemu::{NetNames, guest, vm::VmFiles};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// See the module documentation.
pub struct QemuEnv {
    pub env: LocalEnv,
    pub image: PathBuf,
    names: NetNames,
    /// Put first on `hostctl`'s `PATH` (see [`QemuEnv::corrupt_enrolment_tokens`]).
    shims: Option<tempfile::TempDir>,
}

/// What the `mcopy` stand-in writes in place of a token's secret.
pub const CORRUPTED_SECRET: &str = "corruptedByTheTest";

/// True when this machine can run the VM suites; otherwise says why.
pub fn can_run_vms(test: &str) -> bool {
    if !crate::can_run_netns(test) {
        return false;
    }
    let missing: Vec<&str> = [
        "qemu-system-x86_64",
        "qemu-img",
        "mkfs.vfat",
        "mcopy",
        "debootstrap",
    ]
    .into_iter()
    .filter(|tool| host_agent::provider::qemu::vm::find_program(tool).is_none())
    .collect();
    if !missing.is_empty() {
        return crate::skip(
            test,
            &format!("missing {missing:?} (.ci/run installs them)"),
        );
    }
    true
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds or reuses the test image and returns its directory.
pub fn test_image() -> PathBuf {
    let out = Command::new(workspace().join("tools/test-image/build.sh"))
        .output()
        .expect("run tools/test-image/build.sh");
    assert!(
        out.status.success(),
        "test image build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The node agent as shipped in user-data (`make node-agent-dist`).
fn dist_node_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("HOSTCTL_NODE_AGENT_DIST") {
        return PathBuf::from(p);
    }
    let path = workspace().join("target/node-dist/node-agent");
    assert!(
        path.is_file(),
        "{} not found: build it with `make node-agent-dist` (make test does)",
        path.display()
    );
    path
}

impl QemuEnv {
    /// One environment on `10.251.<net>.0/24` with the given nodes.
    pub fn new(net: u8, nodes: &[&str]) -> QemuEnv {
        let image = test_image();
        let mut env = LocalEnv::new(net, nodes);
        env.bins.node_agent = dist_node_agent();
        let names = NetNames::for_home(env.home());
        QemuEnv {
            env,
            image,
            names,
            shims: None,
        }
    }

    /// From now on, every VM this environment's `hostctl` launches gets
    /// user-data whose enrolment token the host never issued: a stand-in
    /// `mcopy`, first on `PATH`, rewrites the token's secret in the staged
    /// `user-data` on its way into the NoCloud seed, then runs the real
    /// `mcopy`. The provider has no test hook; this is the last moment the
    /// seed's files are plain files. The stand-in fails the launch if there
    /// was no token to corrupt, so the test can never pass vacuously.
    pub fn corrupt_enrolment_tokens(&mut self) {
        let real = host_agent::provider::qemu::vm::find_program("mcopy").expect("mcopy");
        let dir = tempfile::Builder::new()
            .prefix("hostctl-shims-")
            .tempdir()
            .expect("shim dir");
        let script = format!(
            r#"#!/bin/sh
# Test stand-in (tests/src/qemu.rs): corrupt the enrolment token, then copy.
for f in "$@"; do
  case "$f" in
    */user-data)
      sed -i -E 's/^( *enrolmentToken: *"?hct1\.[A-Za-z0-9]+\.)[A-Za-z0-9]+/\1{CORRUPTED_SECRET}/' "$f"
      grep -q '{CORRUPTED_SECRET}' "$f" || {{ echo "mcopy stand-in: no enrolment token in $f" >&2; exit 97; }}
      ;;
  esac
done
exec '{}' "$@"
"#,
            real.display()
        );
        let shim = dir.path().join("mcopy");
        std::fs::write(&shim, script).expect("write the mcopy stand-in");
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod the mcopy stand-in");
        self.shims = Some(dir);
    }

    /// Sets the topology's `mirrors.aptRepository` (see [`crate::apt_mirror`]).
    pub fn set_apt_repository(&self, url: &str) {
        let loaded = topology::load_file(&self.env.topology)
            .unwrap_or_else(|e| panic!("the test topology does not load: {e:?}"));
        let mut t = loaded.topology;
        let mut mirrors = t.mirrors.take().unwrap_or_default();
        mirrors.apt_repository = Some(url.parse().expect("a valid mirror URL"));
        t.mirrors = Some(mirrors);
        std::fs::write(&self.env.topology, t.to_yaml()).expect("write the topology");
    }

    /// `hostctl` with the test image as the base image.
    pub fn hostctl(&self, args: &[&str]) -> Output {
        let image = self.image.to_string_lossy().into_owned();
        let path = match &self.shims {
            Some(dir) => format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
            None => std::env::var("PATH").unwrap_or_default(),
        };
        self.env.hostctl_with_env(
            args,
            &[
                (host_agent::environment::QEMU_IMAGE.name, &image),
                ("PATH", &path),
            ],
        )
    }

    pub fn hostctl_ok(&self, args: &[&str]) -> String {
        let out = self.hostctl(args);
        assert!(
            out.status.success(),
            "hostctl {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The files of a VM (console log, sockets, overlay).
    pub fn files(&self, node: &str) -> VmFiles {
        VmFiles::new(&self.env.home().join("qemu").join(node))
    }

    /// Runs `argv` inside the VM through its guest agent.
    pub fn guest(&self, node: &str, argv: &[&str]) -> guest::GuestOutput {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let qga = self.files(node).qga();
        rt.block_on(guest::exec(&qga, argv, Duration::from_secs(60)))
            .unwrap_or_else(|e| panic!("guest agent of {node}: {e}"))
    }

    /// This home's QEMU processes and interfaces that still exist.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(dirs) = std::fs::read_dir(self.env.home().join("qemu")) {
            for dir in dirs.flatten() {
                if let Some(pid) = VmFiles::new(&dir.path()).running_pid() {
                    out.push(format!("qemu {pid}"));
                }
            }
        }
        let links = Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.extend(
            links
                .lines()
                .filter_map(|l| l.split(':').nth(1))
                .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
                .filter(|n| n.starts_with(&self.names.bridge()))
                .map(|n| format!("link {n}")),
        );
        out
    }

    fn force_cleanup(&self) {
        for item in self.leftovers() {
            match item.split_once(' ') {
                Some(("qemu", pid)) => {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
                Some(("link", link)) => {
                    let _ = Command::new("ip").args(["link", "del", link]).status();
                }
                _ => {}
            }
        }
    }

    /// Prints the tail of each VM's serial console (on failure).
    pub fn dump_consoles(&self) {
        let Ok(dirs) = std::fs::read_dir(self.env.home().join("qemu")) else {
            return;
        };
        for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
            let console = VmFiles::new(&dir.path()).console();
            let text =
                String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("---- {} (last 40 lines)", console.display());
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for QemuEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_consoles();
        }
        let _ = self.hostctl(&["down", "--purge"]);
        self.force_cleanup();
    }
}
