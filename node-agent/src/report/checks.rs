//! The named health checks of a report.
//!
//! Each check answers one question about the node and says NOT_APPLICABLE
//! with a reason while the thing it looks at cannot exist yet (no kubelet
//! before prerequisites, no API server before `kubeadm init`, no CNI before
//! Cilium), so a node being built is not reported as broken. Every path is
//! taken under the configured root.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::v1::{Check, CheckStatus};

use super::certexpiry::{ExpiryScanner, Nearest};
use super::probe::{self, TlsProbe};
use crate::config::rooted;
use crate::exec::{Runner, argv};

/// Certificates expiring sooner than this give a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// Where the local health endpoints listen; fixed by kubeadm's defaults,
/// overridable so tests can point them at stand-ins.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// kubelet `/healthz` (plain HTTP).
    pub kubelet: SocketAddr,
    /// kube-apiserver `/readyz`.
    pub apiserver: SocketAddr,
    /// etcd `/health`.
    pub etcd: SocketAddr,
}

impl Default for Endpoints {
    fn default() -> Self {
        let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Endpoints {
            kubelet: local(10248),
            apiserver: local(6443),
            etcd: local(2379),
        }
    }
}

/// Runs all checks for one node.
pub struct Checks {
    root: PathBuf,
    control_plane: bool,
    runner: Arc<dyn Runner>,
    endpoints: Endpoints,
    expiry: ExpiryScanner,
}

/// The checks plus the nearest certificate expiry (a report field).
#[derive(Debug, Default)]
pub struct CheckResults {
    /// Named checks in a stable order.
    pub checks: Vec<Check>,
    /// Nearest expiry under the kubernetes PKI.
    pub nearest_cert: Option<Nearest>,
}

fn check(name: &str, status: CheckStatus, message: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        status: status as i32,
        message: message.into(),
    }
}

impl Checks {
    /// Checks for a node whose filesystem is under `root`.
    pub fn new(
        root: &Path,
        control_plane: bool,
        runner: Arc<dyn Runner>,
        endpoints: Endpoints,
    ) -> Self {
        Checks {
            root: root.to_path_buf(),
            control_plane,
            runner,
            endpoints,
            expiry: ExpiryScanner::default(),
        }
    }

    fn path(&self, abs: &str) -> PathBuf {
        rooted(&self.root, abs)
    }

    /// Runs every check once (blocking; call from the blocking pool).
    pub fn run(&mut self) -> CheckResults {
        let mut checks = vec![
            self.service("containerd"),
            self.service("kubelet"),
            self.kubelet_healthz(),
        ];
        if self.control_plane {
            checks.push(self.apiserver_readyz());
            checks.push(self.etcd_health());
        }
        checks.push(self.cni());
        let nearest_cert = self.expiry.nearest(&self.path("/etc/kubernetes/pki"));
        checks.push(certificates(nearest_cert.as_ref(), SystemTime::now()));
        checks.push(cloud_init(&self.path("/run/cloud-init/result.json")));
        CheckResults {
            checks,
            nearest_cert,
        }
    }

    /// State of a systemd unit, from one `systemctl show` call.
    fn service(&self, unit: &str) -> Check {
        if !self.path("/run/systemd/system").is_dir() {
            return check(unit, CheckStatus::NotApplicable, "no systemd");
        }
        let unit_file = format!("{unit}.service");
        let args = argv(&[
            "systemctl",
            "show",
            "--property=LoadState,ActiveState,SubState",
            &unit_file,
        ]);
        let out = match self.runner.query_blocking(&args) {
            Ok(Some(out)) => out,
            Ok(None) => {
                return check(
                    unit,
                    CheckStatus::NotApplicable,
                    "commands are recorded, not run",
                );
            }
            Err(e) => return check(unit, CheckStatus::Fail, e.to_string()),
        };
        let prop = |k: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        let (load, active, sub) = (prop("LoadState"), prop("ActiveState"), prop("SubState"));
        let text = format!("{active} ({sub})");
        match (load.as_str(), active.as_str()) {
            ("not-found", _) => check(
                unit,
                CheckStatus::NotApplicable,
                format!("{unit} not installed yet"),
            ),
            (_, "active") => check(unit, CheckStatus::Pass, text),
            (_, "activating" | "reloading" | "deactivating") => {
                check(unit, CheckStatus::Warn, text)
            }
            ("", _) => check(unit, CheckStatus::Fail, "systemctl gave no unit state"),
            _ => check(unit, CheckStatus::Fail, text),
        }
    }

    /// kubelet's `/healthz` (also how `Kubeadm.Join` tells a joined,
    /// healthy node from one a failed join left behind).
    pub fn kubelet_healthz(&self) -> Check {
        const NAME: &str = proto::contract::checks::KUBELET_HEALTHZ;
        if !self.path("/usr/bin/kubelet").exists() {
            return check(
                NAME,
                CheckStatus::NotApplicable,
                "kubelet not installed yet",
            );
        }
        if !self.path("/etc/kubernetes/kubelet.conf").exists() {
            return check(
                NAME,
                CheckStatus::NotApplicable,
                "kubelet not configured yet (node not initialised or joined)",
            );
        }
        http_check(NAME, self.endpoints.kubelet, "/healthz", None, |_| true)
    }

    /// The API server's `/readyz` (also how `Kubeadm.Init` tells an
    /// initialised, healthy control plane from a half-initialised one).
    pub fn apiserver_readyz(&self) -> Check {
        const NAME: &str = proto::contract::checks::APISERVER_READYZ;
        if !self.path("/etc/kubernetes/admin.conf").exists() {
            return check(NAME, CheckStatus::NotApplicable, "not initialised yet");
        }
        let tls = TlsProbe {
            ca: self.path("/etc/kubernetes/pki/ca.crt"),
            client: None,
            // kubeadm's serving certificate always carries this DNS name,
            // but not necessarily 127.0.0.1.
            server_name: "kubernetes".into(),
        };
        http_check(
            NAME,
            self.endpoints.apiserver,
            "/readyz",
            Some(&tls),
            |_| true,
        )
    }

    fn etcd_health(&self) -> Check {
        const NAME: &str = proto::contract::checks::ETCD_HEALTH;
        if !self.path("/etc/kubernetes/admin.conf").exists() {
            return check(NAME, CheckStatus::NotApplicable, "not initialised yet");
        }
        let pki = self.path("/etc/kubernetes/pki/etcd");
        let tls = TlsProbe {
            ca: pki.join("ca.crt"),
            client: Some((
                pki.join("healthcheck-client.crt"),
                pki.join("healthcheck-client.key"),
            )),
            server_name: "127.0.0.1".into(),
        };
        http_check(NAME, self.endpoints.etcd, "/health", Some(&tls), |body| {
            serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("health")
                        .and_then(|h| h.as_str().map(|h| h == "true"))
                })
                .unwrap_or(false)
        })
    }

    fn cni(&self) -> Check {
        const NAME: &str = proto::contract::checks::CNI;
        let dir = self.path("/etc/cni/net.d");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() {
            return check(NAME, CheckStatus::NotApplicable, "no CNI yet");
        }
        names.sort();
        check(NAME, CheckStatus::Pass, names.join(", "))
    }
}

/// GET `path`: PASS on 2xx with a body `healthy` accepts, FAIL otherwise.
fn http_check(
    name: &str,
    addr: SocketAddr,
    path: &str,
    tls: Option<&TlsProbe>,
    healthy: impl Fn(&str) -> bool,
) -> Check {
    match probe::get(addr, path, tls) {
        Ok(r) if (200..300).contains(&r.status) && healthy(&r.body) => {
            check(name, CheckStatus::Pass, short(&r.body))
        }
        Ok(r) => check(
            name,
            CheckStatus::Fail,
            format!("HTTP {}: {}", r.status, short(&r.body)),
        ),
        Err(e) => check(name, CheckStatus::Fail, format!("{addr}{path}: {e}")),
    }
}

fn short(body: &str) -> String {
    const MAX: usize = 200;
    match body.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

/// WARN within 30 days of the nearest expiry, FAIL once it has passed.
pub fn certificates(nearest: Option<&Nearest>, now: SystemTime) -> Check {
    const NAME: &str = proto::contract::checks::CERTIFICATES;
    let Some(n) = nearest else {
        return check(NAME, CheckStatus::NotApplicable, "no certificates yet");
    };
    let path = n.path.display();
    match n.not_after.duration_since(now) {
        Err(_) => check(NAME, CheckStatus::Fail, format!("{path} has expired")),
        Ok(left) => {
            let days = left.as_secs() / 86_400;
            let status = if left < EXPIRY_WARNING {
                CheckStatus::Warn
            } else {
                CheckStatus::Pass
            };
            check(NAME, status, format!("{path} expires in {days} days"))
        }
    }
}

/// The outcome of cloud-init, from the `result.json` it writes when done.
pub fn cloud_init(result_json: &Path) -> Check {
    const NAME: &str = proto::contract::checks::CLOUD_INIT;
    let text = match std::fs::read_to_string(result_json) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return check(
                NAME,
                CheckStatus::NotApplicable,
                "cloud-init has not finished (no result.json)",
            );
        }
        Err(e) => {
            return check(
                NAME,
                CheckStatus::Fail,
                format!("{}: {e}", result_json.display()),
            );
        }
    };
    let errors = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("v1")?.get("errors")?.as_array().cloned());
    match errors {
        None => check(
            NAME,
            CheckStatus::Fail,
            format!("{} is not a cloud-init result", result_json.display()),
        ),
        Some(errs) if errs.is_empty() => check(NAME, CheckStatus::Pass, "done without errors"),
        Some(errs) => {
            let list: Vec<String> = errs
                .iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.to_string())
                })
                .collect();
            check(NAME, CheckStatus::Fail, list.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::RecordingRunner;

    fn status_of(checks: &[Check], name: &str) -> Option<CheckStatus> {
        checks
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| CheckStatus::try_from(c.status).ok())
    }

    fn with_systemd(answer: &'static str) -> Result<(tempfile::TempDir, Checks), std::io::Error> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("run/systemd/system"))?;
        let canned = RecordingRunner::new(root.path().join("commands.jsonl"))
            .answer(&["systemctl", "show"], answer);
        let checks = Checks::new(root.path(), false, Arc::new(canned), Endpoints::default());
        Ok((root, checks))
    }

    #[test]
    fn systemctl_states_map_to_statuses() -> Result<(), std::io::Error> {
        for (answer, want) in [
            (
                "LoadState=loaded\nActiveState=active\nSubState=running\n",
                CheckStatus::Pass,
            ),
            (
                "LoadState=loaded\nActiveState=failed\nSubState=failed\n",
                CheckStatus::Fail,
            ),
            (
                "LoadState=loaded\nActiveState=activating\nSubState=start\n",
                CheckStatus::Warn,
            ),
            (
                "LoadState=not-found\nActiveState=inactive\nSubState=dead\n",
                CheckStatus::NotApplicable,
            ),
        ] {
            let (_root, mut checks) = with_systemd(answer)?;
            assert_eq!(
                status_of(&checks.run().checks, "containerd"),
                Some(want),
                "{answer}"
            );
        }
        Ok(())
    }

    #[test]
    fn expiry_thresholds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |secs: i64| Nearest {
            path: PathBuf::from("/pki/x.crt"),
            not_after: if secs >= 0 {
                now + Duration::from_secs(secs as u64)
            } else {
                now - Duration::from_secs(secs.unsigned_abs())
            },
        };
        let status = |n: &Nearest| CheckStatus::try_from(certificates(Some(n), now).status).ok();
        assert_eq!(status(&at(90 * 86_400)), Some(CheckStatus::Pass));
        assert_eq!(status(&at(10 * 86_400)), Some(CheckStatus::Warn));
        assert_eq!(status(&at(-1)), Some(CheckStatus::Fail));
    }
}
