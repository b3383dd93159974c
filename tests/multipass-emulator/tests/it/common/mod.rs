//! Harness for the emulator's own tests: one state directory per test, the
//! emulator reached through a `multipass` symlink as hostctl reaches it,
//! one host-wide lock so tests that use the emulated network never overlap
//! (the bridge and 192.168.252.0/24 are host-wide), and a cleanup that
//! always runs `__teardown` and checks it left nothing behind.

use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The lock every test (and any end-to-end suite) using the emulated
/// network holds for its whole run.
pub const NETWORK_LOCK: &str = "/run/multipass-emulator.lock";
pub const BRIDGE: &str = "mpemu0";

pub fn emulator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_multipass-emulator"))
}

/// Root, `ip` and dnsmasq are needed; without them the test prints SKIP
/// and passes, unless `HOSTCTL_E2E_REQUIRED=1` makes that a failure.
pub fn can_run(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let missing: Vec<&str> = [("ip", "iproute2"), ("dnsmasq", "dnsmasq-base")]
        .into_iter()
        .filter(|(tool, _)| {
            !["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists())
        })
        .map(|(_, pkg)| pkg)
        .collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = if root {
        format!("missing {missing:?}")
    } else {
        "needs root (network namespaces, a bridge)".to_owned()
    };
    test_support::skip(test, &why)
}

/// Holds [`NETWORK_LOCK`] (flock, released when dropped or on exit).
pub struct NetworkLock {
    _held: File,
}

pub fn lock_network() -> NetworkLock {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(NETWORK_LOCK)
        .expect("open the network lock");
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    NetworkLock { _held: f }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One emulator state directory, torn down when dropped.
pub struct Emu {
    pub state: PathBuf,
    pub bin_dir: PathBuf,
    /// Extra environment for every call (VM mode: mode and image).
    pub env: Vec<(String, String)>,
    _lock: NetworkLock,
}

impl Emu {
    pub fn new() -> Emu {
        let lock = lock_network();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("mpemu-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let bin_dir = base.join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(emulator_bin(), bin_dir.join("multipass")).unwrap();
        let emu = Emu {
            state: base.join("state"),
            bin_dir,
            env: Vec::new(),
            _lock: lock,
        };
        assert!(
            !Path::new("/sys/class/net").join(BRIDGE).exists(),
            "{BRIDGE} exists before the test (a leftover?): run `multipass-emulator __teardown` with its state or `ip link del {BRIDGE}`"
        );
        emu
    }

    /// `multipass <args>` through the symlink, as hostctl runs it.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(self.bin_dir.join("multipass"))
            .args(args)
            .env("MULTIPASS_EMULATOR_STATE", &self.state)
            .env_remove("MULTIPASS_EMULATOR_MODE")
            .env_remove("MULTIPASS_EMULATOR_BRIDGE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run the emulator")
    }

    /// Like [`Emu::run`], and the call must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "multipass {args:?} failed ({}):\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn info(&self, name: &str) -> Value {
        let text = self.ok(&["info", "--format", "json", name]);
        let v: Value = serde_json::from_str(&text).expect("info JSON");
        v["info"][name].clone()
    }

    pub fn list(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["list", "--format", "json"])).unwrap();
        v["list"].as_array().cloned().unwrap_or_default()
    }

    pub fn machine_dir(&self, name: &str) -> PathBuf {
        self.state.join("machines").join(name)
    }

    pub fn root(&self, name: &str) -> PathBuf {
        self.machine_dir(name).join("root")
    }

    /// The pid of a unit's program (the supervisor's record of it).
    pub fn unit_pid(&self, name: &str, unit: &str) -> Option<i32> {
        let path = self
            .machine_dir(name)
            .join("units")
            .join(format!("{unit}.main.pid"));
        let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        Path::new("/proc")
            .join(pid.to_string())
            .exists()
            .then_some(pid)
    }

    /// Every log of the state directory, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut files = vec![self.state.join("dnsmasq.log")];
        if let Ok(dirs) = std::fs::read_dir(self.state.join("machines")) {
            for d in dirs.flatten() {
                for f in [
                    "cloud-init-output.log",
                    "supervisor.log",
                    "agent.log",
                    "vm/console.log",
                ] {
                    files.push(d.path().join(f));
                }
            }
        }
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!("---- {} (last 30 lines)\n", f.display()));
                for l in &lines[lines.len().saturating_sub(30)..] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// What the emulator could have left on the host.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if Path::new("/sys/class/net").join(BRIDGE).exists() {
            out.push(format!("bridge {BRIDGE}"));
        }
        if let Ok(entries) = std::fs::read_dir("/run/netns") {
            out.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("mpemu-"))
                    .map(|n| format!("netns {n}")),
            );
        }
        if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
            out.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("mpe") || n.starts_with("mpt"))
                    .map(|n| format!("link {n}")),
            );
        }
        if let Some(pid) = std::fs::read_to_string(self.state.join("dnsmasq.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            && running(pid)
        {
            out.push(format!("dnsmasq {pid}"));
        }
        out
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = self.run(&["__teardown"]);
        let left = self.leftovers();
        if let Some(base) = self.state.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("__teardown left {left:?}");
        }
    }
}

/// The network namespace a process is in, as its inode.
pub fn netns_inode_of_pid(pid: i32) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .ino()
}

pub fn netns_inode(ns: &str) -> u64 {
    std::fs::metadata(Path::new("/run/netns").join(ns))
        .unwrap()
        .ino()
}

/// True when `pid` exists and is not a zombie (a killed machine's
/// processes are reaped by init, which may take a moment).
pub fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// SIGKILL to one process.
pub fn signal_kill(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// The IPv4 addresses in namespace `ns` (any interface).
pub fn ip_json(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-j", "-4", "addr", "show"])
        .output()
        .expect("ip");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `probe` until it gives a value or `limit` passes.
pub fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ipv4` of an info or list entry as strings.
pub fn ipv4(entry: &Value) -> Vec<String> {
    entry["ipv4"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// gzip then base64, as hostctl embeds binaries.
pub fn gz_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The last octet of a /24 address.
pub fn host_number(addr: &str) -> u8 {
    addr.rsplit('.').next().unwrap().parse().unwrap()
}
