//! Helm source: a Flux `HelmRelease` (helm.toolkit.fluxcd.io/v2) and its source, a
//! `HelmRepository` (source.toolkit.fluxcd.io/v1; `type: oci` for `oci://` registries),
//! with the values inline. For a Release Flux applies as a tenant's ServiceAccount, the
//! HelmRelease is pinned to that account and to the Release's target namespace.

use serde_json::{Value, json};

use super::{Ctx, RenderError};
use crate::api::HelmSource;

pub fn render(ctx: &Ctx<'_>, helm: &HelmSource) -> Result<Vec<Value>, RenderError> {
    let values = match &helm.values {
        None => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(RenderError::InvalidValues {
                why: "values must be a mapping".into(),
            });
        }
    };
    let oci = helm.chart.repository.starts_with("oci://");
    let mut repository = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": ctx.app},
        "spec": {"url": helm.chart.repository, "interval": "10m"},
    });
    if oci {
        repository["spec"]["type"] = json!("oci");
    }
    let mut release = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": ctx.app},
        "spec": {
            "interval": "10m",
            "releaseName": helm.release_name.clone().unwrap_or_else(|| ctx.app.to_string()),
            "chart": {"spec": {
                "chart": helm.chart.name,
                "version": helm.chart.version,
                "sourceRef": {"kind": "HelmRepository", "name": ctx.app},
                "interval": "10m",
            }},
            "install": {"remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3, "remediateLastFailure": true}},
            "values": values,
        },
    });
    if let Some(account) = ctx.service_account {
        for (field, value) in pins(ctx, account) {
            release["spec"][field] = json!(value);
        }
    }
    Ok(vec![repository, release])
}

/// The HelmRelease fields impersonation pins: Flux's helm-controller installs as `account`,
/// into and with its storage in the target namespace.
fn pins<'a>(ctx: &Ctx<'a>, account: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("serviceAccountName", account),
        ("targetNamespace", ctx.namespace),
        ("storageNamespace", ctx.namespace),
    ]
}

/// After patches: Tumbler's HelmRelease still has the fields impersonation pins.
pub fn check_pins(obj: &Value, ctx: &Ctx<'_>) -> Result<(), RenderError> {
    let Some(account) = ctx.service_account else {
        return Ok(());
    };
    if obj["kind"].as_str() != Some("HelmRelease") {
        return Ok(());
    }
    for (field, value) in pins(ctx, account) {
        if obj["spec"][field].as_str() != Some(value) {
            return Err(RenderError::InvalidManifest {
                at: super::policy::describe(obj),
                why: format!(
                    "spec.{field} must stay {value:?}: Flux applies this Release as the Environment's spec.releases.serviceAccountName in its target namespace, and spec.patches may not change that"
                ),
            });
        }
    }
    // Nor may patches point helm-controller elsewhere: at another cluster (kubeConfig) or at
    // a chart source of another namespace (chartRef, sourceRef.namespace).
    let source_ns = obj["spec"]["chart"]["spec"]["sourceRef"]["namespace"].as_str();
    let escapes = [
        ("spec.kubeConfig", !obj["spec"]["kubeConfig"].is_null()),
        ("spec.chartRef", !obj["spec"]["chartRef"].is_null()),
        (
            "spec.chart.spec.sourceRef.namespace",
            source_ns.is_some_and(|ns| ns != ctx.namespace),
        ),
    ];
    if let Some((field, _)) = escapes.iter().find(|(_, set)| *set) {
        return Err(RenderError::InvalidManifest {
            at: super::policy::describe(obj),
            why: format!(
                "{field} may not be set by spec.patches for a Release of another namespace: it would point helm-controller at another cluster or at a chart source of another namespace"
            ),
        });
    }
    Ok(())
}
