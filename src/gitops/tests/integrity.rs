//! Git-side integrity (docs/MULTITENANCY.md): caches keyed by credentials, no redirects to
//! other hosts.

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
