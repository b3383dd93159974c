//! DHCPv4 messages (RFC 2131/2132), as far as a client needs them: build a
//! DISCOVER or REQUEST, read an OFFER, ACK or NAK. Pure functions, so the
//! wire format is unit-tested without a network.

use std::net::Ipv4Addr;

pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;

const MAGIC: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETERS: u8 = 55;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;
/// The BROADCAST flag: "I have no address yet, broadcast your answer",
/// which is what lets a plain UDP socket on an unconfigured interface
/// receive it.
const FLAG_BROADCAST: u16 = 0x8000;

/// What the client puts in every message.
#[derive(Debug, Clone)]
pub struct ClientParams<'a> {
    pub xid: u32,
    pub mac: [u8; 6],
    pub client_id: &'a [u8],
    pub hostname: &'a str,
}

/// A DISCOVER (`requested`/`server` `None`) or a REQUEST selecting an offer.
pub fn build(
    kind: u8,
    p: &ClientParams<'_>,
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 1; // BOOTREQUEST
    m[1] = 1; // Ethernet
    m[2] = 6; // hardware address length
    m[4..8].copy_from_slice(&p.xid.to_be_bytes());
    m[10..12].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
    m[28..34].copy_from_slice(&p.mac);
    m.extend_from_slice(&MAGIC);
    let mut opt = |code: u8, data: &[u8]| {
        // Every option the client sends is far below 255 bytes; longer
        // data would be cut, never overflow.
        let len = data.len().min(255);
        m.push(code);
        m.push(len as u8);
        m.extend_from_slice(&data[..len]);
    };
    opt(OPT_MESSAGE_TYPE, &[kind]);
    opt(OPT_CLIENT_ID, p.client_id);
    if !p.hostname.is_empty() {
        opt(OPT_HOSTNAME, p.hostname.as_bytes());
    }
    if let Some(ip) = requested {
        opt(OPT_REQUESTED_IP, &ip.octets());
    }
    if let Some(ip) = server {
        opt(OPT_SERVER_ID, &ip.octets());
    }
    opt(
        OPT_PARAMETERS,
        &[OPT_SUBNET_MASK, OPT_ROUTER, OPT_LEASE_TIME, OPT_SERVER_ID],
    );
    m.push(OPT_END);
    m
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: u8,
    pub xid: u32,
    pub chaddr: [u8; 6],
    pub yiaddr: Ipv4Addr,
    pub server: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub lease_secs: Option<u32>,
}

impl Reply {
    /// The prefix length of the offered netmask (/24 when none was sent).
    pub fn prefix(&self) -> u8 {
        self.netmask
            .map_or(24, |m| u32::from(m).leading_ones() as u8)
    }
}

/// Reads a BOOTREPLY; `None` for anything else or a malformed message.
pub fn parse(bytes: &[u8]) -> Option<Reply> {
    if bytes.len() < 240 || bytes[0] != 2 || bytes[236..240] != MAGIC {
        return None;
    }
    let ip4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
    let mut reply = Reply {
        kind: 0,
        xid: u32::from_be_bytes(bytes[4..8].try_into().ok()?),
        chaddr: bytes[28..34].try_into().ok()?,
        yiaddr: ip4(&bytes[16..20])?,
        server: None,
        netmask: None,
        router: None,
        lease_secs: None,
    };
    let mut i = 240;
    while i < bytes.len() {
        let code = bytes[i];
        if code == OPT_END {
            break;
        }
        if code == OPT_PAD {
            i += 1;
            continue;
        }
        let len = usize::from(*bytes.get(i + 1)?);
        let data = bytes.get(i + 2..i + 2 + len)?;
        match code {
            OPT_MESSAGE_TYPE => reply.kind = *data.first()?,
            OPT_SERVER_ID => reply.server = ip4(data),
            OPT_SUBNET_MASK => reply.netmask = ip4(data),
            OPT_ROUTER => reply.router = data.get(..4).and_then(ip4),
            OPT_LEASE_TIME => {
                reply.lease_secs = <[u8; 4]>::try_from(data).ok().map(u32::from_be_bytes)
            }
            _ => {}
        }
        i += 2 + len;
    }
    (reply.kind != 0).then_some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(id: &[u8]) -> ClientParams<'_> {
        ClientParams {
            xid: 0xdead_beef,
            mac: [0x52, 0x54, 0, 1, 2, 3],
            client_id: id,
            hostname: "mgmt-cp",
        }
    }

    /// Turns one of our requests into the reply a server would send.
    fn as_reply(mut m: Vec<u8>, kind: u8) -> Vec<u8> {
        m[0] = 2;
        m[16..20].copy_from_slice(&[192, 168, 252, 2]);
        m.truncate(240);
        m.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, kind, OPT_PAD]);
        m.extend_from_slice(&[OPT_SERVER_ID, 4, 192, 168, 252, 1]);
        m.extend_from_slice(&[OPT_SUBNET_MASK, 4, 255, 255, 255, 0]);
        m.extend_from_slice(&[OPT_ROUTER, 4, 192, 168, 252, 1]);
        m.extend_from_slice(&[OPT_LEASE_TIME, 4, 0, 1, 0x51, 0x80, OPT_END]);
        m
    }

    #[test]
    fn discover_carries_broadcast_flag_client_id_and_hostname() {
        let id = [1, 0x52, 0x54, 0, 1, 2, 3, 0, 0, 0, 1];
        let m = build(DISCOVER, &params(&id), None, None);
        assert_eq!(&m[10..12], &[0x80, 0]);
        assert_eq!(&m[236..240], &MAGIC);
        assert_eq!(&m[240..243], &[OPT_MESSAGE_TYPE, 1, DISCOVER]);
        assert!(
            m.windows(13)
                .any(|w| w[0] == OPT_CLIENT_ID && w[1] == 11 && w[2..] == id)
        );
        assert!(m.windows(9).any(|w| w == b"\x0c\x07mgmt-cp"));
        assert_eq!(*m.last().unwrap(), OPT_END);
        assert!(parse(&m).is_none(), "a request is not a reply");
    }

    #[test]
    fn request_names_the_offer_and_replies_parse() {
        let id = [1u8; 7];
        let offer = Ipv4Addr::new(192, 168, 252, 2);
        let server = Ipv4Addr::new(192, 168, 252, 1);
        let m = build(REQUEST, &params(&id), Some(offer), Some(server));
        assert!(
            m.windows(6)
                .any(|w| w == [OPT_REQUESTED_IP, 4, 192, 168, 252, 2])
        );
        assert!(
            m.windows(6)
                .any(|w| w == [OPT_SERVER_ID, 4, 192, 168, 252, 1])
        );
        let r = parse(&as_reply(m, ACK)).unwrap();
        assert_eq!(r.kind, ACK);
        assert_eq!(r.xid, 0xdead_beef);
        assert_eq!(r.yiaddr, offer);
        assert_eq!(r.server, Some(server));
        assert_eq!(r.router, Some(server));
        assert_eq!(r.prefix(), 24);
        assert_eq!(r.lease_secs, Some(86400));
        assert!(parse(&[2u8; 100]).is_none());
    }
}
