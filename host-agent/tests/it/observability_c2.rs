//! C2 with real binaries: Debian's Prometheus in agent mode, with the WAL
//! flags and remote-write entry hostctl renders (translated as the
//! operator does, `buffer::AgentBuffer::{agent_flags,
//! remote_write_config}`), scrapes a target that stamps its own samples
//! and writes to a second Prometheus with the remote-write receiver. The
//! receiver is killed until the target has served at least 120 scrapes
//! (over 2 minutes at 1 s; counted, not timed), started again on the same
//! data dir and port, and must end up holding exactly the served samples:
//! every one of the outage, none twice, none extra. 64 series make the
//! outage outgrow remote write's in-memory queue (2 500 samples a shard),
//! so the replay is read back from the WAL.

use host_agent::addons::observability::buffer::APP_AGENT;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const SERIES: usize = 64;
const OUTAGE_SCRAPES: usize = 120;

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Every scrape's (n, timestamp in ms), in order.
type Served = Arc<Mutex<Vec<(u64, i64)>>>;

/// The target: each scrape serves `hostctl_c2_sample{series="i"} n ts`
/// for every series, n and ts rising, and records what it served.
fn serve_target(listener: TcpListener, served: Served) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = {
                let mut served = served.lock().expect("lock");
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("clock")
                    .as_millis() as i64;
                let ts = served.last().map_or(now, |&(_, last)| now.max(last + 1));
                let n = served.len() as u64 + 1;
                served.push((n, ts));
                (0..SERIES)
                    .map(|i| format!("hostctl_c2_sample{{series=\"{i}\"}} {n} {ts}\n"))
                    .collect::<String>()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// A plain HTTP GET to 127.0.0.1:`port`: status and body, or None when
/// nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    // The API answers with chunked encoding for large bodies.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `done` every 200 ms until it holds or `limit` passes.
fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done()
}

fn start(args: &[String], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log");
    Proc(
        Command::new(PROMETHEUS)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts"),
    )
}

fn receiver_args(dir: &Path, port: u16) -> Vec<String> {
    vec![
        format!("--config.file={}", dir.join("receiver.yml").display()),
        format!(
            "--storage.tsdb.path={}",
            dir.join("receiver-data").display()
        ),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--web.enable-remote-write-receiver".into(),
    ]
}

fn ready(port: u16) -> bool {
    get(port, "/-/ready").is_some_and(|(s, _)| s == 200)
}

/// The receiver's samples per series, as (n, ts ms).
fn received(port: u16) -> Vec<BTreeSet<(u64, i64)>> {
    let Some((200, body)) = get(port, "/api/v1/query?query=hostctl_c2_sample%5B1h%5D") else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return Vec::new();
    };
    let mut per_series = vec![BTreeSet::new(); SERIES];
    for series in v["data"]["result"].as_array().into_iter().flatten() {
        assert_eq!(series["metric"]["cluster"], "app1", "{series}");
        let i: usize = series["metric"]["series"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("series");
        let values = series["values"].as_array().expect("values");
        for pair in values {
            let ts = (pair[0].as_f64().expect("ts") * 1000.0).round() as i64;
            let n = pair[1].as_str().and_then(|s| s.parse().ok()).expect("n");
            assert!(per_series[i].insert((n, ts)), "sample {n}@{ts} twice");
        }
        assert_eq!(per_series[i].len(), values.len());
    }
    per_series
}

#[test]
fn the_agent_replays_a_two_minute_receiver_outage_exactly() {
    if !Path::new(PROMETHEUS).is_file() {
        test_support::skip(
            "C2 agent outage",
            "prometheus is not installed (apt-get install prometheus)",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let served: Served = Arc::default();
    let target = TcpListener::bind("127.0.0.1:0").expect("target");
    let target_port = target.local_addr().expect("addr").port();
    serve_target(target, served.clone());
    let (agent_port, receiver_port) = (free_port(), free_port());

    std::fs::write(d.join("receiver.yml"), "global: {}\n").expect("write");
    let url = format!("http://127.0.0.1:{receiver_port}/api/v1/write");
    let agent_config = json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "external_labels": {"cluster": "app1"}},
        "scrape_configs": [{
            "job_name": "c2",
            "honor_timestamps": true,
            "scrape_interval": "1s",
            "static_configs": [{"targets": [format!("127.0.0.1:{target_port}")]}],
        }],
        "remote_write": [APP_AGENT.remote_write_config(&url, "app1")],
    });
    std::fs::write(d.join("agent.yml"), agent_config.to_string()).expect("write");
    let mut agent_args = vec![
        "--enable-feature=agent".to_owned(),
        format!("--config.file={}", d.join("agent.yml").display()),
        format!("--storage.agent.path={}", d.join("agent-wal").display()),
        format!("--web.listen-address=127.0.0.1:{agent_port}"),
    ];
    agent_args.extend(APP_AGENT.agent_flags());

    let mut receiver = start(&receiver_args(d, receiver_port), &d.join("receiver-1.log"));
    assert!(
        poll(Duration::from_secs(120), || ready(receiver_port)),
        "the receiver never got ready"
    );
    let _agent = start(&agent_args, &d.join("agent.log"));
    let count = || served.lock().expect("lock").len();
    // Shipping works before the outage.
    assert!(
        poll(Duration::from_secs(120), || received(receiver_port)
            .first()
            .is_some_and(|s| !s.is_empty())),
        "nothing arrived before the outage; agent log: {}",
        std::fs::read_to_string(d.join("agent.log")).unwrap_or_default()
    );

    // mgmt goes away.
    let _ = receiver.0.kill();
    let _ = receiver.0.wait();
    let at_outage = count();
    assert!(
        poll(Duration::from_secs(900), || count()
            >= at_outage + OUTAGE_SCRAPES),
        "the agent stopped scraping during the outage"
    );
    let (first, last) = {
        let s = served.lock().expect("lock");
        (s[at_outage - 1].1, s[s.len() - 1].1)
    };
    let outage_scrapes = count() - at_outage;
    receiver = start(&receiver_args(d, receiver_port), &d.join("receiver-2.log"));
    assert!(
        poll(Duration::from_secs(120), || ready(receiver_port)),
        "the receiver did not come back"
    );

    // Everything served up to a few scrapes after the restart must arrive.
    let back = count();
    assert!(
        poll(Duration::from_secs(120), || count() >= back + 5),
        "scrapes stopped"
    );
    let cutoff: Vec<(u64, i64)> = served.lock().expect("lock").clone();
    let cut_ts = cutoff.last().expect("served").1;
    let expected: BTreeSet<(u64, i64)> = cutoff.iter().copied().collect();
    let upto = |s: &BTreeSet<(u64, i64)>| -> BTreeSet<(u64, i64)> {
        s.iter().filter(|&&(_, ts)| ts <= cut_ts).copied().collect()
    };
    let mut got = Vec::new();
    let arrived = poll(Duration::from_secs(300), || {
        got = received(receiver_port);
        got.len() == SERIES && got.iter().all(|s| upto(s).is_superset(&expected))
    });
    let all_served: BTreeSet<(u64, i64)> = served.lock().expect("lock").iter().copied().collect();
    eprintln!(
        "C2: outage of {outage_scrapes} scrapes ({:.0} s of sample time), {} samples a series served up to the cut-off, {} series",
        (last - first) as f64 / 1000.0,
        expected.len(),
        got.len()
    );
    assert!(
        arrived,
        "not every served sample arrived; missing in series 0: {:?}; agent log: {}",
        got.first().map(|s| expected.difference(&upto(s)).count()),
        std::fs::read_to_string(d.join("agent.log")).unwrap_or_default()
    );
    for (i, s) in got.iter().enumerate() {
        assert_eq!(
            upto(s),
            expected,
            "series {i}: the received set differs from the served set"
        );
        assert!(
            s.is_subset(&all_served),
            "series {i} holds samples never served"
        );
    }
    drop(receiver);
}
