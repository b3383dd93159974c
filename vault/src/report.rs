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

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Initialised => write!(f, "initialised"),
            Change::Unsealed => write!(f, "unsealed"),
            Change::SetAside(path) => write!(f, "set aside {path}"),
            Change::Mount(path) => write!(f, "mounted {path}"),
            Change::AuthMount(path) => write!(f, "enabled auth {path}"),
            Change::Config(path) => write!(f, "wrote {path}"),
            Change::Intermediate => write!(f, "installed the intermediate CA"),
            Change::AdminToken => write!(f, "created the admin token"),
            Change::RootTokenRevoked => write!(f, "revoked the root token"),
        }
    }
}

/// One line: "no change", or the changes in order.
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changes.is_empty() {
            return write!(f, "no change");
        }
        let all: Vec<String> = self.changes.iter().map(ToString::to_string).collect();
        write!(f, "{}", all.join(", "))
    }
}
