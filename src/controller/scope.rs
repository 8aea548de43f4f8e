//! Which namespaces a controller watches (`--watch-namespace`): all (none given), one (the
//! watches are scoped to it on the API server), or several. A reflector keeps one store per
//! watch and a relist of one watch resets the whole store, so several namespaced watches
//! cannot feed one store: with several namespaces the watches are cluster-wide and the
//! objects of other namespaces are dropped here, before the index, any store or any
//! reconcile sees them. RBAC follows (docs/ARCHITECTURE.md, "Watched namespaces"): reading
//! Releases and Environments cluster-wide; writing them, Events and Secrets only in the
//! watched namespaces.

use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::runtime::watcher;

use super::context::Config;

/// The namespaces of `--watch-namespace` (comma-separated and/or repeated): trimmed,
/// without empty entries, sorted, without duplicates. Empty: every namespace.
pub fn parse_namespaces<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    let mut namespaces: Vec<String> = values
        .iter()
        .flat_map(|v| v.as_ref().split(','))
        .map(str::trim)
        .filter(|ns| !ns.is_empty())
        .map(str::to_string)
        .collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

impl Config {
    /// The namespace the watches are scoped to on the API server: the only watched one.
    /// `None` (cluster-wide) with every namespace or with several.
    pub fn api_scope(&self) -> Option<&str> {
        match self.namespaces.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Whether the objects of namespace `ns` are this controller's.
    pub fn watches(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|w| w == ns)
    }
}

/// Drops the objects of namespaces this controller does not watch from a watch stream.
pub trait OnlyWatched<K>: Stream<Item = watcher::Result<watcher::Event<K>>> + Sized {
    /// The stream without the objects of unwatched namespaces (a no-op when the watch is
    /// already scoped to them). The markers of a relist (`Init`, `InitDone`) pass, so the
    /// store is still rebuilt from what remains.
    fn only_watched(self, config: &Config) -> impl Stream<Item = Self::Item> + Send + use<K, Self>
    where
        K: kube::Resource + Send,
        Self: Send,
    {
        let namespaces = config.namespaces.clone();
        let all = namespaces.len() < 2;
        self.filter(move |event| {
            let keep = all
                || match event {
                    Ok(
                        watcher::Event::Apply(obj)
                        | watcher::Event::Delete(obj)
                        | watcher::Event::InitApply(obj),
                    ) => namespaces
                        .iter()
                        .any(|ns| obj.namespace().as_deref() == Some(ns.as_str())),
                    _ => true,
                };
            futures::future::ready(keep)
        })
    }
}

impl<K, S: Stream<Item = watcher::Result<watcher::Event<K>>>> OnlyWatched<K> for S {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Release;

    fn config(namespaces: &[&str]) -> Config {
        Config {
            cache_dir: "/tmp/x".into(),
            namespaces: parse_namespaces(namespaces),
            label_selector: None,
            concurrency: 1,
            git_timeout: std::time::Duration::from_secs(1),
            reporter: "t".into(),
            nudge_flux: false,
            admin_addr: None,
            leader_election: None,
        }
    }

    #[test]
    fn namespaces_are_split_trimmed_sorted_and_deduplicated() {
        assert_eq!(parse_namespaces(&["b, a", "a", ""]), ["a", "b"]);
        assert!(parse_namespaces(&[" , "]).is_empty());
        assert!(parse_namespaces::<&str>(&[]).is_empty());
    }

    #[test]
    fn one_namespace_scopes_the_api_several_watch_everything_and_filter() {
        let none = config(&[]);
        assert_eq!(none.api_scope(), None);
        assert!(none.watches("anything"));
        let one = config(&["a"]);
        assert_eq!(one.api_scope(), Some("a"));
        assert!(one.watches("a") && !one.watches("b"));
        let two = config(&["a,b"]);
        assert_eq!(two.api_scope(), None);
        assert!(two.watches("a") && two.watches("b") && !two.watches("c"));
    }

    fn release(ns: &str) -> Release {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tumbler.dev/v1alpha1",
            "kind": "Release",
            "metadata": {"name": "r", "namespace": ns},
            "spec": {"environment": "e", "app": "a", "version": "1", "manifests": []}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn objects_of_unwatched_namespaces_are_dropped_but_relist_markers_pass() {
        let events = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(release("a"))),
            Ok(watcher::Event::InitApply(release("c"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(release("b"))),
            Ok(watcher::Event::Apply(release("c"))),
            Ok(watcher::Event::Delete(release("c"))),
            Ok(watcher::Event::Delete(release("a"))),
        ];
        let kept: Vec<String> = futures::stream::iter(events)
            .only_watched(&config(&["a", "b"]))
            .map(|e| match e.unwrap() {
                watcher::Event::Init => "init".to_string(),
                watcher::Event::InitDone => "done".to_string(),
                watcher::Event::InitApply(r) => format!("init:{}", r.namespace().unwrap()),
                watcher::Event::Apply(r) => format!("apply:{}", r.namespace().unwrap()),
                watcher::Event::Delete(r) => format!("delete:{}", r.namespace().unwrap()),
            })
            .collect()
            .await;
        assert_eq!(
            kept,
            ["init", "init:a", "done", "apply:b", "delete:a"],
            "only a and b"
        );
    }
}
