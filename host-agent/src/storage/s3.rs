//! The S3 calls hostctl makes to its object store: put a file, get it
//! back, look at and list objects. Plain HTTP/1.1 to Garage on the host
//! (loopback or the node network the host owns), signed with
//! [`super::sigv4`].
//!
//! Bodies stream both ways in fixed-size chunks, so a snapshot of any size
//! costs the same memory (issue 20's benchmark checks it). An upload is
//! signed with the file's SHA-256, which Garage checks before it stores
//! the object; the digest is also kept as object metadata
//! (`x-amz-meta-sha256`), so [`S3::head`] tells later what was stored.

use super::error::StorageError;
use super::sigv4::{self, EMPTY_SHA256, Signer, Unsigned};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// The chunk a body moves in.
const CHUNK: usize = 256 * 1024;
/// What an error or a listing may be (S3 XML documents).
const MAX_DOCUMENT: usize = 4 << 20;

/// A client for one store, signing as one key.
pub struct S3 {
    pub endpoint: SocketAddr,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// What [`S3::head`] learns of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    /// The digest hostctl stored with it (absent for foreign objects).
    pub sha256: Option<String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    pub last_modified: String,
}

fn amz_date() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// The text of every `<tag>…</tag>` in `xml`, unescaped (S3's listings
/// and errors are flat documents without CDATA or attributes on these).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn first(xml: &str, tag: &str) -> String {
    elements(xml, tag)
        .first()
        .map(|t| unescape(t))
        .unwrap_or_default()
}

impl S3 {
    fn call(&self, method: &str, path: &str) -> String {
        format!("{method} s3://{}{path}", self.endpoint)
    }

    /// Sends one signed request and returns the response head and body.
    async fn send<B>(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        payload_sha256: &str,
        body: B,
    ) -> Result<hyper::Response<Incoming>, StorageError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let unreachable = |reason: String| StorageError::Unreachable {
            call: self.call(method, path),
            reason,
        };
        let host = self.endpoint.to_string();
        let date = amz_date();
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", &host),
            ("x-amz-content-sha256", payload_sha256),
            ("x-amz-date", &date),
        ];
        headers.extend_from_slice(extra);
        let signer = Signer {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region: &self.region,
        };
        let authorization = signer.authorization(&Unsigned {
            method,
            path,
            query,
            headers: &headers,
            amz_date: &date,
            payload_sha256,
        });
        let query = sigv4::canonical_query(query);
        let uri = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::AUTHORIZATION, authorization)
            .header(hyper::header::USER_AGENT, "hostctl");
        for (k, v) in &headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body).map_err(|e| unreachable(e.to_string()))?;
        let tcp = tokio::net::TcpStream::connect(self.endpoint)
            .await
            .map_err(|e| unreachable(format!("connecting: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(conn);
        sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))
    }

    /// The response's (bounded) body as text.
    async fn document(
        &self,
        call: &str,
        r: hyper::Response<Incoming>,
    ) -> Result<String, StorageError> {
        let bytes = Limited::new(r.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| StorageError::Unreachable {
                call: call.to_owned(),
                reason: format!("reading the answer: {e}"),
            })?
            .to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn refused(&self, call: String, r: hyper::Response<Incoming>) -> StorageError {
        let status = r.status().as_u16();
        let body = self.document(&call, r).await.unwrap_or_default();
        let code = first(&body, "Code");
        let message = first(&body, "Message");
        StorageError::Api {
            call,
            status,
            body: if code.is_empty() {
                body
            } else {
                format!("{code}: {message}")
            },
        }
    }

    /// Uploads `file`, whose SHA-256 (hex) the caller knows: Garage refuses
    /// the body unless it hashes to that.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        file: &Path,
        sha256: &str,
    ) -> Result<(), StorageError> {
        let path = sigv4::encode_path(bucket, key);
        let f = tokio::fs::File::open(file)
            .await
            .map_err(StorageError::io(file))?;
        let size = f.metadata().await.map_err(StorageError::io(file))?.len();
        let length = size.to_string();
        let body = vault::snapshot::FileBody::new(f, CHUNK);
        let extra = [
            ("content-length", length.as_str()),
            ("x-amz-meta-sha256", sha256),
        ];
        let r = self.send("PUT", &path, &[], &extra, sha256, body).await?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(self.refused(self.call("PUT", &path), r).await)
        }
    }

    /// Downloads an object to `dest` (written under a temporary name,
    /// renamed when complete), refusing more than `max_bytes`; returns its
    /// size and SHA-256.
    pub async fn get_to_file(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<(u64, String), StorageError> {
        let path = sigv4::encode_path(bucket, key);
        let call = self.call("GET", &path);
        let r = self
            .send("GET", &path, &[], &[], EMPTY_SHA256, Empty::<Bytes>::new())
            .await?;
        if !r.status().is_success() {
            return Err(self.refused(call, r).await);
        }
        let partial = dest.with_extension("download");
        let mut out = tokio::fs::File::create(&partial)
            .await
            .map_err(StorageError::io(&partial))?;
        let mut body = r.into_body();
        let (mut size, mut hasher) = (0u64, Sha256::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| StorageError::Unreachable {
                call: call.clone(),
                reason: e.to_string(),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            size += data.len() as u64;
            if size > max_bytes {
                drop(out);
                let _ = std::fs::remove_file(&partial);
                return Err(StorageError::Config {
                    what: call,
                    reason: format!("the object is larger than {max_bytes} bytes"),
                });
            }
            hasher.update(&data);
            out.write_all(&data)
                .await
                .map_err(StorageError::io(&partial))?;
        }
        out.sync_all().await.map_err(StorageError::io(&partial))?;
        drop(out);
        fsio::rename(&partial, dest)?;
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// The object's size and stored digest, or `None` if there is none.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<Head>, StorageError> {
        let path = sigv4::encode_path(bucket, key);
        let r = self
            .send("HEAD", &path, &[], &[], EMPTY_SHA256, Empty::<Bytes>::new())
            .await?;
        match r.status().as_u16() {
            404 => Ok(None),
            s if (200..300).contains(&s) => {
                let header = |name: &str| {
                    r.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Ok(Some(Head {
                    size: header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    sha256: header("x-amz-meta-sha256"),
                }))
            }
            _ => Err(self.refused(self.call("HEAD", &path), r).await),
        }
    }

    /// Every object under `prefix` (ListObjectsV2, following continuation).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Entry>, StorageError> {
        let path = sigv4::encode_path(bucket, "");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let call = self.call("GET", &path);
            let r = self
                .send(
                    "GET",
                    &path,
                    &query,
                    &[],
                    EMPTY_SHA256,
                    Empty::<Bytes>::new(),
                )
                .await?;
            if !r.status().is_success() {
                return Err(self.refused(call, r).await);
            }
            let xml = self.document(&call, r).await?;
            for block in elements(&xml, "Contents") {
                out.push(Entry {
                    key: first(block, "Key"),
                    size: first(block, "Size").parse().unwrap_or(0),
                    last_modified: first(block, "LastModified"),
                });
            }
            match (
                first(&xml, "IsTruncated").as_str(),
                first(&xml, "NextContinuationToken"),
            ) {
                ("true", next) if !next.is_empty() => token = Some(next),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_read_entry_by_entry_with_entities_unescaped() {
        let xml = "<ListBucketResult><IsTruncated>false</IsTruncated>\
            <Contents><Key>app1/a&amp;b.db</Key><LastModified>2026-12-03T18:00:00.000Z</LastModified><Size>42</Size></Contents>\
            <Contents><Key>app1/c.db</Key><Size>7</Size></Contents></ListBucketResult>";
        let blocks = elements(xml, "Contents");
        assert_eq!(blocks.len(), 2);
        assert_eq!(first(blocks[0], "Key"), "app1/a&b.db");
        assert_eq!(first(blocks[0], "Size"), "42");
        assert_eq!(first(blocks[1], "LastModified"), "");
        assert_eq!(first(xml, "IsTruncated"), "false");
    }
}
