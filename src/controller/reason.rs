//! Every reason Tumbler writes on a condition or an Event, as one enum: code matches on the
//! variant, people read the CamelCase word. Errors map to their reason by variant
//! ([`super::Error::reason`]); nothing compares reason strings.

/// A condition or Event reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    // --- Ready=True
    /// Flux applied the commit and the workloads run it.
    Applied,
    /// The Environment's repository answered and its branch exists.
    RepositoryReady,

    // --- Ready=False, neither Reconciling nor Stalled
    /// Pushed, but the Environment names no Flux object, so nothing says it was applied.
    NotVerified,

    // --- in flight (Reconciling=True)
    EnvironmentSuspended,
    Suspended,
    WaitingForFlux,
    FluxKustomizationNotFound,
    FluxNotInstalled,
    FluxSuspended,
    WaitingForHelmRelease,
    RollingOut,
    DeletionBlocked,
    KubernetesError,
    FinalizerFailed,
    InternalError,

    // --- stopped by Flux or the cluster (Stalled=True)
    FluxFailed,
    HelmReleaseFailed,
    RolloutStuck,

    // --- the Release or its Environment
    EnvironmentNotFound,
    SecretNotFound,
    InvalidSecret,
    AppConflict,
    /// The Environment does not admit Releases of this namespace.
    NotAllowedByEnvironment,
    /// Another, older Environment writes to the same or a nested folder.
    OverlappingEnvironment,
    /// The app folder exists in git without `.tumbler/release.yaml`: Tumbler did not write it.
    FolderNotManaged,
    /// Credentials would go over plain `http://` and the Environment does not allow it.
    InsecureTransport,

    // --- render
    InvalidName,
    InvalidPath,
    NoSource,
    InvalidManifest,
    ForbiddenKind,
    ClusterScopedRefused,
    WrongNamespace,
    PatchFailed,
    InvalidValues,
    InvalidEnvironment,
    TargetNamespaceNotAllowed,
    FluxObjectRefused,
    RbacRefused,
    RenderTooLarge,
    RenderFailed,

    // --- git
    AuthenticationFailed,
    RepositoryUnreachable,
    GitTimeout,
    BranchNotFound,
    PushRejected,
    InvalidKustomization,
    InvalidAuthor,
    GitCacheCorrupt,
    GitBusy,
    GitFailed,

    // --- other conditions
    /// `Rendered=True`.
    Rendered,
    /// `Committed=True` after a push of ours.
    Pushed,
    /// `Committed=True` when git already had the files.
    UpToDate,
    /// `Drifted=False`.
    InSync,
    /// `Drifted=True`.
    ChangedOutsideTumbler,
    /// `FluxReady` on Environments.
    KustomizationsReady,
    /// `FluxReady=False` on an Environment that names no Flux Kustomization.
    NoFluxKustomization,
    /// `HelmPolicyEnforced=True`: Flux installs charts as the team's account.
    Impersonated,
    /// `HelmPolicyEnforced=False`: charts are installed with helm-controller's rights.
    NotImpersonated,
    FluxFailing,
    FluxUnknown,
    /// `NotificationsDelivered=True`: the last delivery to every receiver succeeded.
    Delivered,
    /// `NotificationsDelivered=False`: a receiver could not be reached or refused.
    DeliveryFailed,

    // --- Events only
    /// A deleted Release let go without removing its folder: its Environment is gone.
    EnvironmentGone,
    /// A deleted Release let go without removing its folder: no way to write to git.
    FolderLeftInGit,
    /// A Release was written to its Environment's new repository, branch or path.
    Repointed,

    // --- workload clusters (`spec.cluster`)
    /// `ClusterReachable=True`: the workload cluster's API server answers.
    ClusterReachable,
    /// The workload cluster's API server does not answer: its facts are unknown.
    ClusterUnreachable,
    /// The kubeconfig Secret of `spec.cluster` is not usable.
    InvalidKubeconfig,
    /// A Release's `spec.expiry` passed: Tumbler deletes it.
    Expired,
    // --- promotion (the `Promoted` condition of followers, and its Events)
    /// The follower took its upstream's version.
    Promoted,
    Promoting,
    Soaking,
    UpstreamNotReady,
    /// The upstream failed at the version on offer; it is never promoted.
    UpstreamFailed,
    UpstreamNotFound,
    /// The follower's Environment does not admit the upstream's namespace.
    UpstreamNotAllowed,
    /// A rollback by hand holds automatic promotion.
    PromotionHeld,
    AutoPromotionOff,
    /// Follower and upstream use different kinds of source.
    SourceMismatch,
    /// `spec.follow` names the Release itself.
    InvalidFollow,
    // --- rollback requests (`tumbler.dev/rollback-to`)
    /// The spec of the requested version was applied to the Release.
    RolledBack,
    /// The requested version or commit is not in the Release's log.
    RollbackNotFound,
    /// The requested version's spec could not be read or applied.
    RollbackFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            Applied => "Applied",
            RepositoryReady => "RepositoryReady",
            NotVerified => "NotVerified",
            EnvironmentSuspended => "EnvironmentSuspended",
            Suspended => "Suspended",
            WaitingForFlux => "WaitingForFlux",
            FluxKustomizationNotFound => "FluxKustomizationNotFound",
            FluxNotInstalled => "FluxNotInstalled",
            FluxSuspended => "FluxSuspended",
            WaitingForHelmRelease => "WaitingForHelmRelease",
            RollingOut => "RollingOut",
            DeletionBlocked => "DeletionBlocked",
            KubernetesError => "KubernetesError",
            FinalizerFailed => "FinalizerFailed",
            InternalError => "InternalError",
            FluxFailed => "FluxFailed",
            HelmReleaseFailed => "HelmReleaseFailed",
            RolloutStuck => "RolloutStuck",
            EnvironmentNotFound => "EnvironmentNotFound",
            SecretNotFound => "SecretNotFound",
            InvalidSecret => "InvalidSecret",
            AppConflict => "AppConflict",
            NotAllowedByEnvironment => "NotAllowedByEnvironment",
            OverlappingEnvironment => "OverlappingEnvironment",
            FolderNotManaged => "FolderNotManaged",
            InsecureTransport => "InsecureTransport",
            InvalidName => "InvalidName",
            InvalidPath => "InvalidPath",
            NoSource => "NoSource",
            InvalidManifest => "InvalidManifest",
            ForbiddenKind => "ForbiddenKind",
            ClusterScopedRefused => "ClusterScopedRefused",
            WrongNamespace => "WrongNamespace",
            PatchFailed => "PatchFailed",
            InvalidValues => "InvalidValues",
            InvalidEnvironment => "InvalidEnvironment",
            TargetNamespaceNotAllowed => "TargetNamespaceNotAllowed",
            FluxObjectRefused => "FluxObjectRefused",
            RbacRefused => "RBACRefused",
            RenderTooLarge => "RenderTooLarge",
            RenderFailed => "RenderFailed",
            AuthenticationFailed => "AuthenticationFailed",
            RepositoryUnreachable => "RepositoryUnreachable",
            GitTimeout => "GitTimeout",
            BranchNotFound => "BranchNotFound",
            PushRejected => "PushRejected",
            InvalidKustomization => "InvalidKustomization",
            InvalidAuthor => "InvalidAuthor",
            GitCacheCorrupt => "GitCacheCorrupt",
            GitBusy => "GitBusy",
            GitFailed => "GitFailed",
            Rendered => "Rendered",
            Pushed => "Pushed",
            UpToDate => "UpToDate",
            InSync => "InSync",
            ChangedOutsideTumbler => "ChangedOutsideTumbler",
            KustomizationsReady => "KustomizationsReady",
            NoFluxKustomization => "NoFluxKustomization",
            Impersonated => "Impersonated",
            NotImpersonated => "NotImpersonated",
            FluxFailing => "FluxFailing",
            FluxUnknown => "FluxUnknown",
            Delivered => "Delivered",
            DeliveryFailed => "DeliveryFailed",
            EnvironmentGone => "EnvironmentGone",
            FolderLeftInGit => "FolderLeftInGit",
            Repointed => "Repointed",
            ClusterReachable => "ClusterReachable",
            ClusterUnreachable => "ClusterUnreachable",
            InvalidKubeconfig => "InvalidKubeconfig",
            Expired => "Expired",
            Promoted => "Promoted",
            Promoting => "Promoting",
            Soaking => "Soaking",
            UpstreamNotReady => "UpstreamNotReady",
            UpstreamFailed => "UpstreamFailed",
            UpstreamNotFound => "UpstreamNotFound",
            UpstreamNotAllowed => "UpstreamNotAllowed",
            PromotionHeld => "PromotionHeld",
            AutoPromotionOff => "AutoPromotionOff",
            SourceMismatch => "SourceMismatch",
            InvalidFollow => "InvalidFollow",
            RolledBack => "RolledBack",
            RollbackNotFound => "RollbackNotFound",
            RollbackFailed => "RollbackFailed",
        }
    }

    /// Whether an Event with this reason is a Warning.
    pub fn is_warning(self) -> bool {
        use Reason::*;
        !matches!(
            self,
            Applied
                | RepositoryReady
                | NotVerified
                | EnvironmentSuspended
                | Suspended
                | WaitingForFlux
                | WaitingForHelmRelease
                | RollingOut
                | DeletionBlocked
                | Rendered
                | Pushed
                | UpToDate
                | InSync
                | KustomizationsReady
                | NoFluxKustomization
                | Impersonated
                | Delivered
                | Repointed
                | ClusterReachable
                | Expired
                | Promoted
                | Promoting
                | Soaking
                | UpstreamNotReady
                | PromotionHeld
                | AutoPromotionOff
                | RolledBack
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&crate::render::RenderError> for Reason {
    fn from(e: &crate::render::RenderError) -> Self {
        use crate::render::RenderError as R;
        match e {
            R::InvalidName { .. } => Reason::InvalidName,
            R::InvalidPath { .. } => Reason::InvalidPath,
            R::NoSource => Reason::NoSource,
            R::InvalidManifest { .. } => Reason::InvalidManifest,
            R::ForbiddenKind { .. } => Reason::ForbiddenKind,
            R::ClusterScopedRefused { .. } => Reason::ClusterScopedRefused,
            R::WrongNamespace { .. } => Reason::WrongNamespace,
            R::PatchFailed { .. } => Reason::PatchFailed,
            R::InvalidValues { .. } => Reason::InvalidValues,
            R::InvalidEnvironment { .. } => Reason::InvalidEnvironment,
            R::TargetNamespaceNotAllowed { .. } => Reason::TargetNamespaceNotAllowed,
            R::FluxObjectRefused { .. } => Reason::FluxObjectRefused,
            R::RbacRefused { .. } => Reason::RbacRefused,
            R::TooLarge { .. } => Reason::RenderTooLarge,
            R::Yaml(_) => Reason::RenderFailed,
        }
    }
}

impl From<&super::remote::RemoteError> for Reason {
    fn from(e: &super::remote::RemoteError) -> Self {
        use super::remote::RemoteError as R;
        match e {
            R::SecretNotFound { .. } => Reason::SecretNotFound,
            R::InvalidKubeconfig { .. } => Reason::InvalidKubeconfig,
            R::Unreachable { .. } => Reason::ClusterUnreachable,
            R::Kube(_) => Reason::KubernetesError,
        }
    }
}

impl From<&crate::gitops::GitError> for Reason {
    fn from(e: &crate::gitops::GitError) -> Self {
        use crate::gitops::GitError as G;
        match e {
            G::AuthenticationFailed { .. } => Reason::AuthenticationFailed,
            G::RepositoryUnreachable { .. } => Reason::RepositoryUnreachable,
            G::BranchNotFound { .. } => Reason::BranchNotFound,
            G::Timeout { .. } => Reason::GitTimeout,
            G::PushRejected { .. } => Reason::PushRejected,
            G::InvalidPath { .. } => Reason::InvalidPath,
            G::InvalidKustomization { .. } => Reason::InvalidKustomization,
            G::InvalidAuthor { .. } => Reason::InvalidAuthor,
            G::FolderNotManaged { .. } => Reason::FolderNotManaged,
            G::FolderOwned { .. } => Reason::AppConflict,
            G::CacheCorrupt { .. } => Reason::GitCacheCorrupt,
            G::Busy { .. } => Reason::GitBusy,
            G::GitFailed { .. } | G::WorkerGone { .. } => Reason::GitFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_camel_case_words_and_match_the_error_reasons() {
        use crate::render::RenderError;
        for r in [Reason::Applied, Reason::GitTimeout, Reason::RenderTooLarge] {
            let s = r.as_str();
            assert!(s.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
        }
        let e = RenderError::NoSource;
        assert_eq!(Reason::from(&e).as_str(), e.reason());
        for e in [
            crate::gitops::GitError::Timeout {
                url: "u".into(),
                operation: "fetch".into(),
                after_secs: 30,
            },
            crate::gitops::GitError::InvalidKustomization {
                path: "p".into(),
                message: "m".into(),
            },
            crate::gitops::GitError::Busy { url: "u".into() },
            crate::gitops::GitError::FolderNotManaged { path: "p".into() },
            crate::gitops::GitError::FolderOwned {
                path: "p".into(),
                owner: "team/other".into(),
            },
        ] {
            assert_eq!(Reason::from(&e).as_str(), e.reason());
        }
    }
}
