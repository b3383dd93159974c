//! Harbor's and Nexus's APIs as hostctl drives them, against STAND-INS
//! (below, tests only) that answer with the documented shapes of
//! fixtures/mirrors/{harbor,nexus}-api.json (sources in each file): a call
//! no fixture documents fails the test, a request body may only hold the
//! documented properties, and a second configuration creates nothing.

use async_trait::async_trait;
use host_agent::mirrors::error::MirrorError;
use host_agent::mirrors::harbor::Harbor;
use host_agent::mirrors::http::{Api, Body, Request, Response};
use host_agent::mirrors::nexus::Nexus;
use host_agent::mirrors::upstreams::{UPSTREAMS, apt_proxies};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Mutex;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mirrors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

/// `path` against a fixture's template: `Some(captured {name})` on a match.
fn matches(template: &str, path: &str) -> Option<String> {
    match template.split_once("{name}") {
        None => (template == path).then(String::new),
        Some((head, tail)) => path
            .strip_prefix(head)
            .and_then(|rest| rest.strip_suffix(tail))
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .map(str::to_owned),
    }
}

/// A STAND-IN for one server: resolves each request to a documented
/// exchange, checks its body against the documented properties, and lets
/// `state` answer. Records every (operation, request).
pub(crate) struct StandIn<S> {
    fixture: Value,
    pub(crate) state: Mutex<S>,
    calls: Mutex<Vec<(String, Request)>>,
    answer: fn(&mut S, &Value, &str, &Request) -> Response,
}

impl<S: Send> StandIn<S> {
    pub(crate) fn new(
        file: &str,
        state: S,
        answer: fn(&mut S, &Value, &str, &Request) -> Response,
    ) -> Self {
        StandIn {
            fixture: fixture(file),
            state: Mutex::new(state),
            calls: Mutex::new(Vec::new()),
            answer,
        }
    }

    pub(crate) fn operations(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .map(|(o, _)| o.clone())
            .collect()
    }

    fn bodies(&self, operation: &str) -> Vec<Value> {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|(o, _)| o == operation)
            .filter_map(|(_, r)| match &r.body {
                Body::Json(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl<S: Send> Api for StandIn<S> {
    fn address(&self) -> &str {
        "stand-in"
    }

    async fn send(&self, request: &Request) -> Result<Response, MirrorError> {
        let exchanges = self.fixture["exchanges"].as_array().expect("exchanges");
        let (exchange, name) = exchanges
            .iter()
            .find_map(|e| {
                (e["method"] == request.method)
                    .then(|| matches(e["path"].as_str()?, &request.path))
                    .flatten()
                    .map(|n| (e, n))
            })
            .unwrap_or_else(|| panic!("no fixture documents {} {}", request.method, request.path));
        if let Some(allowed) = exchange["request_properties"].as_array() {
            let Body::Json(body) = &request.body else {
                panic!("{}: a JSON body is documented", exchange["operation"]);
            };
            for key in body.as_object().expect("object").keys() {
                assert!(
                    allowed.contains(&json!(key)),
                    "{}: undocumented `{key}`",
                    exchange["operation"]
                );
            }
            for (field, keys) in exchange["required"].as_object().into_iter().flatten() {
                for key in keys.as_array().expect("keys") {
                    let key = key.as_str().expect("key");
                    assert!(body[field].get(key).is_some(), "{field}.{key} is required");
                }
            }
        }
        if exchange["content_type"] == "text/plain" {
            assert!(
                matches!(request.body, Body::Text(_)),
                "{}: text/plain",
                exchange["operation"]
            );
        }
        let operation = exchange["operation"]
            .as_str()
            .expect("operation")
            .to_owned();
        self.calls
            .lock()
            .expect("calls")
            .push((operation.clone(), request.clone()));
        let mut state = self.state.lock().expect("state");
        Ok((self.answer)(&mut state, exchange, &name, request))
    }
}

fn status(exchange: &Value, key: &str) -> u16 {
    exchange[key].as_u64().expect("status") as u16
}

fn answer(status: u16, body: Value, location: Option<String>) -> Response {
    Response {
        status,
        body,
        location,
    }
}

/// Harbor's state: registry endpoints (id, body) and projects (name, registry id).
#[derive(Default)]
pub(crate) struct HarborState {
    registries: Vec<(i64, Value)>,
    projects: Vec<(String, Option<i64>)>,
}

pub(crate) fn harbor_answer(s: &mut HarborState, e: &Value, name: &str, r: &Request) -> Response {
    let body = match &r.body {
        Body::Json(v) => v.clone(),
        _ => Value::Null,
    };
    match e["operation"].as_str().expect("operation") {
        "getHealth" => answer(200, e["response"].clone(), None),
        "listRegistries" => {
            let items = s
                .registries
                .iter()
                .filter(|(_, b)| b["name"] == name)
                .map(|(id, b)| {
                    let mut item = e["response_item"].clone();
                    for k in ["name", "type", "url", "insecure", "description"] {
                        item[k] = b[k].clone();
                    }
                    item["id"] = json!(id);
                    item
                })
                .collect();
            answer(200, Value::Array(items), None)
        }
        "createRegistry" => {
            let types = fixture("harbor-api.json")["registry_types"].clone();
            assert!(
                types.as_array().expect("types").contains(&body["type"]),
                "{body}"
            );
            if s.registries.iter().any(|(_, b)| b["name"] == body["name"]) {
                return answer(status(e, "conflict_status"), json!({"errors": []}), None);
            }
            let id = s.registries.len() as i64 + 1;
            s.registries.push((id, body));
            let at = e["location"]
                .as_str()
                .expect("location")
                .replace("{id}", &id.to_string());
            answer(status(e, "status"), Value::Null, Some(at))
        }
        "headProject" => {
            let found = s.projects.iter().any(|(p, _)| p == name);
            let code = if found {
                status(e, "status")
            } else {
                status(e, "absent_status")
            };
            answer(code, Value::Null, None)
        }
        "createProject" => {
            let project = body["project_name"]
                .as_str()
                .expect("project_name")
                .to_owned();
            if s.projects.iter().any(|(p, _)| *p == project) {
                return answer(status(e, "conflict_status"), json!({"errors": []}), None);
            }
            let registry = body["registry_id"].as_i64();
            if let Some(id) = registry {
                assert!(
                    s.registries.iter().any(|(r, _)| *r == id),
                    "unknown registry_id {id}"
                );
            }
            s.projects.push((project, registry));
            answer(status(e, "status"), Value::Null, None)
        }
        other => panic!("no stand-in behaviour for {other}"),
    }
}

#[tokio::test]
async fn harbor_gets_a_proxy_cache_project_per_upstream_and_the_oci_project_once() {
    let standin = StandIn::new("harbor-api.json", HarborState::default(), harbor_answer);
    let harbor = Harbor::new(&standin);
    assert_eq!(harbor.health().await.expect("health").status, "healthy");
    let created = harbor.configure("hostctl-charts").await.expect("configure");
    assert_eq!(created.len(), UPSTREAMS.len() * 2 + 1, "{created:?}");
    {
        let state = standin.state.lock().expect("state");
        for upstream in UPSTREAMS {
            let (id, body) = state
                .registries
                .iter()
                .find(|(_, b)| b["name"] == upstream.project)
                .expect("registry endpoint");
            assert_eq!(body["type"], upstream.harbor_type);
            assert!(
                state
                    .projects
                    .contains(&(upstream.project.to_owned(), Some(*id))),
                "{} is not a proxy cache of its endpoint",
                upstream.project
            );
        }
        assert!(
            state
                .projects
                .contains(&("hostctl-charts".to_owned(), None))
        );
    }
    for body in standin.bodies("createProject") {
        assert_eq!(body["metadata"]["public"], "true", "{body}");
    }

    // Idempotent: the second run looks and creates nothing.
    let before = standin.operations().len();
    let again = harbor.configure("hostctl-charts").await.expect("again");
    assert!(again.is_empty(), "{again:?}");
    let second = &standin.operations()[before..];
    assert!(
        second
            .iter()
            .all(|o| o == "listRegistries" || o == "headProject"),
        "{second:?}"
    );
}

/// Nexus's state: whether it is up, the admin password, repositories.
pub(crate) struct NexusState {
    pub(crate) available: bool,
    pub(crate) password: String,
    pub(crate) repositories: Vec<Value>,
}

pub(crate) fn nexus_answer(s: &mut NexusState, e: &Value, name: &str, r: &Request) -> Response {
    match e["operation"].as_str().expect("operation") {
        "isAvailable" => {
            let code = if s.available {
                status(e, "status")
            } else {
                status(e, "absent_status")
            };
            answer(code, Value::Null, None)
        }
        "changePassword" => {
            let Body::Text(text) = &r.body else {
                panic!("text/plain")
            };
            s.password = text.clone();
            answer(status(e, "status"), Value::Null, None)
        }
        "getRepository" => match s.repositories.iter().find(|b| b["name"] == name) {
            Some(b) => {
                let mut item = e["response"].clone();
                item["name"] = b["name"].clone();
                answer(status(e, "status"), item, None)
            }
            None => answer(status(e, "absent_status"), Value::Null, None),
        },
        "createRepository" => {
            let Body::Json(body) = &r.body else {
                panic!("JSON")
            };
            s.repositories.push(body.clone());
            answer(status(e, "status"), Value::Null, None)
        }
        other => panic!("no stand-in behaviour for {other}"),
    }
}

#[tokio::test]
async fn nexus_gets_its_password_and_an_apt_proxy_per_source_once() {
    let state = NexusState {
        available: false,
        password: "initial".into(),
        repositories: Vec::new(),
    };
    let standin = StandIn::new("nexus-api.json", state, nexus_answer);
    let nexus = Nexus::new(&standin);
    assert!(
        !nexus.available().await.expect("status"),
        "503 means not yet"
    );
    standin.state.lock().expect("state").available = true;
    assert!(nexus.available().await.expect("status"));
    nexus
        .change_admin_password("generated")
        .await
        .expect("password");
    assert_eq!(standin.state.lock().expect("state").password, "generated");

    let repos = apt_proxies(&topology::default_topology(), true);
    let created = nexus.configure(&repos).await.expect("configure");
    assert_eq!(created.len(), repos.len(), "{created:?}");
    let bodies = standin.bodies("createRepository");
    let ubuntu = bodies
        .iter()
        .find(|b| b["name"] == "ubuntu")
        .expect("ubuntu");
    assert_eq!(
        ubuntu["proxy"]["remoteUrl"],
        "http://ports.ubuntu.com/ubuntu-ports/"
    );
    assert_eq!(
        ubuntu["apt"],
        json!({"distribution": "noble", "flat": false})
    );
    // One proxy per suite of the archive, all of the same upstream on arm64.
    let suites: Vec<(&Value, &Value, &Value)> = bodies
        .iter()
        .filter(|b| b["name"].as_str().is_some_and(|n| n.starts_with("ubuntu")))
        .map(|b| {
            (
                &b["name"],
                &b["apt"]["distribution"],
                &b["proxy"]["remoteUrl"],
            )
        })
        .collect();
    let ports = json!("http://ports.ubuntu.com/ubuntu-ports/");
    assert_eq!(
        suites,
        [
            (&json!("ubuntu"), &json!("noble"), &ports),
            (&json!("ubuntu-updates"), &json!("noble-updates"), &ports),
            (&json!("ubuntu-security"), &json!("noble-security"), &ports),
        ]
    );
    let k8s = bodies
        .iter()
        .find(|b| b["name"] == "kubernetes-v1.35")
        .expect("k8s");
    assert_eq!(
        k8s["proxy"]["remoteUrl"],
        "https://pkgs.k8s.io/core:/stable:/v1.35/deb/"
    );
    assert_eq!(k8s["apt"]["flat"], true);

    let before = standin.operations().len();
    assert!(nexus.configure(&repos).await.expect("again").is_empty());
    assert!(
        standin.operations()[before..]
            .iter()
            .all(|o| o == "getRepository")
    );
}

/// The real client against a one-shot HTTP/1.1 server on loopback: what
/// goes on the wire (method, path, basic auth, JSON body and its type) and
/// what comes back (status, JSON, `Location`).
#[tokio::test]
async fn the_real_client_sends_basic_auth_and_json_and_reads_the_answer() {
    use host_agent::mirrors::http::HttpApi;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let answer = "HTTP/1.1 201 Created\r\nLocation: /api/v2.0/registries/7\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"id\": 7 }\n";
        stream.write_all(answer.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&seen).to_string()
    });
    let api = HttpApi::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        Some(("admin", "s3cret")),
    )
    .expect("client");
    let response = api
        .send(&Request::post(
            "/api/v2.0/registries",
            json!({"name": "dockerhub"}),
        ))
        .await
        .expect("answer");
    assert_eq!(response.status, 201);
    assert_eq!(response.body["id"], 7);
    assert_eq!(response.location.as_deref(), Some("/api/v2.0/registries/7"));
    let request = server.await.expect("server");
    assert!(
        request.starts_with("POST /api/v2.0/registries HTTP/1.1\r\n"),
        "{request}"
    );
    // base64("admin:s3cret")
    assert!(
        request.contains("authorization: Basic YWRtaW46czNjcmV0")
            || request.contains("Authorization: Basic YWRtaW46czNjcmV0"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{request}"
    );
    assert!(request.ends_with("{\"name\":\"dockerhub\"}"), "{request}");
    // HTTPS without a CA is refused before any connection.
    assert!(HttpApi::new("https://127.0.0.1:1", None, None).is_err());
}
