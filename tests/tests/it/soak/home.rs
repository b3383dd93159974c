//! The soak's 20 MiB home: the tmpfs, what is on it, and the logs' tails.

use super::*;

/// A 20 MiB tmpfs as `$HOSTCTL_HOME`, unmounted (lazily if busy) on drop.
pub(super) struct TmpfsHome {
    pub(super) dir: tempfile::TempDir,
}

impl TmpfsHome {
    /// Mounts it, or says why the test is skipped (`None`).
    pub(super) fn mount() -> Option<TmpfsHome> {
        tests::suite::enter();
        let dir = tempfile::Builder::new()
            .prefix("hostctl-soak-home-")
            .tempdir()
            .expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={HOME_MIB}m,mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(TmpfsHome { dir }),
            Ok(o) => {
                let why = format!(
                    "cannot mount a {HOME_MIB} MiB tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                tests::skip(TEST, &why);
                None
            }
            Err(e) => {
                tests::skip(TEST, &format!("cannot run mount: {e}"));
                None
            }
        }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsHome {
    fn drop(&mut self) {
        let umount = |args: &[&str]| {
            Command::new("umount")
                .args(args)
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(&[]) && !umount(&["-l"]) {
            eprintln!("cleanup: cannot unmount {}", self.dir.path().display());
        }
    }
}

/// Space on the home.
pub(super) struct Usage {
    pub(super) total: u64,
    pub(super) free: u64,
}

impl Usage {
    pub(super) fn used(&self) -> u64 {
        self.total - self.free
    }
}

pub(super) fn usage(home: &Path) -> Usage {
    let s = rustix::fs::statvfs(home).expect("statvfs of the home");
    Usage {
        total: s.f_blocks * s.f_frsize,
        free: s.f_bavail * s.f_frsize,
    }
}

/// Every file under `dir` with its size, largest first.
pub(super) fn files(dir: &Path) -> Vec<(u64, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                let path = entry.path();
                let name = path.strip_prefix(dir).unwrap_or(&path).display();
                files.push((meta.len(), name.to_string()));
            }
        }
    }
    files.sort_by(|a, b| b.cmp(a));
    files
}

/// The home's four largest files, for the summary.
pub(super) fn largest_files(home: &Path) -> String {
    files(home)
        .iter()
        .take(4)
        .map(|(len, name)| format!("{name} {} KiB", len / 1024))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last lines of a log, each cut to a readable length (the flood's
/// long names end up in the daemon's log lines).
pub(super) fn tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| match l.char_indices().nth(300) {
            Some((at, _)) => format!("{}…", &l[..at]),
            None => (*l).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn received_at(r: &StoredReport) -> Option<SystemTime> {
    r.received_at.as_ref().and_then(proto::system_time)
}
