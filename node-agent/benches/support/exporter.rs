//! The peer the node agent is compared with at steady state: Debian's
//! `prometheus-node-exporter` (the Prometheus node exporter), run with its
//! default collectors on loopback and scraped as often as the agent's
//! metrics endpoint, for the same window. Absent, the benchmark says so.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Agent, cpu_seconds, status_kib};
use crate::harness::TestResult;

/// Where Debian installs it.
pub const BIN: &str = "/usr/bin/prometheus-node-exporter";

/// What the exporter used over the window.
pub struct PeerSample {
    pub seconds: f64,
    pub scrapes: usize,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub cpu_percent: f64,
}

/// One plain-HTTP scrape of `/metrics`; the number of body bytes.
fn scrape(addr: SocketAddr) -> TestResult<usize> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    if !body.starts_with(b"HTTP/1.0 200") && !body.starts_with(b"HTTP/1.1 200") {
        return Err(format!("node exporter answered {:?}", body.get(..40)).into());
    }
    Ok(body.len())
}

/// Runs the exporter for `warm_up` + `window`, scraping every
/// `scrape_every`; `None` when it is not installed.
pub fn measure(
    port: u16,
    warm_up: Duration,
    window: Duration,
    scrape_every: Duration,
) -> TestResult<Option<PeerSample>> {
    if !Path::new(BIN).exists() {
        return Ok(None);
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let peer = Agent(
        Command::new(BIN)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = peer.0.id();
    let up = Instant::now() + Duration::from_secs(10);
    while scrape(addr).is_err() {
        if Instant::now() > up {
            return Err("the node exporter never answered".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(warm_up);
    let (cpu0, t0) = (cpu_seconds(pid)?, Instant::now());
    let mut scrapes = 0;
    while t0.elapsed() < window {
        scrape(addr)?;
        scrapes += 1;
        std::thread::sleep(scrape_every.min(window.saturating_sub(t0.elapsed())));
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(Some(PeerSample {
        seconds,
        scrapes,
        rss_kib: status_kib(pid, "VmRSS:")?,
        hwm_kib: status_kib(pid, "VmHWM:")?,
        cpu_percent: (cpu_seconds(pid)? - cpu0) / seconds * 100.0,
    }))
}
