//! The writer against real repositories on disk (`file://`), with a second clone playing
//! the outside world.
//!
//! The tests are grouped by theme; the fixtures they share are here.

mod bounds;
mod errors;
mod history;
mod integrity;
mod writes;

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
            record(&format!("team/{app}"), version).into_bytes(),
        ),
    ])
}

/// A `.tumbler/release.yaml` recording `owner` (`namespace/name`).
fn record(owner: &str, version: &str) -> String {
    let (ns, name) = owner.split_once('/').unwrap();
    format!("metadata:\n  name: {name}\n  namespace: {ns}\nversion: {version}\n")
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
        replaces: None,
        requested_by: None,
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

/// Submits a change without credentials and expects it to go through.
async fn put(w: &Writer, url: &str, change: Change) -> Outcome {
    w.submit(key(url), Credentials::None, change).await.unwrap()
}
