//! Which kinds are cluster-scoped, from the API server's discovery (custom resources
//! included), cached and refreshed, for the render policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::discovery::{Discovery, Scope};
use tokio::sync::Mutex;
use tracing::warn;

use crate::render::Scopes;

/// How long a discovery result is used before it is read again.
const FRESH: Duration = Duration::from_secs(300);

/// The cached discovery of scopes.
#[derive(Default)]
pub struct ScopeCache {
    state: Mutex<Option<(Instant, Arc<Scopes>)>>,
}

impl ScopeCache {
    /// The scopes, read again when older than five minutes. When discovery fails, the last
    /// answer is kept; without one, `None` (rendering then falls back to its built-in list).
    pub async fn get(&self, client: &Client) -> Option<Arc<Scopes>> {
        let mut state = self.state.lock().await;
        if let Some((at, scopes)) = state.as_ref()
            && at.elapsed() < FRESH
        {
            return Some(scopes.clone());
        }
        match discover(client).await {
            Ok(scopes) => {
                let scopes = Arc::new(scopes);
                *state = Some((Instant::now(), scopes.clone()));
                Some(scopes)
            }
            Err(e) => {
                warn!(error = %e, "API discovery failed; cluster scope from the last answer or the built-in list");
                state.as_ref().map(|(_, s)| s.clone())
            }
        }
    }
}

async fn discover(client: &Client) -> Result<Scopes, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let (mut cluster, mut namespaced) = (vec![], vec![]);
    for group in discovery.groups() {
        for version in group.versions() {
            for (ar, caps) in group.versioned_resources(version) {
                let pair = (ar.group.clone(), ar.kind.clone());
                match caps.scope {
                    Scope::Cluster => cluster.push(pair),
                    Scope::Namespaced => namespaced.push(pair),
                }
            }
        }
    }
    Ok(Scopes::from_lists(cluster, namespaced))
}
