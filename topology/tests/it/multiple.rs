//! Validation collects every problem, not only the first.

use topology::{ByteSize, check_host_capacity, default_topology, default_yaml, parse};

#[test]
fn three_distinct_problems_are_all_reported() {
    let src = default_yaml()
        .replacen("    memory: 4GiB\n", "    memory: 1GiB\n", 1) // mgmt-cp below kubeadm's minimum
        .replace("podCidr: 10.102.0.0/16", "podCidr: 10.101.0.0/16") // app2 shares app1's pods
        .replace("    address: 31\n", "    address: 30\n"); // app2-worker-0 on app2-cp's address
    let err = parse(&src, "topology.yaml").unwrap_err();
    let errors: Vec<(&str, usize)> = err
        .errors()
        .map(|d| (d.path.as_str(), d.line.unwrap_or(0)))
        .collect();
    let paths: Vec<&str> = errors.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        paths,
        ["clusters[2].podCidr", "nodes[0].memory", "nodes[5].address"],
        "{err}"
    );
    assert!(errors.iter().all(|(_, line)| *line > 0), "{err}");
    assert!(err.to_string().ends_with("3 errors, 0 warnings"), "{err}");
}

#[test]
fn shape_problems_are_all_reported_in_one_pass() {
    let src = default_yaml()
        .replacen("    cpus: 2\n", "    cpus: two\n", 1)
        .replace("serviceCidr: 10.97.0.0/16", "serviceCIDR: 10.97.0.0/16")
        .replace("    disk: 30GiB\n", "    disk: 30\n");
    let err = parse(&src, "topology.yaml").unwrap_err();
    let paths: Vec<&str> = err.errors().map(|d| d.path.as_str()).collect();
    for expected in [
        "nodes[0].cpus",
        "clusters[1].serviceCIDR",
        "clusters[1].serviceCidr",
        "nodes[2].disk",
        "nodes[4].disk",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
}

#[test]
fn host_capacity_warns_with_the_numbers() {
    let t = default_topology();
    let d =
        check_host_capacity(&t, ByteSize::gib(16).bytes()).expect("24GiB of VMs on a 16GiB host");
    assert!(!d.is_error());
    for number in ["24GiB", "16GiB", "12GiB", "4GiB", "6 VMs"] {
        assert!(d.message.contains(number), "{number} missing: {d}");
    }
    assert!(d.fix.contains("12GiB"), "{d}");
    assert_eq!(check_host_capacity(&t, ByteSize::gib(32).bytes()), None);
    // Exactly enough (24GiB for VMs + 4GiB kept) is fine; one byte less is not.
    assert_eq!(check_host_capacity(&t, ByteSize::gib(28).bytes()), None);
    assert!(check_host_capacity(&t, ByteSize::gib(28).bytes() - 1).is_some());
    assert!(check_host_capacity(&t, 0).is_some());
}

#[test]
fn diagnostics_serialize_for_json_output() {
    let err = parse("kind: Topology\n", "t.yaml").unwrap_err();
    let json = serde_json::to_value(&err).unwrap();
    let first = &json[0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "t.yaml");
    assert!(first["line"].is_u64());
    assert!(first["path"].is_string() && first["fix"].is_string());
}

#[test]
fn load_file_reports_unreadable_and_non_utf8_files() {
    let dir = std::env::temp_dir().join(format!("topology-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.yaml");
    let err = topology::load_file(&missing).unwrap_err();
    assert!(err.0[0].message.contains("cannot read"), "{err}");
    assert_eq!(err.0[0].file, missing.display().to_string());
    let binary = dir.join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let err = topology::load_file(&binary).unwrap_err();
    assert!(err.0[0].message.contains("not UTF-8"), "{err}");
    let good = dir.join("topology.yaml");
    std::fs::write(&good, default_yaml()).unwrap();
    assert_eq!(
        topology::load_file(&good).unwrap().topology,
        default_topology()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
