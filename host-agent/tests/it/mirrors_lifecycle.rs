//! `mirrors up|status|down` end to end with STAND-INS for Docker (below:
//! `docker compose up -d` creates the file's services that are not running
//! and leaves running ones alone, `down` removes them, `ps` lists them;
//! Harbor's `prepare` writes its configuration; Nexus writes
//! `admin.password` on its first start) and for both APIs (mirrors_api's
//! fixture-driven stand-ins). `up` twice is idempotent; `down` keeps the
//! data, `--purge` removes it.

use crate::mirrors_api::{HarborState, NexusState, StandIn, harbor_answer, nexus_answer};
use async_trait::async_trait;
use host_agent::mirrors::Endpoints;
use host_agent::mirrors::compose::{HARBOR_PROJECT, HostArch, NEXUS_PROJECT};
use host_agent::mirrors::docker::{Availability, Container, Docker};
use host_agent::mirrors::error::MirrorError;
use host_agent::mirrors::http::{Api, Request, Response};
use host_agent::mirrors::layout::Layout;
use host_agent::mirrors::service::{ApiFactory, Mirrors};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A STAND-IN for the Docker CLI: projects → running services.
#[derive(Default)]
pub(crate) struct DockerStandIn {
    projects: Mutex<BTreeMap<String, Vec<String>>>,
    pub(crate) calls: Mutex<Vec<String>>,
    /// Containers created over the whole test (a recreate adds more).
    pub(crate) created: Mutex<usize>,
    nexus_data: PathBuf,
    harbor_config: PathBuf,
}

fn services_of(file: &Path) -> Vec<String> {
    let doc: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(file).expect("compose file"))
            .expect("YAML");
    doc["services"]
        .as_object()
        .expect("services")
        .keys()
        .cloned()
        .collect()
}

#[async_trait]
impl Docker for DockerStandIn {
    async fn availability(&self) -> Availability {
        Availability::Running("28.0.0".into())
    }

    async fn compose_up(&self, project: &str, file: &Path) -> Result<(), MirrorError> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("up {project}"));
        let mut projects = self.projects.lock().expect("projects");
        let running = projects.entry(project.to_owned()).or_default();
        for service in services_of(file) {
            if !running.contains(&service) {
                running.push(service);
                *self.created.lock().expect("created") += 1;
            }
        }
        if project == NEXUS_PROJECT && !self.nexus_data.join("admin.password").exists() {
            std::fs::write(self.nexus_data.join("admin.password"), "initial-secret")
                .expect("write");
        }
        Ok(())
    }

    async fn compose_recreate(&self, project: &str, file: &Path) -> Result<(), MirrorError> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("recreate {project}"));
        let services = services_of(file);
        *self.created.lock().expect("created") += services.len();
        self.projects
            .lock()
            .expect("projects")
            .insert(project.to_owned(), services);
        Ok(())
    }

    async fn compose_down(&self, project: &str, _file: &Path) -> Result<(), MirrorError> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("down {project}"));
        self.projects.lock().expect("projects").remove(project);
        Ok(())
    }

    async fn compose_ps(&self, project: &str, _file: &Path) -> Result<Vec<Container>, MirrorError> {
        let projects = self.projects.lock().expect("projects");
        Ok(projects
            .get(project)
            .into_iter()
            .flatten()
            .map(|s| Container {
                service: s.clone(),
                state: "running".into(),
                health: String::new(),
            })
            .collect())
    }

    async fn run_once(&self, args: &[String]) -> Result<(), MirrorError> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("run {}", args.join(" ")));
        let env = self.harbor_config.join("core/env");
        std::fs::create_dir_all(env.parent().expect("dir")).expect("mkdir");
        std::fs::write(env, "CONFIG_PATH=/etc/core/app.conf\n").expect("write");
        Ok(())
    }
}

/// Forwards to one shared stand-in, so its state outlives each client.
struct Shared<S>(Arc<StandIn<S>>);

#[async_trait]
impl<S: Send> Api for Shared<S> {
    fn address(&self) -> &str {
        self.0.address()
    }

    async fn send(&self, request: &Request) -> Result<Response, MirrorError> {
        self.0.send(request).await
    }
}

pub(crate) struct StandInApis {
    harbor: Arc<StandIn<HarborState>>,
    nexus: Arc<StandIn<NexusState>>,
    nexus_passwords: Mutex<Vec<String>>,
}

impl ApiFactory for StandInApis {
    fn harbor(&self, _: &Endpoints, _: &str, _: &str) -> Result<Box<dyn Api>, MirrorError> {
        Ok(Box::new(Shared(self.harbor.clone())))
    }

    fn nexus(&self, _: &Endpoints, password: &str) -> Result<Box<dyn Api>, MirrorError> {
        self.nexus_passwords
            .lock()
            .expect("passwords")
            .push(password.to_owned());
        Ok(Box::new(Shared(self.nexus.clone())))
    }
}

/// Docker and both APIs as STAND-INs, for mirrors under `layout`.
pub(crate) fn stand_ins(layout: &Layout) -> (DockerStandIn, StandInApis) {
    let docker = DockerStandIn {
        nexus_data: layout.nexus_data(),
        harbor_config: layout.harbor().join("common/config"),
        ..DockerStandIn::default()
    };
    let apis = StandInApis {
        harbor: Arc::new(StandIn::new(
            "harbor-api.json",
            HarborState::default(),
            harbor_answer,
        )),
        nexus: Arc::new(StandIn::new(
            "nexus-api.json",
            NexusState {
                available: true,
                password: "initial-secret".into(),
                repositories: Vec::new(),
            },
            nexus_answer,
        )),
        nexus_passwords: Mutex::new(Vec::new()),
    };
    (docker, apis)
}

/// A home with a PKI (its lab root signs Harbor's certificate) and the
/// mirrors' layout in it.
pub(crate) fn home_with_lab_root() -> (tempfile::TempDir, certs::Pki, Layout) {
    let home = tempfile::tempdir().expect("tempdir");
    let spec = certs::PkiSpec {
        clusters: vec!["mgmt".into()],
        host_sans: vec!["127.0.0.1".into()],
    };
    let pki = certs::Pki::open_or_init(home.path(), &spec).expect("pki");
    let layout = Layout::new(home.path());
    (home, pki, layout)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn up_twice_changes_nothing_the_second_time_and_down_keeps_the_data() {
    let (_home, pki, layout) = home_with_lab_root();
    let lab = pki.lab_root().expect("lab root");
    let (docker, apis) = stand_ins(&layout);
    let host = "192.168.64.1".parse().expect("ip");
    let mirrors = Mirrors {
        layout: layout.clone(),
        endpoints: Endpoints { host },
        arch: HostArch::Arm64,
        docker: &docker,
        apis: &apis,
        ready_within: Duration::from_secs(60),
    };
    let text = format!("{}mirrors:\n  managed: true\n", topology::default_yaml());
    let topology = topology::parse(&text, "t.yaml").expect("topology").topology;

    let first = mirrors.up(&topology, lab).await.expect("first up");
    assert!(!first.changed.is_empty());
    let creds = layout.credentials();
    assert_eq!(mode(&creds), 0o600);
    assert_eq!(mode(layout.root()), 0o700);
    let helm_config = layout.helm_registry_config();
    assert_eq!(mode(&helm_config), 0o600);
    let helm_config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&helm_config).expect("read")).expect("JSON");
    assert!(
        helm_config["auths"]["192.168.64.1:8443"]["auth"].is_string(),
        "{helm_config}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&creds).expect("read")).expect("JSON");
    let nexus_password = saved["nexus_admin_password"]
        .as_str()
        .expect("password")
        .to_owned();
    assert_eq!(
        apis.nexus.state.lock().expect("state").password,
        nexus_password
    );
    assert!(
        apis.nexus_passwords
            .lock()
            .expect("passwords")
            .contains(&"initial-secret".to_owned()),
        "the initial password authenticated the change"
    );
    let key = layout.harbor().join("tls/server.key");
    assert_eq!(mode(&key), 0o600);
    let cert = std::fs::read_to_string(layout.harbor().join("tls/server.crt")).expect("cert");
    let der = certs::cert_der_from_pem(&cert).expect("der");
    assert_eq!(
        certs::ip_sans_of(&der).expect("sans"),
        vec![std::net::IpAddr::V4(host)]
    );
    let harbor_yml =
        std::fs::read_to_string(layout.harbor().join("harbor.yml")).expect("harbor.yml");
    assert!(
        harbor_yml.contains("port: 8443") && harbor_yml.contains("192.168.64.1"),
        "{harbor_yml}"
    );
    assert_eq!(mode(&layout.harbor().join("harbor.yml")), 0o600);
    let created = *docker.created.lock().expect("created");
    assert_eq!(created, 10, "nine Harbor services and Nexus");
    let prepare: Vec<String> = docker
        .calls
        .lock()
        .expect("calls")
        .iter()
        .filter(|c| c.starts_with("run "))
        .cloned()
        .collect();
    assert_eq!(prepare.len(), 1, "{prepare:?}");
    assert!(
        prepare[0].contains("--platform linux/amd64")
            && prepare[0].contains("goharbor/prepare:v2.15.2"),
        "{}",
        prepare[0]
    );

    // Second run: nothing created, rewritten or re-prepared.
    let (harbor_ops, nexus_ops) = (
        apis.harbor.operations().len(),
        apis.nexus.operations().len(),
    );
    let again = mirrors.up(&topology, lab).await.expect("second up");
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    assert_eq!(
        *docker.created.lock().expect("created"),
        created,
        "no container recreated"
    );
    let runs = docker
        .calls
        .lock()
        .expect("calls")
        .iter()
        .filter(|c| c.starts_with("run "))
        .count();
    assert_eq!(runs, 1, "prepare ran again");
    let looked = |ops: &[String]| {
        ops.iter().all(|o| {
            [
                "getHealth",
                "listRegistries",
                "headProject",
                "isAvailable",
                "getRepository",
            ]
            .contains(&o.as_str())
        })
    };
    assert!(
        looked(&apis.harbor.operations()[harbor_ops..]),
        "{:?}",
        &apis.harbor.operations()[harbor_ops..]
    );
    assert!(
        looked(&apis.nexus.operations()[nexus_ops..]),
        "{:?}",
        &apis.nexus.operations()[nexus_ops..]
    );

    let status = mirrors.status(Some(lab.cert_pem())).await;
    let states: Vec<(&str, &str, usize)> = status
        .iter()
        .map(|s| (s.name, s.state.as_str(), s.running))
        .collect();
    assert_eq!(states, [("harbor", "healthy", 9), ("nexus", "healthy", 1)]);

    // down keeps the data and the credentials; --purge removes them.
    std::fs::write(layout.harbor_data().join("blob"), "kept").expect("data");
    mirrors.down(false).await.expect("down");
    assert!(docker.projects.lock().expect("projects").is_empty());
    assert!(layout.harbor_data().join("blob").exists() && creds.exists());
    let status = mirrors.status(None).await;
    assert!(
        status.iter().all(|s| s.state.starts_with("stopped")),
        "{status:?}"
    );
    assert!(
        docker
            .calls
            .lock()
            .expect("calls")
            .contains(&format!("down {HARBOR_PROJECT}"))
    );
    mirrors.down(true).await.expect("purge");
    assert!(!layout.root().exists());
}

/// The real binary where Docker is absent (PATH without it): `status`
/// says so per mirror and succeeds (it must always print); `up` refuses
/// with exit 5 and says how to fix it; a topology without `managed: true`
/// is refused by `up` with the field to add.
#[test]
fn the_cli_degrades_without_docker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let topology = dir.path().join("hostctl.yaml");
    let hostctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .args(args)
            .current_dir(dir.path())
            .env("HOSTCTL_HOME", &home)
            .env("PATH", &bin)
            .env_remove("HOSTCTL_TOPOLOGY")
            .output()
            .expect("hostctl runs")
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    std::fs::write(&topology, topology::default_yaml()).expect("topology");
    let out = hostctl(&["mirrors", "up"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("managed: true"), "{}", text(&out));

    std::fs::write(
        &topology,
        format!("{}mirrors:\n  managed: true\n", topology::default_yaml()),
    )
    .expect("topology");
    let out = hostctl(&["mirrors", "status", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let states: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert_eq!(states, ["docker not installed", "docker not installed"]);
    let out = hostctl(&["mirrors", "up"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("install Docker"), "{}", text(&out));
}
