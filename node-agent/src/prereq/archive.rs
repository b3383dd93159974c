//! The Ubuntu archive through the mirrors (`prerequisites/ubuntu-archive`):
//! the image's `ubuntu.sources` replaced by one that names the mirror's
//! suites, before the first `apt-get update`.
//!
//! The image's own file is kept once, as `ubuntu.sources.orig`: a rerun
//! (or a file put back by someone else) never overwrites the original with
//! the agent's. With no suites asked for, a file of the agent's is undone —
//! the original put back, or, when there was none, the file removed — so
//! dropping the mirrors returns the node to its image's sources; a node
//! that never had the mirrors is not touched.

use std::path::Path;

use super::PrereqError;
use super::files::{self, UBUNTU_SOURCES, UBUNTU_SOURCES_ORIG};
use super::inputs::AptSuite;

/// Is the archive as asked: the agent's file for `suites`, or, for none,
/// no file of the agent's?
pub fn in_place(root: &Path, suites: &[AptSuite]) -> Result<bool, PrereqError> {
    if suites.is_empty() {
        return Ok(!ours(root)?);
    }
    files::matches(root, &files::ubuntu_sources(suites))
}

/// Puts the archive as asked (see the module's documentation).
pub fn apply(root: &Path, suites: &[AptSuite]) -> Result<(), PrereqError> {
    if suites.is_empty() {
        if ours(root)? {
            if files::absent(root, UBUNTU_SOURCES_ORIG)? {
                files::remove(root, UBUNTU_SOURCES)?;
            } else {
                files::rename(root, UBUNTU_SOURCES_ORIG, UBUNTU_SOURCES)?;
            }
        }
        return Ok(());
    }
    let image_file = files::read(root, UBUNTU_SOURCES)?.is_some_and(|c| !files::is_ours(&c));
    if image_file && files::absent(root, UBUNTU_SOURCES_ORIG)? {
        files::rename(root, UBUNTU_SOURCES, UBUNTU_SOURCES_ORIG)?;
    }
    files::write(root, &files::ubuntu_sources(suites))
}

/// Whether `ubuntu.sources` is the agent's.
fn ours(root: &Path) -> Result<bool, PrereqError> {
    Ok(files::read(root, UBUNTU_SOURCES)?.is_some_and(|c| files::is_ours(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "Types: deb\nURIs: http://ports.ubuntu.com/ubuntu-ports/\n\
                         Suites: noble noble-updates noble-backports\n\
                         Components: main restricted universe multiverse\n\
                         Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n";

    fn suites() -> Vec<AptSuite> {
        [
            "ubuntu/noble",
            "ubuntu-updates/noble-updates",
            "ubuntu-security/noble-security",
        ]
        .iter()
        .map(|s| {
            let (repo, suite) = s.split_once('/').unwrap_or_default();
            AptSuite {
                url: format!("http://10.0.0.1:8081/repository/{repo}"),
                suite: suite.into(),
            }
        })
        .collect()
    }

    fn read(root: &Path, path: &str) -> String {
        String::from_utf8(files::read(root, path).unwrap().unwrap_or_default()).unwrap()
    }

    fn image(root: &Path) {
        let dir = root.join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ubuntu.sources"), IMAGE).unwrap();
    }

    #[test]
    fn renders_one_deb822_stanza_per_suite() {
        let spec = files::ubuntu_sources(&suites());
        assert_eq!(spec.path, UBUNTU_SOURCES);
        assert_eq!(spec.mode, 0o644);
        let text = String::from_utf8(spec.contents).unwrap();
        let body = text
            .strip_prefix(
                "# Written by the hostctl node agent (prerequisites); changes are overwritten.\n",
            )
            .unwrap_or_else(|| panic!("no header: {text}"));
        let stanza = |repo: &str, suite: &str| {
            format!(
                "Types: deb\nURIs: http://10.0.0.1:8081/repository/{repo}/\nSuites: {suite}\n\
                 Components: main restricted universe multiverse\n\
                 Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"
            )
        };
        assert_eq!(
            body,
            [
                stanza("ubuntu", "noble"),
                stanza("ubuntu-updates", "noble-updates"),
                stanza("ubuntu-security", "noble-security"),
            ]
            .join("\n")
        );
    }

    #[test]
    fn the_images_file_is_kept_once_and_reruns_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        image(root);
        assert!(!in_place(root, &suites()).unwrap());
        apply(root, &suites()).unwrap();
        assert!(in_place(root, &suites()).unwrap());
        assert_eq!(read(root, UBUNTU_SOURCES_ORIG), IMAGE);
        let ours = read(root, UBUNTU_SOURCES);
        assert!(ours.contains("URIs: http://10.0.0.1:8081/repository/ubuntu-security/"));

        // A rerun keeps the original, not the agent's file, as `.orig`.
        apply(root, &suites()).unwrap();
        assert_eq!(read(root, UBUNTU_SOURCES_ORIG), IMAGE);
        assert_eq!(read(root, UBUNTU_SOURCES), ours);

        // A file put back over the agent's is replaced; the first original
        // stays the one kept.
        std::fs::write(
            root.join("etc/apt/sources.list.d/ubuntu.sources"),
            "Types: deb\n",
        )
        .unwrap();
        assert!(!in_place(root, &suites()).unwrap());
        apply(root, &suites()).unwrap();
        assert_eq!(read(root, UBUNTU_SOURCES_ORIG), IMAGE);
        assert_eq!(read(root, UBUNTU_SOURCES), ours);

        // Another set of suites rewrites the file, still keeping the original.
        let fewer = &suites()[..1];
        assert!(!in_place(root, fewer).unwrap());
        apply(root, fewer).unwrap();
        assert!(in_place(root, fewer).unwrap());
        assert!(!read(root, UBUNTU_SOURCES).contains("noble-updates"));
        assert_eq!(read(root, UBUNTU_SOURCES_ORIG), IMAGE);
    }

    #[test]
    fn without_suites_the_image_is_untouched_and_the_original_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        image(root);
        assert!(in_place(root, &[]).unwrap(), "the image's file is in place");
        apply(root, &[]).unwrap();
        assert_eq!(read(root, UBUNTU_SOURCES), IMAGE);
        assert!(files::absent(root, UBUNTU_SOURCES_ORIG).unwrap());

        apply(root, &suites()).unwrap();
        assert!(!in_place(root, &[]).unwrap());
        apply(root, &[]).unwrap();
        assert!(in_place(root, &[]).unwrap());
        assert_eq!(read(root, UBUNTU_SOURCES), IMAGE);
        assert!(files::absent(root, UBUNTU_SOURCES_ORIG).unwrap());

        // An image without the file: the agent's is removed again.
        let bare = tempfile::tempdir().unwrap();
        apply(bare.path(), &suites()).unwrap();
        assert!(files::absent(bare.path(), UBUNTU_SOURCES_ORIG).unwrap());
        apply(bare.path(), &[]).unwrap();
        assert!(files::absent(bare.path(), UBUNTU_SOURCES).unwrap());
    }
}
