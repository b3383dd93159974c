//! `up`'s graph on the real executor with a provider STAND-IN whose
//! operations take set times (launch 200 ms, enrol 100 ms, prerequisites
//! 300 ms, each varied per node by up to +40 %), over 6 and 60 nodes.
//! Prints the wall time, the graph's critical path, their ratio (target
//! ≤ 1.10) and the serial sum (what doing one thing at a time would cost).
//! State is persisted to a temporary `up-state.json` exactly as in `up`.
//!
//! Run: `cargo bench -p host-agent --bench up_graph`
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

use async_trait::async_trait;
use host_agent::orchestrator::{
    Executor, Graph, Observer, Outcome, STATE_FILE, StateStore, StepError, StepId, StepJob,
    StepKind, StepMessages,
};
use std::sync::Arc;
use std::time::Duration;

/// A STAND-IN for a provider/daemon/node operation: it only takes time.
struct StandInOperation(Duration);

#[async_trait]
impl StepJob for StandInOperation {
    async fn run(&self, _: &StepId, _: &dyn StepMessages) -> Result<(), StepError> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

struct Silent;
impl StepMessages for Silent {
    fn message(&self, _: &StepId, _: &str) {}
}
impl Observer for Silent {
    fn started(&self, _: &StepId) {}
    fn finished(&self, _: &StepId, _: &Outcome, _: Duration) {}
}

/// The stand-in's time for `kind` on node number `i`.
fn cost(kind: StepKind, i: usize) -> Duration {
    let base = match kind {
        StepKind::Render => 5,
        StepKind::Launch => 200,
        StepKind::Enrol => 100,
        StepKind::Prerequisites => 300,
        _ => 0,
    };
    // Deterministic per-node variation, 0–40 %.
    let vary = (i * 37 + kind.as_str().len() * 11) % 41;
    Duration::from_millis(base + base * vary as u64 / 100)
}

fn graph(nodes: usize) -> (Graph, Vec<(StepId, Duration)>) {
    let kinds = [
        StepKind::Render,
        StepKind::Launch,
        StepKind::Enrol,
        StepKind::Prerequisites,
    ];
    let mut g = Graph::new();
    let mut costs = Vec::new();
    for i in 0..nodes {
        let node = format!("node{i:02}");
        let mut prev: Option<StepId> = None;
        for kind in kinds {
            let id = StepId::new(kind, &node);
            let d = cost(kind, i);
            let after = prev.iter().cloned().collect();
            if let Err(e) = g.add(id.clone(), after, Arc::new(StandInOperation(d))) {
                panic!("bench graph: {e}");
            }
            costs.push((id.clone(), d));
            prev = Some(id);
        }
    }
    (g, costs)
}

async fn measure(nodes: usize) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StateStore::open(&dir.path().join(STATE_FILE)).expect("state store");
    let (g, costs) = graph(nodes);
    let lookup = |id: &StepId| {
        costs
            .iter()
            .find(|(c, _)| c == id)
            .map_or(Duration::ZERO, |(_, d)| *d)
    };
    let critical = g.critical_path(lookup);
    let serial: Duration = costs.iter().map(|(_, d)| *d).sum();
    let exec = Executor {
        store: store.clone(),
        observer: Arc::new(Silent),
        grace: Duration::from_secs(1),
    };
    let report = exec
        .run(
            &g,
            std::future::pending::<()>(),
            std::future::pending::<()>(),
        )
        .await
        .expect("valid graph");
    store.flush().expect("state written");
    assert!(report.succeeded());
    let ratio = report.wall.as_secs_f64() / critical.as_secs_f64();
    let ok = ratio <= 1.10;
    println!(
        "up_graph {nodes:>2} nodes ({:>3} steps): wall {:>7.1} ms | critical path {:>7.1} ms | ratio {ratio:.3} (target <= 1.10: {}) | serial sum {:>8.1} ms",
        g.len(),
        report.wall.as_secs_f64() * 1e3,
        critical.as_secs_f64() * 1e3,
        if ok { "ok" } else { "MISSED" },
        serial.as_secs_f64() * 1e3,
    );
    ok
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ok = true;
    for nodes in [6, 60] {
        ok &= rt.block_on(measure(nodes));
    }
    if !ok {
        std::process::exit(1);
    }
}
