//! Command output on stdout. `print!` panics when stdout is a closed pipe
//! (`hostctl render | head`, `hostctl completion zsh | head` exited 101
//! with a panic message); these functions turn that into [`StdoutClosed`],
//! which `main` treats as a quiet, successful end — the reader has what it
//! wanted, as with `git log | head`.

use std::fmt::Display;
use std::io::{ErrorKind, Write};

/// The reader of stdout went away.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct StdoutClosed;

/// Writes `text` as it is and flushes it (progress and `--follow` output must
/// not wait in a buffer).
pub fn write(text: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => anyhow::Error::new(StdoutClosed),
            _ => anyhow::Error::new(e).context("cannot write to stdout"),
        })
}

/// Writes `text` and a newline.
pub fn line(text: impl Display) -> anyhow::Result<()> {
    write(format!("{text}\n"))
}

/// Whether `err` (anywhere in its chain) is [`StdoutClosed`].
pub fn is_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<StdoutClosed>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_stdout_is_recognised_through_context() {
        let err = anyhow::Error::new(StdoutClosed).context("printing the table");
        assert!(is_closed(&err));
        assert!(!is_closed(&anyhow::anyhow!("other")));
    }
}
