//! The reconcilers (Environment, Release) and what they share. With `cli` and
//! `credentials`, the only code that talks to Kubernetes.
//!
//! Module map:
//! - `release`: the Release reconciler, as `observe` → `decide` (pure) → `act`;
//! - `environment`: the Environment reconciler, in the same shape;
//! - `reason`: every condition and Event reason, as one enum;
//! - `error`: the reconcile error, with its reason and whether it is terminal;
//! - `status`: the finalizer wrapper, kstatus conditions, the one status write, Events;
//! - `index`: Releases by Environment and app, fed by the reflector's events;
//! - `context`: what every reconcile receives;
//! - `scope`: the watched namespaces (one, several, all) and the filter of several;
//! - `discovery`: which kinds are cluster-scoped, from API discovery, cached;
//! - `remote`: the workload cluster of an Environment with `spec.cluster`, a cached client;
//! - `run`: the admin server, leader election, and both controllers until shutdown;
//! - `metrics`, `admin`: `/metrics`, `/healthz`, `/readyz`;
//! - `notify`: Release transitions sent to the Environments' receivers, off the reconcile
//!   path, and the Environment's `NotificationsDelivered` condition.

mod admin;
mod context;
pub(crate) mod discovery;
mod environment;
mod error;
mod index;
pub mod metrics;
pub mod notify;
pub mod reason;
pub(crate) mod release;
pub mod remote;
mod run;
mod scope;
mod status;
mod throttle;

pub use context::{Config, Context, LeaderElection, lease_name};
pub use error::Error;
pub use reason::Reason;
pub use run::run;
pub use scope::parse_namespaces;

/// Field manager of everything Tumbler writes with server-side apply.
pub const MANAGER: &str = "tumbler";
/// Finalizer on Releases (their app folder is removed from git before they go) and on
/// Environments (they stay while Releases still use them).
pub const FINALIZER: &str = "tumbler.dev/finalizer";
