//! `hostctl mirrors up|status|down`: the managed mirrors' lifecycle.
//! `up` is idempotent end to end — files are rewritten only when their
//! content changed, `compose up -d` leaves running containers alone, and
//! the API configuration looks before it creates — so it is also what
//! `hostctl up` runs when the topology asks for managed mirrors.
//! `down` removes the containers and keeps the data unless purged.

use super::Endpoints;
use super::compose::{self, HarborConfig, HostArch};
use super::docker::{Availability, Container, Docker};
use super::error::MirrorError;
use super::harbor::Harbor;
use super::http::{Api, HttpApi};
use super::layout::Layout;
use super::nexus::Nexus;
use super::secrets::{Credentials, ensure_harbor_tls};
use super::upstreams::apt_proxies;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the two APIs are reached: real HTTP, or stand-ins in tests.
pub trait ApiFactory: Send + Sync {
    fn harbor(
        &self,
        endpoints: &Endpoints,
        ca_pem: &str,
        password: &str,
    ) -> Result<Box<dyn Api>, MirrorError>;
    fn nexus(&self, endpoints: &Endpoints, password: &str) -> Result<Box<dyn Api>, MirrorError>;
}

/// The real APIs over HTTP(S) on the host's address.
pub struct HttpApis;

impl ApiFactory for HttpApis {
    fn harbor(
        &self,
        e: &Endpoints,
        ca_pem: &str,
        password: &str,
    ) -> Result<Box<dyn Api>, MirrorError> {
        Ok(Box::new(HttpApi::new(
            &e.harbor(),
            Some(ca_pem),
            Some(("admin", password)),
        )?))
    }

    fn nexus(&self, e: &Endpoints, password: &str) -> Result<Box<dyn Api>, MirrorError> {
        Ok(Box::new(HttpApi::new(
            &e.nexus(),
            None,
            Some(("admin", password)),
        )?))
    }
}

/// Everything `up`, `status` and `down` act on.
pub struct Mirrors<'a> {
    pub layout: Layout,
    pub endpoints: Endpoints,
    pub arch: HostArch,
    pub docker: &'a dyn Docker,
    pub apis: &'a dyn ApiFactory,
    /// How long `up` waits for each service to answer (first start pulls
    /// images and Nexus initialises for minutes).
    pub ready_within: Duration,
}

/// What `up` did, for the user.
#[derive(Debug, Default, serde::Serialize)]
pub struct UpReport {
    pub changed: Vec<String>,
}

/// One mirror's state, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorHealth {
    pub name: &'static str,
    pub url: String,
    /// `healthy`, `unhealthy: …`, `stopped`, `not deployed`, `docker …`.
    pub state: String,
    pub containers: usize,
    pub running: usize,
}

fn write_if_changed(path: &Path, text: &str, mode: u32) -> Result<bool, MirrorError> {
    if std::fs::read(path).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(MirrorError::io(dir))?;
    }
    fsio::write_atomic(path, text.as_bytes(), mode)
        .map_err(|e| MirrorError::io(path)(std::io::Error::other(e.to_string())))?;
    Ok(true)
}

impl Mirrors<'_> {
    fn harbor_file(&self) -> PathBuf {
        self.layout.harbor().join("compose.yaml")
    }

    fn nexus_file(&self) -> PathBuf {
        self.layout.nexus().join("compose.yaml")
    }

    async fn require_docker(&self) -> Result<(), MirrorError> {
        match self.docker.availability().await {
            Availability::Running(_) => Ok(()),
            Availability::Missing => Err(MirrorError::Docker {
                args: "version".into(),
                reason: "the docker CLI is not installed; install Docker Desktop (or Docker Engine with the compose plugin)".into(),
            }),
            Availability::Stopped(why) => Err(MirrorError::Docker {
                args: "version".into(),
                reason: format!("the Docker engine does not answer ({why}); start Docker Desktop"),
            }),
        }
    }

    /// Renders, starts and configures both mirrors.
    pub async fn up(
        &self,
        topology: &topology::Topology,
        lab: &certs::LabRoot,
    ) -> Result<UpReport, MirrorError> {
        self.require_docker().await?;
        let mut report = UpReport::default();
        for dir in [
            self.layout.root().to_path_buf(),
            self.layout.harbor_data(),
            self.layout.nexus_data(),
        ] {
            std::fs::create_dir_all(&dir).map_err(MirrorError::io(&dir))?;
        }
        // Credentials, keys and harbor.yml live below: the owner only.
        let root = self.layout.root();
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(MirrorError::io(root))?;
        let creds = Credentials::load_or_create(&self.layout)?;
        let authority = format!("{}:{}", self.endpoints.host, super::HARBOR_PORT);
        super::secrets::write_helm_registry_config(
            &self.layout,
            &authority,
            &creds.harbor_admin_password,
        )?;
        let tls = ensure_harbor_tls(&self.layout, lab, self.endpoints.host)?;
        report.changed.extend(tls.change());
        let host = self.endpoints.host.to_string();
        let harbor_yml = compose::to_yaml(&compose::harbor_yml(
            &self.layout,
            &HarborConfig {
                hostname: &host,
                admin_password: &creds.harbor_admin_password,
                database_password: &creds.harbor_database_password,
            },
        ));
        let yml_path = self.layout.harbor().join("harbor.yml");
        let prepared = self.layout.harbor().join("common/config/core/env").exists();
        // `prepare` copies the certificate into Harbor's data and writes
        // the components' configuration; running containers read neither
        // again, so a new one (another address, a re-issued certificate)
        // means recreating them, as the installer's `install.sh` does.
        let reconfigured = write_if_changed(&yml_path, &harbor_yml, 0o600)?
            || !prepared
            || tls != super::secrets::HarborTls::Kept;
        if reconfigured {
            self.docker.run_once(&self.prepare_args()).await?;
            report
                .changed
                .push("Harbor's configuration generated (prepare)".into());
        }
        let harbor = compose::to_yaml(&compose::harbor(&self.layout, self.arch));
        let nexus = compose::to_yaml(&compose::nexus(&self.layout));
        for (file, text, name) in [
            (self.harbor_file(), harbor, "Harbor"),
            (self.nexus_file(), nexus, "Nexus"),
        ] {
            if write_if_changed(&file, &text, 0o644)? {
                report
                    .changed
                    .push(format!("{name}'s compose file written"));
            }
        }
        if reconfigured {
            self.docker
                .compose_recreate(compose::HARBOR_PROJECT, &self.harbor_file())
                .await?;
        } else {
            self.docker
                .compose_up(compose::HARBOR_PROJECT, &self.harbor_file())
                .await?;
        }
        self.docker
            .compose_up(compose::NEXUS_PROJECT, &self.nexus_file())
            .await?;

        let nexus_api = self.nexus_api(&creds).await?;
        let nexus = Nexus::new(nexus_api.as_ref());
        report.changed.extend(
            nexus
                .configure(&apt_proxies(topology, self.arch == HostArch::Arm64))
                .await?,
        );

        let harbor_api = self.apis.harbor(
            &self.endpoints,
            lab.cert_pem(),
            &creds.harbor_admin_password,
        )?;
        let harbor = Harbor::new(harbor_api.as_ref());
        self.wait("Harbor", || async {
            harbor.health().await.is_ok_and(|h| h.status == "healthy")
        })
        .await?;
        report
            .changed
            .extend(harbor.configure(crate::charts::MIRROR_PATH).await?);
        Ok(report)
    }

    /// Nexus with hostctl's password, once it answers; on first start the
    /// initial one (`nexus-data/admin.password`, written during Nexus's
    /// start-up and removed by Nexus once changed) is replaced first.
    async fn nexus_api(&self, creds: &Credentials) -> Result<Box<dyn Api>, MirrorError> {
        let probe = self.apis.nexus(&self.endpoints, "")?;
        let status = Nexus::new(probe.as_ref());
        self.wait("Nexus", || async {
            status.available().await.unwrap_or(false)
        })
        .await?;
        let initial = self.layout.nexus_data().join("admin.password");
        // Whether Nexus deletes `admin.password` after the change is not
        // documented; hostctl records that it made the change instead.
        let changed = self.layout.nexus().join("admin-password-set");
        let pending = (!changed.exists())
            .then(|| std::fs::read_to_string(&initial).ok())
            .flatten();
        if let Some(initial_password) = pending {
            let api = self.apis.nexus(&self.endpoints, initial_password.trim())?;
            match Nexus::new(api.as_ref())
                .change_admin_password(&creds.nexus_admin_password)
                .await
            {
                // Already changed by an earlier run (Nexus may keep the
                // file): the initial password no longer authenticates.
                Err(MirrorError::Api { status: 401, .. }) | Ok(()) => {}
                Err(e) => return Err(e),
            }
            write_if_changed(&changed, "hostctl changed Nexus's admin password\n", 0o600)?;
        }
        self.apis
            .nexus(&self.endpoints, &creds.nexus_admin_password)
    }

    /// Bounded polling until `ready` (generous deadline, no timing asserted).
    async fn wait<F, Fut>(&self, what: &str, ready: F) -> Result<(), MirrorError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + self.ready_within;
        loop {
            if ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(MirrorError::Unreachable {
                    call: what.to_owned(),
                    reason: format!(
                        "not ready within {}s; see `docker compose -p {} logs`",
                        self.ready_within.as_secs(),
                        if what == "Harbor" {
                            compose::HARBOR_PROJECT
                        } else {
                            compose::NEXUS_PROJECT
                        }
                    ),
                });
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Harbor's `prepare`, mounted as the installer's `prepare` script does.
    fn prepare_args(&self) -> Vec<String> {
        let harbor = self.layout.harbor();
        let data = self.layout.harbor_data();
        let v = |host: &Path, inside: &str| {
            vec!["-v".to_owned(), format!("{}:{inside}", host.display())]
        };
        let mut args = Vec::new();
        if self.arch == HostArch::Arm64 {
            args.extend(["--platform".to_owned(), "linux/amd64".to_owned()]);
        }
        args.extend(v(&harbor, "/input"));
        args.extend(v(&data, "/data"));
        args.extend(v(&harbor.join("prepare-out"), "/compose_location"));
        args.extend(v(&harbor.join("common/config"), "/config"));
        args.extend(v(&harbor, &format!("/hostfs{}", harbor.display())));
        args.push(compose::prepare_image());
        args.push("prepare".to_owned());
        args
    }

    /// Both mirrors' health; never fails (status must always print).
    pub async fn status(&self, lab_ca_pem: Option<&str>) -> Vec<MirrorHealth> {
        let docker = self.docker.availability().await;
        let mut out = Vec::new();
        for (name, project, file, url) in [
            (
                "harbor",
                compose::HARBOR_PROJECT,
                self.harbor_file(),
                self.endpoints.harbor(),
            ),
            (
                "nexus",
                compose::NEXUS_PROJECT,
                self.nexus_file(),
                self.endpoints.nexus(),
            ),
        ] {
            let mut h = MirrorHealth {
                name,
                url,
                state: String::new(),
                containers: 0,
                running: 0,
            };
            h.state = match &docker {
                Availability::Missing => "docker not installed".into(),
                Availability::Stopped(_) => "docker not running".into(),
                Availability::Running(_) if !file.exists() => {
                    "not deployed (hostctl mirrors up)".into()
                }
                Availability::Running(_) => match self.docker.compose_ps(project, &file).await {
                    Err(e) => format!("unknown: {e}"),
                    Ok(containers) => {
                        h.containers = containers.len();
                        h.running = containers.iter().filter(|c| c.state == "running").count();
                        self.answer(name, &containers, lab_ca_pem).await
                    }
                },
            };
            out.push(h);
        }
        out
    }

    async fn answer(
        &self,
        name: &str,
        containers: &[Container],
        lab_ca_pem: Option<&str>,
    ) -> String {
        if containers.is_empty() {
            return "stopped (hostctl mirrors up)".into();
        }
        let down: Vec<&str> = containers
            .iter()
            .filter(|c| c.state != "running")
            .map(|c| c.service.as_str())
            .collect();
        if !down.is_empty() {
            return format!("degraded: {} not running", down.join(", "));
        }
        match name {
            "harbor" => {
                if let Some(stale) = self.stale_certificate(lab_ca_pem) {
                    return stale;
                }
                let Ok(api) = self
                    .apis
                    .harbor(&self.endpoints, lab_ca_pem.unwrap_or_default(), "")
                else {
                    return "running (no lab root to verify it)".into();
                };
                match Harbor::new(api.as_ref()).health().await {
                    Ok(h) if h.status == "healthy" => "healthy".into(),
                    Ok(h) => format!("unhealthy: {}", h.unhealthy.join(", ")),
                    Err(e) => format!("running, API not answering: {e}"),
                }
            }
            _ => match self.apis.nexus(&self.endpoints, "") {
                Ok(api) => match Nexus::new(api.as_ref()).available().await {
                    Ok(true) => "healthy".into(),
                    Ok(false) => "starting (status 503)".into(),
                    Err(e) => format!("running, API not answering: {e}"),
                },
                Err(e) => format!("unknown: {e}"),
            },
        }
    }

    /// Harbor serving a certificate the nodes would refuse (the host's
    /// address changed since `mirrors up`, …): the state says so and what
    /// fixes it, rather than a TLS error from the health call.
    fn stale_certificate(&self, lab_ca_pem: Option<&str>) -> Option<String> {
        let root = lab_ca_pem?;
        let cert = std::fs::read_to_string(self.layout.harbor().join("tls/server.crt")).ok()?;
        let now = std::time::SystemTime::now();
        match certs::serving_fit(root, &cert, &[self.endpoints.host.into()], now) {
            certs::ServingFit::Fits => None,
            certs::ServingFit::Reissue(why) => Some(format!(
                "certificate out of date: {why}; run `hostctl mirrors up`"
            )),
        }
    }

    /// Stops Harbor's containers and keeps everything else (the
    /// `registry-down` drill; [`Mirrors::start_harbor`] brings it back).
    pub async fn stop_harbor(&self) -> Result<(), MirrorError> {
        self.require_docker().await?;
        self.docker
            .compose_down(compose::HARBOR_PROJECT, &self.harbor_file())
            .await
    }

    /// Starts Harbor's rendered project again (no re-rendering: the files
    /// `up` wrote are what ran before).
    pub async fn start_harbor(&self) -> Result<(), MirrorError> {
        self.require_docker().await?;
        self.docker
            .compose_up(compose::HARBOR_PROJECT, &self.harbor_file())
            .await
    }

    /// Removes the containers; `purge` also deletes the data, credentials
    /// and rendered files.
    pub async fn down(&self, purge: bool) -> Result<Vec<String>, MirrorError> {
        let mut done = Vec::new();
        if matches!(self.docker.availability().await, Availability::Running(_)) {
            for (project, file) in [
                (compose::HARBOR_PROJECT, self.harbor_file()),
                (compose::NEXUS_PROJECT, self.nexus_file()),
            ] {
                if file.exists() {
                    self.docker.compose_down(project, &file).await?;
                    done.push(format!("{project} removed"));
                }
            }
        } else if !purge {
            self.require_docker().await?;
        }
        if purge && self.layout.root().exists() {
            std::fs::remove_dir_all(self.layout.root())
                .map_err(MirrorError::io(self.layout.root()))?;
            done.push(format!("{} deleted", self.layout.root().display()));
        }
        Ok(done)
    }
}
