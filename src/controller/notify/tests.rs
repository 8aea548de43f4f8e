//! Transitions as a table, the HMAC format, the condition, and delivery against a real
//! HTTP server on loopback (order, retries, dropping the oldest, health).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;
use crate::api::{Environment, Phase, Release, ReleaseStatus, find_condition};
use crate::controller::metrics::Metrics;

fn at(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).unwrap())
}

fn release(status: Option<ReleaseStatus>, annotations: serde_json::Value) -> Release {
    let mut rel: Release = serde_json::from_value(serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": "api", "namespace": "team", "uid": "u1", "annotations": annotations},
        "spec": {"environment": "staging", "app": "api", "version": "1.2.3",
            "template": {"image": {"repository": "r", "tag": "1"}}},
    }))
    .unwrap();
    rel.status = status;
    rel
}

fn status(commit: Option<&str>, phase: Phase, ready: (&str, &str, &str)) -> ReleaseStatus {
    ReleaseStatus {
        commit: commit.map(str::to_string),
        phase,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: ready.0.into(),
            reason: ready.1.into(),
            message: ready.2.into(),
            observed_generation: Some(1),
            last_transition_time: at(1),
        }],
        ..ReleaseStatus::default()
    }
}

/// The transitions from the Release's own status.
fn tr(rel: &Release, new: &ReleaseStatus, action: Option<&str>, now: &Time) -> Vec<Notification> {
    let old = Seen::of(&rel.status.clone().unwrap_or_default());
    transitions(rel, &old, new, action, now).0
}

fn reasons(ns: &[Notification]) -> Vec<&str> {
    ns.iter().map(|n| n.reason).collect()
}

#[test]
fn a_new_commit_then_ready_then_nothing_more() {
    let pending = status(None, Phase::Pending, ("False", "Progressing", ""));
    let committed = status(
        Some("abc123456789"),
        Phase::Committed,
        ("False", "WaitingForFlux", ""),
    );
    let ready = status(Some("abc123456789"), Phase::Ready, ("True", "Applied", ""));

    let rel = release(Some(pending), serde_json::json!({}));
    let sent = tr(&rel, &committed, Some("release"), &at(5));
    assert_eq!(reasons(&sent), ["Committed"]);
    let n = &sent[0];
    assert_eq!(n.severity, "info");
    assert_eq!(n.release, "team/api");
    assert_eq!(n.environment, "team/staging");
    assert_eq!(n.app, "api");
    assert_eq!(n.version, "1.2.3");
    assert_eq!(n.commit.as_deref(), Some("abc123456789"));
    assert_eq!(n.action.as_deref(), Some("release"));
    assert_eq!(n.timestamp, "1970-01-01T00:00:05Z");
    assert!(n.message.contains("abc12345"), "{}", n.message);

    let rel = release(Some(committed.clone()), serde_json::json!({}));
    assert_eq!(
        reasons(&tr(&rel, &committed, None, &at(6))),
        Vec::<&str>::new()
    );
    assert_eq!(reasons(&tr(&rel, &ready, None, &at(7))), ["Ready"]);
    let rel = release(Some(ready.clone()), serde_json::json!({}));
    assert!(
        tr(&rel, &ready, None, &at(8)).is_empty(),
        "a steady Ready says nothing"
    );
    // A new version that is Ready at once (the same reconcile) says both, commit first.
    let next = status(Some("def0000000"), Phase::Ready, ("True", "Applied", ""));
    assert_eq!(
        reasons(&tr(&rel, &next, Some("release"), &at(9))),
        ["Committed", "Ready"]
    );
}

#[test]
fn ready_and_failed_are_told_once_per_commit_unless_the_other_came_between() {
    let committed = status(
        Some("abc"),
        Phase::Committed,
        ("False", "WaitingForFlux", ""),
    );
    let ready = status(Some("abc"), Phase::Ready, ("True", "Applied", ""));
    let waiting = status(Some("abc"), Phase::Applied, ("False", "WaitingForFlux", ""));
    let stuck = status(
        Some("abc"),
        Phase::Failed,
        ("False", "RolloutStuck", "no nodes"),
    );
    // The reflector may still hold a status older than the last one decided: what was
    // told is kept by the notifier, and wins.
    let cached = release(Some(committed.clone()), serde_json::json!({}));
    let mut seen = Seen::of(&committed);
    let mut told = vec![];
    for st in [
        &ready, &ready, &waiting, &ready, &stuck, &stuck, &waiting, &ready,
    ] {
        let (sent, next) = transitions(&cached, &seen, st, None, &at(1));
        told.extend(reasons(&sent).into_iter().map(str::to_string));
        seen = next;
    }
    assert_eq!(told, ["Ready", "Failed", "Ready"]);
    // The next commit starts afresh.
    let next = status(Some("def"), Phase::Ready, ("True", "Applied", ""));
    let (sent, seen) = transitions(&cached, &seen, &next, Some("release"), &at(2));
    assert_eq!(reasons(&sent), ["Committed", "Ready"]);
    assert_eq!(seen.told, Some(Transition::Ready));
}

#[test]
fn failed_carries_the_reason_and_is_said_once() {
    let committed = status(
        Some("abc"),
        Phase::Committed,
        ("False", "WaitingForFlux", ""),
    );
    let failed = status(
        Some("abc"),
        Phase::Failed,
        ("False", "FluxFailed", "port 99999 is invalid"),
    );
    let rel = release(Some(committed), serde_json::json!({}));
    let sent = tr(&rel, &failed, None, &at(5));
    assert_eq!(reasons(&sent), ["Failed"]);
    assert_eq!(sent[0].severity, "error");
    let f = sent[0].failure.as_ref().unwrap();
    assert_eq!(
        (f.reason.as_str(), f.message.as_str()),
        ("FluxFailed", "port 99999 is invalid")
    );
    let rel = release(Some(failed.clone()), serde_json::json!({}));
    assert!(tr(&rel, &failed, None, &at(6)).is_empty());
}

#[test]
fn the_commit_action_names_the_transition() {
    let old = status(Some("old"), Phase::Ready, ("True", "Applied", ""));
    let new = status(
        Some("new"),
        Phase::Committed,
        ("False", "WaitingForFlux", ""),
    );
    let rel = release(Some(old.clone()), serde_json::json!({}));
    assert_eq!(
        reasons(&tr(&rel, &new, Some("promote"), &at(1))),
        ["Promoted"]
    );
    assert_eq!(
        reasons(&tr(&rel, &new, Some("rollback"), &at(1))),
        ["RolledBack"]
    );
    assert_eq!(
        reasons(&tr(&rel, &new, Some("release"), &at(1))),
        ["Committed"]
    );
    assert_eq!(Transition::of_action("promote"), Transition::Promoted);
    // Seen without the action (the write after the push had failed): `tumbler rollback`'s
    // annotation still says it was a rollback, and from which version.
    let rolled = release(
        Some(old.clone()),
        serde_json::json!({"tumbler.dev/rollback": "2.0.0 -> 1.2.3"}),
    );
    let sent = tr(&rolled, &new, None, &at(1));
    assert_eq!(reasons(&sent), ["RolledBack"]);
    assert_eq!(sent[0].rolled_back_from.as_deref(), Some("2.0.0"));
    assert_eq!(sent[0].action.as_deref(), Some("rollback"));
    // A promotion names its source, with or without the action at hand.
    let promoted = release(
        Some(old),
        serde_json::json!({"tumbler.dev/promoted-from": "team-a/api-staging@1.2.3"}),
    );
    for action in [Some("promote"), None] {
        let sent = tr(&promoted, &new, action, &at(1));
        assert_eq!(reasons(&sent), ["Promoted"]);
        assert_eq!(
            sent[0].promoted_from.as_deref(),
            Some("team-a/api-staging@1.2.3")
        );
    }
}

#[test]
fn the_json_has_the_documented_fields_and_slack_gets_text() {
    let rel = release(None, serde_json::json!({}));
    let new = status(
        Some("abc"),
        Phase::Committed,
        ("False", "WaitingForFlux", ""),
    );
    let n = tr(&rel, &new, Some("release"), &at(5)).remove(0);
    let v: serde_json::Value =
        serde_json::from_slice(&deliver::body(crate::api::ReceiverType::GenericHmac, &n)).unwrap();
    for field in [
        "reason",
        "severity",
        "timestamp",
        "message",
        "reportingController",
        "involvedObject",
        "release",
        "app",
        "environment",
        "version",
        "commit",
        "action",
    ] {
        assert!(v.get(field).is_some(), "{field} missing: {v}");
    }
    assert_eq!(v["involvedObject"]["kind"], "Release");
    assert_eq!(v["involvedObject"]["apiVersion"], "tumbler.dev/v1alpha1");
    let slack: serde_json::Value =
        serde_json::from_slice(&deliver::body(crate::api::ReceiverType::Slack, &n)).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("Committed") && text.contains("team/api"),
        "{text}"
    );
}

#[test]
fn the_signature_is_flux_generic_hmac() {
    // RFC 4231, test case 2.
    assert_eq!(
        deliver::signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn env_with(receivers: serde_json::Value) -> Environment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "staging", "namespace": "team", "generation": 3},
        "spec": {"repository": {"url": "https://git.example/x.git", "path": "envs/s"},
            "notifications": {"receivers": receivers}},
    }))
    .unwrap()
}

#[test]
fn the_condition_names_failing_receivers_and_goes_without_receivers() {
    let env = env_with(serde_json::json!([]));
    let mut st = crate::api::EnvironmentStatus::default();
    let health = vec![
        ("hook".to_string(), None),
        ("slack".to_string(), Some("connection refused".to_string())),
    ];
    delivered_condition(&mut st, &env, &health, &at(1));
    let c = find_condition(&st.conditions, NOTIFICATIONS_DELIVERED).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "DeliveryFailed")
    );
    assert_eq!(c.message, "receiver slack: connection refused");
    delivered_condition(&mut st, &env, &[("slack".to_string(), None)], &at(2));
    let c = find_condition(&st.conditions, NOTIFICATIONS_DELIVERED).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "Delivered")
    );
    delivered_condition(&mut st, &env, &[], &at(3));
    assert!(find_condition(&st.conditions, NOTIFICATIONS_DELIVERED).is_none());
}

/// A webhook on loopback answering `status` to each POST and handing over the bodies.
fn server(status: u16) -> (String, mpsc::Receiver<(Option<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut sig) = (0usize, None);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "x-signature" => sig = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = tx.send((sig, String::from_utf8_lossy(&body).into_owned()));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (addr, rx)
}

fn notifier(options: Options) -> (Arc<Notifier>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    (
        Arc::new(Notifier::new(None, metrics.clone(), None, options)),
        metrics,
    )
}

fn one(reason: &'static str, version: &str) -> Notification {
    let rel = release(None, serde_json::json!({}));
    let mut n = tr(
        &rel,
        &status(
            Some("abc"),
            Phase::Committed,
            ("False", "WaitingForFlux", ""),
        ),
        Some("release"),
        &at(1),
    )
    .remove(0);
    n.reason = reason;
    n.version = version.to_string();
    n
}

#[tokio::test]
async fn deliveries_arrive_in_order_and_health_follows_them() {
    let (addr, rx) = server(200);
    let (notifier, _) = notifier(Options::default());
    let env = env_with(serde_json::json!([{"name": "hook", "type": "generic", "address": addr}]));
    let batch: Vec<_> = (0..5).map(|i| one("Committed", &format!("{i}"))).collect();
    notifier.send(&env, &batch[..2]);
    notifier.send(&env, &batch[2..]);
    let got: Vec<String> = tokio::task::spawn_blocking(move || {
        (0..5)
            .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap().1)
            .collect()
    })
    .await
    .unwrap();
    let versions: Vec<String> = got
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["version"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(versions, ["0", "1", "2", "3", "4"]);
    // The last success is recorded once the answer is read.
    for _ in 0..300 {
        if notifier.health(&env, &["hook".to_string()]) == [("hook".to_string(), None)] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no health recorded");
}

#[tokio::test]
async fn a_refusing_receiver_is_retried_then_recorded_and_a_full_queue_drops_the_oldest() {
    let (addr, rx) = server(500);
    let (notifier, metrics) = notifier(Options {
        capacity: 2,
        attempts: 2,
        backoff: Duration::from_millis(10),
        ..Options::default()
    });
    let env = env_with(serde_json::json!([{"name": "hook", "type": "generic", "address": addr}]));
    // Four at once into a queue of two (one push under the queue's lock): the two oldest go.
    let batch: Vec<_> = (0..4).map(|i| one("Committed", &format!("{i}"))).collect();
    notifier.send(&env, &batch);
    let mut encoded = String::new();
    for _ in 0..500 {
        encoded.clear();
        prometheus_client::encoding::text::encode(&mut encoded, &metrics.registry).unwrap();
        if encoded.contains("tumbler_notifications_total{outcome=\"failed\"} 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        encoded.contains("tumbler_notifications_total{outcome=\"failed\"} 2"),
        "{encoded}"
    );
    assert!(
        encoded.contains("tumbler_notifications_total{outcome=\"retried\"} 2"),
        "{encoded}"
    );
    let dropped = encoded.contains("tumbler_notifications_total{outcome=\"dropped\"} 2");
    assert!(dropped, "{encoded}");
    let versions: Vec<String> = rx
        .try_iter()
        .map(|(_, b)| {
            serde_json::from_str::<serde_json::Value>(&b).unwrap()["version"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        versions,
        ["2", "2", "3", "3"],
        "two attempts each, in order, newest kept"
    );
    let health = notifier.health(&env, &["hook".to_string()]);
    assert_eq!(
        health[0].1.as_deref(),
        Some("the receiver answered HTTP 500")
    );
}

#[tokio::test]
async fn a_closed_port_fails_without_naming_the_address() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (notifier, _) = notifier(Options {
        attempts: 1,
        ..Options::default()
    });
    let address = format!("http://127.0.0.1:{port}/secret-token-path");
    let env = env_with(serde_json::json!([{"name": "dead", "type": "slack", "address": address}]));
    notifier.send(&env, &[one("Committed", "1")]);
    for _ in 0..500 {
        if let Some(failure) = notifier.health(&env, &["dead".to_string()])[0].1.clone() {
            assert!(
                !failure.contains("secret-token-path") && !failure.contains(&port.to_string()),
                "{failure}"
            );
            assert!(failure.to_lowercase().contains("connect"), "{failure}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no failure recorded");
}

#[tokio::test]
async fn a_fixed_address_applies_to_the_notification_being_retried() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (notifier, _) = notifier(Options {
        attempts: 1000,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(20),
        ..Options::default()
    });
    let dead = env_with(serde_json::json!([{"name": "hook", "type": "generic",
        "address": format!("http://127.0.0.1:{port}/")}]));
    notifier.send(&dead, &[one("Committed", "7")]);
    let names = ["hook".to_string()];
    for _ in 0..500 {
        if notifier.health(&dead, &names)[0].1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        notifier.health(&dead, &names)[0].1.is_some(),
        "the closed port shows"
    );
    let (addr, rx) = server(200);
    notifier.configure(&env_with(
        serde_json::json!([{"name": "hook", "type": "generic", "address": addr}]),
    ));
    let (_, body) = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the waiting notification reaches the fixed address");
    assert!(body.contains("\"version\":\"7\""), "{body}");
    for _ in 0..500 {
        if notifier.health(&dead, &names)[0].1.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the failure was not cleared by the success");
}
