//! The agent's one download, the prerequisites' repository key: an HTTPS
//! GET (hyper + rustls, trusting the system's CA bundle, following
//! pkgs.k8s.io's redirects to its CDN), so the agent needs no curl. It is
//! behind [`super::Runner::fetch`] so the recording stand-in suppresses it
//! along with the commands.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::ExecError;

/// The CA bundle of Ubuntu (package ca-certificates).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// A key is a few KiB; anything much larger is not a key.
const MAX_BODY: usize = 1 << 20;
const MAX_REDIRECTS: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(60);

/// GETs `url` over HTTPS, following redirects.
pub async fn https_get(url: &str) -> Result<Vec<u8>, ExecError> {
    let fail = |reason: String| ExecError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let tls = Arc::new(client_config().map_err(fail)?);
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let attempt = tokio::time::timeout(TIMEOUT, get_once(&tls, &current));
        match attempt.await {
            Err(_) => return Err(fail(format!("no answer from {current} within {TIMEOUT:?}"))),
            Ok(Err(reason)) => return Err(fail(reason)),
            Ok(Ok(Answer::Body(body))) => return Ok(body),
            Ok(Ok(Answer::Redirect(location))) => current = location,
        }
    }
    Err(fail(format!("more than {MAX_REDIRECTS} redirects")))
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

fn client_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(CA_BUNDLE)
        .map_err(|e| format!("cannot read the CA bundle {CA_BUNDLE}: {e}"))?;
    for cert in certs.flatten() {
        // A certificate the verifier cannot use is skipped, as curl does.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `https://host[:port]/path` split into its parts.
fn split(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url} is not an https:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {url}"))?),
        None => (authority, 443),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok((host.to_owned(), port, path.to_owned()))
}

async fn get_once(tls: &Arc<rustls::ClientConfig>, url: &str) -> Result<Answer, String> {
    let (host, port, path) = split(url)?;
    let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let request = hyper::Request::get(path.as_str())
        .header(hyper::header::HOST, host.as_str())
        .header(hyper::header::USER_AGENT, "hostctl-node-agent")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let answer = if status.is_redirection() {
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("{status} without a Location from {url}"))?;
        Ok(Answer::Redirect(resolve(url, location)))
    } else if status.is_success() {
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok(Answer::Body(body.to_bytes().to_vec()))
    } else {
        Err(format!("{url} answered {status}"))
    };
    driver.abort();
    answer
}

/// A Location header made absolute against the URL that sent it.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    format!(
        "{}/{}",
        &base[..origin_end],
        location.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_origin() {
        assert_eq!(
            resolve("https://pkgs.k8s.io/core:/x/Release.key", "/a/b"),
            "https://pkgs.k8s.io/a/b"
        );
        assert_eq!(resolve("https://a/x", "https://b/y"), "https://b/y");
        assert_eq!(
            split("https://h:8443/p"),
            Ok(("h".into(), 8443, "/p".into()))
        );
    }
}
