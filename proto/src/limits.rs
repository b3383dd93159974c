//! Byte limits both agents must agree on. The host enforces them on what a
//! node sends; the node agent keeps under them so that nothing it sends is
//! refused for size (issue 13, items 8 and 12).

/// Largest encoded `NodeReport` the host accepts and stores. A report is
/// health, versions and check results: a few KiB in practice. The cap sits
/// far below the gRPC transport limit (4 MiB) so that one node cannot make
/// the report store grow by megabytes per report; a report over it is
/// refused by the host and trimmed (or dropped, saying so) by the agent.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
