//! The platform Git repository end to end with real git: hostctl publishes
//! trees into the bare repository, its server answers the git CLI over
//! HTTPS (trusting only the pinned self-signed certificate), pushes are
//! refused, nothing but the repository is served, and request bodies are
//! bounded before they are read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use host_agent::gitops::{GitServer, GitServerConfig, PlatformRepo, identity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// No git call of these tests takes more than a second; this only stops a
/// hung one.
const GIT_DEADLINE: Duration = Duration::from_secs(120);

/// Whether real git with its HTTP backend is here (CI requires it).
fn git_here(test: &str) -> bool {
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output();
    match exec_path {
        Ok(out) if out.status.success() => {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            Path::new(&dir).join("git-http-backend").exists()
                || test_support::skip::skip(test, "git has no http-backend")
        }
        _ => test_support::skip::skip(test, "git is not installed"),
    }
}

/// A private home, its repository and its server on 127.0.0.1 (free port).
struct Served {
    home: tempfile::TempDir,
    repo: PlatformRepo,
    server: GitServer,
}

impl Served {
    async fn start() -> Served {
        Served::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut GitServerConfig)) -> Served {
        let home = private_dir();
        let repo = PlatformRepo::new(home.path(), host_agent::exec::real());
        let mut config =
            GitServerConfig::for_home(home.path(), vec![LOOPBACK], 0, &[]).expect("config");
        adjust(&mut config);
        let server = GitServer::start(config).await.expect("server");
        Served { home, repo, server }
    }

    fn url(&self) -> String {
        url_at(self.server.local_addr())
    }

    fn cert(&self) -> PathBuf {
        identity::cert_path(&host_agent::gitops::gitops_dir(self.home.path()))
    }

    fn cert_pem(&self) -> String {
        std::fs::read_to_string(self.cert()).expect("certificate")
    }
}

fn url_at(addr: SocketAddr) -> String {
    format!("https://{addr}/platform.git")
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

fn tree(files: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
        .collect()
}

/// The git CLI as a client that has no configuration of its own: `home`
/// is its HOME, nothing global or system-wide is read, it never prompts.
async fn git(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env_remove("GIT_SSL_NO_VERIFY")
        .env_remove("GIT_SSL_CAINFO")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(GIT_DEADLINE, cmd.output())
        .await
        .expect("git finished in time")
        .expect("git runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn git_ok(home: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = git(home, cwd, args).await;
    assert!(out.status.success(), "git {args:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Clones `url` into `client/work`, trusting `cert` only (kept in the
/// clone's config, so later fetches trust it too).
async fn clone(client: &Path, url: &str, cert: &Path) -> PathBuf {
    let ca = format!("http.sslCAInfo={}", cert.display());
    git_ok(
        client,
        client,
        &["clone", "--quiet", "--config", &ca, url, "work"],
    )
    .await;
    client.join("work")
}

/// Every file under `dir` but `.git`, relative path → contents.
fn files_in(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let contents = std::fs::read_to_string(&path).expect("read");
                out.push((rel.display().to_string(), contents));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_tree_is_cloned_over_https_and_the_next_one_is_pulled() {
    if !git_here("a_published_tree_is_cloned_over_https_and_the_next_one_is_pulled") {
        return;
    }
    let served = Served::start().await;
    let first = [("mgmt/a.yaml", "a: 1\n"), ("app/b.yaml", "b: 1\n")];
    let one = served
        .repo
        .publish(&tree(&first), "first")
        .await
        .expect("publish");
    let again = served
        .repo
        .publish(&tree(&first), "same")
        .await
        .expect("republish");
    assert_eq!(again, one, "the same tree makes no new commit");
    assert_eq!(served.repo.tip().await.expect("tip"), Some(one.clone()));

    let client = private_dir();
    let work = clone(client.path(), &served.url(), &served.cert()).await;
    assert_eq!(files_in(&work), owned(&first));
    let log = git_ok(client.path(), &work, &["log", "--format=%H %an <%ae> %s"]).await;
    assert_eq!(log, format!("{one} hostctl <hostctl@localhost> first"));
    let branch = git_ok(client.path(), &work, &["rev-parse", "--abbrev-ref", "HEAD"]).await;
    assert_eq!(branch, "main");

    let second = [("mgmt/a.yaml", "a: 2\n"), ("app/c.yaml", "c: 1\n")];
    let two = served
        .repo
        .publish(&tree(&second), "second")
        .await
        .expect("publish");
    assert_ne!(two, one);
    git_ok(client.path(), &work, &["pull", "--quiet", "--ff-only"]).await;
    assert_eq!(
        files_in(&work),
        owned(&second),
        "b.yaml is gone, c.yaml came"
    );
    let history = git_ok(client.path(), &work, &["log", "--format=%H"]).await;
    assert_eq!(history, format!("{two}\n{one}"));

    // Private whatever this process's umask: only the certificate is not.
    let open = open_entries(&host_agent::gitops::gitops_dir(served.home.path()));
    assert_eq!(open, [served.cert()], "open to others");
}

/// Every file or directory under `dir` with a group or other permission bit.
fn open_entries(dir: &Path) -> Vec<PathBuf> {
    let mut open = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.permissions().mode() & 0o077 != 0 {
                open.push(path.clone());
            }
            if meta.is_dir() {
                dirs.push(path);
            }
        }
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_published_as_its_tree() {
    if !git_here("a_directory_is_published_as_its_tree") {
        return;
    }
    let served = Served::start().await;
    let dir = private_dir();
    std::fs::create_dir_all(dir.path().join("mgmt")).expect("mkdir");
    std::fs::write(dir.path().join("mgmt/a.yaml"), "a: 1\n").expect("write");
    // Published as bytes: no ignore file or attribute applies.
    std::fs::write(dir.path().join(".gitignore"), "*.yaml\n").expect("write");
    served
        .repo
        .publish_dir(dir.path(), "from a directory")
        .await
        .expect("publish");
    let client = private_dir();
    let work = clone(client.path(), &served.url(), &served.cert()).await;
    assert_eq!(
        files_in(&work),
        owned(&[(".gitignore", "*.yaml\n"), ("mgmt/a.yaml", "a: 1\n")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_refused_and_a_client_without_the_certificate_is_not_served() {
    if !git_here("a_push_is_refused_and_a_client_without_the_certificate_is_not_served") {
        return;
    }
    let served = Served::start().await;
    let published = tree(&[("mgmt/a.yaml", "a: 1\n")]);
    let tip = served
        .repo
        .publish(&published, "first")
        .await
        .expect("publish");

    let client = private_dir();
    let untrusted = git(
        client.path(),
        client.path(),
        &["-c", "http.sslVerify=true", "clone", &served.url(), "nope"],
    )
    .await;
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    let said = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(said.contains("certificate"), "{}", text(&untrusted));

    let work = clone(client.path(), &served.url(), &served.cert()).await;
    std::fs::write(work.join("mgmt/a.yaml"), "a: pushed\n").expect("edit");
    let ident = ["-c", "user.name=t", "-c", "user.email=t@t"];
    let mut commit = ident.to_vec();
    commit.extend(["commit", "--quiet", "-am", "local"]);
    git_ok(client.path(), &work, &commit).await;
    let push = git(client.path(), &work, &["push", "origin", "main"]).await;
    assert!(!push.status.success(), "{}", text(&push));
    assert!(
        String::from_utf8_lossy(&push.stderr).contains("403"),
        "{}",
        text(&push)
    );
    assert_eq!(served.repo.tip().await.expect("tip"), Some(tip));
}

/// Sends `head` (and `body`) over TLS trusting only the server's
/// certificate; returns the response's status line.
async fn raw(served: &Served, head: &str, body: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    let der = certs::cert_der_from_pem(&served.cert_pem()).expect("der");
    roots.add(der.into()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(served.server.local_addr())
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::IpAddress(LOOPBACK.into());
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake with the pinned certificate");
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(body).await.expect("body");
    tls.flush().await.expect("flush");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(GIT_DEADLINE, tls.read(&mut answer))
        .await
        .expect("an answer without the rest of the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_but_the_repository_is_served() {
    if !git_here("nothing_but_the_repository_is_served") {
        return;
    }
    let served = Served::start().await;
    served
        .repo
        .publish(&tree(&[("mgmt/a.yaml", "a: 1\n")]), "first")
        .await
        .expect("publish");
    let refs = "/platform.git/info/refs?service=git-upload-pack";
    assert_eq!(raw(&served, &get(refs), b"").await, "HTTP/1.1 200 OK");
    for path in [
        "/other.git/info/refs?service=git-upload-pack",
        "/platform.git/HEAD",
        "/platform.git/config",
        "/platform.git/info/refs",
        "/platform.git/../server.key",
        "/server.key",
    ] {
        assert_eq!(
            raw(&served, &get(path), b"").await,
            "HTTP/1.1 404 Not Found",
            "{path}"
        );
    }
    let push = "/platform.git/info/refs?service=git-receive-pack";
    assert_eq!(
        raw(&served, &get(push), b"").await,
        "HTTP/1.1 403 Forbidden"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_body_is_refused_without_being_read() {
    if !git_here("an_oversized_request_body_is_refused_without_being_read") {
        return;
    }
    let served = Served::start_with(|c| c.limits.max_body = 64 * 1024).await;
    served
        .repo
        .publish(&tree(&[("mgmt/a.yaml", "a: 1\n")]), "first")
        .await
        .expect("publish");
    // Declares a gigabyte and sends 16 KiB of it: the answer comes anyway.
    let declared = "POST /platform.git/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-git-upload-pack-request\r\n\
         Content-Length: 1073741824\r\n\r\n";
    assert_eq!(
        raw(&served, declared, &[b'0'; 16 * 1024]).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    // Chunked, no length declared: refused once past the limit, without
    // waiting for the end.
    let chunked = "POST /platform.git/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-git-upload-pack-request\r\n\
         Transfer-Encoding: chunked\r\n\r\n";
    let mut body = Vec::new();
    for _ in 0..5 {
        body.extend_from_slice(b"4000\r\n");
        body.extend_from_slice(&[b'0'; 0x4000]);
        body.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        raw(&served, chunked, &body).await,
        "HTTP/1.1 413 Payload Too Large"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_repository_when_asked_to() {
    if !git_here("the_daemon_serves_the_repository_when_asked_to") {
        return;
    }
    let home = test_support::host_daemon::Home::new().expect("home");
    let mut config = home.config();
    config.git_port = Some(0);
    let daemon = host_agent::daemon::Daemon::start(config, home.pki.clone())
        .await
        .expect("daemon");
    let addr = daemon.git_addr().expect("the Git server runs");
    let repo = PlatformRepo::new(home.path(), host_agent::exec::real());
    repo.publish(&tree(&[("app/b.yaml", "b: 1\n")]), "first")
        .await
        .expect("publish");
    let client = private_dir();
    let cert = identity::cert_path(&host_agent::gitops::gitops_dir(home.path()));
    let work = clone(client.path(), &url_at(addr), &cert).await;
    assert_eq!(files_in(&work), owned(&[("app/b.yaml", "b: 1\n")]));
    daemon.stop().await.expect("stop");

    // Without a port, none is served.
    let other = test_support::host_daemon::Home::new().expect("home");
    let daemon = other.start().await.expect("daemon");
    assert_eq!(daemon.git_addr(), None);
    daemon.stop().await.expect("stop");
}
