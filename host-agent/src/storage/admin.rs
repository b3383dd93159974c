//! Garage's admin API v2 (`/v2/<Operation>`, bearer token, JSON), as
//! hostctl uses it to bring a fresh server to the state [`super::plan`]
//! describes: a layout with this one node, the buckets, the imported keys
//! and their grants. Every call is idempotent: each first reads, and
//! changes only what differs, so `storage up` can be run again after any
//! failure.
//!
//! Calls and shapes: garage_api_admin 2.5.0 `router_v2.rs` and `api.rs`
//! (the crate `.ci/run` installs the server from).

use super::error::StorageError;
use super::secrets::S3Key;
use crate::mirrors::http::{Api, Request, Response};
use serde_json::{Value, json};

/// The weight of the one node in the layout. Garage uses capacities only
/// to share partitions between nodes; with one node any value works, and
/// it does not limit what the store holds.
const NODE_CAPACITY: u64 = 100 << 30;

/// The admin API of one server.
pub struct Admin<'a> {
    pub api: &'a dyn Api,
}

fn failed(call: &str, r: &Response) -> StorageError {
    StorageError::Api {
        call: call.to_owned(),
        status: r.status,
        body: r.body.to_string(),
    }
}

impl Admin<'_> {
    async fn call(&self, request: Request) -> Result<Response, StorageError> {
        Ok(self.api.send(&request).await?)
    }

    async fn ok(&self, request: Request) -> Result<Value, StorageError> {
        let call = format!("{} {}", request.method, request.path);
        let r = self.call(request).await?;
        if r.ok() {
            Ok(r.body)
        } else {
            Err(failed(&call, &r))
        }
    }

    /// `healthy`, `degraded` or `unavailable` (GetClusterHealth).
    pub async fn health(&self) -> Result<String, StorageError> {
        let body = self.ok(Request::get("/v2/GetClusterHealth")).await?;
        Ok(body["status"].as_str().unwrap_or("unknown").to_owned())
    }

    /// Gives this single node a storage role and applies the layout, unless
    /// it has one. Returns whether it changed anything.
    pub async fn ensure_layout(&self) -> Result<bool, StorageError> {
        let status = self.ok(Request::get("/v2/GetClusterStatus")).await?;
        let node = status["nodes"]
            .as_array()
            .and_then(|n| n.first())
            .cloned()
            .unwrap_or(Value::Null);
        let Some(id) = node["id"].as_str() else {
            return Err(StorageError::Config {
                what: "GetClusterStatus".into(),
                reason: format!("no node in {status}"),
            });
        };
        if !node["role"].is_null() {
            return Ok(false);
        }
        let staged = self
            .ok(Request::post(
                "/v2/UpdateClusterLayout",
                json!({"roles": [{"id": id, "zone": "host", "capacity": NODE_CAPACITY, "tags": ["hostctl"]}]}),
            ))
            .await?;
        let version = staged["version"].as_u64().unwrap_or(0) + 1;
        self.ok(Request::post(
            "/v2/ApplyClusterLayout",
            json!({"version": version}),
        ))
        .await?;
        Ok(true)
    }

    /// The bucket's id, creating the bucket under this global alias if it
    /// does not exist. The flag says whether it was created.
    pub async fn ensure_bucket(&self, alias: &str) -> Result<(String, bool), StorageError> {
        let r = self
            .call(Request::get(format!(
                "/v2/GetBucketInfo?globalAlias={alias}"
            )))
            .await?;
        let (body, created) = match r.status {
            200 => (r.body, false),
            404 => (
                self.ok(Request::post(
                    "/v2/CreateBucket",
                    json!({"globalAlias": alias}),
                ))
                .await?,
                true,
            ),
            _ => return Err(failed(&format!("GetBucketInfo {alias}"), &r)),
        };
        let id = body["id"].as_str().ok_or_else(|| StorageError::Config {
            what: format!("bucket {alias}"),
            reason: format!("no id in {body}"),
        })?;
        Ok((id.to_owned(), created))
    }

    /// Imports hostctl's key under `name` unless Garage has it. Returns
    /// whether it was imported.
    pub async fn ensure_key(&self, name: &str, key: &S3Key) -> Result<bool, StorageError> {
        let r = self
            .call(Request::get(format!(
                "/v2/GetKeyInfo?id={}",
                key.access_key_id
            )))
            .await?;
        match r.status {
            200 => Ok(false),
            404 => {
                self.ok(Request::post(
                    "/v2/ImportKey",
                    json!({
                        "accessKeyId": key.access_key_id,
                        "secretAccessKey": key.secret_access_key,
                        "name": name,
                    }),
                ))
                .await?;
                Ok(true)
            }
            _ => Err(failed(&format!("GetKeyInfo {name}"), &r)),
        }
    }

    /// Lets the key read and write the bucket (not own it: no key may
    /// change a bucket's grants). Returns whether the grant was new.
    pub async fn ensure_grant(
        &self,
        bucket_id: &str,
        access_key_id: &str,
    ) -> Result<bool, StorageError> {
        let info = self
            .ok(Request::get(format!("/v2/GetBucketInfo?id={bucket_id}")))
            .await?;
        let granted = info["keys"].as_array().is_some_and(|keys| {
            keys.iter().any(|k| {
                k["accessKeyId"] == access_key_id
                    && k["permissions"]["read"] == true
                    && k["permissions"]["write"] == true
            })
        });
        if granted {
            return Ok(false);
        }
        self.ok(Request::post(
            "/v2/AllowBucketKey",
            json!({
                "bucketId": bucket_id,
                "accessKeyId": access_key_id,
                "permissions": {"read": true, "write": true, "owner": false},
            }),
        ))
        .await?;
        Ok(true)
    }
}
