//! Server-side apply of multi-document YAML, as `kubectl apply
//! --server-side --field-manager=hostctl` does: the API server merges and
//! records field ownership, which the Gateway API CRDs require (too large
//! for client-side apply's annotation) and which makes re-runs idempotent.
//!
//! Decision: no `force` by default. A field owned by another manager (a user
//! who edited a pool with kubectl, a controller) comes back as
//! [`KubeError::Conflict`] naming the object and the manager; the caller
//! decides whether to take ownership ([`ApplyOptions::force`]).

use super::error::KubeError;
use super::resources::{Kind, lookup};
use kube::api::{Api, DynamicObject, Patch, PatchParams};

/// The field manager every hostctl write uses.
pub const FIELD_MANAGER: &str = "hostctl";

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Take ownership of fields other managers own (`--force-conflicts`).
    pub force: bool,
}

/// One parsed document with its REST resource.
#[derive(Debug, Clone)]
pub struct Document {
    /// Position in the source: 1-based, counting documents that are not
    /// empty or comment-only, as a reader counts them.
    pub index: usize,
    pub object: DynamicObject,
    pub kind: &'static Kind,
}

impl Document {
    /// `Kind name` or `Kind namespace/name`, as errors and logs show it.
    pub fn describe(&self) -> String {
        let name = self.object.metadata.name.as_deref().unwrap_or("?");
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{name}", self.kind.kind),
            None => format!("{} {name}", self.kind.kind),
        }
    }

    /// The namespace a namespaced object goes to (`default` when unset, as kubectl).
    fn namespace(&self) -> Option<&str> {
        self.kind.namespaced.then(|| {
            self.object
                .metadata
                .namespace
                .as_deref()
                .unwrap_or("default")
        })
    }
}

/// Splits `yaml` at document separators and reads every non-empty document
/// as an object of a kind in [`super::resources::KINDS`].
pub fn parse_documents(source_name: &str, yaml: &str) -> Result<Vec<Document>, KubeError> {
    let decode = |index, reason: String| KubeError::Decode {
        source_name: source_name.to_owned(),
        index,
        reason,
    };
    let mut docs = Vec::new();
    for (index, text) in (1..).zip(split_documents(yaml)) {
        let value: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| decode(index, e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject =
            serde_json::from_value(value).map_err(|e| decode(index, e.to_string()))?;
        let types = object
            .types
            .clone()
            .ok_or_else(|| decode(index, "no apiVersion/kind".to_owned()))?;
        if object.metadata.name.as_deref().is_none_or(str::is_empty) {
            return Err(decode(
                index,
                format!("{} without metadata.name", types.kind),
            ));
        }
        let kind =
            lookup(&types.api_version, &types.kind).ok_or_else(|| KubeError::UnknownKind {
                source_name: source_name.to_owned(),
                index,
                api_version: types.api_version.clone(),
                kind: types.kind.clone(),
            })?;
        docs.push(Document {
            index,
            object,
            kind,
        });
    }
    Ok(docs)
}

/// Applies `docs` in order and returns their descriptions; stops at the
/// first failure (later documents often depend on earlier ones).
pub async fn apply_documents(
    client: &kube::Client,
    docs: &[Document],
    options: ApplyOptions,
) -> Result<Vec<String>, KubeError> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if options.force {
        params = params.force();
    }
    let mut applied = Vec::with_capacity(docs.len());
    for doc in docs {
        let what = doc.describe();
        let resource = doc.kind.api_resource();
        let api: Api<DynamicObject> = match doc.namespace() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let name = doc.object.metadata.name.as_deref().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(&doc.object))
            .await
            .map_err(|e| classify(e, &what))?;
        applied.push(what);
    }
    Ok(applied)
}

/// [`parse_documents`] then [`apply_documents`].
pub async fn apply_yaml(
    client: &kube::Client,
    source_name: &str,
    yaml: &str,
    options: ApplyOptions,
) -> Result<Vec<String>, KubeError> {
    let docs = parse_documents(source_name, yaml)?;
    apply_documents(client, &docs, options).await
}

/// Turns a kube-rs error into the typed error for `object`: 409 is a
/// field-manager conflict, any other Status keeps its code and reason, and
/// transport failures mean the API server is unreachable.
pub fn classify(err: kube::Error, object: &str) -> KubeError {
    match err {
        kube::Error::Api(status) if status.code == 409 => {
            let managers: Vec<String> = status
                .details
                .iter()
                .flat_map(|d| d.causes.iter())
                .map(|c| format!("{} ({})", c.field, c.message))
                .collect();
            let mut message = status.message.clone();
            if !managers.is_empty() {
                message.push_str(&format!("; fields: {}", managers.join(", ")));
            }
            KubeError::Conflict {
                object: object.to_owned(),
                message,
            }
        }
        kube::Error::Api(status) => KubeError::Api {
            object: object.to_owned(),
            status: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => KubeError::Unreachable {
            what: object.to_owned(),
            reason: telemetry::error_chain::chain(&other),
        },
    }
}

/// The documents of a YAML stream, split at `---` lines (document markers
/// are always at column 0; block scalars are indented, so a `---` inside
/// one cannot be at column 0), without empty or comment-only ones.
fn split_documents(yaml: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else if let Some(current) = docs.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}
