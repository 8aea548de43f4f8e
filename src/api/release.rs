//! The `Release` kind: one app, one version, one source, in one Environment.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Conditioned, LocalObjectRef, free_form_object, free_form_objects};

/// Spec of a Release. Exactly one of `template`, `helm` or `manifests` is set.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tumbler.dev",
    version = "v1alpha1",
    kind = "Release",
    namespaced,
    status = "ReleaseStatus",
    shortname = "rel",
    shortname = "trel",
    category = "tumbler",
    doc = "A Release puts one version of one app into an Environment: Tumbler renders its source (the built-in app template, a Helm chart or raw manifests), commits the result to the Environment's gitops repository, and reports here what Flux did with it.",
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".spec.environment"}"#,
    printcolumn = r#"{"name":"App","type":"string","jsonPath":".spec.app"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Commit","type":"string","jsonPath":".status.commitShort"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.template) ? 1 : 0) + (has(self.helm) ? 1 : 0) + (has(self.manifests) ? 1 : 0) == 1",
        "message": "exactly one of spec.template, spec.helm or spec.manifests must be set"
    },
    {
        "rule": "self.environment == oldSelf.environment",
        "message": "spec.environment is immutable; create a new Release to move an app"
    },
    {
        "rule": "self.app == oldSelf.app",
        "message": "spec.app is immutable; create a new Release to rename an app"
    },
    {
        "rule": "(has(self.environmentNamespace) ? self.environmentNamespace : '') == (has(oldSelf.environmentNamespace) ? oldSelf.environmentNamespace : '')",
        "message": "spec.environmentNamespace is immutable; create a new Release to move an app"
    }
]))]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSpec {
    /// Name of the Environment to release into. Immutable: to move an app, create a new
    /// Release.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub environment: String,
    /// Namespace of the Environment, when a platform team keeps it in its own namespace; it
    /// must allow this Release's namespace (`spec.releases.namespaces`). Default: the
    /// Release's namespace. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub environment_namespace: Option<String>,
    /// The app: a DNS-1123 label, used as the folder name in the repository and as the name of
    /// the objects of the app template. Immutable: to rename an app, create a new Release.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub app: String,
    /// Free text recorded in the commit, the release log and the status; no control
    /// characters (it becomes a commit trailer).
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[^\x00-\x1f\x7f]+$"))]
    pub version: String,
    /// Namespace the app's objects go to. Default: the Environment's `targetNamespace` for
    /// an Environment of the same namespace, the Release's own namespace otherwise (other
    /// namespaces only when the Environment lists them in `spec.releases.targetNamespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
    /// The built-in app template: a Deployment with Service, and optional Ingress, HPA, PDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSource>,
    /// A Helm chart, emitted as a Flux HelmRelease and its HelmRepository/OCIRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Raw Kubernetes objects (1 to 1000), committed as written: each needs `apiVersion`,
    /// `kind` and `metadata.name`; a `v1` `List` is unwrapped. Namespaced objects go to the
    /// app's namespace (one naming another namespace is refused).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::bounded::opt_vec"
    )]
    #[schemars(schema_with = "free_form_objects")]
    pub manifests: Option<Vec<serde_json::Value>>,
    /// Kustomize-style patches applied, in order, to the rendered objects of any source; a
    /// patch that does not apply fails the render and nothing is committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
    /// Stop committing this Release (as Flux's `suspend`): while true, a change of the spec
    /// is not committed, the Release says `Suspended`, a reconcile request is not handled
    /// and an expiry waits; setting it back to false commits what changed meanwhile.
    /// Deleting a suspended Release still removes its folder. Not recorded in
    /// `.tumbler/release.yaml`. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Delete this Release once this much time has passed (a preview release): its folder
    /// is then removed from git in a commit, as for any deleted Release. `status.expiresAt`
    /// shows when. Not recorded in `.tumbler/release.yaml`. Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Expiry>,
    /// Follow another Release (typically the same app in the previous Environment): once it
    /// is Ready at a version and stayed Ready for `soak`, Tumbler promotes that version and
    /// its artifact (image tag or digest, or chart version) into this Release. See the
    /// README's "Promotion".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<super::promotion::Follow>,
}

/// When a Release deletes itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    /// How long the Release lives: a number and a unit, or several (`30s`, `15m`, `2h`,
    /// `7d`, `1h30m`).
    #[schemars(length(min = 2, max = 32), regex(pattern = r"^([0-9]{1,6}[smhd])+$"))]
    pub after: String,
    /// From when: `Creation` (the Release's creation, the default) or `LastChange` (the
    /// last change of its spec that Tumbler saw, so a preview updated on every push lives
    /// on while it is used).
    #[serde(default)]
    pub from: ExpiryFrom,
}

/// What an expiry counts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExpiryFrom {
    /// The Release's `metadata.creationTimestamp`.
    #[default]
    Creation,
    /// The last change of the spec (a new `metadata.generation`) Tumbler saw.
    LastChange,
}

/// A duration as `spec.expiry.after` and the CLI's `--timeout` write it: numbers with the
/// units `s`, `m`, `h`, `d` (`90s`, `1h30m`). `None` for anything else.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    (number.is_none() && !text.is_empty()).then_some(std::time::Duration::from_secs(total))
}

/// The built-in app template: one Deployment of one container, with secure defaults
/// (non-root, no privilege escalation, no capabilities, read-only root filesystem).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSource {
    /// The container image.
    pub image: Image,
    /// Replicas of the Deployment; default 1. Left to the HorizontalPodAutoscaler when
    /// `autoscaling` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Container command; replaces the image's `ENTRYPOINT`. Default: the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Container arguments; replace the image's `CMD`. Default: the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Container ports. Each gets a port of the Service (unless `service.enabled` is false);
    /// the first is the one the Ingress sends to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Plain environment variables (name to value), rendered into a ConfigMap `<app>-env`; a
    /// change rolls the pods. Keep secrets in a Secret named in `envFrom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Environment variables from existing Secrets and ConfigMaps in the app's namespace,
    /// all of their keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFrom>,
    /// CPU and memory requests and limits of the container. Default: none (the namespace's
    /// LimitRange, if any, applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<Resources>>,
    /// Liveness, readiness and startup probes of the container. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Box<Probes>>,
    /// The Service in front of the ports; on by default when there are ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Box<ServiceSpec>>,
    /// An Ingress to the Service's first port. Default: none. Needs `ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Box<IngressSpec>>,
    /// A HorizontalPodAutoscaler on CPU, which then owns the replica count. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Box<Autoscaling>>,
    /// A PodDisruptionBudget for the pods. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<Box<DisruptionBudget>>,
    /// Create a ServiceAccount named after the app and run the pods as it, with its token
    /// mounted. Default false: the pods run as the namespace's `default` account, without a
    /// token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<bool>,
    /// Volumes mounted into the container, besides the writable `/tmp` that is always there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Mount the root filesystem read-only; default true. A writable `/tmp` is always mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
}

/// Container image: a repository and a tag or a digest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.tag) || has(self.digest)", "message": "image needs a tag or a digest"}
]))]
pub struct Image {
    /// Image repository, with its registry unless it is Docker Hub (e.g.
    /// `ghcr.io/acme/api`).
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^[a-z0-9][a-z0-9._/:-]*$")
    )]
    pub repository: String,
    /// Image tag (e.g. `1.4.2`). A tag, a digest or both; with a digest, the digest is what
    /// runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"))]
    pub tag: Option<String>,
    /// Image digest (`sha256:<hex>`); pins the exact image, and wins over `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]+:[a-f0-9]{32,}$"))]
    pub digest: Option<String>,
    /// When the kubelet pulls the image: `Always`, `IfNotPresent` or `Never`. Default:
    /// Kubernetes' (`Always` for the tag `latest`, `IfNotPresent` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

/// When the kubelet pulls the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// A container port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// Port name (a DNS-1123 label of up to 15 characters); the Service targets the port by
    /// this name, and the name `http` on the first port gives the Service port 80.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Port number the container listens on (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: i32,
    /// `TCP`, `UDP` or `SCTP`; default `TCP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// Network protocol of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum Protocol {
    TCP,
    UDP,
    SCTP,
}

/// One source of environment variables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.secretRef) != has(self.configMapRef)", "message": "envFrom entries need exactly one of secretRef or configMapRef"}
]))]
pub struct EnvFrom {
    /// A Secret in the app's namespace whose keys become environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,
    /// A ConfigMap in the app's namespace whose keys become environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectRef>,
    /// Prefix added to the name of each variable. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Container resources; quantities as Kubernetes writes them (`100m`, `128Mi`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// What the scheduler reserves for the container, by resource (e.g. `cpu: 100m`,
    /// `memory: 128Mi`). Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    /// The most the container may use, by resource (e.g. `memory: 256Mi`); past the memory
    /// limit it is killed, past the CPU limit throttled. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

/// The container's probes, as Kubernetes runs them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probes {
    /// Restarts the container when it fails. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    /// Takes the pod out of the Service while it fails; a rollout waits for it. Default:
    /// none (ready once started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// Holds the other probes back until it first succeeds, for slow starters. Default:
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
}

/// A probe: exactly one of `httpGet`, `tcpSocket`, `exec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.httpGet) ? 1 : 0) + (has(self.tcpSocket) ? 1 : 0) + (has(self.exec) ? 1 : 0) == 1", "message": "a probe needs exactly one of httpGet, tcpSocket or exec"}
]))]
pub struct Probe {
    /// Succeeds when an HTTP GET on the container answers with a status from 200 to 399.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGet>,
    /// Succeeds when a TCP connection to the container opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocket>,
    /// Succeeds when a command run in the container exits with 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecProbe>,
    /// Seconds after the container starts before the first probe; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Seconds a probe may take before it counts as failed; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Failures in a row before the probe gives up (restart, or not ready); default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
}

/// An HTTP GET on the container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpGet {
    /// Path to request, starting with `/` (e.g. `/healthz`).
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// Container port to request: a name from `ports` (e.g. `http`) or a number.
    pub port: IntOrString,
}

/// A TCP connection to the container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpSocket {
    /// Container port to connect to: a name from `ports` (e.g. `grpc`) or a number.
    pub port: IntOrString,
}

/// A command run in the container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecProbe {
    /// The command and its arguments, run directly (not in a shell).
    pub command: Vec<String>,
}

/// The Service in front of the app.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Set false to render no Service (and so no Ingress). Default true when there are
    /// ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    pub type_: Option<ServiceType>,
    /// Service port of the first container port; default 80 when that port is named `http`,
    /// else its number. The other ports keep their numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// How the Service is exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// An Ingress for the app's Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host name the Ingress serves (e.g. `api.example.com`); a leading `*.` for a wildcard.
    #[schemars(
        length(min = 1, max = 253),
        regex(
            pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        )
    )]
    pub host: String,
    /// Path prefix sent to the app; default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Serve TLS for the host with the certificate in the Secret `<app>-tls` (made by you or
    /// by cert-manager through `annotations`); default false.
    #[serde(default)]
    pub tls: bool,
    /// IngressClass that serves the Ingress. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Annotations of the Ingress, for the ingress controller or cert-manager. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A HorizontalPodAutoscaler (autoscaling/v2) on CPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.minReplicas <= self.maxReplicas", "message": "autoscaling.minReplicas must not exceed maxReplicas"}
]))]
pub struct Autoscaling {
    /// Fewest replicas (1-1000).
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most replicas (1-1000), at least `minReplicas`.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU use, in percent of the CPU request, that the autoscaler aims for; default
    /// 80. Needs `resources.requests.cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    #[serde(rename = "targetCPUUtilizationPercentage")]
    pub target_cpu_utilization_percentage: Option<i32>,
}

/// A PodDisruptionBudget: how many pods voluntary disruptions (node drains) must leave
/// running. Set `minAvailable` or `maxUnavailable`; with neither, `maxUnavailable: 1`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisruptionBudget {
    /// Pods that must stay available: a number (e.g. `2`) or a percentage of the replicas
    /// (e.g. `"50%"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be unavailable at once: a number (e.g. `1`) or a percentage of the
    /// replicas (e.g. `"25%"`). Default 1 when `minAvailable` is not set either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// A volume mounted into the container; exactly one source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.emptyDir) ? 1 : 0) + (has(self.persistentVolumeClaim) ? 1 : 0) == 1", "message": "a volume needs exactly one of configMap, secret, emptyDir or persistentVolumeClaim"}
]))]
pub struct Volume {
    /// Volume name, a DNS-1123 label unique among the volumes; not `tmp`, the name of the
    /// writable `/tmp`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Absolute path in the container where the volume is mounted.
    #[schemars(regex(pattern = r"^/"))]
    pub mount_path: String,
    /// Mount the volume read-only; default false.
    #[serde(default)]
    pub read_only: bool,
    /// A ConfigMap in the app's namespace, its keys as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<LocalObjectRef>,
    /// A Secret in the app's namespace, its keys as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<LocalObjectRef>,
    /// An empty directory that lives as long as the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,
    /// A PersistentVolumeClaim in the app's namespace, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<LocalObjectRef>,
}

/// An empty directory for the pod's lifetime.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDir {
    /// Most it may hold, as a quantity (e.g. `1Gi`); past it the pod is evicted. Default:
    /// no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<String>,
}

/// A Helm chart installed by Flux's helm-controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// The chart: its repository, name and version.
    pub chart: ChartRef,
    /// Values passed to the chart, inline, as in a `values.yaml`. Default: the chart's own.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::bounded::opt_value"
    )]
    #[schemars(schema_with = "free_form_object")]
    pub values: Option<serde_json::Value>,
    /// Helm release name; default: the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 53), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub release_name: Option<String>,
}

/// Where a chart comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartRef {
    /// `https://` (or `http://`) Helm repository URL, or `oci://` registry URL.
    #[schemars(regex(pattern = r"^(https|http|oci)://[^\s]+$"))]
    pub repository: String,
    /// Chart name in the repository (e.g. `podinfo`).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Chart version, or a semver range (e.g. `6.x`) that Flux resolves to the newest match.
    #[schemars(length(min = 1, max = 128))]
    pub version: String,
}

/// A kustomize-style patch: a strategic merge patch (a YAML object) or a JSON6902 patch (a
/// YAML list of operations), applied to the objects matching `target`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// The objects to patch. A JSON6902 patch needs one; a strategic merge patch without
    /// one patches the object of its own `kind` and `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PatchTarget>,
    /// The patch, as YAML text: a mapping (strategic merge) or a list of operations
    /// (JSON6902: add, remove, replace, move, copy, test).
    #[schemars(length(min = 1))]
    pub patch: String,
}

/// Which rendered objects a patch applies to: those matching every field set (none set:
/// all of them). It must match at least one. As in kustomize, `group`, `version`, `kind`,
/// `name` and `namespace` are regular expressions that must match the whole value (`api-.*`,
/// `Deployment|StatefulSet`; a plain name matches itself; empty matches all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchTarget {
    /// API group of the objects (e.g. `apps`), a regular expression; empty: any group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version of the objects, without the group (e.g. `v1`), a regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind of the objects (e.g. `Deployment`), a regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the objects, a regular expression (e.g. `api` or `api-.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the objects, a regular expression; by the time patches run, every
    /// namespaced object is in the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels the objects have, as a Kubernetes label selector: comma-separated
    /// requirements, all required: `key=value`, `key!=value`, `key` (present), `!key`
    /// (absent), `key in (a,b)`, `key notin (a,b)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Annotations the objects have, in the form of `labelSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
}

/// Where a Release is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted, not yet in git.
    #[default]
    Pending,
    /// Pushed to the gitops repository.
    Committed,
    /// Flux applied a revision containing the commit.
    Applied,
    /// Applied and healthy.
    Ready,
    /// Rendering, committing or applying failed; see the conditions.
    Failed,
}

impl Phase {
    /// The name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Committed => "Committed",
            Phase::Applied => "Applied",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed state of a Release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    /// Where the Release is: `Pending` (accepted, not yet in git), `Committed` (pushed),
    /// `Applied` (Flux applied a revision with the commit), `Ready` (applied and healthy) or
    /// `Failed` (see the conditions).
    #[serde(default)]
    pub phase: Phase,
    /// The conditions, one per type: `Ready` (the summary, always present), `Reconciling`
    /// (work in flight), `Stalled` (a person must act), `Rendered`, `Committed`, `Applied`,
    /// `Drifted` (the app folder was changed in git outside Tumbler), `RolledBack` (the outcome of
    /// the last `tumbler.dev/rollback-to` request).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The commit that holds this generation's rendered files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// First 8 characters of `commit`, for printer columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_short: Option<String>,
    /// `<branch>@sha1:<commit>`, as Flux writes revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `sha256:<hex>` of the rendered files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_digest: Option<String>,
    /// The last version Flux applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_version: Option<String>,
    /// One sentence on the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The workloads (Deployments) the Release applied, as the cluster runs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadStatus>,
    /// The last applied versions, newest first (the Environment's `historyLimit`, default 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Where `commit` was written: `<repository URL> <branch> <folder>` (URL without
    /// credentials). A generation is written again when its Environment points elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The value of the last `reconcile.tumbler.dev/requestedAt` annotation the controller
    /// handled (as Flux's `lastHandledReconcileAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// When the Release deletes itself (RFC 3339), from `spec.expiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// What `spec.follow` sees of the followed Release: the version on offer, when it may be
    /// promoted, the versions that failed there (never promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<super::promotion::PromotionStatus>,
}

/// The rollout of one workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Kind of the workload (e.g. `Deployment`).
    pub kind: String,
    /// Name of the workload.
    pub name: String,
    /// Replicas it should run.
    pub desired: i32,
    /// Replicas running the current pod template.
    pub updated: i32,
    /// Replicas whose pods are ready.
    pub ready: i32,
    /// Replicas ready for at least `minReadySeconds`.
    pub available: i32,
    /// Why the rollout is not done (e.g. `ProgressDeadlineExceeded`, `ImagePullBackOff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One applied version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The Release's `spec.version` then.
    pub version: String,
    /// The commit that held it.
    pub commit: String,
    /// When Tumbler saw it applied (RFC 3339); without Flux, when it was committed.
    pub applied_at: String,
    /// The field manager that last changed the spec for this version (the commit's
    /// `Tumbler-Requested-By` trailer): a client name such as `kubectl` or a
    /// `--field-manager`, not a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

impl Conditioned for Release {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }
}

impl Release {
    /// Which source the Release uses, for messages and metrics.
    pub fn source_kind(&self) -> &'static str {
        match (&self.spec.template, &self.spec.helm, &self.spec.manifests) {
            (Some(_), None, None) => "template",
            (None, Some(_), None) => "helm",
            (None, None, Some(_)) => "manifests",
            _ => "invalid",
        }
    }

    /// `(namespace, name)` of the Environment this Release names.
    pub fn environment_key(&self) -> (String, String) {
        let ns = self
            .spec
            .environment_namespace
            .clone()
            .or_else(|| self.metadata.namespace.clone())
            .unwrap_or_default();
        (ns, self.spec.environment.clone())
    }

    /// Whether the Release names an Environment of another namespace.
    pub fn attached_across_namespaces(&self) -> bool {
        self.spec
            .environment_namespace
            .as_ref()
            .is_some_and(|ns| Some(ns) != self.metadata.namespace.as_ref())
    }

    /// The version this Release was rolled back from, while its spec is still the one
    /// `tumbler rollback` restored (the [`ROLLBACK_ANNOTATION`] reads `<from> -> <to>`).
    pub fn rolled_back_from(&self) -> Option<String> {
        let value = self
            .metadata
            .annotations
            .as_ref()?
            .get(ROLLBACK_ANNOTATION)?;
        let (from, to) = value.split_once(" -> ")?;
        (to == self.spec.version).then(|| from.to_string())
    }
}

impl Release {
    /// The pending [`ROLLBACK_TO_ANNOTATION`] request, if any (blank values are none).
    pub fn rollback_request(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(ROLLBACK_TO_ANNOTATION)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Who last changed the spec, as Kubernetes records it without an admission webhook:
    /// the `manager` of the `metadata.managedFields` entry that owns `spec` fields and was
    /// updated last (status entries own no `spec` field). A manager is the client's name
    /// (`kubectl --field-manager`, or by default `kubectl-client-side-apply`, `kubectl`,
    /// `kubectl-edit`, `helm`, Flux's `kustomize-controller`…), not the user who ran it.
    /// `None` when no entry owns the spec (e.g. managedFields were stripped).
    pub fn requested_by(&self) -> Option<String> {
        let entries = self.metadata.managed_fields.as_deref()?;
        let entry = match entries {
            // The one entry [`Release::keep_spec_manager_only`] keeps: the API server never
            // sends an entry without its field set.
            [kept] if kept.fields_v1.is_none() => Some(kept),
            _ => spec_manager(entries),
        };
        entry
            .and_then(|e| e.manager.clone())
            .filter(|m| !m.is_empty())
    }

    /// Drops `metadata.managedFields` (the bulk of a Release's metadata) but for the manager
    /// of the entry [`Release::requested_by`] reads, kept alone in an entry without a field
    /// set: the reflector keeps every Release in memory, and this keeps who asked at the
    /// bytes of its name.
    pub fn keep_spec_manager_only(&mut self) {
        if matches!(self.metadata.managed_fields.as_deref(), Some([kept]) if kept.fields_v1.is_none())
        {
            return;
        }
        let kept = self
            .metadata
            .managed_fields
            .as_deref()
            .and_then(spec_manager)
            .map(|e| ManagedFieldsEntry {
                manager: e.manager.clone(),
                ..ManagedFieldsEntry::default()
            });
        self.metadata.managed_fields = kept.map(|e| vec![e]);
    }
}

/// The managedFields entry owning `spec` fields with the newest time (the later entry on a
/// tie: the API server appends).
fn spec_manager(entries: &[ManagedFieldsEntry]) -> Option<&ManagedFieldsEntry> {
    entries
        .iter()
        .filter(|e| {
            e.subresource.as_deref().unwrap_or_default().is_empty()
                && e.fields_v1
                    .as_ref()
                    .and_then(|f| f.0.get("f:spec"))
                    .is_some_and(owns_more_than_suspend)
        })
        .enumerate()
        .max_by_key(|(i, e)| (e.time.as_ref().map(|t| t.0), *i))
        .map(|(_, e)| e)
}

/// Whether a managed `f:spec` field set holds more than `f:suspend`: suspending and
/// resuming (`tumbler suspend|resume`) do not make anyone the requester of the change a
/// resume commits.
fn owns_more_than_suspend(spec: &serde_json::Value) -> bool {
    spec.as_object()
        .is_none_or(|fields| fields.keys().any(|k| k != "f:suspend"))
}

/// Annotation `tumbler rollback` sets on a Release: `<from version> -> <restored version>`.
pub const ROLLBACK_ANNOTATION: &str = "tumbler.dev/rollback";

/// Annotation that asks for a reconcile now (as Flux's `reconcile.fluxcd.io/requestedAt`):
/// any new value is handled once, recorded in `status.lastHandledReconcileAt`, and on a
/// `Drifted` Release writes its rendered files again.
pub const RECONCILE_ANNOTATION: &str = "reconcile.tumbler.dev/requestedAt";

impl Release {
    /// The value of [`RECONCILE_ANNOTATION`], if set.
    pub fn reconcile_requested_at(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(RECONCILE_ANNOTATION)
            .map(String::as_str)
    }

    /// A reconcile request not handled yet: the annotation's value differs from
    /// `status.lastHandledReconcileAt`.
    pub fn pending_reconcile_request(&self) -> Option<&str> {
        let requested = self.reconcile_requested_at()?;
        let handled = self
            .status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref());
        (handled != Some(requested)).then_some(requested)
    }
}
/// Annotation asking the controller to roll the Release back to a version (or commit
/// prefix) of its release log: `tumbler rollback` sets it, so that rolling back needs only
/// `patch` on Releases. The controller reads the spec of that commit from git with the
/// Environment's credentials, applies it with [`ROLLBACK_ANNOTATION`], and removes the
/// request; the outcome is the [`ROLLBACK_CONDITION`] condition and an Event.
pub const ROLLBACK_TO_ANNOTATION: &str = "tumbler.dev/rollback-to";

/// The field manager of `tumbler rollback`'s annotation and of the controller's spec patch
/// that meets it: the rollback commit's `Tumbler-Requested-By`.
pub const ROLLBACK_MANAGER: &str = "tumbler-rollback";

/// Condition with the outcome of the last [`ROLLBACK_TO_ANNOTATION`] request: `True`
/// (reason `RolledBack`) or `False` with why.
pub const ROLLBACK_CONDITION: &str = "RolledBack";

#[cfg(test)]
mod tests {
    use super::*;

    /// A Release with these managedFields entries: (manager, operation, time, fieldsV1,
    /// subresource).
    fn with_fields(entries: serde_json::Value) -> Release {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": "api", "namespace": "team", "managedFields": entries},
            "spec": {"environment": "staging", "app": "api", "version": "1.0.0",
                "template": {"image": {"repository": "r", "tag": "1"}}},
        }))
        .unwrap()
    }

    fn entry(manager: &str, time: &str, fields: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"manager": manager, "operation": "Update", "apiVersion": "tumbler.dev/v1alpha1",
            "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn the_requester_is_the_newest_manager_of_spec_fields() {
        let spec = serde_json::json!({"f:spec": {"f:version": {}}});
        let rel = with_fields(serde_json::json!([
            entry("kubectl-client-side-apply", "2026-01-01T00:00:00Z", spec.clone()),
            entry("ci-bot", "2026-01-02T00:00:00Z", spec.clone()),
            // Newer, but owns no spec field: a label, the finalizer, the status.
            entry("kubectl-label", "2026-01-03T00:00:00Z", serde_json::json!({"f:metadata": {"f:labels": {}}})),
            entry("tumbler", "2026-01-04T00:00:00Z", serde_json::json!({"f:metadata": {"f:finalizers": {}}})),
            {"manager": "tumbler", "operation": "Apply", "subresource": "status", "time": "2026-01-05T00:00:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}},
        ]));
        assert_eq!(rel.requested_by().as_deref(), Some("ci-bot"));
        // Same second: the later entry wins.
        let tie = with_fields(serde_json::json!([
            entry("a", "2026-01-01T00:00:00Z", spec.clone()),
            entry("b", "2026-01-01T00:00:00Z", spec.clone()),
        ]));
        assert_eq!(tie.requested_by().as_deref(), Some("b"));
        assert_eq!(with_fields(serde_json::json!([])).requested_by(), None);
        let mut stripped = rel.clone();
        stripped.metadata.managed_fields = None;
        assert_eq!(stripped.requested_by(), None);
    }

    #[test]
    fn suspending_or_resuming_does_not_make_a_requester() {
        let spec = serde_json::json!({"f:spec": {"f:version": {}}});
        let rel = with_fields(serde_json::json!([
            entry("ci-bot", "2026-01-01T00:00:00Z", spec),
            entry(
                "tumbler-resume",
                "2026-01-02T00:00:00Z",
                serde_json::json!({"f:spec": {"f:suspend": {}}})
            ),
        ]));
        assert_eq!(rel.requested_by().as_deref(), Some("ci-bot"));
        let mut kept = rel.clone();
        kept.keep_spec_manager_only();
        assert_eq!(kept.requested_by().as_deref(), Some("ci-bot"));
    }

    #[test]
    fn stripping_keeps_only_the_requester() {
        let spec = serde_json::json!({"f:spec": {"f:version": {}, "f:template": {"f:image": {}}}});
        let mut rel = with_fields(serde_json::json!([
            entry("helm", "2026-01-01T00:00:00Z", spec.clone()),
            entry(
                "kubectl-label",
                "2026-01-03T00:00:00Z",
                serde_json::json!({"f:metadata": {"f:labels": {}}})
            ),
        ]));
        rel.keep_spec_manager_only();
        let kept = rel.metadata.managed_fields.as_deref().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].fields_v1, None, "the field set is not kept");
        assert_eq!(kept[0].manager.as_deref(), Some("helm"));
        assert_eq!(rel.requested_by().as_deref(), Some("helm"));
        // Stripping again changes nothing; nothing to keep leaves nothing.
        let once = rel.metadata.managed_fields.clone();
        rel.keep_spec_manager_only();
        assert_eq!(rel.metadata.managed_fields, once);
        let mut none = with_fields(serde_json::json!([entry(
            "kubectl-label",
            "2026-01-03T00:00:00Z",
            serde_json::json!({"f:metadata": {}})
        ),]));
        none.keep_spec_manager_only();
        assert_eq!(none.metadata.managed_fields, None);
    }
}
