//! What each cluster's secret store and phase-2 issuer say, as rendered:
//! every cluster logs in to mgmt's Vault (at its reserved address, trusting
//! the lab root from phase 1's Secret) with its own identity on its own
//! JWT mount, cert-manager signs through Vault's cert-manager role, and
//! every ExternalSecret hostctl renders refreshes hourly (C3).

use crate::cluster_config_support::addon_objects;
use serde_json::Value;

fn objects(cluster: &str, addon: &str) -> Vec<Value> {
    addon_objects(None, cluster, addon)
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn every_cluster_reaches_mgmts_vault_with_its_own_identity() {
    for cluster in ["mgmt", "app1", "app2"] {
        let store_objects = objects(cluster, "secret-store");
        let stores = kind(&store_objects, "ClusterSecretStore");
        assert_eq!(stores.len(), 1, "{cluster}");
        let vault = &stores[0]["spec"]["provider"]["vault"];
        assert_eq!(vault["server"], "https://192.168.64.201:8200", "{cluster}");
        assert_eq!(vault["caProvider"]["name"], "lab-ca");
        assert_eq!(vault["caProvider"]["namespace"], "cert-manager");
        let jwt = &vault["auth"]["jwt"];
        assert_eq!(jwt["path"], format!("jwt-{cluster}"));
        assert_eq!(jwt["role"], "eso");
        assert_eq!(
            jwt["kubernetesServiceAccountToken"]["serviceAccountRef"]["name"],
            "external-secrets"
        );
        for es in kind(&store_objects, "ExternalSecret") {
            assert_eq!(es["spec"]["refreshInterval"], "1h", "C3: {es}");
            assert_eq!(es["spec"]["secretStoreRef"]["kind"], "ClusterSecretStore");
            let key = es["spec"]["data"][0]["remoteRef"]["key"]
                .as_str()
                .unwrap_or_default();
            assert!(
                key.starts_with(&format!("{cluster}/")),
                "{key}: outside {cluster}'s path"
            );
        }

        let issuer_objects = objects(cluster, "vault-issuer");
        let issuers = kind(&issuer_objects, "ClusterIssuer");
        assert_eq!(issuers.len(), 1);
        let v = &issuers[0]["spec"]["vault"];
        assert_eq!(v["path"], "pki_int/sign/cert-manager");
        assert_eq!(v["caBundleSecretRef"]["name"], "lab-ca");
        assert_eq!(
            v["auth"]["kubernetes"]["mountPath"],
            format!("/v1/auth/jwt-{cluster}")
        );
        assert_eq!(v["auth"]["kubernetes"]["role"], "cert-manager");
        // cert-manager may mint tokens for that one account only.
        let roles = kind(&issuer_objects, "Role");
        assert_eq!(
            roles[0]["rules"][0]["resourceNames"][0],
            "cert-manager-vault"
        );
    }
}
