//! Error messages with their causes.
//!
//! tonic hides the interesting part of a TLS failure ("invalid peer
//! certificate: NotValidForName") several `source()` levels down; logging
//! only the top level would say "transport error" and nothing else.

use std::error::Error;

/// `err: cause: cause …`, skipping causes whose text repeats the previous.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut last = out.clone();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
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
}
