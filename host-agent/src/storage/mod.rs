//! The object store on the host (issue 20, docs/backup.md): Garage, an
//! S3-compatible server, holding the clusters' Velero backups and the
//! host's etcd and Vault snapshots *off* the clusters, so losing a
//! cluster, mgmt included, never loses what rebuilds it.
//!
//! - [`plan`]: the buckets, keys and grants of a topology.
//! - [`layout`]: the files under `$HOSTCTL_HOME/storage`.
//! - [`secrets`]: the generated RPC secret, admin token and S3 keys (0600).
//! - [`config`]: Garage's configuration file.
//! - [`server`]: the server as a detached process of the host, or
//!   ([`compose`]) a container on the host's Docker.
//! - [`admin`]: Garage's admin API v2 (layout, buckets, keys, grants).
//! - [`sigv4`] and [`s3`]: the signed, streaming S3 calls.
//! - [`offsite`]: snapshots uploaded and verified.
//! - [`copies`]: the newest copy of each kind per cluster, against the RPO.
//! - [`service`]: `storage up|status|down`.
//! - [`vault_snapshot`]: mgmt's Vault snapshotted into the store, and restored.

pub mod admin;
pub mod compose;
pub mod config;
pub mod copies;
pub mod error;
pub mod layout;
pub mod offsite;
pub mod plan;
pub mod s3;
pub mod secrets;
pub mod server;
pub mod service;
pub mod sigv4;
pub mod vault_snapshot;

/// The S3 API's port on the host (Garage's default).
pub const S3_PORT: u16 = 3900;
/// Garage's RPC port (loopback only: one node).
pub const RPC_PORT: u16 = 3901;
/// Garage's admin API port (loopback only: only hostctl uses it).
pub const ADMIN_PORT: u16 = 3903;
