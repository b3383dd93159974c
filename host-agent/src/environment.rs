//! Every environment variable hostctl reads, in one place: each is a
//! [`Var`] with its meaning, [`HOSTCTL`] lists the `HOSTCTL_*` ones (the
//! README's table is checked against it), and reading the environment
//! anywhere else is refused by clippy (`clippy.toml`, `disallowed-methods`).
//! One list keeps the set of knobs reviewable: a variable nobody documented
//! cannot quietly change what `up` does.

use std::ffi::OsString;

/// One environment variable: its name and what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// The variable's name, e.g. `HOSTCTL_HOME`.
    pub name: &'static str,
    /// What setting it does, as the README says it.
    pub meaning: &'static str,
}

impl Var {
    /// Its value, if set (not necessarily UTF-8: paths).
    pub fn os(&self) -> Option<OsString> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the one module that reads the environment"
        )]
        std::env::var_os(self.name)
    }

    /// Its value if set and UTF-8; a value that is not UTF-8 counts as
    /// unset, as for any other unusable value.
    pub fn string(&self) -> Option<String> {
        self.os().and_then(|v| v.into_string().ok())
    }
}

/// `--home`: where hostctl keeps its state (default `~/.hostctl`).
pub const HOME: Var = Var {
    name: "HOSTCTL_HOME",
    meaning: "the state directory (`--home`; default `~/.hostctl`)",
};
/// `--topology`: the topology file.
pub const TOPOLOGY: Var = Var {
    name: "HOSTCTL_TOPOLOGY",
    meaning: "the topology file (`--topology`)",
};
/// The log filter of commands and the daemon.
pub const LOG: Var = Var {
    name: "HOSTCTL_LOG",
    meaning: "the log level (`warn`, `info`, `debug`) or a full filter such as `host_agent::provider=debug`",
};
/// Set by the CLI for a daemon it starts: the daemon's log file.
pub const DAEMON_LOG: Var = Var {
    name: "HOSTCTL_DAEMON_LOG",
    meaning: "set by hostctl for a daemon it starts: the log file the daemon writes (and rotates) instead of stderr",
};
/// The binary started as the daemon (default: the running executable).
pub const DAEMON_EXE: Var = Var {
    name: "HOSTCTL_DAEMON_EXE",
    meaning: "the `hostctl` binary started as the daemon (default: the running one; for callers that are not hostctl, e.g. tests)",
};
/// The node-agent binary the local provider runs and user-data embeds.
pub const NODE_AGENT: Var = Var {
    name: "HOSTCTL_NODE_AGENT",
    meaning: "the node-agent binary to run (local provider) or embed in user-data (default: beside hostctl)",
};
/// A directory of manifests instead of the pinned upstream downloads.
pub const MANIFESTS_DIR: Var = Var {
    name: "HOSTCTL_MANIFESTS_DIR",
    meaning: "a directory whose `gateway-api/*.yaml` and `metallb/*.yaml` are applied instead of the pinned upstream downloads (air-gapped hosts, tests)",
};
/// Another kubeadm binary for the nodes.
pub const KUBEADM: Var = Var {
    name: "HOSTCTL_KUBEADM",
    meaning: "the kubeadm binary the nodes run (default: the packaged one)",
};
/// Another helm binary.
pub const HELM: Var = Var {
    name: "HOSTCTL_HELM",
    meaning: "the helm binary (default: `helm` on `PATH`)",
};
/// The CA of the registry mirror, for helm.
pub const CHARTS_CA: Var = Var {
    name: "HOSTCTL_CHARTS_CA",
    meaning: "the CA bundle (PEM) helm verifies the registry mirror's certificate with when `charts pull` pushes charts there and installs read them (default: the system's trust store)",
};
/// Where hostctl reaches Vault instead of its reserved MetalLB address.
pub const VAULT_ADDRESS: Var = Var {
    name: "HOSTCTL_VAULT_ADDRESS",
    meaning: "where hostctl reaches mgmt's Vault, e.g. `https://127.0.0.1:8200` through a port-forward (default: `https://<its reserved MetalLB address>:8200`); its certificate must still chain to the lab root",
};
/// How long each wait of a failure drill may take.
pub const DRILL_DEADLINE_SECS: Var = Var {
    name: "HOSTCTL_DRILL_DEADLINE_SECS",
    meaning: "seconds each wait of `verify --drill` may take (agents to stop and return, reports to arrive, Vault to resync; default 180, at least 10)",
};
/// The object store's server binary.
pub const GARAGE: Var = Var {
    name: "HOSTCTL_GARAGE",
    meaning: "the `garage` binary `storage up` runs as the host's object store where Docker is absent (default: `garage` on `PATH`)",
};
/// The DHCP leases file `doctor` reads on macOS.
pub const DHCP_LEASES: Var = Var {
    name: "HOSTCTL_DHCP_LEASES",
    meaning: "the DHCP leases file `doctor` checks (default: bootpd's `/var/db/dhcpd_leases`)",
};
/// The QEMU provider's base image.
pub const QEMU_IMAGE: Var = Var {
    name: "HOSTCTL_QEMU_IMAGE",
    meaning: "the QEMU provider's base image (a disk image, or a directory with `rootfs.img`, `vmlinuz`, `initrd.img`)",
};
/// The QEMU provider's network mode.
pub const QEMU_NET: Var = Var {
    name: "HOSTCTL_QEMU_NET",
    meaning: "the QEMU provider's network: `bridge` (default as root) or `user`",
};
/// The QEMU accelerator, skipping the probe.
pub const QEMU_ACCEL: Var = Var {
    name: "HOSTCTL_QEMU_ACCEL",
    meaning: "`kvm` or `tcg`: the QEMU accelerator, without probing whether KVM works",
};

/// Every `HOSTCTL_*` variable hostctl reads.
pub const HOSTCTL: &[Var] = &[
    HOME,
    TOPOLOGY,
    LOG,
    DAEMON_LOG,
    DAEMON_EXE,
    NODE_AGENT,
    MANIFESTS_DIR,
    KUBEADM,
    HELM,
    CHARTS_CA,
    VAULT_ADDRESS,
    DRILL_DEADLINE_SECS,
    GARAGE,
    DHCP_LEASES,
    QEMU_IMAGE,
    QEMU_NET,
    QEMU_ACCEL,
];

/// Set only by a unit test of the daemon's log file for the child process
/// it starts (not a setting: no user sets it).
#[cfg(test)]
pub(crate) const TEST_LOGFILE_STDIO_CHILD: Var = Var {
    name: "HOSTCTL_TEST_LOGFILE_STDIO_CHILD",
    meaning: "test only: the log file of the log-rotation test's child process",
};

/// The standard variables hostctl also reads.
pub mod standard {
    use super::Var;

    /// The user's home, for `~/.hostctl` and `~/.kube/config`.
    pub const HOME: Var = Var {
        name: "HOME",
        meaning: "the user's home directory",
    };
    /// Where programs are looked up (qemu, ip, helm).
    pub const PATH: Var = Var {
        name: "PATH",
        meaning: "where programs are looked up",
    };
    /// The kubeconfig files `up` and `kubeconfig` merge into.
    pub const KUBECONFIG: Var = Var {
        name: "KUBECONFIG",
        meaning: "the kubeconfig to merge clusters into (its first path)",
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn crate_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_readme_documents_every_variable() {
        let readme = std::fs::read_to_string(crate_dir().join("../README.md")).expect("README");
        for var in HOSTCTL {
            assert!(
                readme.contains(&format!("`{}`", var.name)),
                "README.md does not document {}",
                var.name
            );
        }
    }

    /// A `"HOSTCTL_…"` literal elsewhere in the crate is a variable read
    /// (or named) without being listed here.
    #[test]
    fn no_other_module_names_a_variable() {
        let mut stray = Vec::new();
        let mut dirs = vec![crate_dir().join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("environment.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("source");
                    for (n, line) in text.lines().enumerate() {
                        if line.contains("\"HOSTCTL_") {
                            stray.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(
            stray.is_empty(),
            "name these in environment.rs:\n{}",
            stray.join("\n")
        );
    }
}
