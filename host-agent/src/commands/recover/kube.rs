//! The recoveries' conversation with the clusters' API servers: one admin
//! client per cluster (minted from the home's PKI), the identity check
//! every writing scenario makes first, bounded waits, the few raw calls
//! they need, a Velero Restore created once and waited for, and whether a
//! cluster's API server answers `/readyz` (now, or within a bound).

use crate::cli::Context;
use crate::cli::coded;
use crate::cluster_api::client::admin_client;
use crate::cluster_api::kubeconfig::server_url;
use crate::exit::Exit;
use crate::recover::identity::{IdentityError, KUBEADM_CONFIG, cluster_name};
use crate::recover::velero::{Restore, restore_state};
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Each request's own limit; the waits around them have the scenario's
/// `--within`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_secs(2);
/// Velero's namespace.
const VELERO_NS: &str = crate::addons::velero::NAMESPACE;

/// One look of a wait: done with a value, or not yet (and why).
pub(super) enum Look<T> {
    Done(T),
    Wait(String),
}

/// The clusters a recovery talks to.
pub(super) struct Session {
    resolved: topology::Resolved,
    pki: certs::Pki,
    clients: BTreeMap<String, kube::Client>,
    within: Duration,
}

impl Session {
    /// Clients for the clusters of `resolved`, each wait bounded by
    /// `within`.
    pub(super) fn new(
        home: &std::path::Path,
        resolved: &topology::Resolved,
        within: Duration,
    ) -> anyhow::Result<Session> {
        Ok(Session {
            resolved: resolved.clone(),
            pki: certs::Pki::open(home).context("the home's PKI")?,
            clients: BTreeMap::new(),
            within,
        })
    }

    /// `cluster`'s API server URL.
    pub(super) fn server(&self, cluster: &str) -> anyhow::Result<String> {
        Ok(server_url(&self.resolved, cluster)?)
    }

    /// `cluster`'s admin client (minted once).
    pub(super) async fn client(&mut self, cluster: &str) -> anyhow::Result<kube::Client> {
        if let Some(c) = self.clients.get(cluster) {
            return Ok(c.clone());
        }
        let (client, _) = admin_client(&self.pki, &self.resolved, cluster, REQUEST_TIMEOUT)
            .await
            .with_context(|| format!("{cluster}'s admin client"))?;
        self.clients.insert(cluster.to_owned(), client.clone());
        Ok(client)
    }

    /// Refuses an API server that is not `cluster`'s (coded
    /// [`Exit::Precondition`]) or whose identity cannot be read; fails
    /// plainly when it does not answer.
    pub(super) async fn check_identity(&mut self, cluster: &str) -> anyhow::Result<()> {
        let server = self.server(cluster)?;
        let client = self.client(cluster).await?;
        let refuse = |e: IdentityError| coded(Exit::Precondition, e);
        let unknown = |reason: String| {
            refuse(IdentityError::UnknownCluster {
                server: server.clone(),
                reason,
            })
        };
        let config = get(&client, KUBEADM_CONFIG)
            .await
            .with_context(|| format!("asking {server} which cluster it is"))?
            .ok_or_else(|| unknown("kube-system/kubeadm-config does not exist".into()))?;
        let found = cluster_name(&config).map_err(unknown)?;
        if found != cluster {
            return Err(refuse(IdentityError::WrongCluster {
                server,
                cluster: cluster.to_owned(),
                found,
            }));
        }
        Ok(())
    }

    /// Polls `look` on `cluster`'s client every [`POLL`] until it is done
    /// or the session's `within` has passed. A request that fails (the
    /// API server away for a moment) is another look later; an error
    /// `look` returns coded is final.
    pub(super) async fn wait<T, F, Fut>(
        &mut self,
        cluster: &str,
        what: &str,
        look: F,
    ) -> anyhow::Result<T>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Look<T>>>,
    {
        let deadline = Instant::now() + self.within;
        let client = self.client(cluster).await?;
        loop {
            let last = match look(client.clone()).await {
                Ok(Look::Done(value)) => return Ok(value),
                Ok(Look::Wait(why)) => why,
                Err(e) if e.is::<crate::cli::CodedError>() => return Err(e),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{what} did not finish within {}s (last: {last}); the same command \
                     again continues waiting",
                    self.within.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The recovery's Restore on `cluster`: `name(attempt)` (from 1) is
    /// created with `body(name)` unless an earlier run's is there and has
    /// not failed (a failed one gets the next attempt), then waited for
    /// until Completed. `created(name)` is printed on creation. Returns
    /// the Restore's name and its warnings.
    pub(super) async fn restore(
        &mut self,
        cluster: &str,
        name: impl Fn(u32) -> String,
        body: impl Fn(&str) -> Value,
        created: impl Fn(&str) -> String,
    ) -> anyhow::Result<(String, u64)> {
        let client = self.client(cluster).await?;
        let collection = format!("/apis/velero.io/v1/namespaces/{VELERO_NS}/restores");
        let mut attempt = 1;
        let name = loop {
            let name = name(attempt);
            match get(&client, &format!("{collection}/{name}")).await? {
                None => {
                    create(&client, &collection, &body(&name)).await?;
                    note(created(&name))?;
                    break name;
                }
                Some(r) if matches!(restore_state(&r), Restore::Failed(_)) => {
                    note(format_args!(
                        "Restore {name} of an earlier run failed; creating a new one"
                    ))?;
                    attempt += 1;
                }
                Some(_) => {
                    note(format_args!(
                        "waiting on Restore {VELERO_NS}/{name}, created by an earlier run"
                    ))?;
                    break name;
                }
            }
        };
        let path = format!("{collection}/{name}");
        let path = &path;
        let warnings = self
            .wait(cluster, &format!("Restore {name}"), |client| async move {
                let restore = get(&client, path)
                    .await?
                    .ok_or_else(|| anyhow!("Restore {path} is gone"))?;
                match restore_state(&restore) {
                    Restore::Completed { warnings } => Ok(Look::Done(warnings)),
                    Restore::Failed(why) => Err(coded(Exit::Failure, anyhow!(why))),
                    Restore::Running(phase) => Ok(Look::Wait(format!("phase {phase}"))),
                }
            })
            .await?;
        Ok((name, warnings))
    }
}

/// A step's indented remark.
pub(super) fn note(text: impl std::fmt::Display) -> anyhow::Result<()> {
    crate::stdout::line(format_args!("      {text}"))
}

/// `GET path`; `None` on 404.
pub(super) async fn get(client: &kube::Client, path: &str) -> anyhow::Result<Option<Value>> {
    let request = http::Request::get(path).body(Vec::new())?;
    match client.request::<Value>(request).await {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(anyhow!("GET {path}: {e}")),
    }
}

/// The items of the collection at `path` matching label `selector`
/// (`""` for all); `None` when the kind is not served (404).
pub(super) async fn list(
    client: &kube::Client,
    path: &str,
    selector: &str,
) -> anyhow::Result<Option<Vec<Value>>> {
    let query = if selector.is_empty() {
        path.to_owned()
    } else {
        format!(
            "{path}?labelSelector={}",
            selector.replace('/', "%2F").replace('=', "%3D")
        )
    };
    Ok(get(client, &query)
        .await?
        .map(|list| list["items"].as_array().cloned().unwrap_or_default()))
}

/// `POST` of `body` to the collection at `path`.
pub(super) async fn create(
    client: &kube::Client,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let what = format!("creating {path}/{}", body["metadata"]["name"]);
    send(
        client,
        http::Request::post(path),
        "application/json",
        body,
        what,
    )
    .await
}

/// A JSON merge patch (RFC 7386) of the object at `path`.
pub(super) async fn merge_patch(
    client: &kube::Client,
    path: &str,
    patch: &Value,
) -> anyhow::Result<Value> {
    let request = http::Request::patch(path);
    let what = format!("PATCH {path}");
    send(client, request, "application/merge-patch+json", patch, what).await
}

/// Sends `body` as `content_type` and reads the JSON answer; a failure
/// says `what` was asked.
async fn send(
    client: &kube::Client,
    request: http::request::Builder,
    content_type: &str,
    body: &Value,
    what: String,
) -> anyhow::Result<Value> {
    let request = request
        .header("content-type", content_type)
        .body(serde_json::to_vec(body)?)?;
    client
        .request::<Value>(request)
        .await
        .map_err(|e| anyhow!("{what}: {e}"))
}

/// One `/readyz` question to `cluster`'s API server with a freshly
/// minted admin client: `Ok(())` when it answers ready, else what went
/// wrong.
async fn api_ready(ctx: &Context, workspace: &Workspace, cluster: &str) -> Result<(), String> {
    use crate::cluster_api::client::admin_client;
    use crate::cluster_api::health::{STATUS_TIMEOUT, api_health};
    let pki = certs::Pki::open(ctx.home.root()).map_err(|e| format!("the home's PKI: {e}"))?;
    match admin_client(&pki, &workspace.resolved, cluster, STATUS_TIMEOUT).await {
        Ok((client, _)) => {
            let health = api_health(&client).await;
            if health.ok {
                Ok(())
            } else {
                Err(health.error.unwrap_or_default())
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `cluster`'s API server answers ready right now.
pub(super) async fn api_answers(ctx: &Context, workspace: &Workspace, cluster: &str) -> bool {
    api_ready(ctx, workspace, cluster).await.is_ok()
}

/// Polls the API server's `/readyz` (which includes etcd) until it
/// answers, or fails after `within` with the last answer.
pub(super) async fn wait_api(
    ctx: &Context,
    workspace: &Workspace,
    cluster: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let last = match api_ready(ctx, workspace, cluster).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!(
                "{cluster}'s API server did not answer /readyz within {}s: {last}",
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
