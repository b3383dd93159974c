//! What a bootstrap run changed. Empty means Vault already was as hostctl
//! wants it: the check for "a second run changes nothing".

use serde::Serialize;

/// One repair or first-time step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", content = "what", rename_all = "kebab-case")]
pub enum Change {
    /// `sys/init` ran; the key and root token were written.
    Initialised,
    /// Vault was sealed and is now unsealed.
    Unsealed,
    /// A key file of an earlier, wiped Vault was renamed to this path.
    SetAside(String),
    /// A secrets engine was mounted or retuned at this path.
    Mount(String),
    /// An auth method was enabled at this path.
    AuthMount(String),
    /// A policy, configuration or role was written at this API path.
    Config(String),
    /// The PKI intermediate was generated, signed by the lab root and installed.
    Intermediate,
    /// hostctl's admin token was created.
    AdminToken,
    /// The root token was revoked and its file removed.
    RootTokenRevoked,
}

/// The changes of one run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Each change made.
    pub changes: Vec<Change>,
}

impl Report {
    /// Records `change`.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}
