//! hostctl's own metrics (docs/observability.md, "hostctl's own
//! metrics"): the text exposition both agents render ([`text`]) and the
//! mutual-TLS `GET /metrics` server they serve it with ([`server`]).

pub mod server;
pub mod text;

pub use server::{Authorize, DEFAULT_LIMITS, MetricsServerLimits, Render, serve};
pub use text::{CONTENT_TYPE, Counter, CounterVec, Exposition, Gauge, Histogram, Kind};
