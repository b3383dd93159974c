//! The host's buffer of relayed node spans, bounded in bytes per node and
//! in total (issue 13, item 7).
//!
//! It used to be bounded by a span count shared by every node. A span is as
//! large as its sender makes it, so one node certificate could grow the
//! daemon by hundreds of MiB, and with one shared bound the flooding node
//! pushed every other node's spans out. Now:
//!
//! - each node (the CN of the certificate it called with) has a byte
//!   budget of its own; one request adds at most that budget, and a node
//!   over it loses its own oldest traces (its spans in them, not other
//!   nodes') until it is back within it;
//! - all nodes together have a total budget; over it, the oldest trace of
//!   a node holding more than an equal share of the total (total / nodes
//!   holding spans) goes, so a node within that share never loses spans to
//!   another node's volume.
//!
//! What is charged is what is held: spans are kept encoded, one buffer per
//! (node, trace), charged for that buffer's capacity plus a fixed overhead
//! for the entries that file it. Memory returns when spans go: the maps
//! are `BTreeMap`s, which free their nodes as entries are removed (a
//! `HashMap` or `VecDeque` would keep the capacity of the largest flood it
//! ever held).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message as _;

use super::chunk::{self, Chunk, TraceId};

/// Bytes one node's spans may occupy. A provisioning run gives a node
/// tens of spans (one per RPC served and per prerequisite step), each well
/// under a KiB: eight MiB is room to spare for runs not yet taken, and 8
/// nodes at their budget fill [`TOTAL_BUDGET_BYTES`] exactly.
pub const NODE_BUDGET_BYTES: usize = 8 * 1024 * 1024;

/// Bytes all nodes' spans together may occupy.
pub const TOTAL_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Charged per (node, trace) on top of the capacity of the buffer holding
/// its encoded spans: an upper estimate of the map entries that file it
/// (measured at about 250 bytes), so that a flood of one-span traces is
/// charged at least what it occupies rather than its few encoded bytes.
pub const PIECE_OVERHEAD_BYTES: usize = 512;

/// Byte budgets of a [`SpanBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Per node; also the most one request can add.
    pub per_node: usize,
    /// All nodes together.
    pub total: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_node: NODE_BUDGET_BYTES,
            total: TOTAL_BUDGET_BYTES,
        }
    }
}

/// What [`SpanBuffer::add`] did with a request, in spans.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Filed under their trace ids.
    pub stored: usize,
    /// Not filed: a trace id that is not 16 bytes, or more than the node's
    /// budget in one request.
    pub refused: usize,
    /// Removed to bring the node, or all nodes, back within budget (the
    /// node's own oldest first; another node's only when it holds more
    /// than its share of the total).
    pub evicted: usize,
}

/// What a [`SpanBuffer`] holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Charged bytes (encoded spans plus overheads).
    pub bytes: usize,
    /// Nodes with spans held.
    pub nodes: usize,
    /// Trace ids with spans held.
    pub traces: usize,
}

/// Recent relayed spans per trace id, bounded by [`Budget`].
#[derive(Debug)]
pub struct SpanBuffer {
    inner: Mutex<Traces>,
    budget: Budget,
}

#[derive(Debug, Default)]
struct Traces {
    /// (trace id, node) → that node's spans in the trace. One flat map:
    /// a map per trace would cost a whole B-tree node for one entry.
    pieces: BTreeMap<(TraceId, Node), Piece>,
    nodes: BTreeMap<Node, NodeUse>,
    /// Sum of every node's `bytes`.
    bytes: usize,
    next_seq: u64,
}

/// A node's name, shared by its entries (the name is stored once).
type Node = Arc<str>;

/// One node's spans in one trace.
#[derive(Debug)]
struct Piece {
    /// When the node's first span of the trace arrived (its age).
    seq: u64,
    /// `resource_spans` fields of an `ExportTraceServiceRequest`, one per
    /// chunk, concatenated.
    data: Vec<u8>,
    spans: usize,
    bytes: usize,
}

#[derive(Debug, Default)]
struct NodeUse {
    bytes: usize,
    /// The node's pieces by age, oldest first.
    pieces: BTreeMap<u64, TraceId>,
}

impl Default for SpanBuffer {
    fn default() -> Self {
        SpanBuffer::new(Budget::default())
    }
}

impl SpanBuffer {
    /// An empty buffer within `budget`.
    pub fn new(budget: Budget) -> SpanBuffer {
        SpanBuffer {
            inner: Mutex::default(),
            budget,
        }
    }

    /// Files every span of `request`, which `node` sent, under its trace
    /// id (keeping its resource and scope), then evicts what is over
    /// budget.
    pub fn add(&self, node: &str, request: ExportTraceServiceRequest) -> Added {
        // Encoding happens before the lock: other nodes' requests and the
        // runs taking their traces do not wait for it.
        let split = chunk::split(request, self.budget.per_node);
        let mut added = Added {
            refused: split.refused,
            ..Added::default()
        };
        let Ok(mut traces) = self.inner.lock() else {
            added.refused += split.chunks.iter().map(|c| c.spans).sum::<usize>();
            return added;
        };
        let node = traces.name(node);
        for chunk in split.chunks {
            added.stored += chunk.spans;
            traces.insert(&node, chunk);
        }
        added.evicted += traces.evict_node(&node, self.budget.per_node);
        added.evicted += traces.evict_total(self.budget.total);
        added
    }

    /// Removes and returns the spans of `trace_id`, every node's.
    pub fn take(&self, trace_id: &[u8]) -> Vec<ResourceSpans> {
        let Ok(trace) = TraceId::try_from(trace_id) else {
            return Vec::new();
        };
        let Ok(mut traces) = self.inner.lock() else {
            return Vec::new();
        };
        let first = (trace, Node::from(""));
        let keys: Vec<(TraceId, Node)> = traces
            .pieces
            .range(first..)
            .take_while(|((t, _), _)| *t == trace)
            .map(|(k, _)| k.clone())
            .collect();
        let mut pieces: Vec<Piece> = keys
            .into_iter()
            .filter_map(|key| {
                let piece = traces.pieces.remove(&key)?;
                traces.release(&key.1, &piece);
                Some(piece)
            })
            .collect();
        drop(traces);
        pieces.sort_by_key(|p| p.seq);
        let mut request = ExportTraceServiceRequest::default();
        for piece in &pieces {
            // The data was encoded here, so this cannot fail; if it did,
            // that node's part is lost rather than the whole trace.
            if let Err(e) = request.merge(piece.data.as_slice()) {
                tracing::warn!("buffered spans do not decode: {e}");
            }
        }
        request.resource_spans
    }

    /// What the buffer holds now.
    pub fn usage(&self) -> Usage {
        self.inner.lock().map_or_else(
            |_| Usage::default(),
            |t| {
                let mut traces: Vec<&TraceId> = t.pieces.keys().map(|(id, _)| id).collect();
                traces.dedup();
                Usage {
                    bytes: t.bytes,
                    nodes: t.nodes.len(),
                    traces: traces.len(),
                }
            },
        )
    }

    /// Bytes charged to `node` now.
    pub fn node_bytes(&self, node: &str) -> usize {
        self.inner
            .lock()
            .ok()
            .and_then(|t| t.nodes.get(node).map(|u| u.bytes))
            .unwrap_or(0)
    }
}

impl Traces {
    /// `node`'s shared name (a new one for a node without spans).
    fn name(&self, node: &str) -> Node {
        self.nodes
            .get_key_value(node)
            .map_or_else(|| Node::from(node), |(name, _)| name.clone())
    }

    fn insert(&mut self, node: &Node, chunk: Chunk) {
        let key = (chunk.trace, node.clone());
        let cost = match self.pieces.get_mut(&key) {
            Some(piece) => {
                let before = piece.data.capacity();
                piece.data.extend_from_slice(&chunk.bytes);
                piece.spans += chunk.spans;
                let cost = piece.data.capacity() - before;
                piece.bytes += cost;
                cost
            }
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                // The chunk's own buffer, allocated to its exact size.
                let cost = chunk.bytes.capacity() + PIECE_OVERHEAD_BYTES;
                let piece = Piece {
                    seq,
                    data: chunk.bytes,
                    spans: chunk.spans,
                    bytes: cost,
                };
                self.pieces.insert(key, piece);
                self.nodes
                    .entry(node.clone())
                    .or_default()
                    .pieces
                    .insert(seq, chunk.trace);
                cost
            }
        };
        if let Some(u) = self.nodes.get_mut(node) {
            u.bytes += cost;
        }
        self.bytes += cost;
    }

    /// Drops `node`'s oldest pieces until it is within `limit`; returns
    /// the spans dropped.
    fn evict_node(&mut self, node: &Node, limit: usize) -> usize {
        let mut evicted = 0;
        while let Some(u) = self.nodes.get(node)
            && u.bytes > limit
            && let Some((_, &trace)) = u.pieces.first_key_value()
        {
            evicted += self.remove(node.clone(), trace);
        }
        evicted
    }

    /// Drops pieces until all nodes together are within `limit`: each
    /// time the oldest piece among the nodes holding more than an equal
    /// share of `limit` (while the total is over, at least one does).
    fn evict_total(&mut self, limit: usize) -> usize {
        let mut evicted = 0;
        while self.bytes > limit {
            let share = limit / self.nodes.len().max(1);
            let victim = self
                .nodes
                .iter()
                .filter(|(_, u)| u.bytes > share)
                .filter_map(|(n, u)| u.pieces.first_key_value().map(|(s, t)| (*s, n, *t)))
                .min_by_key(|(seq, _, _)| *seq)
                .map(|(_, n, t)| (n.clone(), t));
            let Some((node, trace)) = victim else {
                break;
            };
            evicted += self.remove(node, trace);
        }
        evicted
    }

    /// Drops `node`'s piece of `trace`; returns its span count.
    fn remove(&mut self, node: Node, trace: TraceId) -> usize {
        let Some(piece) = self.pieces.remove(&(trace, node.clone())) else {
            return 0;
        };
        self.release(&node, &piece);
        piece.spans
    }

    /// Takes `piece`, already out of `pieces`, off its node's account.
    fn release(&mut self, node: &Node, piece: &Piece) {
        if let Some(u) = self.nodes.get_mut(node) {
            u.bytes = u.bytes.saturating_sub(piece.bytes);
            u.pieces.remove(&piece.seq);
            if u.pieces.is_empty() {
                self.nodes.remove(node);
            }
        }
        self.bytes = self.bytes.saturating_sub(piece.bytes);
    }
}

#[cfg(test)]
pub(super) mod tests;
