//! cloud-init's first boot, as a fast-mode machine gets it: the stages in
//! cloud-init's order, each module's effect applied to the machine's root,
//! and every step in `<machine>/cloud-init-output.log`.
//!
//! Order on a real image: init-local writes the fallback network config
//! (`50-cloud-init.yaml`) and networkd brings the NIC up with it; init runs
//! `set_hostname` and `write_files`; final runs `write-files-deferred` and
//! then `scripts-user`, which is where `runcmd` executes. So files written
//! by user-data's `write_files` take effect on the network only through a
//! `netplan apply` in `runcmd` (or at the next boot), here as there.
//!
//! `runcmd` items are emulated, not executed: `netplan apply`, `systemctl
//! daemon-reload` and `systemctl enable|start|restart` have an effect; any
//! other command is logged as "not emulated" and makes the result an error,
//! so a test cannot pass on user-data that a real machine would run
//! differently. The result goes to `<root>/run/cloud-init/result.json`, the
//! file the node agent's cloud-init check reads.

use crate::cloud_config::{self, RunCommand, UserData};
use crate::fsutil;
use crate::write_files;
use serde_json::json;
use std::path::{Path, PathBuf};

/// What `runcmd` can do to the machine; the fast-mode machine implements
/// it (and unit tests use a recording fake).
pub trait System {
    /// `netplan apply`: apply `<root>/etc/netplan` to the NIC now.
    fn netplan_apply(&mut self) -> anyhow::Result<()>;
    /// Starts (or, with `restart`, restarts) a unit now.
    fn start_unit(&mut self, unit: &str, restart: bool) -> anyhow::Result<()>;
    /// Marks a unit to be started at every boot.
    fn enable_unit(&mut self, unit: &str);
}

/// The fallback network config cloud-init writes for the default NIC on a
/// Multipass image (`/etc/netplan/50-cloud-init.yaml`, 0600).
pub fn fallback_netplan(mac: &str) -> String {
    format!(
        "# This file is generated from information provided by the datasource.  Changes\n\
         # to it will not persist across an instance reboot.  To disable cloud-init's\n\
         # network configuration capabilities, write a file\n\
         # /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg with the following:\n\
         # network: {{config: disabled}}\n\
         network:\n    ethernets:\n        enp0s1:\n            dhcp4: true\n\
         \x20           match:\n                macaddress: \"{mac}\"\n\
         \x20           set-name: enp0s1\n    version: 2\n"
    )
}

/// Writes the fallback config under `root` (init-local, every boot).
pub fn write_fallback_netplan(root: &Path, mac: &str) -> anyhow::Result<()> {
    let path = root.join("etc/netplan/50-cloud-init.yaml");
    fsutil::write_atomic(&path, fallback_netplan(mac).as_bytes(), 0o600)
}

/// One cloud-init run's log and errors.
pub struct Run {
    log: PathBuf,
    pub errors: Vec<String>,
}

impl Run {
    pub fn new(machine_dir: &Path) -> Run {
        Run {
            log: machine_dir.join("cloud-init-output.log"),
            errors: Vec::new(),
        }
    }

    pub fn log(&self, line: &str) {
        fsutil::append_line(&self.log, line);
    }

    pub fn error(&mut self, line: String) {
        self.log(&format!("ERROR {line}"));
        self.errors.push(line);
    }

    /// Writes `result.json` and `status.json` as cloud-init does at the end
    /// of the final stage.
    pub fn finish(&self, root: &Path) {
        let dir = root.join("run/cloud-init");
        let result = json!({"v1": {"datasource": "DataSourceNoCloud [seed=/dev/sr0]", "errors": self.errors}});
        let status = json!({"v1": {"datasource": "nocloud", "stage": null,
            "init": {"errors": [], "finished": fsutil::now_unix()},
            "modules-final": {"errors": self.errors, "finished": fsutil::now_unix()}}});
        for (name, doc) in [("result.json", result), ("status.json", status)] {
            if let Err(e) = fsutil::write_atomic(&dir.join(name), doc.to_string().as_bytes(), 0o644)
            {
                self.log(&format!("cannot write {name}: {e:#}"));
            }
        }
        let outcome = if self.errors.is_empty() {
            "done"
        } else {
            "error"
        };
        self.log(&format!(
            "cloud-init finished: {outcome} ({} errors)",
            self.errors.len()
        ));
    }
}

/// The user-data stages after init-local: hostname, write_files (then the
/// deferred ones), runcmd. Problems are recorded in `run`, never returned:
/// cloud-init carries on after a failed module.
pub fn first_boot(run: &mut Run, root: &Path, user_data: &str, system: &mut dyn System) {
    if user_data.trim().is_empty() {
        // `launch` without `--cloud-init`: nothing to do, and no error.
        return run.log("no user-data");
    }
    let data: UserData = match cloud_config::parse(user_data) {
        Ok(d) => d,
        Err(e) => return run.error(format!("user-data: {e}")),
    };
    // cloud-init caches the user-data root-only, as here.
    let cache = root.join("var/lib/cloud/instance/user-data.txt");
    if let Err(e) = fsutil::write_atomic(&cache, user_data.as_bytes(), 0o600) {
        run.log(&format!("cannot cache user-data: {e:#}"));
    }
    if !data.ignored.is_empty() {
        run.log(&format!(
            "keys not emulated (ignored): {}",
            data.ignored.join(", ")
        ));
    }
    if let Some(h) = &data.hostname {
        match fsutil::write_atomic(
            &root.join("etc/hostname"),
            format!("{h}\n").as_bytes(),
            0o644,
        ) {
            Ok(()) => run.log(&format!("set_hostname: {h}")),
            Err(e) => run.error(format!("set_hostname: {e:#}")),
        }
    }
    for deferred in [false, true] {
        for file in data.write_files.iter().filter(|f| f.defer == deferred) {
            match write_files::write(root, file) {
                Ok(warnings) => {
                    run.log(&format!("write_files: {}", file.path));
                    for w in warnings {
                        run.log(&format!("WARNING {w}"));
                    }
                }
                Err(e) => run.error(format!("write_files: {e:#}")),
            }
        }
    }
    for cmd in &data.runcmd {
        match cmd {
            RunCommand::Argv(argv) => run_one(run, argv, system),
            RunCommand::Shell(s) => run.error(format!("runcmd: shell command {s:?} not emulated")),
        }
    }
}

fn run_one(run: &mut Run, argv: &[String], system: &mut dyn System) {
    let shown = format!("{argv:?}");
    let base = |s: &String| s.rsplit('/').next().unwrap_or(s).to_owned();
    let words: Vec<String> = argv
        .iter()
        .enumerate()
        .map(|(i, w)| if i == 0 { base(w) } else { w.clone() })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["netplan", "apply"] => system.netplan_apply(),
        ["systemctl", "daemon-reload"] => Ok(()),
        [
            "systemctl",
            verb @ ("enable" | "start" | "restart"),
            rest @ ..,
        ] => {
            let now = rest.contains(&"--now");
            let units: Vec<&str> = rest
                .iter()
                .copied()
                .filter(|w| !w.starts_with('-'))
                .collect();
            let flags: Vec<&str> = rest
                .iter()
                .copied()
                .filter(|w| w.starts_with('-') && *w != "--now")
                .collect();
            if units.is_empty() || !flags.is_empty() || (now && *verb != "enable") {
                Err(anyhow::anyhow!(
                    "these systemctl arguments are not emulated"
                ))
            } else {
                units.iter().try_for_each(|u| {
                    if *verb == "enable" {
                        system.enable_unit(u);
                    }
                    if *verb != "enable" || now {
                        system.start_unit(u, *verb == "restart")
                    } else {
                        Ok(())
                    }
                })
            }
        }
        _ => return run.error(format!("runcmd: {shown} not emulated")),
    };
    match result {
        Ok(()) => run.log(&format!("runcmd: {shown}")),
        Err(e) => run.error(format!("runcmd: {shown}: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        events: Vec<String>,
    }

    impl System for Fake {
        fn netplan_apply(&mut self) -> anyhow::Result<()> {
            self.events.push("netplan".into());
            Ok(())
        }
        fn start_unit(&mut self, unit: &str, restart: bool) -> anyhow::Result<()> {
            self.events.push(format!("start {unit} {restart}"));
            Ok(())
        }
        fn enable_unit(&mut self, unit: &str) {
            self.events.push(format!("enable {unit}"));
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mpemu-ci-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn runs_the_stages_in_cloud_inits_order_and_flags_what_it_cannot_do() {
        let dir = tmp("order");
        let root = dir.join("root");
        let ud = "#cloud-config\nhostname: n1\nwrite_files:\n- {path: /etc/late, content: b, defer: true}\n- {path: /etc/early, content: a, permissions: '0600'}\nruncmd:\n- [netplan, apply]\n- [/usr/bin/systemctl, daemon-reload]\n- [systemctl, enable, --now, agent.service]\n- [systemctl, enable, other]\n- [apt-get, install, x]\n";
        let mut run = Run::new(&dir);
        let mut fake = Fake::default();
        first_boot(&mut run, &root, ud, &mut fake);
        run.finish(&root);
        assert_eq!(
            fake.events,
            [
                "netplan",
                "enable agent.service",
                "start agent.service false",
                "enable other"
            ]
        );
        assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
        assert!(run.errors[0].contains("apt-get"));
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "n1\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("etc/early")).unwrap(),
            "a"
        );
        let result = std::fs::read_to_string(root.join("run/cloud-init/result.json")).unwrap();
        assert!(result.contains("apt-get"), "{result}");
        let log = std::fs::read_to_string(dir.join("cloud-init-output.log")).unwrap();
        let early = log.find("/etc/early").unwrap();
        assert!(
            early < log.find("/etc/late").unwrap(),
            "deferred files come last:\n{log}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_fallback_config_matches_the_nic_by_mac_with_dhcp() {
        let text = fallback_netplan("52:54:00:ab:cd:ef");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let e = &doc["network"]["ethernets"]["enp0s1"];
        assert_eq!(e["match"]["macaddress"], "52:54:00:ab:cd:ef");
        assert_eq!(e["dhcp4"], true);
        assert_eq!(e["set-name"], "enp0s1");
    }

    #[test]
    fn user_data_that_is_not_cloud_config_is_an_error_and_nothing_else() {
        let dir = tmp("notcc");
        let mut run = Run::new(&dir);
        let mut fake = Fake::default();
        first_boot(&mut run, &dir.join("root"), "#!/bin/sh\n", &mut fake);
        assert_eq!(run.errors.len(), 1);
        assert!(fake.events.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
