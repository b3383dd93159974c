//! The object store's preconditions (`backups: { managed: true }`): a
//! server to run (the `garage` binary as a process of the host, or Docker
//! on a Mac, where the store runs as a container) and its ports free or
//! held by the running store. Pure over its inputs except the lookups in
//! [`checks`], so each verdict is unit-tested.

use super::Check;
use crate::storage::{ADMIN_PORT, S3_PORT};
use std::path::Path;

/// The `garage` binary the process form runs.
pub fn server(found: Option<&Path>) -> Check {
    match found {
        Some(path) => Check::ok("backups server", format!("garage at {}", path.display())),
        None => Check::fail(
            "backups server",
            crate::storage::error::StorageError::NoServer {
                version: crate::storage::server::GARAGE_VERSION,
            }
            .to_string(),
        ),
    }
}

/// A port the store listens on: free, or the running store's.
pub fn port(name: &str, port: u16, free: bool, ours_running: bool) -> Check {
    let what = format!("backups {name} port");
    match (free, ours_running) {
        (true, _) => Check::ok(&what, format!(":{port} is free")),
        (false, true) => Check::ok(&what, format!(":{port} is the running object store")),
        (false, false) => Check::fail(
            &what,
            format!(
                ":{port} is in use by another program; stop it (the object store's {name} API listens there)"
            ),
        ),
    }
}

/// Every check, for the store of `storage` (its running state read once).
pub async fn checks(storage: &crate::storage::service::Storage) -> Vec<Check> {
    let mut out = Vec::new();
    if storage.docker.is_none() {
        out.push(server(crate::storage::server::binary().ok().as_deref()));
    }
    let running = storage.server().await.is_some();
    for (name, p) in [("S3", S3_PORT), ("admin", ADMIN_PORT)] {
        out.push(port(name, p, super::mirrors::port_free(p), running));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_missing_server_says_how_to_install_it_and_a_taken_port_names_the_api() {
        let missing = server(None);
        assert_eq!(missing.status, Status::Fail);
        assert!(
            missing.message.contains("cargo install garage"),
            "{}",
            missing.message
        );
        assert_eq!(
            server(Some(Path::new("/usr/bin/garage"))).status,
            Status::Ok
        );
        assert_eq!(port("S3", 3900, true, false).status, Status::Ok);
        assert_eq!(port("S3", 3900, false, true).status, Status::Ok);
        let taken = port("S3", 3900, false, false);
        assert_eq!(taken.status, Status::Fail);
        assert!(taken.message.contains(":3900"), "{}", taken.message);
    }
}
