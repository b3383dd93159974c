//! The daemon's log file, `$HOSTCTL_HOME/daemon.log`: bounded, rotated
//! once, and never a failure for whoever logs (issue 13, item 2).
//!
//! A full disk used to break the daemon for good: tracing-subscriber
//! answers a failed write by printing to stderr with `eprintln!`, which
//! panics when stderr (the same full file) fails too, so every log line
//! killed the task that logged it — the store's writer thread, the signal
//! task, the shutdown path. [`LogFile`] therefore swallows every error:
//! a line that cannot be written is counted and dropped, and the count is
//! written once writing works again.
//!
//! Size: the file is capped at [`MAX_LOG_BYTES`]; the line that would pass
//! the cap first renames `daemon.log` to `daemon.log.1` (replacing the
//! previous one) and starts a new file, so the log never takes more than
//! twice the cap, whatever a peer makes the daemon log. Both files are
//! created 0600 and never through a symbolic link (`O_NOFOLLOW`), as
//! [`open_append`] does for everyone.
//!
//! A daemon the CLI starts has `daemon.log` as its stdout and stderr too
//! (where a start-up failure or a panic is written). Those descriptors
//! would keep a rotated-away generation open — after two rotations a
//! deleted file of up to the cap that is never freed, which filled a
//! 20 MiB home in the soak test — so a log made with
//! [`LogFile::following_stdio`] points them at each new file it opens.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

/// Largest size of `daemon.log` (and of `daemon.log.1`, the one older
/// generation kept): 8 MiB, days of `info` lines, and a bound of 16 MiB
/// on what logging can take from the home.
pub const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// Opens `path` for appending, creating it 0600, refusing a symbolic link
/// (a link planted in the home must not make the daemon write elsewhere).
pub fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// `daemon.log.1` for `daemon.log`.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Opens the log for a daemon about to be started, rotating it first if
/// it is already at `cap`: the new daemon's stderr (where a start-up
/// failure is written, and read back by `ensure_running`) then stays the
/// file named `daemon.log`, since the daemon's [`LogFile`] has no reason
/// to rotate it right away.
pub fn open_for_start(path: &Path, cap: u64) -> std::io::Result<File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() >= cap) {
        std::fs::rename(path, rotated_path(path))?;
    }
    open_append(path)
}

/// A size-capped, once-rotated log file that never reports an error.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    cap: u64,
    /// Re-point stdout and stderr at each file opened after a rotation.
    follow_stdio: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `None` until opened, and after a failed rotation or open (retried
    /// at the next line).
    file: Option<File>,
    /// Bytes in the current file.
    len: u64,
    /// Lines dropped since the last note saying so.
    unreported: u64,
    /// Lines dropped over the log's life.
    dropped: u64,
    last_error: Option<String>,
}

impl LogFile {
    /// A log at `path` holding at most `cap` bytes per generation. Opening
    /// never fails: an unwritable file only means dropped lines.
    pub fn new(path: impl Into<PathBuf>, cap: u64) -> LogFile {
        LogFile {
            path: path.into(),
            cap: cap.max(1),
            follow_stdio: false,
            state: Mutex::new(State::default()),
        }
    }

    /// For a process whose stdout and stderr are this log (a daemon the
    /// CLI started): each rotation points them at the new file, so no
    /// rotated-away generation is kept open (see the module docs).
    pub fn following_stdio(mut self) -> LogFile {
        self.follow_stdio = true;
        self
    }

    /// Lines dropped over the log's life (write, open or rotation failed).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one formatted event: all of it or, failing that, nothing
    /// counted as written (the file's real length is re-read).
    pub fn write_line(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.unreported > 0 {
            let note = format!(
                "hostctl: {} log line(s) dropped: {}\n",
                state.unreported,
                state
                    .last_error
                    .as_deref()
                    .unwrap_or("cannot write the log")
            );
            if self.append(&mut state, note.as_bytes()).is_ok() {
                state.unreported = 0;
            }
        }
        if let Err(e) = self.append(&mut state, line) {
            state.unreported += 1;
            state.dropped += 1;
            state.last_error = Some(e.to_string());
        }
    }

    fn append(&self, state: &mut State, bytes: &[u8]) -> std::io::Result<()> {
        let len = bytes.len() as u64;
        if state.file.is_none() {
            let file = open_append(&self.path)?;
            state.len = file.metadata()?.len();
            state.file = Some(file);
        }
        if len > self.cap {
            return Err(std::io::Error::other("line longer than the log's cap"));
        }
        if state.len > 0 && state.len.saturating_add(len) > self.cap {
            self.rotate(state)?;
        }
        let Some(file) = state.file.as_mut() else {
            return Err(std::io::Error::other("log file not open"));
        };
        match file.write_all(bytes) {
            Ok(()) => {
                state.len += len;
                Ok(())
            }
            Err(e) => {
                // A partial write may have landed: count what is there.
                state.len = file.metadata().map(|m| m.len()).unwrap_or(state.len);
                Err(e)
            }
        }
    }

    /// `daemon.log` → `daemon.log.1`, then a new, empty `daemon.log`.
    fn rotate(&self, state: &mut State) -> std::io::Result<()> {
        state.file = None;
        std::fs::rename(&self.path, rotated_path(&self.path))?;
        let file = open_append(&self.path)?;
        state.len = file.metadata()?.len();
        if self.follow_stdio {
            // Failing here only keeps the old generation open (as before).
            let _ = rustix::stdio::dup2_stdout(&file);
            let _ = rustix::stdio::dup2_stderr(&file);
        }
        state.file = Some(file);
        Ok(())
    }
}

/// One event's writer; every write "succeeds" (see [`LogFile`]).
/// tracing-subscriber formats an event into one buffer and writes it with
/// one `write_all`, so a write here is a whole line.
impl Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = &'a LogFile;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A log whose open file is `/dev/full`, which fails every write with
    /// ENOSPC as a full disk does; `path` is where it reopens.
    fn on_dev_full(path: &Path) -> LogFile {
        let log = LogFile::new(path, 1 << 20);
        log.lock().file = Some(OpenOptions::new().append(true).open("/dev/full").unwrap());
        log
    }

    /// Set for the child process of the stdio test: the log's path.
    const STDIO_CHILD: &str = crate::environment::TEST_LOGFILE_STDIO_CHILD.name;

    #[test]
    fn a_rotation_points_stdout_and_stderr_at_the_new_file() {
        if let Some(path) = crate::environment::TEST_LOGFILE_STDIO_CHILD.os() {
            // The child: its stdout and stderr are the log, as for a
            // daemon the CLI starts. Five 60-byte lines, cap 100: four
            // rotations; the test harness then prints its result line.
            let log = LogFile::new(PathBuf::from(path), 100).following_stdio();
            for _ in 0..5 {
                log.write_line(format!("{}\n", "x".repeat(59)).as_bytes());
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        let file = open_append(&path).unwrap();
        let status = crate::exec::Cmd::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "daemon::logfile::tests::a_rotation_points_stdout_and_stderr_at_the_new_file",
                "--test-threads=1",
            ])
            .env(STDIO_CHILD, &path)
            .spawner()
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn_std()
            .unwrap()
            .wait()
            .unwrap();
        assert!(status.success(), "child: {status}");
        // The harness wrote its summary after the rotations: into the file
        // named daemon.log, not into a rotated-away (and deleted) one.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("test result: ok"), "daemon.log: {text:?}");
    }

    #[test]
    fn a_planted_log_link_is_not_followed_and_the_log_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep me\n").unwrap();
        let log = dir.path().join("daemon.log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        assert!(open_append(&log).is_err(), "followed a symbolic link");
        let writer = LogFile::new(&log, 1024);
        writer.write_line(b"through the link?\n");
        assert_eq!(writer.dropped(), 1);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
        std::fs::remove_file(&log).unwrap();
        open_append(&log).unwrap();
        assert_eq!(mode(&log), 0o600);
    }

    #[test]
    fn the_log_rotates_once_at_its_cap_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("daemon.log");
        let writer = LogFile::new(&log, 100);
        let line = [b'x'; 29]; // + newline: 30 bytes, three fit under 100
        for i in 0..20u8 {
            let mut l = line.to_vec();
            l[0] = b'a' + i;
            l.push(b'\n');
            writer.write_line(&l);
        }
        let current = std::fs::read_to_string(&log).unwrap();
        let older = std::fs::read_to_string(rotated_path(&log)).unwrap();
        assert!(current.len() <= 100 && older.len() <= 100);
        assert_eq!(current.lines().count(), 2, "{current}"); // 20 = 6 × 3 + 2
        assert!(current.starts_with('s'), "newest lines last: {current}");
        assert!(older.starts_with('p'), "one older generation: {older}");
        assert_eq!(writer.dropped(), 0);
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(&rotated_path(&log)), 0o600);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "no generation beyond daemon.log.1");
    }

    #[test]
    fn a_failing_sink_drops_lines_without_error_and_says_so_afterwards() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("daemon.log");
        let full = on_dev_full(&log);
        let mut w = full.make_writer();
        for _ in 0..3 {
            w.write_all(b"lost\n").unwrap();
            w.flush().unwrap();
        }
        assert_eq!(full.dropped(), 3);
        // Space returns (here: the next open finds a writable file).
        full.lock().file = None;
        full.write_line(b"back\n");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with("hostctl: 3 log line(s) dropped: "),
            "{text}"
        );
        assert!(text.ends_with("back\n"), "{text}");
    }

    #[test]
    fn tracing_through_a_failing_log_never_panics() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = std::sync::Arc::new(on_dev_full(&dir.path().join("daemon.log")));
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(file.clone())
                .with_ansi(false),
        );
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..10 {
                tracing::error!(i, "state store commit failed");
            }
        });
        assert_eq!(file.dropped(), 10);
    }
}
