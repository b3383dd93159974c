//! The node agent's `Etcd` service driven in-process: built on a runtime
//! ([`StandInKubelet`] or the production one), snapshots pulled from it,
//! restores streamed to it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use node_agent::etcd::EtcdTarget;
use node_agent::etcd::restore::runtime::ControlPlaneRuntime;
use node_agent::etcd::restore::{Restorer, Timeouts};
use node_agent::etcd::service::EtcdService;
use node_agent::etcd::snapshot::Taker;
use proto::v1::etcd_server::Etcd;
use proto::v1::{
    EtcdSnapshotRequest, ProgressEvent, RestoreChunk, RestoreStart, SnapshotMeta, SnapshotTrailer,
    progress_event::Outcome, restore_chunk, snapshot_chunk::Kind,
};
use tonic::Request;

use super::{StandInKubelet, TestResult};

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The service of node `app1-cp` in cluster `app1` on the stand-in kubelet.
pub fn service(root: &Path, kubelet: &Arc<StandInKubelet>, control_plane: bool) -> EtcdService {
    service_on(root, kubelet.endpoint(), kubelet.clone(), control_plane)
}

/// [`service`] on any runtime, its etcd at `endpoint`.
pub fn service_on(
    root: &Path,
    endpoint: String,
    runtime: Arc<dyn ControlPlaneRuntime>,
    control_plane: bool,
) -> EtcdService {
    let target = EtcdTarget {
        endpoint,
        root: root.to_owned(),
    };
    let restorer = Restorer {
        root: root.to_owned(),
        cluster: "app1".into(),
        target: target.clone(),
        runtime,
        timeouts: Timeouts {
            stop: Duration::from_secs(20),
            start: Duration::from_secs(30),
            poll: Duration::from_millis(100),
        },
    };
    let taker = Taker {
        cluster: "app1".into(),
        node: "app1-cp".into(),
    };
    EtcdService::new(control_plane, taker, target, restorer)
}

/// Pulls a snapshot through the service into `file`.
pub async fn pull(svc: &EtcdService, file: &Path) -> TestResult<(SnapshotMeta, SnapshotTrailer)> {
    let mut stream = svc
        .snapshot(Request::new(EtcdSnapshotRequest {}))
        .await?
        .into_inner();
    let (mut meta, mut trailer, mut data) = (None, None, Vec::new());
    while let Some(chunk) = tokio_stream::StreamExt::next(&mut stream).await {
        match chunk?.kind {
            Some(Kind::Meta(m)) => meta = Some(m),
            Some(Kind::Data(d)) => data.extend_from_slice(&d),
            Some(Kind::Trailer(t)) => trailer = Some(t),
            Some(Kind::Error(e)) => return Err(e.message.into()),
            None => {}
        }
    }
    std::fs::write(file, &data)?;
    Ok((meta.ok_or("no meta")?, trailer.ok_or("no trailer")?))
}

/// Streams `file_bytes` to the service as a plain restore and collects
/// the events.
pub async fn restore(
    svc: &EtcdService,
    meta: SnapshotMeta,
    file_bytes: Vec<u8>,
    trailer: SnapshotTrailer,
    confirmed: bool,
) -> TestResult<Vec<ProgressEvent>> {
    let start = RestoreStart {
        meta: Some(meta),
        confirmed,
        seed: None,
    };
    restore_from(svc, start, file_bytes, trailer).await
}

/// Streams `start`, then `file_bytes`, then `trailer` and collects the
/// events.
pub async fn restore_from(
    svc: &EtcdService,
    start: RestoreStart,
    file_bytes: Vec<u8>,
    trailer: SnapshotTrailer,
) -> TestResult<Vec<ProgressEvent>> {
    let mut chunks = vec![RestoreChunk {
        kind: Some(restore_chunk::Kind::Start(start)),
    }];
    for c in file_bytes.chunks(100_000) {
        chunks.push(RestoreChunk {
            kind: Some(restore_chunk::Kind::Data(c.to_vec().into())),
        });
    }
    chunks.push(RestoreChunk {
        kind: Some(restore_chunk::Kind::Trailer(trailer)),
    });
    let inbound = tokio_stream::iter(chunks.into_iter().map(Ok));
    let mut events = Vec::new();
    let mut stream = svc.restore_stream(Box::pin(inbound)).await?;
    while let Some(e) = stream.recv().await {
        events.push(e?);
    }
    Ok(events)
}

pub fn outcome(events: &[ProgressEvent]) -> Option<&Outcome> {
    events.last().and_then(|e| e.outcome.as_ref())
}

/// The failed phase and the error of a restore that must have failed.
pub fn error_of(events: &[ProgressEvent]) -> TestResult<(String, proto::v1::Error)> {
    match (events.last(), outcome(events)) {
        (Some(e), Some(Outcome::Error(err))) => Ok((e.phase.clone(), err.clone())),
        _ => Err(format!("expected a failure, got {events:?}").into()),
    }
}
