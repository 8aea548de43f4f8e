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
use crate::api::{Probe, ServiceType, TemplateSource};

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

pub fn render(ctx: &Ctx<'_>, t: &TemplateSource) -> Result<Vec<Value>, RenderError> {
    let app = ctx.app;
    let selector = ctx.selector();
    let mut objects = vec![];

    // Plain env vars go to a ConfigMap; its checksum on the pod template rolls the pods.
    let mut env_from = vec![];
    let mut pod_annotations = BTreeMap::new();
    if !t.env.is_empty() {
        let name = format!("{app}-env");
        let mut h = Sha256::new();
        for (k, v) in &t.env {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        pod_annotations.insert(
            "tumbler.dev/env-checksum".to_string(),
            hex::encode(&h.finalize()[..16]),
        );
        objects.push(to_value(ConfigMap {
            metadata: meta(ctx, &name),
            data: Some(t.env.clone()),
            ..Default::default()
        })?);
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }
    for e in &t.env_from {
        env_from.push(EnvFromSource {
            prefix: e.prefix.clone(),
            secret_ref: e.secret_ref.as_ref().map(|r| SecretEnvSource {
                name: r.name.clone(),
                optional: None,
            }),
            config_map_ref: e.config_map_ref.as_ref().map(|r| ConfigMapEnvSource {
                name: r.name.clone(),
                optional: None,
            }),
        });
    }

    let image = match (&t.image.tag, &t.image.digest) {
        (_, Some(d)) => format!("{}@{d}", t.image.repository),
        (Some(tag), None) => format!("{}:{tag}", t.image.repository),
        (None, None) => {
            return Err(RenderError::InvalidManifest {
                at: "spec.template.image".into(),
                why: "needs a tag or a digest".into(),
            });
        }
    };

    let mut volumes = vec![K8sVolume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    for v in &t.volumes {
        volumes.push(K8sVolume {
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
        });
        mounts.push(VolumeMount {
            name: v.name.clone(),
            mount_path: v.mount_path.clone(),
            read_only: v.read_only.then_some(true),
            ..Default::default()
        });
    }

    let container = Container {
        name: app.to_string(),
        image: Some(image),
        image_pull_policy: t.image.pull_policy.map(|p| format!("{p:?}")),
        command: (!t.command.is_empty()).then(|| t.command.clone()),
        args: (!t.args.is_empty()).then(|| t.args.clone()),
        ports: (!t.ports.is_empty()).then(|| {
            t.ports
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.clone()),
                    container_port: p.container_port,
                    protocol: p.protocol.map(|x| format!("{x:?}")),
                    ..Default::default()
                })
                .collect()
        }),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: t.resources.as_ref().map(|r| ResourceRequirements {
            requests: quantities(&r.requests),
            limits: quantities(&r.limits),
            ..Default::default()
        }),
        liveness_probe: t
            .probes
            .as_ref()
            .and_then(|p| p.liveness.as_ref())
            .map(probe),
        readiness_probe: t
            .probes
            .as_ref()
            .and_then(|p| p.readiness.as_ref())
            .map(probe),
        startup_probe: t
            .probes
            .as_ref()
            .and_then(|p| p.startup.as_ref())
            .map(probe),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(t.read_only_root_filesystem.unwrap_or(true)),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    let service_account = t.service_account.unwrap_or(false);
    let pod = PodSpec {
        containers: vec![container],
        service_account_name: service_account.then(|| app.to_string()),
        automount_service_account_token: Some(service_account),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        volumes: Some(volumes),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta(ctx, app),
        spec: Some(DeploymentSpec {
            replicas: if t.autoscaling.is_some() {
                None
            } else {
                Some(t.replicas.unwrap_or(1))
            },
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
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
    };
    objects.push(to_value(deployment)?);

    // Service in front of the ports.
    let service_on =
        !t.ports.is_empty() && t.service.as_ref().and_then(|s| s.enabled).unwrap_or(true);
    let mut service_port = None;
    if service_on {
        let ports: Vec<ServicePort> = t
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let port = if i == 0 {
                    t.service
                        .as_ref()
                        .and_then(|s| s.port)
                        .unwrap_or(if p.name == "http" {
                            80
                        } else {
                            p.container_port
                        })
                } else {
                    p.container_port
                };
                ServicePort {
                    name: Some(p.name.clone()),
                    port,
                    target_port: Some(IntOrString::String(p.name.clone())),
                    protocol: p.protocol.map(|x| format!("{x:?}")),
                    ..Default::default()
                }
            })
            .collect();
        service_port = Some(ports[0].port);
        let type_ = t
            .service
            .as_ref()
            .and_then(|s| s.type_)
            .unwrap_or(ServiceType::ClusterIP);
        objects.push(to_value(Service {
            metadata: meta(ctx, app),
            spec: Some(K8sServiceSpec {
                type_: Some(format!("{type_:?}")),
                selector: Some(selector.clone()),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        })?);
    }

    if let Some(ing) = &t.ingress {
        let Some(port) = service_port else {
            return Err(RenderError::InvalidManifest {
                at: "spec.template.ingress".into(),
                why: "an Ingress needs a Service: add spec.template.ports".into(),
            });
        };
        objects.push(to_value(Ingress {
            metadata: ObjectMeta {
                annotations: (!ing.annotations.is_empty()).then(|| ing.annotations.clone()),
                ..meta(ctx, app)
            },
            spec: Some(K8sIngressSpec {
                ingress_class_name: ing.class_name.clone(),
                rules: Some(vec![IngressRule {
                    host: Some(ing.host.clone()),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            path: Some(ing.path.clone().unwrap_or_else(|| "/".into())),
                            path_type: "Prefix".into(),
                            backend: IngressBackend {
                                service: Some(IngressServiceBackend {
                                    name: app.to_string(),
                                    port: Some(ServiceBackendPort {
                                        number: Some(port),
                                        name: None,
                                    }),
                                }),
                                resource: None,
                            },
                        }],
                    }),
                }]),
                tls: ing.tls.then(|| {
                    vec![IngressTLS {
                        hosts: Some(vec![ing.host.clone()]),
                        secret_name: Some(format!("{app}-tls")),
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        })?);
    }

    if let Some(a) = &t.autoscaling {
        objects.push(to_value(HorizontalPodAutoscaler {
            metadata: meta(ctx, app),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: app.to_string(),
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
        })?);
    }

    if let Some(pdb) = &t.disruption_budget {
        let max_unavailable = match (&pdb.min_available, &pdb.max_unavailable) {
            (None, None) => Some(IntOrString::Int(1)),
            (_, m) => m.clone(),
        };
        objects.push(to_value(PodDisruptionBudget {
            metadata: meta(ctx, app),
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                }),
                min_available: pdb.min_available.clone(),
                max_unavailable,
                ..Default::default()
            }),
            ..Default::default()
        })?);
    }

    if service_account {
        objects.push(to_value(ServiceAccount {
            metadata: meta(ctx, app),
            automount_service_account_token: Some(false),
            ..Default::default()
        })?);
    }
    Ok(objects)
}
