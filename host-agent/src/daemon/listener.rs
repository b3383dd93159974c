//! Admission to the daemon's TCP listeners, before any request is read.
//!
//! A TCP connection costs the daemon a file descriptor from the moment it
//! is accepted, whoever opens it. Without bounds, a few hundred idle
//! connections exhausted macOS's default 256 descriptors and the CLI and
//! reconnecting agents were locked out (issue 13, item 6). So every
//! accepted connection must first take:
//! - a slot of its listener's **total** budget (fitted to the descriptor
//!   limit, see [`super::fdlimit`]), and
//! - a slot of its **peer's** budget (an address; IPv6: its /64), so one
//!   machine cannot take every slot. Loopback peers are not counted per
//!   peer: they are this machine's users, who can exhaust it in many other
//!   ways, and the tests and benchmarks run many agents from loopback; they
//!   still share the total.
//!
//! Then the TLS handshake runs here, not inside tonic, under a **handshake
//! timeout** and a cap on **handshakes in flight** (the only phase in which
//! a peer holds a slot without having shown anything). A connection over
//! any budget is closed at once. Slots are released when the connection
//! closes (the [`Admitted`] stream drops them).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::ratelimit::peer_key;

/// The budgets of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open at once, all peers together.
    pub total: usize,
    /// Connections open at once from one non-loopback peer.
    pub per_peer: usize,
    /// TLS handshakes in flight at once.
    pub handshakes: usize,
    /// Whether loopback peers are held to `per_peer` too. Off by default
    /// (see the module docs); tests turn it on to play remote peers from
    /// loopback addresses.
    pub per_peer_on_loopback: bool,
}

/// The admission limits of both TCP listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The mutual-TLS Host listener. A node holds one report stream, one
    /// span-export channel and, briefly, a snapshot upload; reconnects
    /// overlap with connections still closing, hence room for 16.
    pub host: ListenerLimits,
    /// The Enrolment listener: one RPC per node, once.
    pub enrolment: ListenerLimits,
    /// A peer that has not finished its TLS handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// An enrolment connection is closed (HTTP/2 GOAWAY, then a short
    /// grace) this long after it opened: enrolment is a single RPC, so a
    /// connection kept open longer is only holding a slot.
    pub enrolment_max_age: Duration,
}

/// The limits before they are fitted to the descriptor limit.
pub const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = ConnectionLimits {
    host: ListenerLimits {
        total: 65_536,
        per_peer: 16,
        handshakes: 256,
        per_peer_on_loopback: false,
    },
    enrolment: ListenerLimits {
        total: 128,
        per_peer: 4,
        handshakes: 64,
        per_peer_on_loopback: false,
    },
    handshake_timeout: Duration::from_secs(10),
    enrolment_max_age: Duration::from_secs(60),
};

/// Descriptors kept out of every listener's reach: the store, the log, the
/// control socket and its CLI connections, snapshot files, outgoing calls
/// to node agents.
pub const RESERVED_FDS: usize = 128;

impl ConnectionLimits {
    /// These limits, lowered where needed so that both listeners at their
    /// totals plus [`RESERVED_FDS`] fit in `fd_limit` descriptors. The
    /// enrolment listener keeps at most a quarter of what is left.
    pub fn fit_to(self, fd_limit: usize) -> ConnectionLimits {
        let room = fd_limit.saturating_sub(RESERVED_FDS).max(8);
        let enrol_total = self.enrolment.total.min(room / 4).max(2);
        let host_total = self.host.total.min(room - enrol_total.min(room)).max(4);
        let fit = |l: ListenerLimits, total: usize| ListenerLimits {
            total,
            per_peer: l.per_peer.min(total),
            handshakes: l.handshakes.min(total),
            ..l
        };
        ConnectionLimits {
            host: fit(self.host, host_total),
            enrolment: fit(self.enrolment, enrol_total),
            ..self
        }
    }
}

/// Why a connection was closed before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerPeer,
    Handshakes,
}

/// Open connections per counted peer key; a key at zero is removed.
type PeerCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The open-connection budgets of one listener (see the module docs).
#[derive(Debug)]
pub struct Admission {
    limits: ListenerLimits,
    total: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    per_peer: PeerCounts,
}

impl Admission {
    pub fn new(limits: ListenerLimits) -> Admission {
        Admission {
            limits,
            total: Arc::new(Semaphore::new(limits.total)),
            handshakes: Arc::new(Semaphore::new(limits.handshakes)),
            per_peer: Arc::default(),
        }
    }

    /// A slot for a connection from `peer`, or why there is none.
    pub fn admit(&self, peer: IpAddr) -> Result<Slot, Refusal> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let counted = self.limits.per_peer_on_loopback || !peer.is_loopback();
        let peer = counted.then(|| peer_key(peer));
        if let Some(key) = peer {
            let mut open = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            let count = open.entry(key).or_default();
            if *count >= self.limits.per_peer {
                if *count == 0 {
                    open.remove(&key);
                }
                return Err(Refusal::PerPeer);
            }
            *count += 1;
        }
        Ok(Slot {
            _total: total,
            peer: peer.map(|key| (key, self.per_peer.clone())),
        })
    }

    /// A handshake slot, held only while the handshake runs.
    pub fn handshake(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Handshakes)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.limits.total - self.total.available_permits()
    }
}

/// One admitted connection's share of the budgets; released on drop.
#[derive(Debug)]
pub struct Slot {
    _total: OwnedSemaphorePermit,
    peer: Option<(IpAddr, PeerCounts)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((key, map)) = self.peer.take() {
            let mut open = map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = open.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&key);
                }
            }
        }
    }
}

/// A TCP connection holding its [`Slot`]: tonic serves it like the
/// `TcpStream` it wraps (same connect info, so `remote_addr` and
/// `peer_certs` work as before).
#[derive(Debug)]
pub struct Admitted {
    stream: TcpStream,
    _slot: Slot,
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// What a listener serves: its name (for logs), budgets and TLS.
pub struct Listener {
    pub what: &'static str,
    /// Every address it listens on (see [`super::bind`]).
    pub tcp: Vec<super::bind::Socket>,
    pub admission: Arc<Admission>,
    pub tls: TlsAcceptor,
    pub handshake_timeout: Duration,
}

/// Refusals are logged at most this often per listener, with a count: an
/// unauthenticated flood must not turn into unbounded log writes.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(30);

/// Accepts forever on every socket of `listener` and yields, as one
/// stream, the TLS connections that passed admission (one budget for all
/// its sockets) and finished their handshake in time. An accept error
/// (e.g. no descriptor left) is logged and retried instead of ending the
/// server.
pub fn serve(listener: Listener) -> ReceiverStream<io::Result<TlsStream<Admitted>>> {
    let (tx, rx) = mpsc::channel(128);
    let Listener {
        what,
        tcp,
        admission,
        tls,
        handshake_timeout,
    } = listener;
    for socket in tcp {
        let accept = Accept {
            what,
            admission: admission.clone(),
            tls: tls.clone(),
            handshake_timeout,
        };
        tokio::spawn(accept.run(socket, tx.clone()));
    }
    ReceiverStream::new(rx)
}

/// One socket's accept loop.
struct Accept {
    what: &'static str,
    admission: Arc<Admission>,
    tls: TlsAcceptor,
    handshake_timeout: Duration,
}

impl Accept {
    async fn run(
        self,
        socket: super::bind::Socket,
        tx: mpsc::Sender<io::Result<TlsStream<Admitted>>>,
    ) {
        let mut refusals = RefusalLog::new(self.what);
        let tcp = socket.ready(self.what).await;
        loop {
            let (stream, peer) = match tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("{}: accept failed: {e}", self.what);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let admitted = self
                .admission
                .admit(peer.ip())
                .and_then(|slot| Ok((slot, self.admission.handshake()?)));
            let (slot, handshake) = match admitted {
                Ok(ok) => ok,
                Err(why) => {
                    refusals.record(peer, why);
                    drop(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tls = self.tls.clone();
            let timeout = self.handshake_timeout;
            let tx = tx.clone();
            let what = self.what;
            tokio::spawn(async move {
                let io = Admitted {
                    stream,
                    _slot: slot,
                };
                let done = tokio::time::timeout(timeout, tls.accept(io)).await;
                drop(handshake);
                match done {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, "{what}: TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "{what}: TLS handshake timed out"),
                }
            });
        }
    }
}

/// Rate-limited logging of refused connections.
struct RefusalLog {
    what: &'static str,
    since_last: u64,
    last: Option<Instant>,
}

impl RefusalLog {
    fn new(what: &'static str) -> RefusalLog {
        RefusalLog {
            what,
            since_last: 0,
            last: None,
        }
    }

    fn record(&mut self, peer: SocketAddr, why: Refusal) {
        self.since_last += 1;
        let due = self.last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            let reason = match why {
                Refusal::Total => "the listener is at its connection limit",
                Refusal::PerPeer => "this peer is at its connection limit",
                Refusal::Handshakes => "too many TLS handshakes in flight",
            };
            tracing::warn!(
                %peer,
                refused = self.since_last,
                "{}: connection closed: {reason}",
                self.what
            );
            self.since_last = 0;
            self.last = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits(total: usize, per_peer: usize) -> ListenerLimits {
        ListenerLimits {
            total,
            per_peer,
            handshakes: total,
            per_peer_on_loopback: false,
        }
    }

    #[test]
    fn a_peer_gets_its_share_and_gets_it_back_when_connections_close() {
        let a = Admission::new(limits(10, 2));
        let first = a.admit(ip("10.0.0.1")).unwrap();
        let _second = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.1")).unwrap_err(), Refusal::PerPeer);
        // Another peer is not affected.
        let _other = a.admit(ip("10.0.0.2")).unwrap();
        drop(first);
        let _again = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.open(), 3);
    }

    #[test]
    fn the_total_binds_all_peers_and_loopback_only_counts_there() {
        let a = Admission::new(limits(3, 1));
        let _l1 = a.admit(ip("127.0.0.1")).unwrap();
        let _l2 = a.admit(ip("127.0.0.1")).unwrap();
        let _p = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.2")).unwrap_err(), Refusal::Total);
    }

    #[test]
    fn ipv6_peers_share_their_64() {
        let a = Admission::new(limits(10, 1));
        let _x = a.admit(ip("fd00::1")).unwrap();
        assert_eq!(a.admit(ip("fd00::2")).unwrap_err(), Refusal::PerPeer);
        let _y = a.admit(ip("fd00:0:0:1::1")).unwrap();
    }

    #[test]
    fn closed_peers_are_forgotten() {
        let a = Admission::new(limits(10, 1));
        drop(a.admit(ip("10.0.0.9")).unwrap());
        assert!(a.per_peer.lock().unwrap().is_empty());
    }

    #[test]
    fn limits_fit_the_descriptor_limit() {
        let fitted = DEFAULT_CONNECTION_LIMITS.fit_to(256);
        let total = fitted.host.total + fitted.enrolment.total;
        assert!(total + RESERVED_FDS <= 256, "{fitted:?}");
        assert!(
            fitted.enrolment.total >= 16 && fitted.host.total >= 64,
            "{fitted:?}"
        );
        assert!(fitted.host.handshakes <= fitted.host.total);
        // A generous limit leaves the defaults alone.
        assert_eq!(
            DEFAULT_CONNECTION_LIMITS.fit_to(1 << 20),
            DEFAULT_CONNECTION_LIMITS
        );
    }
}
