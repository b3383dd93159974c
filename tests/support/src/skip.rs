//! A test that cannot run on this machine says why and passes — except
//! where the run requires every test to run: `.ci/run` sets
//! [`REQUIRED_VAR`], and there a skip is a failure, so CI can never pass by
//! running nothing. Every skip in the workspace goes through [`skip`].

/// Set (to anything but `0` or nothing) by `.ci/run`: skipping fails.
pub const REQUIRED_VAR: &str = "HOSTCTL_E2E_REQUIRED";

/// Whether this run forbids skipping.
pub fn required() -> bool {
    std::env::var_os(REQUIRED_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Says why `test` does not run here and returns `false`; panics instead
/// when [`required`].
pub fn skip(test: &str, why: &str) -> bool {
    assert!(
        !required(),
        "{test} cannot run here ({why}), and {REQUIRED_VAR} is set"
    );
    eprintln!("SKIP {test}: {why}");
    false
}

/// Says why `test` does not run here, even where [`required`]: for tools
/// the CI machine cannot have by design (Docker: DEVELOPERS.md lists it
/// among what cannot run there), whose part of a test runs only on a
/// developer's machine. Everything CI can install goes through [`skip`].
pub fn skip_without_docker(test: &str, why: &str) -> bool {
    eprintln!("SKIP {test}: {why} (Docker cannot run on the CI machine)");
    false
}
