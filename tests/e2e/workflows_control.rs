//! Per-Release control with real Flux: suspend holds commits and resume writes the pending
//! change; a reconcile request restores a hand-edited folder; `tumbler diff` shows what a
//! commit would change; a preview Release with a short expiry deletes itself and its folder.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tumbler::api::Phase;

use crate::flux::staging_with_flux;
use crate::harness::*;

/// `tumbler ARGS`: exit code and stdout, stderr.
fn tumbler_code(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run tumbler");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn suspended_with(rel: &tumbler::api::Release, text: &str) -> bool {
    ready_is(rel, "False", "Suspended")
        && cond(rel, "Reconciling").is_some_and(|c| c.status == "True")
        && cond(rel, "Ready").is_some_and(|c| c.message.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_holds_commits_and_resume_commits_the_pending_change() {
    let s = Scenario::new("suspend").await;
    let url = new_repo(&s.ns, false);
    staging_with_flux(&s, &url).await;
    s.release("api", "staging", "1.0.0").await;
    s.wait_release("api", "Ready", |r| ready_is(r, "True", "Applied"))
        .await;

    let (ok, out) = tumbler(&["suspend", "api", "-n", &s.ns, "--wait", "--timeout", "60s"]);
    assert!(ok && out.contains("suspended"), "{out}\n{}", s.log_tail(20));
    let rel = s
        .wait_release("api", "Suspended", |r| {
            suspended_with(r, "nothing is committed")
        })
        .await;
    assert_eq!(
        rel.status.as_ref().unwrap().phase,
        Phase::Ready,
        "nothing waits yet"
    );
    let commits = Clone::of(&url).commits();
    // A reconcile request is refused while suspended, as `flux reconcile` does.
    let (ok, out) = tumbler(&["reconcile", "api", "-n", &s.ns]);
    assert!(
        !ok && out.contains("suspended") && out.contains("resume"),
        "{out}"
    );

    // CI applies a new version while suspended: no commit, and the Release says so.
    let since = s.metric(RELEASE_RECONCILES).await;
    s.release("api", "staging", "1.1.0").await;
    let rel = s
        .wait_release("api", "Suspended with a pending change", |r| {
            suspended_with(r, "not committed until it is resumed")
        })
        .await;
    assert_eq!(rel.status.as_ref().unwrap().phase, Phase::Pending);
    s.wait_reconciles(since, 1).await;
    let clone = Clone::of(&url);
    assert_eq!(
        clone.commits(),
        commits,
        "a suspended Release made a commit"
    );
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.0.0")
    );

    // Resume: the pending change is committed and applied by Flux.
    let (ok, out) = tumbler(&["resume", "api", "-n", &s.ns, "--wait", "--timeout", "2m"]);
    assert!(ok, "{out}\n{}", s.log_tail(30));
    assert!(
        out.contains("resumed") && out.contains("version 1.1.0 applied"),
        "{out}"
    );
    let rel = s
        .wait_release("api", "1.1.0 Ready", |r| ready_is(r, "True", "Applied"))
        .await;
    assert_eq!(
        rel.status.unwrap().last_applied_version.as_deref(),
        Some("1.1.0")
    );
    let clone = Clone::of(&url);
    assert_eq!(clone.commits(), commits + 1);
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.1.0")
    );
    // The commit names who changed the spec (the harness's apply), not who resumed.
    let msg = clone.message("HEAD");
    assert!(msg.contains("Tumbler-Requested-By: e2e"), "{msg}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_restores_a_hand_edited_folder_and_diff_shows_what_a_commit_would_change() {
    let s = Scenario::new("reconcile").await;
    let url = new_repo(&s.ns, false);
    staging_with_flux(&s, &url).await;
    s.release("api", "staging", "1.0.0").await;
    s.wait_release("api", "Ready", |r| ready_is(r, "True", "Applied"))
        .await;
    let (code, out, err) = tumbler_code(&["diff", "api", "-n", &s.ns]);
    assert_eq!((code, out.as_str()), (0, ""), "in sync: {err}");

    // A person edits the app folder by hand.
    let rendered = Clone::of(&url)
        .read("envs/staging/api/deployment-api.yaml")
        .unwrap();
    let clone = Clone::of(&url);
    std::fs::write(
        clone.path().join("envs/staging/api/deployment-api.yaml"),
        "edited: by hand\n",
    )
    .unwrap();
    git(Some(clone.path()), &["commit", "-qam", "hand edit"]);
    outside_push(clone.path());
    let (code, out, err) = tumbler_code(&["diff", "api", "-n", &s.ns]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("--- a/envs/staging/api/deployment-api.yaml\n+++ b/envs/staging/api/deployment-api.yaml\n")
            && out.contains("\n-edited: by hand\n")
            && out.contains("\n+kind: Deployment\n"),
        "{out}"
    );
    assert!(
        !out.contains("kustomization.yaml"),
        "only the changed file: {out}"
    );
    // Any reconcile notices the drift, and leaves the edit alone.
    let patch = json!({"metadata": {"labels": {"poke": "1"}}});
    s.releases()
        .patch(
            "api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    s.wait_release("api", "Drifted=True", |r| {
        cond(r, "Drifted").is_some_and(|c| c.status == "True")
    })
    .await;
    let commits = Clone::of(&url).commits();

    // `tumbler reconcile --wait` writes the rendered state again.
    let (ok, out) = tumbler(&[
        "reconcile",
        "api",
        "-n",
        &s.ns,
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert!(
        ok && out.contains("reconciled"),
        "{out}\n{}",
        s.log_tail(30)
    );
    let rel = s.releases().get("api").await.unwrap();
    let requested = rel
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("reconcile.tumbler.dev/requestedAt"))
        .cloned()
        .expect("the annotation is set");
    let st = rel.status.clone().unwrap();
    assert_eq!(
        st.last_handled_reconcile_at.as_deref(),
        Some(requested.as_str())
    );
    assert!(
        cond(&rel, "Drifted").is_some_and(|c| c.status == "False"),
        "{st:?}"
    );
    let after = Clone::of(&url);
    assert_eq!(after.commits(), commits + 1);
    assert_eq!(
        after
            .read("envs/staging/api/deployment-api.yaml")
            .as_deref(),
        Some(rendered.as_str())
    );
    s.wait_release("api", "Ready again", |r| ready_is(r, "True", "Applied"))
        .await;
    let (code, out, _) = tumbler_code(&["diff", "api", "-n", &s.ns]);
    assert_eq!((code, out.as_str()), (0, ""));

    // A changed spec not committed yet (the Release is suspended): diff shows the change.
    let (ok, out) = tumbler(&["suspend", "api", "-n", &s.ns, "--wait"]);
    assert!(ok, "{out}");
    s.release("api", "staging", "2.0.0").await;
    let (code, out, err) = tumbler_code(&["diff", "api", "-n", &s.ns]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("-        image: registry.example.com/demo:1.0.0\n")
            && out.contains("+        image: registry.example.com/demo:2.0.0\n"),
        "{out}"
    );
    assert_eq!(
        Clone::of(&url).commits(),
        commits + 1,
        "diff commits nothing"
    );
    // An error is exit code 2, as diff(1).
    let (code, _, err) = tumbler_code(&["diff", "missing", "-n", &s.ns]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not found"), "{err}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_release_expires_and_its_folder_leaves_git() {
    let s = Scenario::new("preview").await;
    let url = new_repo(&s.ns, false);
    staging_with_flux(&s, &url).await;
    s.release("api", "staging", "1.0.0").await;
    let mut preview = template_release("api-pr-7", "staging", "api-pr-7", "1.1.0-pr.7");
    merge(&mut preview, json!({"spec": {"expiry": {"after": "8s"}}}));
    let start = Instant::now();
    let created = s.apply(&s.releases(), preview).await;
    let rel = s
        .wait_release("api-pr-7", "committed", |r| {
            cond(r, "Committed").is_some_and(|c| c.status == "True")
        })
        .await;
    let expires = rel.status.unwrap().expires_at.expect("status.expiresAt");
    let want = created.metadata.creation_timestamp.unwrap().0 + jiff::SignedDuration::from_secs(8);
    assert_eq!(expires, want.to_string());
    assert!(
        Clone::of(&url).exists("envs/staging/api-pr-7/deployment-api-pr-7.yaml"),
        "the preview is in git"
    );
    // It deletes itself, and its folder leaves git through the finalizer.
    loop {
        if s.releases().get_opt("api-pr-7").await.unwrap().is_none() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the preview was not deleted\n{}",
            s.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_secs(7),
        "deleted before it expired"
    );
    let clone = Clone::of(&url);
    assert!(
        !clone.exists("envs/staging/api-pr-7"),
        "its folder stays in git"
    );
    assert!(
        clone.exists("envs/staging/api/deployment-api.yaml"),
        "the other app stays"
    );
    let kustomization = clone.read("envs/staging/kustomization.yaml").unwrap();
    assert!(!kustomization.contains("api-pr-7"), "{kustomization}");
    assert!(
        s.event_reasons("Release", "api-pr-7")
            .await
            .contains(&"Expired".to_string()),
        "an Expired Event"
    );
    s.finish().await;
}
