//! How a strategic merge patch merges each list, as kustomize decides it: from the
//! Kubernetes OpenAPI schema kustomize compiles in (Kubernetes 1.21, kyaml's default), by
//! the path of the list in an object of a built-in kind. Lists that schema gives no merge
//! strategy (`tolerations`, `args`, `envFrom`…) and every list of a kind it does not know
//! (custom resources) are replaced by the patch's, as kustomize replaces them.

/// What a strategic merge does with one list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListMerge {
    /// The patch's list replaces the object's.
    Replace,
    /// A set of scalars: the patch's values, then the object's others (`finalizers`).
    Primitive,
    /// Items are matched by these keys (`x-kubernetes-list-map-keys`, else the
    /// `x-kubernetes-patch-merge-key`) and merged.
    Keys(&'static [&'static str]),
}

/// API groups of the kinds whose schema kustomize knows.
const BUILT_IN_GROUPS: [&str; 16] = [
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "certificates.k8s.io",
    "node.k8s.io",
    "events.k8s.io",
];

/// The path of the pod spec in an object of this group and kind.
fn pod_spec(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (group, kind) {
        ("", "Pod") => &["spec"],
        ("", "PodTemplate") => &["template", "spec"],
        ("", "ReplicationController")
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// How the list at `path` (field names from the object's root) of an object of `group`
/// and `kind` is merged.
pub fn list_merge(group: &str, kind: &str, path: &[&str]) -> ListMerge {
    use ListMerge::*;
    if !BUILT_IN_GROUPS.contains(&group) {
        return Replace;
    }
    match path {
        ["metadata", "finalizers"] => return Primitive,
        ["metadata", "ownerReferences"] => return Keys(&["uid"]),
        _ => {}
    }
    if (group, kind) == ("", "Service") && path == ["spec", "ports"] {
        return Keys(&["port", "protocol"]);
    }
    let Some(rest) = pod_spec(group, kind).and_then(|p| path.strip_prefix(p)) else {
        return Replace;
    };
    match rest {
        [
            "volumes"
            | "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "imagePullSecrets",
        ] => Keys(&["name"]),
        ["hostAliases"] => Keys(&["ip"]),
        ["topologySpreadConstraints"] => Keys(&["topologyKey", "whenUnsatisfiable"]),
        ["containers" | "initContainers", "ports"] => Keys(&["containerPort", "protocol"]),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "env",
        ] => Keys(&["name"]),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "volumeMounts",
        ] => Keys(&["mountPath"]),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "volumeDevices",
        ] => Keys(&["devicePath"]),
        _ => Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_merge_by_the_keys_of_their_path_in_built_in_kinds_only() {
        let c = ["spec", "template", "spec", "containers"];
        assert_eq!(
            list_merge("apps", "Deployment", &c),
            ListMerge::Keys(&["name"])
        );
        assert_eq!(
            list_merge(
                "apps",
                "Deployment",
                &["spec", "template", "spec", "containers", "ports"]
            ),
            ListMerge::Keys(&["containerPort", "protocol"])
        );
        assert_eq!(
            list_merge(
                "batch",
                "CronJob",
                &["spec", "jobTemplate", "spec", "template", "spec", "volumes"]
            ),
            ListMerge::Keys(&["name"])
        );
        assert_eq!(
            list_merge(
                "apps",
                "Deployment",
                &["spec", "template", "spec", "tolerations"]
            ),
            ListMerge::Replace
        );
        assert_eq!(list_merge("example.com", "Thing", &c), ListMerge::Replace);
        assert_eq!(
            list_merge("", "Service", &["spec", "ports"]),
            ListMerge::Keys(&["port", "protocol"])
        );
        assert_eq!(
            list_merge("", "ConfigMap", &["metadata", "finalizers"]),
            ListMerge::Primitive
        );
    }
}
