//! Workload clusters: an Environment whose Flux runs in another cluster (`spec.cluster`) is
//! read there, through a client built from the kubeconfig in its Secret (pull; see
//! docs/DECISIONS.md). Clients are cached per Environment, keyed by the Secret's name and
//! resourceVersion, so that a rotated kubeconfig is used from the next reconcile on; their
//! connect and request timeouts are short, so that an unreachable cluster costs its own
//! Environment's reconciles a few seconds and the others nothing.
//!
//! The kubeconfig is taken as data only: an `https://` server, inline CA, and an inline token
//! or client certificate. Paths (which would read the controller's own files, such as its
//! ServiceAccount token), `exec` and auth-provider plugins (which would run commands) and
//! `insecure-skip-tls-verify` are refused. Nothing of the kubeconfig is ever written to a
//! log, an Event or a status; errors name the Secret and the server only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};

use crate::api::{ClusterSpec, Environment};

use super::status::key;

/// The condition type on Environments with `spec.cluster`.
pub const CLUSTER_REACHABLE: &str = "ClusterReachable";

/// The key of the kubeconfig in its Secret by default.
pub const DEFAULT_KEY: &str = "kubeconfig";

/// How long connecting to a workload cluster may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a workload cluster may take to answer a request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a Release reconcile trusts a cached client without reading its Secret again.
/// The Environment reconcile (at least every 30 s) always reads it, so a rotated kubeconfig
/// reaches the Environment at once and its Releases within this long, and a burst of
/// Releases costs no Secret GET each.
pub const SECRET_RECHECK: Duration = Duration::from_secs(30);

/// Why a workload cluster cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "Secret {name:?} (spec.cluster.kubeconfigSecretRef) not found in namespace {namespace:?}: create it with the workload cluster's kubeconfig under key {key:?}"
    )]
    SecretNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "Secret {namespace}/{name} (spec.cluster.kubeconfigSecretRef): {problem}; see config/remote/ for how to build one"
    )]
    InvalidKubeconfig {
        namespace: String,
        name: String,
        problem: String,
    },
    #[error("workload cluster {server} is unreachable: {message}")]
    Unreachable { server: String, message: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl RemoteError {
    /// Whether a person must act (a missing or unusable kubeconfig) rather than time.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RemoteError::SecretNotFound { .. } | RemoteError::InvalidKubeconfig { .. }
        )
    }
}

/// The cluster an Environment's Flux and workloads live in.
#[derive(Clone)]
pub struct Workloads {
    pub client: Client,
    /// The API server of a workload cluster; `None` for the cluster Tumbler runs in.
    pub server: Option<String>,
}

impl Workloads {
    /// The cluster Tumbler runs in.
    pub fn local(client: &Client) -> Workloads {
        Workloads {
            client: client.clone(),
            server: None,
        }
    }

    /// The error of a read in this cluster: a workload cluster that does not answer (no
    /// connection, a timeout, a 5xx) is unreachable; anything else is what the API said.
    pub fn error(&self, e: kube::Error) -> super::Error {
        match (&self.server, &e) {
            (Some(server), e) if unreachable(e) => super::Error::Remote(RemoteError::Unreachable {
                server: server.clone(),
                message: e.to_string(),
            }),
            _ => super::Error::Kube(e),
        }
    }

    /// A prefix that tells this cluster's objects from the same names elsewhere.
    pub fn tag(&self) -> &str {
        self.server.as_deref().unwrap_or("")
    }
}

/// Whether a kube error means the API server did not answer.
pub fn unreachable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

struct Cached {
    secret: String,
    resource_version: Option<String>,
    /// When the Secret was last read.
    checked: Instant,
    workloads: Workloads,
}

/// Clients of workload clusters, one per Environment (by uid).
#[derive(Default)]
pub struct Clusters {
    cached: Mutex<HashMap<String, Cached>>,
}

impl Clusters {
    /// The cluster an Environment's Flux runs in: this one without `spec.cluster`; otherwise
    /// a client from its Secret, built again when the Secret changed. `fresh`: read the
    /// Secret now (the Environment reconcile); otherwise a client whose Secret was read less
    /// than [`SECRET_RECHECK`] ago is used as it is (the Release reconciles).
    pub async fn of(
        &self,
        client: &Client,
        env: &Environment,
        fresh: bool,
    ) -> Result<Workloads, RemoteError> {
        let Some(spec) = env.spec.cluster.as_ref() else {
            return Ok(Workloads::local(client));
        };
        let ns = env.namespace().unwrap_or_default();
        let name = &spec.kubeconfig_secret_ref.name;
        let uid = env.metadata.uid.clone().unwrap_or_else(|| key(env));
        if !fresh {
            let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cached.get(&uid)
                && c.secret == *name
                && c.checked.elapsed() < SECRET_RECHECK
            {
                return Ok(c.workloads.clone());
            }
        }
        let secret = Api::<Secret>::namespaced(client.clone(), &ns)
            .get_opt(name)
            .await?
            .ok_or_else(|| RemoteError::SecretNotFound {
                namespace: ns.clone(),
                name: name.clone(),
                key: key_of(spec).to_string(),
            })?;
        let rv = secret.metadata.resource_version.clone();
        {
            let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cached.get_mut(&uid)
                && c.secret == *name
                && c.resource_version == rv
                && rv.is_some()
            {
                c.checked = Instant::now();
                return Ok(c.workloads.clone());
            }
        }
        let workloads = build(&ns, spec, &secret).await?;
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                uid,
                Cached {
                    secret: name.clone(),
                    resource_version: rv,
                    checked: Instant::now(),
                    workloads: workloads.clone(),
                },
            );
        Ok(workloads)
    }

    /// Drops the client of an Environment that is going away.
    pub fn forget(&self, env: &Environment) {
        let uid = env.metadata.uid.clone().unwrap_or_else(|| key(env));
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
    }
}

fn key_of(spec: &ClusterSpec) -> &str {
    spec.kubeconfig_secret_ref
        .key
        .as_deref()
        .unwrap_or(DEFAULT_KEY)
}

/// A client from the kubeconfig in the Secret, checked first (see the module docs).
async fn build(ns: &str, spec: &ClusterSpec, secret: &Secret) -> Result<Workloads, RemoteError> {
    let name = &spec.kubeconfig_secret_ref.name;
    let invalid = |problem: String| RemoteError::InvalidKubeconfig {
        namespace: ns.to_string(),
        name: name.clone(),
        problem,
    };
    let k = key_of(spec);
    let text = secret
        .data
        .as_ref()
        .and_then(|d| d.get(k))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid(format!("no key {k:?} holding a kubeconfig")))?;
    // The parser's own message may quote the text (a token among it): never shown.
    let kubeconfig = Kubeconfig::from_yaml(&text)
        .map_err(|_| invalid(format!("key {k:?} is not a kubeconfig (YAML)")))?;
    check(&kubeconfig).map_err(invalid)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| invalid(describe(&e)))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(REQUEST_TIMEOUT);
    config.write_timeout = Some(REQUEST_TIMEOUT);
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let client =
        Client::try_from(config).map_err(|e| invalid(format!("cannot build a client: {e}")))?;
    Ok(Workloads {
        client,
        server: Some(server),
    })
}

/// What kube's kubeconfig errors say, without anything that could quote the file.
fn describe(e: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as K;
    match e {
        K::CurrentContextNotSet => "no current-context".into(),
        K::LoadContext(c) => format!("context {c:?} not found"),
        K::LoadClusterOfContext(c) => format!("cluster {c:?} of the context not found"),
        K::MissingClusterUrl => "the cluster has no server".into(),
        K::ParseClusterUrl(_) => "the cluster's server is not a URL".into(),
        _ => "its certificates or keys do not parse".into(),
    }
}

/// Refuses what would read the controller's files, run commands or skip TLS checks.
pub fn check(k: &Kubeconfig) -> Result<(), String> {
    for c in &k.clusters {
        let Some(cluster) = c.cluster.as_ref() else {
            continue;
        };
        let server = cluster.server.as_deref().unwrap_or_default();
        if !server
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(format!(
                "cluster {:?}: the server must be an https::// URL",
                c.name
            ));
        }
        if cluster.certificate_authority.is_some() {
            return Err(format!(
                "cluster {:?}: certificate-authority names a file; put the CA inline in certificate-authority-data",
                c.name
            ));
        }
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Err(format!(
                "cluster {:?}: insecure-skip-tls-verify is refused; give certificate-authority-data",
                c.name
            ));
        }
    }
    for a in &k.auth_infos {
        let Some(user) = a.auth_info.as_ref() else {
            continue;
        };
        let files = user.token_file.is_some()
            || user.client_certificate.is_some()
            || user.client_key.is_some();
        if files {
            return Err(format!(
                "user {:?}: tokenFile, client-certificate and client-key name files; put the token or certificate inline",
                a.name
            ));
        }
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(format!(
                "user {:?}: exec and auth-provider plugins are refused; use a token (kubectl create token) or an inline client certificate",
                a.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(cluster: &str, user: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: w\n  cluster:\n{cluster}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: c\n  context: {{cluster: w, user: u}}\ncurrent-context: c\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_kubeconfig_is_data_only_over_https() {
        let good = "    server: https://10.0.0.1:6443\n    certificate-authority-data: Zm9v";
        assert_eq!(check(&kubeconfig(good, "    token: abc")), Ok(()));
        let refused = [
            (
                "    server: http://10.0.0.1:6443",
                "    token: abc",
                "https",
            ),
            (
                "    server: https://x\n    certificate-authority: /etc/ca.crt",
                "    token: abc",
                "certificate-authority-data",
            ),
            (
                "    server: https://x\n    insecure-skip-tls-verify: true",
                "    token: abc",
                "insecure-skip-tls-verify",
            ),
            (
                good,
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
                "name files",
            ),
            (good, "    client-key: /k", "name files"),
            (
                good,
                "    exec: {command: sh, apiVersion: client.authentication.k8s.io/v1}",
                "plugins",
            ),
        ];
        for (cluster, user, says) in refused {
            let err = check(&kubeconfig(cluster, user)).unwrap_err();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("abc"), "{err}");
        }
    }

    #[test]
    fn only_a_silent_api_server_is_unreachable() {
        let status = |code| {
            kube::Error::Api(
                kube::core::Status::failure("m", "r")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(unreachable(&status(503)));
        assert!(!unreachable(&status(403)));
        assert!(!unreachable(&status(404)));
    }
}
