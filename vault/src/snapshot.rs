//! Raft snapshots through the API (`sys/storage/raft/snapshot`): the whole
//! of Vault's data — secrets, policies, mounts, the keyring — as one gzip
//! tar, which rebuilds mgmt's Vault after mgmt is lost (issue 20).
//!
//! Both directions stream: [`save`] writes the body to a 0600 part file as
//! it arrives, hashing it on the way and refusing more than a bound, and
//! renames it into place only when it is complete, so a broken transfer or
//! a refusal (403) leaves no file behind; [`restore`] sends a file as the
//! body of `snapshot-force` a chunk at a time. Memory stays flat in the
//! snapshot's size. Every step (connect, answer, each chunk) gets the
//! client's timeout: a stalled transfer fails, a long one does not.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Empty};
use hyper::Method;
use hyper::body::{Bytes, Frame};
use tokio::io::{AsyncRead, ReadBuf};

use crate::client::{VaultClient, api_error, read_answer};
use crate::error::VaultError;
use crate::files::FILE_MODE;

/// Where Vault hands out a snapshot (`read`).
pub const SNAPSHOT_PATH: &str = "/v1/sys/storage/raft/snapshot";
/// Where Vault installs one even if its keyring differs (`update`): a
/// rebuilt Vault has a new keyring, and the snapshot's replaces it.
pub const RESTORE_PATH: &str = "/v1/sys/storage/raft/snapshot-force";
/// The chunk a restore's body moves in.
const CHUNK: usize = 256 * 1024;

/// A snapshot written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex, computed while it streamed in.
    pub sha256: String,
}

/// Awaits `step` within the client's timeout.
async fn within<T>(
    client: &VaultClient,
    method: &Method,
    path: &str,
    step: impl std::future::Future<Output = Result<T, VaultError>>,
) -> Result<T, VaultError> {
    tokio::time::timeout(client.timeout(), step)
        .await
        .map_err(|_| VaultError::Timeout {
            method: method.to_string(),
            path: path.to_owned(),
            address: client.address().to_owned(),
            after: client.timeout(),
        })?
}

/// Takes a snapshot into `dest` (its directory must exist), at most
/// `max_bytes`; nothing is left at `dest` or beside it unless it all
/// arrived.
pub async fn save(client: &VaultClient, dest: &Path, max_bytes: u64) -> Result<Saved, VaultError> {
    let (method, path) = (Method::GET, SNAPSHOT_PATH);
    let (mut sender, driver) = within(client, &method, path, client.connect(&method, path)).await?;
    let result = async {
        let request = client
            .request(&method, path)
            .body(Empty::<Bytes>::new())
            .map_err(|e| client.transport(&method, path, e.to_string()))?;
        let response = within(client, &method, path, async {
            sender
                .send_request(request)
                .await
                .map_err(|e| client.transport(&method, path, e.to_string()))
        })
        .await?;
        if !response.status().is_success() {
            let answer = read_answer(&method, path, response).await?;
            return Err(api_error(&method, path, &answer));
        }
        let mut part = fsio::PartFile::create(dest, FILE_MODE).await?;
        let mut body = response.into_body();
        loop {
            let frame = within(client, &method, path, async {
                body.frame()
                    .await
                    .transpose()
                    .map_err(|e| client.transport(&method, path, format!("reading: {e}")))
            })
            .await?;
            let Some(frame) = frame else { break };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if part.size() + data.len() as u64 > max_bytes {
                return Err(VaultError::TooLarge {
                    path: path.to_owned(),
                    limit: max_bytes,
                });
            }
            part.write(&data).await?;
        }
        let size = part.size();
        let digest = part.commit(None).await.map_err(|e| VaultError::BadFile {
            path: dest.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Saved {
            size,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
    .await;
    driver.abort();
    result
}

/// Installs the snapshot in `file` with `snapshot-force`, replacing all of
/// Vault's data. Afterwards Vault holds the snapshot's keyring: it unseals
/// with the unseal key of the Vault the snapshot was taken from.
pub async fn restore(client: &VaultClient, file: &Path) -> Result<(), VaultError> {
    let (method, path) = (Method::POST, RESTORE_PATH);
    let f = tokio::fs::File::open(file)
        .await
        .map_err(fsio::Error::at("reading", file))?;
    let length = f
        .metadata()
        .await
        .map_err(fsio::Error::at("reading", file))?
        .len();
    let (mut sender, driver) = within(client, &method, path, client.connect(&method, path)).await?;
    let result = async {
        let request = client
            .request(&method, path)
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .header(hyper::header::CONTENT_LENGTH, length)
            .body(FileBody::new(f, CHUNK))
            .map_err(|e| client.transport(&method, path, e.to_string()))?;
        // The whole body goes out before Vault answers; the timeout bounds
        // the wait, so it is the client's (callers set a long one).
        let response = within(client, &method, path, async {
            sender
                .send_request(request)
                .await
                .map_err(|e| client.transport(&method, path, e.to_string()))
        })
        .await?;
        let answer = read_answer(&method, path, response).await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(api_error(&method, path, &answer))
        }
    }
    .await;
    driver.abort();
    result
}

/// A file as a request body, read `chunk` bytes at a time, so a body of
/// any size costs the same memory. Public: the host's S3 client
/// (host-agent `storage::s3`) streams its uploads with it too.
pub struct FileBody {
    file: tokio::fs::File,
    buf: Vec<u8>,
}

impl FileBody {
    pub fn new(file: tokio::fs::File, chunk: usize) -> FileBody {
        FileBody {
            file,
            buf: vec![0; chunk],
        }
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let mut read = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(read.filled())))))
            }
        }
    }
}
