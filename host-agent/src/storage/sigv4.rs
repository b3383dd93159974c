//! AWS Signature Version 4 for S3 requests (the scheme Garage checks),
//! kept pure so the published test vectors pin it: the request's method,
//! path, query and headers in, the `Authorization` header out.
//!
//! The payload is signed by its SHA-256 (`x-amz-content-sha256`), which
//! hostctl always knows before it sends a snapshot: Garage then verifies
//! the body against it on receipt and refuses a body that differs, so
//! nothing damaged in transit is ever stored.
//! Reference: "Authenticating Requests (AWS Signature Version 4)", Amazon
//! S3 API reference, and its "Example: GET Object".

use ring::hmac;
use sha2::{Digest, Sha256};

/// The SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Who signs, for which region.
#[derive(Clone)]
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
}

/// One request to sign. `headers` must include `host`,
/// `x-amz-content-sha256` and `x-amz-date`; all are signed.
pub struct Unsigned<'a> {
    pub method: &'a str,
    /// The path as sent (already encoded with [`encode_path`]).
    pub path: &'a str,
    /// Decoded (name, value) pairs; encoded and sorted here.
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    /// `YYYYMMDDTHHMMSSZ`, the same as the `x-amz-date` header.
    pub amz_date: &'a str,
    pub payload_sha256: &'a str,
}

/// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters
/// kept, everything else `%XX`; `/` kept only in paths.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `/bucket/key` encoded for the request line and the signature.
pub fn encode_path(bucket: &str, key: &str) -> String {
    if key.is_empty() {
        format!("/{}", encode(bucket, false))
    } else {
        format!("/{}/{}", encode(bucket, false), encode(key, true))
    }
}

/// The query string in SigV4's canonical form (also what is sent).
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k, false), encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn mac(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

impl Signer<'_> {
    /// The `Authorization` header's value.
    pub fn authorization(&self, request: &Unsigned<'_>) -> String {
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            request.method,
            request.path,
            canonical_query(request.query),
            canonical_headers,
            signed,
            request.payload_sha256
        );
        let date = &request.amz_date[..8];
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            request.amz_date,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k_date = mac(format!("AWS4{}", self.secret_access_key).as_bytes(), date);
        let k_region = mac(k_date.as_ref(), self.region);
        let k_service = mac(k_region.as_ref(), "s3");
        let k_signing = mac(k_service.as_ref(), "aws4_request");
        let signature = hex::encode(mac(k_signing.as_ref(), &to_sign).as_ref());
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed},Signature={signature}",
            self.access_key_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The S3 reference's "Example: GET Object" (the first 10 bytes of
    /// `test.txt` from `examplebucket`), its published signature.
    #[test]
    fn the_published_get_object_example_signs_to_its_published_signature() {
        let signer = Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
        };
        let auth = signer.authorization(&Unsigned {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
            amz_date: "20130524T000000Z",
            payload_sha256: EMPTY_SHA256,
        });
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn paths_and_queries_are_encoded_as_sigv4_wants() {
        assert_eq!(
            encode_path("etcd", "app1/a b+c.db"),
            "/etcd/app1/a%20b%2Bc.db"
        );
        assert_eq!(
            canonical_query(&[("prefix", "app1/"), ("list-type", "2")]),
            "list-type=2&prefix=app1%2F"
        );
    }
}
