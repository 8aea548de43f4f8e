//! Notifications of Release transitions, against webhook receivers on loopback: the
//! transitions of a Release in order with a valid HMAC, a Slack-format receiver, and a dead
//! receiver that shows on its Environment without holding releases back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tumbler::api::{Environment, Phase, Release};

use crate::harness::*;

/// A request as received: its X-Signature header and its body.
type Received = (Option<String>, Vec<u8>);

/// A webhook on loopback: answers 200 to every POST and keeps what it received.
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(vec![]));
        let kept = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if let Some(request) = read_request(&stream) {
                    kept.lock().unwrap().push(request);
                }
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Hook { url, got }
    }

    /// The JSON bodies received so far.
    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, b)| serde_json::from_slice(b).ok())
            .collect()
    }

    /// Waits until `done` holds for the bodies received.
    async fn wait(&self, what: &str, s: &Scenario, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let bodies = self.bodies();
            if done(&bodies) {
                return bodies;
            }
            assert!(
                Instant::now() < deadline,
                "webhook: timed out waiting for {what}; got:\n{}\n--- controller log tail ---\n{}",
                serde_json::to_string_pretty(&bodies).unwrap(),
                s.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One HTTP/1.1 request: its X-Signature header and body.
fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let (mut len, mut signature) = (0usize, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().ok()?,
                "x-signature" => signature = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((signature, body))
}

/// `(reason, version)` of the notifications about one Release, in arrival order.
fn of_release(bodies: &[Value], release: &str) -> Vec<(String, String)> {
    bodies
        .iter()
        .filter(|b| b["release"] == release)
        .map(|b| {
            (
                b["reason"].as_str().unwrap_or_default().to_string(),
                b["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pair(reason: &str, version: &str) -> (String, String) {
    (reason.to_string(), version.to_string())
}

fn ready_at(version: &'static str) -> impl Fn(&Release) -> bool {
    move |r: &Release| {
        r.spec.version == version
            && r.status.as_ref().is_some_and(|st| {
                st.phase == Phase::Ready && st.observed_generation == r.metadata.generation
            })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_reach_a_signed_webhook_in_order_and_slack_gets_text() {
    let s = Scenario::new("notify").await;
    let url = new_repo(&s.ns, false);
    crate::flux::flux_objects_waiting(&s, &url, true);
    let hook = Hook::start();
    let chat = Hook::start();
    let token = "e2e-hmac-key";
    s.secret("hook", &[("address", hook.url.as_str()), ("token", token)])
        .await;
    let spec = json!({
        "targetNamespace": s.ns,
        "flux": {"kustomizations": [{"name": "apps"}]},
        "notifications": {"receivers": [
            {"name": "hook", "type": "generic-hmac", "secretRef": {"name": "hook"}},
            {"name": "chat", "type": "slack", "address": chat.url},
        ]},
    });
    s.apply(&s.environments(), environment("staging", &url, spec))
        .await;
    let api = format!("{}/api", s.ns);

    for version in ["1.0.0", "2.0.0"] {
        s.apply(
            &s.releases(),
            template_release("api", "staging", "api", version),
        )
        .await;
        s.wait_release_for("api", version, Duration::from_secs(120), ready_at(version))
            .await;
    }
    // `previous` (the k9s key's form): the newest applied version before 2.0.0, 1.0.0.
    let (ok, out) = tumbler(&["rollback", "api", "--to", "previous", "-n", &s.ns]);
    assert!(ok, "rollback failed: {out}");
    let rel = s
        .wait_release_for(
            "api",
            "rolled back",
            Duration::from_secs(120),
            ready_at("1.0.0"),
        )
        .await;
    let expected = vec![
        pair("Committed", "1.0.0"),
        pair("Ready", "1.0.0"),
        pair("Committed", "2.0.0"),
        pair("Ready", "2.0.0"),
        pair("RolledBack", "1.0.0"),
        pair("Ready", "1.0.0"),
    ];
    let bodies = hook
        .wait("the six transitions of api", &s, |b| {
            of_release(b, &api).len() >= expected.len()
        })
        .await;
    assert_eq!(of_release(&bodies, &api), expected, "in order, each once");

    // Every POST is signed as Flux's generic-hmac: sha256=<hex HMAC of the body>.
    for (signature, body) in hook.got.lock().unwrap().iter() {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature.as_deref(), Some(expected.as_str()));
    }
    // The payload names what a receiver routes on.
    let rolled = bodies.iter().find(|b| b["reason"] == "RolledBack").unwrap();
    let commit = rel
        .status
        .as_ref()
        .and_then(|st| st.commit.clone())
        .unwrap();
    assert_eq!(rolled["commit"], commit.as_str());
    assert_eq!(rolled["action"], "rollback");
    assert_eq!(rolled["rolledBackFrom"], "2.0.0");
    assert_eq!(rolled["app"], "api");
    assert_eq!(rolled["environment"], format!("{}/staging", s.ns));
    assert_eq!(rolled["severity"], "info");
    assert_eq!(rolled["involvedObject"]["kind"], "Release");
    assert!(
        rolled["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let first = bodies.iter().find(|b| b["reason"] == "Committed").unwrap();
    assert_eq!(first["action"], "release");

    // A version Flux cannot apply: Failed, with Flux's reason.
    let bad = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "bad"},
        "spec": {"environment": "staging", "app": "bad", "version": "1",
                 "manifests": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"}, "spec": {"ports": [{"port": 99999}]}}]}
    });
    s.apply(&s.releases(), bad).await;
    let bad_key = format!("{}/bad", s.ns);
    let bodies = hook
        .wait("bad: Committed then Failed", &s, |b| {
            of_release(b, &bad_key).iter().any(|(r, _)| r == "Failed")
        })
        .await;
    assert_eq!(
        of_release(&bodies, &bad_key),
        vec![pair("Committed", "1"), pair("Failed", "1")]
    );
    let failed = bodies
        .iter()
        .find(|b| b["release"] == bad_key.as_str() && b["reason"] == "Failed")
        .unwrap();
    assert_eq!(failed["severity"], "error");
    assert_eq!(failed["failure"]["reason"], "FluxFailed");
    assert!(
        failed["failure"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{failed}"
    );

    // The Slack-format receiver got a text per transition.
    let texts = chat
        .wait("slack texts", &s, |b| b.len() >= expected.len())
        .await;
    let first = texts[0]["text"].as_str().unwrap_or_default();
    assert!(
        first.contains("Committed") && first.contains(&api) && first.contains("1.0.0"),
        "{first}"
    );
    let env = s
        .wait_environment("staging", "NotificationsDelivered=True", |e| {
            delivered(e).is_some_and(|(status, _, _)| status == "True")
        })
        .await;
    assert_eq!(delivered(&env).unwrap().1, "Delivered");
    s.finish().await;
}

/// The `NotificationsDelivered` condition: status, reason, message.
fn delivered(env: &Environment) -> Option<(String, String, String)> {
    env.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "NotificationsDelivered")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_shows_on_the_environment_and_holds_no_release_back() {
    let s = Scenario::new("notify-dead").await;
    // A closed port (refused at once) and a server that accepts and never answers (each
    // attempt waits for the 10 s timeout: a notification costs it over a minute).
    let closed = free_port();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = vec![];
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let closed_url = format!("http://127.0.0.1:{closed}/hook-path-with-token");
    let receivers = json!({"notifications": {"receivers": [
        {"name": "closed", "type": "generic", "address": closed_url},
        {"name": "silent", "type": "slack", "address": silent_url},
    ]}});
    let dead_url = s.repo_and_environment("dead", receivers).await;
    s.repo_and_environment("plain", json!({})).await;

    // The same releases into both: every one is committed as promptly into the Environment
    // whose receivers are dead as into the one without receivers. A reconcile that waited
    // for delivery would need over a minute per version.
    for (generation, version) in [(1, "1.0.0"), (2, "1.1.0"), (3, "1.2.0")] {
        for (name, env) in [("a", "dead"), ("b", "plain")] {
            s.apply(&s.releases(), template_release(name, env, name, version))
                .await;
        }
        for name in ["a", "b"] {
            let start = Instant::now();
            s.wait_release_for(name, version, Duration::from_secs(30), |r| {
                committed(r) && r.metadata.generation == Some(generation)
            })
            .await;
            println!(
                "{name} {version} committed after {:.2} s",
                start.elapsed().as_secs_f64()
            );
        }
    }

    let env = s
        .wait_environment("dead", "NotificationsDelivered=False", |e| {
            delivered(e)
                .is_some_and(|(status, _, m)| status == "False" && m.contains("receiver closed"))
        })
        .await;
    let (_, reason, message) = delivered(&env).unwrap();
    assert_eq!(reason, "DeliveryFailed");
    assert!(
        !message.contains(&closed.to_string()) && !message.contains("hook-path-with-token"),
        "the address must not show: {message}"
    );
    assert!(
        delivered(&s.environments().get("plain").await.unwrap()).is_none(),
        "no receivers, no condition"
    );
    assert!(
        s.metric("tumbler_notifications_total{outcome=\"retried\"}")
            .await
            >= 1.0
    );
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(
        !log.contains("hook-path-with-token") && !log.contains(&format!(":{closed}")),
        "the address must not be logged"
    );

    // Fixed (the closed receiver now points at a live server, the silent one is gone): the
    // next delivery succeeds and the condition clears.
    let hook = Hook::start();
    s.apply(
        &s.environments(),
        environment(
            "dead",
            &dead_url,
            json!({"notifications": {"receivers": [
                {"name": "closed", "type": "generic", "address": hook.url},
            ]}}),
        ),
    )
    .await;
    s.apply(&s.releases(), template_release("a", "dead", "a", "1.3.0"))
        .await;
    let a = format!("{}/a", s.ns);
    hook.wait("a 1.3.0 Committed", &s, |b| {
        of_release(b, &a).contains(&pair("Committed", "1.3.0"))
    })
    .await;
    s.wait_environment("dead", "NotificationsDelivered=True", |e| {
        delivered(e).is_some_and(|(status, reason, _)| status == "True" && reason == "Delivered")
    })
    .await;
    s.finish().await;
}
