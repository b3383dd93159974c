//! Upstream is the schema: everything `hostctl render` writes for the
//! default topology is checked by the shared tools against the pinned
//! charts and the Kubernetes 1.35 + CRD schemas — every add-on values file
//! with `check-values-keys --strict` (the chart's own key list), Cilium's
//! with the Cilium key list, and every manifest (base, add-on, and the
//! platform tree Argo CD syncs) with `validate-manifests`. The tools live in `../shared/tools`.

use crate::cluster_config_support::default_resolved;
use host_agent::addons::catalogue;
use host_agent::addons::render::PlatformSource;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// Whether python3 can import what the tools need.
pub(crate) fn tools_usable(test: &str) -> bool {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import yaml, jsonschema, referencing, kubernetes_validate",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        _ => {
            return test_support::skip(
                test,
                "python3 lacks pyyaml/jsonschema/kubernetes-validate (pip install kubernetes-validate)",
            );
        }
    }
    if !shared().join("tools/validate-manifests").is_file() {
        return test_support::skip(test, "../shared/tools is not beside the work tree");
    }
    true
}

pub(crate) fn run(tool: &str, args: &[PathBuf]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(shared().join("tools").join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn files_in(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_in(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The default topology rendered as `hostctl render` writes it.
fn rendered() -> (tempfile::TempDir, Vec<PathBuf>) {
    let out = tempfile::tempdir().unwrap();
    let resolved = default_resolved();
    let platform = PlatformSource::served_by_host(&resolved, None);
    host_agent::cluster_config::render_all(&resolved, None, &platform, out.path()).unwrap();
    let mut files = Vec::new();
    files_in(&out.path().join("clusters"), &mut files);
    files_in(&out.path().join("platform"), &mut files);
    (out, files)
}

#[test]
fn every_addon_values_file_uses_only_keys_of_its_pinned_chart() {
    if !tools_usable("addon values keys") {
        return;
    }
    let (_dir, files) = rendered();
    let values: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.ends_with("values.yaml") && p.to_string_lossy().contains("/addons/"))
        .collect();
    assert!(!values.is_empty(), "no add-on values rendered: {files:?}");
    for file in values {
        let addon = file
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let chart = catalogue::Addon::named(addon)
            .and_then(|a| a.chart)
            .unwrap_or_else(|| panic!("{}: no charted add-on {addon}", file.display()));
        let keys = shared().join(format!(
            "reference/charts/{}-{}-values-keys.json",
            chart.name, chart.version
        ));
        assert!(
            keys.is_file(),
            "{}: the pinned chart {} {} has no key list in ../shared/reference/charts",
            file.display(),
            chart.name,
            chart.version
        );
        let (ok, text) = run(
            "check-values-keys",
            &["--strict".into(), keys, file.clone()],
        );
        assert!(ok, "{}:\n{text}", file.display());
    }
}

#[test]
fn cilium_values_use_only_keys_of_the_cilium_chart() {
    if !tools_usable("cilium values keys") {
        return;
    }
    let (_dir, files) = rendered();
    let mut args = vec![shared().join("reference/fixtures/cilium-values-keys.json")];
    args.extend(
        files
            .iter()
            .filter(|p| p.ends_with("cilium-values.yaml"))
            .cloned(),
    );
    assert_eq!(args.len(), 4, "one Cilium values file per cluster");
    let (ok, text) = run("check-values-keys", &args);
    assert!(ok, "{text}");
}

#[test]
fn every_rendered_manifest_passes_the_kubernetes_and_crd_schemas() {
    if !tools_usable("manifest schemas") {
        return;
    }
    let (_dir, files) = rendered();
    let manifests: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            p.contains("/manifests/") || p.contains("/platform/")
        })
        .collect();
    // Base manifests of three clusters and the add-ons' objects (mgmt's
    // Argo CD, the app clusters' binding) are all there.
    for want in [
        "mgmt/addons/argocd-platform/manifests/10-clusters.yaml",
        "mgmt/addons/argocd-platform/manifests/20-platform.yaml",
        "app1/addons/argocd-access/manifests/10-argocd-access.yaml",
        "app2/addons/lab-ca/manifests/10-lab-ca.yaml",
        "app2/manifests/30-metallb.yaml",
        "platform/mgmt/hostctl-platform.yaml",
        "platform/app/hostctl-platform.yaml",
    ] {
        assert!(
            manifests.iter().any(|p| p.ends_with(want)),
            "{want} not rendered: {manifests:?}"
        );
    }
    let (ok, text) = run("validate-manifests", &manifests);
    assert!(ok, "{text}");
    assert!(text.contains("0 invalid"), "{text}");
}

/// A broken object is caught: the check can fail.
#[test]
fn the_schema_check_refuses_an_applicationset_with_an_unknown_field() {
    if !tools_usable("manifest schema refusal") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: x, namespace: argocd}\n\
         spec:\n  generators: []\n  template:\n    metadata: {}\n    spec:\n      project: p\n      \
         destination: {server: s}\n  notAField: true\n",
    )
    .unwrap();
    let (ok, text) = run("validate-manifests", &[bad]);
    assert!(!ok, "an unknown field passed:\n{text}");
}

/// Every object an add-on renders, and every custom resource its
/// readiness reads, is of a kind hostctl knows how to apply and read
/// (`cluster_api::resources`): a missing kind would fail only at install.
#[test]
fn every_addon_object_and_readiness_kind_is_in_the_resource_table() {
    let (_dir, files) = rendered();
    let mut seen = 0;
    for file in files
        .iter()
        .filter(|p| p.to_string_lossy().contains("/addons/"))
    {
        if file.ends_with("values.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for doc in text.split("\n---\n").skip(1) {
            let top = |key: &str| {
                doc.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (api_version, kind) = (top("apiVersion: "), top("kind: "));
            assert!(
                host_agent::cluster_api::resources::lookup(&api_version, &kind).is_some(),
                "{}: {api_version} {kind} is not in cluster_api::resources",
                file.display()
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "only {seen} add-on objects rendered");
    for addon in catalogue::catalogue() {
        for r in addon.readiness {
            if let host_agent::addons::Readiness::Condition(c) = r {
                assert!(
                    host_agent::cluster_api::resources::lookup(c.api_version, c.kind).is_some(),
                    "{}: readiness reads {} {}, not in the table",
                    addon.name,
                    c.api_version,
                    c.kind
                );
            }
        }
    }
}
