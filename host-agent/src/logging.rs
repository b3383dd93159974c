//! The one stderr logger every `hostctl` command installs, so that the
//! warnings the code emits with `tracing` (QEMU falling back to TCG
//! software emulation, a Multipass launch that timed out with the machine
//! up, a cleanup that failed) reach the user instead of being dropped for
//! want of a subscriber. `up` adds its OpenTelemetry layer to the same
//! subscriber ([`crate::telemetry::UpTrace`]) rather than replacing it.

use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// The level filter (`warn`, `info`, `debug`, or a full `EnvFilter`
/// directive such as `host_agent::provider=debug`).
pub const LOG_ENV: &str = "HOSTCTL_LOG";

/// What commands show without `HOSTCTL_LOG`: warnings and errors (the
/// daemon, a service, logs `info`).
pub const CLI_DEFAULT: &str = "warn";

/// Human-readable lines on stderr, filtered by `HOSTCTL_LOG` else `default`.
pub fn stderr_layer<S>(default: &str) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter)
}

/// Installs the stderr logger alone (every command but `up`, which adds
/// its trace layer). A second call does nothing.
pub fn init(default: &str) {
    let _ = tracing_subscriber::registry()
        .with(stderr_layer(default))
        .try_init();
}
