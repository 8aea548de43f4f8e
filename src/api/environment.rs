//! The `Environment` kind: one gitops target (repository, branch, folder) and the policy for
//! what Releases may put there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Conditioned, LocalObjectRef, NamespacedObjectRef};

/// Spec of an Environment: where Tumbler writes and who applies it.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tumbler.dev",
    version = "v1alpha1",
    kind = "Environment",
    namespaced,
    status = "EnvironmentStatus",
    shortname = "env",
    shortname = "tenv",
    category = "tumbler",
    doc = "An Environment is one gitops target: the repository, branch and folder Tumbler commits Releases to and the Flux objects that apply it, with the policy for what Releases may put there and which namespaces' Releases may attach.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.repository.url"}"#,
    printcolumn = r#"{"name":"Branch","type":"string","jsonPath":".spec.repository.branch"}"#,
    printcolumn = r#"{"name":"Path","type":"string","jsonPath":".spec.repository.path"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Head","type":"string","priority":1,"jsonPath":".status.headShort"}"#,
    printcolumn = r#"{"name":"Releases","type":"integer","priority":1,"jsonPath":".status.releases"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// The gitops repository, branch and folder Tumbler writes to.
    pub repository: RepositorySpec,
    /// How Tumbler's commits are authored. Default: `Tumbler <tumbler@tumbler.dev>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitSpec>,
    /// The Flux objects that apply `repository.path`, which Tumbler watches to say when a
    /// Release is applied. Default: none (Releases are committed, never Ready: nothing
    /// verifies that they are applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux: Option<FluxSpec>,
    /// Default namespace for the apps of this Environment; defaults to the Environment's own
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub target_namespace: Option<String>,
    /// What Releases may put into this Environment.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Which Releases may attach to this Environment, and what they may do.
    #[serde(default)]
    pub releases: ReleasesSpec,
    /// Stop writing to the repository; Releases wait with `Reconciling` until resumed.
    /// Default false.
    #[serde(default)]
    pub suspend: bool,
    /// How many applied versions each Release keeps in `status.history` (0-100); default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub history_limit: Option<u32>,
    /// Webhooks that get the transitions of this Environment's Releases (Committed, Ready,
    /// Failed, Promoted, RolledBack). Delivery never holds a release back; failures show in
    /// the `NotificationsDelivered` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::NotificationsSpec>,
    /// The workload cluster whose Flux applies `repository.path`, when it is not the cluster
    /// Tumbler runs in: its Flux objects, the Flux nudge and the Releases' workloads are read
    /// there. Default: this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSpec>,
}

/// How Tumbler reaches a workload cluster (pull: Tumbler reads it with a kubeconfig).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// A Secret in the Environment's namespace whose key `kubeconfig` (or `secretRef.key`)
    /// holds a kubeconfig for the workload cluster: an `https://` server, its CA inline
    /// (`certificate-authority-data`), and a bearer token or client certificate inline. No
    /// files, `exec` or auth-provider plugins. Least-privilege RBAC for it:
    /// `config/remote/rbac.yaml`.
    pub kubeconfig_secret_ref: KubeconfigSecretRef,
}

/// A Secret key holding a kubeconfig.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigSecretRef {
    /// Name of the Secret, in the Environment's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The key holding the kubeconfig; default `kubeconfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: Option<String>,
}

/// The gitops repository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// `https://`, `ssh://` or (tests and local use) `http://` and `file://` URL of the repository.
    /// With a `secretRef`, `http://` needs `insecure: true`.
    #[schemars(
        regex(pattern = r"^(https|http|ssh|file)://[^\s]+$"),
        length(max = 2048)
    )]
    pub url: String,
    /// Branch Tumbler commits to; default `main`.
    #[serde(default = "default_branch")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"), length(max = 255))]
    pub branch: String,
    /// Folder inside the repository that holds this Environment's apps. No leading `/`, no
    /// `.` or `..` segments.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"),
        length(max = 512)
    )]
    pub path: String,
    /// A Secret in the Environment's namespace holding `username`/`password` (HTTPS token) or
    /// `identity`/`known_hosts` (SSH deploy key). Not needed for `file://` and open repos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,
    /// Allow sending the credentials over plain `http://`; for tests and trusted networks
    /// only. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

fn default_branch() -> String {
    "main".to_string()
}

/// Which Releases may attach to an Environment (Gateway API's `allowedRoutes`), where they
/// may deploy, and whom Flux impersonates to apply them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasesSpec {
    /// Namespaces whose Releases may attach. Default: the Environment's own namespace only.
    #[serde(default)]
    pub namespaces: AllowedNamespaces,
    /// More namespaces that Releases of other namespaces may deploy into (`spec.namespace`);
    /// by default they deploy into their own namespace only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_namespaces: Vec<String>,
    /// The ServiceAccount, in each Release's namespace, that Flux impersonates to apply what
    /// Releases of other namespaces commit (their per-app Kustomization and HelmRelease).
    /// Needs `spec.flux.perApp`. The platform admin creates it and its RoleBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub service_account_name: Option<String>,
}

/// The namespaces allowed to attach, as Gateway API's `RouteNamespaces`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.from != 'Selector' || has(self.selector)",
        "message": "from: Selector needs a selector"
    }
]))]
pub struct AllowedNamespaces {
    /// `Same` (default): the Environment's namespace only; `Selector`: namespaces whose
    /// labels match `selector`; `All`: every namespace.
    #[serde(default)]
    pub from: FromNamespaces,
    /// Labels of the allowed namespaces, when `from` is `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

/// Which namespaces' Releases may attach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FromNamespaces {
    #[default]
    Same,
    Selector,
    All,
}

/// How Tumbler's commits look.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitSpec {
    /// Author and committer of Tumbler's commits.
    pub author: CommitAuthor,
}

/// A git identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitAuthor {
    /// Name, as git shows it (e.g. `Tumbler`).
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Email address (e.g. `tumbler@tumbler.dev`).
    #[schemars(regex(pattern = r"^[^@\s]+@[^@\s]+$"), length(max = 256))]
    pub email: String,
}

impl Default for CommitAuthor {
    fn default() -> Self {
        CommitAuthor {
            name: "Tumbler".into(),
            email: "tumbler@tumbler.dev".into(),
        }
    }
}

/// The Flux objects that apply this Environment's folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FluxSpec {
    /// Flux Kustomizations (kustomize.toolkit.fluxcd.io/v1) that apply `repository.path`; a
    /// Release is Ready when they applied its commit. Default: none (a Release is then
    /// `Committed=True` but `Ready=False`, reason `NotVerified`).
    #[serde(default)]
    pub kustomizations: Vec<NamespacedObjectRef>,
    /// The Flux GitRepository those Kustomizations read; Tumbler asks it to fetch right after a
    /// push. Defaults to the source of the first Kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repository: Option<NamespacedObjectRef>,
    /// Write one Flux Kustomization per app (`<environment>-<app>`, in the app folder) so that
    /// each app is applied and reported on its own; needs `gitRepository`. Default false.
    #[serde(default)]
    pub per_app: bool,
}

/// What Releases may put into an Environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Allow cluster-scoped objects (ClusterRole, Namespace, CRDs...). Default: refused.
    #[serde(default)]
    pub allow_cluster_scoped: bool,
    /// Kinds Releases may render (`Kind` or `Kind.group`, e.g. `Deployment`,
    /// `HelmRelease.helm.toolkit.fluxcd.io`). Empty: every namespaced kind.
    #[serde(default)]
    pub allowed_kinds: Vec<String>,
    /// Allow Flux's own objects (`*.toolkit.fluxcd.io`: Kustomization, HelmRelease,
    /// GitRepository...) in Releases' manifests and patches. Flux would apply what they name
    /// with its own rights. Default: refused (the HelmRelease and HelmRepository Tumbler
    /// writes for a Helm chart are always allowed).
    #[serde(default)]
    pub allow_flux_objects: bool,
    /// Allow RBAC objects (`rbac.authorization.k8s.io`) in Releases attached from other
    /// namespaces. Default: refused, since a RoleBinding in the team's namespace can grant
    /// the Secrets there.
    #[serde(default, rename = "allowRBAC")]
    pub allow_rbac: bool,
}

/// Observed state of an Environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The conditions, one per type: `Ready` (repository reachable, branch present),
    /// `Reconciling`, `Stalled`, `FluxReady` (the named Kustomizations exist, run and
    /// succeed; False with reason `NoFluxKustomization` when none is named) and
    /// `HelmPolicyEnforced` (whether Helm charts are held to the policy) and, with
    /// receivers, `NotificationsDelivered`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Commit at the head of the branch, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// First 8 characters of `head`, for printer columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_short: Option<String>,
    /// How many Releases name this Environment.
    #[serde(default)]
    pub releases: u32,
}

impl Conditioned for Environment {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }
}

impl Environment {
    /// The namespace apps go to when a Release names none.
    pub fn default_app_namespace(&self) -> Option<&str> {
        self.spec
            .target_namespace
            .as_deref()
            .or(self.metadata.namespace.as_deref())
    }

    /// The commit author, with the default filled in.
    pub fn author(&self) -> CommitAuthor {
        self.spec
            .commit
            .as_ref()
            .map(|c| c.author.clone())
            .unwrap_or_default()
    }
}
