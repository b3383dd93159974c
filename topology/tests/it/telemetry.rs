//! The optional `telemetry:` section: the collector `hostctl up` falls back
//! to when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset.

use topology::{default_topology, parse};

#[test]
fn telemetry_parses_round_trips_and_the_default_has_none() {
    assert_eq!(default_topology().telemetry, None);
    let src = format!(
        "{}telemetry:\n  otlpEndpoint: http://127.0.0.1:4317\n",
        topology::default_yaml()
    );
    let loaded = parse(&src, "t.yaml").expect("valid telemetry loads");
    let endpoint = loaded
        .topology
        .telemetry
        .as_ref()
        .and_then(|t| t.otlp_endpoint.as_ref())
        .expect("endpoint kept");
    assert_eq!(endpoint.as_str(), "http://127.0.0.1:4317");
    // What render writes loads back with the same setting.
    let again = parse(&loaded.topology.to_yaml(), "again.yaml").expect("emitted form loads");
    assert_eq!(again.topology.telemetry, loaded.topology.telemetry);
}

#[test]
fn a_misspelt_telemetry_key_is_named() {
    let src = format!(
        "{}telemetry:\n  otlpEndpiont: http://127.0.0.1:4317\n",
        topology::default_yaml()
    );
    let err = parse(&src, "t.yaml").expect_err("unknown key refused");
    let text = err.to_string();
    assert!(
        text.contains("otlpEndpiont") && text.contains("otlpEndpoint"),
        "{text}"
    );
}
