//! The store's unit tests: ordering and validation, failure and recovery
//! (issue 13, item 2), bounds and start-up (item 8).

use super::faulty::DiskFull;
use super::*;
use std::time::Duration;

fn report(instance: &str, seq: u64, taken_at: SystemTime) -> HealthReport {
    HealthReport {
        agent_instance: instance.into(),
        seq,
        taken_at: Some(proto::timestamp(taken_at)),
        node: "n1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_older_back_filled_report_is_kept_in_history_but_not_shown_as_latest()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("s.redb"), 10)?;
    let now = SystemTime::now();
    let fresh = report("new", 1, now);
    let old = report("old", 7, now - Duration::from_secs(600));
    assert_eq!(store.ingest("n1", fresh, now).await?, Ingested::Stored);
    assert_eq!(store.ingest("n1", old, now).await?, Ingested::Stored);
    let nodes = store.nodes()?;
    let latest = nodes["n1"].latest.report.as_ref().ok_or("no latest")?;
    assert_eq!(latest.agent_instance, "new");
    assert_eq!(nodes["n1"].stored, 2);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn a_report_dated_in_the_future_does_not_stay_latest_and_receipt_is_tracked()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("s.redb"), 10)?;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let year_2099 = SystemTime::UNIX_EPOCH + Duration::from_secs(4_070_908_800);
    store.ingest("n1", report("i", 1, year_2099), t0).await?;
    let t1 = t0 + Duration::from_secs(10);
    store.ingest("n1", report("i", 2, t1), t1).await?;
    // A back-filled report received later but taken before: not latest,
    // but it is the newest receipt.
    let t2 = t1 + Duration::from_secs(10);
    store
        .ingest("n1", report("j", 1, t0 - Duration::from_secs(60)), t2)
        .await?;
    let nodes = store.nodes()?;
    let latest = nodes["n1"].latest.report.as_ref().ok_or("no latest")?;
    assert_eq!((latest.agent_instance.as_str(), latest.seq), ("i", 2));
    assert_eq!(nodes["n1"].last_received_at, Some(t2));
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn seq_zero_and_missing_instance_are_refused_and_closed_store_refuses()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("s.redb"), 10)?;
    let now = SystemTime::now();
    let bad = store.ingest("n1", report("i", 0, now), now).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    let bad = store.ingest("n1", report("", 1, now), now).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    store.close().await;
    let late = store.ingest("n1", report("i", 1, now), now).await;
    assert!(matches!(late, Err(StoreError::Closed)));
    assert!(store.nodes()?.is_empty());
    Ok(())
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn stored_seqs(store: &Store, node: &str) -> Result<Vec<u64>, StoreError> {
    Ok(store
        .history(node, 0)?
        .iter()
        .filter_map(|r| r.report.as_ref())
        .map(|r| r.seq)
        .collect())
}

/// A store whose disk the test fills and empties.
fn on_faulty_disk(path: &Path, limits: Limits) -> Result<(Store, DiskFull), StoreError> {
    let full = DiskFull::default();
    let store = Store::open_with(path, full.opener(path), limits)?;
    Ok((store, full))
}

#[tokio::test]
async fn a_full_disk_refuses_reports_and_the_store_recovers_when_space_returns() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, disk) = on_faulty_disk(&dir.path().join("s.redb"), Limits::with_history(10))?;
    let now = SystemTime::now();
    assert_eq!(
        store.ingest("n1", report("i", 1, now), now).await?,
        Ingested::Stored
    );

    disk.set(true);
    for seq in 2..=3 {
        // The first refusal is the failed commit, the second the reopen
        // (or the commit after it) failing in turn: both say why.
        let refused = store.ingest("n1", report("i", seq, now), now).await;
        assert!(
            matches!(refused, Err(StoreError::DiskFull { .. })),
            "{refused:?}"
        );
        assert!(refused.unwrap_err().to_string().contains("host disk full"));
    }

    disk.set(false);
    // Nothing restarts the store: the next batch reopens it by itself.
    for seq in 2..=3 {
        assert_eq!(
            store.ingest("n1", report("i", seq, now), now).await?,
            Ingested::Stored
        );
    }
    assert_eq!(stored_seqs(&store, "n1")?, vec![1, 2, 3]);
    assert_eq!(store.nodes()?["n1"].stored, 3);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn close_completes_and_refuses_nothing_silently_while_the_disk_is_full() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, disk) = on_faulty_disk(&dir.path().join("s.redb"), Limits::with_history(10))?;
    let now = SystemTime::now();
    store.ingest("n1", report("i", 1, now), now).await?;
    disk.set(true);
    let pending: Vec<_> = (2..=5)
        .map(|seq| store.submit("n1", report("i", seq, now), now))
        .collect();
    store.close().await;
    for outcome in pending {
        let outcome = outcome.await?;
        assert!(
            matches!(
                outcome,
                Err(StoreError::DiskFull { .. } | StoreError::Closed)
            ),
            "{outcome:?}"
        );
    }
    Ok(())
}

/// A report whose encoding is about `bytes` long (a long check message).
fn sized(instance: &str, seq: u64, bytes: usize) -> HealthReport {
    let mut r = report(instance, seq, SystemTime::now());
    r.checks.push(proto::v1::Check {
        name: "big".into(),
        message: "x".repeat(bytes),
        ..Default::default()
    });
    r
}

#[tokio::test]
async fn a_report_over_the_size_limit_is_refused_and_not_stored() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("s.redb"), 10)?;
    let now = SystemTime::now();
    let big = sized("i", 1, proto::limits::MAX_REPORT_BYTES);
    let refused = store.ingest("n1", big, now).await;
    assert!(
        matches!(refused, Err(StoreError::TooLarge { limit, .. }) if limit == proto::limits::MAX_REPORT_BYTES),
        "{refused:?}"
    );
    assert!(store.history("n1", 0)?.is_empty());
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn the_history_of_a_node_is_bounded_in_bytes_as_well_as_in_count() -> TestResult {
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        node_bytes: 3 * 10_000 + 500,
        ..Limits::with_history(100)
    };
    let store = Store::open_with_limits(&dir.path().join("s.redb"), limits)?;
    let now = SystemTime::now();
    for seq in 1..=10 {
        store.ingest("n1", sized("i", seq, 10_000), now).await?;
        store.ingest("n2", sized("i", seq, 10), now).await?;
    }
    // Three 10 kB reports fit in the budget; the small ones all do.
    assert_eq!(stored_seqs(&store, "n1")?, vec![8, 9, 10]);
    assert_eq!(stored_seqs(&store, "n2")?.len(), 10);
    let nodes = store.nodes()?;
    assert_eq!((nodes["n1"].stored, nodes["n2"].stored), (3, 10));
    store.close().await;
    Ok(())
}

fn dedup_marks(store: &Store, node: &str) -> Result<Vec<String>, StoreError> {
    store.inner.with_db(|db| {
        let txn = db.begin_read().map_err(read_err)?;
        let dedup = txn.open_table(DEDUP).map_err(read_err)?;
        let mut out = Vec::new();
        for entry in dedup.iter().map_err(read_err)? {
            let (k, _) = entry.map_err(read_err)?;
            let (n, instance) = k.value();
            if n == node {
                out.push(instance.to_owned());
            }
        }
        Ok(out)
    })
}

#[tokio::test]
async fn a_new_agent_instance_per_report_does_not_grow_the_dedup_marks() -> TestResult {
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        instances: 3,
        ..Limits::with_history(100)
    };
    let store = Store::open_with_limits(&dir.path().join("s.redb"), limits)?;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for i in 0..20u64 {
        let at = t0 + Duration::from_secs(i);
        let instance = format!("inst-{i:02}");
        store.ingest("n1", report(&instance, 1, at), at).await?;
    }
    store.ingest("n2", report("other", 1, t0), t0).await?;
    assert_eq!(
        dedup_marks(&store, "n1")?,
        vec!["inst-17", "inst-18", "inst-19"]
    );
    assert_eq!(dedup_marks(&store, "n2")?, vec!["other"]);
    // The newest instances still deduplicate.
    let again = store.ingest("n1", report("inst-19", 1, t0), t0).await?;
    assert_eq!(again, Ingested::Duplicate);
    store.close().await;
    Ok(())
}

/// Deletes the `window` table, as a store written before it looks.
fn as_written_before_the_window_table(path: &Path) -> TestResult {
    let db = redb::Database::create(path)?;
    let txn = db.begin_write()?;
    txn.delete_table(WINDOW)?;
    txn.commit()?;
    Ok(())
}

#[tokio::test]
async fn an_open_applies_the_bounds_to_an_older_or_larger_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let store = Store::open(&path, 10)?;
    let now = SystemTime::now();
    for seq in 1..=10 {
        store.ingest("n1", report("i", seq, now), now).await?;
    }
    store.close().await;
    drop(store);
    as_written_before_the_window_table(&path)?;

    // Reopened with a lower limit: the window is rebuilt and cut.
    let store = Store::open(&path, 4)?;
    assert_eq!(stored_seqs(&store, "n1")?, vec![7, 8, 9, 10]);
    assert_eq!(store.nodes()?["n1"].stored, 4);
    store.ingest("n1", report("i", 11, now), now).await?;
    assert_eq!(stored_seqs(&store, "n1")?, vec![8, 9, 10, 11]);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn a_store_opened_after_a_crash_needs_no_full_repair() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let crashed = dir.path().join("crashed.redb");
    let store = Store::open(&path, 100)?;
    let now = SystemTime::now();
    for seq in 1..=50 {
        store.ingest("n1", sized("i", seq, 1000), now).await?;
    }
    // The file as a SIGKILL would leave it: copied while the store is open
    // (every commit is durable, and the file is marked as in use).
    std::fs::copy(&path, &crashed)?;
    store.close().await;

    let repairs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = repairs.clone();
    let db = redb::Builder::new()
        .set_repair_callback(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .create(&crashed)?;
    assert_eq!(
        repairs.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the open walked the file to repair it"
    );
    drop(db);
    // And the crashed copy is a working store with everything acknowledged.
    let store = Store::open(&crashed, 100)?;
    assert_eq!(stored_seqs(&store, "n1")?, (1..=50).collect::<Vec<_>>());
    store.close().await;
    Ok(())
}
