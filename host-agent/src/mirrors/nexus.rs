//! Nexus Repository configured through its REST API (sonatype/nexus-public:
//! `StatusResource` `/v1/status`, `UserApiResource`
//! `/v1/security/users/{id}/change-password`, `AptProxyRepositoriesApiResource`
//! `/v1/repositories/apt/proxy`, all under `/service/rest`): the admin
//! password replaced by hostctl's, then one apt proxy per package source
//! (per suite of the Ubuntu archive, per Kubernetes minor).
//! Looks before it creates.

use super::error::MirrorError;
use super::http::{Api, Request, Response};
use super::upstreams::AptProxy;
use serde_json::{Value, json};

const REST: &str = "/service/rest/v1";

pub struct Nexus<'a> {
    api: &'a dyn Api,
}

impl<'a> Nexus<'a> {
    pub fn new(api: &'a dyn Api) -> Nexus<'a> {
        Nexus { api }
    }

    fn failed(&self, request: &Request, answer: &Response) -> MirrorError {
        MirrorError::Api {
            call: format!("{} {}{}", request.method, self.api.address(), request.path),
            status: answer.status,
            body: answer.body.to_string(),
        }
    }

    /// `GET /v1/status`: 200 when Nexus can serve reads.
    pub async fn available(&self) -> Result<bool, MirrorError> {
        let answer = self
            .api
            .send(&Request::get(format!("{REST}/status")))
            .await?;
        Ok(answer.status == 200)
    }

    /// Sets the admin password (the API client authenticates with the
    /// current one, e.g. the initial `admin.password`).
    pub async fn change_admin_password(&self, new: &str) -> Result<(), MirrorError> {
        let request =
            Request::put_text(format!("{REST}/security/users/admin/change-password"), new);
        let answer = self.api.send(&request).await?;
        if answer.ok() {
            Ok(())
        } else {
            Err(self.failed(&request, &answer))
        }
    }

    /// The apt proxy `repo`, created unless it exists; returns what was
    /// created.
    pub async fn ensure_apt_proxy(&self, repo: &AptProxy) -> Result<Vec<String>, MirrorError> {
        let look = Request::get(format!("{REST}/repositories/apt/proxy/{}", repo.name));
        let answer = self.api.send(&look).await?;
        match answer.status {
            200 => return Ok(Vec::new()),
            404 => {}
            _ => return Err(self.failed(&look, &answer)),
        }
        let create = Request::post(format!("{REST}/repositories/apt/proxy"), body(repo));
        let answer = self.api.send(&create).await?;
        if !answer.ok() {
            return Err(self.failed(&create, &answer));
        }
        Ok(vec![format!(
            "apt proxy {} → {}",
            repo.name, repo.remote_url
        )])
    }

    pub async fn configure(&self, repos: &[AptProxy]) -> Result<Vec<String>, MirrorError> {
        let mut created = Vec::new();
        for repo in repos {
            created.extend(self.ensure_apt_proxy(repo).await?);
        }
        Ok(created)
    }
}

/// `AptProxyRepositoryApiRequest`: the required attributes, a day's
/// caching of content and metadata.
fn body(repo: &AptProxy) -> Value {
    json!({
        "name": repo.name,
        "online": true,
        "storage": {"blobStoreName": "default", "strictContentTypeValidation": true},
        "proxy": {"remoteUrl": repo.remote_url, "contentMaxAge": 1440, "metadataMaxAge": 1440},
        "negativeCache": {"enabled": true, "timeToLive": 1440},
        "httpClient": {"blocked": false, "autoBlock": true},
        "apt": {"distribution": repo.distribution, "flat": repo.flat},
    })
}
