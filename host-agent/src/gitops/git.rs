//! The `git` command line every part of [`super`] runs: the same result
//! whoever runs hostctl and whatever their Git configuration says.
//!
//! The user's and the system's configuration are not read
//! (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`; `HOME` is left
//! alone), configuration passed down by a parent git (`GIT_CONFIG_COUNT`,
//! `GIT_CONFIG_PARAMETERS`) is cleared, as are variables that would point
//! git at other objects or refs (`GIT_ALTERNATE_OBJECT_DIRECTORIES`,
//! `GIT_NAMESPACE`), and git never prompts. A signing or hook setting in
//! `~/.gitconfig`, an `init.defaultBranch`, a `core.autocrlf` — none of it
//! reaches the platform repository.

use crate::exec::Cmd;
use std::path::Path;
use std::time::Duration;

/// The author and committer of every commit hostctl publishes.
pub const AUTHOR_NAME: &str = "hostctl";
pub const AUTHOR_EMAIL: &str = "hostctl@localhost";

/// A publishing step that has not finished by then is killed (git on a
/// small local repository takes milliseconds; a hung one must not hang
/// `up`).
pub const STEP_DEADLINE: Duration = Duration::from_secs(120);

/// `git` with the hermetic environment (see the module docs) and nothing
/// else: the server's CGI starts from this.
pub fn hermetic() -> Cmd {
    Cmd::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "0")
        .env("GIT_CONFIG_PARAMETERS", "")
        .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", "")
        .env("GIT_NAMESPACE", "")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
}

/// `git` acting on the bare repository `git_dir`: the hermetic environment,
/// the repository and its objects named explicitly (so an inherited
/// `GIT_DIR` or `GIT_OBJECT_DIRECTORY` cannot redirect it), every write
/// fsynced (refs too: after a crash `main` must not name an object that
/// never reached the disk), and [`STEP_DEADLINE`].
pub fn in_repo(git_dir: &Path) -> Cmd {
    hermetic()
        .env("GIT_DIR", git_dir)
        .env("GIT_OBJECT_DIRECTORY", git_dir.join("objects"))
        .args(["-c", "core.fsync=all", "-c", "core.fsyncMethod=fsync"])
        .deadline(STEP_DEADLINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_configuration_is_never_read_and_home_is_left_alone() {
        let cmd = in_repo(Path::new("/h/gitops/platform.git"));
        let env: Vec<(String, String)> = cmd
            .get_envs()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let has = |k: &str, v: &str| env.iter().any(|(ek, ev)| ek == k && ev == v);
        assert!(has("GIT_CONFIG_NOSYSTEM", "1"));
        assert!(has("GIT_CONFIG_GLOBAL", "/dev/null"));
        assert!(has("GIT_DIR", "/h/gitops/platform.git"));
        assert!(has(
            "GIT_OBJECT_DIRECTORY",
            "/h/gitops/platform.git/objects"
        ));
        assert!(!env.iter().any(|(k, _)| k == "HOME"));
        assert_eq!(cmd.get_deadline(), Some(STEP_DEADLINE));
    }
}
