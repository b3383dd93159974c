//! `hostctl verify --drill vault-down` against the real OpenBao server `up`
//! bootstrapped for mgmt: Vault is sealed with hostctl's admin token (its
//! policy grants `sys/seal`), the Secret External Secrets synced on mgmt
//! (held by the stand-in API server, shaped as ESO v1 publishes it) stays,
//! Vault is unsealed with the key hostctl keeps, and the result is recorded.

use super::Rig;
use serde_json::{Value, json};
use tests::bootstrap::NetnsApi;

pub(super) fn vault_down(rig: &Rig, api: &NetnsApi, vault_address: &str) {
    {
        let mut s = api.state.lock().expect("state");
        s.objects.insert(
            "/apis/external-secrets.io/v1/externalsecrets".into(),
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecretList", "metadata": {},
                "items": [{"metadata": {"name": "platform-sample", "namespace": "external-secrets"},
                    "spec": {"refreshInterval": "1h", "target": {"name": "platform-sample"}},
                    "status": {"conditions": [{"type": "Ready", "status": "True",
                        "reason": "SecretSynced", "message": "secret synced"}]}}]}),
        );
        s.objects.insert(
            "/api/v1/namespaces/external-secrets/secrets/platform-sample".into(),
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {"name": "platform-sample", "namespace": "external-secrets"}}),
        );
    }
    let vars = [
        ("HOSTCTL_VAULT_ADDRESS", vault_address),
        ("HOSTCTL_DRILL_DEADLINE_SECS", "120"),
    ];
    let out = rig
        .env
        .hostctl_with_env(&["-o", "json", "verify", "--drill", "vault-down"], &vars);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["outcome"], "passed", "{report:#}");
    let verdicts: Vec<(&str, &str)> = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| {
            (
                o["promise"].as_str().unwrap_or_default(),
                o["verdict"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("Vault can be taken away: sealed for the drill", "holds"),
            ("synced secrets stay while Vault is sealed", "holds"),
            (
                "after the unseal with hostctl's key, ExternalSecrets sync again",
                "holds"
            ),
        ],
        "{report:#}"
    );
    assert!(
        report["observations"][1]["observed"][0]
            .as_str()
            .is_some_and(|s| s.contains("Secret platform-sample present")),
        "{report:#}"
    );
    // Vault is open again, and the drill left no marker behind.
    let said = rig
        .env
        .hostctl_with_env(&["-o", "json", "vault", "status"], &vars[..1]);
    let status: Value = serde_json::from_slice(&said.stdout).expect("vault status json");
    assert_eq!(status["sealed"], false, "{status}");
    assert!(
        !rig.env
            .home()
            .join("drills/vault-down.running.json")
            .exists()
    );
    assert!(rig.env.home().join("drills/vault-down.json").exists());
    // verify's VAULT fact reads the same server: unsealed again.
    let out = rig
        .env
        .hostctl_with_env(&["-o", "json", "verify", "--cluster", "mgmt"], &vars[..1]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify json");
    let fact = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["contract"] == "VAULT")
        .unwrap_or_else(|| panic!("no VAULT fact: {report:#}"));
    assert_eq!(fact["verdict"], "holds", "{fact:#}");
}
