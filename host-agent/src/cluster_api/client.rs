//! A kube-rs client built in memory from a minted admin kubeconfig: nothing
//! is written to disk and nothing depends on the user's `~/.kube/config`.
//! Must be called inside a tokio runtime (kube 5 spawns its buffer worker).

use super::error::KubeError;
use super::kubeconfig::admin_kubeconfig;
use certs::Pki;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::time::Duration;
use topology::Resolved;

/// Connect/read/write limits of one request. `up` waits with its own
/// deadlines around calls; this only stops a single call hanging forever.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the kubeconfig `yaml` (its current context). `cluster`
/// names the cluster in errors; `timeout` bounds each request.
pub async fn client_from_kubeconfig(
    cluster: &str,
    yaml: &str,
    timeout: Duration,
) -> Result<kube::Client, KubeError> {
    let err = |reason: String| KubeError::Client {
        cluster: cluster.to_owned(),
        reason,
    };
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|e| err(e.to_string()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| err(e.to_string()))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// The admin client of `cluster` at its control plane's stable address,
/// with a freshly minted client certificate; also returns the kubeconfig,
/// which the Helm step hands to `helm --kubeconfig`.
pub async fn admin_client(
    pki: &Pki,
    resolved: &Resolved,
    cluster: &str,
    timeout: Duration,
) -> Result<(kube::Client, String), KubeError> {
    let yaml = admin_kubeconfig(pki, resolved, cluster)?;
    let client = client_from_kubeconfig(cluster, &yaml, timeout).await?;
    Ok((client, yaml))
}
