//! Names and values Multipass validates (instance names, sizes), the names
//! of the kernel objects a machine uses, and random MACs.

/// Multipass's instance-name rule: letters, digits and hyphens, starting
/// with a letter and ending with a letter or digit (`valid_hostname`). The
/// length cap of a DNS label is the emulator's: the name also becomes a
/// hostname and part of a namespace name.
pub fn valid_instance_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// A size as `--memory`/`--disk` take it: bytes, or a number with a `K`,
/// `M` or `G` suffix (powers of 1024, case-insensitive, optionally followed
/// by `B` or `iB`), fractions allowed (`1.5G`), as Multipass's
/// `MemorySize` reads it.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    if number.matches('.').count() > 1 {
        return None;
    }
    let unit = unit.to_ascii_uppercase();
    let factor: u64 = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = whole.parse().ok()?;
    let mut bytes = whole.checked_mul(factor)?;
    if !frac.is_empty() {
        let frac_value: f64 = format!("0.{frac}").parse().ok()?;
        bytes = bytes.checked_add((frac_value * factor as f64) as u64)?;
    }
    Some(bytes)
}

/// FNV-1a (64-bit): tiny and stable, enough to derive short kernel names.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The machine's network namespace.
pub fn netns_for(name: &str) -> String {
    format!("mpemu-{name}")
}

/// The host end of a fast-mode machine's veth pair, on the bridge: a short
/// hash of the name, so any instance name fits IFNAMSIZ (15 characters).
pub fn veth_for(name: &str) -> String {
    format!("mpe{:08x}", fnv1a(name.as_bytes()) as u32)
}

/// A VM's tap device on the bridge.
pub fn tap_for(name: &str) -> String {
    format!("mpt{:08x}", fnv1a(name.as_bytes()) as u32)
}

/// Bytes from the kernel's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut buf = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if filled.is_err() {
        // Never expected on Linux; fall back on time and pid, still unique
        // enough for a test machine's MAC.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (fnv1a(&(seed + i as u64).to_le_bytes()) >> 24) as u8;
        }
    }
    buf
}

/// A random `52:54:00:xx:xx:xx` MAC, as Multipass gives each instance's
/// default NIC (QEMU's prefix; locally administered, unicast).
pub fn random_mac() -> [u8; 6] {
    let r: [u8; 3] = random_bytes();
    [0x52, 0x54, 0x00, r[0], r[1], r[2]]
}

/// `52:54:00:0a:bc:de`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `52:54:00:0a:bc:de` (case-insensitive, two digits per octet).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for octet in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *octet = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_follow_multipass() {
        for good in ["a", "mgmt-cp", "app1-worker-0", "X9"] {
            assert!(valid_instance_name(good), "{good}");
        }
        for bad in [
            "",
            "1a",
            "a-",
            "a_b",
            "-a",
            "--all",
            "näme",
            &"a".repeat(64),
        ] {
            assert!(!valid_instance_name(bad), "{bad}");
        }
    }

    #[test]
    fn sizes_take_binary_suffixes_and_fractions() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("1536M"), Some(1536 << 20));
        assert_eq!(parse_size("129K"), Some(129 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        for bad in ["", "G", "1T", "1.2.3G", "-1G", ".5G", "1 G x"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn kernel_names_fit_ifnamsiz_and_differ() {
        let long = "a".repeat(63);
        assert!(veth_for(&long).len() <= 15);
        assert_ne!(veth_for("mgmt-cp"), veth_for("mgmt-w1"));
        assert_ne!(veth_for("n"), tap_for("n"));
    }

    #[test]
    fn macs_are_qemu_prefixed_and_round_trip() {
        let mac = random_mac();
        assert_eq!(mac[..3], [0x52, 0x54, 0x00]);
        let text = format_mac(&mac);
        assert_eq!(parse_mac(&text), Some(mac));
        assert_eq!(
            parse_mac("52:54:00:0A:bc:de"),
            Some([0x52, 0x54, 0, 10, 0xbc, 0xde])
        );
        assert_eq!(parse_mac("52:54:00:0a:bc"), None);
    }
}
