//! `multipass launch`: the client's argument checks, the daemon's refusals,
//! then a boot that returns when cloud-init is done, as Multipass waits
//! for it.
//!
//! A launch that fails before the machine is up removes what it made, so a
//! retry can launch the name again. One whose `--timeout` runs out leaves
//! the machine as it is and exits 5, as the real client does (hostctl then
//! looks at `info` and carries on if the machine runs).

use crate::cli::LaunchArgs;
use crate::config::{Config, Mode};
use crate::error::{Failure, OrFail as _};
use crate::names;
use crate::state::{Machine, MachineState, Store};
use crate::{fast, fsutil, network, vm};
use std::io::Read as _;
use std::time::{Duration, Instant};

/// Multipass's defaults and minimums (`include/multipass/constants.h`).
const DEFAULT_MEMORY: u64 = 1 << 30;
const MIN_MEMORY: u64 = 128 << 20;
const DEFAULT_DISK: u64 = 5 << 30;
const MIN_DISK: u64 = 512 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_IMAGE: &str = "24.04";

/// Why a boot did not finish in time (the machine may still come up).
#[derive(Debug, thiserror::Error)]
#[error("timed out waiting for {0}")]
pub struct BootTimeout(pub String);

/// The launch command line, checked.
#[derive(Debug)]
struct Request {
    name: String,
    image: String,
    cpus: u32,
    memory: u64,
    disk: u64,
    timeout: Duration,
    user_data: String,
}

fn check(a: LaunchArgs) -> Result<Request, Failure> {
    let cpus = match a.cpus.as_deref() {
        None => 1,
        Some(c) => c.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Failure::command_line(format!("error: Invalid CPUs value supplied: {c}."))
        })?,
    };
    let size = |value: Option<&str>, default: u64, what: &str| match value {
        None => Ok(default),
        Some(v) => names::parse_size(v).ok_or_else(|| {
            Failure::command_line(format!("error: Invalid {what} size value supplied: {v}."))
        }),
    };
    let memory = size(a.memory.as_deref(), DEFAULT_MEMORY, "memory")?;
    let disk = size(a.disk.as_deref(), DEFAULT_DISK, "disk")?;
    let timeout = match a.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                Failure::command_line("error: --timeout value has to be a positive integer")
            })?,
    };
    for spec in &a.network {
        check_network(spec)?;
    }
    if !a.network.is_empty() || a.bridged {
        return Err(Failure::failed(
            "launch",
            "extra networks (--network, --bridged) are not emulated by multipass-emulator",
        ));
    }
    if !a.mount.is_empty() {
        return Err(Failure::failed(
            "launch",
            "--mount is not emulated by multipass-emulator",
        ));
    }
    let user_data = read_user_data(a.cloud_init.as_deref())?;
    let name = a.name.unwrap_or_else(|| {
        format!(
            "emulated-{:06x}",
            u32::from_be_bytes(names::random_bytes()) & 0xff_ffff
        )
    });
    if !names::valid_instance_name(&name) {
        return Err(Failure::failed(
            "launch",
            format!("Invalid instance name supplied: {name}"),
        ));
    }
    if memory < MIN_MEMORY {
        return Err(Failure::failed(
            "launch",
            format!("Invalid memory size value supplied: {memory}."),
        ));
    }
    if disk < MIN_DISK {
        return Err(Failure::failed(
            "launch",
            format!("Invalid disk size value supplied: {disk}."),
        ));
    }
    Ok(Request {
        name,
        image: a.image.unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
        cpus,
        memory,
        disk,
        timeout,
        user_data,
    })
}

/// `name=<net>[,mode=auto|manual][,mac=<hw>]` or `<net>`, checked as the
/// client does before anything is refused as not emulated.
fn check_network(spec: &str) -> Result<(), Failure> {
    let bad = |m: String| Failure::command_line(format!("error: {m}"));
    if !spec.contains('=') {
        return Ok(());
    }
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("name", n)) if !n.is_empty() => {}
            Some(("mode", "auto" | "manual")) => {}
            Some(("mode", m)) => {
                return Err(bad(format!(
                    "Bad network mode '{m}', need 'auto' or 'manual'"
                )));
            }
            Some(("mac", m)) if names::parse_mac(m).is_some() => {}
            Some(("mac", m)) => return Err(bad(format!("Invalid MAC address: {m}"))),
            _ => return Err(bad("Invalid network options supplied".into())),
        }
    }
    Ok(())
}

/// The client reads user-data itself (a file, or `-` for stdin) and sends
/// the text; the emulator keeps it whole for cloud-init.
fn read_user_data(source: Option<&str>) -> Result<String, Failure> {
    let err = |m: String| Failure::command_line(format!("error loading cloud-init config: {m}"));
    let text = match source {
        None => return Ok(String::new()),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| err(e.to_string()))?;
            s
        }
        Some(url) if url.contains("://") => {
            return Err(err(format!("{url}: URLs are not emulated")));
        }
        Some(path) => std::fs::read_to_string(path).map_err(|e| err(format!("{path}: {e}")))?,
    };
    if !text.trim().is_empty() {
        serde_saphyr::from_str::<serde_json::Value>(&text).map_err(|e| err(e.to_string()))?;
    }
    Ok(text)
}

pub fn run(cfg: &Config, args: LaunchArgs) -> Result<(), Failure> {
    let req = check(args)?;
    if !crate::process::is_root() {
        return Err(Failure::failed(
            "launch",
            "multipass-emulator needs root (network namespaces, bridges)",
        ));
    }
    if cfg.mode == Mode::Vm {
        vm::check_image(cfg).or_fail("launch")?;
    }
    let store = Store::new(&cfg.state);
    let _machine_lock = store.machine_lock(&req.name).or_fail("launch")?;
    create_record(&store, cfg, &req)?;
    let deadline = Instant::now() + req.timeout;
    let booted = network::ensure(&store, &cfg.bridge).and_then(|_| {
        let ud_path = store.machine_dir(&req.name).join("user-data");
        fsutil::write_atomic(&ud_path, req.user_data.as_bytes(), 0o600)?;
        match cfg.mode {
            Mode::Fast => fast::boot(
                &store,
                &cfg.bridge,
                &req.name,
                Some(&req.user_data),
                deadline,
            ),
            Mode::Vm => vm::launch(&store, cfg, &req.name, &req.user_data, deadline),
        }
    });
    match booted {
        Ok(_) if Instant::now() > deadline => {
            Err(Failure::timeout("Timed out waiting for instance launch."))
        }
        Ok(_) => {
            println!("Launched: {}", req.name);
            Ok(())
        }
        Err(e) if e.downcast_ref::<BootTimeout>().is_some() => Err(Failure::timeout(format!(
            "Timed out waiting for instance launch. ({e:#})"
        ))),
        Err(e) => {
            discard(&store, &req.name);
            Err(Failure::failed("launch", format!("{e:#}")))
        }
    }
}

/// Refuses a name in use (deleted instances hold theirs until purged) and
/// records the new machine as Starting, under the global lock.
fn create_record(store: &Store, cfg: &Config, req: &Request) -> Result<(), Failure> {
    let _lock = store.global_lock().or_fail("launch")?;
    let all = store.all().or_fail("launch")?;
    if all.iter().any(|m| m.name == req.name) {
        return Err(Failure::failed(
            "launch",
            format!("instance \"{}\" already exists", req.name),
        ));
    }
    let mac = loop {
        let mac = names::format_mac(&names::random_mac());
        if !all.iter().any(|m| m.mac == mac) {
            break mac;
        }
    };
    let host_link = match cfg.mode {
        Mode::Fast => names::veth_for(&req.name),
        Mode::Vm => names::tap_for(&req.name),
    };
    let m = Machine {
        name: req.name.clone(),
        image: req.image.clone(),
        mode: cfg.mode,
        cpus: req.cpus,
        memory: req.memory,
        disk: req.disk,
        mac,
        state: MachineState::Starting,
        boots: 0,
        netns: names::netns_for(&req.name),
        host_link,
        lease: None,
        static_addresses: Vec::new(),
        enabled_units: Vec::new(),
        cloud_init: Default::default(),
        created_unix: fsutil::now_unix(),
    };
    store.save(&m).or_fail("launch")
}

/// Undoes a failed launch: processes, links and files.
fn discard(store: &Store, name: &str) {
    if let Ok(Some(m)) = store.load(name) {
        match m.mode {
            Mode::Fast => {
                let _ = fast::shutdown(store, name);
                fast::remove_links(&m);
            }
            Mode::Vm => {
                let _ = vm::shutdown(store, name);
                vm::remove_links(&m);
            }
        }
    }
    let _lock = store.global_lock();
    let _ = store.remove(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> LaunchArgs {
        use clap::Parser as _;
        let mut argv = vec!["multipass", "launch", "--name", "n1"];
        argv.extend(extra);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Cmd::Launch(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_client_checks_sizes_timeout_and_networks() {
        let r = check(args(&[
            "--cpus",
            "2",
            "--memory",
            "4G",
            "--disk",
            "20G",
            "--timeout",
            "900",
        ]))
        .unwrap();
        assert_eq!((r.cpus, r.memory, r.disk), (2, 4 << 30, 20 << 30));
        assert_eq!(r.timeout, Duration::from_secs(900));
        assert_eq!(check(args(&["--memory", "4X"])).unwrap_err().code, 1);
        assert_eq!(check(args(&["--timeout", "0"])).unwrap_err().code, 1);
        assert_eq!(check(args(&["--memory", "64M"])).unwrap_err().code, 2);
        let bad_mode = check(args(&["--network", "name=en0,mode=bridge"])).unwrap_err();
        assert!(
            bad_mode.message.contains("Bad network mode 'bridge'"),
            "{bad_mode}"
        );
        let not_emulated = check(args(&[
            "--network",
            "name=en0,mode=manual,mac=52:54:00:4b:ab:cd",
        ]))
        .unwrap_err();
        assert_eq!(not_emulated.code, 2);
    }
}
