//! `hostctl kubeconfig`: minting from the cluster CAs and merging into a
//! user's kubeconfig without disturbing other entries.

use host_agent::cluster_api::merge::{
    entry_names, merge, merge_into_file, remove_from_file, target_path,
};
use serde_json::Value;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A kubeconfig the user already has: another cluster (kind), a stale
/// `mgmt` entry from an earlier run, unknown fields, and a current context.
const EXISTING: &str = r#"apiVersion: v1
kind: Config
preferences:
  colors: true
current-context: kind-dev
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:40000
    certificate-authority-data: AAAA
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {audience: x}
- name: mgmt
  cluster:
    server: https://10.9.9.9:6443
    certificate-authority-data: STALE
users:
- name: kind-dev
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: kind-token
- name: mgmt-admin
  user: {client-certificate-data: STALE, client-key-data: STALE}
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: kind-dev, namespace: web}
- name: mgmt
  context: {cluster: mgmt, user: mgmt-admin}
"#;

fn incoming(cluster: &str, server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n    certificate-authority-data: NEWCA\n\
         users:\n- name: {cluster}-admin\n  user:\n    client-certificate-data: NEWCERT\n    client-key-data: NEWKEY\n\
         contexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: {cluster}-admin\ncurrent-context: {cluster}\n"
    )
}

fn parse(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).expect("merged output is YAML")
}

fn names(doc: &Value, section: &str) -> Vec<String> {
    doc[section]
        .as_array()
        .expect("section is a list")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn entry<'a>(doc: &'a Value, section: &str, name: &str) -> &'a Value {
    doc[section]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("{section} has no {name}"))
}

#[test]
fn merge_keeps_other_entries_and_replaces_stale_hostctl_ones() {
    let new = [
        incoming("mgmt", "https://192.168.64.10:6443"),
        incoming("app1", "https://192.168.64.20:6443"),
    ];
    let doc = parse(&merge(EXISTING, "config", &new, None).expect("merge"));
    assert_eq!(names(&doc, "clusters"), ["kind-dev", "mgmt", "app1"]);
    assert_eq!(
        names(&doc, "users"),
        ["kind-dev", "mgmt-admin", "app1-admin"]
    );
    assert_eq!(names(&doc, "contexts"), ["kind-dev", "mgmt", "app1"]);
    // the stale mgmt entries are replaced, not duplicated
    let mgmt = entry(&doc, "clusters", "mgmt");
    assert_eq!(mgmt["cluster"]["server"], "https://192.168.64.10:6443");
    assert_eq!(mgmt["cluster"]["certificate-authority-data"], "NEWCA");
    assert_eq!(
        entry(&doc, "users", "mgmt-admin")["user"]["client-key-data"],
        "NEWKEY"
    );
    // everything else is kept as it was, unknown fields included
    let before = parse(EXISTING);
    for (section, name) in [
        ("clusters", "kind-dev"),
        ("users", "kind-dev"),
        ("contexts", "kind-dev"),
    ] {
        assert_eq!(entry(&doc, section, name), entry(&before, section, name));
    }
    assert_eq!(doc["preferences"], before["preferences"]);
    // the user's current context is not moved
    assert_eq!(doc["current-context"], "kind-dev");
}

#[test]
fn switch_sets_the_current_context_and_unset_one_is_filled() {
    let new = [incoming("app2", "https://192.168.64.30:6443")];
    let doc = parse(&merge(EXISTING, "config", &new, Some("app2")).expect("merge"));
    assert_eq!(doc["current-context"], "app2");
    let empty = parse(&merge("", "config", &new, None).expect("merge"));
    assert_eq!(empty["current-context"], "app2");
    assert_eq!(empty["kind"], "Config");
}

#[test]
fn a_file_that_is_not_a_kubeconfig_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config");
    std::fs::write(&path, "clusters: 5\n").expect("write");
    let err = merge_into_file(&path, &[incoming("mgmt", "https://x:6443")], None)
        .expect_err("clusters is not a list");
    assert!(
        err.to_string().contains("`clusters` is not a list"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "clusters: 5\n"
    );
}

#[test]
fn merge_into_file_creates_the_file_0600_and_rewrites_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/.kube/config");
    merge_into_file(
        &path,
        &[incoming("mgmt", "https://192.168.64.10:6443")],
        None,
    )
    .expect("create");
    assert_eq!(mode(&path), 0o600);
    let doc = parse(&std::fs::read_to_string(&path).expect("read"));
    assert_eq!(names(&doc, "contexts"), ["mgmt"]);

    std::fs::write(&path, EXISTING).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    merge_into_file(
        &path,
        &[incoming("mgmt", "https://192.168.64.10:6443")],
        None,
    )
    .expect("merge");
    assert_eq!(mode(&path), 0o600, "a file holding keys is tightened");
}

#[test]
fn target_is_the_first_kubeconfig_path_else_home_kube_config() {
    let env = OsString::from(":/tmp/a/config:/tmp/b/config");
    assert_eq!(
        target_path(Some(&env), Some(Path::new("/home/u"))),
        Some("/tmp/a/config".into())
    );
    assert_eq!(
        target_path(None, Some(Path::new("/home/u"))),
        Some("/home/u/.kube/config".into())
    );
    assert_eq!(
        target_path(Some(&OsString::new()), Some(Path::new("/home/u"))),
        Some("/home/u/.kube/config".into())
    );
    assert_eq!(target_path(None, None), None);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn hostctl(home: &Path, envs: &[(&str, &OsString)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostctl"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .current_dir(home)
        .env_remove("KUBECONFIG")
        .env_remove("HOSTCTL_TOPOLOGY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run hostctl")
}

fn init_pki(home: &Path) {
    let topology = topology::default_topology();
    certs::Pki::open_or_init(
        home,
        &host_agent::pki::spec_for(&topology.resolve(None).expect("resolves")),
    )
    .expect("pki");
}

#[test]
fn cli_prints_all_three_contexts_minted_from_the_cluster_cas() {
    let home = private_home();
    init_pki(home.path());
    let out = hostctl(home.path(), &[], &["kubeconfig"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(names(&doc, "contexts"), ["mgmt", "app1", "app2"]);
    assert_eq!(
        names(&doc, "users"),
        ["mgmt-admin", "app1-admin", "app2-admin"]
    );
    let pki = certs::Pki::open(home.path()).expect("open");
    for c in ["mgmt", "app1", "app2"] {
        let cluster = &entry(&doc, "clusters", c)["cluster"];
        let ca = cluster["certificate-authority-data"].as_str().expect("ca");
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .expect("b64");
        assert_eq!(
            String::from_utf8(ca).expect("pem"),
            pki.cluster(c).expect("cluster").ca_cert_pem()
        );
        let server = cluster["server"].as_str().expect("server");
        assert!(
            server.starts_with("https://192.168.") && server.ends_with(":6443"),
            "{server}"
        );
    }
}

#[test]
fn cli_merge_writes_the_first_kubeconfig_path_and_keeps_the_rest() {
    let home = private_home();
    init_pki(home.path());
    let first = home.path().join("first/config");
    let second = home.path().join("second/config");
    std::fs::create_dir_all(first.parent().expect("parent")).expect("mkdir");
    std::fs::write(&first, EXISTING).expect("write");
    let env = std::env::join_paths([&first, &second]).expect("join");
    let out = hostctl(
        home.path(),
        &[("KUBECONFIG", &env)],
        &["kubeconfig", "app1", "--merge"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!second.exists(), "only the first path is written");
    let doc = parse(&std::fs::read_to_string(&first).expect("read"));
    assert_eq!(names(&doc, "contexts"), ["kind-dev", "mgmt", "app1"]);
    assert_eq!(doc["current-context"], "kind-dev");
    assert_eq!(mode(&first), 0o600);

    let unknown = hostctl(home.path(), &[], &["kubeconfig", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no cluster nope"));
}

/// The parallel `kubeconfig/<cluster>` steps of one `up` merge into the same
/// file at once: none may fail, none may lose another's entries.
#[test]
fn fifty_parallel_merges_lose_no_context_and_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("kube/config");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, EXISTING).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let target = &target;
                scope.spawn(move || {
                    let kc = incoming(&format!("c{i}"), &format!("https://10.0.{i}.1:6443"));
                    merge_into_file(target, &[kc], None)
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            h.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("merge {i} failed: {e}"));
        }
    });
    let doc = parse(&std::fs::read_to_string(&target).unwrap());
    let contexts = names(&doc, "contexts");
    for i in 0..50 {
        assert!(
            contexts.contains(&format!("c{i}")),
            "c{i} lost: {contexts:?}"
        );
    }
    assert!(contexts.contains(&"kind-dev".to_owned()), "{contexts:?}");
    assert_eq!(doc["current-context"], "kind-dev");
    assert!(
        !dir.path().join("kube/config.lock").exists(),
        "lock left behind"
    );
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "config")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// kubectl's own lock (`<file>.lock`, created exclusively) is honoured: a
/// merge waits for it instead of overwriting kubectl's change.
#[test]
fn a_merge_waits_for_kubectls_lock() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("config");
    let lock = dir.path().join("config.lock");
    std::fs::write(&lock, "").unwrap();
    std::thread::scope(|scope| {
        let merging =
            scope.spawn(|| merge_into_file(&target, &[incoming("mgmt", "https://x:6443")], None));
        // Not a timing assertion: the merge cannot have written while the
        // lock exists, whenever this check runs.
        assert!(!target.exists(), "merged while kubectl held the lock");
        std::fs::remove_file(&lock).unwrap();
        merging.join().unwrap().unwrap();
    });
    assert_eq!(
        names(
            &parse(&std::fs::read_to_string(&target).unwrap()),
            "contexts"
        ),
        ["mgmt"]
    );
}

/// `down --purge` removes exactly what `up` merged.
#[test]
fn removing_the_merged_entries_leaves_the_users_own() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("config");
    std::fs::write(&target, EXISTING).unwrap();
    let kc = incoming("app1", "https://192.168.252.20:6443");
    merge_into_file(&target, std::slice::from_ref(&kc), Some("app1")).unwrap();
    let added = entry_names(&kc).unwrap();
    assert_eq!(added, ["app1", "app1-admin"]);
    remove_from_file(&target, &added).unwrap();
    let doc = parse(&std::fs::read_to_string(&target).unwrap());
    assert_eq!(names(&doc, "contexts"), ["kind-dev", "mgmt"]);
    assert_eq!(names(&doc, "users"), ["kind-dev", "mgmt-admin"]);
    assert_eq!(
        doc["current-context"], "",
        "the removed context was current"
    );
    assert_eq!(doc["preferences"]["colors"], true, "other fields kept");
    remove_from_file(&dir.path().join("absent"), &added).unwrap();
}

/// A temporary home hostctl accepts: closed to other users, as it
/// requires of every home.
fn private_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod 700");
    home
}
