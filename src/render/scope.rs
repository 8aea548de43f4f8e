//! Which kinds are cluster-scoped: what the API server's discovery says (CRDs included),
//! else the built-in list of Kubernetes' own cluster-scoped kinds.

use std::collections::HashSet;

use serde_json::Value;

use super::policy::group_of;

/// Built-in kinds without a namespace (`kind`, `group`).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("Namespace", ""),
    ("Node", ""),
    ("PersistentVolume", ""),
    ("ComponentStatus", ""),
    ("ClusterRole", "rbac.authorization.k8s.io"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io"),
    ("CustomResourceDefinition", "apiextensions.k8s.io"),
    ("StorageClass", "storage.k8s.io"),
    ("CSIDriver", "storage.k8s.io"),
    ("CSINode", "storage.k8s.io"),
    ("VolumeAttachment", "storage.k8s.io"),
    ("VolumeAttributesClass", "storage.k8s.io"),
    ("PriorityClass", "scheduling.k8s.io"),
    ("IngressClass", "networking.k8s.io"),
    ("IPAddress", "networking.k8s.io"),
    ("ServiceCIDR", "networking.k8s.io"),
    ("RuntimeClass", "node.k8s.io"),
    (
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io",
    ),
    (
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io",
    ),
    ("ValidatingAdmissionPolicy", "admissionregistration.k8s.io"),
    (
        "ValidatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io",
    ),
    ("MutatingAdmissionPolicy", "admissionregistration.k8s.io"),
    (
        "MutatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io",
    ),
    ("APIService", "apiregistration.k8s.io"),
    ("CertificateSigningRequest", "certificates.k8s.io"),
    ("ClusterTrustBundle", "certificates.k8s.io"),
    ("FlowSchema", "flowcontrol.apiserver.k8s.io"),
    ("PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io"),
    ("DeviceClass", "resource.k8s.io"),
    ("ResourceSlice", "resource.k8s.io"),
    ("TokenReview", "authentication.k8s.io"),
    ("SelfSubjectReview", "authentication.k8s.io"),
    ("SubjectAccessReview", "authorization.k8s.io"),
    ("SelfSubjectAccessReview", "authorization.k8s.io"),
    ("SelfSubjectRulesReview", "authorization.k8s.io"),
];

/// The scope of kinds as API discovery reports it, as `(group, kind)` pairs (`""` for the
/// core group). Built by the controller from discovery; `tumbler render` has none and uses
/// the built-in list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes {
    cluster_scoped: HashSet<(String, String)>,
    namespaced: HashSet<(String, String)>,
}

impl Scopes {
    /// Scopes from the `(group, kind)` pairs discovery lists as cluster-scoped and as
    /// namespaced.
    pub fn from_lists(
        cluster_scoped: impl IntoIterator<Item = (String, String)>,
        namespaced: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Scopes {
            cluster_scoped: cluster_scoped.into_iter().collect(),
            namespaced: namespaced.into_iter().collect(),
        }
    }

    /// Whether discovery knows `kind` of `group` as cluster-scoped (`Some(true)`), as
    /// namespaced (`Some(false)`), or not at all (`None`). Known as both: cluster-scoped,
    /// the safer answer.
    pub fn cluster_scoped(&self, group: &str, kind: &str) -> Option<bool> {
        let key = (group.to_string(), kind.to_string());
        if self.cluster_scoped.contains(&key) {
            Some(true)
        } else if self.namespaced.contains(&key) {
            Some(false)
        } else {
            None
        }
    }
}

/// Whether `obj` is cluster-scoped: as `scopes` says when it knows the kind, else by the
/// built-in list (an unknown kind outside it counts as namespaced).
pub(crate) fn is_cluster_scoped(obj: &Value, scopes: Option<&Scopes>) -> bool {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let group = group_of(obj);
    scopes
        .and_then(|s| s.cluster_scoped(group, kind))
        .unwrap_or_else(|| {
            CLUSTER_SCOPED
                .iter()
                .any(|(k, g)| *k == kind && *g == group)
        })
}
