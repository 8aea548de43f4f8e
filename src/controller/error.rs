//! Errors of a reconcile. Each maps, by variant, to its [`Reason`] and says whether it is
//! terminal (needs a person: `Stalled`) or transient (time may fix it: `Reconciling`).

use crate::credentials::CredentialsError;
use crate::{gitops::GitError, render::RenderError};

use super::reason::Reason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Environment {name:?} not found in namespace {namespace:?}: create it, or fix spec.environment"
    )]
    EnvironmentNotFound { namespace: String, name: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(
        "app {app:?} in Environment {environment:?} already belongs to Release {owner}; choose another spec.app or delete that Release"
    )]
    AppConflict {
        app: String,
        environment: String,
        owner: String,
    },
    #[error(
        "Environment {environment} does not admit Releases of namespace {namespace:?} ({rule}); ask its owners to allow it in spec.releases.namespaces"
    )]
    NotAllowed {
        environment: String,
        namespace: String,
        rule: String,
    },
    #[error(
        "Environment {environment} writes to the same repository and branch as {other}, in an equal or nested folder; give it a folder of its own"
    )]
    OverlappingEnvironment { environment: String, other: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("leader election: {0}")]
    LeaderElection(String),
    #[error("internal error (please report it): {0}")]
    Internal(String),
    /// The workload cluster of an Environment with `spec.cluster`.
    #[error(transparent)]
    Remote(#[from] super::remote::RemoteError),
}

impl Error {
    /// The reason for conditions, Events and metrics.
    pub fn reason(&self) -> Reason {
        match self {
            Error::EnvironmentNotFound { .. } => Reason::EnvironmentNotFound,
            Error::Credentials(CredentialsError::SecretNotFound { .. }) => Reason::SecretNotFound,
            Error::Credentials(CredentialsError::InvalidSecret { .. }) => Reason::InvalidSecret,
            Error::Credentials(CredentialsError::InsecureTransport { .. }) => {
                Reason::InsecureTransport
            }
            Error::Credentials(CredentialsError::Kube(_)) | Error::Kube(_) => {
                Reason::KubernetesError
            }
            Error::AppConflict { .. } => Reason::AppConflict,
            Error::NotAllowed { .. } => Reason::NotAllowedByEnvironment,
            Error::OverlappingEnvironment { .. } => Reason::OverlappingEnvironment,
            Error::Render(e) => Reason::from(e),
            Error::Git(e) => Reason::from(e),
            Error::Finalizer(_) | Error::LeaderElection(_) => Reason::FinalizerFailed,
            Error::Internal(_) => Reason::InternalError,
            Error::Remote(e) => Reason::from(e),
        }
    }

    /// Whether this needs a person (Stalled) rather than time (Reconciling). Terminal errors
    /// are still retried, slowly: the person may fix them without touching the Release (create
    /// the Secret, fix the repository).
    pub fn is_terminal(&self) -> bool {
        match self {
            Error::EnvironmentNotFound { .. }
            | Error::AppConflict { .. }
            | Error::NotAllowed { .. }
            | Error::OverlappingEnvironment { .. } => true,
            Error::Credentials(e) => !matches!(e, CredentialsError::Kube(_)),
            Error::Render(e) => e.is_terminal(),
            Error::Git(e) => e.is_terminal(),
            Error::Remote(e) => e.is_terminal(),
            Error::Kube(_)
            | Error::Finalizer(_)
            | Error::LeaderElection(_)
            | Error::Internal(_) => false,
        }
    }
}
