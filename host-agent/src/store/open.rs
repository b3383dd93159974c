//! Opening the store's database, and the retention an open applies
//! (issue 13, item 8).
//!
//! Start-up time: redb must repair a file that was not closed cleanly
//! (after a SIGKILL, a crash, a power cut) before using it, and a full
//! repair walks every page — 8–19 s for a 1.36 GB store, near the CLI's
//! 20 s start timeout. Every write transaction here therefore enables
//! redb's *quick repair* ([`begin_write`]): each commit also records the
//! allocator state (and commits in two phases), so an open after a crash
//! loads that state instead of rebuilding it, in the same time as after a
//! clean close. The rest of an open is proportional to the number of
//! nodes and dedup marks, both bounded, not to the file's size.
//!
//! Retention at open: the per-node bounds ([`super::Limits`]) also apply
//! to what an older version stored (windows built before the `window`
//! table existed, a history limit lowered since), expired and surplus
//! dedup marks are dropped, and a file much larger than the reports it
//! holds (after such a cut) is compacted.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use redb::{Builder, Database, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

use super::apply::trim_window;
use super::{DEDUP, HISTORY, LATEST, Limits, NODES, Opener, WINDOW, unix};

/// High-water marks of agent instances not heard from for this long are
/// forgotten when the store opens (a node agent restarted long ago never
/// re-sends under its old instance id).
const DEDUP_KEEP: Duration = Duration::from_secs(7 * 86_400);

/// Files up to this size are never compacted at open: not worth the time.
pub const COMPACT_FLOOR_BYTES: u64 = 32 * 1024 * 1024;

/// An open compacts a file (above the floor) that is more than this many
/// times the bytes of the reports it holds. redb's own overhead in steady
/// state stays well below it (see the `store_size` bench), so this only
/// happens after a cut: a lowered limit, or a store an older version let
/// grow.
pub const COMPACT_RATIO: u64 = 4;

/// Opens the file at `path` (creating it if needed).
pub(super) fn file_opener(path: &Path) -> Opener {
    let path: PathBuf = path.to_owned();
    Box::new(move || Builder::new().create(&path))
}

/// A write transaction that records the allocator state on commit, so an
/// open after a crash needs no full repair (see the module doc).
pub(super) fn begin_write(db: &Database) -> Result<WriteTransaction, redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    Ok(txn)
}

/// Opens the database when the store starts: tables, retention, and
/// compaction if the file is mostly free space.
pub(super) fn first_open(
    path: &Path,
    opener: &Opener,
    limits: &Limits,
) -> Result<Database, redb::Error> {
    let mut db = reopen(opener)?;
    let live = retain(&db, limits)?;
    let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if file_len > COMPACT_FLOOR_BYTES.max(live.saturating_mul(COMPACT_RATIO)) {
        tracing::info!(file_len, live, "compacting the state store");
        if let Err(e) = db.compact() {
            // Not fatal: the store works uncompacted. A failed compaction
            // may leave redb refusing writes until reopened.
            tracing::warn!("cannot compact the state store: {e}");
            drop(db);
            db = reopen(opener)?;
        }
    }
    Ok(db)
}

/// Opens the database and creates missing tables; what the writer does
/// after a failed write.
pub(super) fn reopen(opener: &Opener) -> Result<Database, redb::Error> {
    let db = opener()?;
    if !tables_exist(&db)? {
        let txn = begin_write(&db)?;
        txn.open_table(LATEST)?;
        txn.open_table(HISTORY)?;
        txn.open_table(NODES)?;
        txn.open_table(WINDOW)?;
        txn.open_table(DEDUP)?;
        txn.commit()?;
    }
    Ok(db)
}

/// Whether every table exists: an open then writes nothing unless
/// retention has work, so a daemon can start on a full disk.
fn tables_exist(db: &Database) -> Result<bool, redb::Error> {
    let names = [
        LATEST.name(),
        HISTORY.name(),
        NODES.name(),
        WINDOW.name(),
        DEDUP.name(),
    ];
    let txn = db.begin_read()?;
    let present: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
    Ok(names.iter().all(|n| present.iter().any(|p| p == n)))
}

/// Applies the bounds to everything stored; returns the bytes of reports
/// kept. Commits only if something changed.
fn retain(db: &Database, limits: &Limits) -> Result<u64, redb::Error> {
    let txn = begin_write(db)?;
    let mut changed = false;
    let mut live = 0u64;
    {
        let nodes = txn.open_table(NODES)?;
        let mut window = txn.open_table(WINDOW)?;
        let mut history = txn.open_table(HISTORY)?;
        let mut all = Vec::new();
        for entry in nodes.iter()? {
            let (k, v) = entry?;
            all.push((k.value().to_owned(), v.value().0));
        }
        for (node, next) in all {
            let node = node.as_str();
            let recorded = window.get(node)?.map(|g| g.value());
            let (first, bytes) = match recorded {
                Some(w) => w,
                None => measure(&history, node, next)?,
            };
            let after = trim_window(&mut history, node, first, next, bytes, limits)?;
            if recorded != Some(after) {
                window.insert(node, after)?;
                changed = true;
            }
            live = live.saturating_add(after.1);
        }
        changed |= retain_dedup(&mut txn.open_table(DEDUP)?, limits)?;
    }
    if changed {
        txn.commit()?;
    } else {
        txn.abort()?;
    }
    Ok(live)
}

/// The window of a node stored before the `window` table: its first
/// index and the bytes of its reports.
fn measure(
    history: &redb::Table<(&str, u64), &[u8]>,
    node: &str,
    next: u64,
) -> Result<(u64, u64), redb::Error> {
    let mut first = None;
    let mut bytes = 0u64;
    for entry in history.range((node, 0u64)..(node, next))? {
        let (k, v) = entry?;
        first.get_or_insert(k.value().1);
        bytes = bytes.saturating_add(v.value().len() as u64);
    }
    Ok((first.unwrap_or(next), bytes))
}

/// Drops dedup marks older than [`DEDUP_KEEP`] and, per node, all but the
/// newest `limits.instances`. Returns whether any was dropped.
fn retain_dedup(
    dedup: &mut redb::Table<(&str, &str), (u64, u64)>,
    limits: &Limits,
) -> Result<bool, redb::Error> {
    let cutoff = unix(SystemTime::now()).saturating_sub(DEDUP_KEEP.as_secs());
    let mut per_node: std::collections::BTreeMap<String, Vec<(u64, String)>> = Default::default();
    let mut drop = Vec::new();
    for entry in dedup.iter()? {
        let (k, v) = entry?;
        let (node, instance) = k.value();
        let updated = v.value().1;
        if updated < cutoff {
            drop.push((node.to_owned(), instance.to_owned()));
        } else {
            per_node
                .entry(node.to_owned())
                .or_default()
                .push((updated, instance.to_owned()));
        }
    }
    for (node, mut marks) in per_node {
        marks.sort_unstable_by(|a, b| b.cmp(a)); // newest first
        for (_, instance) in marks.into_iter().skip(limits.instances) {
            drop.push((node.clone(), instance));
        }
    }
    for (node, instance) in &drop {
        dedup.remove((node.as_str(), instance.as_str()))?;
    }
    Ok(!drop.is_empty())
}
