//! The node agent's systemd service unit, as a typed model rendered to INI.
//!
//! systemd is what keeps the agent alive after cloud-init has finished and
//! across reboots, so the unit is the one piece of supervision hostctl relies
//! on inside the VM. It is rendered from a model rather than a template so
//! that a value can never inject a second directive or an unquoted argument.

use crate::node::paths;
use crate::{Argv, Error};

/// systemd's `Restart=` policies that make sense for an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Restart whatever the exit status: the agent is meant to run forever,
    /// and a clean exit (e.g. after a bad config reload) is still an outage.
    Always,
    /// Restart only after a crash or non-zero exit.
    OnFailure,
}

impl Restart {
    fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnFailure => "on-failure",
        }
    }
}

/// The node agent's exit status when it has no usable certificate and its
/// token is missing, spent or refused (node-agent/src/main.rs,
/// `NEEDS_NEW_TOKEN`).
pub const NODE_AGENT_NEEDS_NEW_TOKEN: u8 = 3;

/// A `Type=simple` service unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUnit {
    /// Shown by `systemctl status` and in the journal.
    pub description: String,
    /// Ordering: the agent dials the host, so it starts once the network is
    /// configured (`network-online.target`).
    pub after: Vec<String>,
    /// Pulls `network-online.target` in; `After=` alone does not.
    pub wants: Vec<String>,
    /// `Some(0)` disables start-rate limiting. With the default (5 starts in
    /// 10 s) and `RestartSec=2`, an agent that fails fast while the host is
    /// still starting would be given up on for good.
    pub start_limit_interval_sec: Option<u32>,
    /// The agent command line; an absolute program path.
    pub exec_start: Argv,
    /// Keeps the agent running without anyone inside the VM to restart it.
    pub restart: Restart,
    /// Seconds between restarts: short, so a node reconnects quickly once
    /// the host is back.
    pub restart_sec: u32,
    /// Exit statuses after which systemd does not restart the agent
    /// (`RestartPreventExitStatus=`): the agent exits with
    /// [`NODE_AGENT_NEEDS_NEW_TOKEN`] when only a new enrolment token can
    /// help, and restarting it every 2 s would retry a spent token forever.
    pub restart_prevent_exit_status: Vec<u8>,
    /// Enables the unit at boot.
    pub wanted_by: Vec<String>,
}

impl ServiceUnit {
    /// The unit hostctl installs on every node.
    pub fn node_agent() -> Result<Self, Error> {
        Ok(Self {
            description: "hostctl node agent".to_owned(),
            after: vec!["network-online.target".to_owned()],
            wants: vec!["network-online.target".to_owned()],
            start_limit_interval_sec: Some(0),
            exec_start: Argv::new(paths::AGENT_BINARY, ["--config", paths::AGENT_CONFIG])?,
            restart: Restart::Always,
            restart_sec: 2,
            restart_prevent_exit_status: vec![NODE_AGENT_NEEDS_NEW_TOKEN],
            wanted_by: vec!["multi-user.target".to_owned()],
        })
    }

    /// Renders the unit file.
    ///
    /// `ExecStart` arguments are limited to characters systemd passes through
    /// unchanged (no whitespace, quotes, `\`, `$`, `%` or `;`), which avoids
    /// depending on systemd's quoting and specifier rules altogether.
    pub fn render(&self) -> Result<String, Error> {
        let exec_start = self.exec_start_line()?;
        let mut ini = Ini::default();
        ini.section("Unit");
        ini.entry("Description", &self.description)?;
        ini.list("After", &self.after)?;
        ini.list("Wants", &self.wants)?;
        if let Some(secs) = self.start_limit_interval_sec {
            ini.entry("StartLimitIntervalSec", &secs.to_string())?;
        }
        ini.section("Service");
        ini.entry("Type", "simple")?;
        ini.entry("ExecStart", &exec_start)?;
        ini.entry("Restart", self.restart.as_str())?;
        ini.entry("RestartSec", &self.restart_sec.to_string())?;
        if !self.restart_prevent_exit_status.is_empty() {
            let codes: Vec<String> = self
                .restart_prevent_exit_status
                .iter()
                .map(u8::to_string)
                .collect();
            ini.entry("RestartPreventExitStatus", &codes.join(" "))?;
        }
        ini.section("Install");
        ini.list("WantedBy", &self.wanted_by)?;
        Ok(ini.finish())
    }

    fn exec_start_line(&self) -> Result<String, Error> {
        if !self.exec_start.program().starts_with('/') {
            return Err(Error::InvalidArgument {
                arg: self.exec_start.program().to_owned(),
                context: "ExecStart",
                reason: "the program must be an absolute path",
            });
        }
        for arg in self.exec_start.as_slice() {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-:=@+,".contains(c));
            if !plain {
                return Err(Error::InvalidArgument {
                    arg: arg.clone(),
                    context: "ExecStart",
                    reason: "only [A-Za-z0-9/._-:=@+,] are passed through systemd unquoted",
                });
            }
        }
        Ok(self.exec_start.as_slice().join(" "))
    }
}

/// A minimal INI writer that refuses values able to break out of their line.
#[derive(Default)]
struct Ini {
    out: String,
}

impl Ini {
    fn section(&mut self, name: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out.push('[');
        self.out.push_str(name);
        self.out.push_str("]\n");
    }

    fn entry(&mut self, key: &'static str, value: &str) -> Result<(), Error> {
        if value.chars().any(char::is_control) {
            return Err(Error::InvalidUnitValue {
                key,
                value: value.to_owned(),
            });
        }
        self.out.push_str(key);
        self.out.push('=');
        self.out.push_str(value);
        self.out.push('\n');
        Ok(())
    }

    /// Space-separated unit lists; omitted when empty.
    fn list(&mut self, key: &'static str, values: &[String]) -> Result<(), Error> {
        if values.is_empty() {
            return Ok(());
        }
        if let Some(bad) = values.iter().find(|v| v.is_empty() || v.contains(' ')) {
            return Err(Error::InvalidUnitValue {
                key,
                value: bad.clone(),
            });
        }
        self.entry(key, &values.join(" "))
    }

    fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_unit_restarts_and_waits_for_network() {
        let text = ServiceUnit::node_agent().unwrap().render().unwrap();
        for line in [
            "After=network-online.target",
            "Wants=network-online.target",
            "StartLimitIntervalSec=0",
            "ExecStart=/usr/local/bin/node-agent --config /etc/hostctl/node-agent.yaml",
            "Restart=always",
            "RestartSec=2",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.starts_with("[Unit]\n"));
    }

    #[test]
    fn refuses_injection() {
        let mut unit = ServiceUnit::node_agent().unwrap();
        unit.description = "x\nExecStartPre=/bin/evil".to_owned();
        assert!(matches!(unit.render(), Err(Error::InvalidUnitValue { .. })));

        let mut unit = ServiceUnit::node_agent().unwrap();
        unit.exec_start = Argv::new("/bin/agent", ["a b"]).unwrap();
        assert!(matches!(unit.render(), Err(Error::InvalidArgument { .. })));

        let mut unit = ServiceUnit::node_agent().unwrap();
        unit.exec_start = Argv::new("agent", ["--x"]).unwrap();
        assert!(matches!(unit.render(), Err(Error::InvalidArgument { .. })));

        let mut unit = ServiceUnit::node_agent().unwrap();
        unit.after = vec!["a b.target".to_owned()];
        assert!(matches!(unit.render(), Err(Error::InvalidUnitValue { .. })));
    }
}
