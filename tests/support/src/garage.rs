//! The real Garage object store's binary for the storage tests (crates.io
//! `garage`, installed by `.ci/run`): hostctl's own `storage` code starts
//! and configures it, so the tests only find the program.

use std::path::PathBuf;

/// The binary's variable (tests only; README, "Environment variables").
pub const GARAGE_VAR: &str = "HOSTCTL_TEST_GARAGE";

/// `$HOSTCTL_TEST_GARAGE`, else `garage` on `PATH`; `None` (after the
/// project's skip, which fails under `HOSTCTL_E2E_REQUIRED`) when neither.
pub fn garage_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(GARAGE_VAR).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        crate::skip(
            test,
            &format!(
                "no Garage: set {GARAGE_VAR} or put garage on PATH \
                 (cargo install garage --locked --version 2.5.0 --no-default-features --features bundled-libs,lmdb)"
            ),
        );
    }
    on_path
}
