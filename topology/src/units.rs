//! Memory and disk sizes.
//!
//! Sizes are written the way Multipass accepts them (`4G`, `4GiB`, `512M`), and
//! Multipass reads `K`/`M`/`G` as powers of 1024, so this module does too:
//! `4G` and `4GiB` both mean 4 × 2³⁰ bytes. A bare number is refused rather than
//! guessed at, since "4" could mean bytes or gigabytes.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// A size in bytes; displayed in the largest binary unit that divides it
/// exactly, so `4GiB` is written back as `4GiB`, never as `4294967296`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` gibibytes (saturating), for defaults and tests.
    pub const fn gib(n: u64) -> Self {
        ByteSize(n.saturating_mul(GIB))
    }

    /// `n` mebibytes (saturating).
    pub const fn mib(n: u64) -> Self {
        ByteSize(n.saturating_mul(MIB))
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The size in whole mebibytes, rounded down (what `multipass launch --memory` wants).
    pub const fn as_mib(self) -> u64 {
        self.0 / MIB
    }
}

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No digits at the start.
    #[error("`{0}` does not start with a whole number")]
    NoNumber(String),
    /// Digits but no unit.
    #[error("`{0}` has no unit")]
    NoUnit(String),
    /// A unit this tool does not know.
    #[error("`{unit}` is not a size unit")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// More bytes than a u64 holds.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        if digits.is_empty() {
            return Err(SizeError::NoNumber(s.to_owned()));
        }
        let unit = unit.trim_start();
        if unit.is_empty() {
            return Err(SizeError::NoUnit(s.to_owned()));
        }
        let multiplier = unit_multiplier(unit).ok_or_else(|| SizeError::UnknownUnit {
            unit: unit.to_owned(),
        })?;
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .map(ByteSize)
            .ok_or_else(|| SizeError::TooLarge(s.to_owned()))
    }
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    Some(match unit {
        "B" => 1,
        "K" | "Ki" | "KiB" => KIB,
        "M" | "Mi" | "MiB" => MIB,
        "G" | "Gi" | "GiB" => GIB,
        "T" | "Ti" | "TiB" => TIB,
        _ => return None,
    })
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
        for (size, name) in units {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{name}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Human form for messages: exact unit when it divides, else GiB with one decimal.
pub(crate) fn approx(size: u64) -> String {
    if size.is_multiple_of(MIB) {
        ByteSize(size).to_string()
    } else {
        format!("{:.1}GiB", size as f64 / GIB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_units_like_multipass() {
        assert_eq!("4G".parse(), Ok(ByteSize::gib(4)));
        assert_eq!("4GiB".parse(), Ok(ByteSize::gib(4)));
        assert_eq!("1700MiB".parse(), Ok(ByteSize::mib(1700)));
        assert_eq!("512 M".parse(), Ok(ByteSize::mib(512)));
        assert_eq!("1T".parse(), Ok(ByteSize::gib(1024)));
        assert_eq!("10B".parse(), Ok(ByteSize(10)));
    }

    #[test]
    fn refuses_ambiguous_or_broken_sizes() {
        assert_eq!("4".parse::<ByteSize>(), Err(SizeError::NoUnit("4".into())));
        assert!(matches!(
            "GiB".parse::<ByteSize>(),
            Err(SizeError::NoNumber(_))
        ));
        assert!(matches!(
            "4GB".parse::<ByteSize>(),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            "-4G".parse::<ByteSize>(),
            Err(SizeError::NoNumber(_))
        ));
        assert!(matches!(
            "99999999999999999999G".parse::<ByteSize>(),
            Err(SizeError::TooLarge(_))
        ));
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::gib(4).to_string(), "4GiB");
        assert_eq!(ByteSize::mib(1700).to_string(), "1700MiB");
        assert_eq!(ByteSize(3072).to_string(), "3KiB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
    }
}
