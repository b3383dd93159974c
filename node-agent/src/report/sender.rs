//! Streams queued reports to the host over mutual TLS.
//!
//! One `Host.Report` stream per connection: everything not yet
//! acknowledged is sent first, in order and with its original timestamp,
//! then new reports as they are queued. Any failure ends the stream;
//! reconnection waits with capped exponential backoff and full jitter,
//! reset once the host acknowledges something. The host drops duplicates
//! by (agent_instance, seq), so resending after a reconnect is safe.
//!
//! The endpoint is built from the node's current identity at each connect,
//! and a stream ends as soon as the identity changes (renewal), so the
//! sender reconnects at once with the new certificate — the host stops
//! accepting the old one once the new one is used. Nothing is lost: what
//! the host had not acknowledged is re-sent on the new stream.

use std::sync::Arc;
use std::time::Duration;

use proto::v1::HealthReport;
use proto::v1::host_client::HostClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{info, warn};

use super::Outbox;
use crate::backoff::Backoff;
use crate::host_link::HostLink;
use telemetry::error_chain::chain;

/// Why a report stream ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Connecting failed (host down, TLS refused).
    #[error("connecting: {}", chain(.0))]
    Connect(#[source] tonic::transport::Error),
    /// The call failed or the stream broke.
    #[error("report stream: {}", chain(.0))]
    Call(#[source] tonic::Status),
    /// The host ended the stream normally.
    #[error("the host closed the report stream")]
    Closed,
    /// The node's certificate was renewed: the stream is re-opened with it.
    #[error("the node certificate changed")]
    IdentityChanged,
}

impl StreamError {
    /// The gRPC code and full text, for [`HostLink::note_failure`].
    fn details(&self) -> (Option<tonic::Code>, String) {
        match self {
            StreamError::Call(s) => (Some(s.code()), self.to_string()),
            _ => (None, self.to_string()),
        }
    }
}

/// Runs forever, keeping a report stream to the host open.
pub async fn run(link: HostLink, outbox: Arc<Outbox>, instance: String, mut backoff: Backoff) {
    loop {
        let e = stream_once(&link, &outbox, &instance, &mut backoff).await;
        outbox.counters().reconnects.inc();
        if matches!(e, StreamError::IdentityChanged) {
            info!("node certificate renewed; re-opening the report stream with it");
            continue;
        }
        let delay = backoff.next_delay();
        let (queued, dropped) = outbox.stats();
        let (code, text) = e.details();
        if link.note_failure("report stream", code, &text) {
            tracing::debug!(error = %e, retry_in = ?delay, queued, dropped, "report stream to the host ended");
        } else {
            warn!(error = %e, retry_in = ?delay, queued, dropped, "report stream to the host ended");
        }
        tokio::time::sleep(delay).await;
    }
}

/// One connection's worth of reporting, presenting the identity current
/// when it starts; returns why it ended.
pub async fn stream_once(
    link: &HostLink,
    outbox: &Outbox,
    instance: &str,
    backoff: &mut Backoff,
) -> StreamError {
    let mut renewed = link.identity().subscribe();
    renewed.borrow_and_update();
    let endpoint = match link.endpoint() {
        Ok(e) => e,
        Err(e) => return StreamError::Connect(e),
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return StreamError::Connect(e),
    };
    let (tx, rx) = mpsc::channel::<HealthReport>(32);
    let call = async {
        let mut acks = match HostClient::new(channel)
            .report(ReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => return StreamError::Call(s),
        };
        let mut first = true;
        loop {
            match acks.message().await {
                Ok(Some(ack)) if ack.agent_instance == instance => {
                    outbox.ack(ack.seq);
                    outbox.counters().acknowledged.inc();
                    link.note_success();
                    if first {
                        info!(seq = ack.seq, "host is acknowledging reports");
                        first = false;
                    }
                    backoff.reset();
                }
                Ok(Some(ack)) => {
                    warn!(instance = %ack.agent_instance, "ignoring an acknowledgement for another agent instance");
                }
                Ok(None) => return StreamError::Closed,
                Err(s) => return StreamError::Call(s),
            }
        }
    };
    let renewal = async {
        if renewed.changed().await.is_err() {
            // The cell outlives the agent's tasks; if not, keep streaming.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        e = call => e,
        () = pump(outbox, tx) => StreamError::Closed,
        () = renewal => StreamError::IdentityChanged,
    }
}

/// Feeds the stream: the unacknowledged backlog, then each new report.
/// Returns when the stream's receiving side is gone.
async fn pump(outbox: &Outbox, tx: mpsc::Sender<HealthReport>) {
    let mut latest = outbox.subscribe();
    let mut sent = 0u64;
    loop {
        latest.borrow_and_update();
        for report in outbox.after(sent) {
            sent = report.seq;
            if tx.send(report).await.is_err() {
                return;
            }
            outbox.counters().sent.inc();
        }
        if latest.changed().await.is_err() {
            return;
        }
    }
}

/// The mTLS endpoint of the Host service, with HTTP/2 keepalives so a
/// silently vanished host (link down) is noticed within seconds.
pub fn host_endpoint(
    address: &str,
    tls: tonic::transport::ClientTlsConfig,
) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("https://{address}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}
