//! Releases of one namespace attached to an Environment of another (docs/MULTITENANCY.md):
//! where they may deploy, and whom Flux impersonates to apply them. A Release of the
//! Environment's own namespace keeps the single-namespace rules.

use serde_json::{Value, json};

use super::{Ctx, RenderError, invalid_name, is_dns_label, is_dns_subdomain};
use crate::api::{Environment, NamespacedObjectRef, Release};

/// Whether a Release of `release_namespace` is attached to `env` from another namespace.
/// Without both namespaces (`tumbler render` of files that name none) it is not.
fn attached(release_namespace: Option<&str>, env: &Environment) -> bool {
    match (release_namespace, env.metadata.namespace.as_deref()) {
        (Some(rel), Some(env)) => rel != env,
        _ => false,
    }
}

/// The Release's namespace when it is attached to `env` from another namespace.
pub(crate) fn attached_from<'r>(release: &'r Release, env: &Environment) -> Option<&'r str> {
    let ns = release.metadata.namespace.as_deref();
    attached(ns, env).then_some(ns).flatten()
}

fn environment_name(env: &Environment) -> String {
    format!(
        "{}/{}",
        env.metadata.namespace.as_deref().unwrap_or_default(),
        env.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The namespace the objects go to, a DNS-1123 label. A Release of the Environment's
/// namespace: its `spec.namespace`, else the Environment's default. An attached Release: its
/// own namespace, or `spec.namespace` when that is its own or listed in the Environment's
/// `spec.releases.targetNamespaces`.
pub(crate) fn target_namespace(
    release: &Release,
    env: &Environment,
) -> Result<String, RenderError> {
    let own = attached_from(release, env);
    let namespace = match own {
        Some(own) => release.spec.namespace.as_deref().unwrap_or(own),
        None => release
            .spec
            .namespace
            .as_deref()
            .or_else(|| env.default_app_namespace())
            .ok_or_else(|| {
                invalid_name(
                    "namespace",
                    "",
                    "no target namespace: set spec.namespace or the Environment's targetNamespace",
                )
            })?,
    };
    if !is_dns_label(namespace) {
        return Err(invalid_name(
            "namespace",
            namespace,
            "it must be a DNS-1123 label",
        ));
    }
    if let Some(own) = own
        && namespace != own
        && !env
            .spec
            .releases
            .target_namespaces
            .iter()
            .any(|n| n == namespace)
    {
        return Err(RenderError::TargetNamespaceNotAllowed {
            namespace: namespace.to_string(),
            release_namespace: own.to_string(),
            environment: environment_name(env),
        });
    }
    Ok(namespace.to_string())
}

/// The ServiceAccount Flux impersonates to apply the Release: the Environment's
/// `spec.releases.serviceAccountName`, for a Release attached from another namespace. It
/// needs per-app mode: only the app's own Kustomization can name it.
pub(crate) fn impersonation<'e>(
    release: &Release,
    env: &'e Environment,
) -> Result<Option<&'e str>, RenderError> {
    let Some(account) = env.spec.releases.service_account_name.as_deref() else {
        return Ok(None);
    };
    if attached_from(release, env).is_none() {
        return Ok(None);
    }
    let invalid = |why: String| RenderError::InvalidEnvironment {
        field: "releases.serviceAccountName".into(),
        why,
    };
    if !is_dns_subdomain(account) {
        return Err(invalid(format!(
            "{account:?} is not a ServiceAccount name (a DNS-1123 subdomain)"
        )));
    }
    if !env.spec.flux.as_ref().is_some_and(|f| f.per_app) {
        return Err(invalid(format!(
            "Flux impersonates {account:?} through each app's own Kustomization, so serviceAccountName needs per-app mode (spec.flux.perApp: true, with spec.flux.gitRepository)"
        )));
    }
    Ok(Some(account))
}

/// The namespace of the per-app Flux Kustomizations of `env` (per-app mode): for a Release
/// attached from another namespace (`release_namespace`) that Flux applies as the
/// Environment's `spec.releases.serviceAccountName`, the Release's namespace; otherwise
/// (and for `None`) the namespace of the Environment's first Kustomization, else the
/// Environment's namespace.
pub fn per_app_namespace(env: &Environment, release_namespace: Option<&str>) -> String {
    if let Some(ns) = release_namespace
        && attached(Some(ns), env)
        && env.spec.releases.service_account_name.is_some()
    {
        return ns.to_string();
    }
    env.spec
        .flux
        .as_ref()
        .and_then(|f| f.kustomizations.first().and_then(|k| k.namespace.clone()))
        .or_else(|| env.metadata.namespace.clone())
        .unwrap_or_default()
}

/// Name and namespace of the Flux Kustomization that applies one Release in per-app mode:
/// `<environment>-<app>`, in [`per_app_namespace`].
pub fn per_app_kustomization(env: &Environment, release: &Release) -> (String, String) {
    let env_name = env.metadata.name.as_deref().unwrap_or_default();
    (
        format!("{env_name}-{}", release.spec.app),
        per_app_namespace(env, release.metadata.namespace.as_deref()),
    )
}

/// Says on a per-app Kustomization who checks the health of what it applies.
pub const HEALTH_ANNOTATION: &str = "tumbler.dev/health-checks";

/// The app's own Flux Kustomization in per-app mode: it applies the app folder from `git`
/// (named with its namespace, which is never the Release's), and, when Flux impersonates
/// the tenant, as that ServiceAccount into the target namespace.
pub(crate) fn app_kustomization(
    env: &Environment,
    release: &Release,
    ctx: &Ctx<'_>,
    git: &NamespacedObjectRef,
) -> Value {
    let (name, ns) = per_app_kustomization(env, release);
    let git_ns = git
        .namespace
        .clone()
        .unwrap_or_else(|| per_app_namespace(env, None));
    // Tumbler judges the health of what it renders itself: a template's Deployment (rollout,
    // stuck pods) and a HelmRelease (with helm-controller's message at once). Flux's `wait`
    // would only add its 5 s health polling to every release (and hide a failed Helm install
    // behind the five-minute timeout), so it is on only for raw manifests, whose kinds
    // Tumbler does not judge.
    let wait = release.spec.manifests.is_some();
    let mut kustomization = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": ns, "labels": ctx.labels(),
            "annotations": {HEALTH_ANNOTATION: if wait {
                "Flux waits for every object to be healthy (raw manifests)"
            } else {
                "Tumbler checks the rollout itself; this Kustomization does not wait"
            }}},
        "spec": {
            "interval": "10m",
            "retryInterval": "30s",
            "path": format!("./{}/{}", env.spec.repository.path, ctx.app),
            "prune": true,
            "wait": wait,
            "timeout": "5m",
            "sourceRef": {"kind": "GitRepository", "name": git.name, "namespace": git_ns},
        },
    });
    if let Some(account) = ctx.service_account {
        kustomization["spec"]["serviceAccountName"] = json!(account);
        kustomization["spec"]["targetNamespace"] = json!(ctx.namespace);
    }
    kustomization
}
