//! The built-in app template, in the spirit of Gimlet's OneChart: a Deployment with a
//! Service, and optional ConfigMap of plain env vars, Ingress, HPA, PodDisruptionBudget and
//! ServiceAccount. Built from k8s-openapi's typed objects; secure defaults (non-root, no
//! privilege escalation, no capabilities, read-only root filesystem with a writable /tmp).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, ExecAction, HTTPGetAction,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe as K8sProbe, ResourceRequirements, SeccompProfile, SecretEnvSource, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec as K8sServiceSpec,
    TCPSocketAction, Volume as K8sVolume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::{Metadata, Resource};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Ctx, RenderError};
use crate::api::{
    Autoscaling, DisruptionBudget, EnvFrom, IngressSpec, Port, Probe, ServiceType, TemplateSource,
    Volume,
};

fn meta(_ctx: &Ctx<'_>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..Default::default()
    }
}

fn to_value<K: serde::Serialize + Resource + Metadata>(obj: K) -> Result<Value, RenderError> {
    let mut v = serde_json::to_value(&obj).map_err(|e| RenderError::Yaml(e.to_string()))?;
    // k8s-openapi's Serialize writes apiVersion/kind; make sure they are there.
    v["apiVersion"] = Value::String(K::API_VERSION.to_string());
    v["kind"] = Value::String(K::KIND.to_string());
    Ok(v)
}

fn probe(p: &Probe) -> K8sProbe {
    K8sProbe {
        http_get: p.http_get.as_ref().map(|h| HTTPGetAction {
            path: Some(h.path.clone()),
            port: h.port.clone(),
            ..Default::default()
        }),
        tcp_socket: p.tcp_socket.as_ref().map(|t| TCPSocketAction {
            port: t.port.clone(),
            ..Default::default()
        }),
        exec: p.exec.as_ref().map(|e| ExecAction {
            command: Some(e.command.clone()),
        }),
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: p.period_seconds,
        timeout_seconds: p.timeout_seconds,
        failure_threshold: p.failure_threshold,
        ..Default::default()
    }
}

fn quantities(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!m.is_empty()).then(|| {
        m.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

/// The template's objects, in this order: the env ConfigMap, the Deployment, the Service, the
/// Ingress, the HPA, the PodDisruptionBudget and the ServiceAccount (each when asked for).
pub fn render(ctx: &Ctx<'_>, t: &TemplateSource) -> Result<Vec<Value>, RenderError> {
    let mut objects = vec![];
    let mut env_from = vec![];
    let mut pod_annotations = BTreeMap::new();
    if let Some((config_map, checksum)) = env_config_map(ctx, t) {
        pod_annotations.insert("tumbler.dev/env-checksum".to_string(), checksum);
        env_from.push(config_map_env(&config_map));
        objects.push(to_value(config_map)?);
    }
    env_from.extend(t.env_from.iter().map(env_source));
    let container = container(ctx, t, image(t)?, env_from);
    let pod = pod_spec(ctx, t, container);
    objects.push(to_value(deployment(ctx, t, pod, pod_annotations))?);

    // Service in front of the ports.
    let mut service_port = None;
    if let Some(ports) = service_ports(t) {
        service_port = Some(ports[0].port);
        objects.push(to_value(service(ctx, t, ports))?);
    }
    if let Some(ing) = &t.ingress {
        objects.push(to_value(ingress(ctx, ing, service_port)?)?);
    }
    if let Some(a) = &t.autoscaling {
        objects.push(to_value(autoscaler(ctx, a))?);
    }
    if let Some(pdb) = &t.disruption_budget {
        objects.push(to_value(disruption_budget(ctx, pdb))?);
    }
    if uses_service_account(t) {
        objects.push(to_value(service_account(ctx))?);
    }
    Ok(objects)
}

/// Plain env vars go to a ConfigMap `<app>-env`; the checksum of its data, put on the pod
/// template, rolls the pods when it changes. `None` without env vars.
fn env_config_map(ctx: &Ctx<'_>, t: &TemplateSource) -> Option<(ConfigMap, String)> {
    if t.env.is_empty() {
        return None;
    }
    let config_map = ConfigMap {
        metadata: meta(ctx, &format!("{}-env", ctx.app)),
        data: Some(t.env.clone()),
        ..Default::default()
    };
    Some((config_map, env_checksum(&t.env)))
}

/// First 16 bytes, in hex, of the SHA-256 of each key and value followed by a zero byte.
fn env_checksum(env: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in env {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// All variables of a ConfigMap, as a container env source.
fn config_map_env(config_map: &ConfigMap) -> EnvFromSource {
    EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: config_map.metadata.name.clone().unwrap_or_default(),
            optional: None,
        }),
        ..Default::default()
    }
}

/// One entry of the template's `envFrom`.
fn env_source(e: &EnvFrom) -> EnvFromSource {
    EnvFromSource {
        prefix: e.prefix.clone(),
        secret_ref: e.secret_ref.as_ref().map(|r| SecretEnvSource {
            name: r.name.clone(),
            optional: None,
        }),
        config_map_ref: e.config_map_ref.as_ref().map(|r| ConfigMapEnvSource {
            name: r.name.clone(),
            optional: None,
        }),
    }
}

/// `repository@digest` when there is a digest, else `repository:tag`.
fn image(t: &TemplateSource) -> Result<String, RenderError> {
    match (&t.image.tag, &t.image.digest) {
        (_, Some(d)) => Ok(format!("{}@{d}", t.image.repository)),
        (Some(tag), None) => Ok(format!("{}:{tag}", t.image.repository)),
        (None, None) => Err(RenderError::InvalidManifest {
            at: "spec.template.image".into(),
            why: "needs a tag or a digest".into(),
        }),
    }
}

/// The pod's volumes: an emptyDir `tmp` (mounted at /tmp), then the template's volumes.
fn volumes(t: &TemplateSource) -> Vec<K8sVolume> {
    let tmp = K8sVolume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    std::iter::once(tmp)
        .chain(t.volumes.iter().map(volume))
        .collect()
}

fn volume(v: &Volume) -> K8sVolume {
    K8sVolume {
        name: v.name.clone(),
        config_map: v.config_map.as_ref().map(|r| ConfigMapVolumeSource {
            name: r.name.clone(),
            ..Default::default()
        }),
        secret: v.secret.as_ref().map(|r| SecretVolumeSource {
            secret_name: Some(r.name.clone()),
            ..Default::default()
        }),
        empty_dir: v.empty_dir.as_ref().map(|e| EmptyDirVolumeSource {
            size_limit: e.size_limit.clone().map(Quantity),
            ..Default::default()
        }),
        persistent_volume_claim: v.persistent_volume_claim.as_ref().map(|r| {
            PersistentVolumeClaimVolumeSource {
                claim_name: r.name.clone(),
                read_only: Some(v.read_only),
            }
        }),
        ..Default::default()
    }
}

/// Where the container mounts the volumes of [`volumes`], in the same order.
fn volume_mounts(t: &TemplateSource) -> Vec<VolumeMount> {
    let tmp = VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    };
    let listed = t.volumes.iter().map(|v| VolumeMount {
        name: v.name.clone(),
        mount_path: v.mount_path.clone(),
        read_only: v.read_only.then_some(true),
        ..Default::default()
    });
    std::iter::once(tmp).chain(listed).collect()
}

/// The app's one container, named after it.
fn container(
    ctx: &Ctx<'_>,
    t: &TemplateSource,
    image: String,
    env_from: Vec<EnvFromSource>,
) -> Container {
    let probes = t.probes.as_ref();
    Container {
        name: ctx.app.to_string(),
        image: Some(image),
        image_pull_policy: t.image.pull_policy.map(|p| format!("{p:?}")),
        command: (!t.command.is_empty()).then(|| t.command.clone()),
        args: (!t.args.is_empty()).then(|| t.args.clone()),
        ports: container_ports(t),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: t.resources.as_ref().map(|r| ResourceRequirements {
            requests: quantities(&r.requests),
            limits: quantities(&r.limits),
            ..Default::default()
        }),
        liveness_probe: probes.and_then(|p| p.liveness.as_ref()).map(probe),
        readiness_probe: probes.and_then(|p| p.readiness.as_ref()).map(probe),
        startup_probe: probes.and_then(|p| p.startup.as_ref()).map(probe),
        security_context: Some(container_security(t)),
        volume_mounts: Some(volume_mounts(t)),
        ..Default::default()
    }
}

/// The template's ports, named; `None` without ports.
fn container_ports(t: &TemplateSource) -> Option<Vec<ContainerPort>> {
    (!t.ports.is_empty()).then(|| {
        t.ports
            .iter()
            .map(|p| ContainerPort {
                name: Some(p.name.clone()),
                container_port: p.container_port,
                protocol: p.protocol.map(|x| format!("{x:?}")),
                ..Default::default()
            })
            .collect()
    })
}

/// No privilege escalation, no capabilities, non-root; the root filesystem read-only unless
/// the template says otherwise.
fn container_security(t: &TemplateSource) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(t.read_only_root_filesystem.unwrap_or(true)),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..Default::default()
    }
}

/// Whether the template asks for its own ServiceAccount (off by default).
fn uses_service_account(t: &TemplateSource) -> bool {
    t.service_account.unwrap_or(false)
}

/// The pod: the container, its volumes, the app's ServiceAccount if any (its token mounted
/// only then), non-root with the runtime's default seccomp profile.
fn pod_spec(ctx: &Ctx<'_>, t: &TemplateSource, container: Container) -> PodSpec {
    let service_account = uses_service_account(t);
    PodSpec {
        containers: vec![container],
        service_account_name: service_account.then(|| ctx.app.to_string()),
        automount_service_account_token: Some(service_account),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        volumes: Some(volumes(t)),
        ..Default::default()
    }
}

/// The Deployment; it leaves `replicas` to the HPA when autoscaling is on.
fn deployment(
    ctx: &Ctx<'_>,
    t: &TemplateSource,
    pod: PodSpec,
    pod_annotations: BTreeMap<String, String>,
) -> Deployment {
    Deployment {
        metadata: meta(ctx, ctx.app),
        spec: Some(DeploymentSpec {
            replicas: if t.autoscaling.is_some() {
                None
            } else {
                Some(t.replicas.unwrap_or(1))
            },
            selector: LabelSelector {
                match_labels: Some(ctx.selector()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.labels()),
                    annotations: (!pod_annotations.is_empty()).then_some(pod_annotations),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service's ports, one per container port; `None` when there is no Service (no ports,
/// or `service.enabled: false`).
fn service_ports(t: &TemplateSource) -> Option<Vec<ServicePort>> {
    let service_on =
        !t.ports.is_empty() && t.service.as_ref().and_then(|s| s.enabled).unwrap_or(true);
    service_on.then(|| {
        t.ports
            .iter()
            .enumerate()
            .map(|(i, p)| ServicePort {
                name: Some(p.name.clone()),
                port: service_port_number(t, i, p),
                target_port: Some(IntOrString::String(p.name.clone())),
                protocol: p.protocol.map(|x| format!("{x:?}")),
                ..Default::default()
            })
            .collect()
    })
}

/// The Service port for container port `i`: the first one is `service.port`, or 80 when it is
/// named `http`; the others keep their number.
fn service_port_number(t: &TemplateSource, i: usize, p: &Port) -> i32 {
    if i > 0 {
        return p.container_port;
    }
    t.service
        .as_ref()
        .and_then(|s| s.port)
        .unwrap_or(if p.name == "http" {
            80
        } else {
            p.container_port
        })
}

fn service(ctx: &Ctx<'_>, t: &TemplateSource, ports: Vec<ServicePort>) -> Service {
    let type_ = t
        .service
        .as_ref()
        .and_then(|s| s.type_)
        .unwrap_or(ServiceType::ClusterIP);
    Service {
        metadata: meta(ctx, ctx.app),
        spec: Some(K8sServiceSpec {
            type_: Some(format!("{type_:?}")),
            selector: Some(ctx.selector()),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Ingress to the Service's first port (`service_port`; without a Service, an error).
fn ingress(
    ctx: &Ctx<'_>,
    ing: &IngressSpec,
    service_port: Option<i32>,
) -> Result<Ingress, RenderError> {
    let Some(port) = service_port else {
        return Err(RenderError::InvalidManifest {
            at: "spec.template.ingress".into(),
            why: "an Ingress needs a Service: add spec.template.ports".into(),
        });
    };
    Ok(Ingress {
        metadata: ObjectMeta {
            annotations: (!ing.annotations.is_empty()).then(|| ing.annotations.clone()),
            ..meta(ctx, ctx.app)
        },
        spec: Some(K8sIngressSpec {
            ingress_class_name: ing.class_name.clone(),
            rules: Some(vec![ingress_rule(ctx, ing, port)]),
            tls: ing.tls.then(|| {
                vec![IngressTLS {
                    hosts: Some(vec![ing.host.clone()]),
                    secret_name: Some(format!("{}-tls", ctx.app)),
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The Ingress's one rule: the host, and the path prefix (default `/`) to the Service.
fn ingress_rule(ctx: &Ctx<'_>, ing: &IngressSpec, port: i32) -> IngressRule {
    IngressRule {
        host: Some(ing.host.clone()),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some(ing.path.clone().unwrap_or_else(|| "/".into())),
                path_type: "Prefix".into(),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: ctx.app.to_string(),
                        port: Some(ServiceBackendPort {
                            number: Some(port),
                            name: None,
                        }),
                    }),
                    resource: None,
                },
            }],
        }),
    }
}

/// The HorizontalPodAutoscaler of the Deployment, on CPU (default target 80%).
fn autoscaler(ctx: &Ctx<'_>, a: &Autoscaling) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: meta(ctx, ctx.app),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: ctx.app.to_string(),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(
                            a.target_cpu_utilization_percentage.unwrap_or(80),
                        ),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The PodDisruptionBudget; `maxUnavailable: 1` when it names neither bound.
fn disruption_budget(ctx: &Ctx<'_>, pdb: &DisruptionBudget) -> PodDisruptionBudget {
    let max_unavailable = match (&pdb.min_available, &pdb.max_unavailable) {
        (None, None) => Some(IntOrString::Int(1)),
        (_, m) => m.clone(),
    };
    PodDisruptionBudget {
        metadata: meta(ctx, ctx.app),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(ctx.selector()),
                ..Default::default()
            }),
            min_available: pdb.min_available.clone(),
            max_unavailable,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The app's ServiceAccount; the pod spec decides whether its token is mounted.
fn service_account(ctx: &Ctx<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(ctx, ctx.app),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}
