//! `object-store/host`: the host's object store up, with its buckets and
//! keys (`crate::storage`), for a topology with `backups: {managed: true}`;
//! then each cluster's Velero location and key, which the add-on steps
//! render Velero from ([`BackupTargets`]). A step of the graph like the
//! mirrors, so the store starts while the machines launch, a failure
//! blocks only the add-ons (they wait for it) and a rerun continues. It
//! runs again on every `up` (idempotent, cheap once up).
//!
//! A cluster whose recovery is unfinished gets its location read-only
//! (`recover::cluster::velero_read_only`): a new schedule backs up at once,
//! and that backup of an empty cluster must not become the newest.

use super::UpContext;
use super::targets::HostRef;
use crate::addons::velero::{AccessMode, BackupTarget};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use crate::storage::error::StorageError;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the store's `up` gives the add-ons: its changes, for the
/// progress line, and each cluster's location.
pub struct StoreUp {
    pub changes: Vec<String>,
    pub targets: BTreeMap<String, BackupTarget>,
}

/// Brings the host's object store up: the real one
/// ([`crate::commands::storage::HostObjectStore`]) or, in tests, a stand-in.
#[async_trait]
pub trait ObjectStoreUp: Send + Sync {
    async fn up(&self) -> Result<StoreUp, StorageError>;
}

/// Each cluster's Velero location, filled by `object-store/host` and read
/// by the add-on steps after it (empty when backups are not managed).
#[derive(Debug, Default, Clone)]
pub struct BackupTargets(Arc<Mutex<BTreeMap<String, BackupTarget>>>);

impl BackupTargets {
    /// `cluster`'s location and key, once the store's step has run.
    pub fn get(&self, cluster: &str) -> Option<BackupTarget> {
        self.lock().get(cluster).cloned()
    }

    fn set(&self, targets: BTreeMap<String, BackupTarget>) {
        *self.lock() = targets;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BackupTarget>> {
        // A panic elsewhere cannot leave the map half-written: it is
        // replaced whole, so a poisoned lock still holds a whole map.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub struct StartObjectStore {
    ctx: Arc<UpContext>,
}

impl StartObjectStore {
    pub fn new(ctx: Arc<UpContext>, host: HostRef) -> StartObjectStore {
        debug_assert!(host.object_store(), "an object-store step without backups");
        StartObjectStore { ctx }
    }
}

#[async_trait]
impl StepJob for StartObjectStore {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        messages.message(step, "the object store");
        let mut up = self
            .ctx
            .host_object_store
            .up()
            .await
            .map_err(StepError::from_error)?;
        for change in &up.changes {
            messages.message(step, change);
        }
        let home = &self.ctx.home;
        for (cluster, target) in up.targets.iter_mut() {
            if crate::recover::cluster::velero_read_only(home, cluster) {
                target.access = AccessMode::ReadOnly;
                messages.message(
                    step,
                    &format!(
                        "{cluster}: a recovery of this cluster is unfinished: Velero's location \
                         stays read-only until it has restored"
                    ),
                );
            }
        }
        self.ctx.cluster.addons.backups.set(up.targets);
        Ok(())
    }
}
