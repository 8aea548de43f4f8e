//! Tumbler: a Kubernetes operator that turns `Release` custom resources into commits on
//! gitops repositories and reports, on each Release, what Flux did with its commit.
//!
//! The modules follow the flow: [`api`] (the CRD types) → [`render`] (pure) → [`gitops`]
//! (git only) → [`flux`] (what Flux reports) → [`controller`] (the reconcilers, the only
//! part that talks to Kubernetes besides [`cli`]).
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod controller;
pub mod credentials;
pub mod flux;
pub mod gitops;
pub mod render;

/// Errors of the binary's top level; each module has its own `thiserror` enum.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not built yet")]
    NotImplemented(&'static str),
    #[error("serialising YAML: {0}")]
    Yaml(#[from] serde_saphyr::ser::Error),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Controller(#[from] controller::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
