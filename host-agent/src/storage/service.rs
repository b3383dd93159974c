//! `storage up|status|down`: the host's object store brought to what
//! [`super::plan`] says, checked, and stopped.
//!
//! `up` is idempotent and resumable: every step first looks (files that
//! exist are kept, a running server is left running, the admin calls read
//! before they write), so after any failure running it again finishes
//! the job. `down` stops the server and keeps the data and keys unless
//! `--purge`.

use super::admin::Admin;
use super::compose;
use super::config::Paths;
use super::config::{self, Listeners, REGION};
use super::error::StorageError;
use super::layout::Layout;
use super::plan::{self, HOST_KEY};
use super::s3::S3;
use super::secrets::{Keys, ensure_secret_file};
use super::server::{Process, Runtime};
use crate::mirrors::http::HttpApi;
use serde::Serialize;
use std::time::Duration;

/// The store of one home.
pub struct Storage {
    pub layout: Layout,
    pub listeners: Listeners,
    /// The clusters whose Velero get a bucket and key.
    pub clusters: Vec<String>,
    /// How long `up` waits for the admin API to answer.
    pub ready_within: Duration,
    /// The `garage` binary; `None`: `HOSTCTL_GARAGE`, else `PATH`.
    pub garage: Option<std::path::PathBuf>,
    /// The host's Docker, when the server runs as a container there
    /// ([`super::compose`]); `None`: a process of the host.
    pub docker: Option<std::sync::Arc<dyn crate::mirrors::docker::Docker>>,
}

/// The S3 address `storage up` recorded (see [`Layout::endpoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Endpoint {
    pub s3: std::net::SocketAddr,
}

impl Endpoint {
    pub fn read(layout: &Layout) -> Option<Endpoint> {
        serde_json::from_slice(&std::fs::read(layout.endpoint()).ok()?).ok()
    }
}

/// The host's S3 client from the home alone, when `storage up` has run
/// there (`None` otherwise): what the daemon copies scheduled snapshots
/// with.
pub fn host_client_of(home: &std::path::Path) -> Result<Option<S3>, StorageError> {
    let layout = Layout::new(home);
    let Some(endpoint) = Endpoint::read(&layout) else {
        return Ok(None);
    };
    let keys = Keys::load(&layout.keys())?;
    let key = keys.get(HOST_KEY)?;
    Ok(Some(S3 {
        endpoint: endpoint.s3,
        region: REGION.to_owned(),
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
    }))
}

/// What `status` reports (`-o json`: the stable interface).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `running`, `stopped` or `not set up`.
    pub state: String,
    /// Where the S3 API answers.
    pub s3_url: String,
    /// Garage's own word (`healthy`, …), or why it was not asked.
    pub health: String,
    /// `process <pid>` or `container` while it runs.
    pub server: Option<String>,
    /// The newest copy of each kind per cluster (empty unless running).
    pub copies: Vec<super::copies::Copy>,
}

impl Storage {
    fn runtime(&self) -> Runtime {
        match &self.docker {
            Some(docker) => Runtime::Container {
                layout: self.layout.clone(),
                docker: docker.clone(),
            },
            None => Runtime::Process(Process {
                layout: self.layout.clone(),
                binary: self.garage.clone(),
            }),
        }
    }

    /// `http://<address>:<port>` of the S3 API.
    pub fn s3_url(&self) -> String {
        format!("http://{}", self.listeners.s3)
    }

    fn admin_api(&self) -> Result<HttpApi, StorageError> {
        let token = std::fs::read_to_string(self.layout.admin_token())
            .map_err(StorageError::io(self.layout.admin_token()))?;
        Ok(HttpApi::bearer(
            &format!("http://{}", self.listeners.admin),
            token.trim(),
        )?)
    }

    /// An S3 client signing as the named key (see [`plan`]).
    pub fn client(&self, key_name: &str) -> Result<S3, StorageError> {
        let keys = Keys::load(&self.layout.keys())?;
        let key = keys.get(key_name)?;
        Ok(S3 {
            endpoint: self.listeners.s3,
            region: REGION.to_owned(),
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret_access_key.clone(),
        })
    }

    /// The host's own client (etcd and Vault snapshots).
    pub fn host_client(&self) -> Result<S3, StorageError> {
        self.client(HOST_KEY)
    }

    fn prepare_files(&self, changed: &mut Vec<String>) -> Result<(), StorageError> {
        for dir in [
            self.layout.root().to_path_buf(),
            self.layout.meta(),
            self.layout.data(),
        ] {
            std::fs::create_dir_all(&dir).map_err(StorageError::io(&dir))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(StorageError::io(&dir))?;
        }
        ensure_secret_file(&self.layout.rpc_secret(), 32)?;
        ensure_secret_file(&self.layout.admin_token(), 32)?;
        let files = match &self.docker {
            None => vec![(
                self.layout.config(),
                config::render(&Paths::of_host(&self.layout), &self.listeners),
            )],
            Some(_) => vec![
                (
                    self.layout.container_config(),
                    config::render(
                        &compose::container_paths(),
                        &compose::container_listeners(&self.listeners),
                    ),
                ),
                (
                    self.layout.compose(),
                    crate::mirrors::compose::to_yaml(&compose::project(
                        &self.layout,
                        &self.listeners,
                    )),
                ),
            ],
        };
        for (path, text) in files {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                fsio::write_atomic(&path, text.as_bytes(), 0o600)?;
                changed.push(format!("wrote {}", path.display()));
            }
        }
        Ok(())
    }

    /// Waits (bounded polling) until the admin API answers.
    async fn wait_ready(&self, admin: &Admin<'_>) -> Result<(), StorageError> {
        let deadline = tokio::time::Instant::now() + self.ready_within;
        loop {
            match admin.health().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(StorageError::NotReady {
                        secs: self.ready_within.as_secs(),
                        last: e.to_string(),
                        log: self.layout.log(),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Files, server, layout, buckets, keys and grants; returns what it
    /// changed (empty when all was already right).
    pub async fn up(&self) -> Result<Vec<String>, StorageError> {
        let mut changed = Vec::new();
        self.prepare_files(&mut changed)?;
        let runtime = self.runtime();
        // A config change needs a restart to take effect.
        if !changed.is_empty() && runtime.stop().await? {
            changed.push("stopped the server to apply its new configuration".into());
        }
        if runtime.start().await? {
            changed.push(format!("started the object store ({})", self.s3_url()));
        }
        let api = self.admin_api()?;
        let admin = Admin { api: &api };
        self.wait_ready(&admin).await?;
        if admin.ensure_layout().await? {
            changed.push("applied the single-node layout".into());
        }
        let mut keys = Keys::load(&self.layout.keys())?;
        for grant in plan::grants(&self.clusters) {
            let (bucket_id, created) = admin.ensure_bucket(&grant.bucket).await?;
            if created {
                changed.push(format!("created bucket {}", grant.bucket));
            }
            let key = keys.ensure(&self.layout.keys(), &grant.key)?;
            if admin.ensure_key(&grant.key, &key).await? {
                changed.push(format!("imported key {}", grant.key));
            }
            if admin.ensure_grant(&bucket_id, &key.access_key_id).await? {
                changed.push(format!("let {} read and write {}", grant.key, grant.bucket));
            }
        }
        for cluster in &self.clusters {
            keys.ensure_repository_password(&self.layout.keys(), cluster)?;
        }
        let endpoint = serde_json::json!({"s3": self.listeners.s3.to_string()});
        if Endpoint::read(&self.layout).map(|e| e.s3) != Some(self.listeners.s3) {
            fsio::write_json_atomic(&self.layout.endpoint(), &endpoint, 0o600)?;
        }
        Ok(changed)
    }

    /// Where `cluster`'s Velero keeps its backups: the S3 API, the
    /// cluster's own bucket (prefix: the cluster's name) and key.
    pub fn backup_target(
        &self,
        cluster: &str,
    ) -> Result<crate::addons::velero::BackupTarget, StorageError> {
        let keys = Keys::load(&self.layout.keys())?;
        let key = keys.get(&plan::velero_key(cluster))?;
        Ok(crate::addons::velero::BackupTarget {
            s3_url: self.s3_url(),
            region: REGION.to_owned(),
            bucket: plan::velero_bucket(cluster),
            prefix: cluster.to_owned(),
            access_key_id: key.access_key_id.clone(),
            secret_access_key: vault::Secret::new(key.secret_access_key.clone()),
            repository_password: vault::Secret::new(keys.repository_password(cluster)?),
            access: crate::addons::velero::AccessMode::ReadWrite,
        })
    }

    /// `process <pid>` or `container` while the server runs (no API call).
    pub async fn server(&self) -> Option<String> {
        self.runtime().running().await
    }

    /// The server's state and health.
    pub async fn status(&self) -> Status {
        let server = self.server().await;
        let set_up = self.layout.config().exists() || self.layout.compose().exists();
        let (state, health) = match server {
            None if !set_up => ("not set up", "-".to_owned()),
            None => ("stopped", "-".to_owned()),
            Some(_) => (
                "running",
                match self.admin_api() {
                    Ok(api) => Admin { api: &api }
                        .health()
                        .await
                        .unwrap_or_else(|e| format!("unknown ({e})")),
                    Err(e) => format!("unknown ({e})"),
                },
            ),
        };
        let copies = match server {
            Some(_) => super::copies::newest_copies(self, jiff::Timestamp::now()).await,
            None => Vec::new(),
        };
        Status {
            state: state.to_owned(),
            s3_url: self.s3_url(),
            health,
            server,
            copies,
        }
    }

    /// Stops the server; with `purge` also deletes its data, keys and files.
    pub async fn down(&self, purge: bool) -> Result<Vec<String>, StorageError> {
        let mut lines = Vec::new();
        if self.runtime().stop().await? {
            lines.push("stopped the object store".to_owned());
        } else {
            lines.push("the object store was not running".to_owned());
        }
        if purge {
            let root = self.layout.root();
            if root.exists() {
                std::fs::remove_dir_all(root).map_err(StorageError::io(root))?;
                lines.push(format!("deleted {}", root.display()));
            }
        } else {
            lines.push(format!(
                "kept the data, keys and configuration in {} (--purge deletes them)",
                self.layout.root().display()
            ));
        }
        Ok(lines)
    }
}
