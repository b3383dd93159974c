//! Where the `Logs` RPC reads from.
//!
//! Real nodes have the systemd journal; the local provider's nodes are
//! plain processes whose only log is the agent's own file. Both sit behind
//! one trait so the service does not care which it streams.

pub mod file;
pub mod journald;

use proto::v1::LogLine;
use tokio::sync::mpsc;

/// Lines sent before following when the request says 0.
pub const DEFAULT_TAIL: u32 = 100;

/// What the caller asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// systemd unit; empty for everything.
    pub unit: String,
    /// Keep streaming new lines.
    pub follow: bool,
    /// Lines before following (`None` = `DEFAULT_TAIL`; `Some(0)` = none).
    pub tail: Option<u32>,
}

impl LogQuery {
    /// The tail length with the default applied.
    pub fn tail_lines(&self) -> usize {
        usize::try_from(self.tail.unwrap_or(DEFAULT_TAIL)).unwrap_or(usize::MAX)
    }
}

/// Why logs cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The source does not hold what was asked for.
    #[error("{0}")]
    NotFound(String),
    /// The source could not be read.
    #[error("{0}")]
    Unavailable(String),
}

/// Lines (or a final error) as they are read.
pub type LogReceiver = mpsc::Receiver<Result<LogLine, LogError>>;

/// A log source. Reading runs in a task of its own that stops when the
/// receiver is dropped (the client went away).
pub trait LogSource: Send + Sync {
    /// Starts reading according to `query`.
    fn open(&self, query: LogQuery) -> Result<LogReceiver, LogError>;
}
