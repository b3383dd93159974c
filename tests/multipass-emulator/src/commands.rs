//! Every command but `launch`: the daemon's answers for each machine state
//! (`daemon.cpp`'s selection reactions: a missing instance "does not
//! exist", a deleted one "is deleted" except for `info`, `delete` and
//! `recover`), then the mode's own start or stop.

use crate::cli::{DeleteArgs, InfoArgs, StopArgs, Targets};
use crate::config::{Config, Mode};
use crate::error::{Failure, OrFail as _};
use crate::info::{self, View};
use crate::state::{Machine, MachineState, Store};
use crate::{fast, ip, launch::BootTimeout, network, vm};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The machines a command names (`--all`: every machine with a record).
fn select(
    store: &Store,
    command: &str,
    names: &[String],
    all: bool,
) -> Result<Vec<Machine>, Failure> {
    let every = store.all().or_fail(command)?;
    if all {
        return Ok(every);
    }
    if names.is_empty() {
        return Err(Failure::command_line(
            "error: The following errors occurred:\nName argument or --all is required",
        ));
    }
    names
        .iter()
        .map(|n| {
            every
                .iter()
                .find(|m| &m.name == n)
                .cloned()
                .ok_or_else(|| Failure::not_found(command, n))
        })
        .collect()
}

pub fn start(cfg: &Config, t: Targets) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    let timeout = t
        .timeout
        .as_deref()
        .map(|s| {
            s.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Duration::from_secs)
        })
        .map(|d| {
            d.ok_or_else(|| {
                Failure::command_line("error: --timeout value has to be a positive integer")
            })
        })
        .transpose()?
        .unwrap_or(START_TIMEOUT);
    let machines = select(&store, "start", &t.names, t.all)?;
    if let Some(m) = machines
        .iter()
        .find(|m| m.state == MachineState::Deleted && !t.all)
    {
        return Err(Failure::deleted("start", &m.name));
    }
    let deadline = Instant::now() + timeout;
    for m in machines.iter().filter(|m| m.state == MachineState::Stopped) {
        let _lock = store.machine_lock(&m.name).or_fail("start")?;
        let fresh = store.load(&m.name).or_fail("start")?;
        if fresh.as_ref().map(|f| f.state) != Some(MachineState::Stopped) {
            continue;
        }
        let booted = network::ensure(&store, &cfg.bridge).and_then(|_| match m.mode {
            Mode::Fast => fast::boot(&store, &cfg.bridge, &m.name, None, deadline),
            Mode::Vm => vm::start(&store, cfg, &m.name, deadline),
        });
        match booted {
            Ok(_) if Instant::now() > deadline => {
                return Err(Failure::timeout("Timed out waiting for instance start."));
            }
            Ok(_) => {}
            Err(e) if e.downcast_ref::<BootTimeout>().is_some() => {
                return Err(Failure::timeout(format!(
                    "Timed out waiting for instance start. ({e:#})"
                )));
            }
            Err(e) => return Err(Failure::failed("start", format!("{}: {e:#}", m.name))),
        }
    }
    Ok(())
}

fn power_off(store: &Store, m: &Machine) -> anyhow::Result<()> {
    match m.mode {
        Mode::Fast => fast::shutdown(store, &m.name).map(drop),
        Mode::Vm => vm::shutdown(store, &m.name).map(drop),
    }
}

pub fn stop(cfg: &Config, a: StopArgs) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    let machines = select(&store, "stop", &a.names, a.all)?;
    if let Some(m) = machines
        .iter()
        .find(|m| m.state == MachineState::Deleted && !a.all)
    {
        return Err(Failure::deleted("stop", &m.name));
    }
    if a.cancel {
        return Ok(());
    }
    for m in machines
        .iter()
        .filter(|m| matches!(m.state, MachineState::Running | MachineState::Starting))
    {
        let _lock = store.machine_lock(&m.name).or_fail("stop")?;
        power_off(&store, m).map_err(|e| Failure::failed("stop", format!("{}: {e:#}", m.name)))?;
    }
    Ok(())
}

pub fn delete(cfg: &Config, a: DeleteArgs) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    for m in select(&store, "delete", &a.names, a.all)? {
        let _lock = store.machine_lock(&m.name).or_fail("delete")?;
        if m.state != MachineState::Deleted {
            power_off(&store, &m)
                .map_err(|e| Failure::failed("delete", format!("{}: {e:#}", m.name)))?;
            match m.mode {
                Mode::Fast => fast::remove_links(&m),
                Mode::Vm => vm::remove_links(&m),
            }
        }
        let _g = store.global_lock().or_fail("delete")?;
        if a.purge {
            store.remove(&m.name).or_fail("delete")?;
        } else if let Some(mut r) = store.load(&m.name).or_fail("delete")? {
            r.state = MachineState::Deleted;
            store.save(&r).or_fail("delete")?;
        }
    }
    Ok(())
}

pub fn purge(cfg: &Config) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    let _g = store.global_lock().or_fail("purge")?;
    for m in store.all().or_fail("purge")? {
        if m.state == MachineState::Deleted {
            store.remove(&m.name).or_fail("purge")?;
        }
    }
    Ok(())
}

pub fn recover(cfg: &Config, t: Targets) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    for m in select(&store, "recover", &t.names, t.all)? {
        if m.state == MachineState::Deleted {
            store
                .update(&m.name, |r| r.state = MachineState::Stopped)
                .or_fail("recover")?;
        }
    }
    Ok(())
}

/// Live facts for the output: addresses, disk and memory use, load.
fn views(store: &Store, machines: &[Machine]) -> Vec<(Vec<std::net::Ipv4Addr>, u64, u64)> {
    machines
        .iter()
        .map(|m| {
            if m.state != MachineState::Running {
                return (Vec::new(), 0, 0);
            }
            match m.mode {
                Mode::Fast => (
                    fast::addresses(m),
                    tree_size(&store.root_dir(&m.name)),
                    netns_rss(&m.netns),
                ),
                Mode::Vm => (vm::addresses(store, m), vm::disk_used(store, m), 0),
            }
        })
        .collect()
}

fn render(store: &Store, machines: &[Machine], f: impl Fn(&[View<'_>]) -> String) -> String {
    let facts = views(store, machines);
    let load = load_average();
    let list: Vec<View<'_>> = machines
        .iter()
        .zip(facts)
        .map(|(m, (ipv4, disk_used, memory_used))| View {
            machine: m,
            ipv4,
            disk_used,
            memory_used,
            load,
        })
        .collect();
    f(&list)
}

pub fn info(cfg: &Config, a: InfoArgs) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    let machines = select(&store, "info", &a.names, a.all)?;
    let text = match a.format.as_str() {
        "json" => render(&store, &machines, info::info_json),
        "table" => render(&store, &machines, |v| {
            v.iter()
                .map(|v| {
                    let ips: Vec<String> = v.ipv4.iter().map(|a| a.to_string()).collect();
                    format!(
                        "Name:           {}\nState:          {}\nIPv4:           {}\nRelease:        {}\nCPU(s):         {}\nMemory usage:   {} out of {}\n",
                        v.machine.name, v.machine.state.as_str(), ips.join(", "), info::INFO_RELEASE,
                        v.machine.cpus, v.memory_used, v.machine.memory
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }),
        other => {
            return Err(Failure::command_line(format!(
                "error: Invalid format type given: {other}"
            )));
        }
    };
    print!("{text}");
    Ok(())
}

pub fn list(cfg: &Config, format: &str) -> Result<(), Failure> {
    let store = Store::new(&cfg.state);
    let machines = store.all().or_fail("list")?;
    let text = match format {
        "json" => render(&store, &machines, info::list_json),
        "table" => render(&store, &machines, info::list_table),
        "csv" => render(&store, &machines, info::list_csv),
        other => {
            return Err(Failure::command_line(format!(
                "error: Invalid format type given: {other}"
            )));
        }
    };
    print!("{text}");
    Ok(())
}

/// `multipass version`: the client's line always, the daemon's when there
/// is a state directory to answer from.
pub fn version(format: &str) -> Result<(), Failure> {
    let v = Config::version();
    let daemon = std::env::var_os(crate::config::STATE_ENV).is_some();
    match format {
        "json" => {
            let mut doc = serde_json::json!({ "multipass": v });
            if daemon {
                doc["multipassd"] = serde_json::json!(v);
            }
            print!("{}", info::pretty(&doc));
        }
        _ if daemon => println!("multipass   {v}\nmultipassd  {v}"),
        _ => println!("multipass   {v}"),
    }
    Ok(())
}

pub fn get(key: &str) -> Result<(), Failure> {
    let value = match key {
        "local.driver" => "qemu",
        "local.bridged-network" => "",
        "local.privileged-mounts" => "true",
        "client.primary-name" => "primary",
        _ => {
            return Err(Failure::failed(
                "get",
                format!("Unrecognized settings key: '{key}'"),
            ));
        }
    };
    println!("{value}");
    Ok(())
}

pub fn networks(format: &str) -> Result<(), Failure> {
    match format {
        "json" => print!("{}", info::pretty(&serde_json::json!({ "list": [] }))),
        _ => println!("No networks found."),
    }
    Ok(())
}

/// Bytes of regular files under `dir` (the machine's "disk used").
fn tree_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Resident memory of the processes in the namespace (the machine's
/// "memory used").
fn netns_rss(ns: &str) -> u64 {
    ip::netns_pids(ns)
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/statm")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 4096
}

fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|w| w.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}
