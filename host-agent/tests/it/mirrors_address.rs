//! `mirrors up` after the host's address changed (a new Multipass network
//! gives the host another address on the bridge): Harbor's certificate is
//! re-issued for the new address by the same lab root, Harbor's `prepare`
//! runs again, and only Harbor's containers are recreated so they serve
//! the new certificate and hostname; `status` says the certificate is out
//! of date until then. With the STAND-INs of
//! `mirrors_lifecycle` for Docker and both APIs.

use crate::mirrors_lifecycle::{home_with_lab_root, stand_ins};
use host_agent::mirrors::Endpoints;
use host_agent::mirrors::compose::{HARBOR_PROJECT, HostArch, NEXUS_PROJECT};
use host_agent::mirrors::layout::Layout;
use host_agent::mirrors::service::Mirrors;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn cert_sans(layout: &Layout) -> Vec<IpAddr> {
    let pem = std::fs::read_to_string(layout.harbor().join("tls/server.crt")).expect("cert");
    certs::ip_sans_of(&certs::cert_der_from_pem(&pem).expect("der")).expect("sans")
}

#[tokio::test]
async fn a_new_host_address_reissues_harbors_certificate_and_recreates_only_harbor() {
    let (_home, pki, layout) = home_with_lab_root();
    let lab = pki.lab_root().expect("lab root");
    let (docker, apis) = stand_ins(&layout);
    let text = format!("{}mirrors:\n  managed: true\n", topology::default_yaml());
    let topology = topology::parse(&text, "t.yaml").expect("topology").topology;
    let at = |host: Ipv4Addr| Mirrors {
        layout: layout.clone(),
        endpoints: Endpoints { host },
        arch: HostArch::Arm64,
        docker: &docker,
        apis: &apis,
        ready_within: Duration::from_secs(60),
    };
    let old: Ipv4Addr = "192.168.64.1".parse().expect("ip");
    let new: Ipv4Addr = "192.168.252.1".parse().expect("ip");
    at(old).up(&topology, lab).await.expect("first up");
    assert_eq!(cert_sans(&layout), [IpAddr::V4(old)]);
    let created = *docker.created.lock().expect("created");
    let calls_before = docker.calls.lock().expect("calls").len();

    let moved = at(new)
        .up(&topology, lab)
        .await
        .expect("up at the new address");
    let reissued = moved
        .changed
        .iter()
        .find(|c| c.starts_with("Harbor's certificate re-issued"))
        .unwrap_or_else(|| panic!("no re-issue reported: {:?}", moved.changed));
    assert!(
        reissued.contains("192.168.252.1") && reissued.contains("192.168.64.1"),
        "{reissued}"
    );
    assert_eq!(cert_sans(&layout), [IpAddr::V4(new)]);
    let pem = std::fs::read_to_string(layout.harbor().join("tls/server.crt")).expect("cert");
    assert_eq!(
        lab.serving_fit(&pem, &[IpAddr::V4(new)], std::time::SystemTime::now()),
        certs::ServingFit::Fits,
        "the new certificate chains to the same lab root the nodes trust"
    );
    let harbor_yml = std::fs::read_to_string(layout.harbor().join("harbor.yml")).expect("yml");
    assert!(harbor_yml.contains("192.168.252.1"), "{harbor_yml}");
    let helm: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(layout.helm_registry_config()).expect("helm config"),
    )
    .expect("JSON");
    assert!(
        helm["auths"]["192.168.252.1:8443"]["auth"].is_string(),
        "{helm}"
    );
    let calls: Vec<String> = docker.calls.lock().expect("calls")[calls_before..].to_vec();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("run ")).count(),
        1,
        "prepare runs again: {calls:?}"
    );
    assert!(
        calls.contains(&format!("recreate {HARBOR_PROJECT}"))
            && calls.contains(&format!("up {NEXUS_PROJECT}"))
            && !calls.contains(&format!("recreate {NEXUS_PROJECT}")),
        "{calls:?}"
    );
    assert_eq!(
        *docker.created.lock().expect("created"),
        created + 9,
        "Harbor's nine services recreated, Nexus left alone"
    );

    // Settled: the next run at the same address changes nothing.
    let again = at(new).up(&topology, lab).await.expect("third up");
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    let status = at(new).status(Some(lab.cert_pem())).await;
    assert_eq!(status[0].state, "healthy", "{status:?}");
}
