//! Acting inside a VM without SSH, through the QEMU guest agent (when the
//! image runs `qemu-guest-agent`; the test image does): run a command and
//! collect its output, which is how the boot report reads cloud-init's
//! result from the VM and how tests act inside it.

use super::channel::{Channel, ChannelError};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// What a command run in the guest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// How long one guest-agent exchange may take. Generous: a software-
/// emulated guest on a loaded host answers `guest-sync` in seconds, not
/// milliseconds (5 s lost the boot report of a slow VM), and the wait only
/// costs time when the guest agent does not answer at all.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `argv` in the guest and waits (up to `limit`) for it to finish.
pub async fn exec(qga: &Path, argv: &[&str], limit: Duration) -> Result<GuestOutput, ChannelError> {
    let mut ch = Channel::guest(qga, CALL_TIMEOUT.min(limit)).await?;
    let (path, args) = argv.split_first().unwrap_or((&"/bin/true", &[]));
    let started = ch
        .call(
            "guest-exec",
            json!({ "path": path, "arg": args, "capture-output": true }),
        )
        .await?;
    let pid = started.get("pid").and_then(Value::as_i64).unwrap_or(-1);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = ch.call("guest-exec-status", json!({ "pid": pid })).await?;
        if status.get("exited").and_then(Value::as_bool) == Some(true) {
            let text = |key: &str| {
                status
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            return Ok(GuestOutput {
                exit_code: status.get("exitcode").and_then(Value::as_i64).unwrap_or(-1),
                stdout: text("out-data"),
                stderr: text("err-data"),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ChannelError::Timeout {
                path: qga.to_path_buf(),
                timeout: limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
