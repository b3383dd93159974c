//! Publishing: a tree of files becomes the new tip of `main` in the bare
//! repository `$HOSTCTL_HOME/gitops/platform.git`.
//!
//! Git's plumbing does it without a checkout or a work tree:
//! `hash-object -w --no-filters` stores each file's bytes as they are (no
//! `.gitattributes` filter or line-ending conversion, no `.gitignore` can
//! drop a file), `update-index --cacheinfo` builds a temporary index
//! (`GIT_INDEX_FILE`) holding exactly the published files, `write-tree`
//! makes the tree, `commit-tree` the commit and `update-ref` moves `main`
//! from the tip it read (so a concurrent publisher fails instead of being
//! silently overwritten). A file left out of the tree is gone from the new
//! commit; the history keeps it.
//!
//! Publishing the tree `main` already has makes no commit (Argo CD sees no
//! change and the history holds only real ones). `update-server-info` runs
//! after every publish: smart HTTP does not need it, but it keeps the
//! repository servable by a plain static file server (and, idempotent,
//! repairs what a crash between the ref update and it left behind).

use super::error::GitopsError;
use super::git::{AUTHOR_EMAIL, AUTHOR_NAME, in_repo};
use crate::exec::{Cmd, Runner};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many files one `hash-object` / `update-index` call takes, so the
/// argument list stays far below every system's limit.
const BATCH: usize = 256;

/// The full ref hostctl publishes to.
const MAIN_REF: &str = "refs/heads/main";

/// A commit's object id (hex, as git prints it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommitId(String);

impl CommitId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id in git's output of step `what`, or why it is none.
    fn parse(what: &'static str, output: &str) -> Result<CommitId, GitopsError> {
        object_id(what, output).map(CommitId)
    }
}

impl std::fmt::Display for CommitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object id (SHA-1 or SHA-256, hex) from one line of git's output.
fn object_id(what: &'static str, output: &str) -> Result<String, GitopsError> {
    let id = output.trim();
    let hex = id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if hex && (id.len() == 40 || id.len() == 64) {
        Ok(id.to_owned())
    } else {
        Err(GitopsError::GitOutput {
            what,
            output: output.to_owned(),
        })
    }
}

/// The platform repository under a home.
#[derive(Debug, Clone)]
pub struct PlatformRepo {
    dir: PathBuf,
    runner: Arc<dyn Runner>,
}

impl PlatformRepo {
    /// The repository of `home` (`$HOSTCTL_HOME`); nothing is created
    /// before the first [`publish`](Self::publish).
    pub fn new(home: &Path, runner: Arc<dyn Runner>) -> PlatformRepo {
        PlatformRepo {
            dir: super::repo_dir(home),
            runner,
        }
    }

    /// The bare repository's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Makes `files` (relative `/`-separated path → contents) the tree of
    /// a new commit on `main` with `message`, unless `main` already has
    /// exactly that tree. Returns the commit `main` names afterwards.
    pub async fn publish(
        &self,
        files: &[(String, Vec<u8>)],
        message: &str,
    ) -> Result<CommitId, GitopsError> {
        let files = validated(files)?;
        self.ensure().await?;
        let tree = self.write_tree(&files).await?;
        let tip = self.tip().await?;
        if let Some(tip) = &tip
            && self.tree_of(tip).await? == tree
        {
            self.update_server_info().await?;
            return Ok(tip.clone());
        }
        let commit = self.commit(&tree, tip.as_ref(), message).await?;
        let old = tip.as_ref().map_or("", CommitId::as_str);
        self.git("moving main to the new commit", |c| {
            c.args(["update-ref", "-m", message, MAIN_REF, commit.as_str(), old])
        })
        .await?;
        self.update_server_info().await?;
        tracing::info!(commit = %commit, files = files.len(), "platform repository published");
        Ok(commit)
    }

    /// [`publish`](Self::publish) of every regular file under `dir`
    /// (paths relative to it). Symbolic links and other special files are
    /// refused: what Argo CD syncs must be what hostctl rendered.
    pub async fn publish_dir(&self, dir: &Path, message: &str) -> Result<CommitId, GitopsError> {
        let mut files = Vec::new();
        collect(dir, "", &mut files)?;
        self.publish(&files, message).await
    }

    /// The commit `main` names, `None` before the first publish.
    pub async fn tip(&self) -> Result<Option<CommitId>, GitopsError> {
        if !self.dir.join("HEAD").exists() {
            return Ok(None);
        }
        let what = "reading main";
        let spec = format!("{MAIN_REF}^{{commit}}");
        let cmd = self.cmd(|c| c.args(["rev-parse", "--verify", "--quiet"]).arg(spec));
        let out = self
            .runner
            .output(&cmd)
            .await
            .map_err(GitopsError::git(what))?;
        match out.code() {
            Some(0) => CommitId::parse(what, &out.stdout_text()).map(Some),
            // `--verify --quiet`: exit 1 and nothing printed = no such ref.
            Some(1) if out.stdout.is_empty() => Ok(None),
            _ => Err(GitopsError::git(what)(out.exit_error(&cmd))),
        }
    }

    /// Creates the repository (0700 in a 0700 directory) or re-initialises
    /// it, which git does without touching its objects or refs; `HEAD`
    /// names `main` whatever git's default branch is. Safe to repeat after
    /// a crash at any point. `--shared=0600` makes git give every file it
    /// writes there mode 0600 (directories 0700) whatever the umask of
    /// the process publishing.
    async fn ensure(&self) -> Result<(), GitopsError> {
        if let Some(parent) = self.dir.parent() {
            private_dir(parent)?;
        }
        private_dir(&self.dir)?;
        self.git("creating the repository", |c| {
            c.args(["init", "--bare", "--quiet", "--shared=0600"])
                .arg(&self.dir)
        })
        .await?;
        self.git("pointing HEAD at main", |c| {
            c.args(["symbolic-ref", "HEAD", MAIN_REF])
        })
        .await?;
        Ok(())
    }

    /// Stores the files' contents and returns the id of the tree holding
    /// exactly them. The blobs go through a private scratch directory
    /// (inside the 0700 gitops directory) under numbered names, so no
    /// published path is ever used as a file system path.
    async fn write_tree(&self, files: &BTreeMap<&str, &[u8]>) -> Result<String, GitopsError> {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        let scratch = tempfile::Builder::new()
            .prefix(".publish-")
            .tempdir_in(parent)
            .map_err(fsio::Error::at("creating a scratch directory in", parent))?;
        let index = scratch.path().join("index");
        let entries: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, *c)).collect();
        for (n, chunk) in entries.chunks(BATCH).enumerate() {
            let mut blobs = Vec::with_capacity(chunk.len());
            for (i, (_, contents)) in chunk.iter().enumerate() {
                let blob = scratch.path().join(format!("{n}-{i}"));
                crate::fsutil::write_atomic(&blob, contents, 0o600)?;
                blobs.push(blob);
            }
            let what = "storing the files";
            let out = self
                .git(what, |c| {
                    c.args(["hash-object", "-w", "--no-filters", "--"])
                        .args(&blobs)
                })
                .await?;
            let ids = out
                .lines()
                .map(|l| object_id(what, l))
                .collect::<Result<Vec<_>, _>>()?;
            if ids.len() != chunk.len() {
                return Err(GitopsError::GitOutput { what, output: out });
            }
            let mut add = self
                .cmd(|c| c.args(["update-index", "--add"]))
                .env("GIT_INDEX_FILE", &index);
            for ((path, _), id) in chunk.iter().zip(&ids) {
                add = add.arg("--cacheinfo").arg(format!("100644,{id},{path}"));
            }
            self.runner
                .run(&add)
                .await
                .map_err(GitopsError::git("indexing the files"))?;
        }
        let what = "writing the tree";
        let cmd = self
            .cmd(|c| c.arg("write-tree"))
            .env("GIT_INDEX_FILE", &index);
        let out = self
            .runner
            .run(&cmd)
            .await
            .map_err(GitopsError::git(what))?;
        object_id(what, &out.stdout_text())
    }

    async fn tree_of(&self, commit: &CommitId) -> Result<String, GitopsError> {
        let what = "reading main's tree";
        let spec = format!("{commit}^{{tree}}");
        let out = self
            .git(what, |c| c.args(["rev-parse", "--verify"]).arg(spec))
            .await?;
        object_id(what, &out)
    }

    /// A commit of `tree` on `parent`, by hostctl, dated now.
    async fn commit(
        &self,
        tree: &str,
        parent: Option<&CommitId>,
        message: &str,
    ) -> Result<CommitId, GitopsError> {
        let what = "committing";
        let date = format!("@{} +0000", jiff::Timestamp::now().as_second());
        let mut cmd = self.cmd(|c| c.args(["commit-tree", tree]));
        if let Some(parent) = parent {
            cmd = cmd.arg("-p").arg(parent.as_str());
        }
        let cmd = cmd
            .arg("-m")
            .arg(message)
            .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
            .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
            .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
            .env("GIT_COMMITTER_DATE", &date);
        let out = self
            .runner
            .run(&cmd)
            .await
            .map_err(GitopsError::git(what))?;
        CommitId::parse(what, &out.stdout_text())
    }

    async fn update_server_info(&self) -> Result<(), GitopsError> {
        self.git("updating the server info", |c| c.arg("update-server-info"))
            .await
            .map(drop)
    }

    /// `git` on this repository with the arguments `with` adds.
    fn cmd(&self, with: impl FnOnce(Cmd) -> Cmd) -> Cmd {
        with(in_repo(&self.dir))
    }

    /// Runs [`cmd`](Self::cmd) and returns its stdout; failure is step `what`.
    async fn git(
        &self,
        what: &'static str,
        with: impl FnOnce(Cmd) -> Cmd,
    ) -> Result<String, GitopsError> {
        let out = self
            .runner
            .run(&self.cmd(with))
            .await
            .map_err(GitopsError::git(what))?;
        Ok(out.stdout_text())
    }
}

/// Creates `dir` if needed and makes it 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), GitopsError> {
    std::fs::create_dir_all(dir).map_err(fsio::Error::at("creating", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(fsio::Error::at("restricting", dir))?;
    Ok(())
}

/// The files by path, once each, every path one Git can store as given
/// and Argo CD reads as a plain relative path.
fn validated(files: &[(String, Vec<u8>)]) -> Result<BTreeMap<&str, &[u8]>, GitopsError> {
    let mut out = BTreeMap::new();
    for (path, contents) in files {
        let bad = |reason| GitopsError::BadPath {
            path: path.clone(),
            reason,
        };
        check_path(path).map_err(bad)?;
        if out.insert(path.as_str(), contents.as_slice()).is_some() {
            return Err(bad("it is given twice"));
        }
    }
    // A file that is also a directory of another (`a` and `a/b`): Git's
    // index would refuse it with a less telling message.
    for path in out.keys() {
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() && out.contains_key(prefix.as_str()) {
                return Err(GitopsError::BadPath {
                    path: (*path).to_owned(),
                    reason: "a file of the tree has the name of one of its directories",
                });
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
        }
    }
    Ok(out)
}

/// Why `path` cannot be a file of the tree, if it cannot.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.starts_with('/') {
        return Err("the path is absolute");
    }
    if path
        .bytes()
        .any(|b| b == 0 || b == b'\\' || b.is_ascii_control())
    {
        return Err("the path holds a control character or a backslash");
    }
    for part in path.split('/') {
        match part {
            "" => return Err("the path has an empty component"),
            "." | ".." => return Err("the path has a `.` or `..` component"),
            _ if part.eq_ignore_ascii_case(".git") => {
                return Err("the path has a `.git` component");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every regular file under `dir`, its path relative to the walk's start.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), GitopsError> {
    let entries = std::fs::read_dir(dir).map_err(fsio::Error::at("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(fsio::Error::at("listing", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(GitopsError::BadPath {
                path: path.display().to_string(),
                reason: "the name is not UTF-8",
            });
        };
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry
            .file_type()
            .map_err(fsio::Error::at("inspecting", &path))?;
        if kind.is_dir() {
            collect(&path, &relative, out)?;
        } else if kind.is_file() {
            let contents = std::fs::read(&path).map_err(fsio::Error::at("reading", &path))?;
            out.push((relative, contents));
        } else {
            return Err(GitopsError::BadPath {
                path: relative,
                reason: "it is not a regular file or a directory",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<(String, Vec<u8>)> {
        paths
            .iter()
            .map(|p| ((*p).to_owned(), Vec::new()))
            .collect()
    }

    #[test]
    fn paths_git_or_argo_cd_would_read_otherwise_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "a//b",
            "a/",
            "./a",
            "a/../b",
            ".git/config",
            "a/.GIT/x",
            "a\\b",
            "a\nb",
        ] {
            assert!(
                matches!(validated(&files(&[bad])), Err(GitopsError::BadPath { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(validated(&files(&["mgmt/a.yaml", "app/b.yaml", ".gitignore"])).is_ok());
    }

    #[test]
    fn a_path_given_twice_or_a_file_named_as_a_directory_is_refused() {
        assert!(validated(&files(&["a.yaml", "a.yaml"])).is_err());
        let err = validated(&files(&["mgmt", "mgmt-x", "mgmt/a.yaml"])).unwrap_err();
        assert!(
            matches!(&err, GitopsError::BadPath { path, .. } if path == "mgmt/a.yaml"),
            "{err}"
        );
        assert!(validated(&files(&["mgmt-x", "mgmt/a.yaml"])).is_ok());
    }

    #[test]
    fn object_ids_are_lowercase_hex_of_either_hash() {
        let sha1 = "a".repeat(40);
        assert_eq!(object_id("t", &format!("{sha1}\n")).unwrap(), sha1);
        assert!(object_id("t", &"b".repeat(64)).is_ok());
        assert!(object_id("t", &"A".repeat(40)).is_err());
        assert!(object_id("t", "fatal: bad revision").is_err());
    }
}
