//! Why a Vault call or a bootstrap step failed. No variant carries a token,
//! a key or a request body: Vault's own `errors` strings and the status are
//! enough to act on, and the fix is named where there is one.

use std::path::PathBuf;
use std::time::Duration;

/// A failed Vault call or bootstrap step.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The CA PEM given for pinning holds no usable certificate.
    #[error("the CA for {address} is not usable: {reason}")]
    BadCa {
        /// The Vault address the CA was meant for.
        address: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The address is not `https://host[:port]`.
    #[error("{address} is not an https://host[:port] address")]
    BadAddress {
        /// The address as given.
        address: String,
    },
    /// TCP, TLS or HTTP failed before Vault answered.
    #[error("{method} {path} on {address}: {reason}")]
    Transport {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// Vault's address.
        address: String,
        /// What failed.
        reason: String,
    },
    /// Vault did not answer within the per-request timeout.
    #[error("{method} {path} on {address}: no answer within {after:?}")]
    Timeout {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// Vault's address.
        address: String,
        /// The timeout.
        after: Duration,
    },
    /// Vault answered with an error status.
    #[error("{method} {path}: Vault answered {status}: {}", if errors.is_empty() { "(no message)".to_owned() } else { errors.join("; ") })]
    Api {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// Vault's `errors` array.
        errors: Vec<String>,
    },
    /// The answer was not the JSON expected, or too large.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A streamed answer (a raft snapshot) grew past its bound; nothing
    /// was kept.
    #[error("{path}: the answer is larger than {limit} bytes; nothing was kept")]
    TooLarge {
        /// API path.
        path: String,
        /// The bound, in bytes.
        limit: u64,
    },
    /// Vault did not come up within the bootstrap's deadline.
    #[error("Vault at {address} did not answer sys/health within {waited:?} (last: {last})")]
    NotReady {
        /// Vault's address.
        address: String,
        /// How long we waited.
        waited: Duration,
        /// The last failure seen.
        last: String,
    },
    /// Vault is initialised but the unseal key hostctl wrote at init is gone.
    #[error(
        "Vault is initialised but its unseal key file {} is missing: restore it from your backup of \
         that directory (the key Vault was initialised with, or the one of the raft snapshot restored). \
         hostctl never re-initialises an initialised Vault",
        path.display()
    )]
    UnsealKeyMissing {
        /// The missing file.
        path: PathBuf,
    },
    /// Neither a working admin token nor the root token is on disk.
    #[error(
        "no usable token for Vault: {} {reason}, and the root token {} is gone (revoked after bootstrap). \
         Restore {} from backup, or generate a new root token with the unseal key \
         (sys/generate-root; hostctl does not automate that yet) and write it to {}",
        admin.display(), root.display(), admin.display(), root.display()
    )]
    NoToken {
        /// The admin token file.
        admin: PathBuf,
        /// Why the admin token did not work ("is missing", "was refused").
        reason: String,
        /// The root token file.
        root: PathBuf,
    },
    /// Vault's state conflicts with what hostctl would configure and is not
    /// hostctl's to overwrite (e.g. `secret/` mounted as another engine).
    #[error("{what}: {fix}")]
    Conflict {
        /// What conflicts.
        what: String,
        /// What to do.
        fix: String,
    },
    /// A key file is readable by others, or not valid.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A configuration value hostctl was given cannot be used.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (e.g. `clusters[1].name`).
        field: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The lab root refused or failed to sign the intermediate.
    #[error("signing Vault's intermediate CA with the lab root: {0}")]
    Signer(String),
    /// Reading or writing a file under the key directory.
    #[error(transparent)]
    File(#[from] fsio::Error),
}

impl VaultError {
    /// The HTTP status if Vault answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
