//! The optional `mirrors:` and `backups:` sections: parsed when given, absent by default.

use topology::{default_topology, parse};

fn with_mirrors(section: &str) -> String {
    format!("{}{section}", topology::default_yaml())
}

#[test]
fn mirrors_parse_and_the_default_has_none() {
    assert_eq!(default_topology().mirrors, None);
    let loaded = parse(
        &with_mirrors(
            "mirrors:\n  aptProxy: http://192.168.64.1:8081\n  registryMirror: https://192.168.64.1:8443/\n  aptRepository: http://192.168.64.1:8082/debs/\n",
        ),
        "t.yaml",
    )
    .expect("valid mirrors load");
    let m = loaded.topology.mirrors.expect("mirrors kept");
    assert_eq!(
        m.apt_proxy.map(|u| u.to_string()).as_deref(),
        Some("http://192.168.64.1:8081")
    );
    assert_eq!(
        m.registry_mirror.map(|u| u.to_string()).as_deref(),
        Some("https://192.168.64.1:8443")
    );
    assert_eq!(
        m.apt_repository.map(|u| u.to_string()).as_deref(),
        Some("http://192.168.64.1:8082/debs")
    );
}

#[test]
fn mirrors_survive_emit_and_parse() {
    let text = with_mirrors("mirrors:\n  aptRepository: http://10.0.0.1:8082\n");
    let loaded = parse(&text, "t.yaml").expect("valid mirrors load");
    let again = parse(&loaded.topology.to_yaml(), "emitted.yaml").expect("emitted loads");
    assert_eq!(again.topology.mirrors, loaded.topology.mirrors);
}

#[test]
fn a_bad_mirror_url_is_reported_with_path_and_line() {
    for key in ["registryMirror", "aptRepository"] {
        let text = with_mirrors(&format!("mirrors:\n  {key}: \"harbor:8443\"\n"));
        let line = text.lines().count();
        let Err(err) = parse(&text, "t.yaml") else {
            panic!("a bad URL loaded");
        };
        let path = format!("mirrors.{key}");
        let d = err
            .0
            .iter()
            .find(|d| d.path == path)
            .unwrap_or_else(|| panic!("no diagnostic at {path}: {err:?}"));
        assert_eq!(d.line, Some(line), "{d:?}");
        assert!(d.message.contains("http://"), "{}", d.message);
    }
}

#[test]
fn managed_mirrors_parse_survive_emit_and_are_off_by_default() {
    assert!(!default_topology().managed_mirrors());
    let loaded = parse(&with_mirrors("mirrors:\n  managed: true\n"), "t.yaml").expect("loads");
    assert!(loaded.topology.managed_mirrors());
    let again = parse(&loaded.topology.to_yaml(), "emitted.yaml").expect("emitted loads");
    assert!(again.topology.managed_mirrors());
    let off = parse(&with_mirrors("mirrors:\n  managed: false\n"), "t.yaml").expect("loads");
    assert!(!off.topology.managed_mirrors());
}

#[test]
fn managed_mirrors_refuse_urls_of_the_users_own_and_a_non_boolean() {
    let text = with_mirrors("mirrors:\n  managed: true\n  registryMirror: https://h:8443\n");
    let line = text.lines().count();
    let Err(err) = parse(&text, "t.yaml") else {
        panic!("managed with a registryMirror loaded");
    };
    let d = err
        .0
        .iter()
        .find(|d| d.path == "mirrors.registryMirror")
        .unwrap_or_else(|| panic!("no diagnostic at mirrors.registryMirror: {err:?}"));
    assert_eq!(d.line, Some(line), "{d:?}");
    assert!(d.message.contains("managed: true"), "{}", d.message);
    assert!(d.fix.contains("remove `registryMirror`"), "{}", d.fix);
    assert!(err.to_string().contains("t.yaml"), "{err}");

    let Err(err) = parse(&with_mirrors("mirrors:\n  managed: yes please\n"), "t.yaml") else {
        panic!("a non-boolean loaded");
    };
    assert!(err.0.iter().any(|d| d.path == "mirrors.managed"), "{err:?}");
}

#[test]
fn managed_backups_parse_survive_emit_are_off_by_default_and_refuse_unknown_keys() {
    assert!(!default_topology().managed_backups());
    let loaded = parse(&with_mirrors("backups:\n  managed: true\n"), "t.yaml").expect("loads");
    assert!(loaded.topology.managed_backups());
    let again = parse(&loaded.topology.to_yaml(), "emitted.yaml").expect("emitted loads");
    assert!(again.topology.managed_backups());
    let Err(err) = parse(&with_mirrors("backups:\n  managd: true\n"), "t.yaml") else {
        panic!("a misspelt key loaded");
    };
    assert!(
        err.0.iter().any(|d| d.path.starts_with("backups")),
        "{err:?}"
    );
}
