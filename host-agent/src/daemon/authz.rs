//! Who is calling, and may they call this method?
//!
//! Authentication is done by rustls at the handshake: the mutual-TLS
//! listener requires a client certificate chaining to the agent CA and
//! valid now, so a handler never sees a peer without one.
//!
//! The extended key usage is checked *here*, not only there: webpki
//! refuses a client certificate whose EKU extension lacks clientAuth, but
//! accepts one with no EKU extension at all (absent means "any purpose"
//! to it). Every certificate the host issues to a node or admin names
//! clientAuth, so [`caller_from_der`] refuses any certificate without an
//! EKU extension that lists clientAuth (`UNAUTHENTICATED`), whatever the
//! handshake let through.
//!
//! This module then turns the verified leaf into a [`Caller`] (CN = node
//! name, Organization = roles, as Talos does) and checks the method against
//! one static table. A method missing from the table is admin-only, so a
//! new RPC is closed until someone decides otherwise.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certs::{ROLE_ADMIN, ROLE_METRICS, ROLE_NODE};
use tonic::{Request, Status};

/// The verified identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The certificate's CN: a node name, `hostctl-host` or `admin`.
    pub name: String,
    /// The certificate's Organization values, e.g. `hostctl:node`.
    pub roles: Vec<String>,
    /// The certificate's validity, for revocation floors and `status`
    /// ([`super::nodecerts`]).
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// `Host.Report`: only node agents report.
pub const HOST_REPORT: &str = "/hostctl.agent.v1.Host/Report";

/// `Host.RenewCertificate`: a node renews its own certificate.
pub const HOST_RENEW_CERTIFICATE: &str = "/hostctl.agent.v1.Host/RenewCertificate";

/// `SnapshotSink.UploadSnapshot`: control-plane nodes ship scheduled
/// snapshots (which node may store for which cluster is checked by
/// [`crate::snapshots::sink`]).
pub const HOST_UPLOAD_SNAPSHOT: &str = "/hostctl.agent.v1.SnapshotSink/UploadSnapshot";

/// OTLP `TraceService.Export`: node agents relay their spans through the
/// host (docs/tracing.md).
pub const OTLP_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// `GET /metrics` on the metrics endpoint ([`super::metrics`]): only
/// mgmt's Prometheus (not a node, not even the admin: the scraper's
/// identity is the one credential handed to a cluster for it).
pub const METRICS_SCRAPE: &str = "GET /metrics";

/// The method → allowed-roles table (full gRPC paths, and
/// [`METRICS_SCRAPE`]).
const POLICY: &[(&str, &[&str])] = &[
    (METRICS_SCRAPE, &[ROLE_METRICS]),
    (HOST_REPORT, &[ROLE_NODE]),
    (HOST_RENEW_CERTIFICATE, &[ROLE_NODE]),
    (HOST_UPLOAD_SNAPSHOT, &[ROLE_NODE]),
    (OTLP_EXPORT, &[ROLE_NODE]),
];

/// Roles allowed for any method not in [`POLICY`].
const FALLBACK: &[&str] = &[ROLE_ADMIN];

/// Why a peer certificate could not be turned into a caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthzError {
    #[error("no verified client certificate on this connection")]
    NoCertificate,
    #[error("the client certificate cannot be read: {0}")]
    Unreadable(String),
    #[error("the client certificate has no common name")]
    NoCommonName,
    #[error(
        "the client certificate is not for client authentication (no clientAuth extended key usage)"
    )]
    NotForClientAuth,
    #[error("{caller} (roles {roles:?}) may not call {method}")]
    Forbidden {
        caller: String,
        roles: Vec<String>,
        method: String,
    },
}

impl From<AuthzError> for Status {
    fn from(e: AuthzError) -> Status {
        match e {
            AuthzError::Forbidden { .. } => Status::permission_denied(e.to_string()),
            _ => Status::unauthenticated(e.to_string()),
        }
    }
}

/// The roles allowed to call `method`.
pub fn allowed_roles(method: &str) -> &'static [&'static str] {
    POLICY
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, roles)| *roles)
        .unwrap_or(FALLBACK)
}

/// What the caller's certificate says beyond its subject.
struct Facts {
    /// Its EKU extension is present and names clientAuth.
    client_auth: bool,
    not_before: SystemTime,
    not_after: SystemTime,
}

fn facts_of(der: &[u8]) -> Result<Facts, AuthzError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| AuthzError::Unreadable(e.to_string()))?;
    let eku = cert
        .extended_key_usage()
        .map_err(|e| AuthzError::Unreadable(e.to_string()))?;
    let at = |t: x509_parser::time::ASN1Time| {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    Ok(Facts {
        client_auth: eku.is_some_and(|e| e.value.client_auth),
        not_before: at(cert.validity().not_before),
        not_after: at(cert.validity().not_after),
    })
}

/// Reads CN and roles from a DER certificate the TLS layer has verified,
/// refusing one that is not for client authentication (see the module
/// documentation for why the handshake alone does not).
pub fn caller_from_der(der: &[u8]) -> Result<Caller, AuthzError> {
    let facts = facts_of(der)?;
    if !facts.client_auth {
        return Err(AuthzError::NotForClientAuth);
    }
    let name = certs::common_name_of(der)
        .map_err(|e| AuthzError::Unreadable(e.to_string()))?
        .ok_or(AuthzError::NoCommonName)?;
    let roles = certs::roles_of(der).map_err(|e| AuthzError::Unreadable(e.to_string()))?;
    Ok(Caller {
        name,
        roles,
        not_before: facts.not_before,
        not_after: facts.not_after,
    })
}

/// Checks that `caller` holds a role allowed for `method`.
pub fn check(caller: &Caller, method: &str) -> Result<(), AuthzError> {
    let allowed = allowed_roles(method);
    if caller.roles.iter().any(|r| allowed.contains(&r.as_str())) {
        Ok(())
    } else {
        Err(AuthzError::Forbidden {
            caller: caller.name.clone(),
            roles: caller.roles.clone(),
            method: method.to_owned(),
        })
    }
}

/// The caller of `req`, if allowed to call `method`; the gRPC status to
/// answer with otherwise.
pub fn authorize<T>(req: &Request<T>, method: &str) -> Result<Caller, Status> {
    let certs = req.peer_certs().ok_or(AuthzError::NoCertificate)?;
    let leaf = certs.first().ok_or(AuthzError::NoCertificate)?;
    let caller = caller_from_der(leaf.as_ref())?;
    check(&caller, method)?;
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[&str]) -> Caller {
        Caller {
            name: "app1-cp".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            not_before: UNIX_EPOCH,
            not_after: UNIX_EPOCH,
        }
    }

    #[test]
    fn report_path_matches_the_generated_service_name() {
        let expected = format!("/{}/Report", proto::v1::host_server::SERVICE_NAME);
        assert_eq!(HOST_REPORT, expected);
    }

    #[test]
    fn only_nodes_may_relay_spans() {
        let expected = format!(
            "/{}/Export",
            ::telemetry::otlp::trace_service_server::SERVICE_NAME
        );
        assert_eq!(OTLP_EXPORT, expected);
        assert!(check(&caller(&[ROLE_NODE]), OTLP_EXPORT).is_ok());
        assert!(check(&caller(&[ROLE_ADMIN]), OTLP_EXPORT).is_err());
    }

    #[test]
    fn only_nodes_may_report() {
        assert!(check(&caller(&[ROLE_NODE]), HOST_REPORT).is_ok());
        let err = check(&caller(&[ROLE_ADMIN]), HOST_REPORT);
        assert!(matches!(err, Err(AuthzError::Forbidden { .. })));
        assert!(check(&caller(&[]), HOST_REPORT).is_err());
    }

    #[test]
    fn only_the_metrics_scraper_may_scrape_and_it_may_do_nothing_else() {
        assert!(check(&caller(&[ROLE_METRICS]), METRICS_SCRAPE).is_ok());
        assert!(check(&caller(&[ROLE_NODE]), METRICS_SCRAPE).is_err());
        assert!(check(&caller(&[ROLE_ADMIN]), METRICS_SCRAPE).is_err());
        assert!(check(&caller(&[ROLE_METRICS]), HOST_REPORT).is_err());
        assert!(check(&caller(&[ROLE_METRICS]), "/hostctl.agent.v1.Control/Status").is_err());
    }

    #[test]
    fn unknown_methods_fall_back_to_admin_only() {
        let method = "/hostctl.agent.v1.Host/Upload";
        assert!(check(&caller(&[ROLE_ADMIN]), method).is_ok());
        assert!(check(&caller(&[ROLE_NODE]), method).is_err());
    }

    #[test]
    fn forbidden_maps_to_permission_denied_and_the_rest_to_unauthenticated() {
        let forbidden = AuthzError::Forbidden {
            caller: "x".into(),
            roles: vec![],
            method: HOST_REPORT.into(),
        };
        assert_eq!(
            Status::from(forbidden).code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            Status::from(AuthzError::NoCertificate).code(),
            tonic::Code::Unauthenticated
        );
    }
}
