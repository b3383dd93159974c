//! QEMU's JSON-per-line control channels on Unix sockets: QMP (power-down,
//! quit) and the guest agent (network interfaces, running a command).
//! Blocking, with a read timeout on every answer.

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    fn connect(path: &Path, timeout: Duration) -> anyhow::Result<Channel> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("connecting to {}", path.display()))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Channel {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// QMP: greeting, then leave capabilities negotiation.
    pub fn qmp(path: &Path) -> anyhow::Result<Channel> {
        let mut ch = Channel::connect(path, Duration::from_secs(5))?;
        ch.read()?;
        ch.call("qmp_capabilities", json!({}))?;
        Ok(ch)
    }

    /// The guest agent, synchronised with `guest-sync` so an answer left
    /// from an earlier client is not taken for ours. Fails (after
    /// `timeout`) while the guest agent is not running yet.
    pub fn guest(path: &Path, timeout: Duration) -> anyhow::Result<Channel> {
        let mut ch = Channel::connect(path, timeout)?;
        let id = u64::from(u32::from_be_bytes(crate::names::random_bytes()));
        ch.send("guest-sync", json!({ "id": id }))?;
        loop {
            if ch.read()?.get("return").and_then(Value::as_u64) == Some(id) {
                return Ok(ch);
            }
        }
    }

    fn send(&mut self, command: &str, arguments: Value) -> anyhow::Result<()> {
        let mut line = json!({ "execute": command, "arguments": arguments }).to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .context("writing to the channel")
    }

    fn read(&mut self) -> anyhow::Result<Value> {
        let mut text = String::new();
        if self.reader.read_line(&mut text).context("no answer")? == 0 {
            bail!("the channel closed");
        }
        serde_json::from_str(text.trim()).with_context(|| format!("unreadable answer {text:?}"))
    }

    /// One command; its `return`, skipping QMP events.
    pub fn call(&mut self, command: &str, arguments: Value) -> anyhow::Result<Value> {
        self.send(command, arguments)?;
        loop {
            let answer = self.read()?;
            if answer.get("event").is_some() {
                continue;
            }
            if let Some(e) = answer.get("error") {
                bail!(
                    "{command} refused: {}",
                    e.get("desc").and_then(Value::as_str).unwrap_or("?")
                );
            }
            return Ok(answer.get("return").cloned().unwrap_or(Value::Null));
        }
    }
}

/// Waits until the guest agent answers `guest-ping` or `deadline` passes.
pub fn wait_for_guest(qga: &Path, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if let Ok(mut ch) = Channel::guest(qga, Duration::from_secs(3))
            && ch.call("guest-ping", json!({})).is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    false
}

/// The guest's IPv4 addresses (loopback left out), in interface order.
pub fn guest_ipv4(qga: &Path) -> anyhow::Result<Vec<std::net::Ipv4Addr>> {
    let mut ch = Channel::guest(qga, Duration::from_secs(3))?;
    let ifaces = ch.call("guest-network-get-interfaces", json!({}))?;
    let mut out = Vec::new();
    for iface in ifaces.as_array().into_iter().flatten() {
        if iface.get("name").and_then(Value::as_str) == Some("lo") {
            continue;
        }
        for a in iface
            .get("ip-addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if a.get("ip-address-type").and_then(Value::as_str) != Some("ipv4") {
                continue;
            }
            if let Some(ip) = a
                .get("ip-address")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

/// Runs `argv` in the guest until it exits or `deadline`; its exit code.
pub fn guest_exec(qga: &Path, argv: &[&str], deadline: Instant) -> anyhow::Result<(i64, String)> {
    let mut ch = Channel::guest(qga, Duration::from_secs(5))?;
    let (path, args) = argv.split_first().context("empty command")?;
    let started = ch.call(
        "guest-exec",
        json!({"path": path, "arg": args, "capture-output": true}),
    )?;
    let pid = started
        .get("pid")
        .and_then(Value::as_i64)
        .context("guest-exec gave no pid")?;
    loop {
        let status = ch.call("guest-exec-status", json!({ "pid": pid }))?;
        if status.get("exited").and_then(Value::as_bool) == Some(true) {
            let out = status
                .get("out-data")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Ok((
                status.get("exitcode").and_then(Value::as_i64).unwrap_or(-1),
                out,
            ));
        }
        if Instant::now() >= deadline {
            bail!("{argv:?} still running in the guest at the deadline");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A stand-in guest agent: answers guest-sync with its id, then the
    /// interfaces.
    #[test]
    fn guest_addresses_skip_loopback_and_ipv6() {
        let dir = std::env::temp_dir().join(format!("mpemu-qga-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qga.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let id = serde_json::from_str::<Value>(&line).unwrap()["arguments"]["id"].clone();
            writeln!(w, "{}", json!({"return": 7})).unwrap();
            writeln!(w, "{}", json!({ "return": id })).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            let ifaces = json!({"return": [
                {"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
                {"name": "enp0s2", "ip-addresses": [
                    {"ip-address-type": "ipv4", "ip-address": "192.168.252.2", "prefix": 24},
                    {"ip-address-type": "ipv6", "ip-address": "fe80::1", "prefix": 64},
                    {"ip-address-type": "ipv4", "ip-address": "192.168.252.10", "prefix": 24}]}]});
            writeln!(w, "{ifaces}").unwrap();
        });
        let ips = guest_ipv4(&path).unwrap();
        assert_eq!(
            ips,
            [
                "192.168.252.2".parse::<std::net::Ipv4Addr>().unwrap(),
                "192.168.252.10".parse().unwrap()
            ]
        );
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
