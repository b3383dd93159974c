//! apt's failures, classified from its `E:` lines, so the host can tell
//! "the repository lacks kubeadm 1.35.9" (fix the version) from "apt is
//! locked" or "the proxy is down" (retry or fix the network).

use super::inputs::AptSources;
use super::{PrereqError, files};
use crate::exec::CommandOutput;

/// Lines of output kept in an error's detail.
const TAIL_LINES: usize = 20;

/// `apt-get <options> <args…>`: with a flat repository, apt reads its list
/// alone (`SourceParts=-` drops `sources.list.d`, `List-Cleanup=0` keeps
/// the other sources' downloaded indexes), so an unreachable default
/// source neither slows nor fails a node that has no internet route.
pub fn apt_get(sources: &AptSources, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["apt-get".to_owned()];
    if let AptSources::Mirror { .. } = sources {
        for option in [
            format!("Dir::Etc::SourceList={}", files::APT_MIRROR_LIST),
            "Dir::Etc::SourceParts=-".to_owned(),
            "APT::Get::List-Cleanup=0".to_owned(),
        ] {
            argv.push("-o".to_owned());
            argv.push(option);
        }
    }
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

/// The typed error for a failed apt-get run; `repository` is what the
/// message names as the place a missing package was looked for.
pub fn classify(argv: &[String], out: &CommandOutput, repository: &str) -> PrereqError {
    let text = format!("{}\n{}", out.stderr, out.stdout);
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("E: "))
        .collect();
    let packages: Vec<String> = errors.iter().filter_map(|l| missing_package(l)).collect();
    if !packages.is_empty() {
        return PrereqError::PackageMissing {
            packages,
            repository: repository.to_owned(),
        };
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
    fn a_flat_repository_is_apts_only_source() {
        assert_eq!(
            apt_get(&AptSources::System, &["update"]),
            ["apt-get", "update"]
        );
        let argv = apt_get(
            &AptSources::Mirror {
                url: "http://h/debs".into(),
            },
            &["install", "-y", "containerd"],
        );
        assert_eq!(argv[0], "apt-get");
        assert!(argv.contains(&format!("Dir::Etc::SourceList={}", files::APT_MIRROR_LIST)));
        assert!(argv.contains(&"Dir::Etc::SourceParts=-".to_owned()));
        assert!(argv.ends_with(&["install".into(), "-y".into(), "containerd".into()]));
    }

    #[test]
    fn missing_packages_and_versions_are_named() {
        assert!(matches!(
            failed("Reading package lists...\nE: Unable to locate package kubeadm\n"),
            PrereqError::PackageMissing { packages, .. } if packages == ["kubeadm"]
        ));
        assert!(matches!(
            failed("E: Version '1.35.9-*' for 'kubelet' was not found\n"),
            PrereqError::PackageMissing { packages, .. } if packages == ["kubelet=1.35.9-*"]
        ));
        let both =
            failed("E: Unable to locate package kubelet\nE: Unable to locate package kubeadm\n");
        assert_eq!(
            both.to_string(),
            "packages kubelet, kubeadm are not available from repo"
        );
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
