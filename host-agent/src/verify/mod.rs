//! `hostctl verify`: the spec's architecture contracts (C1–C6) checked
//! against what hostctl renders for the topology — the same values and
//! objects `up` installs — each with a verdict and the evidence for it.
//!
//! Each contract is a pure function over rendered material
//! ([`contracts`]), so a test can break one on purpose (a Kyverno step on
//! mgmt, a non-VXLAN tunnel, a two-hour refresh) and see `broken` with
//! the evidence. A contract whose component is not in the catalogue yet
//! says `not installed` rather than pretending to hold.

pub mod contracts;
pub mod rendered;

use serde::Serialize;
use std::fmt;

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The contract holds, and the evidence says why.
    Holds,
    /// The contract is broken; the evidence names what breaks it.
    Broken,
    /// What would prove or disprove it is not there to look at.
    CannotTell,
    /// The component the contract is about is not installed (yet).
    NotInstalled,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::Broken => "BROKEN",
            Verdict::CannotTell => "cannot tell",
            Verdict::NotInstalled => "not installed",
        })
    }
}

/// One contract's verdict on one cluster (or on the environment: `cluster`
/// is `None` for contracts about placement across clusters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `C1` … `C6`.
    pub contract: &'static str,
    /// What the contract promises, in the spec's words.
    pub promise: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub verdict: Verdict,
    /// What was looked at and what it said.
    pub evidence: Vec<String>,
}

impl Check {
    /// A check of `contract` on `cluster`, its verdict decided by whether
    /// anything in `broken` was found (else `holds` with `held`).
    pub fn from_findings(
        (contract, promise): (&'static str, &'static str),
        cluster: Option<&str>,
        broken: Vec<String>,
        held: Vec<String>,
    ) -> Check {
        let (verdict, evidence) = if broken.is_empty() {
            (Verdict::Holds, held)
        } else {
            (Verdict::Broken, broken)
        };
        Check {
            contract,
            promise,
            cluster: cluster.map(str::to_owned),
            verdict,
            evidence,
        }
    }
}

/// Every check, with where its evidence came from.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `rendered`: the configuration hostctl renders for the topology (what
    /// `up` applies), not yet the live clusters.
    pub source: &'static str,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether any contract is broken (`verify` then exits non-zero).
    pub fn any_broken(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == Verdict::Broken)
    }
}
