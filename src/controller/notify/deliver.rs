//! Delivery: one bounded queue and one task per receiver (Environment and receiver name),
//! so that a slow or dead receiver holds back only its own queue, never a reconcile. A
//! reconcile only pushes onto the queue (a mutex held for a push); the task posts in order,
//! retries with backoff, and when the queue is full the oldest waiting notification is
//! dropped and counted. The last outcome per receiver is kept for the Environment's
//! `NotificationsDelivered` condition, and a change of it re-queues the Environment.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::api::{Environment, NotificationReceiver, ReceiverType};

use super::super::metrics::Metrics;
use super::event::{Notification, Seen};

/// How deliveries are paced and bounded.
#[derive(Clone, Debug)]
pub struct Options {
    /// Notifications waiting per receiver; beyond it the oldest is dropped.
    pub capacity: usize,
    /// Tries per notification, the first included.
    pub attempts: u32,
    /// Delay before the first retry, doubling up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// A receiver's task ends after this long without work.
    pub idle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: 256,
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            idle: Duration::from_secs(600),
        }
    }
}

/// `(namespace, name)` of an Environment.
type EnvKey = (String, String);

/// One receiver's queue, and the receiver as last configured: a fixed address applies to
/// what is already waiting, the notification being retried included.
struct Queue {
    receiver: Mutex<NotificationReceiver>,
    items: Mutex<VecDeque<Notification>>,
    ready: Notify,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The notification dispatcher of a controller process.
pub struct Notifier {
    client: Option<kube::Client>,
    metrics: Arc<Metrics>,
    on_change: Option<futures::channel::mpsc::UnboundedSender<ObjectRef<Environment>>>,
    options: Options,
    http: HttpClient<Https, Full<Bytes>>,
    queues: Mutex<HashMap<(EnvKey, String), Arc<Queue>>>,
    /// Per Environment, per receiver: the last delivery's failure (`None`: it succeeded).
    health: Mutex<HashMap<EnvKey, BTreeMap<String, Option<String>>>>,
    /// Per Release (uid) with receivers: what the last status it was given said. A
    /// reconcile may start from a cached Release whose status is older than the one the
    /// previous reconcile wrote; transitions are computed from this instead, so each is
    /// sent once. Empty after a restart: the Releases' statuses are fresh then.
    seen: Mutex<HashMap<String, Seen>>,
}

/// Outcomes counted in `tumbler_notifications_total{outcome}`.
pub const OUTCOMES: [&str; 4] = ["delivered", "retried", "failed", "dropped"];

impl Notifier {
    /// `client` reads receivers' Secrets (none in unit tests); `on_change` re-queues an
    /// Environment whose receivers' health changed.
    pub fn new(
        client: Option<kube::Client>,
        metrics: Arc<Metrics>,
        on_change: Option<futures::channel::mpsc::UnboundedSender<ObjectRef<Environment>>>,
        options: Options,
    ) -> Notifier {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.timeout));
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let tls = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "no system CA certificates: https notification receivers will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let https = tls.https_or_http().enable_http1().wrap_connector(http);
        Notifier {
            client,
            metrics,
            on_change,
            options,
            http: HttpClient::builder(TokioExecutor::new()).build(https),
            queues: Mutex::default(),
            health: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    /// Queues each notification for each receiver of the Environment. Never waits for a
    /// receiver: a full queue drops its oldest notification.
    pub fn send(self: &Arc<Self>, env: &Environment, notifications: &[Notification]) {
        let Some(spec) = env.spec.notifications.as_ref() else {
            return;
        };
        if notifications.is_empty() || spec.receivers.is_empty() {
            return;
        }
        let env_key = (
            env.metadata.namespace.clone().unwrap_or_default(),
            env.metadata.name.clone().unwrap_or_default(),
        );
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for receiver in &spec.receivers {
            let key = (env_key.clone(), receiver.name.clone());
            let queue = queues
                .entry(key.clone())
                .or_insert_with(|| {
                    let queue = Arc::new(Queue {
                        receiver: Mutex::new(receiver.clone()),
                        items: Mutex::default(),
                        ready: Notify::new(),
                    });
                    tokio::spawn(self.clone().run(key, queue.clone()));
                    queue
                })
                .clone();
            *queue.receiver.lock().unwrap_or_else(|e| e.into_inner()) = receiver.clone();
            let mut items = queue.items.lock().unwrap_or_else(|e| e.into_inner());
            for n in notifications {
                if items.len() >= self.options.capacity.max(1) {
                    items.pop_front();
                    self.count("dropped");
                }
                items.push_back(n.clone());
            }
            drop(items);
            queue.ready.notify_one();
        }
    }

    /// Applies an Environment's receivers as they are now to their queues (an address
    /// fixed in the spec or Secret reference applies to what is waiting).
    pub fn configure(&self, env: &Environment) {
        let env_key = (
            env.metadata.namespace.clone().unwrap_or_default(),
            env.metadata.name.clone().unwrap_or_default(),
        );
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for receiver in env.spec.notifications.iter().flat_map(|n| &n.receivers) {
            if let Some(queue) = queues.get(&(env_key.clone(), receiver.name.clone())) {
                *queue.receiver.lock().unwrap_or_else(|e| e.into_inner()) = receiver.clone();
            }
        }
    }

    /// The receivers of an Environment with their last failure (`None`: the last delivery
    /// succeeded, or none was tried yet), in the order of `names`.
    pub fn health(&self, env: &Environment, names: &[String]) -> Vec<(String, Option<String>)> {
        let env_key = (
            env.metadata.namespace.clone().unwrap_or_default(),
            env.metadata.name.clone().unwrap_or_default(),
        );
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let known = health.get(&env_key);
        names
            .iter()
            .map(|n| (n.clone(), known.and_then(|k| k.get(n).cloned().flatten())))
            .collect()
    }

    /// What the last status decided for a Release said, when this process decided one.
    pub fn seen(&self, uid: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    /// Records the status just written for a Release.
    pub fn saw(&self, uid: &str, seen: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_string(), seen);
    }

    /// Forgets a Release that is going away.
    pub fn forget_release(&self, uid: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// Forgets an Environment that is going away.
    pub fn forget(&self, env: &Environment) {
        let env_key = (
            env.metadata.namespace.clone().unwrap_or_default(),
            env.metadata.name.clone().unwrap_or_default(),
        );
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&env_key);
    }

    fn count(&self, outcome: &'static str) {
        self.metrics.notification(outcome);
    }

    /// A receiver's task: posts its queue in order until idle.
    async fn run(self: Arc<Self>, key: (EnvKey, String), queue: Arc<Queue>) {
        loop {
            let next = queue
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match next {
                Some(notification) => self.deliver(&key, &queue, &notification).await,
                None => {
                    if tokio::time::timeout(self.options.idle, queue.ready.notified())
                        .await
                        .is_err()
                    {
                        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                        let empty = queue
                            .items
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .is_empty();
                        if empty {
                            queues.remove(&key);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Posts one notification, retrying with backoff; records the outcome.
    async fn deliver(&self, key: &(EnvKey, String), queue: &Queue, notification: &Notification) {
        let mut delay = self.options.backoff;
        let attempts = self.options.attempts.max(1);
        for attempt in 1..=attempts {
            let receiver = queue
                .receiver
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match self.post(&key.0.0, &receiver, notification).await {
                Ok(()) => {
                    self.count("delivered");
                    self.record(key, None);
                    return;
                }
                Err(problem) => {
                    // Never the address: it may be a credential.
                    warn!(namespace = %key.0.0, environment = %key.0.1, receiver = %key.1, attempt, error = %problem, "notification not delivered");
                    self.record(key, Some(problem));
                    if attempt == attempts {
                        self.count("failed");
                        return;
                    }
                    self.count("retried");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.options.max_backoff);
                }
            }
        }
    }

    fn record(&self, key: &(EnvKey, String), failure: Option<String>) {
        let changed = {
            let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
            let slot = health
                .entry(key.0.clone())
                .or_default()
                .entry(key.1.clone())
                .or_insert(None);
            let changed = *slot != failure;
            *slot = failure;
            changed
        };
        if changed && let Some(tx) = &self.on_change {
            let _ = tx.unbounded_send(ObjectRef::<Environment>::new(&key.0.1).within(&key.0.0));
        }
    }

    /// One POST. The error says what went wrong without the address.
    async fn post(
        &self,
        namespace: &str,
        receiver: &NotificationReceiver,
        notification: &Notification,
    ) -> Result<(), String> {
        let payload = body(receiver.type_, notification);
        let (mut address, mut token) = (receiver.address.clone(), None);
        if let Some(secret_ref) = &receiver.secret_ref {
            let client = self
                .client
                .clone()
                .ok_or_else(|| "no Kubernetes client to read the Secret".to_string())?;
            let secrets: Api<Secret> = Api::namespaced(client, namespace);
            let secret = secrets
                .get_opt(&secret_ref.name)
                .await
                .map_err(|e| format!("reading Secret {}: {e}", secret_ref.name))?
                .ok_or_else(|| format!("Secret {} not found", secret_ref.name))?;
            let data = secret.data.unwrap_or_default();
            let get = |k: &str| {
                data.get(k)
                    .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            if let Some(a) = get("address") {
                address = Some(a);
            }
            token = get("token");
        }
        let address = address.ok_or_else(|| {
            "no address: set spec.notifications.receivers[].address or the Secret's `address` key"
                .to_string()
        })?;
        let uri: hyper::Uri = address
            .parse()
            .map_err(|_| "the address is not a valid URL".to_string())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err("the address must be an http:// or https:// URL".into());
        }
        let mut request = hyper::Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("tumbler/", env!("CARGO_PKG_VERSION")),
            );
        if receiver.type_ == ReceiverType::GenericHmac {
            let token = token.ok_or_else(|| {
                let name = receiver.secret_ref.as_ref().map(|s| s.name.as_str());
                format!(
                    "Secret {} has no `token` key (the HMAC key of generic-hmac)",
                    name.unwrap_or_default()
                )
            })?;
            request = request.header("X-Signature", signature(token.as_bytes(), &payload));
        }
        let request = request
            .body(Full::new(payload))
            .map_err(|e| format!("building the request: {e}"))?;
        let response = tokio::time::timeout(self.options.timeout, self.http.request(request))
            .await
            .map_err(|_| format!("no answer within {:?}", self.options.timeout))?
            .map_err(|e| scrub(&describe(&e), &address))?;
        let status = response.status();
        debug!(%status, receiver = %receiver.name, "notification posted");
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }
}

/// The body a receiver of this type gets.
pub fn body(type_: ReceiverType, n: &Notification) -> Bytes {
    let value = match type_ {
        ReceiverType::Generic | ReceiverType::GenericHmac => serde_json::to_value(n),
        ReceiverType::Slack => Ok(serde_json::json!({
            "text": n.text(),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": n.text()}}],
        })),
    };
    Bytes::from(
        value
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_default(),
    )
}

/// Flux's `generic-hmac` header value: `sha256=<hex HMAC-SHA256 of the body>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An HTTP client error with its causes ("connection refused"…).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Removes the address (and its host) from a message.
fn scrub(message: &str, address: &str) -> String {
    let mut out = message.replace(address, "<address>");
    if let Ok(uri) = address.parse::<hyper::Uri>()
        && let Some(authority) = uri.authority()
    {
        out = out.replace(authority.as_str(), "<address>");
    }
    out
}
