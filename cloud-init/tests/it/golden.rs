//! The default rendering for a fixed input is byte-for-byte the checked-in
//! golden file, so any change to the user-data shows up in review.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p cloud-init --test it golden`.

use crate::common;

use std::path::PathBuf;

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{} differs from the rendering (run with UPDATE_GOLDEN=1 and review the diff)\n--- rendered:\n{actual}",
        path.display()
    );
}

#[test]
fn node_user_data_matches_golden() {
    check_golden(
        "app1-worker-0.user-data.yaml",
        &common::node(common::FAKE_BINARY).render().unwrap(),
    );
}

#[test]
fn network_config_matches_golden() {
    let config = common::stable_address().network_config().unwrap();
    check_golden(
        "app1-worker-0.network-config.yaml",
        &config.render().unwrap(),
    );
}
