//! Policy: every namespaced object goes to the Release's namespace and carries Tumbler's
//! labels; cluster-scoped kinds and kinds outside the allow-list are refused, naming the
//! object.

use serde_json::{Value, json};

use super::{Ctx, RenderError};
use crate::api::PolicySpec;

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

/// The API group of an object (`""` for the core group).
pub fn group_of(obj: &Value) -> &str {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// `Kind/name` of an object, for messages.
pub fn describe(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

pub fn is_cluster_scoped(obj: &Value) -> bool {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let group = group_of(obj);
    CLUSTER_SCOPED
        .iter()
        .any(|(k, g)| *k == kind && *g == group)
}

/// Sets namespace and labels, refusing objects that name another namespace.
pub fn place(obj: &mut Value, ctx: &Ctx<'_>, policy: &PolicySpec) -> Result<(), RenderError> {
    let cluster = is_cluster_scoped(obj);
    if cluster && !policy.allow_cluster_scoped {
        return Err(RenderError::ClusterScopedRefused {
            object: describe(obj),
        });
    }
    let described = describe(obj);
    let metadata = obj["metadata"]
        .as_object_mut()
        .expect("checked by the source");
    if cluster {
        metadata.remove("namespace");
    } else {
        match metadata.get("namespace").and_then(Value::as_str) {
            Some(ns) if ns != ctx.namespace => {
                return Err(RenderError::WrongNamespace {
                    object: described,
                    namespace: ns.to_string(),
                    target: ctx.namespace.to_string(),
                });
            }
            _ => {
                metadata.insert("namespace".into(), json!(ctx.namespace));
            }
        }
    }
    let metadata = obj["metadata"].as_object_mut().expect("object");
    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        for (k, v) in ctx.labels() {
            labels.entry(k).or_insert(json!(v));
        }
    }
    let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(
            "tumbler.dev/release".into(),
            json!(format!("{}/{}", ctx.release_ns, ctx.release)),
        );
    }
    Ok(())
}

/// Checks the allow-list and, after patches, that nothing moved namespace.
pub fn check(obj: &Value, ctx: &Ctx<'_>, policy: &PolicySpec) -> Result<(), RenderError> {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let group = group_of(obj);
    if !policy.allowed_kinds.is_empty() {
        let allowed = policy
            .allowed_kinds
            .iter()
            .any(|entry| match entry.split_once('.') {
                Some((k, g)) => k == kind && g == group,
                None => entry == kind,
            });
        if !allowed {
            return Err(RenderError::ForbiddenKind {
                object: describe(obj),
                kind: kind.to_string(),
                allowed: policy.allowed_kinds.join(", "),
            });
        }
    }
    if is_cluster_scoped(obj) {
        if !policy.allow_cluster_scoped {
            return Err(RenderError::ClusterScopedRefused {
                object: describe(obj),
            });
        }
    } else if obj["metadata"]["namespace"].as_str() != Some(ctx.namespace) {
        return Err(RenderError::WrongNamespace {
            object: describe(obj),
            namespace: obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            target: ctx.namespace.to_string(),
        });
    }
    Ok(())
}
