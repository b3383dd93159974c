//! The systemd journal as a log source, through `journalctl -o json`.
//!
//! journalctl is the stable interface to the journal (its files are not);
//! JSON output gives the realtime timestamp and unit of each entry. The
//! child starts through the agent's one runner module ([`crate::exec`])
//! and is killed when the client goes away.

use proto::v1::LogLine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use super::{LogError, LogQuery, LogReceiver, LogSource};
use crate::exec;

/// Reads the system journal.
#[derive(Debug, Clone, Default)]
pub struct JournaldSource;

impl LogSource for JournaldSource {
    fn open(&self, query: LogQuery) -> Result<LogReceiver, LogError> {
        let tail = query.tail_lines().to_string();
        let mut argv = exec::argv(&["journalctl", "-o", "json", "--no-pager", "-n", &tail]);
        if !query.unit.is_empty() {
            argv.extend(exec::argv(&["-u", &query.unit]));
        }
        if query.follow {
            argv.push("-f".into());
        }
        let child = exec::system::spawn(&argv).map_err(|e| LogError::Unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(stream(child, tx));
        Ok(rx)
    }
}

async fn stream(mut child: Child, tx: mpsc::Sender<Result<LogLine, LogError>>) {
    let Some(stdout) = child.stdout.take() else {
        return;
    };
    let mut lines = BufReader::new(stdout).lines();
    loop {
        tokio::select! {
            () = tx.closed() => return,
            next = lines.next_line() => match next {
                Ok(Some(line)) => {
                    if let Some(entry) = parse_entry(&line)
                        && tx.send(Ok(entry)).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(LogError::Unavailable(format!("reading journalctl: {e}")))).await;
                    return;
                }
            },
        }
    }
    let status = child.wait().await;
    if !status.as_ref().is_ok_and(|s| s.success()) {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut err).await;
        }
        let _ = tx
            .send(Err(LogError::Unavailable(format!(
                "journalctl failed: {}",
                err.trim()
            ))))
            .await;
    }
}

/// One `journalctl -o json` entry; `None` for lines that are not entries.
pub fn parse_entry(line: &str) -> Option<LogLine> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str());
    let at = field("__REALTIME_TIMESTAMP")
        .and_then(|us| us.parse::<i64>().ok())
        .map(|us| proto::Timestamp {
            seconds: us.div_euclid(1_000_000),
            nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
        });
    let unit = field("_SYSTEMD_UNIT")
        .or_else(|| field("SYSLOG_IDENTIFIER"))
        .unwrap_or_default()
        .to_owned();
    // Binary or non-UTF-8 messages come as an array of bytes.
    let message = match v.get("MESSAGE") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(bytes)) => {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&raw).into_owned()
        }
        _ => String::new(),
    };
    Some(LogLine { at, unit, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_journal_json() {
        let l = parse_entry(
            r#"{"__REALTIME_TIMESTAMP":"1795428000500000","_SYSTEMD_UNIT":"kubelet.service","MESSAGE":"started"}"#,
        );
        let l = l.unwrap_or_default();
        assert_eq!(l.unit, "kubelet.service");
        assert_eq!(l.message, "started");
        assert_eq!(
            l.at.map(|t| (t.seconds, t.nanos)),
            Some((1_795_428_000, 500_000_000))
        );
    }

    #[test]
    fn byte_array_messages_and_garbage() {
        let l = parse_entry(r#"{"SYSLOG_IDENTIFIER":"kernel","MESSAGE":[104,105]}"#)
            .unwrap_or_default();
        assert_eq!((l.unit.as_str(), l.message.as_str()), ("kernel", "hi"));
        assert!(parse_entry("-- No entries --").is_none());
    }
}
