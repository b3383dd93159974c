//! Error types. Every variant that concerns a file names that file and says
//! how to fix it, because the person reading the message is usually running
//! `hostctl` and has no other way to find out which of a dozen PEM files broke.
//! No variant ever carries key material, so `Display`/`Debug` are safe to log.

use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or using the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file exists but its content is unusable (truncated, edited, wrong kind).
    #[error("{p}: {what}; {fix}", p = .path.display())]
    Damaged {
        path: PathBuf,
        what: String,
        fix: String,
    },

    /// A private key and certificate that must form a pair do not.
    #[error(
        "{k} does not belong to {c} (the key's public half differs from the certificate's public key); {fix}",
        k = .key_path.display(),
        c = .cert_path.display()
    )]
    KeyMismatch {
        key_path: PathBuf,
        cert_path: PathBuf,
        fix: String,
    },

    /// A leaf certificate on disk was not issued by the CA next to it.
    #[error("{c} was not issued by {a}; {fix}", c = .cert_path.display(), a = .ca_path.display())]
    WrongIssuer {
        cert_path: PathBuf,
        ca_path: PathBuf,
        fix: String,
    },

    /// A secret file or directory is readable by other users.
    #[error("{p} has mode {mode:04o}, which lets other users read secrets; run `chmod {want:o} {p}`", p = .path.display())]
    Permissions { path: PathBuf, mode: u32, want: u32 },

    /// Half of a pair is present, so creating the other half would silently
    /// replace trust material; refuse instead.
    #[error("{p} exists but {m} is missing; {fix}", p = .present.display(), m = .missing.display())]
    Incomplete {
        present: PathBuf,
        missing: PathBuf,
        fix: String,
    },

    /// `Pki::open` was asked to load a PKI that was never created.
    #[error("no PKI at {p}; run `hostctl up` (or `hostctl init`) first to create it", p = .path.display())]
    NotInitialised { path: PathBuf },

    /// A cluster that the PKI does not hold was asked for.
    #[error(
        "no PKI for cluster {name:?} (known: {known:?}); add it to the topology and run `hostctl up`"
    )]
    UnknownCluster { name: String, known: Vec<String> },

    /// A caller-supplied name cannot be used (it becomes a file name and a CN).
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },

    /// A caller-supplied host SAN is neither an IP address nor a DNS name.
    #[error("invalid host address {value:?}: not an IP address or DNS name")]
    InvalidSan { value: String },

    /// A node's certificate signing request was refused.
    #[error("certificate signing request refused: {reason}")]
    CsrRefused { reason: String },

    /// A certificate handed to an inspection helper could not be parsed.
    #[error("not a valid X.509 certificate: {reason}")]
    BadCertificate { reason: String },

    /// A filesystem operation failed.
    #[error("{action} {p}: {source}", p = .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Key generation or signing failed inside rcgen/ring.
    #[error("could not {what}: {source}")]
    Crypto {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },

    /// A document (kubeconfig, token store) could not be serialised.
    #[error("could not write {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// Why an enrolment token was refused. Callers map every variant to the same
/// "permission denied" on the wire, but log the variant so an operator can
/// tell a replay from a typo.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No token with this id exists, or the secret part is wrong.
    #[error("unknown enrolment token")]
    Unknown,
    /// The token has been consumed already (possible replay).
    #[error("enrolment token was already used")]
    AlreadyUsed,
    /// The token's lifetime is over.
    #[error("enrolment token has expired")]
    Expired,
    /// The token is valid but was issued for another node.
    #[error("enrolment token was issued for node {issued_for:?}")]
    WrongNode { issued_for: String },
    /// The token store itself could not be read or written.
    #[error(transparent)]
    Store(#[from] Box<PkiError>),
}

impl From<PkiError> for TokenError {
    fn from(e: PkiError) -> Self {
        TokenError::Store(Box::new(e))
    }
}

/// Shorthand used by the helpers that wrap `std::io` calls.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.into();
    move |source| PkiError::Io {
        action,
        path,
        source,
    }
}

/// Shorthand used around rcgen calls.
pub(crate) fn crypto_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Crypto { what, source }
}
