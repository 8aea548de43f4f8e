//! Errors of a reconcile. Each has a `reason` (a CamelCase word for conditions, events and
//! metrics) and says whether retrying can help.

use crate::{gitops::GitError, render::RenderError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Environment {name:?} not found in namespace {namespace:?}: create it, or fix spec.environment"
    )]
    EnvironmentNotFound { namespace: String, name: String },
    #[error(
        "Secret {name:?} not found in namespace {namespace:?}: create it with keys username/password or identity/known_hosts, or fix spec.repository.secretRef"
    )]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {name:?} has neither username/password nor identity keys")]
    InvalidSecret { name: String },
    #[error(
        "app {app:?} in Environment {environment:?} already belongs to Release {owner}; choose another spec.app or delete that Release"
    )]
    AppConflict {
        app: String,
        environment: String,
        owner: String,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// CamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::EnvironmentNotFound { .. } => "EnvironmentNotFound",
            Error::SecretNotFound { .. } => "SecretNotFound",
            Error::InvalidSecret { .. } => "InvalidSecret",
            Error::AppConflict { .. } => "AppConflict",
            Error::Render(e) => e.reason(),
            Error::Git(e) => e.reason(),
            Error::Kube(_) => "KubernetesError",
            Error::Finalizer(_) => "FinalizerFailed",
        }
    }

    /// Whether this needs a person (Stalled) rather than time (Reconciling). Stalled errors
    /// are still retried, slowly, since the person may fix them without touching the Release.
    pub fn stalled(&self) -> bool {
        match self {
            Error::Git(e) => matches!(
                e.reason(),
                "AuthenticationFailed" | "BranchNotFound" | "InvalidPath"
            ),
            Error::Kube(_) | Error::Finalizer(_) => false,
            _ => true,
        }
    }
}
