//! The orchestrator's executor with stand-in step jobs (sleeps and
//! counters): parallelism, dependency order, failure isolation, persisted
//! state and the rules for re-running after a crash.

use async_trait::async_trait;
use host_agent::orchestrator::{
    Executor, Graph, Observer, Outcome, STATE_FILE, StateStore, StepError, StepId, StepJob,
    StepKind, StepMessages, StepStatus, UpState,
};
use host_agent::state_file::StateDocument as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
// Virtual time: every test runs with tokio's clock paused, so the stand-in
// jobs' sleeps take no real time and the wall times below are exact.
use tokio::time::Instant;

/// A stand-in job: sleeps, records when it ran, may fail, and reports a
/// postcondition chosen by the test.
#[derive(Default)]
struct StandInJob {
    sleep: Duration,
    fail: bool,
    satisfied: bool,
    runs: AtomicUsize,
    window: Mutex<Option<(Instant, Instant)>>,
}

impl StandInJob {
    fn new(ms: u64) -> Arc<StandInJob> {
        Arc::new(StandInJob {
            sleep: Duration::from_millis(ms),
            ..StandInJob::default()
        })
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn window(&self) -> (Instant, Instant) {
        self.window.lock().unwrap().expect("the job ran")
    }
}

#[async_trait]
impl StepJob for StandInJob {
    async fn satisfied(&self) -> Result<bool, StepError> {
        Ok(self.satisfied)
    }

    async fn run(&self, _: &StepId, _: &dyn StepMessages) -> Result<(), StepError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        tokio::time::sleep(self.sleep).await;
        *self.window.lock().unwrap() = Some((start, Instant::now()));
        if self.fail {
            Err(StepError::new("stand-in failure: disk on fire"))
        } else {
            Ok(())
        }
    }
}

/// A step that must not be cut off (as a launch).
struct Uninterruptible(Arc<StandInJob>);

#[async_trait]
impl StepJob for Uninterruptible {
    async fn run(&self, s: &StepId, m: &dyn StepMessages) -> Result<(), StepError> {
        self.0.run(s, m).await
    }
    fn interruptible(&self) -> bool {
        false
    }
}

struct Quiet;
impl StepMessages for Quiet {
    fn message(&self, _: &StepId, _: &str) {}
}
impl Observer for Quiet {
    fn started(&self, _: &StepId) {}
    fn finished(&self, _: &StepId, _: &Outcome, _: Duration) {}
}

fn id(kind: StepKind, node: &str) -> StepId {
    StepId::new(kind, node)
}

fn executor(dir: &std::path::Path) -> (Executor, StateStore) {
    let store = StateStore::open(&dir.join(STATE_FILE)).unwrap();
    let exec = Executor {
        store: store.clone(),
        observer: Arc::new(Quiet),
        grace: Duration::from_secs(5),
    };
    (exec, store)
}

async fn never() {
    std::future::pending::<()>().await;
}

#[tokio::test(start_paused = true)]
async fn independent_steps_overlap_and_dependencies_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, _) = executor(dir.path());
    let (a1, a2, b1, b2) = (
        StandInJob::new(200),
        StandInJob::new(100),
        StandInJob::new(200),
        StandInJob::new(100),
    );
    let mut g = Graph::new();
    g.add(id(StepKind::Launch, "a"), vec![], a1.clone())
        .unwrap();
    g.add(
        id(StepKind::Enrol, "a"),
        vec![id(StepKind::Launch, "a")],
        a2.clone(),
    )
    .unwrap();
    g.add(id(StepKind::Launch, "b"), vec![], b1.clone())
        .unwrap();
    g.add(
        id(StepKind::Enrol, "b"),
        vec![id(StepKind::Launch, "b")],
        b2.clone(),
    )
    .unwrap();
    let report = exec.run(&g, never(), never()).await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    // Independent launches overlap; each enrol starts after its launch.
    assert!(a1.window().0 < b1.window().1 && b1.window().0 < a1.window().1);
    assert!(a2.window().0 >= a1.window().1);
    assert!(b2.window().0 >= b1.window().1);
    // Two chains of 300 ms (virtual) in parallel: the longest chain, not
    // the 600 ms of running them one after the other.
    assert_eq!(report.wall, Duration::from_millis(300), "{:?}", report.wall);
}

#[tokio::test(start_paused = true)]
async fn a_failure_blocks_only_its_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, store) = executor(dir.path());
    let bad = Arc::new(StandInJob {
        fail: true,
        ..StandInJob::default()
    });
    let (after_bad, good, after_good) =
        (StandInJob::new(0), StandInJob::new(50), StandInJob::new(0));
    let mut g = Graph::new();
    g.add(id(StepKind::Launch, "bad"), vec![], bad.clone())
        .unwrap();
    g.add(
        id(StepKind::Enrol, "bad"),
        vec![id(StepKind::Launch, "bad")],
        after_bad.clone(),
    )
    .unwrap();
    g.add(id(StepKind::Launch, "good"), vec![], good.clone())
        .unwrap();
    g.add(
        id(StepKind::Enrol, "good"),
        vec![id(StepKind::Launch, "good")],
        after_good.clone(),
    )
    .unwrap();
    let report = exec.run(&g, never(), never()).await.unwrap();
    assert!(!report.succeeded());
    let outcome = |s: &StepId| report.results[s].outcome.clone();
    assert!(
        matches!(outcome(&id(StepKind::Launch, "bad")), Outcome::Failed(e) if e.text().contains("disk on fire"))
    );
    assert_eq!(
        outcome(&id(StepKind::Enrol, "bad")),
        Outcome::Blocked {
            by: id(StepKind::Launch, "bad")
        }
    );
    assert_eq!(after_bad.runs(), 0);
    assert_eq!(outcome(&id(StepKind::Enrol, "good")), Outcome::Done);
    assert_eq!(report.failed().len(), 1);
    store.flush().unwrap();
    let saved = UpState::load(&dir.path().join(STATE_FILE)).unwrap();
    assert_eq!(
        saved.status(&id(StepKind::Launch, "bad")),
        Some(StepStatus::Failed)
    );
    // The executor names the failed step; the job's error does not.
    assert_eq!(
        saved.steps[&id(StepKind::Launch, "bad")].error.as_deref(),
        Some("launch/bad: stand-in failure: disk on fire")
    );
    assert_eq!(
        report.results[&id(StepKind::Launch, "bad")]
            .failure()
            .as_deref(),
        Some("launch/bad: stand-in failure: disk on fire")
    );
    assert_eq!(
        saved.status(&id(StepKind::Enrol, "bad")),
        Some(StepStatus::Pending)
    );
    assert_eq!(
        saved.status(&id(StepKind::Enrol, "good")),
        Some(StepStatus::Done)
    );
}

#[tokio::test(start_paused = true)]
async fn a_rerun_skips_done_steps_whose_postcondition_holds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (exec, store) = executor(dir.path());
        let mut g = Graph::new();
        g.add(id(StepKind::Launch, "a"), vec![], StandInJob::new(0))
            .unwrap();
        exec.run(&g, never(), never()).await.unwrap();
        store.flush().unwrap();
    }
    // Reloaded from disk by a new store, as a new `hostctl up` would.
    let (exec, _) = executor(dir.path());
    let holds = Arc::new(StandInJob {
        satisfied: true,
        ..StandInJob::default()
    });
    let mut g = Graph::new();
    g.add(id(StepKind::Launch, "a"), vec![], holds.clone())
        .unwrap();
    let report = exec.run(&g, never(), never()).await.unwrap();
    assert_eq!(
        report.results[&id(StepKind::Launch, "a")].outcome,
        Outcome::AlreadyDone
    );
    assert_eq!(holds.runs(), 0);

    // The postcondition no longer holds (the machine was deleted): re-run.
    let (exec, _) = executor(dir.path());
    let gone = StandInJob::new(0);
    let mut g = Graph::new();
    g.add(id(StepKind::Launch, "a"), vec![], gone.clone())
        .unwrap();
    let report = exec.run(&g, never(), never()).await.unwrap();
    assert_eq!(
        report.results[&id(StepKind::Launch, "a")].outcome,
        Outcome::Done
    );
    assert_eq!(gone.runs(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_step_left_running_by_a_crash_is_rechecked_not_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    // What a killed `up` leaves: the launch recorded as running.
    let mut crashed = UpState::default();
    crashed.steps.insert(
        id(StepKind::Launch, "a"),
        serde_json::from_value(serde_json::json!({"status": "running", "startedAt": 1.0})).unwrap(),
    );
    crashed.save(&path).unwrap();
    let (exec, store) = executor(dir.path());
    let launched_already = Arc::new(StandInJob {
        satisfied: true,
        ..StandInJob::default()
    });
    let next = StandInJob::new(0);
    let mut g = Graph::new();
    g.add(id(StepKind::Launch, "a"), vec![], launched_already.clone())
        .unwrap();
    g.add(
        id(StepKind::Enrol, "a"),
        vec![id(StepKind::Launch, "a")],
        next.clone(),
    )
    .unwrap();
    let report = exec.run(&g, never(), never()).await.unwrap();
    assert!(report.succeeded());
    assert_eq!(launched_already.runs(), 0, "the launch must not run twice");
    assert_eq!(next.runs(), 1);
    store.flush().unwrap();
    assert_eq!(
        UpState::load(&path)
            .unwrap()
            .status(&id(StepKind::Launch, "a")),
        Some(StepStatus::Done)
    );
}

#[tokio::test(start_paused = true)]
async fn interruption_stops_new_steps_and_lets_launches_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, store) = executor(dir.path());
    let launch = StandInJob::new(300);
    let wait = StandInJob::new(5_000);
    let after = StandInJob::new(0);
    let mut g = Graph::new();
    g.add(
        id(StepKind::Launch, "a"),
        vec![],
        Arc::new(Uninterruptible(launch.clone())),
    )
    .unwrap();
    g.add(
        id(StepKind::Enrol, "a"),
        vec![id(StepKind::Launch, "a")],
        after.clone(),
    )
    .unwrap();
    g.add(id(StepKind::Enrol, "b"), vec![], wait.clone())
        .unwrap();
    let report = exec
        .run(&g, tokio::time::sleep(Duration::from_millis(100)), never())
        .await
        .unwrap();
    assert!(report.interrupted);
    assert!(report.wall < Duration::from_secs(2), "{:?}", report.wall);
    assert_eq!(
        report.results[&id(StepKind::Launch, "a")].outcome,
        Outcome::Done
    );
    assert_eq!(
        report.results[&id(StepKind::Enrol, "b")].outcome,
        Outcome::Interrupted
    );
    assert_eq!(
        report.results[&id(StepKind::Enrol, "a")].outcome,
        Outcome::NotStarted
    );
    assert_eq!(after.runs(), 0);
    store.flush().unwrap();
    let saved = UpState::load(&dir.path().join(STATE_FILE)).unwrap();
    assert_eq!(
        saved.status(&id(StepKind::Launch, "a")),
        Some(StepStatus::Done)
    );
    assert_eq!(
        saved.status(&id(StepKind::Enrol, "b")),
        Some(StepStatus::Failed)
    );
}

/// A second Ctrl-C cuts the grace period of steps that must not be cut,
/// and the display is told which steps it is waiting for after the first.
#[tokio::test(start_paused = true)]
async fn a_second_interrupt_aborts_what_the_first_waits_for() {
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<(Vec<StepId>, Duration)>>);
    impl StepMessages for Told {
        fn message(&self, _: &StepId, _: &str) {}
    }
    impl Observer for Told {
        fn started(&self, _: &StepId) {}
        fn finished(&self, _: &StepId, _: &Outcome, _: Duration) {}
        fn interrupted(&self, waiting: &[StepId], grace: Duration) {
            self.0.lock().unwrap().push((waiting.to_vec(), grace));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let told = Arc::new(Told::default());
    let exec = Executor {
        store: StateStore::open(&dir.path().join(STATE_FILE)).unwrap(),
        observer: told.clone(),
        // Without the second interrupt this run would wait an hour.
        grace: Duration::from_secs(3600),
    };
    let mut g = Graph::new();
    let forever = StandInJob::new(3_600_000);
    g.add(
        id(StepKind::Launch, "a"),
        vec![],
        Arc::new(Uninterruptible(forever)),
    )
    .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(120), exec.run(&g, async {}, async {}))
        .await
        .expect("the second interrupt did not abort the run")
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(
        report.results[&id(StepKind::Launch, "a")].outcome,
        Outcome::Interrupted
    );
    let told = told.0.lock().unwrap();
    assert_eq!(
        told.as_slice(),
        &[(vec![id(StepKind::Launch, "a")], Duration::from_secs(3600))]
    );
}

#[test]
fn cycles_and_unknown_dependencies_are_refused() {
    let mut g = Graph::new();
    g.add(
        id(StepKind::Launch, "a"),
        vec![id(StepKind::Launch, "b")],
        StandInJob::new(0),
    )
    .unwrap();
    g.add(
        id(StepKind::Launch, "b"),
        vec![id(StepKind::Launch, "a")],
        StandInJob::new(0),
    )
    .unwrap();
    assert!(g.validate().unwrap_err().to_string().contains("cycle"));
    let mut g = Graph::new();
    g.add(
        id(StepKind::Launch, "a"),
        vec![id(StepKind::Launch, "zz")],
        StandInJob::new(0),
    )
    .unwrap();
    assert!(g.validate().unwrap_err().to_string().contains("launch/zz"));
    assert!(
        g.add(id(StepKind::Launch, "a"), vec![], StandInJob::new(0))
            .is_err()
    );
}
