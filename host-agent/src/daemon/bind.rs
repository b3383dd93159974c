//! Binding the daemon's TCP listeners — also to an address that does not
//! exist yet.
//!
//! By default the daemon listens on the node network's host address (and
//! loopback) only, not on every interface (issue 13, item 3). On a Mac that address belongs to the vmnet bridge
//! (`bridge100`), which macOS creates when the *first* VM starts — after
//! `up` has started the daemon, since the VM's user-data needs a token
//! the daemon issues. Binding it would fail with EADDRNOTAVAIL, so the
//! daemon starts anyway (its control socket answers at once) and binds
//! the listener as soon as the address appears, retrying every
//! [`RETRY_EVERY`]. Nodes cannot reach the host before that address
//! exists, so nothing is lost by waiting. Any other bind error, and a
//! missing address with port 0 (the port could not be promised), still
//! fails the start.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

/// How often a listener waiting for its address tries again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A listener, or the address it will bind once that exists.
#[derive(Debug)]
pub enum Socket {
    Bound(TcpListener),
    WhenAvailable(SocketAddr),
}

/// Whether a failed bind of `addr` means "wait for the address".
fn waits_for(addr: SocketAddr, e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
        && addr.port() != 0
        && !addr.ip().is_unspecified()
        && !addr.ip().is_loopback()
}

/// Binds `addr`; a node-network address that does not exist yet gives a
/// [`Socket::WhenAvailable`]. Returns the socket and its address.
pub async fn bind(what: &'static str, addr: SocketAddr) -> io::Result<(Socket, SocketAddr)> {
    match TcpListener::bind(addr).await {
        Ok(l) => {
            let bound = l.local_addr()?;
            Ok((Socket::Bound(l), bound))
        }
        Err(e) if waits_for(addr, &e) => {
            tracing::info!(
                %addr,
                "{what}: the address does not exist yet (on a Mac the VM bridge appears \
                 with the first VM); listening as soon as it does"
            );
            Ok((Socket::WhenAvailable(addr), addr))
        }
        Err(e) => Err(e),
    }
}

/// Binds `port` on each of `addresses` (port 0: the first one's port for
/// the rest, so a service has one port). Returns the sockets and the first
/// one's address.
pub async fn bind_all(
    what: &'static str,
    addresses: &[std::net::IpAddr],
    port: u16,
) -> io::Result<(Vec<Socket>, SocketAddr)> {
    let mut sockets = Vec::with_capacity(addresses.len());
    let mut first: Option<SocketAddr> = None;
    for ip in addresses {
        let port = first.map_or(port, |a| a.port());
        let (socket, bound) = bind(what, SocketAddr::new(*ip, port)).await?;
        first.get_or_insert(bound);
        sockets.push(socket);
    }
    let first = first.ok_or_else(|| io::Error::other("no address to listen on"))?;
    Ok((sockets, first))
}

impl Socket {
    /// The listener, once bound (at once for [`Socket::Bound`]).
    pub async fn ready(self, what: &'static str) -> TcpListener {
        let addr = match self {
            Socket::Bound(l) => return l,
            Socket::WhenAvailable(addr) => addr,
        };
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!(%addr, "{what}: the address appeared; listening");
                    return l;
                }
                Err(e) if waits_for(addr, &e) => {}
                // E.g. another process took the port meanwhile: say so,
                // keep trying (the daemon's other services keep working).
                Err(e) => tracing::warn!(%addr, "{what}: cannot listen yet: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_node_network_address_with_a_fixed_port_waits() {
        let missing = io::Error::from(io::ErrorKind::AddrNotAvailable);
        let at = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert!(waits_for(at("192.168.64.1:7443"), &missing));
        assert!(!waits_for(at("192.168.64.1:0"), &missing), "port 0");
        assert!(!waits_for(at("127.0.0.1:7443"), &missing), "loopback");
        assert!(!waits_for(at("0.0.0.0:7443"), &missing), "unspecified");
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        assert!(!waits_for(at("192.168.64.1:7443"), &in_use));
    }
}
