//! The malformed-topology corpus: one file per problem class under
//! `tests/corpus/`, each declaring in its header what must be reported:
//!
//! ```text
//! # expect: nodes[1].address | outside the node network
//! # expect-warning: clusters[1].kubernetesVersion | not the tested
//! ```
//!
//! A file with `expect` lines must fail to load (the CLI then exits non-zero)
//! and report an error at exactly that path, with a line number, whose message
//! holds the fragment; no error may appear at a path the header does not list,
//! so each file proves its check fires alone. A file with only
//! `expect-warning` lines must load, with those warnings. `(document)` is the
//! path of whole-file problems.

use std::fs;
use std::path::{Path, PathBuf};
use topology::{Diagnostic, Severity, parse};

struct Expectation {
    severity: Severity,
    path: String,
    fragment: String,
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn expectations(src: &str, file: &str) -> Vec<Expectation> {
    let parsed: Vec<Expectation> = src
        .lines()
        .filter_map(|line| {
            let (severity, rest) = if let Some(rest) = line.strip_prefix("# expect: ") {
                (Severity::Error, rest)
            } else if let Some(rest) = line.strip_prefix("# expect-warning: ") {
                (Severity::Warning, rest)
            } else {
                return None;
            };
            let (path, fragment) = rest
                .split_once(" | ")
                .unwrap_or_else(|| panic!("{file}: bad header {line:?}"));
            let path = if path == "(document)" { "" } else { path };
            Some(Expectation {
                severity,
                path: path.to_owned(),
                fragment: fragment.to_owned(),
            })
        })
        .collect();
    assert!(!parsed.is_empty(), "{file}: no `# expect:` header");
    parsed
}

/// True when the file has content beyond comments, so problems can be placed.
fn has_content(src: &str) -> bool {
    src.lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

fn find<'d>(diagnostics: &'d [Diagnostic], e: &Expectation) -> Option<&'d Diagnostic> {
    diagnostics
        .iter()
        .find(|d| d.severity == e.severity && d.path == e.path && d.message.contains(&e.fragment))
}

#[test]
fn corpus_is_large_enough() {
    let errors = corpus()
        .iter()
        .filter(|p| fs::read_to_string(p).unwrap().contains("# expect: "))
        .count();
    assert!(
        errors >= 25,
        "only {errors} malformed topologies in the corpus"
    );
}

#[test]
fn every_malformed_topology_is_reported_at_its_field() {
    let mut failures = Vec::new();
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(&path).unwrap();
        let expected = expectations(&src, &name);
        let must_fail = expected.iter().any(|e| e.severity == Severity::Error);
        let diagnostics = match (parse(&src, &name), must_fail) {
            (Err(d), true) => d.0,
            (Ok(loaded), false) => loaded.warnings,
            (Ok(_), true) => {
                failures.push(format!("{name}: loaded, but it is malformed"));
                continue;
            }
            (Err(d), false) => {
                failures.push(format!("{name}: expected only warnings, got:\n{d}"));
                continue;
            }
        };
        for e in &expected {
            match find(&diagnostics, e) {
                None => failures.push(format!(
                    "{name}: no {} at `{}` containing {:?}; got:\n{}",
                    e.severity,
                    e.path,
                    e.fragment,
                    topology::Diagnostics(diagnostics.clone())
                )),
                Some(d) => {
                    if has_content(&src) && d.line.is_none() {
                        failures.push(format!("{name}: `{}` has no line number", e.path));
                    }
                    if d.fix.is_empty() || d.file != name {
                        failures.push(format!("{name}: `{}` lacks a fix or the file name", e.path));
                    }
                }
            }
        }
        for d in diagnostics.iter().filter(|d| d.is_error()) {
            if !expected.iter().any(|e| e.path == d.path) {
                failures.push(format!("{name}: unexpected error: {d}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn display_names_file_line_column_path_and_fix() {
    let src = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/duplicate-address.yaml"),
    )
    .unwrap();
    let err = parse(&src, "topology.yaml").unwrap_err();
    let text = err.to_string();
    let line = src
        .lines()
        .position(|l| l == "    address: 20")
        .map(|i| i + 1);
    // The second `address: 20` (app1-worker-0) is the duplicate.
    let dup_line = src
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "    address: 20")
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap();
    assert!(line.is_some());
    assert!(
        text.contains(&format!(
            "topology.yaml:{dup_line}:14: error: nodes[3].address: 192.168.64.20 is already used by node app1-cp (nodes[2])\n  fix: give each node its own address"
        )),
        "{text}"
    );
    assert!(text.ends_with("1 error, 0 warnings"), "{text}");
}
