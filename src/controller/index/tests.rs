use super::*;
use crate::api::ReleaseStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn rel(ns: &str, name: &str, env: &str, app: &str, created: i64, uid: &str) -> Release {
    let mut r: Release = serde_json::from_value(serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name, "namespace": ns, "uid": uid,
            "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string()},
        "spec": {"environment": env, "app": app, "version": "1"},
    }))
    .unwrap();
    r.status = Some(ReleaseStatus::default());
    r
}

fn attached(ns: &str, name: &str, env_ns: &str, created: i64, uid: &str) -> Release {
    let mut r = rel(ns, name, "prod", "api", created, uid);
    r.spec.environment_namespace = Some(env_ns.into());
    r
}

fn env(ns: &str, name: &str, spec: serde_json::Value, created: i64) -> Environment {
    let mut doc = serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name, "namespace": ns, "uid": format!("{ns}-{name}"),
            "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string()},
        "spec": {"repository": {"url": "https://git.example/x.git", "path": format!("envs/{name}")}},
    });
    if let Some(extra) = spec.as_object() {
        for (k, v) in extra {
            doc["spec"][k] = v.clone();
        }
    }
    serde_json::from_value(doc).unwrap()
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_string(), name.to_string())
}

#[test]
fn claimants_are_ordered_by_age_then_uid_across_namespaces_and_skip_deleting_ones() {
    let ix = Index::default();
    // Same second: the uid decides, not the name.
    ix.observe(&watcher::Event::Apply(rel(
        "a", "zz", "st", "api", 100, "u1",
    )));
    ix.observe(&watcher::Event::Apply(rel(
        "a", "aa", "st", "api", 100, "u2",
    )));
    ix.observe(&watcher::Event::Apply(rel(
        "a", "old", "st", "api", 50, "u9",
    )));
    ix.observe(&watcher::Event::Apply(rel(
        "a", "web", "st", "web", 10, "u3",
    )));
    ix.observe(&watcher::Event::Apply(rel("b", "x", "st", "api", 1, "u4")));
    let st = key("a", "st");
    assert_eq!(ix.claimants(&st, "api"), ["a/old", "a/zz", "a/aa"]);
    let mut gone = rel("a", "old", "st", "api", 50, "u9");
    gone.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(60).unwrap()));
    ix.observe(&watcher::Event::Apply(gone.clone()));
    assert_eq!(ix.claimants(&st, "api"), ["a/zz", "a/aa"]);
    assert_eq!(ix.users(&st).len(), 4);
    ix.observe(&watcher::Event::Delete(gone));
    assert_eq!(
        ix.users(&st),
        [key("a", "aa"), key("a", "web"), key("a", "zz")]
    );
    assert!(ix.users(&key("a", "prod")).is_empty());
    // Releases of other namespaces attached to one Environment claim together.
    ix.observe(&watcher::Event::Apply(attached(
        "team-b", "api", "platform", 7, "u7",
    )));
    ix.observe(&watcher::Event::Apply(attached(
        "team-a", "api", "platform", 5, "u5",
    )));
    assert_eq!(
        ix.claimants(&key("platform", "prod"), "api"),
        ["team-a/api", "team-b/api"]
    );
}

#[test]
fn a_relist_replaces_the_index_when_it_is_done() {
    let ix = Index::default();
    let st = key("a", "st");
    ix.observe(&watcher::Event::Apply(rel(
        "a", "one", "st", "api", 1, "u1",
    )));
    ix.observe(&watcher::Event::Init);
    ix.observe(&watcher::Event::InitApply(rel(
        "a", "two", "st", "api", 1, "u2",
    )));
    assert_eq!(
        ix.users(&st),
        [key("a", "one")],
        "answers from the old state until done"
    );
    ix.observe(&watcher::Event::InitDone);
    assert_eq!(ix.users(&st), [key("a", "two")]);
}

#[test]
fn kustomization_changes_map_to_the_waiting_releases_they_apply() {
    let ix = Index::default();
    let mut waiting = rel("team", "api", "staging", "api", 1, "u1");
    waiting.status = Some(ReleaseStatus {
        commit: Some("abc".into()),
        phase: Phase::Committed,
        ..Default::default()
    });
    let mut done = rel("team", "web", "staging", "web", 1, "u2");
    done.status = Some(ReleaseStatus {
        commit: Some("abc".into()),
        phase: Phase::Ready,
        ..Default::default()
    });
    ix.observe(&watcher::Event::Apply(waiting));
    ix.observe(&watcher::Event::Apply(done));
    let flux = serde_json::json!({"flux": {"kustomizations": [{"name": "apps", "namespace": "flux-system"}]}});
    ix.environment(&env("team", "staging", flux, 1));
    assert_eq!(ix.applied_by("flux-system", "apps"), [key("team", "api")]);
    assert!(ix.applied_by("flux-system", "other").is_empty());
    assert!(ix.applied_by("team", "apps").is_empty());
    // Per-app mode: `<environment>-<app>`.
    let per_app = serde_json::json!({"flux": {"perApp": true, "gitRepository": {"name": "repo"},
        "kustomizations": [{"name": "apps", "namespace": "flux-system"}]}});
    ix.environment(&env("team", "staging", per_app, 1));
    assert_eq!(ix.applied_by("team", "staging-api"), [key("team", "api")]);
    assert!(ix.applied_by("flux-system", "staging-web").is_empty());
}

#[test]
fn the_later_of_two_environments_writing_to_overlapping_folders_is_found() {
    let ix = Index::default();
    let first = env("platform", "prod", serde_json::json!({}), 10);
    ix.environment(&first);
    // Same repository (another spelling of its URL), a folder inside the first one's.
    let nested = env(
        "team",
        "sneaky",
        serde_json::json!({"repository": {"url": "http://GIT.example/x/", "path": "envs/prod/api"}}),
        20,
    );
    ix.environment(&nested);
    assert_eq!(ix.overlapping(&nested), Some(key("platform", "prod")));
    assert_eq!(
        ix.overlapping(&first),
        None,
        "the older one keeps its folder"
    );
    let elsewhere = env(
        "team",
        "other",
        serde_json::json!({"repository": {"url": "https://git.example/x.git", "path": "envs/prod-eu"}}),
        30,
    );
    ix.environment(&elsewhere);
    assert_eq!(
        ix.overlapping(&elsewhere),
        None,
        "a sibling folder is not nested"
    );
    let other_branch = env(
        "team",
        "branch",
        serde_json::json!({"repository": {"url": "https://git.example/x.git", "branch": "dev", "path": "envs/prod"}}),
        40,
    );
    ix.environment(&other_branch);
    assert_eq!(ix.overlapping(&other_branch), None);
}

#[test]
fn followers_are_found_by_their_upstream_and_forgotten_when_they_change_or_go() {
    let ix = Index::default();
    let follower = |ns: &str, name: &str, up: serde_json::Value| {
        let mut r = rel(ns, name, "prod", "api", 1, name);
        r.spec.follow = Some(serde_json::from_value(serde_json::json!({"release": up})).unwrap());
        r
    };
    let prod = follower("a", "api-prod", serde_json::json!({"name": "api-staging"}));
    let other = follower(
        "b",
        "api",
        serde_json::json!({"name": "api-staging", "namespace": "a"}),
    );
    ix.observe(&watcher::Event::Apply(prod.clone()));
    ix.observe(&watcher::Event::Apply(other.clone()));
    let staging = key("a", "api-staging");
    assert_eq!(
        ix.followers(&staging),
        [key("a", "api-prod"), key("b", "api")]
    );
    // The follower moves to another upstream: the old one no longer lists it.
    let moved = follower("b", "api", serde_json::json!({"name": "api-ci"}));
    ix.observe(&watcher::Event::Apply(moved.clone()));
    assert_eq!(ix.followers(&staging), [key("a", "api-prod")]);
    assert_eq!(ix.followers(&key("b", "api-ci")), [key("b", "api")]);
    // Following nothing, or deleted: gone.
    ix.observe(&watcher::Event::Apply(rel(
        "a", "api-prod", "prod", "api", 1, "x",
    )));
    ix.observe(&watcher::Event::Delete(moved));
    assert!(ix.followers(&staging).is_empty());
    assert!(ix.followers(&key("b", "api-ci")).is_empty());
    // A relist rebuilds it from what is listed.
    ix.observe(&watcher::Event::Init);
    ix.observe(&watcher::Event::InitApply(other));
    ix.observe(&watcher::Event::InitDone);
    assert_eq!(ix.followers(&staging), [key("b", "api")]);
}
