//! Policy: every namespaced object goes to the Release's namespace and carries Tumbler's
//! labels; cluster-scoped kinds, kinds outside the allow-list, Flux's own kinds and (for
//! Releases attached from another namespace) RBAC objects are refused, naming the object.

use serde_json::{Value, json};

use super::scope::{Scopes, is_cluster_scoped};
use super::{Ctx, RenderError};
use crate::api::PolicySpec;

/// The API group of Kubernetes RBAC.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// What the policy checks against: the Environment's policy, the kinds' scopes, and
/// whether the Release is attached from another namespace (its namespace, then).
pub(crate) struct Rules<'a> {
    pub policy: &'a PolicySpec,
    pub scopes: Option<&'a Scopes>,
    pub attached_from: Option<&'a str>,
}

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

/// Whether `group` is one of Flux's (`*.toolkit.fluxcd.io`).
pub fn is_flux_group(group: &str) -> bool {
    group == "toolkit.fluxcd.io" || group.ends_with(".toolkit.fluxcd.io")
}

/// Refuses what no place or patch can make acceptable: a cluster-scoped object unless the
/// policy allows them, a Flux object the Release brought (not one Tumbler generated, `own`)
/// unless allowed, an RBAC object of an attached Release unless allowed. Returns whether the
/// object is cluster-scoped.
fn refuse(obj: &Value, rules: &Rules<'_>, own: bool) -> Result<bool, RenderError> {
    let policy = rules.policy;
    let cluster = is_cluster_scoped(obj, rules.scopes);
    if cluster && !policy.allow_cluster_scoped {
        return Err(RenderError::ClusterScopedRefused {
            object: describe(obj),
        });
    }
    let group = group_of(obj);
    if is_flux_group(group) && !own && !policy.allow_flux_objects {
        return Err(RenderError::FluxObjectRefused {
            object: describe(obj),
        });
    }
    if let Some(release_namespace) = rules.attached_from
        && group == RBAC_GROUP
        && !policy.allow_rbac
    {
        return Err(RenderError::RbacRefused {
            object: describe(obj),
            release_namespace: release_namespace.to_string(),
        });
    }
    Ok(cluster)
}

/// Sets namespace and labels, refusing objects that name another namespace.
pub(crate) fn place(
    obj: &mut Value,
    ctx: &Ctx<'_>,
    rules: &Rules<'_>,
    own: bool,
) -> Result<(), RenderError> {
    let cluster = refuse(obj, rules, own)?;
    let described = describe(obj);
    let Some(metadata) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(RenderError::InvalidManifest {
            at: described,
            why: "metadata is not a mapping".into(),
        });
    };
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

/// Whether an `allowedKinds` entry names the kind of `group`: `Kind` matches any group,
/// `Kind.group` that group only (`Kind.` the core group).
fn kind_matches(entry: &str, kind: &str, group: &str) -> bool {
    match entry.split_once('.') {
        Some((k, g)) => k == kind && g == group,
        None => entry == kind,
    }
}

/// After patches: the allow-list, the refusals of [`place`] again, and that nothing moved
/// namespace. `own`: Tumbler generated the object as it is (same group and kind).
pub(crate) fn check(
    obj: &Value,
    ctx: &Ctx<'_>,
    rules: &Rules<'_>,
    own: bool,
) -> Result<(), RenderError> {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let group = group_of(obj);
    let policy = rules.policy;
    if !policy.allowed_kinds.is_empty()
        && !policy
            .allowed_kinds
            .iter()
            .any(|entry| kind_matches(entry, kind, group))
    {
        return Err(RenderError::ForbiddenKind {
            object: describe(obj),
            kind: kind.to_string(),
            allowed: policy.allowed_kinds.join(", "),
        });
    }
    let cluster = refuse(obj, rules, own)?;
    if !cluster && obj["metadata"]["namespace"].as_str() != Some(ctx.namespace) {
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
