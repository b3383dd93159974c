//! The object store's container form (Docker Desktop on a Mac): its
//! compose project checked against the Compose specification's schema,
//! what it publishes (S3 on the host's node-network address, the admin
//! API on loopback only, RPC not at all), its configuration with the
//! container's paths, and `up`/`down` through a STAND-IN for the Docker
//! CLI (mirrors_lifecycle's). No Docker runs here; the real Garage form is
//! tested as a process (storage_garage).

use crate::mirrors_compose::assert_compose_schema;
use crate::mirrors_lifecycle::stand_ins;
use host_agent::storage::config::Listeners;
use host_agent::storage::layout::Layout;
use host_agent::storage::server::Runtime;
use host_agent::storage::{ADMIN_PORT, RPC_PORT, S3_PORT, compose, config};
use std::net::SocketAddr;
use std::sync::Arc;

fn listeners() -> Listeners {
    Listeners {
        s3: SocketAddr::from(([192, 168, 64, 1], S3_PORT)),
        admin: SocketAddr::from(([127, 0, 0, 1], ADMIN_PORT)),
        rpc: SocketAddr::from(([127, 0, 0, 1], RPC_PORT)),
    }
}

#[test]
fn the_compose_project_satisfies_the_schema_and_publishes_only_s3_and_loopback_admin() {
    let home = tempfile::tempdir().unwrap();
    let layout = Layout::new(home.path());
    let project = compose::project(&layout, &listeners());
    let file = home.path().join("storage-compose.yaml");
    std::fs::write(&file, host_agent::mirrors::compose::to_yaml(&project)).unwrap();
    assert_compose_schema(&[file]);

    let garage = &project["services"]["garage"];
    assert_eq!(garage["image"], compose::IMAGE);
    assert_eq!(
        garage["ports"],
        serde_json::json!(["192.168.64.1:3900:3900", "127.0.0.1:3903:3903"])
    );
    let volumes = garage["volumes"].to_string();
    for (host, ro) in [
        (layout.container_config(), true),
        (layout.rpc_secret(), true),
        (layout.admin_token(), true),
        (layout.meta(), false),
        (layout.data(), false),
    ] {
        let shown = host.display().to_string();
        assert!(volumes.contains(&shown), "{shown} not mounted: {volumes}");
        let entry = garage["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v.as_str().unwrap().starts_with(&shown))
            .unwrap();
        assert_eq!(entry.as_str().unwrap().ends_with(":ro"), ro, "{entry}");
    }

    // Inside, Garage binds every interface (the publish decides) and reads
    // the mounted paths.
    let text = config::render(
        &compose::container_paths(),
        &compose::container_listeners(&listeners()),
    );
    assert!(
        text.contains("metadata_dir = \"/var/lib/garage/meta\""),
        "{text}"
    );
    assert!(text.contains("api_bind_addr = \"0.0.0.0:3900\""), "{text}");
    assert!(
        text.contains("rpc_secret_file = \"/etc/garage/rpc-secret\""),
        "{text}"
    );
}

#[tokio::test]
async fn the_container_form_starts_once_and_down_removes_only_the_container() {
    let home = tempfile::tempdir().unwrap();
    let layout = Layout::new(home.path());
    std::fs::create_dir_all(layout.root()).unwrap();
    std::fs::write(
        layout.compose(),
        host_agent::mirrors::compose::to_yaml(&compose::project(&layout, &listeners())),
    )
    .unwrap();
    let (docker, _) = stand_ins(&host_agent::mirrors::layout::Layout::new(home.path()));
    let docker = Arc::new(docker);
    let runtime = Runtime::Container {
        layout: layout.clone(),
        docker: docker.clone(),
    };
    assert_eq!(runtime.running().await, None);
    assert!(runtime.start().await.unwrap(), "the first start starts");
    assert_eq!(runtime.running().await.as_deref(), Some("container"));
    assert!(
        !runtime.start().await.unwrap(),
        "a running container is left alone"
    );
    assert!(runtime.stop().await.unwrap());
    assert_eq!(runtime.running().await, None);
    assert_eq!(
        *docker.calls.lock().unwrap(),
        [
            format!("up {}", compose::PROJECT),
            format!("down {}", compose::PROJECT)
        ]
    );
    // The data directories are bind mounts: nothing of them is removed.
    assert!(layout.compose().exists());
}
