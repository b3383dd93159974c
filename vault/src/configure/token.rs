//! hostctl's own token. The root token from `sys/init` is used once: to
//! write the policies and mint an orphan, periodic token with the
//! `hostctl-admin` policy (an orphan, so revoking root does not revoke it),
//! then revoked and its file removed. Every later run authenticates with
//! the admin token and renews it, so it lives as long as hostctl keeps
//! running at least once per period.

use hyper::Method;
use serde_json::json;

use super::policy::ADMIN_POLICY;
use crate::client::VaultClient;
use crate::error::VaultError;
use crate::files::{ADMIN_TOKEN, KeyDir, ROOT_TOKEN};
use crate::report::{Change, Report};
use crate::secret::Secret;

/// The admin token's period: each run renews it for this long.
pub const ADMIN_PERIOD: &str = "2160h";

/// The token a run uses.
#[derive(Debug, Clone)]
pub enum Credential {
    /// hostctl's admin token (every run after the first).
    Admin(Secret),
    /// The root token (the first run only, until [`ensure_admin_token`]).
    Root(Secret),
}

/// Picks the admin token if Vault accepts it, else the root token if it is
/// still on disk and accepted; neither is [`VaultError::NoToken`].
pub async fn authenticate(client: &VaultClient, keys: &KeyDir) -> Result<Credential, VaultError> {
    let reason = match keys.read(ADMIN_TOKEN)? {
        Some(admin) => match accepted(client, &admin).await? {
            true => return Ok(Credential::Admin(admin)),
            false => "was refused by Vault (expired or revoked)",
        },
        None => "is missing",
    };
    if let Some(root) = keys.read(ROOT_TOKEN)?
        && accepted(client, &root).await?
    {
        return Ok(Credential::Root(root));
    }
    Err(VaultError::NoToken {
        admin: keys.file(ADMIN_TOKEN),
        reason: reason.to_owned(),
        root: keys.file(ROOT_TOKEN),
    })
}

/// Whether Vault accepts `token` (`lookup-self`; 403 means no).
async fn accepted(client: &VaultClient, token: &Secret) -> Result<bool, VaultError> {
    let path = "/v1/auth/token/lookup-self";
    let answer = client
        .with_token(token.clone())
        .send(Method::GET, path, None)
        .await?;
    match answer.status {
        200..300 => Ok(true),
        401 | 403 => Ok(false),
        _ => Err(crate::client::api_error(&Method::GET, path, &answer)),
    }
}

/// Ends with hostctl holding a renewed admin token and no root token:
/// mints the admin token with root if needed, revokes a root token still on
/// disk (a run interrupted between the two), renews the admin token.
/// Returns the admin token.
pub async fn ensure_admin_token(
    client: &VaultClient,
    keys: &KeyDir,
    credential: Credential,
    report: &mut Report,
) -> Result<Secret, VaultError> {
    let admin = match credential {
        Credential::Admin(admin) => admin,
        Credential::Root(root) => {
            let body = json!({
                "policies": [ADMIN_POLICY],
                "no_parent": true,
                "period": ADMIN_PERIOD,
                "renewable": true,
                "display_name": "hostctl-admin",
            });
            let answer = client
                .with_token(root)
                .write("/v1/auth/token/create", &body)
                .await?;
            let admin: Secret = crate::client::decode(
                "POST",
                "/v1/auth/token/create",
                answer["auth"]["client_token"].clone(),
            )?;
            keys.write(ADMIN_TOKEN, &admin)?;
            report.push(Change::AdminToken);
            admin
        }
    };
    if let Some(root) = keys.read(ROOT_TOKEN)? {
        let path = "/v1/auth/token/revoke-self";
        let answer = client
            .with_token(root)
            .send(Method::POST, path, None)
            .await?;
        // 403: already revoked (an earlier run stopped before removing the file).
        if !(200..300).contains(&answer.status) && answer.status != 403 {
            return Err(crate::client::api_error(&Method::POST, path, &answer));
        }
        keys.remove(ROOT_TOKEN)?;
        report.push(Change::RootTokenRevoked);
    }
    client
        .with_token(admin.clone())
        .write("/v1/auth/token/renew-self", &json!({}))
        .await?;
    Ok(admin)
}
