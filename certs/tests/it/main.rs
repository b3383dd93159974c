//! The certs crate's integration tests, one binary: CSRs, files on disk,
//! kubeadm's PKI layout, real OpenSSL as the peer, enrolment tokens.
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod common;
mod csr;
mod disk;
mod kubeadm;
mod lab;
mod openssl_peer;
mod tokens;
