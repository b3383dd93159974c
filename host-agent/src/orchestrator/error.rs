//! Why a step failed. A [`StepError`] keeps the error that caused it, with
//! that error's own `source()` chain, for as long as the run holds it; it
//! becomes one line ([`StepError::text`], `telemetry::error_chain::chain`)
//! only where it leaves the process: the state file, the terminal, a span.
//!
//! A step says what it was doing, never which step or node it is: the
//! executor puts the step's id in front wherever the error is shown apart
//! from its step (`launch/app1-cp: …`), so no two steps word that prefix
//! differently and none forgets it.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A cause kept with its chain; shared so an outcome can be cloned into
/// the report and the display.
type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// See the module documentation.
#[derive(Clone)]
pub struct StepError(Repr);

#[derive(Clone)]
enum Repr {
    /// The step's own words, with no cause behind them.
    Message(String),
    /// Another error, shown as itself.
    Error(Cause),
    /// What the step was doing when `cause` happened.
    Context(String, Cause),
}

impl StepError {
    /// A failure the step itself describes (a timeout, a refusal).
    pub fn new(message: impl Into<String>) -> StepError {
        StepError(Repr::Message(message.into()))
    }

    /// `err` as the step's failure, its causes kept.
    pub fn from_error(err: impl Error + Send + Sync + 'static) -> StepError {
        StepError(Repr::Error(Arc::new(err)))
    }

    /// `err`, which happened while doing `what` (`issuing an enrolment
    /// token: …`).
    pub fn context(what: impl Into<String>, err: impl Error + Send + Sync + 'static) -> StepError {
        StepError(Repr::Context(what.into(), Arc::new(err)))
    }

    /// The error and its causes on one line (`a: b: c`): what is persisted
    /// and printed.
    pub fn text(&self) -> String {
        ::telemetry::error_chain::chain(self)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Message(m) | Repr::Context(m, _) => f.write_str(m),
            Repr::Error(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StepError").field(&self.text()).finish()
    }
}

impl Error for StepError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0 {
            Repr::Message(_) => None,
            Repr::Error(e) => e.source(),
            Repr::Context(_, e) => Some(e.as_ref()),
        }
    }
}

/// Two errors are the same failure when they read the same.
impl PartialEq for StepError {
    fn eq(&self, other: &StepError) -> bool {
        self.text() == other.text()
    }
}

impl Eq for StepError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("launching the machine")]
    struct Launch(#[source] std::io::Error);

    #[test]
    fn causes_are_kept_until_the_error_is_written_out() {
        let e = StepError::context(
            "creating app1-cp",
            Launch(std::io::Error::other("no space left")),
        );
        assert_eq!(e.to_string(), "creating app1-cp");
        assert!(e.source().is_some());
        assert_eq!(
            e.text(),
            "creating app1-cp: launching the machine: no space left"
        );
        let plain = StepError::from_error(Launch(std::io::Error::other("denied")));
        assert_eq!(plain.to_string(), "launching the machine");
        assert_eq!(plain.text(), "launching the machine: denied");
        assert_eq!(StepError::new("timed out").text(), "timed out");
    }
}
