use super::*;

#[test]
fn deletion_removes_its_own_folder_and_never_hangs_on_what_is_gone() {
    let rel = release("api", 1);
    let env = || Ok(Some(environment(serde_json::json!({}))));
    let own = || Some(Ok((Credentials::None, Some("team/api".to_string()))));
    match deletion(&rel, deleting(env(), own())) {
        Deletion::Remove { change, target, .. } => {
            assert_eq!(change.kind, ChangeKind::Delete);
            assert!(change.files.is_none());
            assert_eq!(target.path, "envs/staging");
        }
        other => panic!("expected a removal, got {other:?}"),
    }
    assert!(matches!(
        deletion(
            &rel,
            deleting(
                env(),
                Some(Ok((Credentials::None, Some("other/api".into()))))
            )
        ),
        Deletion::LetGo(None)
    ));
    assert!(matches!(
        deletion(&rel, deleting(Ok(None), None)),
        Deletion::LetGo(Some((Reason::EnvironmentGone, _)))
    ));
    let secret_gone = Error::Credentials(CredentialsError::SecretNotFound {
        namespace: "team".into(),
        name: "git".into(),
    });
    assert!(matches!(
        deletion(&rel, deleting(env(), Some(Err(secret_gone)))),
        Deletion::LetGo(Some((Reason::FolderLeftInGit, _)))
    ));
    let down = Error::Git(GitError::RepositoryUnreachable {
        url: "u".into(),
        message: "m".into(),
    });
    assert!(matches!(
        deletion(&rel, deleting(env(), Some(Err(down)))),
        Deletion::Retry(_)
    ));
    assert!(matches!(
        deletion(&rel, deleting(Err(kube_error(500)), None)),
        Deletion::Retry(_)
    ));
}
