//! Bootstrap tokens created by the host, through the API, just before a
//! worker joins — instead of `kubeadm token create` on the control plane
//! (one more RPC, and a token that outlives its use) or the long-lived
//! token in the InitConfiguration. The Secret is exactly what kubeadm
//! writes (`cmd/kubeadm/app/apis/bootstraptoken/v1/utils.go`,
//! `BootstrapTokenToSecret`), so the API server's bootstrap authenticator
//! and the `cluster-info` signer accept it, and it expires on its own.

use super::apply::classify;
use super::error::KubeError;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where bootstrap token Secrets live.
pub const NAMESPACE: &str = "kube-system";
/// The Secret type the bootstrap authenticator looks for.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group kubeadm's default RBAC lets join (CSR creation, auto-approval).
pub const JOIN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// Long enough for a join with retries, short enough not to matter later.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// A token as `id.secret` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenParts<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Splits `[a-z0-9]{6}.[a-z0-9]{16}` (kubeadm's format); anything else is
/// refused before it reaches the API.
pub fn parse(token: &str) -> Result<TokenParts<'_>, KubeError> {
    let valid = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.split_once('.') {
        Some((id, secret)) if valid(id, 6) && valid(secret, 16) => Ok(TokenParts { id, secret }),
        _ => Err(KubeError::Token(
            "a bootstrap token must look like [a-z0-9]{6}.[a-z0-9]{16}".to_owned(),
        )),
    }
}

/// The name kubeadm gives the token's Secret.
pub fn secret_name(parts: &TokenParts<'_>) -> String {
    format!("bootstrap-token-{}", parts.id)
}

/// The Secret for `token`, expiring at `expires`.
pub fn secret(token: &str, expires: Timestamp) -> Result<Secret, KubeError> {
    let parts = parse(token)?;
    let data: BTreeMap<String, String> = [
        ("token-id", parts.id.to_owned()),
        ("token-secret", parts.secret.to_owned()),
        ("expiration", expires.to_string()),
        ("usage-bootstrap-signing", "true".to_owned()),
        ("usage-bootstrap-authentication", "true".to_owned()),
        ("auth-extra-groups", JOIN_GROUP.to_owned()),
        (
            "description",
            "minted by hostctl up for one kubeadm join".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&parts)),
            namespace: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.to_owned()),
        string_data: Some(data),
        ..Secret::default()
    })
}

/// Creates `token` in the cluster, valid for `ttl`; returns the Secret's
/// name. A fresh random token never collides, so an existing Secret of
/// that name is an error like any other.
pub async fn create_bootstrap_token(
    client: &kube::Client,
    token: &str,
    ttl: Duration,
) -> Result<String, KubeError> {
    let ttl = SignedDuration::try_from(ttl).map_err(|e| KubeError::Token(e.to_string()))?;
    let expires = Timestamp::now()
        .checked_add(ttl)
        .map_err(|e| KubeError::Token(e.to_string()))?;
    let secret = secret(token, expires)?;
    let name = secret.metadata.name.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    api.create(&PostParams::default(), &secret)
        .await
        .map_err(|e| classify(e, &format!("create secret {NAMESPACE}/{name}")))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_malformed_tokens() {
        for bad in [
            "",
            "abcdef",
            "abcde.0123456789abcdef",
            "ABCDEF.0123456789abcdef",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_secret_is_kubeadms() {
        let expires: Timestamp = "2026-01-05T11:00:00Z".parse().unwrap();
        let s = secret("abcdef.0123456789abcdef", expires).unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(s.type_.as_deref(), Some(SECRET_TYPE));
        let data = s.string_data.unwrap();
        assert_eq!(data["token-id"], "abcdef");
        assert_eq!(data["token-secret"], "0123456789abcdef");
        assert_eq!(data["expiration"], "2026-01-05T11:00:00Z");
        assert_eq!(data["usage-bootstrap-signing"], "true");
        assert_eq!(data["usage-bootstrap-authentication"], "true");
        assert_eq!(data["auth-extra-groups"], JOIN_GROUP);
    }
}
