//! One HTTP request through `git http-backend`, the CGI program git ships
//! for its smart HTTP protocol (RFC 3875 environment in, CGI response on
//! stdout). Using git's own server side means the protocol (v0, v1, v2,
//! shallow clones, filters) is exactly git's, for the git CLI and go-git
//! that Argo CD uses alike.
//!
//! The request body arrives whole (the server bounds and buffers it) and
//! is fed to stdin while stdout is read, so neither side can block the
//! other. The response's header block is bounded ([`MAX_HEADER_BYTES`]);
//! its body is streamed in chunks, bounded in total ([`CgiLimits::max_response`])
//! and in time ([`CgiLimits::deadline`]): past either, the child is killed
//! and the response ends early (the client sees a broken transfer, never a
//! hung one). The child is also killed when the client goes away.

use crate::exec::ExecError;
use hyper::body::Bytes;
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

/// The CGI header block (`Status:`, `Content-Type:`, …) may be this long.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// At most this much of the program's stderr is kept for the log.
const STDERR_KEPT: usize = 4096;

/// Chunks of the response body in flight between the child and the
/// client (each at most [`CHUNK`]).
const CHANNEL_DEPTH: usize = 4;
const CHUNK: usize = 64 * 1024;

/// The only response headers passed on: what git's HTTP client reads, and
/// the caching headers http-backend sets so no proxy serves stale refs.
const PASSED_HEADERS: &[&str] = &["content-type", "cache-control", "expires", "pragma"];

/// Bounds of one CGI run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgiLimits {
    /// The whole run, from start to the last byte of the response.
    pub deadline: Duration,
    /// Response body bytes.
    pub max_response: u64,
}

/// The request as CGI variables (validated by the server: method and path
/// are one of the two smart-HTTP endpoints).
#[derive(Debug, Clone)]
pub struct CgiRequest {
    pub method: &'static str,
    /// E.g. `/platform.git/info/refs`.
    pub path_info: &'static str,
    pub query: &'static str,
    pub content_type: Option<String>,
    /// The client's `Git-Protocol` header (`version=2`).
    pub git_protocol: Option<String>,
    /// The client's `Content-Encoding` (git gzips large requests).
    pub content_encoding: Option<String>,
    pub remote_addr: IpAddr,
    pub body: Bytes,
}

/// The response: status and passed headers, and the body as it comes.
#[derive(Debug)]
pub struct CgiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

/// Why `git http-backend` gave no usable response.
#[derive(Debug, thiserror::Error)]
pub enum CgiError {
    #[error(transparent)]
    Spawn(#[from] ExecError),
    #[error("reading git http-backend's response: {0}")]
    Read(#[source] std::io::Error),
    #[error("git http-backend's response headers exceed {MAX_HEADER_BYTES} bytes")]
    HeadersTooLong,
    #[error("git http-backend ended before its response headers")]
    NoHeaders,
    #[error("git http-backend sent a malformed header line {0:?}")]
    BadHeader(String),
    #[error("git http-backend did not answer in time")]
    Timeout,
}

/// Runs `git http-backend` for `request` on the repositories under
/// `project_root`. `permit` (the server's slot for a running request) is
/// held until the child has ended.
pub async fn run(
    project_root: &Path,
    request: CgiRequest,
    limits: CgiLimits,
    permit: OwnedSemaphorePermit,
) -> Result<CgiResponse, CgiError> {
    let deadline = Instant::now() + limits.deadline;
    let cmd = super::git::hermetic()
        // Read-only whatever the repository's config says; the server
        // routes none of these here anyway.
        .args([
            "-c",
            "http.receivepack=false",
            "-c",
            "http.getanyfile=false",
        ])
        .args(["-c", "http.uploadarch=false", "http-backend"])
        .env("GIT_PROJECT_ROOT", project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", request.method)
        .env("PATH_INFO", request.path_info)
        .env("QUERY_STRING", request.query)
        .env("CONTENT_TYPE", request.content_type.unwrap_or_default())
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .env("REMOTE_ADDR", request.remote_addr.to_string())
        .env(
            "HTTP_GIT_PROTOCOL",
            request.git_protocol.unwrap_or_default(),
        )
        .env(
            "HTTP_CONTENT_ENCODING",
            request.content_encoding.unwrap_or_default(),
        );
    let mut child = cmd
        .spawner()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop()
        .spawn()?;
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(CgiError::Read(std::io::Error::other(
            "the child's pipes are missing",
        )));
    };
    let body = request.body;
    tokio::spawn(async move {
        // The child may answer without reading everything (an error): a
        // broken pipe here is its business, not a failure.
        let _ = stdin.write_all(&body).await;
    });
    let stderr = tokio::spawn(stderr_tail(stderr));

    let (head, rest) = tokio::time::timeout_at(deadline, read_head(&mut stdout))
        .await
        .map_err(|_| CgiError::Timeout)??;
    let (status, headers) = parse_head(&head)?;
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::spawn(async move {
        let streamed = tokio::time::timeout_at(
            deadline,
            stream_body(rest, stdout, limits.max_response, &tx),
        )
        .await;
        let problem = match streamed {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(std::io::Error::other("the response took too long")),
        };
        if let Some(e) = problem {
            // Killed on drop below; the client sees the body end in error.
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            tracing::warn!("Git server: response cut short: {e}");
            drop(child);
        } else {
            match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => {
                    let tail = stderr.await.unwrap_or_default();
                    tracing::warn!("Git server: git http-backend exited {status}: {tail}");
                }
                Ok(Err(e)) => tracing::warn!("Git server: lost git http-backend: {e}"),
                Err(_) => tracing::warn!("Git server: git http-backend did not exit in time"),
            }
        }
        drop(permit);
    });
    Ok(CgiResponse {
        status,
        headers,
        body: rx,
    })
}

/// Reads until the blank line that ends the CGI header block; returns the
/// block and the body bytes read past it.
async fn read_head(stdout: &mut (impl AsyncRead + Unpin)) -> Result<(String, Vec<u8>), CgiError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((end, body_start)) = head_end(&buf) {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok((head, buf[body_start..].to_vec()));
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(CgiError::HeadersTooLong);
        }
        let n = stdout.read(&mut chunk).await.map_err(CgiError::Read)?;
        if n == 0 {
            return Err(CgiError::NoHeaders);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Where the header block ends (its length, and where the body starts):
/// at the first empty line, `\r\n` or bare `\n` line ends alike.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The status (`Status: 404 Not Found`; 200 without one) and the passed
/// headers of a CGI header block.
fn parse_head(head: &str) -> Result<(u16, Vec<(String, String)>), CgiError> {
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.lines().map(|l| l.trim_end_matches('\r')) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(CgiError::BadHeader(line.to_owned()));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "status" {
            status = value
                .split_whitespace()
                .next()
                .and_then(|code| code.parse::<u16>().ok())
                .filter(|code| (100..600).contains(code))
                .ok_or_else(|| CgiError::BadHeader(line.to_owned()))?;
        } else if PASSED_HEADERS.contains(&name.as_str()) {
            headers.push((name, value.to_owned()));
        }
    }
    Ok((status, headers))
}

/// Sends `first` and then what `stdout` produces, in chunks, until its end;
/// an error past `max` bytes or when the client is gone.
async fn stream_body(
    first: Vec<u8>,
    mut stdout: impl AsyncRead + Unpin,
    max: u64,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), std::io::Error> {
    let mut sent = 0u64;
    let mut next = first;
    loop {
        if !next.is_empty() {
            sent += next.len() as u64;
            if sent > max {
                return Err(std::io::Error::other(format!(
                    "the response exceeds {max} bytes"
                )));
            }
            tx.send(Ok(Bytes::from(std::mem::take(&mut next))))
                .await
                .map_err(|_| std::io::Error::other("the client went away"))?;
        }
        let mut chunk = vec![0u8; CHUNK];
        let n = stdout.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        next = chunk;
    }
}

/// The last [`STDERR_KEPT`] bytes the child writes to stderr, read to its
/// end so a chatty child never blocks on a full pipe.
async fn stderr_tail(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > STDERR_KEPT {
            kept.drain(..kept.len() - STDERR_KEPT);
        }
    }
    crate::exec::tail(&String::from_utf8_lossy(&kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_block_ends_at_the_first_empty_line_whatever_the_line_ends() {
        assert_eq!(head_end(b"Status: 200\r\n\r\nbody"), Some((11, 15)));
        assert_eq!(head_end(b"A: b\n\nbody\r\n\r\n"), Some((4, 6)));
        assert_eq!(head_end(b"A: b\r\n"), None);
    }

    #[test]
    fn status_and_only_the_passed_headers_are_kept() {
        let (status, headers) = parse_head(
            "Status: 403 Forbidden\r\nContent-Type: text/plain\r\nSet-Cookie: x=y\r\nPragma: no-cache",
        )
        .expect("parses");
        assert_eq!(status, 403);
        assert_eq!(
            headers,
            [
                ("content-type".to_owned(), "text/plain".to_owned()),
                ("pragma".to_owned(), "no-cache".to_owned())
            ]
        );
        assert_eq!(parse_head("Content-Type: a/b").expect("parses").0, 200);
        assert!(matches!(
            parse_head("Status: soon"),
            Err(CgiError::BadHeader(_))
        ));
        assert!(matches!(
            parse_head("no colon here"),
            Err(CgiError::BadHeader(_))
        ));
    }
}
