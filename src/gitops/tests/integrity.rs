//! Git-side integrity (docs/MULTITENANCY.md): caches keyed by credentials.

use super::*;

fn basic(password: &str) -> Credentials {
    Credentials::Basic {
        username: "bot".into(),
        password: password.into(),
    }
}

#[test]
fn credentials_fingerprints_tell_every_field_apart() {
    let ssh = |known: Option<&str>| Credentials::Ssh {
        identity: "key".into(),
        known_hosts: known.map(str::to_string),
    };
    let split = |u: &str, p: &str| Credentials::Basic {
        username: u.into(),
        password: p.into(),
    };
    let all = [
        Credentials::None,
        basic("a"),
        basic("b"),
        split("ab", "c"),
        split("a", "bc"),
        ssh(None),
        ssh(Some("")),
        ssh(Some("h ssh-ed25519 AAAA")),
    ];
    let prints: std::collections::HashSet<_> = all.iter().map(Credentials::fingerprint).collect();
    assert_eq!(prints.len(), all.len());
    assert_eq!(basic("a").fingerprint(), basic("a").fingerprint());
}

#[tokio::test]
async fn other_credentials_get_their_own_worker_and_cache() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let cache = dir.path().join("cache");
    let w = writer(dir.path());
    let out = w
        .submit(key(&url), basic("token-a"), change("api", "1"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }));
    assert_eq!(w.workers(), 1);
    let files = w
        .read_app(key(&url), basic("token-b"), "envs/staging", "api")
        .await
        .unwrap();
    assert!(files.is_some_and(|f| f.contains_key("deployment-api.yaml")));
    assert_eq!(
        w.workers(),
        2,
        "a second set of credentials, a second worker"
    );
    w.probe(key(&url), basic("token-a")).await.unwrap();
    assert_eq!(w.workers(), 2, "the same credentials, the same worker");
    let folders: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders.len(), 2, "{folders:?}");
    assert!(folders.iter().all(|f| !f.contains("token")), "{folders:?}");
}
