//! The fast-mode machine's DHCP client: a minimal DISCOVER/OFFER/REQUEST/ACK
//! exchange with the emulated network's dnsmasq.
//!
//! It runs inside the machine's namespace as the hidden `__dhcp` command
//! (`ip netns exec NS multipass-emulator __dhcp …`), on a UDP socket bound
//! to 0.0.0.0:68 with SO_BROADCAST, the BROADCAST flag set in every request
//! so replies come to 255.255.255.255. SO_BINDTODEVICE is not used: rustix
//! has no wrapper for it and unsafe code is denied; the namespace's only
//! NIC is `enp0s1`, and [`acquire`] gives it a temporary device route for
//! the exchange, which sends the broadcast out of it just the same (and
//! satisfies reverse-path filtering for the replies).
//!
//! **Each boot gets a new lease, on purpose.** The client identifier is
//! `01 + MAC + <boot count, 4 bytes>`, so a restarted machine asks as a new
//! client while its previous lease is still held, and dnsmasq hands it the
//! next free address. Real bootpd usually re-issues the same address; here
//! it never does, so tests prove that nothing depends on a machine keeping
//! its DHCP address.

use crate::dhcp::{self, ClientParams, Reply};
use crate::leases;
use crate::names;
use crate::state::Lease;
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for an OFFER before sending DISCOVER again. dnsmasq
/// pings an address (up to 3 s) before offering it, and handles one
/// client's ping at a time, so parallel boots queue: resending sooner only
/// adds more pings to the queue.
const OFFER_WAIT: Duration = Duration::from_secs(10);
const ACK_WAIT: Duration = Duration::from_secs(5);
const REQUEST_TRIES: u32 = 3;
/// Metric of the temporary device route for the exchange: the last resort.
const TEMP_ROUTE_METRIC: &str = "65535";
/// networkd's metric for the DHCP default route under netplan.
pub const DHCP_ROUTE_METRIC: &str = "100";

/// What `__dhcp` prints (one JSON line) when it got a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Acquired {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub server: Option<Ipv4Addr>,
    pub lease_secs: u32,
}

/// The client identifier of boot `boot` of the machine with `mac`.
pub fn client_id(mac: [u8; 6], boot: u32) -> Vec<u8> {
    let mut id = vec![0x01];
    id.extend_from_slice(&mac);
    id.extend_from_slice(&boot.to_be_bytes());
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.len()
        .is_multiple_of(2)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// The `__dhcp` command: one exchange on the namespace's NIC, bounded by
/// `timeout`; prints [`Acquired`] as JSON.
pub fn run(
    mac: &str,
    client_id_hex: &str,
    hostname: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mac = names::parse_mac(mac).context("bad --mac")?;
    let id = unhex(client_id_hex).context("bad --client-id")?;
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68))
        .context("binding 0.0.0.0:68")?;
    socket.set_broadcast(true).context("SO_BROADCAST")?;
    let xid = u32::from_be_bytes(names::random_bytes());
    let params = ClientParams {
        xid,
        mac,
        client_id: &id,
        hostname,
    };
    let reply = exchange(&socket, &params, Instant::now() + timeout)?;
    let acquired = Acquired {
        address: reply.yiaddr,
        prefix: reply.prefix(),
        router: reply.router,
        server: reply.server,
        lease_secs: reply.lease_secs.unwrap_or(86400),
    };
    println!("{}", serde_json::to_string(&acquired)?);
    Ok(())
}

fn exchange(socket: &UdpSocket, p: &ClientParams<'_>, deadline: Instant) -> anyhow::Result<Reply> {
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut discovers = 0;
    while Instant::now() < deadline {
        discovers += 1;
        socket
            .send_to(&dhcp::build(dhcp::DISCOVER, p, None, None), to)
            .context("sending DHCPDISCOVER")?;
        let Some(offer) = receive(socket, p, &[dhcp::OFFER], OFFER_WAIT, deadline)? else {
            continue;
        };
        for _ in 0..REQUEST_TRIES {
            let request = dhcp::build(dhcp::REQUEST, p, Some(offer.yiaddr), offer.server);
            socket
                .send_to(&request, to)
                .context("sending DHCPREQUEST")?;
            match receive(socket, p, &[dhcp::ACK, dhcp::NAK], ACK_WAIT, deadline)? {
                Some(r) if r.kind == dhcp::ACK => return Ok(r),
                Some(_) => break, // NAK: start over
                None => {}
            }
        }
    }
    bail!("no DHCP lease before the deadline ({discovers} DHCPDISCOVER sent)")
}

/// Waits up to `wait` (and never past `deadline`) for a reply of one of
/// `kinds` to this client's transaction; other traffic is skipped.
fn receive(
    socket: &UdpSocket,
    p: &ClientParams<'_>,
    kinds: &[u8],
    wait: Duration,
    deadline: Instant,
) -> anyhow::Result<Option<Reply>> {
    let until = (Instant::now() + wait).min(deadline);
    let mut buf = [0u8; 1500];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(r) = dhcp::parse(&buf[..n])
                    && r.xid == p.xid
                    && r.chaddr == p.mac
                    && kinds.contains(&r.kind)
                {
                    return Ok(Some(r));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receiving DHCP replies"),
        }
    }
}

/// Caller side: runs the client in namespace `ns` for boot `boot`, puts
/// the leased address and the default route on `ifname`, waits until
/// dnsmasq has written the lease and refreshes the bootpd mirror.
pub fn acquire(
    state: &Path,
    ns: &str,
    ifname: &str,
    mac: &str,
    hostname: &str,
    boot: u32,
    timeout: Duration,
) -> anyhow::Result<Lease> {
    let mac_bytes = names::parse_mac(mac).context("bad MAC in the record")?;
    let id = hex(&client_id(mac_bytes, boot));
    let route = [
        "route",
        "replace",
        "default",
        "dev",
        ifname,
        "metric",
        TEMP_ROUTE_METRIC,
    ];
    let temp_route: Vec<&str> = ["-n", ns].into_iter().chain(route).collect();
    crate::ip::run(&temp_route)?;
    let exe = std::env::current_exe().context("locating the emulator binary")?;
    let out = Command::new(crate::ip::program())
        .args(["netns", "exec", ns])
        .arg(&exe)
        .args([
            "__dhcp",
            "--mac",
            mac,
            "--client-id",
            &id,
            "--hostname",
            hostname,
        ])
        .arg("--timeout-ms")
        .arg(timeout.as_millis().to_string())
        .stdin(Stdio::null())
        .output()
        .context("running the DHCP client");
    let del: Vec<&str> = [
        "-n",
        ns,
        "route",
        "del",
        "default",
        "dev",
        ifname,
        "metric",
        TEMP_ROUTE_METRIC,
    ]
    .into_iter()
    .collect();
    crate::ip::run_quiet(&del);
    let out = out?;
    if !out.status.success() {
        bail!(
            "DHCP client in {ns} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let got: Acquired = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "unreadable DHCP client output {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let cidr = format!("{}/{}", got.address, got.prefix);
    crate::ip::run(&["-n", ns, "addr", "add", &cidr, "dev", ifname])?;
    if let Some(router) = got.router {
        let via = router.to_string();
        crate::ip::run(&[
            "-n",
            ns,
            "route",
            "replace",
            "default",
            "via",
            &via,
            "dev",
            ifname,
            "metric",
            DHCP_ROUTE_METRIC,
        ])?;
    }
    let written = crate::process::wait_until(Duration::from_secs(10), || {
        leases::current(state)
            .iter()
            .any(|l| l.address == got.address)
    });
    if !written {
        bail!(
            "dnsmasq acknowledged {} but did not record the lease",
            got.address
        );
    }
    leases::refresh_mirror(state)?;
    Ok(Lease {
        address: got.address,
        prefix: got.prefix,
        router: got.router,
        client_id: id,
        expires_unix: crate::fsutil::now_unix() + u64::from(got.lease_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_boot_has_its_own_client_identifier() {
        let mac = [0x52, 0x54, 0, 0xab, 0xcd, 0xef];
        let first = client_id(mac, 1);
        assert_eq!(first, [1, 0x52, 0x54, 0, 0xab, 0xcd, 0xef, 0, 0, 0, 1]);
        assert_ne!(first, client_id(mac, 2));
        assert_eq!(unhex(&hex(&first)), Some(first));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
