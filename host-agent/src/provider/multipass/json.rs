//! Tolerant models of `multipass list --format json` and
//! `multipass info --format json`.
//!
//! The shapes differ between releases (k8s-bootstrap.md §4.2): 1.16 writes
//! keys alphabetically through Qt and 1.17 in insertion order through
//! Boost.JSON with a new `zone` object; counts arrive as strings
//! (`"cpu_count": "4"`) or, for a stopped machine, as `""`, and objects as
//! `{}`. So everything here is parsed by key, unknown keys are ignored, every
//! field has a default, and numbers are accepted as numbers or strings. Only
//! a reply that is not JSON at all, or an entry without a name, is an error:
//! anything less would hide the machines we manage.

use crate::provider::{VmInfo, VmState};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// `list --format json`: `{"list":[...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListReply {
    #[serde(default, deserialize_with = "null_default")]
    pub list: Vec<ListEntry>,
}

/// One instance in a `list` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct ListEntry {
    pub name: String,
    #[serde(default, deserialize_with = "text")]
    pub state: String,
    #[serde(default, deserialize_with = "addresses")]
    pub ipv4: Vec<Ipv4Addr>,
    #[serde(default, deserialize_with = "text")]
    pub release: String,
}

/// `info --format json`: `{"errors":[...],"info":{"<name>":{...}}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoReply {
    /// Kept as raw values: their shape is not documented.
    #[serde(default, deserialize_with = "null_default")]
    pub errors: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub info: BTreeMap<String, InfoEntry>,
}

/// One instance in an `info` reply. Sizes are bytes; `None` means Multipass
/// did not say (a stopped machine reports empty strings and objects).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoEntry {
    #[serde(default, deserialize_with = "text")]
    pub state: String,
    #[serde(default, deserialize_with = "addresses")]
    pub ipv4: Vec<Ipv4Addr>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub cpu_count: Option<u64>,
    #[serde(default, deserialize_with = "null_default")]
    pub memory: Usage,
    #[serde(default, deserialize_with = "null_default")]
    pub disks: BTreeMap<String, Usage>,
    #[serde(default, deserialize_with = "text")]
    pub release: String,
    #[serde(default, deserialize_with = "text")]
    pub image_release: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub snapshot_count: Option<u64>,
    #[serde(default, deserialize_with = "loads")]
    pub load: Vec<f64>,
}

/// `memory` and each `disks.<dev>` entry: integers in `memory`, strings in
/// `disks`, both possibly absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub used: Option<u64>,
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unexpected `multipass {command} --format json` output: {source}")]
pub struct ParseError {
    pub command: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// Parses a `list --format json` reply.
pub fn parse_list(text: &str) -> Result<ListReply, ParseError> {
    serde_json::from_str(text).map_err(|source| ParseError {
        command: "list",
        source,
    })
}

/// Parses an `info --format json` reply.
pub fn parse_info(text: &str) -> Result<InfoReply, ParseError> {
    serde_json::from_str(text).map_err(|source| ParseError {
        command: "info",
        source,
    })
}

/// Multipass's state words (`format_utils.cpp status_string_for`) in the
/// provider's terms; words the trait has no variant for are kept verbatim.
pub fn state_from(text: &str) -> VmState {
    match text.trim() {
        "Running" => VmState::Running,
        "Starting" => VmState::Starting,
        "Stopped" => VmState::Stopped,
        "Deleted" => VmState::Deleted,
        other => VmState::Other(other.to_owned()),
    }
}

impl ListEntry {
    pub fn to_vm_info(&self) -> VmInfo {
        VmInfo {
            name: self.name.clone(),
            state: state_from(&self.state),
            addresses: self.ipv4.clone(),
        }
    }
}

impl InfoEntry {
    pub fn to_vm_info(&self, name: &str) -> VmInfo {
        VmInfo {
            name: name.to_owned(),
            state: state_from(&self.state),
            addresses: self.ipv4.clone(),
        }
    }
}

/// `null` (or absence, via `#[serde(default)]`) becomes the default value.
fn null_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// A string field; numbers are written out, anything else is empty.
fn text<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    })
}

/// A count or size given as a number or a string; `""`, `null`, negative
/// and non-numeric values mean "not reported".
fn lenient_u64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `ipv4`: every entry that reads as an IPv4 address; other entries (or a
/// non-array) are skipped rather than failing the whole reply.
fn addresses<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<Ipv4Addr>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Value::String(s) => s.trim().parse().ok().into_iter().collect(),
        _ => Vec::new(),
    })
}

/// `load`: floats, possibly as strings, possibly empty.
fn loads<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<f64>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}
