//! The one logger every `hostctl` command installs, so that the warnings
//! the code emits with `tracing` (QEMU falling back to TCG software
//! emulation, a Multipass launch that timed out with the machine up, a
//! cleanup that failed) reach the user instead of being dropped for want
//! of a subscriber. `up` adds its OpenTelemetry layer to the same
//! subscriber ([`crate::up_trace::UpTrace`]) rather than replacing it.
//!
//! Logging never fails the code that logs: a line that cannot be written
//! is dropped. (tracing-subscriber's default is to report the failure with
//! `eprintln!`, which panics when stderr is the file that failed — a
//! full disk turned every log line of the daemon into a panic, issue 13,
//! item 2.) A daemon started by the CLI logs to its capped, rotated file
//! ([`crate::daemon::logfile`]) rather than stderr.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::Subscriber;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::daemon::logfile::{LogFile, MAX_LOG_BYTES};
use crate::environment;

/// What commands show without `HOSTCTL_LOG`: warnings and errors (the
/// daemon, a service, logs `info`).
pub const CLI_DEFAULT: &str = "warn";

/// Human-readable lines, filtered by `HOSTCTL_LOG` else `default`: on
/// stderr, or in the log file named by `HOSTCTL_DAEMON_LOG` (set by the
/// CLI for a daemon it starts).
pub fn stderr_layer<S>(default: &str) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter =
        EnvFilter::try_from_env(environment::LOG.name).unwrap_or_else(|_| EnvFilter::new(default));
    let (writer, ansi) = match environment::DAEMON_LOG.os() {
        Some(path) => {
            // Set only by the CLI for a daemon whose stdout and stderr it
            // opened on the same file (daemon::lifecycle).
            let file = LogFile::new(PathBuf::from(path), MAX_LOG_BYTES).following_stdio();
            (BoxMakeWriter::new(Arc::new(file)), false)
        }
        None => (BoxMakeWriter::new(std::io::stderr), true),
    };
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .with_target(false)
        .with_filter(filter)
}

/// Installs the logger alone (every command but `up`, which adds its
/// trace layer). A second call does nothing.
pub fn init(default: &str) {
    let _ = tracing_subscriber::registry()
        .with(stderr_layer(default))
        .try_init();
}
