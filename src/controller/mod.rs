//! The reconcilers (Environment, Release) and their shared context. With `cli`, the only
//! module that talks to Kubernetes. A reconcile is a pipeline of named steps —
//! resolve (Environment, Secret) → render → commit → report — where only the first and the
//! last touch the API.

mod admin;
mod context;
mod environment;
mod error;
mod health;
pub mod metrics;
mod release;
mod status;

pub use context::{Config, Context, LeaderElection, run};
pub use error::Error;
pub use release::{ROLLBACK_ANNOTATION, read_credentials};

/// Field manager of everything Tumbler writes with server-side apply.
pub const MANAGER: &str = "tumbler";
/// Finalizer on Releases (their app folder is removed from git before they go) and on
/// Environments (they stay while Releases still use them).
pub const FINALIZER: &str = "tumbler.dev/finalizer";
