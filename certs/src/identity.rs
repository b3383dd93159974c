//! Certificate + key bundles handed to TLS stacks, with the key kept out of
//! logs: `Debug` on anything holding a key prints `[redacted]`.

use std::fmt;

/// A PEM-encoded private key. Wrapped so that `{:?}` on a struct that holds
/// one (an `Identity`, an error context, a tracing field) cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPem(String);

impl SecretPem {
    pub(crate) fn new(pem: String) -> Self {
        SecretPem(pem)
    }

    /// The PEM text, for handing to a TLS library or writing to a 0600 file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A certificate and its private key, both PEM — exactly what
/// `tonic::transport::Identity::from_pem` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The certificate alone, without its CA: peers are expected to hold
    /// the CA already (the agent CA, or the cluster's kubeadm CA).
    pub cert_pem: String,
    /// The matching private key; `Debug` prints it as `[redacted]`.
    pub key_pem: SecretPem,
}
