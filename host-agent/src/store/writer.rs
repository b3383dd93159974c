//! The store's single writer thread: group commit (see the module doc of
//! [`crate::store`]). One thread because redb allows one write transaction
//! at a time anyway, and a plain thread keeps blocking `fsync`s off the
//! async runtime.
//!
//! A failed commit (a full disk, an I/O error) answers every report of its
//! batch with the error and marks the database broken: after an I/O error
//! redb refuses every later operation ("previous I/O error") until it is
//! reopened. The next batch therefore first reopens it — an open that,
//! with quick repair, takes no longer after a failed commit than after a
//! clean close — and is refused in turn while the reopen or the commit
//! still fails. So the store recovers by itself once space returns, and
//! the thread never ends but on [`Msg::Stop`] or when every handle is gone.

use std::sync::{Arc, PoisonError};

use tokio::sync::mpsc::UnboundedReceiver;

use super::apply::apply;
use super::{Inner, Job, MAX_BATCH, Msg, StoreError, open};

pub(super) fn spawn(
    inner: Arc<Inner>,
    rx: UnboundedReceiver<Msg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(&inner, rx))
}

fn run(inner: &Inner, mut rx: UnboundedReceiver<Msg>) {
    let mut batch: Vec<Job> = Vec::with_capacity(256);
    let mut broken = false;
    loop {
        let mut stop = false;
        match rx.blocking_recv() {
            None => return,
            Some(Msg::Stop) => stop = true,
            Some(Msg::Report(job)) => batch.push(*job),
        }
        // Everything that queued while the previous commit ran joins this one.
        while !stop && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Report(job)) => batch.push(*job),
                Ok(Msg::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            broken = commit(inner, &mut batch, broken);
        }
        if stop {
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                if let Msg::Report(job) = msg {
                    let _ = job.reply.send(Err(StoreError::Closed));
                }
            }
            return;
        }
    }
}

/// Applies and commits `batch`, then answers every job: nobody hears
/// "stored" before the commit returned. Reopens the database first if the
/// previous commit failed (`broken`); returns whether this one did.
fn commit(inner: &Inner, batch: &mut Vec<Job>, broken: bool) -> bool {
    let result = if broken { reopen(inner) } else { Ok(()) }.and_then(|()| {
        inner.with_db(|db| apply(db, batch, &inner.limits).map_err(StoreError::write))
    });
    match result {
        Ok(outcomes) => {
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
            false
        }
        Err(e) => {
            tracing::error!(
                reports = batch.len(),
                "state store commit failed, reports refused: {e}"
            );
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(e.clone()));
            }
            true
        }
    }
}

/// Closes the broken database and opens it again. Readers see
/// [`StoreError::Reopening`] meanwhile (the lock is not held during the
/// open, which may repair).
fn reopen(inner: &Inner) -> Result<(), StoreError> {
    let old = inner
        .db
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    // Dropping the old handle releases its file lock before the new open.
    drop(old);
    let db = open::reopen(&inner.opener).map_err(StoreError::write)?;
    *inner.db.write().unwrap_or_else(PoisonError::into_inner) = Some(db);
    tracing::info!("state store reopened after a failed write");
    Ok(())
}
