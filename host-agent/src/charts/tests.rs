//! The cache, the lock and the sources against a fake [`Helm`] whose pull
//! writes a given archive (the helm stand-in and real helm are exercised
//! by the integration tests).

use super::*;
use crate::helm::{HelmError, Pull, UpgradeInstall};
use async_trait::async_trait;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Mutex;

const DEMO: Chart = Chart {
    repo: ChartRepo::Http("https://charts.example"),
    name: "demo",
    version: "1.0.0",
    digest: None,
};

#[derive(Default)]
struct FakeHelm {
    /// What the next pull downloads; `None`: the pull fails.
    archive: Mutex<Option<Vec<u8>>>,
    pulls: Mutex<Vec<String>>,
    pushes: Mutex<Vec<String>>,
}

impl FakeHelm {
    fn serving(bytes: &[u8]) -> FakeHelm {
        let fake = FakeHelm::default();
        *fake.archive.lock().unwrap() = Some(bytes.to_vec());
        fake
    }
}

#[async_trait]
impl Helm for FakeHelm {
    async fn version(&self) -> Result<String, HelmError> {
        Ok("v4".to_owned())
    }
    async fn upgrade_install(&self, _: &UpgradeInstall<'_>) -> Result<String, HelmError> {
        unreachable!("no install")
    }
    async fn pull(&self, request: &Pull<'_>) -> Result<(), HelmError> {
        self.pulls.lock().unwrap().push(request.chart.to_owned());
        let Some(bytes) = self.archive.lock().unwrap().clone() else {
            return Err(HelmError::Failed {
                command: "pull".to_owned(),
                code: 1,
                message: "dial tcp: lookup charts.example: no such host".to_owned(),
            });
        };
        let file = request
            .destination
            .join(format!("{}-{}.tgz", request.chart, request.version));
        std::fs::write(file, bytes).unwrap();
        Ok(())
    }
    async fn push(
        &self,
        archive: &Path,
        remote: &str,
        _: &RegistryTls,
    ) -> Result<String, HelmError> {
        self.pushes
            .lock()
            .unwrap()
            .push(format!("{} {remote}", archive.display()));
        Ok("sha256:manifest".to_owned())
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_first_pull_caches_privately_and_records_the_digest_a_second_is_a_no_op() {
    let home = tempfile::tempdir().unwrap();
    let store = ChartStore::new(home.path(), None);
    let helm = FakeHelm::serving(b"chart-bytes");
    let (path, fetched) = store.fetch(&helm, &DEMO).await.unwrap();
    assert_eq!(fetched, Fetched::Pulled);
    assert_eq!(path, home.path().join("charts/demo-1.0.0.tgz"));
    assert_eq!(std::fs::read(&path).unwrap(), b"chart-bytes");
    assert_eq!((mode(&path), mode(store.cache().dir())), (0o600, 0o700));
    assert_eq!(mode(store.cache().lock_path()), 0o600);
    let lock = store.cache().lock().unwrap();
    let entry = lock.entry(&DEMO).unwrap();
    assert_eq!(entry.sha256, lock::sha256(b"chart-bytes"));
    assert_eq!(entry.source, "https://charts.example");
    let (_, again) = store.fetch(&helm, &DEMO).await.unwrap();
    assert_eq!(again, Fetched::Cached);
    assert_eq!(helm.pulls.lock().unwrap().len(), 1);
    // No staging directory is left behind.
    let names: Vec<_> = std::fs::read_dir(store.cache().dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn a_tampered_cached_file_is_refused_and_a_changed_upstream_too() {
    let home = tempfile::tempdir().unwrap();
    let store = ChartStore::new(home.path(), None);
    let helm = FakeHelm::serving(b"chart-bytes");
    let (path, _) = store.fetch(&helm, &DEMO).await.unwrap();
    std::fs::write(&path, b"evil").unwrap();
    let err = store.source(&helm, &DEMO).await.unwrap_err();
    assert!(matches!(err, ChartError::Tampered { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("delete it and run `hostctl charts pull` again")
    );
    // Deleted, the re-download must be what the lock recorded.
    std::fs::remove_file(&path).unwrap();
    *helm.archive.lock().unwrap() = Some(b"other-bytes".to_vec());
    let err = store.fetch(&helm, &DEMO).await.unwrap_err();
    assert!(matches!(err, ChartError::LockMismatch { .. }), "{err:?}");
    assert!(!path.exists(), "a refused download is not cached");
}

#[tokio::test]
async fn a_pinned_digest_is_held_to() {
    let home = tempfile::tempdir().unwrap();
    let store = ChartStore::new(home.path(), None);
    let pinned = Chart {
        digest: Some("sha256:0000"),
        ..DEMO
    };
    let err = store
        .fetch(&FakeHelm::serving(b"chart-bytes"), &pinned)
        .await
        .unwrap_err();
    assert!(matches!(err, ChartError::PinnedMismatch { .. }), "{err:?}");
    assert!(store.cache().lock().unwrap().charts.is_empty());
    let good = Chart {
        digest: Some(Box::leak(lock::sha256(b"chart-bytes").into_boxed_str())),
        ..DEMO
    };
    assert!(
        store
            .fetch(&FakeHelm::serving(b"chart-bytes"), &good)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn sources_are_the_cache_else_a_pull_and_offline_says_what_to_run() {
    let home = tempfile::tempdir().unwrap();
    let store = ChartStore::new(home.path(), None);
    let offline = FakeHelm::default();
    let err = store.source(&offline, &DEMO).await.unwrap_err().to_string();
    assert!(
        err.contains("demo@1.0.0") && err.contains("run `hostctl charts pull`"),
        "{err}"
    );
    let helm = FakeHelm::serving(b"chart-bytes");
    let source = store.source(&helm, &DEMO).await.unwrap();
    assert_eq!(source.origin, Origin::Cache);
    assert_eq!(
        source.reference,
        store.cache().archive(&DEMO).display().to_string()
    );
    // Cached now: offline works.
    assert_eq!(store.source(&offline, &DEMO).await.unwrap(), source);
}

#[tokio::test]
async fn with_a_mirror_the_chart_is_pushed_once_and_installed_from_it() {
    let home = tempfile::tempdir().unwrap();
    let mirror = Mirror::new("https://192.168.64.1:8443", Some("/ca.pem".into()));
    assert_eq!(mirror.remote(), "oci://192.168.64.1:8443/hostctl-charts");
    let store = ChartStore::new(home.path(), Some(mirror));
    let helm = FakeHelm::serving(b"chart-bytes");
    // Two clusters installing at once: one pull, one push.
    let (a, b) = tokio::join!(store.source(&helm, &DEMO), store.source(&helm, &DEMO));
    let source = a.unwrap();
    assert_eq!(b.unwrap(), source);
    assert_eq!(helm.pulls.lock().unwrap().len(), 1);
    assert_eq!(source.origin, Origin::Mirror);
    assert_eq!(
        source.reference,
        "oci://192.168.64.1:8443/hostctl-charts/demo"
    );
    assert_eq!(
        source.registry.ca_file.as_deref(),
        Some(Path::new("/ca.pem"))
    );
    assert_eq!(store.source(&helm, &DEMO).await.unwrap(), source);
    assert_eq!(helm.pushes.lock().unwrap().len(), 1, "pushed once");
    let rows = states(&store, &[DEMO]).unwrap();
    assert_eq!((rows[0].cached, rows[0].mirrored), (true, Some(true)));
}

#[test]
fn an_http_mirror_is_plain_http_and_every_pin_is_listed_once() {
    let mirror = Mirror::new("http://127.0.0.1:5000/", None);
    assert_eq!(mirror.remote(), "oci://127.0.0.1:5000/hostctl-charts");
    assert!(mirror.tls().plain_http);
    let names: Vec<&str> = pinned().iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "cilium",
            "cert-manager",
            "vault",
            "external-secrets",
            "argo-cd",
            "kube-prometheus-stack",
            "loki",
            "thanos",
            "grafana",
            "alloy",
            "k8sgpt-operator",
            "kyverno",
            "falco",
            "velero"
        ]
    );
}
