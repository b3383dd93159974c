//! The bounded unauthenticated flood of both listeners, and its tally.

use super::*;

/// What the flood did and what it was told.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) attempts: AtomicU64,
    pub(super) enrolled: AtomicU64,
    pub(super) denied: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    /// Malformed, or too large to decode.
    pub(super) invalid: AtomicU64,
    /// Connection closed or refused before or during the call.
    pub(super) closed: AtomicU64,
    pub(super) other: AtomicU64,
    /// Raw connections (idle, half-handshake, garbage) opened.
    pub(super) raw_opened: AtomicU64,
    pub(super) raw_refused: AtomicU64,
}

#[derive(Debug)]
pub(super) struct TallySnapshot {
    pub(super) attempts: u64,
    pub(super) enrolled: u64,
    pub(super) denied: u64,
    pub(super) rate_limited: u64,
    pub(super) invalid: u64,
    pub(super) closed: u64,
    pub(super) other: u64,
    pub(super) raw_opened: u64,
    pub(super) raw_refused: u64,
}

impl TallySnapshot {
    pub(super) fn refused(&self) -> u64 {
        self.denied + self.rate_limited + self.invalid
    }
}

impl std::fmt::Display for TallySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bogus Enrol calls, {} refused (denied {}, rate-limited {}, invalid {}), \
             {} cut off by the transport, {} other, {} enrolled; \
             {} raw connections (idle, half TLS, garbage) opened, {} refused at connect",
            self.attempts,
            self.refused(),
            self.denied,
            self.rate_limited,
            self.invalid,
            self.closed,
            self.other,
            self.enrolled,
            self.raw_opened,
            self.raw_refused
        )
    }
}

impl Tally {
    pub(super) fn snapshot(&self) -> TallySnapshot {
        let g = |a: &AtomicU64| a.load(Relaxed);
        TallySnapshot {
            attempts: g(&self.attempts),
            enrolled: g(&self.enrolled),
            denied: g(&self.denied),
            rate_limited: g(&self.rate_limited),
            invalid: g(&self.invalid),
            closed: g(&self.closed),
            other: g(&self.other),
            raw_opened: g(&self.raw_opened),
            raw_refused: g(&self.raw_refused),
        }
    }

    pub(super) fn count(&self, code: Code) {
        let counter = match code {
            Code::PermissionDenied | Code::Unauthenticated => &self.denied,
            Code::ResourceExhausted => &self.rate_limited,
            Code::InvalidArgument | Code::OutOfRange => &self.invalid,
            Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Unknown => {
                &self.closed
            }
            _ => &self.other,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// The unauthenticated flood of both listeners.
#[derive(Clone)]
pub(super) struct Flood {
    pub(super) enrol: SocketAddr,
    pub(super) host: SocketAddr,
    pub(super) ca: Certificate,
    pub(super) tls: Arc<rustls::ClientConfig>,
    pub(super) client_hello: Arc<Vec<u8>>,
    /// The topology's node names, which some bogus calls claim to be.
    pub(super) names: Arc<Vec<String>>,
    pub(super) next: Arc<AtomicU64>,
    pub(super) tally: Arc<Tally>,
}

impl Flood {
    pub(super) fn new(ca_pem: &str, enrol: SocketAddr, host: SocketAddr) -> Flood {
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(der.expect("CA PEM")).expect("CA");
        }
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tls = Arc::new(config);
        // The first flight of a real handshake, sent and never followed up.
        let mut conn = rustls::ClientConnection::new(tls.clone(), server_name()).expect("TLS");
        let mut hello = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut hello).expect("ClientHello");
        }
        Flood {
            enrol,
            host,
            ca: Certificate::from_pem(ca_pem),
            tls,
            client_hello: Arc::new(hello),
            names: Arc::new(nodes().into_iter().map(|n| n.name).collect()),
            next: Arc::new(AtomicU64::new(0)),
            tally: Arc::new(Tally::default()),
        }
    }

    pub(super) fn spawn(
        self,
        rt: &tokio::runtime::Runtime,
        deadline: TokioInstant,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for k in 0..=ENROL_CALLERS {
            let f = self.clone();
            let long_name = k == ENROL_CALLERS;
            tasks.push(rt.spawn(async move { f.enrol_until(deadline, long_name).await }));
        }
        for (to, counts) in [(self.enrol, RAW_ON_ENROL), (self.host, RAW_ON_HOST)] {
            let kinds = [Raw::Idle, Raw::HalfHandshake, Raw::Garbage];
            for (n, kind) in counts.into_iter().zip(kinds) {
                for _ in 0..n {
                    let f = self.clone();
                    tasks.push(rt.spawn(async move { f.raw_until(to, kind, deadline).await }));
                }
            }
        }
        tasks
    }

    /// The next loopback source address, rotating over [`SOURCES`] of them.
    pub(super) fn source(&self, i: u64) -> IpAddr {
        let n = u32::try_from(i % u64::from(SOURCES)).unwrap_or(0);
        IpAddr::V4(Ipv4Addr::new(127, 10, (n / 250) as u8, (n % 250) as u8 + 1))
    }

    /// One made-up request per attempt number: unknown names, the real
    /// nodes' names with made-up tokens, empty or malformed fields; or, for
    /// the long-name caller, an unknown name of [`LONG_NAME_BYTES`].
    pub(super) fn request(&self, i: u64, long_name: bool) -> EnrolRequest {
        let node = match i % 3 {
            _ if long_name => format!("{i}-{}", "x".repeat(LONG_NAME_BYTES)),
            0 => format!("flood-{i}"),
            1 => self.names[(i % 6) as usize].clone(),
            _ => String::new(),
        };
        let token = match i % 3 {
            2 => "not a token".to_owned(),
            _ => format!(
                "hct1.{:08x}.{:032x}",
                i.wrapping_mul(2_654_435_761) as u32,
                i
            ),
        };
        EnrolRequest {
            node,
            token,
            csr_pem:
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .into(),
        }
    }

    pub(super) async fn enrol_until(&self, deadline: TokioInstant, long_name: bool) {
        while TokioInstant::now() < deadline {
            let i = self.next.fetch_add(1, Relaxed);
            self.tally.attempts.fetch_add(1, Relaxed);
            match tokio::time::timeout(ATTEMPT_BOUND, self.enrol_once(i, long_name)).await {
                Ok(Ok(())) => {
                    self.tally.enrolled.fetch_add(1, Relaxed);
                }
                Ok(Err(code)) => self.tally.count(code),
                Err(_) => self.tally.count(Code::DeadlineExceeded),
            }
        }
    }

    pub(super) async fn enrol_once(&self, i: u64, long_name: bool) -> Result<(), Code> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .domain_name("127.0.0.1");
        let channel = Endpoint::from_shared(format!("https://{}", self.enrol))
            .map_err(|_| Code::Internal)?
            .tls_config(tls)
            .map_err(|_| Code::Internal)?
            .local_address(Some(self.source(i)))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|_| Code::Unavailable)?;
        EnrolmentClient::new(channel)
            .enrol(self.request(i, long_name))
            .await
            .map(|_| ())
            .map_err(|s| s.code())
    }

    /// One kind of raw connection to `to`, again and again until the
    /// deadline: each is held until the daemon closes it (or the deadline).
    pub(super) async fn raw_until(&self, to: SocketAddr, kind: Raw, deadline: TokioInstant) {
        while TokioInstant::now() < deadline {
            let i = self.next.fetch_add(1, Relaxed);
            match tokio::time::timeout(ATTEMPT_BOUND, self.raw_open(to, kind, i)).await {
                Ok(Some(mut stream)) => {
                    self.tally.raw_opened.fetch_add(1, Relaxed);
                    let end = deadline.min(TokioInstant::now() + ATTEMPT_BOUND);
                    let _ = tokio::time::timeout_at(end, until_closed(&mut stream)).await;
                }
                _ => {
                    self.tally.raw_refused.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    pub(super) async fn raw_open(&self, to: SocketAddr, kind: Raw, i: u64) -> Option<TcpStream> {
        let mut stream = connect_from(self.source(i), to).await.ok()?;
        match kind {
            Raw::Idle => {}
            Raw::HalfHandshake => stream.write_all(&self.client_hello).await.ok()?,
            Raw::Garbage => {
                let junk: Vec<u8> = (0..4096u64)
                    .map(|k| (k.wrapping_mul(31).wrapping_add(i) % 251) as u8)
                    .collect();
                stream.write_all(&junk).await.ok()?;
            }
        }
        Some(stream)
    }

    /// Connections held open while the daemon is asked to stop: idle ones
    /// and half-done handshakes on both ports, and enrolment connections
    /// whose handshake completed but which never send a request.
    pub(super) async fn hold_through_stop(&self) -> Vec<Box<dyn Send>> {
        let mut held: Vec<Box<dyn Send>> = Vec::new();
        for (i, to) in [self.enrol, self.host].into_iter().enumerate() {
            for k in 0..8u64 {
                let i = i as u64 * 100 + k;
                for kind in [Raw::Idle, Raw::HalfHandshake] {
                    if let Ok(Some(s)) =
                        tokio::time::timeout(ATTEMPT_BOUND, self.raw_open(to, kind, i)).await
                    {
                        held.push(Box::new(s));
                    }
                }
            }
        }
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        for k in 0..8 {
            let handshake = async {
                let tcp = connect_from(self.source(k), self.enrol).await.ok()?;
                connector.connect(server_name(), tcp).await.ok()
            };
            if let Ok(Some(tls)) = tokio::time::timeout(ATTEMPT_BOUND, handshake).await {
                held.push(Box::new(tls));
            }
        }
        held
    }
}

#[derive(Clone, Copy)]
pub(super) enum Raw {
    Idle,
    HalfHandshake,
    Garbage,
}

pub(super) fn server_name() -> ServerName<'static> {
    ServerName::try_from("127.0.0.1").expect("server name")
}

/// A TCP connection to `to` from the loopback address `from`.
pub(super) async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Reads and discards until the peer closes (EOF or an error).
pub(super) async fn until_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
