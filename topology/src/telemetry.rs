//! The optional `telemetry:` section: where `hostctl up` sends its traces
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is not set, so a team can keep the
//! collector's address with the environment it describes.

use crate::mirror::MirrorUrl;
use serde::Serialize;

/// Trace export settings. The standard `OTEL_*` variables win over these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Telemetry {
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317` (Tempo on the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<MirrorUrl>,
}
