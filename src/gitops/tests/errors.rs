//! Errors and refusals: corrupt caches, missing branches and repositories, paths,
//! kustomizations and authors git refuses, and credentials kept out of messages.

use super::*;

#[tokio::test]
async fn corrupt_cache_is_cloned_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    put(&w, &url, change("api", "1.0")).await;
    // Break the cache every way a killed process or a bad disk might.
    let cache = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(cache.join("HEAD"), b"garbage").unwrap();
    std::fs::remove_dir_all(cache.join("objects")).unwrap();
    std::fs::create_dir_all(cache.join("refs/remotes/origin")).unwrap();
    std::fs::write(cache.join("refs/remotes/origin/main.lock"), b"").unwrap();
    let out = w
        .submit(key(&url), Credentials::None, change("api", "1.1"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    assert_eq!(
        read(&url, "envs/staging/api/deployment-api.yaml").as_deref(),
        Some("image: api:1.1\n")
    );
    assert!(w.stats().reclones.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn missing_branch_and_missing_repo_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    let k = RepoKey {
        url: url.clone(),
        branch: "nope".into(),
    };
    let err = w.probe(k, Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "BranchNotFound", "{err}");
    let k = RepoKey {
        url: url.clone(),
        branch: "no such..branch".into(),
    };
    let err = w.probe(k, Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "BranchNotFound", "{err}");
    let k = key(&format!("file://{}/missing.git", dir.path().display()));
    let err = w.probe(k, Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "RepositoryUnreachable", "{err}");
    assert_eq!(
        w.probe(key(&url), Credentials::None).await.unwrap(),
        head(&url).to_string()
    );
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn invalid_paths_are_refused_without_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    for (env_path, app) in [
        ("../etc", "api"),
        ("/abs", "api"),
        ("envs/x", "a/b"),
        ("envs/x", ".git"),
        ("envs/x", ".GIT"),
        ("envs/x", "git~1"),
        ("envs/.git./x", "api"),
    ] {
        let mut c = change(app, "1");
        c.env_path = env_path.into();
        c.app = app.into();
        let err = w.submit(key(&url), Credentials::None, c).await.unwrap_err();
        assert_eq!(err.reason(), "InvalidPath", "{env_path}/{app}: {err}");
        if env_path == "envs/.git./x" {
            let GitError::InvalidPath { path, .. } = &err else {
                unreachable!()
            };
            assert_eq!(path, "envs/.git.", "names the folder git refuses");
        }
    }
    assert_eq!(count(&url), 1);
}

#[test]
fn credentials_never_show_in_debug_or_errors() {
    let creds = Credentials::Basic {
        username: "bot".into(),
        password: "s3cr3t-token".into(),
    };
    assert!(!format!("{creds:?}").contains("s3cr3t"));
    assert_eq!(
        redact_url("https://bot:s3cr3t-token@git.example.com/x.git"),
        "https://git.example.com/x.git"
    );
    let msg = redact_text("failed to reach 'https://bot:s3cr3t-token@git.example.com/x.git': 401");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    let e = auth::network_error(
        &git2::Error::from_str("auth failed for s3cr3t-token"),
        "https://bot:s3cr3t-token@h/x",
        &creds,
        2,
        "fetch",
        &opts(),
    );
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

#[test]
fn error_kinds() {
    let per_change = GitError::InvalidKustomization {
        path: "envs/a/kustomization.yaml".into(),
        message: "not a mapping".into(),
    };
    assert!(per_change.is_terminal() && per_change.is_per_change());
    assert_eq!(per_change.reason(), "InvalidKustomization");
    let corrupt = GitError::CacheCorrupt {
        message: "object not found".into(),
    };
    assert!(!corrupt.is_terminal() && !corrupt.is_per_change());
    assert_eq!(corrupt.reason(), "GitCacheCorrupt");
    let timeout = GitError::Timeout {
        url: "https://h/x.git".into(),
        operation: "fetch".into(),
        after_secs: 30,
    };
    assert_eq!(timeout.reason(), "GitTimeout");
    assert_eq!(
        timeout.to_string(),
        "git fetch on https://h/x.git did not answer within 30s; the server is slow or down, retrying later"
    );
    assert!(!timeout.is_terminal());
    let auth = GitError::AuthenticationFailed { url: "u".into() };
    assert!(auth.is_terminal() && !auth.is_per_change());
    assert_eq!(
        GitError::WorkerGone { url: "u".into() }.reason(),
        GitError::GitFailed {
            message: "m".into()
        }
        .reason()
    );
}

#[tokio::test]
async fn a_path_git_refuses_fails_only_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let (o, open) = gated(opts());
    let w = Writer::new(dir.path().join("cache"), o);
    let mut changes: Vec<Change> = (0..6).map(|i| change(&format!("app{i}"), "1")).collect();
    changes[2]
        .files
        .as_mut()
        .unwrap()
        .insert(".git./x.yaml".into(), b"x: 1\n".to_vec());
    let results = one_batch(&w, &url, open, changes).await;
    for (i, res) in results.iter().enumerate() {
        if i == 2 {
            let Err(GitError::InvalidPath { path, .. }) = res else {
                panic!("expected InvalidPath, got {res:?}")
            };
            assert_eq!(path, "envs/staging/app2/.git.", "the folder git refuses");
        } else {
            assert!(matches!(res, Ok(Outcome::Committed { .. })), "{i}: {res:?}");
        }
    }
    assert_eq!(
        w.stats().pushes.load(Ordering::Relaxed),
        2,
        "the five good changes share one push"
    );
    assert_eq!(count(&url), 1 + 1 + 5);
    assert!(read(&url, "envs/staging/app2/deployment-app2.yaml").is_none());
    assert!(read(&url, "envs/staging/app5/deployment-app5.yaml").is_some());
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_broken_env_kustomization_fails_only_that_environment() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    outside_commit(
        &url,
        "envs/staging/kustomization.yaml",
        "resources: [unclosed",
    );
    let (o, open) = gated(opts());
    let w = Writer::new(dir.path().join("cache"), o);
    let mut prod = change("api", "1");
    prod.env_path = "envs/prod".into();
    let changes = vec![change("api", "1"), prod, change("web", "1")];
    let results = one_batch(&w, &url, open, changes).await;
    for i in [0, 2] {
        let Err(GitError::InvalidKustomization { path, .. }) = &results[i] else {
            panic!("expected InvalidKustomization, got {:?}", results[i])
        };
        assert_eq!(path, "envs/staging/kustomization.yaml");
        assert_eq!(
            results[i].as_ref().unwrap_err().reason(),
            "InvalidKustomization"
        );
    }
    assert!(matches!(results[1], Ok(Outcome::Committed { .. })));
    assert!(read(&url, "envs/prod/api/deployment-api.yaml").is_some());
    assert_eq!(
        read(&url, "envs/staging/kustomization.yaml").as_deref(),
        Some("resources: [unclosed")
    );
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn an_author_git_refuses_fails_only_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let (o, open) = gated(opts());
    let w = Writer::new(dir.path().join("cache"), o);
    let mut brackets = change("api", "1");
    brackets.author.name = "Evil <root@example.com>".into();
    let mut newline = change("web", "1");
    newline.author.name = "Tumbler\nCommitter: someone".into();
    let results = one_batch(&w, &url, open, vec![brackets, change("db", "1"), newline]).await;
    for i in [0, 2] {
        assert!(
            matches!(results[i], Err(GitError::InvalidAuthor { .. })),
            "{:?}",
            results[i]
        );
    }
    assert!(matches!(results[1], Ok(Outcome::Committed { .. })));
    assert_eq!(count(&url), 1 + 1 + 1);
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);
}
