//! The few Flux types Tumbler reads, with only the fields it needs, and the revision format
//! Flux writes (`<branch>@sha1:<hex>`). Parsed from dynamic objects so that a Flux upgrade
//! that adds fields never breaks Tumbler.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Deserialize;

/// `kustomize.toolkit.fluxcd.io/v1` Kustomization.
pub fn kustomization_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
    ))
}

/// `helm.toolkit.fluxcd.io/v2` HelmRelease.
pub fn helm_release_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
    ))
}

/// `source.toolkit.fluxcd.io/v1` GitRepository.
pub fn git_repository_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
    ))
}

/// The annotation `flux reconcile` sets to ask a controller to reconcile now.
pub const RECONCILE_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// A Flux condition, reduced to what Tumbler copies.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub observed_generation: Option<i64>,
}

/// Status of a Kustomization or HelmRelease, reduced to what Tumbler reads.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxStatus {
    #[serde(default)]
    pub conditions: Vec<FluxCondition>,
    #[serde(default)]
    pub last_applied_revision: Option<String>,
    #[serde(default)]
    pub last_attempted_revision: Option<String>,
    #[serde(default)]
    pub observed_generation: Option<i64>,
}

/// What Tumbler knows of one Flux object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FluxObject {
    pub suspended: bool,
    pub generation: Option<i64>,
    pub status: FluxStatus,
    /// `spec.sourceRef` (kind, name, namespace) of a Kustomization.
    pub source: Option<(String, String, Option<String>)>,
}

impl FluxObject {
    /// Reads the fields Tumbler needs from a dynamic object; missing fields are defaults.
    pub fn from_dynamic(obj: &DynamicObject) -> Self {
        let status = obj
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        let spec = obj.data.get("spec");
        let suspended = spec
            .and_then(|s| s.get("suspend"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let source = spec.and_then(|s| s.get("sourceRef")).and_then(|r| {
            Some((
                r.get("kind")?.as_str()?.to_string(),
                r.get("name")?.as_str()?.to_string(),
                r.get("namespace")
                    .and_then(|n| n.as_str())
                    .map(str::to_string),
            ))
        });
        FluxObject {
            suspended,
            generation: obj.metadata.generation,
            status,
            source,
        }
    }

    /// The `Ready` condition, if Flux has written one for the current generation.
    pub fn ready(&self) -> Option<&FluxCondition> {
        self.status.conditions.iter().find(|c| c.type_ == "Ready")
    }
}

/// The commit of a Flux revision: `main@sha1:abc` → `abc`; a bare hex sha is accepted too.
pub fn revision_commit(revision: &str) -> Option<&str> {
    let sha = match revision.rsplit_once("sha1:") {
        Some((_, sha)) => sha,
        None => revision
            .rsplit_once('/')
            .map(|(_, s)| s)
            .unwrap_or(revision),
    };
    (sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha)
}

/// The revision Flux writes for a commit on a branch.
pub fn revision(branch: &str, commit: &str) -> String {
    format!("{branch}@sha1:{commit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_round_trips_through_flux_format() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(revision("main", sha), format!("main@sha1:{sha}"));
        assert_eq!(revision_commit(&revision("main", sha)), Some(sha));
        assert_eq!(revision_commit(&format!("main/{sha}")), Some(sha));
        assert_eq!(revision_commit("main@sha1:"), None);
        assert_eq!(revision_commit("not-a-sha"), None);
    }

    #[test]
    fn flux_object_reads_status_and_suspend() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "generation": 3},
            "spec": {"suspend": true, "sourceRef": {"kind": "GitRepository", "name": "gitops"}},
            "status": {"lastAppliedRevision": "main@sha1:abcdef1", "observedGeneration": 3,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision: main@sha1:abcdef1", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        let k = FluxObject::from_dynamic(&obj);
        assert!(k.suspended);
        assert_eq!(k.ready().unwrap().status, "True");
        assert_eq!(
            k.status.last_applied_revision.as_deref(),
            Some("main@sha1:abcdef1")
        );
        assert_eq!(
            k.source,
            Some(("GitRepository".into(), "gitops".into(), None))
        );
    }
}
