//! The release history read back from commit trailers.

use super::*;

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
    )
    .unwrap();
    assert_eq!(local.len(), 1);
}
