//! The platform observing its own provisioning: once a previous `up`
//! installed mgmt's Tempo, later runs export their traces there by default
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` and the topology's
//! `telemetry.otlpEndpoint` still win), so every `up` after the first is
//! one trace in Grafana.
//!
//! Only a Tempo that answers is used: a run must not wait on, or complain
//! about, a collector that is down (the lab may be half torn down), and a
//! topology without mgmt, or one whose Tempo step never finished, is not
//! probed at all.

use crate::addons::observability::{OTLP_GRPC_PORT, tempo::TEMPO};
use crate::cluster_config::cluster::{MgmtService, mgmt_service_address};
use crate::orchestrator::{STATE_FILE, UpState};
use crate::state_file::StateDocument as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
use topology::Resolved;

/// How long the probe of mgmt's Tempo may take: a connect on the lab's own
/// bridge answers in milliseconds or not at all.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// mgmt's Tempo as an OTLP/gRPC endpoint, when the last `up` recorded its
/// step done and it accepts a connection now.
pub fn mgmt_tempo(home: &Path, resolved: &Resolved) -> Option<String> {
    let mgmt = resolved.topology().mgmt_cluster()?;
    let state = UpState::load(&home.join(STATE_FILE)).ok()?;
    if !state.addon_done(&mgmt.name, TEMPO.name) {
        return None;
    }
    let ip = mgmt_service_address(resolved, MgmtService::Traces).ok()?;
    let address = SocketAddr::from((ip, OTLP_GRPC_PORT));
    TcpStream::connect_timeout(&address, PROBE_TIMEOUT).ok()?;
    Some(format!("http://{address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default topology on loopback, so mgmt's reserved traces address
    /// (pool start + 4) is one a test can listen on.
    fn on_loopback() -> Resolved {
        let mut topology = topology::default_topology();
        topology.network.cidr = "127.0.0.0/24".parse().expect("cidr");
        topology.resolve(None).expect("resolves")
    }

    fn write_state(home: &Path, status: &str) {
        let state = format!(r#"{{"steps": {{"addon/mgmt/tempo": {{"status": "{status}"}}}}}}"#);
        std::fs::write(home.join(STATE_FILE), state).expect("state");
    }

    #[test]
    fn only_an_installed_tempo_that_answers_is_the_default() {
        let resolved = on_loopback();
        let home = tempfile::tempdir().expect("home");
        let ip = mgmt_service_address(&resolved, MgmtService::Traces).expect("address");
        // Nothing installed: not even probed.
        assert_eq!(mgmt_tempo(home.path(), &resolved), None);
        write_state(home.path(), "failed");
        assert_eq!(mgmt_tempo(home.path(), &resolved), None);
        // Installed, but nothing listens (the lab is down).
        write_state(home.path(), "done");
        assert_eq!(mgmt_tempo(home.path(), &resolved), None);
        let listener = std::net::TcpListener::bind((ip, OTLP_GRPC_PORT))
            .unwrap_or_else(|e| panic!("bind {ip}:{OTLP_GRPC_PORT}: {e}"));
        assert_eq!(
            mgmt_tempo(home.path(), &resolved),
            Some(format!("http://{ip}:{OTLP_GRPC_PORT}"))
        );
        drop(listener);
        assert_eq!(mgmt_tempo(home.path(), &resolved), None);
    }
}
