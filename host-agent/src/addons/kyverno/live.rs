//! Kyverno as a running cluster shows it: whether its admission controller
//! runs, which `ValidatingPolicy` objects deny (enforce) and which only
//! audit, and how many audit violations the reports controller has filed.
//! `status` prints it per cluster and `verify`'s C4 judges it, so both read
//! it here and agree.
//!
//! Violations come from the reports Kyverno 1.19 writes by default:
//! `wgpolicyk8s.io/v1alpha2` PolicyReports (namespaced) and
//! ClusterPolicyReports (the pinned chart leaves `openreports.enabled`
//! off, so no `openreports.io` reports exist). A `fail` result of an
//! audited policy is one violation; results of enforcing policies are not
//! counted, because admission refused those objects.

use super::NAMESPACE;
use crate::cluster_api::read::get_json;
use serde::Serialize;
use serde_json::Value;

/// Where the admission controller runs when Kyverno is installed (the
/// chart's Deployment).
pub fn admission_path() -> String {
    format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/kyverno-admission-controller")
}
/// Every ValidatingPolicy (cluster-scoped).
pub const POLICIES_PATH: &str = "/apis/policies.kyverno.io/v1/validatingpolicies";
/// Every namespace's PolicyReports.
pub const REPORTS_PATH: &str = "/apis/wgpolicyk8s.io/v1alpha2/policyreports";
/// The cluster-scoped reports (for cluster-scoped resources).
pub const CLUSTER_REPORTS_PATH: &str = "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports";

/// One cluster's Kyverno.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KyvernoLive {
    /// The admission controller's Deployment exists.
    pub admission: bool,
    /// Policies whose `validationActions` include `Deny`.
    pub enforced: Vec<String>,
    /// Policies that only `Audit` (or `Warn`).
    pub audited: Vec<String>,
    /// `fail` results of the audited policies across every report.
    pub audit_violations: u64,
}

/// Reads the cluster's Kyverno (three or four bounded GETs). A cluster
/// without Kyverno answers `admission: false` and no policies.
pub async fn read(client: &kube::Client) -> Result<KyvernoLive, String> {
    let admission = get_json(client, &admission_path()).await?.is_some();
    let policies = get_json(client, POLICIES_PATH).await?;
    let (enforced, audited) = policies.as_ref().map(modes).unwrap_or_default();
    let mut reports = Vec::new();
    if !audited.is_empty() {
        for path in [REPORTS_PATH, CLUSTER_REPORTS_PATH] {
            reports.extend(get_json(client, path).await?);
        }
    }
    Ok(KyvernoLive {
        admission,
        audit_violations: audit_violations(&reports, &audited),
        enforced,
        audited,
    })
}

/// `(enforced, audited)` policy names of a ValidatingPolicy list.
pub fn modes(list: &Value) -> (Vec<String>, Vec<String>) {
    let mut enforced = Vec::new();
    let mut audited = Vec::new();
    for p in list["items"].as_array().into_iter().flatten() {
        let name = p["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        let denies = p["spec"]["validationActions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "Deny"));
        match denies {
            true => enforced.push(name),
            false => audited.push(name),
        }
    }
    (enforced, audited)
}

/// The `fail` results of `audited` policies in report lists.
pub fn audit_violations(report_lists: &[Value], audited: &[String]) -> u64 {
    report_lists
        .iter()
        .flat_map(|l| l["items"].as_array().into_iter().flatten())
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .filter(|r| r["result"] == "fail")
        .filter(|r| {
            r["policy"]
                .as_str()
                .is_some_and(|p| audited.iter().any(|a| a == p))
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shaped as Kyverno 1.19 serves them: `policies.kyverno.io/v1`
    /// ValidatingPolicy (`spec.validationActions`), and the reports
    /// controller's `wgpolicyk8s.io/v1alpha2` PolicyReport results
    /// (`policy`, `rule`, `result`, `source: KyvernoValidatingPolicy`).
    #[test]
    fn policies_split_by_action_and_only_audited_failures_count() {
        let policies = json!({"items": [
            {"metadata": {"name": "restrict-image-registries"}, "spec": {"validationActions": ["Deny"]}},
            {"metadata": {"name": "require-app-version-labels"}, "spec": {"validationActions": ["Audit"]}},
            {"metadata": {"name": "disallow-privileged"}, "spec": {"validationActions": ["Deny", "Audit"]}},
        ]});
        let (enforced, audited) = modes(&policies);
        assert_eq!(
            enforced,
            ["restrict-image-registries", "disallow-privileged"]
        );
        assert_eq!(audited, ["require-app-version-labels"]);
        let result = |policy: &str, result: &str| json!({"policy": policy, "rule": "r", "result": result, "source": "KyvernoValidatingPolicy"});
        let reports = json!({"items": [
            {"metadata": {"namespace": "shop"}, "results": [
                result("require-app-version-labels", "fail"),
                result("require-app-version-labels", "pass"),
                result("restrict-image-registries", "fail"),
            ]},
            {"metadata": {"namespace": "web"}, "results": [result("require-app-version-labels", "fail")]},
            {"metadata": {"namespace": "empty"}},
        ]});
        assert_eq!(audit_violations(&[reports, json!({})], &audited), 2);
        assert_eq!(audit_violations(&[], &audited), 0);
    }
}
