//! The integrity rule of an etcd snapshot file, shared by both agents.
//!
//! etcd's `Maintenance.Snapshot` stream ends with the SHA-256 of everything
//! before it, so a saved file is `db ‖ sha256(db)`. `etcdctl snapshot save`
//! refuses a file whose size is not `512·k + 32` ("sha256 checksum not
//! found") and `etcdutl snapshot restore` recomputes the hash. Every hop of
//! hostctl (node agent, host store, restore) checks the same rule while the
//! bytes stream past, so no side ever holds a whole snapshot in memory.

use sha2::{Digest, Sha256};

/// Length of the trailing SHA-256.
pub const HASH_LEN: usize = 32;

/// bolt pages are multiples of 512 bytes; etcdctl uses this to tell a
/// snapshot with a trailing hash from a bare copied database.
const PAGE_ALIGN: u64 = 512;

/// Why a snapshot's bytes cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    /// The size says there is no trailing hash (truncated or a bare db).
    #[error("sha256 checksum not found: size {size} is not 512·k + 32 (truncated?)")]
    MissingChecksum { size: u64 },
    /// The trailing hash does not match the data (a corrupted byte).
    #[error("sha256 mismatch: the file carries {carried}, its data hashes to {computed}")]
    HashMismatch { carried: String, computed: String },
    /// The bytes are fine but not the ones the sender announced.
    #[error(
        "snapshot differs from its trailer: expected {expected_size} bytes sha256 {expected}, got {size} bytes sha256 {actual}"
    )]
    TrailerMismatch {
        expected: String,
        expected_size: u64,
        actual: String,
        size: u64,
    },
}

/// A snapshot whose trailing hash matched its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// SHA-256 of the database (the file without its last 32 bytes).
    pub sha256: [u8; HASH_LEN],
    /// Size of the whole file, trailing hash included.
    pub size: u64,
}

impl Verified {
    /// Checks these bytes against what the sender announced in its trailer.
    pub fn matches(&self, sha256: &[u8], size: u64) -> Result<(), IntegrityError> {
        if self.sha256.as_slice() == sha256 && self.size == size {
            Ok(())
        } else {
            Err(IntegrityError::TrailerMismatch {
                expected: hex(sha256),
                expected_size: size,
                actual: hex(&self.sha256),
                size: self.size,
            })
        }
    }

    /// The hash as lower-case hex, as stored in metadata.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Hashes a snapshot as it streams past, holding back the last 32 bytes
/// seen so far (they may be the trailer), so memory stays constant.
#[derive(Clone, Default)]
pub struct TrailerHasher {
    hasher: Sha256,
    tail: Vec<u8>,
    size: u64,
}

impl TrailerHasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        let available = self.tail.len() + data.len();
        if available <= HASH_LEN {
            self.tail.extend_from_slice(data);
            return;
        }
        let to_hash = available - HASH_LEN;
        if to_hash >= self.tail.len() {
            let from_data = to_hash - self.tail.len();
            self.hasher.update(&self.tail);
            self.hasher.update(&data[..from_data]);
            self.tail.clear();
            self.tail.extend_from_slice(&data[from_data..]);
        } else {
            self.hasher.update(&self.tail[..to_hash]);
            self.tail.drain(..to_hash);
            self.tail.extend_from_slice(data);
        }
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Checks the trailing hash as etcdctl does (size first, then hash).
    pub fn finish(self) -> Result<Verified, IntegrityError> {
        if self.size < HASH_LEN as u64 || self.size % PAGE_ALIGN != HASH_LEN as u64 {
            return Err(IntegrityError::MissingChecksum { size: self.size });
        }
        let computed: [u8; HASH_LEN] = self.hasher.finalize().into();
        if computed.as_slice() != self.tail.as_slice() {
            return Err(IntegrityError::HashMismatch {
                carried: hex(&self.tail),
                computed: hex(&computed),
            });
        }
        Ok(Verified {
            sha256: computed,
            size: self.size,
        })
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file name both agents give a snapshot: `<UTC time>-rev<revision>.db`
/// with the time as `YYYYMMDDTHHMMSSZ`, so names sort by time.
pub fn file_name(taken_at: std::time::SystemTime, revision: i64) -> String {
    let secs = taken_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}-rev{revision}.db", utc_stamp(secs))
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch (proleptic Gregorian);
/// a value past the calendar jiff supports shows as `@<seconds>`.
pub fn utc_stamp(secs: u64) -> String {
    match i64::try_from(secs).map(jiff::Timestamp::from_second) {
        Ok(Ok(ts)) => ts.strftime("%Y%m%dT%H%M%SZ").to_string(),
        _ => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(db_len: usize) -> Vec<u8> {
        let db: Vec<u8> = (0..db_len).map(|i| (i % 251) as u8).collect();
        let mut file = db.clone();
        file.extend_from_slice(&Sha256::digest(&db));
        file
    }

    fn feed(file: &[u8], chunk: usize) -> Result<Verified, IntegrityError> {
        let mut h = TrailerHasher::new();
        for c in file.chunks(chunk) {
            h.update(c);
        }
        h.finish()
    }

    #[test]
    fn accepts_a_good_file_whatever_the_chunking() {
        let file = snapshot(4096);
        let want: [u8; 32] = Sha256::digest(&file[..4096]).into();
        for chunk in [1, 7, 31, 32, 33, 512, 4096, 10_000] {
            let v = feed(&file, chunk).unwrap();
            assert_eq!(v.sha256, want, "chunk {chunk}");
            assert_eq!(v.size, 4128);
        }
    }

    #[test]
    fn refuses_a_flipped_byte_and_a_truncation() {
        let mut file = snapshot(4096);
        file[100] ^= 1;
        assert!(matches!(
            feed(&file, 1000),
            Err(IntegrityError::HashMismatch { .. })
        ));
        let file = snapshot(4096);
        assert!(matches!(
            feed(&file[..4000], 1000),
            Err(IntegrityError::MissingChecksum { size: 4000 })
        ));
        assert!(feed(&file[..4096], 1000).is_err(), "hash cut off");
    }

    #[test]
    fn names_sort_by_utc_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(file_name(t, 42), "20231114T221320Z-rev42.db");
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn trailer_must_match_what_was_seen() {
        let v = feed(&snapshot(512), 100).unwrap();
        assert!(v.matches(&v.sha256, v.size).is_ok());
        assert!(v.matches(&[0; 32], v.size).is_err());
        assert!(v.matches(&v.sha256, v.size + 1).is_err());
    }
}
