//! The optional `mirrors:` section: parsed when given, absent by default.

use topology::{default_topology, parse};

fn with_mirrors(section: &str) -> String {
    format!("{}{section}", topology::default_yaml())
}

#[test]
fn mirrors_parse_and_the_default_has_none() {
    assert_eq!(default_topology().mirrors, None);
    let loaded = parse(
        &with_mirrors(
            "mirrors:\n  aptProxy: http://192.168.64.1:8081\n  registryMirror: https://192.168.64.1:8443/\n",
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
}

#[test]
fn a_bad_mirror_url_is_reported_with_path_and_line() {
    let text = with_mirrors("mirrors:\n  registryMirror: \"harbor:8443\"\n");
    let line = text.lines().count();
    let Err(err) = parse(&text, "t.yaml") else {
        panic!("a bad URL loaded");
    };
    let d = err
        .0
        .iter()
        .find(|d| d.path == "mirrors.registryMirror")
        .unwrap_or_else(|| panic!("no diagnostic at mirrors.registryMirror: {err:?}"));
    assert_eq!(d.line, Some(line), "{d:?}");
    assert!(d.message.contains("http://"), "{}", d.message);
}
