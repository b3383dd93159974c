//! The soak of issue 13: the real `hostctl daemon` on a 20 MiB home (a
//! tmpfs) with six real node agents reporting every second, under a
//! bounded unauthenticated flood of both listeners — bogus `Enrol` calls
//! from thousands of loopback addresses, idle TCP connections, half-done
//! TLS handshakes and garbage bytes. It must end with every agent's
//! reports still acknowledged (stored), the home not full, and the daemon
//! stopping when asked, with flood connections still open.
//!
//! The daemon is started as the CLI starts one (`lifecycle::spawn`):
//! `daemon.log` is its stdout and stderr, and it logs through its capped,
//! rotated writer (`HOSTCTL_DAEMON_LOG`). One caller of the flood sends
//! node names of nearly 4 MiB, which the daemon's refusal lines repeat, so
//! the log reaches its cap (16 MiB in all) within seconds: the home must
//! still have room for the store.
//!
//! Everything is dialled on loopback (127.0.0.0/8 only). Every loop ends at
//! a deadline or after a count, every wait is bounded and generous, and no
//! assertion depends on how fast this machine is. Needs root (to mount the
//! tmpfs); without it the test prints SKIP, unless `HOSTCTL_E2E_REQUIRED`
//! is set.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use host_agent::daemon::ControlClient;
use host_agent::daemon::config::{log_path, socket_path};
use host_agent::daemon::lifecycle::PidLock;
use host_agent::daemon::logfile::{self, MAX_LOG_BYTES};
use host_agent::node_config::{NodeAgentConfig, NodeConfigInput};
use host_agent::provider::AgentLayout;
use proto::v1::enrolment_client::EnrolmentClient;
use proto::v1::{EnrolRequest, StatusResponse, StoredReport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tests::bins::Binaries;
use tests::poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant as TokioInstant;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

mod daemon;
mod flood;
mod home;

use daemon::*;
use flood::*;
use home::*;

const TEST: &str = "soak";

/// The home's size, as in the issue.
const HOME_MIB: u64 = 20;

/// Free space the home must keep at every sample during the flood and at
/// the end: room for the store to go on growing. (The daemon's log may
/// take 16 MiB of the 20 by design, docs/security.md.)
const FREE_MARGIN_BYTES: u64 = 2 << 20;

/// What a write refused for want of space says, in the daemon's log (the
/// store's "host disk full" refusal, the log's "lines dropped" note).
const ENOSPC: &str = "No space left on device";

/// How long the flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(30);

/// The agents' reporting interval.
const REPORT_INTERVAL_SECONDS: u32 = 1;

/// Concurrent bogus `Enrol` callers, each on a new TLS connection per call
/// (and one more with long names, below).
const ENROL_CALLERS: usize = 16;

/// Raw connections per listener, as (idle, half-done TLS handshake,
/// garbage): each is held until the daemon closes it, then opened again.
/// On the enrolment port they stay, with the callers, below the 64
/// handshakes it admits at once, so the calls reach the service.
const RAW_ON_ENROL: [usize; 3] = [16, 8, 4];
const RAW_ON_HOST: [usize; 3] = [96, 32, 4];

/// Loopback addresses the bogus enrolments come from: more than the
/// enrolment limiter tracks (4096), so it must forget peers too.
const SOURCES: u32 = 5000;

/// The node name of the calls of one more caller: just under the 4 MiB a
/// message to the Enrolment service may have (tonic's default limit).
const LONG_NAME_BYTES: usize = 4_000_000;

/// Generous bounds for a loaded machine.
const START_WAIT: Duration = Duration::from_secs(30);
const ENROL_WAIT: Duration = Duration::from_secs(120);
const REPORT_WAIT: Duration = Duration::from_secs(60);
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Longest one flood connection or call may take before it is given up.
const ATTEMPT_BOUND: Duration = Duration::from_secs(15);

/// The six nodes of the built-in topology.
fn nodes() -> Vec<topology::Node> {
    topology::default_topology().nodes
}

#[test]
fn a_flooded_daemon_on_a_20_mib_home_keeps_acking_six_agents_and_stops() {
    let Some(home) = TmpfsHome::mount() else {
        return;
    };
    tests::init_crypto();
    let bins = Binaries::locate();
    let scratch = tempfile::Builder::new()
        .prefix("hostctl-soak-")
        .tempdir()
        .expect("scratch dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut soak = Soak {
        home: home.path().to_owned(),
        scratch: scratch.path().to_owned(),
        rt,
        agents: Vec::new(),
        daemon: None,
    };

    let status = soak.start_daemon(&bins);
    let host: SocketAddr = status.host_endpoint.parse().expect("host endpoint");
    let enrol: SocketAddr = status.enrol_endpoint.parse().expect("enrol endpoint");
    assert!(
        host.ip().is_loopback() && enrol.ip().is_loopback(),
        "{status:?}"
    );
    soak.start_agents(&bins, host, enrol);
    soak.wait_until_all_report();
    let used_before = usage(&soak.home).used();

    // The flood, bounded by FLOOD_FOR; the home is sampled meanwhile.
    let ca_pem = certs::Pki::open(&soak.home)
        .expect("PKI")
        .agent_ca_pem()
        .to_owned();
    let flood = Flood::new(&ca_pem, enrol, host);
    let flood_start = SystemTime::now();
    let deadline = TokioInstant::now() + FLOOD_FOR;
    let tasks = flood.clone().spawn(&soak.rt, deadline);
    let mut least_free = u64::MAX;
    while TokioInstant::now() < deadline {
        least_free = least_free.min(usage(&soak.home).free);
        std::thread::sleep(Duration::from_millis(500));
    }
    soak.rt.block_on(async {
        for t in tasks {
            tokio::time::timeout(2 * ATTEMPT_BOUND, t)
                .await
                .expect("a flood task outlived its bound")
                .expect("a flood task panicked");
        }
    });
    let flood_end = SystemTime::now();
    let end = usage(&soak.home);
    least_free = least_free.min(end.free);

    // The home is not full and never was: free space at every sample, no
    // write refused for want of space, and the log within its bound.
    let logs = [
        log_path(&soak.home),
        logfile::rotated_path(&log_path(&soak.home)),
    ];
    for log in &logs {
        let bytes = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(ENOSPC),
            "the home filled during the soak ({} says \"{ENOSPC}\"); {}",
            log.display(),
            soak.describe_home()
        );
        let len = bytes.len() as u64;
        assert!(
            len <= MAX_LOG_BYTES,
            "{} is {len} bytes, over its cap of {MAX_LOG_BYTES}",
            log.display()
        );
    }
    assert!(
        least_free >= FREE_MARGIN_BYTES,
        "the home came within {least_free} bytes of full; {}",
        soak.describe_home()
    );

    // Every agent's reports are still acknowledged (the daemon acks a
    // report once it is stored): each has reports stored after the flood,
    // and had some stored while it ran.
    let mut acked = Vec::new();
    for node in nodes() {
        poll::until(
            &format!("{}: a report stored after the flood", node.name),
            REPORT_WAIT,
            Duration::from_millis(500),
            || {
                soak.history(&node.name)
                    .last()
                    .filter(|r| received_at(r) > Some(flood_end))
                    .map(|_| ())
            },
            || format!("{:#?}", soak.history(&node.name).last()),
        );
        let during = soak
            .history(&node.name)
            .iter()
            .filter(|r| received_at(r).is_some_and(|t| t >= flood_start && t <= flood_end))
            .count();
        assert!(
            during > 0,
            "{}: no report stored during the {} s flood",
            node.name,
            FLOOD_FOR.as_secs()
        );
        acked.push(format!("{}={during}", node.name));
    }

    // The flood used the nodes' names with made-up tokens: that must not
    // show as a refusal of the nodes' own enrolment.
    let status = soak.status().expect("status after the flood");
    for n in &status.nodes {
        assert!(
            n.last_enrolment_refusal.is_none(),
            "unauthenticated noise was recorded as a node's refusal: {n:?}"
        );
    }
    let tally = flood.tally.snapshot();
    assert_eq!(tally.enrolled, 0, "a bogus enrolment succeeded: {tally:?}");
    assert!(
        tally.refused() > 0,
        "the flood never reached the enrolment service: {tally:?}"
    );

    // The daemon stops when asked, with flood connections still open.
    let held = soak.rt.block_on(flood.hold_through_stop());
    let stopped_in = soak.stop_daemon();
    drop(held);

    eprintln!(
        "soak: home {} KiB used of {HOME_MIB} MiB before the flood, {} KiB after, \
         least free {} KiB ({}); reports stored per agent during the {} s flood: {}; \
         flood: {}; daemon stopped in {:.1} s",
        used_before / 1024,
        end.used() / 1024,
        least_free / 1024,
        largest_files(&soak.home),
        FLOOD_FOR.as_secs(),
        acked.join(" "),
        tally,
        stopped_in.as_secs_f64(),
    );
}
