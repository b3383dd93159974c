use super::*;
use crate::relay::{ScopeSpans, span_count};
use opentelemetry_proto::tonic::trace::v1::Span;

/// Trace id number `n`.
fn tid(n: u32) -> Vec<u8> {
    let mut id = vec![0xab; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

/// `spans` spans of trace `n`, each named with `pad` bytes.
pub(in crate::relay) fn request(n: u32, spans: usize, pad: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: tid(n),
            span_id: vec![i as u8 + 1; 8],
            name: "x".repeat(pad),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What one [`request`] of 10 spans of 100 bytes is charged when its trace
/// is new to the node (the same for every trace number).
fn unit() -> usize {
    let split = chunk::split(request(0, 10, 100), usize::MAX);
    split
        .chunks
        .iter()
        .map(|c| c.bytes.capacity())
        .sum::<usize>()
        + PIECE_OVERHEAD_BYTES
}

fn add(b: &SpanBuffer, node: &str, n: u32) -> Added {
    b.add(node, request(n, 10, 100))
}

/// Spans of trace `n` the buffer gives up (taking them).
fn taken(b: &SpanBuffer, n: u32) -> usize {
    span_count(&b.take(&tid(n)))
}

fn budget(per_node: usize, total: usize) -> SpanBuffer {
    SpanBuffer::new(Budget { per_node, total })
}

#[test]
fn spans_are_taken_by_trace_id_once() {
    let buffer = SpanBuffer::default();
    assert_eq!(buffer.add("n1", request(1, 3, 5)).stored, 3);
    buffer.add("n1", request(2, 2, 5));
    assert_eq!(taken(&buffer, 1), 3);
    assert_eq!(taken(&buffer, 1), 0);
    assert_eq!(taken(&buffer, 2), 2);
}

#[test]
fn a_trace_sent_in_several_requests_comes_back_whole() {
    let buffer = SpanBuffer::default();
    for spans in [3, 2, 4] {
        buffer.add("n1", request(1, spans, 50));
    }
    buffer.add("n2", request(1, 1, 50));
    assert_eq!(buffer.usage().traces, 1);
    assert_eq!(taken(&buffer, 1), 10);
    assert_eq!(buffer.usage(), Usage::default());
}

#[test]
fn the_oldest_trace_goes_first_when_full() {
    let u = unit();
    let buffer = budget(u * 3 / 2, u * 3 / 2);
    add(&buffer, "n1", 1);
    assert_eq!(add(&buffer, "n1", 2).evicted, 10);
    assert_eq!(taken(&buffer, 1), 0);
    assert_eq!(taken(&buffer, 2), 10);
}

#[test]
fn a_node_over_its_budget_loses_its_own_oldest_traces_only() {
    let u = unit();
    let buffer = budget(3 * u, 100 * u);
    add(&buffer, "other", 99);
    for n in 1..=5 {
        add(&buffer, "n1", n);
        assert!(buffer.node_bytes("n1") <= 3 * u);
    }
    assert_eq!(buffer.node_bytes("n1"), 3 * u);
    let kept: Vec<usize> = (1..=5).map(|n| taken(&buffer, n)).collect();
    assert_eq!(kept, [0, 0, 10, 10, 10]);
    assert_eq!(taken(&buffer, 99), 10);
}

#[test]
fn over_the_total_the_oldest_trace_overall_goes() {
    let u = unit();
    let buffer = budget(10 * u, 5 * u);
    for n in 1..=6 {
        // a1 b2 c3 a4 b5 c6: equal shares, so age alone decides.
        let node = ["a", "b", "c"][(n as usize - 1) % 3];
        add(&buffer, node, n);
        assert!(buffer.usage().bytes <= 5 * u);
    }
    let kept: Vec<usize> = (1..=6).map(|n| taken(&buffer, n)).collect();
    assert_eq!(kept, [0, 10, 10, 10, 10, 10]);
}

#[test]
fn a_flooding_node_cannot_push_out_another_nodes_recent_spans() {
    let u = unit();
    let buffer = budget(10 * u, 30 * u);
    add(&buffer, "quiet", 1);
    for n in 100..1100 {
        add(&buffer, "flood", n);
    }
    add(&buffer, "quiet", 2);
    // Five flooding nodes together exceed the total several times over;
    // each is cut to its share, the quiet node keeps everything.
    for n in 2000..4000 {
        let node = format!("flood{}", n % 5);
        add(&buffer, &node, n);
        assert!(buffer.node_bytes(&node) <= 10 * u);
        assert!(buffer.usage().bytes <= 30 * u);
    }
    // One request far over the node's budget adds at most the budget.
    let mut big = request(5000, 0, 0);
    for n in 5000..6000 {
        big.resource_spans
            .extend(request(n, 10, 100).resource_spans);
    }
    let added = buffer.add("flood0", big);
    assert!(added.stored > 0 && added.refused > 0);
    assert_eq!(added.stored + added.refused, 10_000);
    assert!(buffer.node_bytes("flood0") <= 10 * u);

    assert_eq!(taken(&buffer, 1), 10, "the quiet node's first trace");
    assert_eq!(
        taken(&buffer, 2),
        10,
        "the quiet node's trace during the flood"
    );
}

#[test]
fn a_node_within_its_share_keeps_its_spans_even_when_one_node_may_fill_the_total() {
    let u = unit();
    let buffer = budget(10 * u, 10 * u);
    add(&buffer, "quiet", 1);
    for n in 100..200 {
        add(&buffer, "flood", n);
    }
    assert!(buffer.usage().bytes <= 10 * u);
    assert_eq!(taken(&buffer, 1), 10);
}

#[test]
fn bytes_accounting_returns_to_zero_after_take() {
    let u = unit();
    let buffer = budget(4 * u, 6 * u);
    for n in 1..=20 {
        add(&buffer, "a", n);
        add(&buffer, "b", n);
        add(&buffer, "c", n + 100);
    }
    let usage = buffer.usage();
    assert!(usage.bytes > 0 && usage.bytes <= 6 * u, "{usage:?}");
    assert_eq!(usage.nodes, 3);
    // Both nodes' spans of a shared trace come back together.
    assert_eq!(taken(&buffer, 20), 20);
    for n in (1..=19).chain(101..=120) {
        taken(&buffer, n);
    }
    assert_eq!(buffer.usage(), Usage::default());
    assert_eq!(buffer.node_bytes("a"), 0);
    let inner = buffer.inner.lock().map_err(|_| "poisoned");
    assert!(inner.is_ok_and(|t| t.pieces.is_empty() && t.nodes.is_empty()));
}

#[test]
fn spans_with_an_invalid_trace_id_are_refused() {
    let buffer = SpanBuffer::default();
    let mut bad = request(1, 2, 5);
    bad.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1; 3];
    let added = buffer.add("n1", bad);
    assert_eq!((added.stored, added.refused), (1, 1));
    assert!(buffer.take(&[1; 3]).is_empty());
}
