//! apt's failures, classified from its `E:` lines, so the host can tell
//! "the repository lacks kubeadm 1.35.9" (fix the version) from "apt is
//! locked" or "the proxy is down" (retry or fix the network).

use super::PrereqError;
use super::runner::CommandOutput;

/// Lines of output kept in an error's detail.
const TAIL_LINES: usize = 20;

/// The typed error for a failed apt-get run; `repository` is what the
/// message names as the place a missing package was looked for.
pub fn classify(argv: &[String], out: &CommandOutput, repository: &str) -> PrereqError {
    let text = format!("{}\n{}", out.stderr, out.stdout);
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("E: "))
        .collect();
    for line in &errors {
        if let Some(package) = missing_package(line) {
            return PrereqError::PackageMissing {
                package,
                repository: repository.to_owned(),
            };
        }
    }
    let first = errors.first().map_or_else(
        || format!("{} exited with status {}", argv.join(" "), out.status),
        |l| (*l).to_owned(),
    );
    let any = |needles: &[&str]| errors.iter().any(|l| needles.iter().any(|n| l.contains(n)));
    if any(&[
        "Could not get lock",
        "Unable to acquire the dpkg frontend lock",
    ]) {
        PrereqError::AptLocked(first)
    } else if any(&[
        "Failed to fetch",
        "Temporary failure resolving",
        "Could not connect",
        "Could not resolve",
        "Some index files failed to download",
    ]) {
        PrereqError::AptNetwork(first)
    } else if errors.is_empty() {
        PrereqError::CommandFailed {
            command: argv.join(" "),
            status: out.status,
            output: tail(&text),
        }
    } else {
        PrereqError::AptFailed(first)
    }
}

/// `Unable to locate package X` → `X`; `Version 'V' for 'X' was not found`
/// → `X=V`.
fn missing_package(line: &str) -> Option<String> {
    if let Some(package) = line.strip_prefix("Unable to locate package ") {
        return Some(package.trim().to_owned());
    }
    let rest = line.strip_prefix("Version '")?;
    let (version, rest) = rest.split_once("' for '")?;
    let (package, rest) = rest.split_once('\'')?;
    rest.contains("was not found")
        .then(|| format!("{package}={version}"))
}

/// The last lines of a command's output, for `Error.detail`.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> PrereqError {
        let out = CommandOutput {
            status: 100,
            stdout: String::new(),
            stderr: stderr.into(),
        };
        classify(&["apt-get".into()], &out, "repo")
    }

    #[test]
    fn missing_packages_and_versions_are_named() {
        assert!(matches!(
            failed("Reading package lists...\nE: Unable to locate package kubeadm\n"),
            PrereqError::PackageMissing { package, .. } if package == "kubeadm"
        ));
        assert!(matches!(
            failed("E: Version '1.35.9-*' for 'kubelet' was not found\n"),
            PrereqError::PackageMissing { package, .. } if package == "kubelet=1.35.9-*"
        ));
    }

    #[test]
    fn locks_and_network_are_told_apart() {
        assert!(matches!(
            failed("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1"),
            PrereqError::AptLocked(_)
        ));
        assert!(matches!(
            failed("E: Failed to fetch http://archive.ubuntu.com/x  Temporary failure resolving"),
            PrereqError::AptNetwork(_)
        ));
        assert!(matches!(
            failed("E: Sub-process /usr/bin/dpkg returned an error code (1)"),
            PrereqError::AptFailed(_)
        ));
        assert!(matches!(
            failed("segfault"),
            PrereqError::CommandFailed { .. }
        ));
    }
}
