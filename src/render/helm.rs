//! Helm source: a Flux `HelmRelease` (helm.toolkit.fluxcd.io/v2) and its source, a
//! `HelmRepository` (source.toolkit.fluxcd.io/v1; `type: oci` for `oci://` registries),
//! with the values inline.

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
    let release = json!({
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
    Ok(vec![repository, release])
}
