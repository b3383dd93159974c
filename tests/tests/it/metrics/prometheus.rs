//! A real Prometheus (Debian's `/usr/bin/prometheus`) on loopback, killed
//! on drop, and the two questions the test asks its HTTP API.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Debian installs it.
pub(super) const BINARY: &str = "/usr/bin/prometheus";

pub(super) struct Prometheus {
    child: Child,
    pub(super) addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (closed again at once: Prometheus binds it).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML) and its storage under `dir`.
    pub(super) fn start(dir: &Path, config: &str) -> std::io::Result<Prometheus> {
        std::fs::create_dir_all(dir)?;
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Prometheus { child, addr, log })
    }

    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// GET `path_and_query` of the API; the JSON body, or `None` while
    /// Prometheus is not answering yet.
    pub(super) fn get(&self, path_and_query: &str) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let request = format!(
            "GET {path_and_query} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(request.as_bytes()).ok()?;
        let mut response = Vec::new();
        s.take(4 << 20).read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response);
        let (_, body) = text.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }

    /// The active targets: (scrapePool, labels.instance, health, lastError).
    pub(super) fn targets(&self) -> Vec<(String, String, String, String)> {
        let Some(v) = self.get("/api/v1/targets?state=active") else {
            return Vec::new();
        };
        let s = |t: &serde_json::Value, k: &str| t[k].as_str().unwrap_or_default().to_owned();
        v["data"]["activeTargets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            s(t, "scrapePool"),
                            t["labels"]["instance"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            s(t, "health"),
                            s(t, "lastError"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many series the instant query `promql` returns.
    pub(super) fn series(&self, promql: &str) -> usize {
        let q = url_encode(promql);
        self.get(&format!("/api/v1/query?query={q}"))
            .and_then(|v| v["data"]["result"].as_array().map(Vec::len))
            .unwrap_or(0)
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
