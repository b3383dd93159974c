//! Admission to the daemon's TCP listeners (issue 13, item 6): connection
//! budgets per peer and in total, a handshake timeout, an age limit on
//! enrolment connections, and a flood at the limit that leaves the CLI and
//! nodes working. Remote peers are played from loopback addresses
//! (127.0.0.2, 127.0.0.3…) with `per_peer_on_loopback` on.
//!
//! Every wait is bounded by a generous deadline; no assertion depends on
//! how fast this machine is.

use test_support::host_daemon as support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use host_agent::daemon::Daemon;
use host_agent::daemon::listener::ListenerLimits;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{BoxError, Home, Mint, host_channel, report, send_reports};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// Longest any wait below may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn limits(total: usize, per_peer: usize) -> ListenerLimits {
    ListenerLimits {
        total,
        per_peer,
        handshakes: total,
        per_peer_on_loopback: true,
    }
}

async fn start(
    home: &Home,
    tune: impl FnOnce(&mut host_agent::daemon::DaemonConfig),
) -> Result<Daemon, BoxError> {
    support::install_crypto();
    let mut config = home.config();
    tune(&mut config);
    Ok(Daemon::start(config, home.pki.clone()).await?)
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> Result<TcpStream, BoxError> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>()?, 0))?;
    Ok(socket.connect(to).await?)
}

/// Waits (bounded) until the server closes `stream`: EOF or a reset.
async fn closed_by_server(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 256];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.is_ok()
}

/// Completes a TLS handshake with the enrolment listener over `stream`.
async fn handshake(
    home: &Home,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(home.ca_pem().as_bytes()) {
        roots.add(der?)?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("127.0.0.1")?.to_owned();
    Ok(tokio::time::timeout(DEADLINE, connector.connect(name, stream)).await??)
}

#[tokio::test]
async fn a_peer_over_its_share_is_closed_at_once_and_another_peer_still_gets_in()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = start(&home, |c| c.connection_limits.enrolment = limits(16, 2)).await?;
    let to = daemon.enrol_addr();
    // Two idle connections: the peer's whole share, held open.
    let _held = [
        connect_from("127.0.0.2", to).await?,
        connect_from("127.0.0.2", to).await?,
    ];
    let mut third = connect_from("127.0.0.2", to).await?;
    assert!(
        closed_by_server(&mut third).await,
        "a connection over the peer's share was kept open"
    );
    // Another machine is not affected and completes its handshake.
    let other = connect_from("127.0.0.3", to).await?;
    handshake(&home, other).await?;
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_peer_that_never_finishes_its_handshake_is_dropped_and_its_slot_freed()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = start(&home, |c| {
        c.connection_limits.host = limits(16, 1);
        c.connection_limits.handshake_timeout = Duration::from_secs(1);
    })
    .await?;
    let to = daemon.host_addr();
    let mut silent = connect_from("127.0.0.2", to).await?;
    assert!(
        closed_by_server(&mut silent).await,
        "a connection that never sent a ClientHello was kept open"
    );
    // The slot came back: the same peer (share: one) gets in again.
    let mut again = connect_from("127.0.0.2", to).await?;
    assert!(closed_by_server(&mut again).await);
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_idle_enrolment_connection_is_closed_after_its_age() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = start(&home, |c| {
        c.connection_limits.enrolment_max_age = Duration::from_secs(1);
    })
    .await?;
    let tcp = connect_from("127.0.0.2", daemon.enrol_addr()).await?;
    let mut tls = handshake(&home, tcp).await?;
    assert!(
        closed_by_server(&mut tls).await,
        "an idle enrolment connection was kept open"
    );
    daemon.stop().await?;
    Ok(())
}

const HOSTCTL: &str = env!("CARGO_BIN_EXE_hostctl");

/// Connections the flood opens to each listener: more than the daemon's
/// 256 descriptors, as in the attack on macOS's default limit.
const FLOOD: usize = 300;

/// Retries `f` until it succeeds or [`DEADLINE`] passes.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> Result<T, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BoxError>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(10), f());
        match attempt
            .await
            .unwrap_or_else(|_| Err("attempt timed out".into()))
        {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(format!("{what}: still failing after {DEADLINE:?}: {e}").into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn a_flood_past_the_descriptor_limit_leaves_the_cli_and_the_nodes_working()
-> Result<(), BoxError> {
    // This process holds the flood's ends: it needs the descriptors.
    host_agent::daemon::fdlimit::raise();
    let home = Home::new()?;
    // The real daemon, with macOS's default of 256 descriptors as its hard
    // limit, so that it cannot raise it.
    let mut daemon = tokio::process::Command::new("prlimit")
        .arg("--nofile=256:256")
        .arg(HOSTCTL)
        .arg("--home")
        .arg(home.path())
        .args(["daemon", "--listen", "127.0.0.1", "--port", "0"])
        // Nodes are told to dial loopback: nothing here leaves the machine.
        .args(["--advertise", "127.0.0.1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let socket = home.path().join("daemon.sock");
    let status = eventually("the daemon's first status", || async {
        let mut c = host_agent::daemon::ControlClient::connect(&socket).await?;
        Ok(c.status().await?)
    })
    .await?;
    let host: SocketAddr = status.host_endpoint.parse()?;
    let enrol: SocketAddr = status.enrol_endpoint.parse()?;
    assert!(host.ip().is_loopback() && enrol.ip().is_loopback());

    // Idle connections, never a byte sent: more than the daemon's limit.
    let mut flood = Vec::new();
    for to in [enrol, host] {
        for _ in 0..FLOOD {
            // A listener whose backlog is full (it stopped accepting) is
            // flooded already: go on with the checks.
            match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(to)).await {
                Ok(Ok(s)) => flood.push(s),
                Ok(Err(_)) => continue,
                Err(_) => break,
            }
        }
    }

    // The CLI's socket answers while the flood is held open.
    eventually("status during the flood", || async {
        let mut c = host_agent::daemon::ControlClient::connect(&socket).await?;
        Ok(c.status().await?)
    })
    .await?;
    // A node with its certificate reports.
    let creds = Mint::node("mgmt-cp").sign(&home.agent_ca_issuer()?)?;
    let acks = eventually("a node's report during the flood", || async {
        let channel = host_channel(&home.ca_pem(), host, Some(&creds)).await?;
        Ok(send_reports(channel, vec![report("mgmt-cp", "i1", 1, 10)]).await?)
    })
    .await?;
    assert_eq!(acks.len(), 1);
    drop(flood);
    let mut c = host_agent::daemon::ControlClient::connect(&socket).await?;
    c.shutdown().await?;
    tokio::time::timeout(DEADLINE, daemon.wait()).await??;
    Ok(())
}
