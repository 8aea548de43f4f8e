//! The release history read back from commit trailers.

use super::*;

#[tokio::test]
async fn history_reads_trailers_filtered_by_app() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    put(&w, &url, change("api", "1.0")).await;
    put(&w, &url, change("web", "2.0")).await;
    let mut by_ci = change("api", "1.1");
    by_ci.requested_by = Some("ci-bot".into());
    put(&w, &url, by_ci).await;
    let all = w
        .log(key(&url), Credentials::None, "envs/staging", None, 10, None)
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
            None,
        )
        .await
        .unwrap();
    assert_eq!(api.len(), 2);
    assert_eq!(api[0].release, "team/api");
    assert_eq!(api[0].action, "release");
    assert_eq!(api[0].requested_by, "ci-bot");
    assert_eq!(api[1].requested_by, "", "commits without the trailer");
    let old = w
        .file_at(
            key(&url),
            Credentials::None,
            &api[1].commit,
            "envs/staging/api/.tumbler/release.yaml",
        )
        .await
        .unwrap();
    assert_eq!(old, Some(record("team/api", "1.0").into_bytes()));
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
        None,
    )
    .unwrap();
    assert_eq!(local.len(), 1);
}

/// Commits `message` on the remote by `committer` (author: Tumbler's identity, which anyone
/// can claim), changing a file outside the environments.
fn forged_commit(url: &str, committer: &Signature<'_>, message: &str) -> git2::Oid {
    let repo = remote_repo(url);
    let parent = repo.find_commit(head(url)).unwrap();
    let blob = repo.blob(b"forged\n").unwrap();
    let new = tree::upsert(
        &repo,
        Some(&parent.tree().unwrap()),
        &["infra", "forged.txt"],
        Some((blob, git2::FileMode::Blob)),
        &std::cell::Cell::new(0),
    )
    .unwrap()
    .unwrap();
    let tree = repo.find_tree(new).unwrap();
    let author = Signature::now("Tumbler", "t@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &author,
        committer,
        message,
        &tree,
        &[&parent],
    )
    .unwrap()
}

#[tokio::test]
async fn forged_trailers_of_other_committers_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let w = writer(dir.path());
    let ours = w
        .submit(key(&url), Credentials::None, change("api", "1.0"))
        .await
        .unwrap();
    let outsider = Signature::now("Outsider", "o@example.com").unwrap();
    let forged = "release api 6.6.6 to staging\n\nTumbler-Release: team/api\nTumbler-Generation: 9\nTumbler-Version: 6.6.6\nTumbler-App: api\nTumbler-Environment: staging\nTumbler-Path: envs/staging\nTumbler-Action: release\n";
    let forged_id = forged_commit(&url, &outsider, forged);
    // Same name, other email: not the same committer either.
    let lookalike = Signature::now("Tumbler", "evil@example.com").unwrap();
    forged_commit(&url, &lookalike, forged);
    let tumbler = change("api", "1").author;
    let trusted = w
        .log(
            key(&url),
            Credentials::None,
            "envs/staging",
            Some("api"),
            10,
            Some(&tumbler),
        )
        .await
        .unwrap();
    assert_eq!(
        trusted
            .iter()
            .map(|e| e.commit.as_str())
            .collect::<Vec<_>>(),
        [ours.commit()],
        "{trusted:?}"
    );
    let local = log(
        Path::new(url.trim_start_matches("file://")),
        "main",
        Some("envs/staging"),
        Some("api"),
        10,
        Some(&tumbler),
    )
    .unwrap();
    assert_eq!(local, trusted);
    // Without a committer (old callers) every commit with trailers is listed.
    let all = w
        .log(key(&url), Credentials::None, "envs/staging", None, 10, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].commit, forged_id.to_string());
}
