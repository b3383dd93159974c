//! The two JSON-per-line control channels QEMU offers on Unix sockets: QMP
//! (QEMU itself: power-down, quit) and the guest agent (inside the VM: run
//! a command, read a file). Both are request/response with `{"execute": …}`
//! and a `{"return": …}` or `{"error": …}` answer.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Why a channel call failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot connect to {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no answer within {} s", path.display(), timeout.as_secs())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {command} refused: {message}", path.display())]
    Refused {
        path: PathBuf,
        command: String,
        message: String,
    },
    #[error("{}: unreadable answer {text:?}", path.display())]
    Unreadable { path: PathBuf, text: String },
}

/// One open channel.
pub struct Channel {
    path: PathBuf,
    timeout: Duration,
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Channel {
    /// QMP: connects, reads the greeting and leaves capabilities
    /// negotiation mode, as every QMP client must.
    pub async fn qmp(path: &Path, timeout: Duration) -> Result<Channel, ChannelError> {
        let mut ch = Channel::connect(path, timeout).await?;
        ch.read_answer("greeting").await?;
        ch.call("qmp_capabilities", json!({})).await?;
        Ok(ch)
    }

    /// The guest agent: connects and synchronises with `guest-sync`, so an
    /// answer left over from an earlier client is not taken for ours.
    pub async fn guest(path: &Path, timeout: Duration) -> Result<Channel, ChannelError> {
        let mut ch = Channel::connect(path, timeout).await?;
        let id = u64::from(std::process::id()) << 16 | u64::from(rand_u16());
        loop {
            let answer = ch.call("guest-sync", json!({ "id": id })).await?;
            if answer.as_u64() == Some(id) {
                return Ok(ch);
            }
        }
    }

    async fn connect(path: &Path, timeout: Duration) -> Result<Channel, ChannelError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| ChannelError::Timeout {
                path: path.to_path_buf(),
                timeout,
            })?
            .map_err(|source| ChannelError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        Ok(Channel {
            path: path.to_path_buf(),
            timeout,
            reader: BufReader::new(read),
            writer,
        })
    }

    /// Sends one command and returns its `return` value; QMP events that
    /// arrive in between are skipped.
    pub async fn call(&mut self, command: &str, arguments: Value) -> Result<Value, ChannelError> {
        let mut line = json!({ "execute": command, "arguments": arguments }).to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|source| self.io(source))?;
        loop {
            let answer = self.read_answer(command).await?;
            if answer.get("event").is_some() {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(ChannelError::Refused {
                    path: self.path.clone(),
                    command: command.to_owned(),
                    message: error
                        .get("desc")
                        .and_then(Value::as_str)
                        .unwrap_or("no description")
                        .to_owned(),
                });
            }
            return Ok(answer.get("return").cloned().unwrap_or(Value::Null));
        }
    }

    async fn read_answer(&mut self, what: &str) -> Result<Value, ChannelError> {
        let mut text = String::new();
        let read = tokio::time::timeout(self.timeout, self.reader.read_line(&mut text))
            .await
            .map_err(|_| ChannelError::Timeout {
                path: self.path.clone(),
                timeout: self.timeout,
            })?
            .map_err(|source| self.io(source))?;
        if read == 0 {
            return Err(self.io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed while waiting for {what}"),
            )));
        }
        serde_json::from_str(text.trim()).map_err(|_| ChannelError::Unreadable {
            path: self.path.clone(),
            text,
        })
    }

    fn io(&self, source: std::io::Error) -> ChannelError {
        ChannelError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos >> 8) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A stand-in QMP server: greeting, capabilities, an event, then an
    /// error for the next command.
    #[tokio::test]
    async fn qmp_skips_events_and_reports_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"{\"QMP\": {\"version\": {}}}\n")
                .await
                .unwrap();
            lines.next_line().await.unwrap();
            w.write_all(b"{\"return\": {}}\n").await.unwrap();
            lines.next_line().await.unwrap();
            w.write_all(b"{\"event\": \"POWERDOWN\"}\n{\"return\": {}}\n")
                .await
                .unwrap();
            lines.next_line().await.unwrap();
            w.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n")
                .await
                .unwrap();
        });
        let mut ch = Channel::qmp(&path, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            ch.call("system_powerdown", json!({})).await.unwrap(),
            json!({})
        );
        let err = ch.call("quit", json!({})).await.unwrap_err().to_string();
        assert!(err.contains("quit refused: nope"), "{err}");
        server.await.unwrap();
    }
}
