//! `garage.toml` for the host's single-node store.
//!
//! One node, `replication_factor = 1` (the host's disk is the one copy;
//! docs/backup.md says what that means for the RPO), LMDB metadata, the
//! secrets read from 0600 files ([`super::layout`]) so they are on no
//! command line and in no rendered file. The S3 API listens on the host's
//! node-network address (the clusters' Velero reach it there); the admin
//! API and RPC on loopback only, since only hostctl uses them.

use super::layout::Layout;
use std::net::SocketAddr;

/// Where each of Garage's listeners binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listeners {
    pub s3: SocketAddr,
    pub admin: SocketAddr,
    pub rpc: SocketAddr,
}

/// The region Garage answers for and every client signs with.
pub const REGION: &str = "garage";

/// TOML's basic string: the paths come from `$HOSTCTL_HOME`.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Where Garage finds its files, as the server sees them: the home's
/// paths for a process of the host, the mount points in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub meta: String,
    pub data: String,
    pub rpc_secret: String,
    pub admin_token: String,
}

impl Paths {
    /// The home's own paths (the server runs as a process of the host).
    pub fn of_host(layout: &Layout) -> Paths {
        let show = |p: std::path::PathBuf| p.display().to_string();
        Paths {
            meta: show(layout.meta()),
            data: show(layout.data()),
            rpc_secret: show(layout.rpc_secret()),
            admin_token: show(layout.admin_token()),
        }
    }
}

/// The configuration file's text.
pub fn render(paths: &Paths, listeners: &Listeners) -> String {
    format!(
        "# Rendered by hostctl (`hostctl storage up`); edits are overwritten.\n\
         metadata_dir = {meta}\n\
         data_dir = {data}\n\
         db_engine = \"lmdb\"\n\
         replication_factor = 1\n\
         rpc_bind_addr = \"{rpc}\"\n\
         rpc_public_addr = \"{rpc_public}\"\n\
         rpc_secret_file = {rpc_secret}\n\
         \n\
         [s3_api]\n\
         s3_region = \"{REGION}\"\n\
         api_bind_addr = \"{s3}\"\n\
         \n\
         [admin]\n\
         api_bind_addr = \"{admin}\"\n\
         admin_token_file = {admin_token}\n",
        meta = quoted(&paths.meta),
        data = quoted(&paths.data),
        rpc = listeners.rpc,
        rpc_public = std::net::SocketAddr::from(([127, 0, 0, 1], listeners.rpc.port())),
        rpc_secret = quoted(&paths.rpc_secret),
        s3 = listeners.s3,
        admin = listeners.admin,
        admin_token = quoted(&paths.admin_token),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_secret_files_not_secrets_and_quotes_paths() {
        let layout = Layout::new(std::path::Path::new("/home/a \"b\"/.hostctl"));
        let text = render(
            &Paths::of_host(&layout),
            &Listeners {
                s3: "192.168.64.1:3900".parse().unwrap(),
                admin: "127.0.0.1:3903".parse().unwrap(),
                rpc: "127.0.0.1:3901".parse().unwrap(),
            },
        );
        assert!(text.contains(r#"metadata_dir = "/home/a \"b\"/.hostctl/storage/meta""#));
        assert!(text.contains("rpc_secret_file = "));
        assert!(text.contains("admin_token_file = "));
        assert!(!text.contains("rpc_secret ="));
        assert!(text.contains("api_bind_addr = \"192.168.64.1:3900\""));
        assert!(text.contains("api_bind_addr = \"127.0.0.1:3903\""));
    }
}
