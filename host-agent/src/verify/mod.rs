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
pub mod drill;
pub mod facts;
pub mod live;
pub mod rendered;

use serde::Serialize;
use std::fmt;

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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

/// Where a check's evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The configuration hostctl renders for the topology (what `up` applies).
    Rendered,
    /// The running cluster, through its API server.
    Live,
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
    pub source: Source,
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
            source: Source::Rendered,
            verdict,
            evidence,
        }
    }

    /// The same check, its evidence read from the running cluster.
    pub fn live(self) -> Check {
        Check {
            source: Source::Live,
            ..self
        }
    }
}

/// Every check; each says where its evidence came from.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Clusters not checked live, and why (not up yet, no PKI).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_live: Vec<String>,
}

impl Report {
    /// Whether any contract is broken (`verify` then exits non-zero).
    pub fn any_broken(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == Verdict::Broken)
    }
}
