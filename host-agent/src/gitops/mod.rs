//! The platform's desired state as a Git repository that hostctl owns and
//! serves itself: Argo CD on the management cluster syncs it (see
//! [`crate::addons::argocd`] and `docs/gitops.md` for why Git, served by
//! hostctl, rather than an OCI artifact in a registry or a Gitea).
//!
//! ```text
//! $HOSTCTL_HOME/gitops/            0700, GIT_PROJECT_ROOT of the server
//!   platform.git/                  bare repository, branch main ([`repo`])
//!   server.crt                     0644, the self-signed serving certificate Argo CD pins
//!   server.key                     0600 ([`identity`])
//! ```
//!
//! Module map: [`repo`] (publishing a tree as the new tip of `main`, with
//! Git's plumbing), [`identity`] (the serving certificate), [`server`]
//! (HTTPS in front of `git http-backend`, read-only), [`cgi`] (running
//! `git http-backend` for one request), [`git`] (the hermetic `git`
//! command line every part uses), [`error`].

pub mod cgi;
pub mod error;
pub mod git;
pub mod identity;
pub mod repo;
pub mod server;

pub use error::GitopsError;
pub use identity::ServerIdentity;
pub use repo::{CommitId, PlatformRepo};
pub use server::{GitServer, GitServerConfig};

use crate::addons::render::PlatformSource;
use std::path::{Path, PathBuf};

/// The Git server's port on the host (next to the agent plane's
/// 7443–7445).
pub const GIT_PORT: u16 = 7447;

/// The repository's name in URLs and under [`gitops_dir`].
pub const REPO_NAME: &str = "platform.git";

/// The branch hostctl publishes and Argo CD follows.
pub const BRANCH: &str = crate::addons::argocd::platform::BRANCH;

/// `$HOSTCTL_HOME/gitops`: the repository, the server's key and certificate.
pub fn gitops_dir(home: &Path) -> PathBuf {
    home.join("gitops")
}

/// `$HOSTCTL_HOME/gitops/platform.git`.
pub fn repo_dir(home: &Path) -> PathBuf {
    gitops_dir(home).join(REPO_NAME)
}

/// Where Argo CD clones from: `https://<host agent address>:7447/platform.git`,
/// named by the address nodes (and so the clusters' pods) reach the host
/// at, with the serving certificate to pin when the daemon has made it.
///
/// Only the daemon creates the certificate (at its start, which `up` waits
/// for before it renders add-ons); this only reads it, so two processes
/// never mint two different ones.
pub fn platform_source(
    resolved: &topology::Resolved,
    home: &Path,
) -> Result<PlatformSource, GitopsError> {
    Ok(PlatformSource::served_by_host(
        resolved,
        identity::read_cert_pem(&gitops_dir(home))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_names_the_host_address_and_pins_the_certificate_once_it_exists() {
        let resolved = topology::default_topology()
            .resolve(None)
            .expect("resolves");
        let home = tempfile::tempdir().expect("home");
        let source = platform_source(&resolved, home.path()).expect("source");
        let address = resolved.host_agent_address().to_string();
        assert_eq!(
            source.repo_url,
            format!("https://{address}:7447/platform.git")
        );
        assert_eq!(source.server_name, address);
        assert_eq!(source.server_cert_pem, None);

        let made = ServerIdentity::load_or_create(
            &gitops_dir(home.path()),
            &[resolved.host_agent_address().into()],
        )
        .expect("identity");
        let source = platform_source(&resolved, home.path()).expect("source");
        assert_eq!(source.server_cert_pem.as_deref(), Some(made.cert_pem()));
    }
}
