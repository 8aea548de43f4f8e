//! Promotion (pure): from a follower, what it sees of its upstream and the time, decide
//! whether to promote the upstream's version now, when to look again, and the `Promoted`
//! condition and `status.promotion` that say why (not).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;

use crate::api::{
    self, Environment, FAILED_VERSIONS_KEPT, Follow, Phase, PromotionStatus, Release, Status,
};

use super::super::super::reason::Reason;
use super::admission;

/// What observe found of the upstream.
#[derive(Debug)]
pub enum Upstream {
    Found(Box<Release>),
    NotFound,
    /// It could not be read (the message).
    Unreadable(String),
}

/// Everything the decision needs.
#[derive(Debug)]
pub struct PromotionFacts<'a> {
    pub follower: &'a Release,
    pub follow: &'a Follow,
    /// The follower's Environment, when it was read.
    pub env: Option<&'a Environment>,
    /// Labels of the upstream's namespace, when the Environment admits by selector.
    pub upstream_labels: Option<&'a BTreeMap<String, String>>,
    pub upstream: Upstream,
    pub now: jiff::Timestamp,
}

/// The artifact a promotion copies besides the version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    /// `spec.template.image` tag and digest (each replaced, absent ones removed).
    Image {
        tag: Option<String>,
        digest: Option<String>,
    },
    /// `spec.helm.chart.version`.
    Chart { version: String },
    /// Raw manifests: the version alone.
    None,
}

/// The patch a promotion makes on the follower's spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promote {
    pub version: String,
    pub artifact: Artifact,
    /// `<namespace>/<name>@<version>` of the upstream.
    pub from: String,
}

/// The decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Promotion {
    pub status: PromotionStatus,
    /// The `Promoted` condition: status, reason, message.
    pub condition: (Status, Reason, String),
    /// Patch the follower now.
    pub promote: Option<Promote>,
    /// Look again then (the end of the soak).
    pub wake_in: Option<Duration>,
}

/// The version an upstream is Ready at, for its current generation, and since when.
pub fn ready_at(up: &Release) -> Option<(String, jiff::Timestamp)> {
    let st = up.status.as_ref()?;
    let generation = up.metadata.generation;
    if st.phase != Phase::Ready || st.observed_generation != generation {
        return None;
    }
    let ready = api::find_condition(&st.conditions, api::READY)?;
    (ready.status == "True" && ready.observed_generation == generation)
        .then(|| (up.spec.version.clone(), ready.last_transition_time.0))
}

/// The version an upstream failed at, for its current generation: the cluster refused what
/// was committed (Flux, the rollout, the HelmRelease). Not failures Tumbler's side of git
/// (credentials, rendering): those say nothing about the version.
pub fn failed_at(up: &Release) -> Option<String> {
    let st = up.status.as_ref()?;
    if st.phase != Phase::Failed || st.observed_generation != up.metadata.generation {
        return None;
    }
    let ready = api::find_condition(&st.conditions, api::READY)?;
    let cluster = [
        Reason::FluxFailed,
        Reason::RolloutStuck,
        Reason::HelmReleaseFailed,
    ]
    .iter()
    .any(|r| r.as_str() == ready.reason);
    cluster.then(|| up.spec.version.clone())
}

/// What a Release would take from `up`: its version and artifact; `Err` when the two use
/// different sources (nothing sensible to copy).
pub fn artifact_of(follower: &Release, up: &Release) -> Result<Artifact, String> {
    match (
        follower.source_kind(),
        up.source_kind(),
        &up.spec.template,
        &up.spec.helm,
    ) {
        ("template", "template", Some(t), _) => Ok(Artifact::Image {
            tag: t.image.tag.clone(),
            digest: t.image.digest.clone(),
        }),
        ("helm", "helm", _, Some(h)) => Ok(Artifact::Chart {
            version: h.chart.version.clone(),
        }),
        ("manifests", "manifests", _, _) => Ok(Artifact::None),
        (mine, theirs, _, _) => Err(format!(
            "this Release uses {mine}, the followed one {theirs}: only the same kind of source can be promoted"
        )),
    }
}

/// Whether the follower's spec already holds this version and artifact.
fn holds(follower: &Release, version: &str, artifact: &Artifact) -> bool {
    follower.spec.version == version
        && match artifact {
            Artifact::Image { tag, digest } => follower
                .spec
                .template
                .as_ref()
                .is_some_and(|t| t.image.tag == *tag && t.image.digest == *digest),
            Artifact::Chart { version } => follower
                .spec
                .helm
                .as_ref()
                .is_some_and(|h| h.chart.version == *version),
            Artifact::None => true,
        }
}

/// Whether the follower's Environment lets it follow a Release of `upstream_ns`: its own
/// namespace and the Environment's always; another one only when the Environment admits
/// that namespace's Releases (`spec.releases.namespaces`): whoever may push versions into
/// the follower must be someone who could release into its Environment anyway.
pub fn follow_refusal(facts: &PromotionFacts<'_>, upstream_ns: &str) -> Option<String> {
    let own = facts.follower.namespace().unwrap_or_default();
    if upstream_ns == own {
        return None;
    }
    let Some(env) = facts.env else {
        return Some(format!(
            "its Environment could not be read, so following a Release of namespace {upstream_ns:?} is not allowed yet"
        ));
    };
    if env.namespace().as_deref() == Some(upstream_ns) {
        return None;
    }
    admission::namespace_refusal(env, upstream_ns, facts.upstream_labels).map(|e| e.to_string())
}

/// Decides the promotion of a follower.
pub fn decide(facts: &PromotionFacts<'_>) -> Promotion {
    let follower = facts.follower;
    let own_ns = follower.namespace().unwrap_or_default();
    let (up_ns, up_name) = facts.follow.upstream_key(&own_ns);
    let upstream_ref = format!("{up_ns}/{up_name}");
    let old = follower
        .status
        .as_ref()
        .and_then(|s| s.promotion.clone())
        .filter(|p| p.upstream == upstream_ref);
    let mut status = PromotionStatus {
        upstream: upstream_ref.clone(),
        failed_versions: old.map(|p| p.failed_versions).unwrap_or_default(),
        ..PromotionStatus::default()
    };
    let waiting = |status: PromotionStatus, reason: Reason, message: String| Promotion {
        status,
        condition: (Status::False, reason, message),
        promote: None,
        wake_in: None,
    };
    if up_ns == own_ns && up_name == follower.name_any() {
        return waiting(
            status,
            Reason::InvalidFollow,
            "spec.follow names this Release itself".into(),
        );
    }
    if let Some(why) = follow_refusal(facts, &up_ns) {
        return waiting(
            status,
            Reason::UpstreamNotAllowed,
            format!("cannot follow {upstream_ref}: {why}"),
        );
    }
    let up = match &facts.upstream {
        Upstream::Found(up) => up,
        Upstream::NotFound => {
            return waiting(
                status,
                Reason::UpstreamNotFound,
                format!("the followed Release {upstream_ref} does not exist"),
            );
        }
        Upstream::Unreadable(e) => {
            return waiting(
                status,
                Reason::UpstreamNotFound,
                format!("the followed Release {upstream_ref} could not be read: {e}"),
            );
        }
    };
    if let Some(failed) = failed_at(up) {
        status.failed_versions.retain(|v| *v != failed);
        status.failed_versions.insert(0, failed);
        status.failed_versions.truncate(FAILED_VERSIONS_KEPT);
    }
    let Some((version, since)) = ready_at(up) else {
        let phase = up.status.as_ref().map(|s| s.phase).unwrap_or_default();
        let (reason, what) = if status.failed_versions.contains(&up.spec.version) {
            (Reason::UpstreamFailed, "failed")
        } else {
            (Reason::UpstreamNotReady, "is not Ready")
        };
        return waiting(
            status,
            reason,
            format!(
                "{upstream_ref} {what} at version {} (phase {phase}); nothing to promote",
                up.spec.version
            ),
        );
    };
    status.version = Some(version.clone());
    status.ready_since = Some(since.to_string());
    let artifact = match artifact_of(follower, up) {
        Ok(a) => a,
        Err(why) => return waiting(status, Reason::SourceMismatch, why),
    };
    if holds(follower, &version, &artifact) {
        return Promotion {
            status,
            condition: (
                Status::True,
                Reason::UpToDate,
                format!("at version {version}, as {upstream_ref}"),
            ),
            promote: None,
            wake_in: None,
        };
    }
    if status.failed_versions.contains(&version) {
        return waiting(
            status,
            Reason::UpstreamFailed,
            format!(
                "version {version} failed in {upstream_ref} before; it is never promoted (set spec.version by hand to take it anyway)"
            ),
        );
    }
    if follower.promotion_held() {
        return waiting(
            status,
            Reason::PromotionHeld,
            format!(
                "rolled back by hand ({}): version {version} of {upstream_ref} is not promoted until `tumbler promote {}` (or removing the annotation)",
                api::ROLLBACK_ANNOTATION,
                follower.name_any()
            ),
        );
    }
    if !facts.follow.auto() {
        return waiting(
            status,
            Reason::AutoPromotionOff,
            format!(
                "version {version} is Ready in {upstream_ref}; `tumbler promote {}` promotes it",
                follower.name_any()
            ),
        );
    }
    let soak = facts.follow.soak_seconds();
    let at = since
        .checked_add(jiff::SignedDuration::from_secs(soak as i64))
        .unwrap_or(since);
    status.promotable_at = Some(at.to_string());
    if at > facts.now {
        let left = facts.now.duration_until(at);
        let wake = Duration::try_from(left).unwrap_or_default();
        let mut p = waiting(
            status,
            Reason::Soaking,
            format!("version {version} of {upstream_ref} soaks until {at}"),
        );
        p.wake_in = Some(wake);
        return p;
    }
    let from = format!("{upstream_ref}@{version}");
    Promotion {
        status,
        condition: (
            Status::False,
            Reason::Promoting,
            format!("promoting version {version} from {upstream_ref}"),
        ),
        promote: Some(Promote {
            version,
            artifact,
            from,
        }),
        wake_in: None,
    }
}

/// The JSON merge patch of a promotion on the follower: version, artifact, the
/// `promoted-from` annotation; `resource_version` makes it fail rather than overwrite a
/// change it did not see. `release_hold` also removes the rollback annotation.
pub fn patch(p: &Promote, resource_version: Option<&str>, release_hold: bool) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(api::PROMOTED_FROM_ANNOTATION.into(), p.from.clone().into());
    if release_hold {
        annotations.insert(api::ROLLBACK_ANNOTATION.into(), serde_json::Value::Null);
    }
    let mut spec = serde_json::json!({"version": p.version});
    match &p.artifact {
        Artifact::Image { tag, digest } => {
            spec["template"] = serde_json::json!({"image": {"tag": tag, "digest": digest}});
        }
        Artifact::Chart { version } => {
            spec["helm"] = serde_json::json!({"chart": {"version": version}});
        }
        Artifact::None => {}
    }
    let mut metadata = serde_json::json!({"annotations": annotations});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = rv.into();
    }
    serde_json::json!({"metadata": metadata, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn release(ns: &str, name: &str, version: &str, follow: serde_json::Value) -> Release {
        let mut doc = serde_json::json!({
            "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": name, "namespace": ns, "generation": 3, "resourceVersion": "7"},
            "spec": {"environment": "production", "app": "api", "version": version,
                "template": {"image": {"repository": "r", "tag": version}}},
        });
        if !follow.is_null() {
            doc["spec"]["follow"] = follow;
        }
        serde_json::from_value(doc).unwrap()
    }

    /// An upstream whose current generation is in `phase` with this Ready reason, since
    /// `since` (seconds before NOW).
    fn upstream(version: &str, phase: Phase, reason: &str, since: i64) -> Release {
        let mut up = release("team", "api-staging", version, serde_json::Value::Null);
        let ready = if phase == Phase::Ready {
            "True"
        } else {
            "False"
        };
        up.status = Some(serde_json::from_value(serde_json::json!({
            "phase": phase, "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "m",
                "observedGeneration": 3,
                "lastTransitionTime": jiff::Timestamp::from_second(NOW - since).unwrap().to_string()}],
        })).unwrap());
        up
    }

    fn decide_for(follower: &Release, up: Upstream) -> Promotion {
        decide(&PromotionFacts {
            follower,
            follow: follower.spec.follow.as_ref().unwrap(),
            env: None,
            upstream_labels: None,
            upstream: up,
            now: jiff::Timestamp::from_second(NOW).unwrap(),
        })
    }

    fn found(r: Release) -> Upstream {
        Upstream::Found(Box::new(r))
    }

    #[test]
    fn a_ready_upstream_is_promoted_after_its_soak_and_not_before() {
        let f = release(
            "team",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-staging"}, "soak": "30m"}),
        );
        let p = decide_for(&f, found(upstream("2.0", Phase::Ready, "Applied", 600)));
        assert_eq!(p.condition.1, Reason::Soaking);
        assert_eq!(p.promote, None);
        assert_eq!(p.wake_in, Some(Duration::from_secs(1200)));
        assert_eq!(p.status.version.as_deref(), Some("2.0"));
        let p = decide_for(&f, found(upstream("2.0", Phase::Ready, "Applied", 1800)));
        assert_eq!(p.condition.1, Reason::Promoting);
        assert_eq!(
            p.promote,
            Some(Promote {
                version: "2.0".into(),
                artifact: Artifact::Image {
                    tag: Some("2.0".into()),
                    digest: None
                },
                from: "team/api-staging@2.0".into(),
            })
        );
        let body = patch(p.promote.as_ref().unwrap(), Some("7"), false);
        assert_eq!(
            body,
            serde_json::json!({"metadata": {"resourceVersion": "7", "annotations": {"tumbler.dev/promoted-from": "team/api-staging@2.0"}},
                "spec": {"version": "2.0", "template": {"image": {"tag": "2.0", "digest": null}}}})
        );
        // Already there: nothing to do.
        let at = release(
            "team",
            "api-prod",
            "2.0",
            f.spec
                .follow
                .clone()
                .map(|x| serde_json::to_value(x).unwrap())
                .unwrap(),
        );
        let p = decide_for(&at, found(upstream("2.0", Phase::Ready, "Applied", 1800)));
        assert_eq!(p.condition.0, Status::True);
        assert_eq!(p.promote, None);
    }

    #[test]
    fn failed_versions_are_remembered_and_never_promoted() {
        let mut f = release(
            "team",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-staging"}}),
        );
        let p = decide_for(&f, found(upstream("2.0", Phase::Failed, "RolloutStuck", 5)));
        assert_eq!(p.condition.1, Reason::UpstreamFailed);
        assert_eq!(p.status.failed_versions, ["2.0"]);
        // Git-side failures say nothing about the version.
        let p2 = decide_for(
            &f,
            found(upstream("2.0", Phase::Failed, "AuthenticationFailed", 5)),
        );
        assert!(p2.status.failed_versions.is_empty());
        assert_eq!(p2.condition.1, Reason::UpstreamNotReady);
        // Ready again at the same version: still not promoted.
        f.status = Some(crate::api::ReleaseStatus {
            promotion: Some(p.status),
            ..Default::default()
        });
        let p = decide_for(&f, found(upstream("2.0", Phase::Ready, "Applied", 3600)));
        assert_eq!(p.condition.1, Reason::UpstreamFailed);
        assert_eq!(p.promote, None);
        // A newer version is.
        let p = decide_for(&f, found(upstream("3.0", Phase::Ready, "Applied", 3600)));
        assert_eq!(p.promote.map(|p| p.version).as_deref(), Some("3.0"));
        assert_eq!(p.status.failed_versions, ["2.0"], "still remembered");
    }

    #[test]
    fn a_rollback_holds_and_auto_off_waits_for_a_person() {
        let mut f = release(
            "team",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-staging"}}),
        );
        f.metadata.annotations = Some(
            [(
                api::ROLLBACK_ANNOTATION.to_string(),
                "2.0 -> 1.0".to_string(),
            )]
            .into(),
        );
        let p = decide_for(&f, found(upstream("3.0", Phase::Ready, "Applied", 60)));
        assert_eq!(p.condition.1, Reason::PromotionHeld);
        assert_eq!(p.promote, None);
        let body = patch(
            &Promote {
                version: "3.0".into(),
                artifact: Artifact::None,
                from: "team/api-staging@3.0".into(),
            },
            None,
            true,
        );
        assert_eq!(
            body["metadata"]["annotations"][api::ROLLBACK_ANNOTATION],
            serde_json::Value::Null
        );
        let off = release(
            "team",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-staging"}, "auto": false}),
        );
        let p = decide_for(&off, found(upstream("3.0", Phase::Ready, "Applied", 60)));
        assert_eq!(p.condition.1, Reason::AutoPromotionOff);
        assert!(
            p.condition.2.contains("tumbler promote api-prod"),
            "{}",
            p.condition.2
        );
    }

    #[test]
    fn an_upstream_of_another_namespace_needs_the_environments_admission() {
        let f = release(
            "team-b",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-staging", "namespace": "team"}}),
        );
        let env = |from: &str| -> Environment {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": "production", "namespace": "platform"},
                "spec": {"repository": {"url": "https://git.example/x.git", "path": "envs/prod"},
                    "releases": {"namespaces": {"from": from, "selector": {"matchLabels": {"tenant": "yes"}}}}},
            }))
            .unwrap()
        };
        let run = |env: Option<&Environment>, labels: Option<&BTreeMap<String, String>>| {
            decide(&PromotionFacts {
                follower: &f,
                follow: f.spec.follow.as_ref().unwrap(),
                env,
                upstream_labels: labels,
                upstream: found(upstream("2.0", Phase::Ready, "Applied", 60)),
                now: jiff::Timestamp::from_second(NOW).unwrap(),
            })
        };
        let same = env("Same");
        let p = run(Some(&same), None);
        assert_eq!(p.condition.1, Reason::UpstreamNotAllowed);
        assert!(p.condition.2.contains("\"team\""), "{}", p.condition.2);
        assert_eq!(run(None, None).condition.1, Reason::UpstreamNotAllowed);
        let sel = env("Selector");
        assert_eq!(
            run(Some(&sel), None).condition.1,
            Reason::UpstreamNotAllowed
        );
        let labels: BTreeMap<String, String> = [("tenant".into(), "yes".into())].into();
        assert_eq!(
            run(Some(&sel), Some(&labels)).condition.1,
            Reason::Promoting
        );
        assert_eq!(run(Some(&env("All")), None).condition.1, Reason::Promoting);
    }

    #[test]
    fn sources_of_another_kind_and_missing_upstreams_are_said_so() {
        let f = release(
            "team",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-staging"}}),
        );
        let mut up = upstream("2.0", Phase::Ready, "Applied", 60);
        up.spec.template = None;
        up.spec.helm = Some(serde_json::from_value(serde_json::json!({"chart": {"repository": "https://c", "name": "c", "version": "1.2.3"}})).unwrap());
        assert_eq!(
            decide_for(&f, found(up)).condition.1,
            Reason::SourceMismatch
        );
        assert_eq!(
            decide_for(&f, Upstream::NotFound).condition.1,
            Reason::UpstreamNotFound
        );
        let me = release(
            "team",
            "api-prod",
            "1.0",
            serde_json::json!({"release": {"name": "api-prod"}}),
        );
        assert_eq!(
            decide_for(&me, Upstream::NotFound).condition.1,
            Reason::InvalidFollow
        );
        // A newer generation not yet reconciled is not Ready at its version.
        let mut moving = upstream("2.0", Phase::Ready, "Applied", 60);
        moving.metadata.generation = Some(4);
        assert_eq!(
            decide_for(&f, found(moving)).condition.1,
            Reason::UpstreamNotReady
        );
    }
}
