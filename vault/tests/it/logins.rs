//! A cluster's service-account tokens log in on that cluster's JWT mount
//! only, and the policies they get stop at their paths.

use hyper::Method;
use serde_json::{Value, json};
use vault::{Secret, VaultClient};

use crate::lab::{ClusterKey, Fixture};

async fn login(client: &VaultClient, mount: &str, role: &str, jwt: &str) -> Result<Secret, u16> {
    let body = json!({"role": role, "jwt": jwt});
    let answer = client
        .send(
            Method::POST,
            &format!("/v1/auth/{mount}/login"),
            Some(&body),
        )
        .await
        .expect("Vault answers");
    match answer.status {
        200 => Ok(Secret::new(
            answer.body["auth"]["client_token"]
                .as_str()
                .expect("client_token"),
        )),
        other => Err(other),
    }
}

async fn read_status(client: &VaultClient, path: &str) -> u16 {
    client
        .send(Method::GET, path, None)
        .await
        .expect("answer")
        .status
}

fn eso_token(key: &ClusterKey) -> String {
    key.token("external-secrets", "external-secrets")
}

#[tokio::test]
async fn a_cluster_token_logs_in_on_its_own_mount_only_and_reads_only_its_paths() {
    let Some(f) = Fixture::start(
        "a_cluster_token_logs_in_on_its_own_mount",
        &["app1", "app2"],
    ) else {
        return;
    };
    f.bootstrap().await;
    let admin = f.admin();
    for path in ["app1/db", "app2/db", "shared/registry"] {
        let body = json!({"data": {"password": format!("pw-{path}")}});
        admin
            .write(&format!("/v1/secret/data/{path}"), &body)
            .await
            .expect("seed");
    }
    let (app1, app2) = (&f.clusters[0], &f.clusters[1]);
    let client = f.client();

    let token = login(&client, "jwt-app1", "eso", &eso_token(app1))
        .await
        .unwrap_or_else(|s| panic!("app1's ESO refused on jwt-app1: {s}\n{}", f.bao.log()));
    let eso = client.with_token(token);
    let own: Value = eso
        .call(Method::GET, "/v1/secret/data/app1/db", None)
        .await
        .expect("own path");
    assert_eq!(own["data"]["data"]["password"], "pw-app1/db");
    assert_eq!(
        read_status(&eso, "/v1/secret/data/shared/registry").await,
        200
    );
    assert_eq!(
        read_status(&eso, "/v1/secret/data/app2/db").await,
        403,
        "app2's secret"
    );
    let write = eso
        .send(
            Method::POST,
            "/v1/secret/data/app1/db",
            Some(&json!({"data": {"x": "y"}})),
        )
        .await
        .unwrap();
    assert_eq!(write.status, 403, "ESO's policy is read-only");
    assert_eq!(read_status(&eso, "/v1/sys/mounts").await, 403);

    // app1's token on app2's mount: signed by the wrong key.
    let refused = login(&client, "jwt-app2", "eso", &eso_token(app1)).await;
    assert!(
        matches!(refused, Err(400..=403)),
        "{:?}",
        refused.map(|_| "accepted")
    );
    // app2's own token works there.
    assert!(
        login(&client, "jwt-app2", "eso", &eso_token(app2))
            .await
            .is_ok()
    );
    // Another service account of app1 is not ESO.
    let other = login(
        &client,
        "jwt-app1",
        "eso",
        &app1.token("default", "default"),
    )
    .await;
    assert!(
        matches!(other, Err(400..=403)),
        "{:?}",
        other.map(|_| "accepted")
    );
    // A key no cluster has.
    let stranger = ClusterKey::new("app1");
    let forged = login(&client, "jwt-app1", "eso", &eso_token(&stranger)).await;
    assert!(
        matches!(forged, Err(400..=403)),
        "{:?}",
        forged.map(|_| "accepted")
    );
}
