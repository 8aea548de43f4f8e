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
