//! Promotion between Environments with real Flux: production follows staging after a
//! soak; a version that failed in staging is never promoted; a rollback by hand holds
//! automatic promotion until `tumbler promote`; `tumbler promote` refuses an upstream that
//! is not Ready.

use std::time::Duration;

use serde_json::json;
use tumbler::api::{Phase, Release};

use crate::harness::*;

/// A GitRepository and a Kustomization `name` applying `envs/<name>` of `url` (no `wait`:
/// Tumbler judges the rollout itself).
fn flux_for(ns: &str, name: &str, url: &str) {
    let doc = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{interval: 10m, url: {url}, ref: {{branch: main}}}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{interval: 10m, retryInterval: 5s, timeout: 1m, path: ./envs/{name}, prune: true, sourceRef: {{kind: GitRepository, name: {name}}}}}\n"
    );
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&doc));
    assert!(ok, "{out}");
}

/// Two Environments with Flux, `staging` deploying into the scenario's namespace and
/// `production` into `prod_ns` (the same app runs in both); returns their repositories.
async fn staging_and_production(s: &Scenario, prod_ns: &str) -> (String, String) {
    let staging = new_repo(&s.ns, false);
    let production = new_repo(&format!("{}-prod", s.ns), false);
    flux_for(&s.ns, "staging", &staging);
    flux_for(&s.ns, "production", &production);
    let flux = |name: &str, target: &str| json!({"targetNamespace": target, "flux": {"kustomizations": [{"name": name}]}});
    s.apply(
        &s.environments(),
        environment("staging", &staging, flux("staging", &s.ns)),
    )
    .await;
    s.apply(
        &s.environments(),
        environment("production", &production, flux("production", prod_ns)),
    )
    .await;
    (staging, production)
}

/// The staging Release `api-staging` (app `api`) at `version`, with extra spec fields.
async fn staging_at(s: &Scenario, version: &str, extra: serde_json::Value) {
    let mut doc = template_release("api-staging", "staging", "api", version);
    merge(&mut doc["spec"], extra);
    s.apply(&s.releases(), doc).await;
}

/// The production Release `api-prod` (app `api`), following `api-staging`.
async fn production_following(s: &Scenario, version: &str, follow: serde_json::Value) {
    let mut doc = template_release("api-prod", "production", "api", version);
    doc["spec"]["follow"] = follow;
    s.apply(&s.releases(), doc).await;
}

fn ready_at(r: &Release, version: &str) -> bool {
    r.spec.version == version
        && ready_is(r, "True", "Applied")
        && r.status.as_ref().is_some_and(|s| s.phase == Phase::Ready)
}

async fn wait_ready_at(s: &Scenario, name: &str, version: &str) -> Release {
    s.wait_release_for(
        name,
        &format!("Ready at {version}"),
        Duration::from_secs(120),
        |r| ready_at(r, version),
    )
    .await
}

fn promoted_reason(r: &Release) -> String {
    cond(r, "Promoted")
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_follows_staging_after_the_soak_and_the_commit_names_the_source() {
    let s = Scenario::new("promote").await;
    let prod = Scenario::bare("promote-prod").await;
    let (_, production) = staging_and_production(&s, &prod.ns).await;
    staging_at(&s, "1.0.0", json!({})).await;
    let staging = wait_ready_at(&s, "api-staging", "1.0.0").await;
    let ready_since = cond(&staging, "Ready").unwrap().last_transition_time.0;

    production_following(
        &s,
        "0.9.0",
        json!({"release": {"name": "api-staging"}, "soak": "6s"}),
    )
    .await;
    // While the soak runs, the follower says so.
    let soaking = s
        .wait_release("api-prod", "Promoted=False Soaking", |r| {
            promoted_reason(r) == "Soaking"
        })
        .await;
    let promotion = soaking.status.clone().unwrap().promotion.unwrap();
    assert_eq!(promotion.upstream, format!("{}/api-staging", s.ns));
    assert_eq!(promotion.version.as_deref(), Some("1.0.0"));
    assert!(promotion.promotable_at.is_some(), "{promotion:?}");
    assert_eq!(
        soaking.spec.version, "0.9.0",
        "promoted before the soak ended"
    );

    let rel = wait_ready_at(&s, "api-prod", "1.0.0").await;
    let promoted = cond(&rel, "Promoted").unwrap();
    assert_eq!(
        (promoted.status.as_str(), promoted.reason.as_str()),
        ("True", "UpToDate")
    );
    let from = format!("{}/api-staging@1.0.0", s.ns);
    assert_eq!(
        rel.metadata.annotations.as_ref().unwrap()["tumbler.dev/promoted-from"],
        from
    );
    // The promotion commit, read from the git server.
    let clone = Clone::of(&production);
    let commit = rel.status.as_ref().unwrap().commit.clone().unwrap();
    let msg = clone.message(&commit);
    assert!(msg.starts_with("promote api 1.0.0 to production"), "{msg}");
    assert!(msg.contains("Tumbler-Action: promote\n"), "{msg}");
    assert!(
        msg.contains(&format!("Tumbler-Promoted-From: {from}\n")),
        "{msg}"
    );
    assert!(
        msg.contains("Tumbler-Requested-By: tumbler-promotion"),
        "{msg}"
    );
    let when: i64 = git(Some(clone.path()), &["log", "-1", "--format=%ct", &commit])
        .trim()
        .parse()
        .unwrap();
    assert!(
        when >= ready_since.as_second() + 6,
        "promoted {} s after staging was Ready, before the 6 s soak",
        when - ready_since.as_second()
    );
    // Only the version and the artifact moved; the rest stays production's.
    let deployment = clone
        .read("envs/production/api/deployment-api.yaml")
        .unwrap();
    assert!(
        deployment.contains("registry.example.com/demo:1.0.0"),
        "{deployment}"
    );
    assert!(
        deployment.contains(&format!("namespace: {}", prod.ns)),
        "{deployment}"
    );
    let (ok, out) = tumbler(&["log", "-n", &s.ns, "-e", "production"]);
    assert!(ok, "{out}");
    let newest = out.lines().nth(1).unwrap_or_default();
    assert!(
        newest.contains("1.0.0")
            && newest.contains("promote")
            && newest.contains("tumbler-promotion"),
        "{out}"
    );

    // A new staging version is promoted by itself: the upstream's change wakes the follower.
    staging_at(&s, "1.1.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "1.1.0").await;
    wait_ready_at(&s, "api-prod", "1.1.0").await;
    s.finish().await;
    prod.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_failed_in_staging_is_never_promoted() {
    let s = Scenario::new("promote-failed").await;
    let prod = Scenario::bare("promote-failed-prod").await;
    staging_and_production(&s, &prod.ns).await;
    staging_at(&s, "1.0.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "1.0.0").await;
    production_following(
        &s,
        "1.0.0",
        json!({"release": {"name": "api-staging"}, "soak": "2s"}),
    )
    .await;
    wait_ready_at(&s, "api-prod", "1.0.0").await;

    // 2.0.0 cannot roll out in staging: pods that never schedule, a short deadline.
    let stuck = json!({"patches": [{"target": {"kind": "Deployment"}, "patch": "spec:\n  progressDeadlineSeconds: 3\n  template:\n    spec:\n      nodeSelector:\n        no-such-node: \"true\"\n"}]});
    staging_at(&s, "2.0.0", stuck).await;
    s.wait_release_for(
        "api-staging",
        "Failed at 2.0.0",
        Duration::from_secs(120),
        |r| {
            r.spec.version == "2.0.0"
                && cond(r, "Ready").is_some_and(|c| c.reason == "RolloutStuck")
        },
    )
    .await;
    let held = s
        .wait_release("api-prod", "2.0.0 remembered as failed", |r| {
            r.status
                .as_ref()
                .and_then(|st| st.promotion.as_ref())
                .is_some_and(|p| p.failed_versions == ["2.0.0"])
        })
        .await;
    assert_eq!(promoted_reason(&held), "UpstreamFailed");

    // Fixed in staging at the same version: Ready again, and still never promoted.
    staging_at(&s, "2.0.0", json!({})).await;
    let fixed = s
        .wait_release_for(
            "api-staging",
            "Ready again at 2.0.0",
            Duration::from_secs(120),
            |r| ready_at(r, "2.0.0") && r.spec.patches.is_empty(),
        )
        .await;
    let ready_since = cond(&fixed, "Ready").unwrap().last_transition_time.0;
    // Well past the soak (2 s).
    while jiff::Timestamp::now() < ready_since + jiff::SignedDuration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rel = s.releases().get("api-prod").await.unwrap();
    assert_eq!(rel.spec.version, "1.0.0", "a failed version was promoted");
    assert_eq!(promoted_reason(&rel), "UpstreamFailed");
    assert!(
        cond(&rel, "Promoted").unwrap().message.contains("2.0.0"),
        "{:?}",
        cond(&rel, "Promoted")
    );
    assert!(ready_at(&rel, "1.0.0"), "production stays Ready on 1.0.0");

    // The next version is promoted again.
    staging_at(&s, "3.0.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "3.0.0").await;
    let rel = wait_ready_at(&s, "api-prod", "3.0.0").await;
    let promotion = rel.status.unwrap().promotion.unwrap();
    assert_eq!(promotion.failed_versions, ["2.0.0"], "still remembered");
    s.finish().await;
    prod.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_holds_auto_promotion_until_tumbler_promote() {
    let s = Scenario::new("promote-hold").await;
    let prod = Scenario::bare("promote-hold-prod").await;
    let (_, production) = staging_and_production(&s, &prod.ns).await;
    staging_at(&s, "1.0.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "1.0.0").await;
    production_following(
        &s,
        "1.0.0",
        json!({"release": {"name": "api-staging"}, "soak": "1s"}),
    )
    .await;
    wait_ready_at(&s, "api-prod", "1.0.0").await;
    staging_at(&s, "2.0.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "2.0.0").await;
    wait_ready_at(&s, "api-prod", "2.0.0").await;

    // A person rolls production back: auto-promotion is held.
    let (ok, out) = tumbler(&["rollback", "api-prod", "--to", "1.0.0", "-n", &s.ns]);
    assert!(ok, "rollback: {out}");
    let rel = s
        .wait_release_for(
            "api-prod",
            "rolled back and held",
            Duration::from_secs(120),
            |r| ready_at(r, "1.0.0") && promoted_reason(r) == "PromotionHeld",
        )
        .await;
    let message = &cond(&rel, "Promoted").unwrap().message;
    assert!(message.contains("tumbler promote api-prod"), "{message}");

    // A newer staging version, Ready well past the soak, is not promoted while held.
    staging_at(&s, "3.0.0", json!({})).await;
    let staging = wait_ready_at(&s, "api-staging", "3.0.0").await;
    let ready_since = cond(&staging, "Ready").unwrap().last_transition_time.0;
    while jiff::Timestamp::now() < ready_since + jiff::SignedDuration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rel = s
        .wait_release("api-prod", "saw 3.0.0 upstream", |r| {
            r.status
                .as_ref()
                .and_then(|st| st.promotion.as_ref())
                .is_some_and(|p| p.version.as_deref() == Some("3.0.0"))
        })
        .await;
    assert_eq!(rel.spec.version, "1.0.0", "promoted while held");
    assert_eq!(promoted_reason(&rel), "PromotionHeld");

    // `tumbler promote` lifts the hold and promotes.
    let (ok, out) = tumbler(&["promote", "api-prod", "-n", &s.ns]);
    assert!(
        ok && out.contains("3.0.0") && out.contains("released"),
        "{out}"
    );
    let rel = wait_ready_at(&s, "api-prod", "3.0.0").await;
    assert!(
        !rel.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key("tumbler.dev/rollback"),
        "the hold is still there"
    );
    assert_eq!(promoted_reason(&rel), "UpToDate");
    let msg = Clone::of(&production).message(rel.status.as_ref().unwrap().commit.as_ref().unwrap());
    assert!(msg.contains("Tumbler-Action: promote\n"), "{msg}");
    assert!(
        msg.contains(&format!(
            "Tumbler-Promoted-From: {}/api-staging@3.0.0\n",
            s.ns
        )),
        "{msg}"
    );
    assert!(
        msg.contains("Tumbler-Requested-By: tumbler-promote\n"),
        "{msg}"
    );
    // And automatic promotion is back.
    staging_at(&s, "4.0.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "4.0.0").await;
    wait_ready_at(&s, "api-prod", "4.0.0").await;
    let (ok, out) = tumbler(&[
        "log",
        "-n",
        &s.ns,
        "-e",
        "production",
        "-a",
        "api",
        "-o",
        "json",
    ]);
    assert!(ok, "{out}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["entry"]["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["promote", "promote", "rollback", "promote", "release"],
        "{out}"
    );
    s.finish().await;
    prod.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tumbler_promote_refuses_an_upstream_that_is_not_ready() {
    let s = Scenario::new("promote-cli").await;
    // Without Flux nothing is ever Ready: committed, `NotVerified`.
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    let prod_url = new_repo(&format!("{}-prod", s.ns), false);
    s.apply(
        &s.environments(),
        environment("production", &prod_url, json!({})),
    )
    .await;
    staging_at(&s, "2.0.0", json!({})).await;
    s.wait_release("api-staging", "committed", committed).await;
    production_following(
        &s,
        "1.0.0",
        json!({"release": {"name": "api-staging"}, "auto": false}),
    )
    .await;
    let rel = s
        .wait_release("api-prod", "Promoted=False UpstreamNotReady", |r| {
            committed(r) && promoted_reason(r) == "UpstreamNotReady"
        })
        .await;
    assert_eq!(rel.spec.version, "1.0.0");

    let (ok, out) = tumbler(&["promote", "api-prod", "-n", &s.ns]);
    assert!(!ok, "promoted from an upstream that is not Ready: {out}");
    assert!(
        out.contains(&format!(
            "{}/api-staging is not Ready at version 2.0.0",
            s.ns
        )) && out.contains("Committed")
            && out.contains("nothing promoted"),
        "{out}"
    );
    let (ok, out) = tumbler(&["promote", "api-staging", "-n", &s.ns]);
    assert!(!ok && out.contains("follows no other Release"), "{out}");
    let (ok, out) = tumbler(&["promote", "nope", "-n", &s.ns]);
    assert!(!ok && out.contains("not found"), "{out}");
    // Nothing changed.
    let rel = s.releases().get("api-prod").await.unwrap();
    assert_eq!(rel.spec.version, "1.0.0");
    assert!(
        rel.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("tumbler.dev/promoted-from"))
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_release_of_another_namespace_needs_the_environments_admission() {
    // Staging (with Flux) in one namespace, production's follower in another; one controller
    // watches both.
    let mut s = Scenario::bare("promote-xns").await;
    let team = Scenario::bare("promote-xns-team").await;
    s.start_controller_with(&["--watch-namespace", &team.ns]);
    let staging = new_repo(&s.ns, false);
    flux_for(&s.ns, "staging", &staging);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "staging"}]}});
    s.apply(&s.environments(), environment("staging", &staging, flux))
        .await;
    staging_at(&s, "1.0.0", json!({})).await;
    wait_ready_at(&s, "api-staging", "1.0.0").await;

    // Production (no Flux: committed is what it gets) admits only its own namespace.
    let production = new_repo(&team.ns, false);
    team.apply(
        &team.environments(),
        environment("production", &production, json!({})),
    )
    .await;
    let mut doc = template_release("api-prod", "production", "api", "0.9.0");
    doc["spec"]["follow"] = json!({"release": {"name": "api-staging", "namespace": s.ns}});
    team.apply(&team.releases(), doc).await;
    let rel = team
        .wait_release("api-prod", "UpstreamNotAllowed", |r| {
            committed(r) && promoted_reason(r) == "UpstreamNotAllowed"
        })
        .await;
    let message = &cond(&rel, "Promoted").unwrap().message;
    assert!(
        message.contains(&s.ns) && message.contains("spec.releases.namespaces"),
        "{message}"
    );
    assert_eq!(rel.spec.version, "0.9.0");

    // Once production admits the staging namespace (every e2e namespace has this label), it
    // follows it.
    let admit = json!({"releases": {"namespaces": {"from": "Selector",
        "selector": {"matchLabels": {"tumbler.dev/e2e": "true"}}}}});
    team.apply(
        &team.environments(),
        environment("production", &production, admit),
    )
    .await;
    let rel = team
        .wait_release("api-prod", "promoted to 1.0.0", |r| {
            committed(r) && r.spec.version == "1.0.0" && promoted_reason(r) == "UpToDate"
        })
        .await;
    let msg = Clone::of(&production).message(rel.status.as_ref().unwrap().commit.as_ref().unwrap());
    assert!(
        msg.contains(&format!(
            "Tumbler-Promoted-From: {}/api-staging@1.0.0\n",
            s.ns
        )),
        "{msg}"
    );
    team.finish().await;
    s.finish().await;
}
