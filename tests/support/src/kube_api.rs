//! A STAND-IN Kubernetes API server for the kube tests: HTTPS with a
//! serving certificate from the cluster CA and client certificates checked
//! against it, so the real kube client with the minted admin kubeconfig
//! connects for real. It speaks the API's real JSON for the calls hostctl
//! makes (`/readyz`, `/version`, `GET /api/v1/nodes`, server-side apply
//! PATCHes, JSON merge PATCHes of stored objects, POSTs that create
//! objects, lists of the collections a test declares served, with an
//! equality `labelSelector`) and records every request.
//!
//! host-agent's kube tests serve it on loopback; the end-to-end `bootstrap`
//! suite serves it inside a control plane's network namespace.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: String,
}

/// What the server answers; tests change it between calls.
#[derive(Debug, Default)]
pub struct State {
    /// The `items` of `GET /api/v1/nodes`.
    pub nodes: Vec<Value>,
    /// What `GET <path>` answers (a Deployment, a CRD, …); a path not
    /// here is 404 NotFound, as for an object that does not exist.
    pub objects: BTreeMap<String, Value>,
    /// Objects that change on their own, as a controller would change
    /// them: after the given number of GETs of the path, the next GET
    /// (and every later one) answers the value.
    pub later: BTreeMap<String, (u32, Value)>,
    /// What `GET <path>` answers as `text/plain` (a proxied `/metrics`).
    pub texts: BTreeMap<String, String>,
    /// The collections that answer `GET` with a list of the stored
    /// objects under them (`/apis/velero.io/v1/namespaces/velero/backups`):
    /// the kinds the test says are served. Any other collection is 404, as
    /// on an API server without that CRD.
    pub lists: BTreeSet<String>,
    /// PATCH answers by object name: (HTTP status, Status JSON).
    pub patch_errors: BTreeMap<String, (u16, Value)>,
    pub readyz_down: bool,
    pub requests: Vec<Recorded>,
}

pub struct ApiServer {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl ApiServer {
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").requests.clone()
    }

    pub fn set_nodes(&self, nodes: Vec<Value>) {
        self.state.lock().expect("state").nodes = nodes;
    }

    pub fn fail_patch(&self, name: &str, code: u16, status: Value) {
        let mut s = self.state.lock().expect("state");
        s.patch_errors.insert(name.to_owned(), (code, status));
    }
}

/// A home with a PKI for the default topology's clusters.
pub fn pki() -> (tempfile::TempDir, certs::Pki) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let home = tempfile::tempdir().expect("tempdir");
    let topology = topology::default_topology();
    let pki = certs::Pki::open_or_init(
        home.path(),
        &host_agent::pki::spec_for(&topology.resolve(None).expect("resolves")),
    )
    .expect("pki");
    (home, pki)
}

/// Starts the stand-in for `cluster` on an ephemeral 127.0.0.1 port.
pub async fn start(pki: &certs::Pki, cluster: &str) -> ApiServer {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    serve(pki, cluster, addr, &["127.0.0.1"], Arc::default()).await
}

/// Serves `state` on `addr` with a serving certificate from `cluster`'s CA
/// for `names` (IPs and DNS names). Like kube-apiserver, a client without
/// a certificate may only read `/readyz`, `/livez` and `/version` (the node
/// agent probes `/readyz` that way); anything else answers 401.
pub async fn serve(
    pki: &certs::Pki,
    cluster: &str,
    addr: SocketAddr,
    names: &[&str],
    state: Arc<Mutex<State>>,
) -> ApiServer {
    let cp = pki.cluster(cluster).expect("cluster");
    let file = |name: &str| {
        cp.files()
            .into_iter()
            .find(|f| f.relative_path == name)
            .map(|f| String::from_utf8(f.contents).expect("pem"))
            .expect("CA file")
    };
    let (ca_pem, ca_key) = (file("ca.crt"), file("ca.key"));
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &ca_pem,
        rcgen::KeyPair::from_pem(&ca_key).expect("ca key"),
    )
    .expect("issuer");
    let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(sans).expect("params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certs::cert_der_from_pem(&ca_pem).expect("der").into())
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .expect("verifier");
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key_der)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, state) = (acceptor.clone(), shared.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let client_cert = tls.get_ref().1.peer_certificates().is_some();
                let service =
                    hyper::service::service_fn(move |req| handle(req, client_cert, state.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    ApiServer { addr, state }
}

type Reply = Result<Response<Full<Bytes>>, std::convert::Infallible>;

async fn handle(req: Request<Incoming>, client_cert: bool, state: Arc<Mutex<State>>) -> Reply {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let mut s = state.lock().expect("state");
    s.requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: body.clone(),
    });
    let anonymous_ok = matches!(path.as_str(), "/readyz" | "/livez" | "/version");
    let (code, value) = match (method.as_str(), path.as_str()) {
        _ if !client_cert && !anonymous_ok => (401, status(401, "Unauthorized", "Unauthorized")),
        ("GET", "/readyz") if s.readyz_down => {
            return Ok(text(
                500,
                "[-]etcd failed: reason withheld\nreadyz check failed\n",
            ));
        }
        ("GET", "/readyz") => return Ok(text(200, "ok")),
        ("GET", "/version") => (200, version()),
        ("GET", _) if s.texts.contains_key(&path) => return Ok(text(200, &s.texts[&path])),
        ("GET", "/api/v1/nodes") => (
            200,
            json!({"kind": "NodeList", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "4242"}, "items": s.nodes}),
        ),
        ("GET", _) if s.objects.contains_key(&path) || s.later.contains_key(&path) => {
            if let Some((remaining, value)) = s.later.get_mut(&path) {
                if *remaining == 0 {
                    let value = value.clone();
                    s.later.remove(&path);
                    s.objects.insert(path.clone(), value);
                } else {
                    *remaining -= 1;
                }
            }
            match s.objects.get(&path) {
                Some(object) => (200, object.clone()),
                None => (404, status(404, "NotFound", &format!("{path} not found"))),
            }
        }
        ("GET", _) if s.lists.contains(&path) => (200, list(&s, &path, &query)),
        ("PATCH", _)
            if s.patch_errors
                .contains_key(path.rsplit('/').next().unwrap_or_default()) =>
        {
            let name = path.rsplit('/').next().unwrap_or_default();
            s.patch_errors[name].clone()
        }
        // A JSON merge patch (RFC 7386) changes the stored object.
        ("PATCH", _) if content_type.starts_with("application/merge-patch+json") => {
            let Ok(patch) = serde_json::from_str::<Value>(&body) else {
                return Ok(json_reply(
                    400,
                    &status(400, "BadRequest", "the patch is not JSON"),
                ));
            };
            match s.objects.get_mut(&path) {
                Some(object) => {
                    merge(object, &patch);
                    bump(object);
                    (200, object.clone())
                }
                None => (404, status(404, "NotFound", &format!("{path} not found"))),
            }
        }
        ("PATCH", _) => (200, applied(&body)),
        // Creation: the object back as created, and stored under its name
        // in the collection (so it can be read, listed and patched); a name
        // already there is 409 AlreadyExists.
        ("POST", _) => {
            let object = applied(&body);
            match object["metadata"]["name"].as_str() {
                Some(name) if collection(&path) => {
                    let exists = status(409, "AlreadyExists", &format!("{name} already exists"));
                    match s.objects.entry(format!("{path}/{name}")) {
                        std::collections::btree_map::Entry::Occupied(_) => (409, exists),
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(object.clone());
                            (201, object)
                        }
                    }
                }
                _ => (201, object),
            }
        }
        _ => (
            404,
            status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            ),
        ),
    };
    Ok(json_reply(code, &value))
}

/// Whether `path` names a collection (`/api/v1/[namespaces/NS/]PLURAL`,
/// `/apis/GROUP/VERSION/[namespaces/NS/]PLURAL`) rather than one object.
fn collection(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let namespaced = |at: usize| parts.get(at) == Some(&"namespaces");
    match parts.first() {
        Some(&"api") => parts.len() == 3 || (parts.len() == 5 && namespaced(2)),
        Some(&"apis") => parts.len() == 4 || (parts.len() == 6 && namespaced(3)),
        _ => false,
    }
}

/// A list of the stored objects of the collection at `path` whose labels
/// match every `key=value` of the query's `labelSelector` (the only form
/// of selector the stand-in knows).
fn list(s: &State, path: &str, query: &str) -> Value {
    let selector: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("labelSelector="))
        .flat_map(|sel| {
            let sel = sel
                .replace("%3D", "=")
                .replace("%2F", "/")
                .replace("%2C", ",");
            sel.split(',')
                .filter_map(|t| t.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect::<Vec<_>>()
        })
        .collect();
    let prefix = format!("{path}/");
    let items: Vec<Value> = s
        .objects
        .iter()
        .filter(|(p, _)| {
            p.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.contains('/'))
        })
        .map(|(_, o)| o.clone())
        .filter(|o| {
            selector
                .iter()
                .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v.as_str()))
        })
        .collect();
    json!({"kind": "List", "apiVersion": "v1",
           "metadata": {"resourceVersion": "4300"}, "items": items})
}

/// RFC 7386: objects merge key by key, `null` removes, anything else
/// replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ if patch.is_object() => {
            *target = json!({});
            merge(target, patch);
        }
        _ => *target = patch.clone(),
    }
}

/// A new `resourceVersion`, as every write gets.
fn bump(object: &mut Value) {
    let next = object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(4243)
        + 1;
    object["metadata"]["resourceVersion"] = json!(next.to_string());
}

fn text(code: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("response")
}

fn json_reply(code: u16, value: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("response")
}

/// The object as the API server returns it after apply: the request plus
/// server-set metadata.
fn applied(body: &str) -> Value {
    let mut obj: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), json!("6f1c2d3e-0000-4000-8000-000000000001"));
        meta.insert("resourceVersion".into(), json!("4243"));
        meta.insert("creationTimestamp".into(), json!("2026-01-05T10:00:00Z"));
    }
    obj
}

fn version() -> Value {
    json!({"major": "1", "minor": "35", "emulationMajor": "1", "emulationMinor": "35",
           "minCompatibilityMajor": "1", "minCompatibilityMinor": "34",
           "gitVersion": "v1.35.2", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2026-02-10T12:00:00Z",
           "goVersion": "go1.25.6", "compiler": "gc", "platform": "linux/arm64"})
}

/// A `Status` as the API server returns it for failures.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// The 409 of a server-side apply that hits a field another manager owns.
pub fn conflict(manager: &str, gv: &str, field: &str) -> Value {
    let cause = format!("conflict with \"{manager}\" using {gv}");
    let mut s = status(
        409,
        "Conflict",
        &format!("Apply failed with 1 conflict: {cause}: {field}"),
    );
    s["details"] =
        json!({"causes": [{"reason": "FieldManagerConflict", "message": cause, "field": field}]});
    s
}

/// A Deployment as `GET /apis/apps/v1/namespaces/NS/deployments/NAME`
/// returns it, its controller caught up and `available` of one replica.
pub fn deployment(namespace: &str, name: &str, available: bool) -> (String, Value) {
    let n = i32::from(available);
    (
        format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
        json!({"kind": "Deployment", "apiVersion": "apps/v1",
               "metadata": {"name": name, "namespace": namespace, "generation": 1},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}}},
               "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                          "readyReplicas": n, "availableReplicas": n}}),
    )
}

/// A StatefulSet of one replica, `ready` or not.
pub fn statefulset(namespace: &str, name: &str, ready: bool) -> (String, Value) {
    (
        format!("/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"),
        json!({"kind": "StatefulSet", "apiVersion": "apps/v1",
               "metadata": {"name": name, "namespace": namespace, "generation": 1},
               "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}}},
               "status": {"observedGeneration": 1, "replicas": 1, "currentReplicas": 1,
                          "updatedReplicas": 1, "readyReplicas": i32::from(ready)}}),
    )
}

/// A DaemonSet scheduled to one node, `ready` there or not.
pub fn daemonset(namespace: &str, name: &str, ready: bool) -> (String, Value) {
    (
        format!("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"),
        json!({"kind": "DaemonSet", "apiVersion": "apps/v1",
               "metadata": {"name": name, "namespace": namespace, "generation": 1},
               "spec": {"selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}}},
               "status": {"observedGeneration": 1, "desiredNumberScheduled": 1,
                          "currentNumberScheduled": 1, "numberMisscheduled": 0,
                          "updatedNumberScheduled": 1, "numberReady": i32::from(ready)}}),
    )
}

/// A CustomResourceDefinition, `Established` or not yet.
pub fn crd(name: &str, established: bool) -> (String, Value) {
    let (plural, group) = name.split_once('.').unwrap_or((name, ""));
    let status = if established { "True" } else { "False" };
    (
        format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"),
        json!({"kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
               "metadata": {"name": name},
               "spec": {"group": group, "scope": "Namespaced",
                        "names": {"plural": plural, "kind": plural},
                        "versions": [{"name": "v1alpha1", "served": true, "storage": true}]},
               "status": {"conditions": [
                   {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                   {"type": "Established", "status": status, "reason": "InitialNamesAccepted"}]}}),
    )
}

/// A custom resource as `GET /apis/GROUP/VERSION/[namespaces/NS/]PLURAL/NAME`
/// returns it, with `condition` True or False (as cert-manager reports a
/// ClusterIssuer's `Ready`).
pub fn custom_object(
    api_version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
    condition: &str,
    ready: bool,
) -> (String, Value) {
    let path = match namespace {
        Some(ns) => format!("/apis/{api_version}/namespaces/{ns}/{plural}/{name}"),
        None => format!("/apis/{api_version}/{plural}/{name}"),
    };
    let status = if ready { "True" } else { "False" };
    (
        path,
        json!({"kind": kind, "apiVersion": api_version,
               "metadata": {"name": name, "namespace": namespace},
               "status": {"conditions": [{"type": condition, "status": status,
                                          "reason": if ready { "Ready" } else { "NotReady" }}]}}),
    )
}

/// A node with the kubelet's real Ready condition.
pub fn node(name: &str, ready: bool) -> Value {
    let condition = if ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
               "message": "kubelet is posting ready status",
               "lastHeartbeatTime": "2026-01-05T10:00:00Z", "lastTransitionTime": "2026-01-05T10:00:00Z"})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady",
               "message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
               "lastHeartbeatTime": "2026-01-05T10:00:00Z", "lastTransitionTime": "2026-01-05T10:00:00Z"})
    };
    json!({"kind": "Node", "apiVersion": "v1",
           "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "100",
                        "labels": {"kubernetes.io/hostname": name}},
           "status": {"conditions": [
               {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                "message": "kubelet has sufficient memory available"},
               condition]}})
}

/// The minted admin kubeconfig of `cluster`, pointed at the stand-in, and a
/// client built from it.
pub async fn client(pki: &certs::Pki, cluster: &str, server: &ApiServer) -> kube::Client {
    let yaml = pki
        .cluster(cluster)
        .expect("cluster")
        .mint_admin_kubeconfig(cluster, &server.url(), cluster)
        .expect("mint");
    host_agent::cluster_api::client::client_from_kubeconfig(
        cluster,
        &yaml,
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("client")
}
