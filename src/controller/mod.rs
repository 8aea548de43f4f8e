//! The reconcilers (Environment, Release, Flux feedback) and their shared context. The only
//! module, with `cli`, that talks to Kubernetes.
