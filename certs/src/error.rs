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
        /// The unusable file.
        path: PathBuf,
        /// What is wrong with it, as a phrase that follows the path (e.g.
        /// "not a PEM PUBLIC KEY (file is truncated or edited)").
        what: String,
        /// How to recover and what that costs (restore from a backup, or
        /// which directory to remove and who must enrol again).
        fix: String,
    },

    /// A private key and certificate that must form a pair do not.
    #[error(
        "{k} does not belong to {c} (the key's public half differs from the certificate's public key); {fix}",
        k = .key_path.display(),
        c = .cert_path.display()
    )]
    KeyMismatch {
        /// The private key (`*.key`, or `sa.key` for the service-account pair).
        key_path: PathBuf,
        /// The certificate, or `sa.pub` for the service-account pair, whose
        /// public key is not the key's.
        cert_path: PathBuf,
        /// How to recover and what that costs, as for `Damaged`.
        fix: String,
    },

    /// A leaf certificate on disk was not issued by the CA next to it.
    #[error("{c} was not issued by {a}; {fix}", c = .cert_path.display(), a = .ca_path.display())]
    WrongIssuer {
        /// The leaf certificate that names another issuer or whose signature
        /// the CA's key does not verify.
        cert_path: PathBuf,
        /// The CA certificate it should have been issued by.
        ca_path: PathBuf,
        /// How to recover and what that costs, as for `Damaged`.
        fix: String,
    },

    /// A secret file or directory is readable by other users.
    #[error("{p} has mode {mode:04o}, which lets other users read secrets; run `chmod {want:o} {p}`", p = .path.display())]
    Permissions {
        /// The secret file, or the directory of `pki/`, that is too open.
        path: PathBuf,
        /// Its permission bits as found (`mode & 0o777`, e.g. `0o640`).
        mode: u32,
        /// The mode it must have: [`KEY_MODE`](crate::KEY_MODE) for a
        /// secret, [`DIR_MODE`](crate::DIR_MODE) for a directory.
        want: u32,
    },

    /// Half of a pair is present, so creating the other half would silently
    /// replace trust material; refuse instead.
    #[error("{p} exists but {m} is missing; {fix}", p = .present.display(), m = .missing.display())]
    Incomplete {
        /// The half that exists and was left untouched.
        present: PathBuf,
        /// The half that is missing and was not created.
        missing: PathBuf,
        /// How to recover and what that costs, as for `Damaged`.
        fix: String,
    },

    /// `Pki::open` was asked to load a PKI that was never created.
    #[error("no PKI at {p}; run `hostctl up` (or `hostctl init`) first to create it", p = .path.display())]
    NotInitialised {
        /// The `pki/` directory when no agent plane exists at all, otherwise
        /// the first certificate or key found missing by a load that may
        /// not create material.
        path: PathBuf,
    },

    /// A cluster that the PKI does not hold was asked for.
    #[error(
        "no PKI for cluster {name:?} (known: {known:?}); add it to the topology and run `hostctl up`"
    )]
    UnknownCluster {
        /// The cluster name that was asked for.
        name: String,
        /// The clusters the PKI does hold, sorted, so a typo is easy to spot.
        known: Vec<String>,
    },

    /// A caller-supplied name cannot be used (it becomes a file name and a CN).
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// Which kind of name it was ("node name", "cluster name", "cluster
        /// directory").
        what: &'static str,
        /// The name as given.
        name: String,
        /// The DNS-label rule it breaks (e.g. "must be 1 to 63 characters").
        reason: &'static str,
    },

    /// A caller-supplied host SAN is neither an IP address nor a DNS name.
    #[error("invalid host address {value:?}: not an IP address or DNS name")]
    InvalidSan {
        /// The entry of [`PkiSpec::host_sans`](crate::PkiSpec::host_sans) as given.
        value: String,
    },

    /// A node's certificate signing request was refused.
    #[error("certificate signing request refused: {reason}")]
    CsrRefused {
        /// What was wrong with the request or the identity asked for (not
        /// PEM, a signature that does not verify, a validity outside
        /// `1..=`[`MAX_NODE_VALIDITY_DAYS`](crate::MAX_NODE_VALIDITY_DAYS), …). It names no key material, so it
        /// may be returned to the node.
        reason: String,
    },

    /// A certificate handed to an inspection helper could not be parsed.
    #[error("not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// What could not be accepted: not PEM, a PEM block of another type,
        /// bytes after the certificate, or a malformed field (Organization,
        /// Common Name, subjectAltName).
        reason: String,
    },

    /// A filesystem operation failed.
    #[error("{action} {p}: {source}", p = .path.display())]
    Io {
        /// The step, as a verb phrase ("reading", "listing", "creating
        /// directory", or a step of an atomic write such as "renaming into
        /// place").
        action: &'static str,
        /// The file or directory the step acted on (for a write that failed
        /// before its rename, the temporary file beside the final one).
        path: PathBuf,
        /// The system's error; its kind tells a missing file from a refused one.
        #[source]
        source: std::io::Error,
    },

    /// Key generation or signing failed inside rcgen/ring.
    #[error("could not {what}: {source}")]
    Crypto {
        /// The operation, as a phrase after "could not" ("generate a CA
        /// key", "sign a certificate", …).
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },

    /// A document (kubeconfig, token store) could not be serialised.
    #[error("could not write {what}: {reason}")]
    Encode {
        /// The document ("kubeconfig", "token store").
        what: &'static str,
        /// The serialiser's error; nothing was written.
        reason: String,
    },
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
    WrongNode {
        /// The node the token was issued for (not the one presenting it).
        issued_for: String,
    },
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
