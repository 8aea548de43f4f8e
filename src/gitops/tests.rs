//! The writer against real repositories on disk (`file://`), with a second clone playing
//! the outside world.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use git2::{Repository, Signature};

use super::*;

/// A bare "remote" with one commit on `main`.
fn remote(dir: &Path) -> String {
    let path = dir.join("remote.git");
    let repo = Repository::init_bare(&path).unwrap();
    let blob = repo.blob(b"# gitops\n").unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    tb.insert("README.md", blob, 0o100644).unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = Signature::now("init", "init@example.com").unwrap();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "initial", &tree, &[])
        .unwrap();
    format!("file://{}", path.display())
}

fn key(url: &str) -> RepoKey {
    RepoKey {
        url: url.to_string(),
        branch: "main".into(),
    }
}

fn files(app: &str, version: &str) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (
            "kustomization.yaml".to_string(),
            format!("resources:\n- deployment-{app}.yaml\n").into_bytes(),
        ),
        (
            format!("deployment-{app}.yaml"),
            format!("image: {app}:{version}\n").into_bytes(),
        ),
        (
            ".tumbler/release.yaml".to_string(),
            format!("version: {version}\n").into_bytes(),
        ),
    ])
}

fn change(app: &str, version: &str) -> Change {
    Change {
        release: format!("team/{app}"),
        generation: 1,
        version: version.into(),
        environment: "staging".into(),
        env_path: "envs/staging".into(),
        app: app.into(),
        files: Some(files(app, version)),
        author: Author {
            name: "Tumbler".into(),
            email: "t@example.com".into(),
        },
        kind: ChangeKind::Release,
        entry: None,
    }
}

/// The options of every Writer in these tests. libgit2's timeouts are process-wide and
/// the first Writer's apply, so all Writers of the test binary ask for the same ones.
fn opts() -> WriterOptions {
    WriterOptions {
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
        ..WriterOptions::default()
    }
}

fn writer(dir: &Path) -> Writer {
    Writer::new(dir.join("cache"), opts())
}

fn remote_repo(url: &str) -> Repository {
    Repository::open_bare(PathBuf::from(url.trim_start_matches("file://"))).unwrap()
}

fn head(url: &str) -> git2::Oid {
    remote_repo(url).refname_to_id("refs/heads/main").unwrap()
}

fn read(url: &str, path: &str) -> Option<String> {
    let repo = remote_repo(url);
    let tree = repo.find_commit(head(url)).unwrap().tree().unwrap();
    tree::read_blob(&repo, &tree, path).map(|b| String::from_utf8(b).unwrap())
}

fn count(url: &str) -> usize {
    let repo = remote_repo(url);
    let mut walk = repo.revwalk().unwrap();
    walk.push(head(url)).unwrap();
    walk.count()
}

/// Commits a file directly on the remote, as someone else would.
fn outside_commit(url: &str, path: &str, content: &str) {
    let repo = remote_repo(url);
    let parent = repo.find_commit(head(url)).unwrap();
    let blob = repo.blob(content.as_bytes()).unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    let new = tree::upsert(
        &repo,
        Some(&parent.tree().unwrap()),
        &parts,
        Some((blob, git2::FileMode::Blob)),
        &std::cell::Cell::new(0),
    )
    .unwrap()
    .unwrap();
    let tree = repo.find_tree(new).unwrap();
    let sig = Signature::now("Outsider", "o@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "outside",
        &tree,
        &[&parent],
    )
    .unwrap();
}

#[tokio::test]
async fn create_writes_app_folder_and_env_kustomization_with_trailers() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    let out = w
        .submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    let Outcome::Committed { commit } = out else {
        panic!("expected a commit, got {out:?}")
    };
    assert_eq!(commit, head(&url).to_string());
    assert_eq!(
        read(&url, "envs/staging/api/deployment-api.yaml").unwrap(),
        "image: api:1.0\n"
    );
    assert!(read(&url, "envs/staging/api/.tumbler/release.yaml").is_some());
    let k = read(&url, "envs/staging/kustomization.yaml").unwrap();
    assert!(k.contains("- api"), "{k}");
    assert_eq!(
        read(&url, "README.md").unwrap(),
        "# gitops\n",
        "files outside the app folder kept"
    );
    let repo = remote_repo(&url);
    let msg = repo
        .find_commit(head(&url))
        .unwrap()
        .message()
        .unwrap()
        .to_string();
    assert!(msg.starts_with("release api 1.0 to staging"), "{msg}");
    for t in [
        "Tumbler-Release: team/api",
        "Tumbler-Generation: 1",
        "Tumbler-Version: 1.0",
        "Tumbler-Action: release",
    ] {
        assert!(msg.contains(t), "{t} missing in {msg}");
    }
}

#[tokio::test]
async fn unchanged_render_makes_no_commit_and_names_the_producing_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    let first = w
        .submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    w.submit(key(&url), Credentials::None, change("web", "2.0"))
        .await
        .unwrap();
    let again = w
        .submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    assert_eq!(
        again,
        Outcome::Unchanged {
            commit: first.commit().to_string()
        }
    );
    assert_eq!(count(&url), 3);
    // A fresh writer (a restarted controller) agrees.
    let w2 = Writer::new(dir.path().join("cache2"), opts());
    let again = w2
        .submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    assert_eq!(
        again,
        Outcome::Unchanged {
            commit: first.commit().to_string()
        }
    );
    assert_eq!(count(&url), 3);
}

#[tokio::test]
async fn delete_removes_the_folder_and_its_kustomization_entry() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    w.submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    w.submit(key(&url), Credentials::None, change("web", "1.0"))
        .await
        .unwrap();
    let mut del = change("api", "1.0");
    del.files = None;
    del.kind = ChangeKind::Delete;
    assert!(matches!(
        w.submit(key(&url), Credentials::None, del).await.unwrap(),
        Outcome::Committed { .. }
    ));
    assert!(read(&url, "envs/staging/api/deployment-api.yaml").is_none());
    assert!(
        read(&url, "envs/staging/web/deployment-web.yaml").is_some(),
        "the other app was touched"
    );
    let k = read(&url, "envs/staging/kustomization.yaml").unwrap();
    assert!(!k.contains("- api") && k.contains("- web"), "{k}");
}

#[tokio::test]
async fn env_kustomization_keeps_entries_a_person_added() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    outside_commit(
        &url,
        "envs/staging/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\ncommonLabels:\n  team: a\n",
    );
    let w = writer(dir.path());
    w.submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    let k = read(&url, "envs/staging/kustomization.yaml").unwrap();
    assert!(
        k.contains("../../base") && k.contains("- api") && k.contains("team: a"),
        "{k}"
    );
}

#[tokio::test]
async fn concurrent_submits_become_one_commit_each() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    let mut tasks = vec![];
    for i in 0..40 {
        let w = w.clone();
        let k = key(&url);
        tasks.push(tokio::spawn(async move {
            w.submit(k, Credentials::None, change(&format!("app{i}"), "1"))
                .await
        }));
    }
    let mut commits = std::collections::HashSet::new();
    for t in tasks {
        commits.insert(t.await.unwrap().unwrap().commit().to_string());
    }
    assert_eq!(commits.len(), 40, "each change has its own commit");
    assert_eq!(count(&url), 41);
    let pushes = w.stats().pushes.load(Ordering::Relaxed);
    assert!(
        pushes < 40,
        "changes queued together share a push ({pushes} pushes)"
    );
}

#[tokio::test]
async fn push_conflict_rebuilds_batch_on_new_head() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    // Someone else pushes between the writer's fetch and its push, twice.
    let hook_url = url.clone();
    let (opts, open) = gated_then(opts(), move |attempt| {
        if attempt <= 2 {
            outside_commit(
                &hook_url,
                "infra/notes.txt",
                &format!("outside {attempt}\n"),
            );
        }
    });
    let w = Writer::new(dir.path().join("cache"), opts);
    let results = one_batch(
        &w,
        &url,
        open,
        vec![change("api", "1.0"), change("web", "1.0")],
    )
    .await;
    let [a, b]: [_; 2] = results.try_into().unwrap();
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        w.stats().conflicts.load(Ordering::Relaxed) >= 2,
        "the pushes were not rejected"
    );
    assert_eq!(
        read(&url, "infra/notes.txt").as_deref(),
        Some("outside 2\n"),
        "outside commit lost"
    );
    assert!(read(&url, "envs/staging/api/deployment-api.yaml").is_some());
    assert!(read(&url, "envs/staging/web/deployment-web.yaml").is_some());
    let repo = remote_repo(&url);
    let heads = [a.commit(), b.commit()].map(|c| git2::Oid::from_str(c).unwrap());
    for c in heads {
        assert!(
            repo.graph_descendant_of(head(&url), c).unwrap() || head(&url) == c,
            "{c} is not on main"
        );
    }
    // initial + warm-up + 2 outside + 2 changes: nothing duplicated.
    assert_eq!(count(&url), 6);
}

#[tokio::test]
async fn push_rejected_forever_fails_every_change_in_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let hook_url = url.clone();
    let opts = WriterOptions {
        push_attempts: 3,
        push_backoff: std::time::Duration::from_millis(1),
        before_push: Some(Arc::new(move |attempt| {
            outside_commit(&hook_url, "infra/n.txt", &format!("{attempt}\n"))
        })),
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), opts);
    let err = w
        .submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "PushRejected", "{err}");
    assert!(read(&url, "envs/staging/api/deployment-api.yaml").is_none());
}

#[tokio::test]
async fn corrupt_cache_is_cloned_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    w.submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
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

#[tokio::test]
async fn history_reads_trailers_filtered_by_app() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    w.submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    w.submit(key(&url), Credentials::None, change("web", "2.0"))
        .await
        .unwrap();
    w.submit(key(&url), Credentials::None, change("api", "1.1"))
        .await
        .unwrap();
    let all = w
        .log(key(&url), Credentials::None, "envs/staging", None, 10)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.version.as_str()).collect::<Vec<_>>(),
        ["1.1", "2.0", "1.0"]
    );
    let api = w
        .log(
            key(&url),
            Credentials::None,
            "envs/staging",
            Some("api"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(api.len(), 2);
    assert_eq!(api[0].release, "team/api");
    assert_eq!(api[0].action, "release");
    let old = w
        .file_at(
            key(&url),
            Credentials::None,
            &api[1].commit,
            "envs/staging/api/.tumbler/release.yaml",
        )
        .await
        .unwrap();
    assert_eq!(old.as_deref(), Some(&b"version: 1.0\n"[..]));
    assert!(
        w.is_ancestor(key(&url), Credentials::None, &api[1].commit, &api[0].commit)
            .await
            .unwrap()
    );
    assert!(
        !w.is_ancestor(key(&url), Credentials::None, &api[0].commit, &api[1].commit)
            .await
            .unwrap()
    );
    let local = log(
        Path::new(url.trim_start_matches("file://")),
        "main",
        None,
        Some("web"),
        5,
    )
    .unwrap();
    assert_eq!(local.len(), 1);
}

/// A server that accepts connections and never answers; returns its URL.
fn hanging_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = vec![];
        for conn in listener.incoming().flatten() {
            open.push(conn);
        }
    });
    format!("http://127.0.0.1:{port}/repo.git")
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `base` with a first push that waits for the returned sender, so changes submitted
/// meanwhile queue up behind it; `then` runs before every later push.
fn gated_then(
    base: WriterOptions,
    then: impl Fn(u32) + Send + Sync + 'static,
) -> (WriterOptions, std::sync::mpsc::Sender<()>) {
    let (open, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(Some(gate));
    let opts = WriterOptions {
        before_push: Some(Arc::new(move |attempt| {
            let gate = gate.lock().unwrap().take();
            match gate {
                Some(gate) => {
                    let _ = gate.recv_timeout(Duration::from_secs(10));
                }
                None => then(attempt),
            }
        })),
        ..base
    };
    (opts, open)
}

fn gated(base: WriterOptions) -> (WriterOptions, std::sync::mpsc::Sender<()>) {
    gated_then(base, |_| {})
}

/// Submits `changes` so that they reach the worker as one batch: behind a first change
/// (in `envs/warmup`) whose push waits for `open`. The first push is the warm-up's.
async fn one_batch(
    w: &Writer,
    url: &str,
    open: std::sync::mpsc::Sender<()>,
    changes: Vec<Change>,
) -> Vec<Result<Outcome, GitError>> {
    let mut warmup = change("warmup", "1");
    warmup.env_path = "envs/warmup".into();
    let mut warmup = Box::pin(w.submit(key(url), Credentials::None, warmup));
    assert!(futures::poll!(&mut warmup).is_pending());
    wait_until("the warm-up is taken", || w.stats().queue_depth() == 0).await;
    let mut pending: Vec<_> = changes
        .into_iter()
        .map(|c| Box::pin(w.submit(key(url), Credentials::None, c)))
        .collect();
    for p in &mut pending {
        assert!(futures::poll!(p).is_pending());
    }
    assert_eq!(w.stats().queue_depth(), pending.len() as u64);
    open.send(()).unwrap();
    assert!(matches!(warmup.await, Ok(Outcome::Committed { .. })));
    futures::future::join_all(pending).await
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

#[tokio::test]
async fn a_hanging_server_times_out_while_other_repositories_commit() {
    let dir = tempfile::tempdir().unwrap();
    let good = remote(dir.path());
    let hanging = hanging_server();
    let o = WriterOptions {
        unreachable_cooldown: Duration::ZERO,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    let start = Instant::now();
    let mut stuck = Box::pin(w.submit(key(&hanging), Credentials::None, change("api", "1")));
    assert!(futures::poll!(&mut stuck).is_pending());
    let out = w
        .submit(key(&good), Credentials::None, change("api", "1"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }));
    let good_done = start.elapsed();
    let err = stuck.await.unwrap_err();
    let stuck_done = start.elapsed();
    let GitError::Timeout {
        operation,
        after_secs,
        ..
    } = &err
    else {
        panic!("expected Timeout, got {err:?}")
    };
    assert_eq!((operation.as_str(), *after_secs), ("fetch", 2), "{err}");
    assert!(
        stuck_done >= Duration::from_millis(1900) && stuck_done < Duration::from_secs(10),
        "timed out after {stuck_done:?}"
    );
    assert!(
        good_done + Duration::from_millis(500) < stuck_done,
        "the good repository waited for the hanging one ({good_done:?} vs {stuck_done:?})"
    );
    let start = Instant::now();
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn every_call_has_a_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = hanging_server();
    let o = WriterOptions {
        ask_timeout: Duration::from_millis(300),
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    let start = Instant::now();
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1500));
    let GitError::Timeout { operation, .. } = &err else {
        panic!("expected Timeout, got {err:?}")
    };
    assert_eq!(operation, "probe");
}

#[tokio::test]
async fn a_failed_server_is_not_asked_again_during_the_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = hanging_server();
    let cooldown = Duration::from_secs(1);
    let o = WriterOptions {
        unreachable_cooldown: cooldown,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    let fetches = w.stats().fetches.load(Ordering::Relaxed);
    let start = Instant::now();
    let err = w
        .submit(key(&hanging), Credentials::None, change("api", "1"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(w.stats().fetches.load(Ordering::Relaxed), fetches);
    tokio::time::sleep(cooldown).await;
    let start = Instant::now();
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "asked the server again"
    );
}

#[tokio::test]
async fn a_full_queue_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = hanging_server();
    let o = WriterOptions {
        queue_capacity: 1,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    // The first change keeps the worker waiting for the server, the second fills the queue.
    let mut first = Box::pin(w.submit(key(&hanging), Credentials::None, change("a", "1")));
    assert!(futures::poll!(&mut first).is_pending());
    wait_until("the worker took the first change", || {
        w.stats().queue_depth() == 0
    })
    .await;
    let mut second = Box::pin(w.submit(key(&hanging), Credentials::None, change("b", "1")));
    assert!(futures::poll!(&mut second).is_pending());
    assert_eq!(w.stats().queue_depth(), 1);
    let err = w
        .submit(key(&hanging), Credentials::None, change("c", "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Busy { .. }), "{err:?}");
    assert_eq!(err.reason(), "GitBusy");
    assert_eq!(
        w.stats().queue_depth(),
        1,
        "the refused change is not counted"
    );
    assert_eq!(first.await.unwrap_err().reason(), "GitTimeout");
    assert_eq!(second.await.unwrap_err().reason(), "GitTimeout");
    assert_eq!(w.stats().queue_depth(), 0);
}

#[tokio::test]
async fn idle_workers_stop_and_delete_their_cache() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let cache = dir.path().join("cache");
    let o = WriterOptions {
        idle_timeout: Duration::from_millis(200),
        ..opts()
    };
    let w = Writer::new(cache.clone(), o);
    w.submit(key(&url), Credentials::None, change("api", "1"))
        .await
        .unwrap();
    assert_eq!(w.workers(), 1);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    wait_until("the worker stopped and deleted its cache", || {
        w.workers() == 0 && std::fs::read_dir(&cache).unwrap().count() == 0
    })
    .await;
    let out = w
        .submit(key(&url), Credentials::None, change("api", "2"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }));
    assert_eq!(w.workers(), 1);
    assert_eq!(count(&url), 3);
}

#[tokio::test]
async fn jobs_racing_a_retiring_worker_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let o = WriterOptions {
        idle_timeout: Duration::from_millis(1),
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    for i in 0..12u64 {
        let out = w
            .submit(
                key(&url),
                Credentials::None,
                change(&format!("app{i}"), "1"),
            )
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Committed { .. }));
        tokio::time::sleep(Duration::from_micros(400 * (i % 4))).await;
    }
    assert_eq!(count(&url), 13);
}

#[tokio::test]
async fn a_cache_full_of_loose_objects_is_cloned_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let o = WriterOptions {
        max_loose_objects: 5,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    for app in ["api", "web", "db", "cron"] {
        let out = w
            .submit(key(&url), Credentials::None, change(app, "1"))
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Committed { .. }));
    }
    let again = w
        .submit(key(&url), Credentials::None, change("api", "1"))
        .await
        .unwrap();
    assert!(matches!(again, Outcome::Unchanged { .. }), "{again:?}");
    assert!(w.stats().compactions.load(Ordering::Relaxed) >= 3);
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);
    assert!(
        w.stats()
            .counters()
            .contains(&("compact", w.stats().compactions.load(Ordering::Relaxed)))
    );
    assert_eq!(count(&url), 5);
    assert!(read(&url, "envs/staging/cron/deployment-cron.yaml").is_some());
}
