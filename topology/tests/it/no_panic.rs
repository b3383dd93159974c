//! `parse` never panics, whatever it is given: arbitrary text, and arbitrary
//! edits of the default file (which reach far deeper into decoding and
//! validation than random text does).

use proptest::prelude::*;
use topology::{default_yaml, parse};

/// Values that exercise edge cases of every field type.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "256",
    "4294967296",
    "99999999999999999999999",
    "1.5",
    "true",
    "~",
    "",
    "\"\"",
    "[]",
    "{}",
    "[1, [2]]",
    "{ start: 1 }",
    "v1.35.0",
    "v1.99",
    "0GiB",
    "18446744073709551615T",
    "10.0.0.0/0",
    "0.0.0.0/0",
    "255.255.255.255/32",
    "192.168.64.0/31",
    "fd00::/8",
    "::",
    "app1",
    "mgmt",
    "control-plane",
    "worker",
    "*anchor",
    "&a x",
    "!!binary aGVsbG8=",
    "'x'",
    "\"\\u0000\"",
];

fn mutate(src: &str, line: usize, value: &str, mode: u8) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_owned).collect();
    let i = line % lines.len().max(1);
    match (mode % 4, lines.get_mut(i)) {
        (0, Some(l)) => {
            // Replace the value after the key.
            if let Some(colon) = l.find(": ") {
                l.truncate(colon + 2);
                l.push_str(value);
            }
        }
        (1, Some(_)) => {
            lines.remove(i);
        }
        (2, Some(l)) => {
            let copy = l.clone();
            lines.insert(i, copy);
        }
        (_, Some(l)) => {
            l.insert_str(0, value);
        }
        (_, None) => {}
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        let _ = parse(&src, "fuzz.yaml");
    }

    #[test]
    fn yaml_like_text_never_panics(src in "[a-zA-Z0-9 :\\-\\[\\]{}\n#&*!|>'\".,/]{0,200}") {
        let _ = parse(&src, "fuzz.yaml");
    }

    #[test]
    fn edited_default_never_panics(
        edits in proptest::collection::vec((0usize..200, 0usize..VALUES.len(), any::<u8>()), 1..6)
    ) {
        let mut src = default_yaml();
        for (line, value, mode) in edits {
            src = mutate(&src, line, VALUES.get(value).copied().unwrap_or(""), mode);
        }
        match parse(&src, "fuzz.yaml") {
            // Whatever loads must also resolve or fail cleanly, and round-trip.
            Ok(loaded) => {
                let _ = loaded.resolve(Some("192.168.252.0/24".parse().unwrap()));
                let again = parse(&loaded.topology.to_yaml(), "again.yaml");
                prop_assert!(again.is_ok(), "re-emitted topology does not load: {:?}", again.err().map(|e| e.to_string()));
                prop_assert_eq!(again.ok().map(|l| l.topology), Some(loaded.topology));
            }
            Err(diagnostics) => prop_assert!(diagnostics.has_errors()),
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for src in [
        "[".repeat(100_000),
        format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000)),
        (0..2_000)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect(),
    ] {
        let err = parse(&src, "deep.yaml").unwrap_err();
        // Either serde-saphyr's parser refuses it, or our depth budget does.
        let message = &err.0[0].message;
        assert!(
            message.contains("nested more than") || message.contains("recursion limit"),
            "{err}"
        );
    }
}

#[test]
fn alias_bombs_are_refused() {
    let mut src = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n".to_owned();
    for i in 1..10 {
        let p = i - 1;
        src.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let err = parse(&src, "bomb.yaml").unwrap_err();
    let message = &err.0[0].message;
    assert!(
        message.contains("safety limits") || message.contains("budget breached"),
        "{err}"
    );
    assert!(err.0[0].fix.contains("aliases"), "{err}");
}
