//! The agent's own log file as a log source: tail, then poll for growth.
//!
//! Polling (every 250 ms) instead of inotify keeps this dependency-free and
//! copes with truncation: a file shorter than what was read is read again
//! from the start.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use proto::v1::LogLine;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::{LogError, LogQuery, LogReceiver, LogSource};

/// Unit name reported for the agent's own lines.
pub const UNIT: &str = "node-agent";
const POLL: Duration = Duration::from_millis(250);
/// How far back from the end the tail looks (enough for any sane tail).
const TAIL_WINDOW: u64 = 4 * 1024 * 1024;

/// Reads one file.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// A source reading `path`.
    pub fn new(path: PathBuf) -> Self {
        FileSource { path }
    }
}

impl LogSource for FileSource {
    fn open(&self, query: LogQuery) -> Result<LogReceiver, LogError> {
        if !query.unit.is_empty() && query.unit != UNIT {
            return Err(LogError::NotFound(format!(
                "this node has no journal; only the {UNIT} log is available, not {:?}",
                query.unit
            )));
        }
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(stream(self.path.clone(), query, tx));
        Ok(rx)
    }
}

type Tx = mpsc::Sender<Result<LogLine, LogError>>;

async fn stream(path: PathBuf, query: LogQuery, tx: Tx) {
    let unavailable =
        |e: std::io::Error| Err(LogError::Unavailable(format!("{}: {e}", path.display())));
    let (text, mut offset) = match read_tail_window(&path).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(unavailable(e)).await;
            return;
        }
    };
    let (complete, mut partial) = split_complete(&text);
    let lines: Vec<&str> = complete.lines().collect();
    let skip = lines.len().saturating_sub(query.tail_lines());
    for line in &lines[skip..] {
        if tx.send(Ok(to_line(line))).await.is_err() {
            return;
        }
    }
    while query.follow && !tx.is_closed() {
        tokio::time::sleep(POLL).await;
        let chunk = match read_from(&path, offset).await {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(unavailable(e)).await;
                return;
            }
        };
        let (new_offset, bytes) = chunk;
        if new_offset < offset {
            partial.clear();
        }
        offset = new_offset + bytes.len() as u64;
        partial.push_str(&String::from_utf8_lossy(&bytes));
        let (complete, rest) = split_complete(&partial);
        for line in complete.lines() {
            if tx.send(Ok(to_line(line))).await.is_err() {
                return;
            }
        }
        partial = rest;
    }
}

/// The last `TAIL_WINDOW` bytes and the offset after them.
async fn read_tail_window(path: &PathBuf) -> std::io::Result<(String, u64)> {
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    let start = len.saturating_sub(TAIL_WINDOW);
    f.seek(SeekFrom::Start(start)).await?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        // Drop the line cut in half by the window.
        text = text
            .split_once('\n')
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default();
    }
    Ok((text, start + buf.len() as u64))
}

/// New bytes from `offset`, or from 0 when the file shrank (truncated or
/// replaced); returns where reading started.
async fn read_from(path: &PathBuf, offset: u64) -> std::io::Result<(u64, Vec<u8>)> {
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    let start = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(start)).await?;
    let mut buf = Vec::new();
    f.take(TAIL_WINDOW).read_to_end(&mut buf).await?;
    Ok((start, buf))
}

/// Splits text into whole lines and the unfinished last line.
fn split_complete(text: &str) -> (&str, String) {
    match text.rfind('\n') {
        Some(i) => (&text[..=i], text[i + 1..].to_owned()),
        None => ("", text.to_owned()),
    }
}

/// A log line; the timestamp is taken from the line's RFC 3339 prefix
/// (tracing's default format) when there is one.
fn to_line(line: &str) -> LogLine {
    let at = line
        .split_whitespace()
        .next()
        .and_then(|w| w.parse::<proto::Timestamp>().ok());
    LogLine {
        at,
        unit: UNIT.to_owned(),
        message: line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_prefix_is_parsed() {
        let l = to_line("2026-11-23T10:00:00.5Z  INFO node_agent: hello");
        assert_eq!(l.at.map(|t| t.seconds), Some(1_795_428_000));
        assert_eq!(to_line("no time here").at, None);
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let (complete, rest) = split_complete("a\nb\nc");
        assert_eq!((complete, rest.as_str()), ("a\nb\n", "c"));
    }
}
