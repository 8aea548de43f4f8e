//! The git writer: cached clones, in-memory trees, commits, push and fetch. Talks only to
//! git, never to Kubernetes.
