use super::*;

const GOOD: &str = r#"
node: app1-cp
cluster: app1
controlPlane: true
host:
  enrolEndpoint: 192.168.64.1:7444
  endpoint: 192.168.64.1:7443
  serverName: 192.168.64.1
caPem: |
  -----BEGIN CERTIFICATE-----
  AAAA
  -----END CERTIFICATE-----
enrolmentToken: "s3cr3t"
stateDir: /var/lib/hostctl-agent
listen: 192.168.64.20:7445
reportIntervalSeconds: 10
bufferCapacity: 1000
root: /
logSource: journald
commandRunner: record
"#;

fn error(text: &str) -> String {
    NodeConfig::from_yaml(text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn full_example_parses() -> Result<(), DocumentError> {
    let c = NodeConfig::from_yaml(GOOD)?;
    assert_eq!(c.node, "app1-cp");
    assert!(c.control_plane);
    assert_eq!(c.listen.port(), 7445);
    assert_eq!(c.log_source, LogSourceKind::Journald);
    assert_eq!(c.command_runner, CommandRunnerKind::Record);
    assert_eq!(
        c.enrolment_token.as_ref().map(Secret::expose),
        Some("s3cr3t")
    );
    assert!(
        !format!("{c:?}").contains("s3cr3t"),
        "token leaked into Debug"
    );
    assert_eq!(c.etcd, EtcdSettings::default());
    assert_eq!(c.kubeadm, KubeadmSettings::default());
    Ok(())
}

#[test]
fn round_trips_through_yaml() -> Result<(), Box<dyn std::error::Error>> {
    let mut c = NodeConfig::from_yaml(GOOD)?;
    c.kubeadm.join_attempts = 2;
    c.etcd.snapshot.keep_local = 7;
    assert_eq!(NodeConfig::from_yaml(&c.to_yaml()?)?, c);
    Ok(())
}

#[test]
fn defaulted_sections_and_fields_are_not_written() -> Result<(), Box<dyn std::error::Error>> {
    let mut c = NodeConfig::from_yaml(GOOD)?;
    let yaml = c.to_yaml()?;
    assert!(
        !yaml.contains("etcd") && !yaml.contains("kubeadm"),
        "{yaml}"
    );
    c.kubeadm = KubeadmSettings::always_running("/opt/kubeadm".into());
    let yaml = c.to_yaml()?;
    assert!(
        yaml.ends_with(
            "commandRunner: record\nkubeadm:\n  binary: /opt/kubeadm\n  alwaysRun: true\n"
        ),
        "{yaml}"
    );
    Ok(())
}

#[test]
fn unknown_field_is_named() {
    let err = error(&GOOD.replace("bufferCapacity", "bufferCapacty"));
    assert!(err.contains("bufferCapacty"), "{err}");
    let err = error(&format!("{GOOD}kubeadm:\n  joinAttempt: 3\n"));
    assert!(err.contains("joinAttempt"), "{err}");
}

#[test]
fn bad_values_are_named() {
    for (from, to, field) in [
        (
            "reportIntervalSeconds: 10",
            "reportIntervalSeconds: 0",
            "reportIntervalSeconds",
        ),
        (
            "endpoint: 192.168.64.1:7443",
            "endpoint: nowhere",
            "host.endpoint",
        ),
        ("node: app1-cp", "node: \"a b\"", "node"),
        (
            "enrolmentToken: \"s3cr3t\"",
            "enrolmentToken: \"\"",
            "enrolmentToken",
        ),
    ] {
        let err = error(&GOOD.replace(from, to));
        assert!(err.contains(&format!("field `{field}`")), "{from} -> {err}");
    }
}

#[test]
fn rooted_joins_absolute_paths() {
    assert_eq!(
        rooted(Path::new("/tmp/n1"), "/etc/cni/net.d"),
        PathBuf::from("/tmp/n1/etc/cni/net.d")
    );
    assert_eq!(rooted(Path::new("/"), "/etc"), PathBuf::from("/etc"));
}
