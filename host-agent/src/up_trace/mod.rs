//! Tracing of `hostctl up` (docs/tracing.md): one trace per run, its id
//! printed at the start and the end; a span per step ([`observer`]); node
//! spans relayed through the daemon and merged at the end ([`run`]).
//! Nothing here can fail a run: every problem becomes one line on stderr.

pub mod observer;
pub mod platform;
pub mod run;

pub use observer::TracedObserver;
pub use run::UpTrace;
