//! The repository key as apt wants it: `gpg --dearmor` done in Rust, so
//! the agent needs no gpg and no pipeline of curl and gpg. (The download
//! itself goes through the agent's one door for leaving it, [`crate::exec`].)

use base64::Engine;

/// `gpg --dearmor`: the binary packets inside an ASCII-armoured block
/// (RFC 4880 §6). Input that is already binary is returned as is.
pub fn dearmor(input: &[u8]) -> Result<Vec<u8>, String> {
    if input.first().is_some_and(|b| b & 0x80 != 0) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input).map_err(|_| "neither armoured nor binary".to_owned())?;
    let mut lines = text.lines().map(str::trim_end);
    lines
        .by_ref()
        .find(|l| l.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"))
        .ok_or("no BEGIN PGP PUBLIC KEY BLOCK line")?;
    // Armour headers ("Version: …") end at the first empty line.
    let mut body = String::new();
    let mut checksum = None;
    let mut in_headers = true;
    let mut ended = false;
    for line in lines {
        if in_headers {
            in_headers = !line.is_empty() && line.contains(": ");
            if in_headers || line.is_empty() {
                continue;
            }
        }
        if line.starts_with("-----END PGP PUBLIC KEY BLOCK-----") {
            ended = true;
            break;
        }
        match line.strip_prefix('=') {
            Some(crc) if line.len() == 5 => checksum = Some(crc.to_owned()),
            _ => body.push_str(line),
        }
    }
    if !ended {
        return Err("no END PGP PUBLIC KEY BLOCK line".into());
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let packets = engine
        .decode(&body)
        .map_err(|e| format!("bad base64: {e}"))?;
    if let Some(crc) = checksum {
        let want = engine
            .decode(&crc)
            .map_err(|e| format!("bad checksum: {e}"))?;
        let got = crc24(&packets).to_be_bytes();
        if want[..] != got[1..] {
            return Err("armour checksum mismatch".into());
        }
    }
    if packets.is_empty() {
        return Err("empty key block".into());
    }
    Ok(packets)
}

/// RFC 4880 §6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dearmors_with_headers_and_checksum() -> Result<(), String> {
        let packets = b"\x99\x01\x0dkey bytes";
        let engine = base64::engine::general_purpose::STANDARD;
        let crc = engine.encode(&crc24(packets).to_be_bytes()[1..]);
        let armoured = format!(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: x\n\n{}\n={crc}\n-----END PGP PUBLIC KEY BLOCK-----\n",
            engine.encode(packets)
        );
        assert_eq!(dearmor(armoured.as_bytes())?, packets);
        let corrupt = armoured.replace(&format!("={crc}"), "=AAAA");
        assert!(dearmor(corrupt.as_bytes()).is_err());
        assert!(dearmor(b"<html>not a key</html>").is_err());
        Ok(())
    }

    #[test]
    fn the_stand_in_key_dearmors() {
        assert!(dearmor(crate::exec::STAND_IN_KEY.as_bytes()).is_ok());
    }
}
