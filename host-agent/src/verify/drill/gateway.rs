//! The app clusters' own front doors, probed during `mgmt-down`: every
//! Gateway API `Gateway` on an app cluster, at each address its status
//! publishes, on each HTTP listener. A workload that keeps answering there
//! while mgmt is down is C1 seen from outside. HTTPS listeners are not
//! probed (their certificates are the workloads', not the lab's), and a
//! cluster with no Gateway says so rather than passing.

use crate::cluster_api::read::get_json;
use http_body_util::Empty;
use hyper::body::Bytes;
use serde_json::Value;
use std::time::Duration;

/// Every Gateway of a cluster.
pub const GATEWAYS_PATH: &str = "/apis/gateway.networking.k8s.io/v1/gateways";
/// One probe's bound.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One place to knock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// `namespace/name` of the Gateway.
    pub gateway: String,
    /// `address:port`.
    pub authority: String,
    /// The listener's hostname, sent as `Host` (else the address).
    pub host: Option<String>,
}

/// The HTTP targets of a Gateway list (`status.addresses` ×
/// `spec.listeners` with protocol `HTTP`).
pub fn targets(list: &Value) -> Vec<Target> {
    let mut out = Vec::new();
    for g in list["items"].as_array().into_iter().flatten() {
        let gateway = format!(
            "{}/{}",
            g["metadata"]["namespace"].as_str().unwrap_or("default"),
            g["metadata"]["name"].as_str().unwrap_or("?")
        );
        let addresses = g["status"]["addresses"].as_array().into_iter().flatten();
        for address in addresses.filter_map(|a| a["value"].as_str()) {
            let listeners = g["spec"]["listeners"].as_array().into_iter().flatten();
            for l in listeners.filter(|l| l["protocol"] == "HTTP") {
                let Some(port) = l["port"].as_u64() else {
                    continue;
                };
                out.push(Target {
                    gateway: gateway.clone(),
                    authority: format!("{address}:{port}"),
                    host: l["hostname"].as_str().map(str::to_owned),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The cluster's targets (an empty list when it has no Gateway API).
pub async fn cluster_targets(client: &kube::Client) -> Result<Vec<Target>, String> {
    Ok(get_json(client, GATEWAYS_PATH)
        .await?
        .map(|l| targets(&l))
        .unwrap_or_default())
}

/// `GET /` at the target: the HTTP status, or why there is none.
pub async fn probe(target: &Target) -> Result<u16, String> {
    tokio::time::timeout(PROBE_TIMEOUT, probe_once(target))
        .await
        .map_err(|_| format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))?
}

async fn probe_once(target: &Target) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/")
        .header(
            hyper::header::HOST,
            target.host.as_deref().unwrap_or(&target.authority),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

/// Whether an answer means the workload serves (anything but a 5xx).
pub fn serving(answer: &Result<u16, String>) -> bool {
    matches!(answer, Ok(code) if *code < 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shaped as Gateway API v1 publishes a programmed Gateway (Cilium
    /// fills `status.addresses` from its LoadBalancer Service).
    #[test]
    fn only_http_listeners_at_published_addresses_are_targets() {
        let list = json!({"items": [{
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"gatewayClassName": "cilium", "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80, "hostname": "shop.lab"},
                {"name": "https", "protocol": "HTTPS", "port": 443}]},
            "status": {"addresses": [{"type": "IPAddress", "value": "192.168.64.220"}]}},
            {"metadata": {"name": "pending", "namespace": "shop"},
             "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
             "status": {}}]});
        assert_eq!(
            targets(&list),
            [Target {
                gateway: "shop/web".into(),
                authority: "192.168.64.220:80".into(),
                host: Some("shop.lab".into()),
            }]
        );
    }

    #[tokio::test]
    async fn a_probe_reports_the_status_and_a_closed_port_its_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let authority = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.expect("read");
            assert!(String::from_utf8_lossy(&buf[..n]).contains("host: shop.lab"));
            s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("write");
        });
        let target = Target {
            gateway: "shop/web".into(),
            authority,
            host: Some("shop.lab".into()),
        };
        let answer = probe(&target).await;
        assert_eq!(answer, Ok(204));
        assert!(serving(&answer));
        let closed = Target {
            authority: "127.0.0.1:1".into(),
            ..target
        };
        let answer = probe(&closed).await;
        assert!(answer.is_err() && !serving(&answer), "{answer:?}");
        assert!(!serving(&Ok(503)));
    }
}
