//! Bounded reads through a cluster's API server for the commands that look
//! rather than change (`status`, `verify`): each request answers within
//! [`STATUS_TIMEOUT`] or says it did not, so a lab that is down costs one
//! timeout per figure, never a hang. Errors are sentences for a status
//! line: unreachable is a state there, not a failure of the command.

use super::apply::classify;
use super::health::STATUS_TIMEOUT;
use serde_json::Value;

/// `GET path` as text (a service or pod proxy's `/metrics`, an API object).
pub async fn get_text(client: &kube::Client, path: &str) -> Result<String, String> {
    match request(client, path).await? {
        Ok(text) => Ok(text),
        Err(e) => Err(classify(e, path).to_string()),
    }
}

/// `GET path` as JSON; `None` when the object (or its kind) does not exist
/// (404), which for a component not installed is an answer, not an error.
pub async fn get_json(client: &kube::Client, path: &str) -> Result<Option<Value>, String> {
    match request(client, path).await? {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("GET {path}: not JSON: {e}")),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(classify(e, &format!("GET {path}")).to_string()),
    }
}

/// The request, bounded: the outer error is the timeout.
async fn request(client: &kube::Client, path: &str) -> Result<Result<String, kube::Error>, String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(STATUS_TIMEOUT, client.request_text(request))
        .await
        .map_err(|_| {
            format!(
                "GET {path}: no answer within {} s",
                STATUS_TIMEOUT.as_secs()
            )
        })
}
