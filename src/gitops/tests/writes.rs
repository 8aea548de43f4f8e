//! Writes and batches: what a change puts in the repository, how changes queued together
//! share a push, and how a rejected push is rebuilt.

use super::*;

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
    put(&w, &url, change("web", "2.0")).await;
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
    put(&w, &url, change("api", "1.0")).await;
    put(&w, &url, change("web", "1.0")).await;
    let mut del = change("api", "1.0");
    del.files = None;
    del.kind = ChangeKind::Delete;
    assert!(matches!(
        put(&w, &url, del).await,
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
    put(&w, &url, change("api", "1.0")).await;
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

/// The tree `change` makes of `base`, the way one change alone was written before batches
/// were built in memory: libgit2's tree builder, the kustomization parsed from the tree.
fn reference_tree(repo: &Repository, base: &git2::Tree<'_>, change: &Change) -> git2::Oid {
    let n = std::cell::Cell::new(0);
    let path = ["envs", "staging", change.app.as_str()];
    let entry = change.files.as_ref().map(|f| {
        (
            tree::write_files(repo, f, &n).unwrap(),
            git2::FileMode::Tree,
        )
    });
    let root = tree::upsert(repo, Some(base), &path, entry, &n)
        .unwrap()
        .unwrap();
    let root = repo.find_tree(root).unwrap();
    let kpath = "envs/staging/kustomization.yaml";
    let existing = tree::read_blob(repo, &root, kpath);
    let mut doc = tree::parse_kustomization(kpath, existing.as_deref()).unwrap();
    let listed = change.files.as_ref().map(|_| change.app.as_str());
    match tree::edit_kustomization(kpath, &mut doc, existing.is_some(), &change.app, listed)
        .unwrap()
    {
        Some(bytes) => {
            let blob = repo.blob(&bytes).unwrap();
            let parts = ["envs", "staging", "kustomization.yaml"];
            tree::upsert(
                repo,
                Some(&root),
                &parts,
                Some((blob, git2::FileMode::Blob)),
                &n,
            )
            .unwrap()
            .unwrap()
        }
        None => root.id(),
    }
}

#[tokio::test]
async fn a_burst_is_one_commit_per_change_with_the_trees_of_single_changes() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    put(
        &Writer::new(dir.path().join("seed"), opts()),
        &url,
        change("old", "1"),
    )
    .await;
    // Someone pushes while the burst is being pushed: it is built again on the new head.
    let hook_url = url.clone();
    let (o, open) = gated_then(opts(), move |attempt| {
        if attempt == 1 {
            outside_commit(&hook_url, "envs/staging/notes.txt", "outside\n");
        }
    });
    let w = Writer::new(dir.path().join("cache"), o);
    let mut changes: Vec<Change> = (0..40)
        .map(|i| change(&format!("app{i:02}"), "1"))
        .collect();
    changes[7] = change("app03", "2");
    changes[11] = change("old", "2");
    changes[12].files = None;
    changes[12].app = "app05".into();
    changes[12].release = "team/app05".into();
    changes[12].kind = ChangeKind::Delete;
    changes[20]
        .files
        .as_mut()
        .unwrap()
        .insert(".git./x.yaml".into(), b"x: 1\n".to_vec());
    let results = one_batch(&w, &url, open, changes.clone()).await;
    assert!(w.stats().conflicts.load(Ordering::Relaxed) >= 1);
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);

    let repo = remote_repo(&url);
    let mut commits = vec![];
    for (i, (res, change)) in results.iter().zip(&changes).enumerate() {
        if i == 20 {
            assert!(matches!(res, Err(GitError::InvalidPath { .. })), "{res:?}");
            continue;
        }
        let Ok(Outcome::Committed { commit }) = res else {
            panic!("{i}: expected a commit, got {res:?}")
        };
        let commit = repo
            .find_commit(git2::Oid::from_str(commit).unwrap())
            .unwrap();
        let msg = commit.message().unwrap();
        for t in [
            format!("Tumbler-Release: {}", change.release),
            format!("Tumbler-Version: {}", change.version),
            format!("Tumbler-App: {}", change.app),
            format!("Tumbler-Action: {}", change.kind.action()),
        ] {
            assert!(msg.contains(&t), "{i}: {t} missing in {msg}");
        }
        let parent = commit.parent(0).unwrap();
        if let Some(previous) = commits.last() {
            assert_eq!(parent.id(), *previous, "{i}: not on the previous change");
        }
        assert_eq!(
            commit.tree_id(),
            reference_tree(&repo, &parent.tree().unwrap(), change),
            "{i}: not the tree this change alone makes"
        );
        commits.push(commit.id());
    }
    assert_eq!(commits.len(), 39, "one commit per good change");
    assert_eq!(*commits.last().unwrap(), head(&url));
    // seed, warm-up, outside, 39 changes.
    assert_eq!(count(&url), 1 + 1 + 1 + 1 + 39);
    assert_eq!(
        read(&url, "envs/staging/notes.txt").as_deref(),
        Some("outside\n")
    );
    assert_eq!(
        read(&url, "envs/staging/app03/deployment-app03.yaml").as_deref(),
        Some("image: app03:2\n")
    );
    assert!(read(&url, "envs/staging/app05/kustomization.yaml").is_none());
    assert!(read(&url, "envs/staging/app20/kustomization.yaml").is_none());
    let k = read(&url, "envs/staging/kustomization.yaml").unwrap();
    let listed: Vec<&str> = k
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    let mut expected: Vec<String> = (0..40)
        .filter(|i| ![5, 7, 11, 12, 20].contains(i))
        .map(|i| format!("app{i:02}"))
        .chain(["old".to_string()])
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "{k}");

    // The cache kept the pushed batch as one pack, and answers from it.
    let packs = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path().join("objects/pack")).unwrap())
        .flatten()
        .filter(|f| f.path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert!(packs >= 2, "the clone's pack and the batch's: {packs}");
    let again = put(&w, &url, change("app30", "1")).await;
    assert_eq!(
        again,
        Outcome::Unchanged {
            commit: results[30].as_ref().unwrap().commit().to_string()
        }
    );
}
