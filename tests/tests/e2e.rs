//! End to end: six node agents, each in its own network namespace, enrol
//! with single-use tokens and report to the daemon; `hostctl status -o json`
//! shows all six connected and fresh. Then `down --purge` leaves nothing.

use std::time::{Duration, Instant};
use tests::LocalEnv;

const SIX: [&str; 6] = [
    "mgmt-cp",
    "mgmt-worker-0",
    "app1-cp",
    "app1-worker-0",
    "app2-cp",
    "app2-worker-0",
];

#[test]
fn six_agents_enrol_and_report() {
    if !tests::can_run_netns("six_agents_enrol_and_report") {
        return;
    }
    let env = LocalEnv::new(1, &SIX);
    let started = Instant::now();
    let out = env.up(1);
    eprintln!("{out}up took {:.1} s", started.elapsed().as_secs_f64());

    // `up` returns once every agent reported; status must agree, for all six.
    let nodes = env.status_nodes();
    let mut names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    names.sort_unstable();
    let mut want = SIX.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "status lists other nodes");
    for node in &nodes {
        assert!(LocalEnv::is_fresh(node, 3.0), "not fresh: {node:#}");
        assert_eq!(node["vm_state"], "Running", "{node:#}");
        assert!(
            node["reports_stored"].as_u64().unwrap_or(0) >= 1,
            "{node:#}"
        );
    }

    // A second `up` finds everything in place and changes nothing.
    let again = env.up(1);
    assert_eq!(again.matches("unchanged").count(), 6, "{again}");

    // Reports keep flowing (interval 1 s): two more seconds, still fresh.
    std::thread::sleep(Duration::from_secs(2));
    for node in env.status_nodes() {
        assert!(LocalEnv::is_fresh(&node, 3.0), "went stale: {node:#}");
    }
    env.finish();
}
