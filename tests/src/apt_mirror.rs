//! A flat apt repository for the VM suites, built and served on this
//! machine: the `.deb`s of a few Debian packages (`apt-get download`, from
//! this machine's own apt sources) indexed by `dpkg-scanpackages` into
//! `Packages.gz`, served over plain HTTP on the node network's host address
//! — the only place a test VM can reach. It is what the topology's
//! `mirrors.aptRepository` names, so the node agent's prerequisites run
//! against the VM's real apt with packages that exist (containerd) and
//! packages that do not (the Kubernetes ones).
//!
//! The server is a std `TcpListener` on its own thread: one request per
//! connection (`Connection: close`), files of the repository directory
//! only, every requested path recorded so a test can tell what the VM
//! fetched.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// See the module documentation.
pub struct AptMirror {
    dir: tempfile::TempDir,
    address: Ipv4Addr,
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
}

/// True when this machine can build the repository; otherwise says why.
pub fn can_build(test: &str) -> bool {
    let missing: Vec<&str> = ["apt-get", "dpkg-scanpackages", "gzip"]
        .into_iter()
        .filter(|tool| host_agent::provider::qemu::vm::find_program(tool).is_none())
        .collect();
    missing.is_empty() || crate::skip(test, &format!("missing {missing:?} (apt, dpkg-dev)"))
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl AptMirror {
    /// Downloads `packages` and indexes them; serving starts with
    /// [`AptMirror::serve`].
    pub fn build(packages: &[&str], address: Ipv4Addr, port: u16) -> AptMirror {
        let dir = tempfile::Builder::new()
            .prefix("hostctl-apt-mirror-")
            .tempdir()
            .expect("mirror dir");
        let mut args = vec!["download"];
        args.extend_from_slice(packages);
        run(dir.path(), "apt-get", &args);
        let index = run(dir.path(), "dpkg-scanpackages", &[".", "/dev/null"]);
        std::fs::write(dir.path().join("Packages"), &index).expect("write Packages");
        run(dir.path(), "gzip", &["-k", "Packages"]);
        AptMirror {
            dir,
            address,
            port,
            requests: Arc::default(),
            stop: Arc::default(),
            server: None,
        }
    }

    /// The URL for `mirrors.aptRepository`.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.address, self.port)
    }

    /// The package names in the index.
    pub fn packages(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("Packages"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("Package: "))
            .map(str::to_owned)
            .collect()
    }

    /// Serves the repository on its address. The address is the host's on
    /// the node network, which exists only once `up` has created the
    /// bridge, so the server thread binds as soon as it can (for up to
    /// `bind_within`).
    pub fn serve(&mut self, bind_within: Duration) {
        let root = self.dir.path().to_path_buf();
        let (address, port) = (self.address, self.port);
        let (requests, stop) = (self.requests.clone(), self.stop.clone());
        self.server = Some(std::thread::spawn(move || {
            let deadline = Instant::now() + bind_within;
            let listener = loop {
                match TcpListener::bind((address, port)) {
                    Ok(l) => break l,
                    Err(_) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => {
                        eprintln!("apt mirror: cannot bind {address}:{port}: {e}");
                        return;
                    }
                }
            };
            listener
                .set_nonblocking(true)
                .expect("non-blocking listener");
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => answer(stream, &root, &requests),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }));
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Drop for AptMirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// `%XX` escapes decoded (apt writes the `+` of Debian versions as `%2b`).
fn percent_decoded(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The repository file a request path names: one plain file name (apt asks
/// for `/./Packages.gz` and `/./containerd_….deb` in a flat repository).
fn file_of(root: &Path, path: &str) -> Option<PathBuf> {
    let path = percent_decoded(path)?;
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    match parts.as_slice() {
        [name] if *name != ".." => Some(root.join(name)).filter(|p| p.is_file()),
        _ => None,
    }
}

fn answer(stream: TcpStream, root: &Path, requests: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers are read and ignored (no ranges, no conditionals).
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
        line.clear();
    }
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if let Ok(mut r) = requests.lock() {
        r.push(path.to_owned());
    }
    let mut stream = reader.into_inner();
    let body = match (method, file_of(root, path)) {
        ("GET" | "HEAD", Some(file)) => std::fs::read(file).ok(),
        _ => None,
    };
    let head = match &body {
        Some(b) => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            b.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(head.as_bytes());
    if let (Some(b), "GET") = (&body, method) {
        let _ = stream.write_all(b);
    }
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_of_the_repository_are_served() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("Packages.gz"), b"x").expect("write");
        assert!(file_of(dir.path(), "/./Packages.gz").is_some());
        assert!(file_of(dir.path(), "/Packages.gz").is_some());
        std::fs::write(dir.path().join("runc_1.1.5+ds1_amd64.deb"), b"x").expect("write");
        assert!(file_of(dir.path(), "/./runc_1.1.5%2bds1_amd64.deb").is_some());
        assert!(file_of(dir.path(), "/%2e%2e/etc/passwd").is_none());
        assert!(file_of(dir.path(), "/bad%2").is_none());
        for bad in ["/../etc/passwd", "/a/Packages.gz", "/", "/Release"] {
            assert!(file_of(dir.path(), bad).is_none(), "{bad}");
        }
    }
}
