//! The exposition: controller-runtime's families, the per-Release gauges, `process_*`, and
//! what a scrape of 10,000 Releases costs (printed, not asserted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::reflector::store;
use kube::runtime::watcher::Event;

use super::*;
use crate::controller::Error;
use crate::gitops::WriterOptions;

fn release(ns: &str, name: &str, ready: Option<(&str, &str)>) -> Release {
    let mut doc = serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"environment": "staging", "app": name, "version": "1.2.3",
            "template": {"image": {"repository": "ghcr.io/acme/api", "tag": "1.2.3"}}},
    });
    if let Some((status, reason)) = ready {
        doc["status"] = serde_json::json!({
            "phase": if status == "True" { "Committed" } else { "Failed" },
            "conditions": [{"type": "Ready", "status": status, "reason": reason,
                "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        });
    }
    serde_json::from_value(doc).unwrap()
}

fn metrics_with(releases: Vec<Release>) -> (Arc<Metrics>, tempfile::TempDir) {
    let (reader, mut writer) = store();
    for rel in releases {
        writer.apply_watcher_event(&Event::Apply(rel));
    }
    let dir = tempfile::tempdir().unwrap();
    // libgit2's network timeouts are process-wide and set by the first Writer: use the
    // gitops tests' (2 s), which time out against a hanging server in the same process.
    let opts = WriterOptions {
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
        ..WriterOptions::default()
    };
    let git = Writer::new(dir.path().to_path_buf(), opts);
    let metrics = Metrics::default()
        .with_state(reader, git)
        .with_concurrency(8);
    (Arc::new(metrics), dir)
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "{line:?} missing from\n{text}"
    );
}

#[test]
fn reconciles_are_counted_under_controller_runtime_names() {
    let (m, _dir) = metrics_with(vec![]);
    let text = m.render();
    // Every result and both controllers exist before the first reconcile.
    for c in ["release", "environment"] {
        for r in RESULTS {
            has(
                &text,
                &format!(
                    "controller_runtime_reconcile_total{{controller=\"{c}\",result=\"{r}\"}} 0"
                ),
            );
        }
        has(
            &text,
            &format!("controller_runtime_reconcile_errors_total{{controller=\"{c}\"}} 0"),
        );
        has(
            &text,
            &format!("controller_runtime_max_concurrent_reconciles{{controller=\"{c}\"}} 8"),
        );
    }

    let busy = m.reconcile(Controller::Release);
    has(
        &m.render(),
        "controller_runtime_active_workers{controller=\"release\"} 1",
    );
    busy.finish(&Ok(Action::await_change()));
    m.reconcile(Controller::Release)
        .finish(&Ok(Action::requeue(Duration::from_secs(60))));
    let failed = m.reconcile(Controller::Release);
    failed.fail("RepositoryUnreachable");
    failed.finish(&Ok(Action::requeue(Duration::from_secs(5))));
    m.reconcile(Controller::Environment)
        .finish(&Err(Error::Internal("x".into())));
    // Dropped without finishing (a reconcile cancelled at shutdown): not counted.
    drop(m.reconcile(Controller::Environment));

    let text = m.render();
    for line in [
        "controller_runtime_reconcile_total{controller=\"release\",result=\"success\"} 1",
        "controller_runtime_reconcile_total{controller=\"release\",result=\"requeue_after\"} 1",
        "controller_runtime_reconcile_total{controller=\"release\",result=\"error\"} 1",
        "controller_runtime_reconcile_total{controller=\"release\",result=\"requeue\"} 0",
        "controller_runtime_reconcile_total{controller=\"environment\",result=\"error\"} 1",
        "controller_runtime_reconcile_errors_total{controller=\"release\"} 1",
        "controller_runtime_reconcile_errors_total{controller=\"environment\"} 1",
        "controller_runtime_active_workers{controller=\"release\"} 0",
        "controller_runtime_active_workers{controller=\"environment\"} 0",
        "controller_runtime_reconcile_time_seconds_count{controller=\"release\"} 3",
        "controller_runtime_reconcile_time_seconds_bucket{le=\"+Inf\",controller=\"release\"} 3",
        "tumbler_reconcile_errors_total{kind=\"Release\",reason=\"RepositoryUnreachable\"} 1",
        "tumbler_reconcile_errors_total{kind=\"Environment\",reason=\"InternalError\"} 1",
        "tumbler_reconciles_total{kind=\"Release\"} 3",
        "tumbler_reconcile_duration_seconds_count{kind=\"Release\"} 3",
        "# TYPE controller_runtime_reconcile_time_seconds histogram",
        "# TYPE controller_runtime_reconcile counter",
    ] {
        has(&text, line);
    }
}

#[test]
fn each_release_has_a_ready_condition_gauge_and_an_info_series() {
    let (m, _dir) = metrics_with(vec![
        release("team", "ok", Some(("True", "Committed"))),
        release("team", "bad", Some(("False", "RepositoryUnreachable"))),
        release("other", "new", None),
        release("team", "quote\"d", Some(("False", "X"))),
    ]);
    let text = m.render();
    let cond = |ns: &str, name: &str, status: &str, v: u8| {
        format!(
            "tumbler_release_condition{{namespace=\"{ns}\",name=\"{name}\",environment=\"staging\",type=\"Ready\",status=\"{status}\"}} {v}"
        )
    };
    for line in [
        cond("team", "ok", "True", 1),
        cond("team", "ok", "False", 0),
        cond("team", "ok", "Unknown", 0),
        cond("team", "bad", "False", 1),
        cond("team", "bad", "True", 0),
        cond("other", "new", "Unknown", 1),
        cond("team", "quote\\\"d", "False", 1),
        "tumbler_release_info{namespace=\"team\",name=\"bad\",environment=\"staging\",environment_namespace=\"team\",app=\"bad\",version=\"1.2.3\",phase=\"Failed\",ready=\"False\",reason=\"RepositoryUnreachable\"} 1".into(),
        "tumbler_release_info{namespace=\"other\",name=\"new\",environment=\"staging\",environment_namespace=\"other\",app=\"new\",version=\"1.2.3\",phase=\"Pending\",ready=\"Unknown\",reason=\"\"} 1".into(),
        "tumbler_releases{phase=\"Failed\"} 2".into(),
        "tumbler_releases{phase=\"Pending\"} 1".into(),
        "tumbler_releases{phase=\"Ready\"} 0".into(),
        "tumbler_git_queue_depth 0".into(),
        "tumbler_git_operations_total{operation=\"push\"} 0".into(),
        "# TYPE tumbler_release_condition gauge".into(),
    ] {
        has(&text, &line);
    }
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
}

#[cfg(target_os = "linux")]
#[test]
fn process_metrics_are_exported() {
    let (m, _dir) = metrics_with(vec![]);
    let text = m.render();
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(family)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{family} missing from\n{text}"));
        let value: f64 = value.parse().unwrap();
        assert!(value >= 0.0, "{family} {value}");
    }
    has(&text, "# TYPE process_cpu_seconds counter");
    has(&text, "# TYPE process_resident_memory_bytes gauge");
}

/// What a scrape costs with 10,000 Releases in the store: printed (`--nocapture`), not
/// asserted, as machines differ.
#[test]
fn scrape_of_ten_thousand_releases() {
    let releases = (0..10_000)
        .map(|i| {
            let ready = match i % 3 {
                0 => Some(("True", "Committed")),
                1 => Some(("False", "RepositoryUnreachable")),
                _ => None,
            };
            release(&format!("team-{}", i % 50), &format!("app-{i}"), ready)
        })
        .collect();
    let (m, _dir) = metrics_with(releases);
    let _ = m.render();
    let runs = 5;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..runs {
        bytes = m.render().len();
    }
    let each = start.elapsed() / runs;
    println!(
        "scrape of 10,000 Releases: {:.1} ms, {:.1} MiB of text",
        each.as_secs_f64() * 1e3,
        bytes as f64 / 1048576.0
    );
    assert!(bytes > 0);
}
