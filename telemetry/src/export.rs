//! Exporter wrappers. The OTLP exporter itself is the SDK's; these add what
//! provisioning needs around it: a count of spans that never reached the
//! collector (reported once, at the end, instead of an error per batch),
//! an exporter that connects later (a node agent learns its identity only
//! after enrolment), and an in-memory copy for trace files.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Spans lost on the way to the collector, and the first reason why.
#[derive(Debug, Clone, Default)]
pub struct DropCounter {
    inner: Arc<DropInner>,
}

#[derive(Debug, Default)]
struct DropInner {
    spans: AtomicU64,
    first_error: OnceLock<String>,
}

impl DropCounter {
    /// Records `spans` lost because of `error`.
    pub fn add(&self, spans: usize, error: &dyn std::fmt::Display) {
        self.inner.spans.fetch_add(spans as u64, Ordering::Relaxed);
        let _ = self.inner.first_error.set(error.to_string());
    }

    /// Spans lost so far.
    pub fn dropped(&self) -> u64 {
        self.inner.spans.load(Ordering::Relaxed)
    }

    /// Why the first lost batch was lost.
    pub fn first_error(&self) -> Option<String> {
        self.inner.first_error.get().cloned()
    }
}

/// Counts the spans of every batch `inner` fails to export.
#[derive(Debug)]
pub struct Counting<E> {
    inner: E,
    dropped: DropCounter,
}

impl<E> Counting<E> {
    /// Exports through `inner`, adding the spans of each failed batch (and
    /// the first failure's reason) to `dropped`; the failure is still
    /// returned to the SDK.
    pub fn new(inner: E, dropped: DropCounter) -> Self {
        Counting { inner, dropped }
    }
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            self.dropped.add(spans, e);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Where a [`Deferred`] exporter's real exporter is put once it exists —
/// and replaced when its credentials change (a node agent's renewed
/// certificate: the host refuses the old one once the new one is used).
#[derive(Debug, Clone, Default)]
pub struct DeferredSlot(Arc<RwLock<Option<Arc<opentelemetry_otlp::SpanExporter>>>>);

impl DeferredSlot {
    /// Makes `exporter` the destination of every later batch.
    pub fn set(&self, exporter: opentelemetry_otlp::SpanExporter) {
        let mut slot = self.0.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Arc::new(exporter));
    }

    fn current(&self) -> Option<Arc<opentelemetry_otlp::SpanExporter>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// An exporter whose destination is known only later; batches exported
/// before that fail (and are counted by [`Counting`]).
#[derive(Debug, Clone, Default)]
pub struct Deferred {
    slot: DeferredSlot,
}

impl Deferred {
    /// The slot to fill when the destination is known.
    pub fn slot(&self) -> DeferredSlot {
        self.slot.clone()
    }
}

impl SpanExporter for Deferred {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // Cloned out of the lock: no lock is held across the export.
        match self.slot.current() {
            Some(exporter) => exporter.export(batch).await,
            None => Err(OTelSdkError::InternalFailure(
                "no destination yet (not enrolled)".into(),
            )),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.slot
            .current()
            .map_or(Ok(()), |e| e.shutdown_with_timeout(timeout))
    }
}

/// Keeps finished spans in memory, up to a bound (the rest are counted as
/// dropped), so a run can write them to a file at its end.
#[derive(Debug, Clone)]
pub struct Collect {
    spans: Arc<Mutex<Vec<SpanData>>>,
    limit: usize,
    dropped: DropCounter,
}

/// Most spans kept for one trace file.
pub const COLLECT_LIMIT: usize = 100_000;

impl Collect {
    /// An empty collector keeping at most [`COLLECT_LIMIT`] spans; spans
    /// beyond that are counted in `dropped` rather than kept.
    pub fn new(dropped: DropCounter) -> Collect {
        Collect {
            spans: Arc::default(),
            limit: COLLECT_LIMIT,
            dropped,
        }
    }

    /// Everything collected so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<SpanData> {
        self.spans
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let Ok(mut spans) = self.spans.lock() else {
            return Err(OTelSdkError::InternalFailure("span buffer poisoned".into()));
        };
        let room = self.limit.saturating_sub(spans.len());
        if batch.len() > room {
            self.dropped
                .add(batch.len() - room, &"the trace file's span limit");
        }
        spans.extend(batch.into_iter().take(room));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Failing;

    impl SpanExporter for Failing {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("connection refused".into()))
        }
    }

    fn span() -> SpanData {
        crate::pipeline::tests::finished_span()
    }

    #[tokio::test]
    async fn failed_batches_are_counted_with_the_first_reason() {
        let dropped = DropCounter::default();
        let exporter = Counting::new(Failing, dropped.clone());
        assert!(exporter.export(vec![span(), span()]).await.is_err());
        assert!(exporter.export(vec![span()]).await.is_err());
        assert_eq!(dropped.dropped(), 3);
        assert!(
            dropped
                .first_error()
                .is_some_and(|e| e.contains("connection refused"))
        );
    }

    #[tokio::test]
    async fn successful_batches_are_not_counted() {
        let dropped = DropCounter::default();
        let exporter = Counting::new(Collect::new(DropCounter::default()), dropped.clone());
        assert!(exporter.export(vec![span()]).await.is_ok());
        assert_eq!(dropped.dropped(), 0);
        assert_eq!(dropped.first_error(), None);
    }

    #[tokio::test]
    async fn a_deferred_exporter_fails_until_connected() {
        let dropped = DropCounter::default();
        let exporter = Counting::new(Deferred::default(), dropped.clone());
        assert!(exporter.export(vec![span()]).await.is_err());
        assert_eq!(dropped.dropped(), 1);
    }

    #[tokio::test]
    async fn a_second_destination_replaces_the_first() {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = || {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint("http://127.0.0.1:9")
                .build()
                .expect("exporter")
        };
        let deferred = Deferred::default();
        let slot = deferred.slot();
        slot.set(exporter());
        let first = slot.current().expect("set");
        slot.set(exporter());
        let second = slot.current().expect("set");
        assert!(
            !Arc::ptr_eq(&first, &second),
            "a renewal re-points the relay"
        );
    }

    #[tokio::test]
    async fn collection_is_bounded_and_counts_the_overflow() {
        let dropped = DropCounter::default();
        let mut collect = Collect::new(dropped.clone());
        collect.limit = 2;
        collect.export(vec![span(), span(), span()]).await.ok();
        assert_eq!(collect.take().len(), 2);
        assert_eq!(dropped.dropped(), 1);
    }
}
