//! `hostctl up --nodes-only` on the local provider with 6 and 60 nodes —
//! real node agents in network namespaces, the release `hostctl` and the
//! shipped (`node-dist`) agent — and, per node, the share of its chain
//! (render → launch → enrol) that the enrol step took, from the step
//! times `up` records in `up-state.json`.
//!
//! ```text
//! cargo build --profile node-dist -p node-agent && cargo build --release -p host-agent
//! HOSTCTL_NODE_AGENT=$CARGO_TARGET_DIR/node-dist/node-agent \
//!     cargo bench -p tests --bench up_local       # UP_LOCAL_NODES=6,60 by default
//! ```
//!
//! `hostctl` is the release build beside this benchmark
//! (`target/release/hostctl`); the agent is whatever `HOSTCTL_NODE_AGENT`
//! names, printed first.
//!
//! Needs root (network namespaces), like the local-provider suites.
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks write fixtures and run the binaries under test"
)]

use std::path::Path;

use serde_json::Value;
use tests::LocalEnv;
use topology::{Address, NodeRole};

/// The node network of this benchmark: `10.251.97.0/24`.
const NET: u8 = 97;
const DEFAULT_SIX: [&str; 6] = [
    "mgmt-cp",
    "mgmt-worker-0",
    "app1-cp",
    "app1-worker-0",
    "app2-cp",
    "app2-worker-0",
];

/// Rewrites the environment's topology with `extra` more workers, spread
/// over the three clusters at host numbers 40 and up.
fn add_workers(env: &LocalEnv, extra: usize) {
    let text = std::fs::read_to_string(&env.topology).expect("topology");
    let mut t = topology::parse(&text, "hostctl.yaml")
        .expect("the environment's topology")
        .topology;
    let template: Vec<_> = t
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::Worker)
        .cloned()
        .collect();
    for i in 0..extra {
        let mut n = template[i % template.len()].clone();
        n.name = format!("{}-worker-{}", n.cluster, 1 + i / template.len());
        n.address = Address::Host(40 + i as u32);
        t.nodes.push(n);
    }
    std::fs::write(&env.topology, t.to_yaml()).expect("write topology");
}

fn secs(step: &Value, field: &str) -> Option<f64> {
    step.get(field).and_then(Value::as_f64)
}

/// Per node: (chain seconds, enrol seconds), from `up-state.json`.
fn chains(home: &Path) -> Vec<(String, f64, f64)> {
    let text = std::fs::read_to_string(home.join("up-state.json")).expect("up-state.json");
    let state: Value = serde_json::from_str(&text).expect("JSON");
    let steps = state["steps"].as_object().expect("steps");
    let mut out = Vec::new();
    for (id, enrol) in steps {
        let Some(node) = id.strip_prefix("enrol/") else {
            continue;
        };
        let render = &steps[&format!("render/{node}")];
        let (Some(start), Some(e0), Some(e1)) = (
            secs(render, "startedAt"),
            secs(enrol, "startedAt"),
            secs(enrol, "finishedAt"),
        ) else {
            continue;
        };
        out.push((node.to_owned(), e1 - start, e1 - e0));
    }
    out
}

fn run(nodes: usize) {
    let env = LocalEnv::new(NET, &DEFAULT_SIX);
    if nodes == sizes_first() {
        println!(
            "hostctl {} | node agent {}",
            env.bins.hostctl.display(),
            env.bins.node_agent.display()
        );
    }
    if nodes > DEFAULT_SIX.len() {
        add_workers(&env, nodes - DEFAULT_SIX.len());
    }
    let started = std::time::Instant::now();
    env.up(1);
    let wall = started.elapsed().as_secs_f64();
    let mut rows = chains(env.home());
    rows.sort_by(|a, b| a.2.total_cmp(&b.2));
    let shares: Vec<f64> = rows.iter().map(|(_, chain, enrol)| enrol / chain).collect();
    let mut sorted = shares.clone();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let enrol: Vec<f64> = rows.iter().map(|r| r.2 * 1e3).collect();
    let chain: Vec<f64> = rows.iter().map(|r| r.1 * 1e3).collect();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "up_local {nodes:>2} nodes: wall {wall:.2} s | per node: chain median {:.0} ms, enrol median {:.0} ms (max {:.0}) | enrol share of the chain: min {:.0} %, median {:.0} %, max {:.0} %",
        median(&chain),
        median(&enrol),
        enrol.last().copied().unwrap_or(0.0),
        pick(0.0) * 100.0,
        pick(0.5) * 100.0,
        pick(1.0) * 100.0,
    );
    env.finish();
}

fn sizes() -> Vec<usize> {
    std::env::var("UP_LOCAL_NODES")
        .unwrap_or_else(|_| "6,60".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn sizes_first() -> usize {
    sizes().first().copied().unwrap_or(0)
}

fn main() {
    if !tests::can_run_netns("up_local") {
        return;
    }
    for n in sizes() {
        run(n);
    }
}
