//! Git-side integrity (docs/MULTITENANCY.md): caches keyed by credentials, no redirects to
//! other hosts, app folders written only by their owner, checked atomically with the commit.

use super::*;

/// `change(app, version)` made by the Release `release`, whose files record it.
fn change_of(release: &str, app: &str, version: &str) -> Change {
    let mut c = change(app, version);
    c.release = release.into();
    c.files.as_mut().unwrap().insert(
        ".tumbler/release.yaml".into(),
        record(release, version).into_bytes(),
    );
    c
}

fn removal(release: &str, app: &str) -> Change {
    let mut c = change_of(release, app, "1");
    c.files = None;
    c.kind = ChangeKind::Delete;
    c
}

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

/// An HTTP server that redirects every request to a second one on another host (127.0.0.2:
/// libgit2 follows redirects within the same host name whatever it is told), which counts
/// the connections it gets; returns the first one's URL and the count.
fn redirecting_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let target = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let target_port = target.local_addr().unwrap().port();
    let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = reached.clone();
    std::thread::spawn(move || {
        for conn in target.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = front.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in front.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{target_port}/other.git/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    (format!("http://127.0.0.1:{port}/repo.git"), reached)
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (url, reached) = redirecting_server();
    let w = writer(dir.path());
    let err = w.probe(key(&url), basic("s3cr3t")).await.unwrap_err();
    assert_eq!(err.reason(), "RepositoryUnreachable", "{err}");
    assert!(err.to_string().contains("cannot redirect"), "{err}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    let err = w
        .submit(key(&url), basic("s3cr3t"), change("api", "1"))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "libgit2 followed the redirect to another host"
    );
}

#[tokio::test]
async fn two_releases_for_one_app_in_one_batch_leave_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let (o, open) = gated(opts());
    let w = Writer::new(dir.path().join("cache"), o);
    let first = change_of("team/first", "api", "1");
    let second = change_of("team/second", "api", "9");
    let results = one_batch(&w, &url, open, vec![first, second]).await;
    assert!(
        matches!(results[0], Ok(Outcome::Committed { .. })),
        "{results:?}"
    );
    let Err(GitError::FolderOwned { path, owner }) = &results[1] else {
        panic!("expected FolderOwned, got {:?}", results[1])
    };
    assert_eq!(
        (path.as_str(), owner.as_str()),
        ("envs/staging/api", "team/first")
    );
    let err = results[1].as_ref().unwrap_err();
    assert!(err.is_terminal() && err.is_per_change());
    assert_eq!(err.reason(), "AppConflict");
    assert_eq!(
        read(&url, "envs/staging/api/deployment-api.yaml").as_deref(),
        Some("image: api:1\n")
    );
    assert_eq!(
        read(&url, "envs/staging/api/.tumbler/release.yaml"),
        Some(record("team/first", "1"))
    );
    assert_eq!(
        count(&url),
        1 + 1 + 1,
        "initial, warm-up, the first Release"
    );
}

#[tokio::test]
async fn a_folder_tumbler_did_not_write_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    outside_commit(&url, "envs/staging/api/notes.txt", "mine\n");
    let before = head(&url);
    let w = writer(dir.path());
    let err = w
        .submit(key(&url), Credentials::None, change("api", "1"))
        .await
        .unwrap_err();
    let GitError::FolderNotManaged { path } = &err else {
        panic!("expected FolderNotManaged, got {err:?}")
    };
    assert_eq!(path, "envs/staging/api");
    assert!(err.is_terminal() && err.is_per_change());
    assert_eq!(err.reason(), "FolderNotManaged");
    assert!(err.to_string().contains("never replaced"), "{err}");
    let out = w
        .submit(key(&url), Credentials::None, removal("team/api", "api"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Unchanged { .. }), "{out:?}");
    assert_eq!(head(&url), before, "nothing committed");
    assert_eq!(
        read(&url, "envs/staging/api/notes.txt").as_deref(),
        Some("mine\n")
    );
    // Another app of the same Environment is written as usual.
    let out = w
        .submit(key(&url), Credentials::None, change("web", "1"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }));
}

#[tokio::test]
async fn replaces_lets_a_release_take_over_a_recorded_folder() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    w.submit(
        key(&url),
        Credentials::None,
        change_of("team/old", "api", "1"),
    )
    .await
    .unwrap();
    let err = w
        .submit(
            key(&url),
            Credentials::None,
            change_of("team/new", "api", "2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::FolderOwned { .. }), "{err:?}");
    let mut wrong = change_of("team/new", "api", "2");
    wrong.replaces = Some("team/someone-else".into());
    let err = w
        .submit(key(&url), Credentials::None, wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::FolderOwned { .. }), "{err:?}");
    let mut takeover = change_of("team/new", "api", "2");
    takeover.replaces = Some("team/old".into());
    let out = w
        .submit(key(&url), Credentials::None, takeover)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    assert_eq!(
        read(&url, "envs/staging/api/.tumbler/release.yaml"),
        Some(record("team/new", "2"))
    );
    // The new owner updates without `replaces`; the old one is refused now.
    let out = w
        .submit(
            key(&url),
            Credentials::None,
            change_of("team/new", "api", "3"),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    let err = w
        .submit(
            key(&url),
            Credentials::None,
            change_of("team/old", "api", "4"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::FolderOwned { .. }), "{err:?}");
}

#[tokio::test]
async fn delete_by_a_non_owner_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    let first = w
        .submit(key(&url), Credentials::None, change("api", "1"))
        .await
        .unwrap();
    let mut by_successor = removal("team/other", "api");
    by_successor.replaces = Some("team/api".into());
    for del in [removal("team/other", "api"), by_successor] {
        let out = put(&w, &url, del).await;
        assert_eq!(
            out,
            Outcome::Unchanged {
                commit: first.commit().to_string()
            }
        );
    }
    assert_eq!(head(&url).to_string(), first.commit());
    assert!(read(&url, "envs/staging/api/deployment-api.yaml").is_some());
    let k = read(&url, "envs/staging/kustomization.yaml").unwrap();
    assert!(k.contains("- api"), "{k}");
    let out = w
        .submit(key(&url), Credentials::None, removal("team/api", "api"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    assert!(read(&url, "envs/staging/api/deployment-api.yaml").is_none());
}
