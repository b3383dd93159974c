//! Harbor configured through its v2.0 REST API (`api/v2.0/swagger.yaml`
//! in goharbor/harbor): one registry endpoint and one proxy-cache project
//! per upstream (`POST /registries`, then `POST /projects` with its
//! `registry_id`), and the plain OCI project for hostctl's charts and
//! GitOps artifacts. Every step looks before it creates, so running it
//! again changes nothing.

use super::error::MirrorError;
use super::http::{Api, Request, Response};
use super::upstreams::{UPSTREAMS, Upstream, harbor_endpoint};
use serde_json::{Value, json};

const API: &str = "/api/v2.0";

/// Harbor's `/health` answer, reduced to what `status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// "healthy" only when every component is.
    pub status: String,
    /// Components not healthy, by name.
    pub unhealthy: Vec<String>,
}

pub struct Harbor<'a> {
    api: &'a dyn Api,
}

fn failed(request: &Request, api: &dyn Api, answer: &Response) -> MirrorError {
    MirrorError::Api {
        call: format!("{} {}{}", request.method, api.address(), request.path),
        status: answer.status,
        body: answer.body.to_string(),
    }
}

impl<'a> Harbor<'a> {
    pub fn new(api: &'a dyn Api) -> Harbor<'a> {
        Harbor { api }
    }

    async fn call(&self, request: Request) -> Result<Response, MirrorError> {
        let answer = self.api.send(&request).await?;
        if answer.ok() {
            Ok(answer)
        } else {
            Err(failed(&request, self.api, &answer))
        }
    }

    /// `GET /health` (no authentication needed).
    pub async fn health(&self) -> Result<Health, MirrorError> {
        let body = self.call(Request::get(format!("{API}/health"))).await?.body;
        let unhealthy = body["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] != "healthy")
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        Ok(Health {
            status: body["status"].as_str().unwrap_or("unknown").to_owned(),
            unhealthy,
        })
    }

    /// The id of the registry endpoint named `name`, if it exists
    /// (`GET /registries?q=name=<name>`, an exact match).
    async fn registry_id(&self, name: &str) -> Result<Option<i64>, MirrorError> {
        let path = format!("{API}/registries?q=name%3D{name}");
        let list = self.call(Request::get(path)).await?.body;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == name)
            .and_then(|r| r["id"].as_i64()))
    }

    /// Whether project `name` exists (`HEAD /projects?project_name=`:
    /// 200 or 404).
    async fn project_exists(&self, name: &str) -> Result<bool, MirrorError> {
        let request = Request::head(format!("{API}/projects?project_name={name}"));
        let answer = self.api.send(&request).await?;
        match answer.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(failed(&request, self.api, &answer)),
        }
    }

    /// The upstream's registry endpoint and proxy-cache project; returns
    /// what was created.
    pub async fn ensure_proxy_cache(
        &self,
        upstream: &Upstream,
    ) -> Result<Vec<String>, MirrorError> {
        let mut created = Vec::new();
        let name = upstream.project;
        let id = match self.registry_id(name).await? {
            Some(id) => id,
            None => {
                let body = json!({
                    "name": name,
                    "type": upstream.harbor_type,
                    "url": harbor_endpoint(upstream),
                    "insecure": false,
                    "description": format!("{} (hostctl proxy cache)", upstream.registry),
                });
                self.call(Request::post(format!("{API}/registries"), body))
                    .await?;
                created.push(format!("registry endpoint {name}"));
                self.registry_id(name)
                    .await?
                    .ok_or_else(|| MirrorError::Config {
                        what: format!("Harbor registry endpoint {name}"),
                        reason: "created but not listed".into(),
                    })?
            }
        };
        if !self.project_exists(name).await? {
            self.create_project(name, Some(id)).await?;
            created.push(format!(
                "proxy-cache project {name} → {}",
                upstream.registry
            ));
        }
        Ok(created)
    }

    /// A public project (`POST /projects`); `registry_id` makes it a proxy
    /// cache of that endpoint. Public: nodes pull without credentials.
    async fn create_project(
        &self,
        name: &str,
        registry_id: Option<i64>,
    ) -> Result<(), MirrorError> {
        let mut body = json!({
            "project_name": name,
            "metadata": {"public": "true"},
            "storage_limit": -1,
        });
        if let Some(id) = registry_id {
            body["registry_id"] = Value::from(id);
        }
        self.call(Request::post(format!("{API}/projects"), body))
            .await?;
        Ok(())
    }

    /// The plain OCI project `name` (charts, GitOps artifacts).
    pub async fn ensure_project(&self, name: &str) -> Result<Vec<String>, MirrorError> {
        if self.project_exists(name).await? {
            return Ok(Vec::new());
        }
        self.create_project(name, None).await?;
        Ok(vec![format!("project {name}")])
    }

    /// Everything hostctl keeps in Harbor; returns what was created.
    pub async fn configure(&self, artifacts_project: &str) -> Result<Vec<String>, MirrorError> {
        let mut created = Vec::new();
        for upstream in &UPSTREAMS {
            created.extend(self.ensure_proxy_cache(upstream).await?);
        }
        created.extend(self.ensure_project(artifacts_project).await?);
        Ok(created)
    }
}
