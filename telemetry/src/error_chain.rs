//! Error messages with their causes: the one formatter of a `source()`
//! chain for both agents (libraries keep their `#[source]` chains; the
//! binaries' edges — logs, persisted step errors, the terminal — print them
//! with this).
//!
//! tonic hides the interesting part of a TLS failure ("invalid peer
//! certificate: NotValidForName") several `source()` levels down; logging
//! only the top level would say "transport error" and nothing else.

use std::error::Error;

/// `err: cause: cause …`, skipping a cause whose text the message so far
/// already contains (many errors repeat their source in their own text).
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn includes_causes() {
        let e = Outer(std::io::Error::other("inner cause"));
        assert_eq!(chain(&e), "outer: inner cause");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn skips_a_cause_the_message_already_says() {
        let e = Repeats(std::io::Error::other("inner cause"));
        assert_eq!(chain(&e), "outer: inner cause");
    }
}
