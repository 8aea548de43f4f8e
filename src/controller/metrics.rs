//! Prometheus metrics, served as text on `/metrics`, named so that existing dashboards work:
//!
//! - reconciles under controller-runtime's names and labels
//!   (`controller_runtime_reconcile_total{controller,result}`, `..._errors_total`,
//!   `..._time_seconds`, `..._active_workers`, `..._max_concurrent_reconciles`); no
//!   `workqueue_*`: kube-runtime has no client-go work queue to measure;
//! - one Ready condition gauge per Release in Flux's `gotk_reconcile_condition` shape, and a
//!   `tumbler_release_info` series per Release, both computed from the reflector store at
//!   scrape time (no per-object state kept anywhere else);
//! - the git writer's operations and queue; `process_*` from `/proc/self`;
//! - `tumbler_reconciles_total` and `tumbler_reconcile_duration_seconds`, deprecated (the
//!   controller-runtime names replace them; they go in the next release).

mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kube::runtime::controller::Action;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::{Phase, READY, Release, find_condition};
use crate::gitops::Writer;
use kube::runtime::reflector::Store;

pub use process::ProcessCollector;

/// The two controllers of a process.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Controller {
    Release,
    Environment,
}

impl Controller {
    pub const ALL: [Controller; 2] = [Controller::Release, Controller::Environment];

    /// The `controller` label, as controller-runtime names controllers (the kind, lower case).
    pub fn name(self) -> &'static str {
        match self {
            Controller::Release => "release",
            Controller::Environment => "environment",
        }
    }

    /// The `kind` label of the `tumbler_*` reconcile metrics.
    pub fn kind(self) -> &'static str {
        match self {
            Controller::Release => "Release",
            Controller::Environment => "Environment",
        }
    }
}

/// What a reconcile ended with, as controller-runtime's `result` label says it.
/// `requeue` (again at once, without a delay) is exported at 0 for compatibility: a
/// kube-runtime reconcile always names a delay, or none.
pub const RESULTS: [&str; 4] = ["success", "error", "requeue", "requeue_after"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub controller: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

type Histograms<L> = Family<L, Histogram>;

/// The metrics a controller process exports.
pub struct Metrics {
    pub registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_time: Histograms<ControllerLabels>,
    active_workers: Family<ControllerLabels, Gauge>,
    max_concurrent: Family<ControllerLabels, Gauge>,
    errors_by_reason: Family<ErrorLabels, Counter>,
    legacy_reconciles: Family<KindLabels, Counter>,
    legacy_duration: Histograms<KindLabels>,
    pub events_dropped: Counter,
    notifications: Family<OutcomeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Reconcile durations: 5 ms to 41 s, doubling.
fn reconcile_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        let reconcile_time =
            Histograms::<ControllerLabels>::new_with_constructor(reconcile_buckets);
        let active_workers = Family::<ControllerLabels, Gauge>::default();
        let max_concurrent = Family::<ControllerLabels, Gauge>::default();
        {
            let cr = registry.sub_registry_with_prefix("controller_runtime");
            cr.register(
                "reconcile",
                "Total number of reconciliations per controller",
                reconcile_total.clone(),
            );
            cr.register(
                "reconcile_errors",
                "Total number of reconciliation errors per controller",
                reconcile_errors.clone(),
            );
            cr.register(
                "reconcile_time_seconds",
                "Length of time per reconciliation per controller",
                reconcile_time.clone(),
            );
            cr.register(
                "active_workers",
                "Number of currently used workers per controller",
                active_workers.clone(),
            );
            cr.register(
                "max_concurrent_reconciles",
                "Maximum number of concurrent reconciles per controller",
                max_concurrent.clone(),
            );
        }
        registry.register_collector(Box::new(ProcessCollector));

        let errors_by_reason = Family::<ErrorLabels, Counter>::default();
        let legacy_reconciles = Family::<KindLabels, Counter>::default();
        let legacy_duration = Histograms::<KindLabels>::new_with_constructor(reconcile_buckets);
        let events_dropped = Counter::default();
        let notifications = Family::<OutcomeLabels, Counter>::default();
        {
            let t = registry.sub_registry_with_prefix("tumbler");
            t.register(
                "reconcile_errors",
                "Reconciles that ended in an error, by kind and reason",
                errors_by_reason.clone(),
            );
            t.register(
                "reconciles",
                "Deprecated, use controller_runtime_reconcile_total: reconciles run, by kind",
                legacy_reconciles.clone(),
            );
            t.register(
                "reconcile_duration_seconds",
                "Deprecated, use controller_runtime_reconcile_time_seconds: time a reconcile took, by kind",
                legacy_duration.clone(),
            );
            t.register(
                "events_dropped",
                "Normal Events not published because the Event budget was spent (Warnings are never dropped)",
                events_dropped.clone(),
            );
            t.register(
                "notifications",
                "Notifications of Release transitions, by outcome: delivered, retried (an attempt failed, another follows), failed (every attempt failed), dropped (the receiver's queue was full)",
                notifications.clone(),
            );
        }
        let metrics = Metrics {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            active_workers,
            max_concurrent,
            errors_by_reason,
            legacy_reconciles,
            legacy_duration,
            events_dropped,
            notifications,
        };
        for outcome in super::notify::deliver::OUTCOMES {
            let _ = metrics
                .notifications
                .get_or_create(&OutcomeLabels { outcome });
        }
        // Every series exists from the start, at 0, as controller-runtime does: a rate over
        // a counter that appears with its first increment misses that increment.
        for c in Controller::ALL {
            let controller = c.name();
            for result in RESULTS {
                let _ = metrics
                    .reconcile_total
                    .get_or_create(&ResultLabels { controller, result });
            }
            let _ = metrics
                .reconcile_errors
                .get_or_create(&ControllerLabels { controller });
            let _ = metrics
                .active_workers
                .get_or_create(&ControllerLabels { controller });
            let _ = metrics
                .legacy_reconciles
                .get_or_create(&KindLabels { kind: c.kind() });
        }
        metrics
    }
}

impl Metrics {
    /// Counts a notification's outcome (`tumbler_notifications_total{outcome}`).
    pub fn notification(&self, outcome: &'static str) {
        self.notifications
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Adds the collectors that read live state at scrape time.
    pub fn with_state(mut self, releases: Store<Release>, writer: Writer) -> Self {
        self.registry
            .sub_registry_with_prefix("tumbler")
            .register_collector(Box::new(StateCollector { releases, writer }));
        self
    }

    /// Records the concurrency each controller runs with.
    pub fn with_concurrency(self, concurrency: u16) -> Self {
        for c in Controller::ALL {
            self.max_concurrent
                .get_or_create(&ControllerLabels {
                    controller: c.name(),
                })
                .set(i64::from(concurrency));
        }
        self
    }

    /// Starts timing one reconcile: one more active worker until the timer is dropped;
    /// [`ReconcileTimer::finish`] counts it.
    pub fn reconcile(self: &Arc<Self>, controller: Controller) -> ReconcileTimer {
        self.active_workers
            .get_or_create(&ControllerLabels {
                controller: controller.name(),
            })
            .inc();
        ReconcileTimer {
            metrics: self.clone(),
            controller,
            start: Instant::now(),
            failed: AtomicBool::new(false),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One reconcile in flight.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    controller: Controller,
    start: Instant,
    failed: AtomicBool,
}

impl ReconcileTimer {
    /// The reconcile failed with `reason` although it returned `Ok` (it wrote the failure
    /// into the status and retries with backoff): it counts as an error.
    pub fn fail(&self, reason: &'static str) {
        self.failed.store(true, Ordering::Relaxed);
        self.count_reason(reason);
    }

    fn count_reason(&self, reason: &'static str) {
        self.metrics
            .errors_by_reason
            .get_or_create(&ErrorLabels {
                kind: self.controller.kind(),
                reason,
            })
            .inc();
    }

    /// Counts the reconcile: `error` when it returned an error or [`Self::fail`] was called,
    /// `requeue_after` when it asked to run again after a delay, `success` otherwise.
    pub fn finish(self, result: &Result<Action, super::Error>) {
        let outcome = match result {
            Err(e) => {
                self.count_reason(e.reason().as_str());
                "error"
            }
            Ok(_) if self.failed.load(Ordering::Relaxed) => "error",
            Ok(action) if *action == Action::await_change() => "success",
            Ok(_) => "requeue_after",
        };
        let m = &self.metrics;
        let controller = self.controller.name();
        let elapsed = self.start.elapsed().as_secs_f64();
        m.reconcile_total
            .get_or_create(&ResultLabels {
                controller,
                result: outcome,
            })
            .inc();
        if outcome == "error" {
            m.reconcile_errors
                .get_or_create(&ControllerLabels { controller })
                .inc();
        }
        m.reconcile_time
            .get_or_create(&ControllerLabels { controller })
            .observe(elapsed);
        let kind = KindLabels {
            kind: self.controller.kind(),
        };
        m.legacy_reconciles.get_or_create(&kind).inc();
        m.legacy_duration.get_or_create(&kind).observe(elapsed);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics
            .active_workers
            .get_or_create(&ControllerLabels {
                controller: self.controller.name(),
            })
            .dec();
    }
}

#[derive(Debug)]
struct StateCollector {
    releases: Store<Release>,
    writer: Writer,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    operation: &'static str,
}

/// The statuses a condition gauge has a series for, 1 on the current one.
const STATUSES: [&str; 3] = ["True", "False", "Unknown"];

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let releases = self.releases.state();
        encode_releases(&releases, &mut encoder)?;

        let stats = self.writer.stats();
        let mut ops = encoder.encode_descriptor(
            "git_operations",
            "Git operations by the writer",
            None,
            MetricType::Counter,
        )?;
        for (operation, n) in stats.counters() {
            ConstCounter::new(n).encode(ops.encode_family(&OpLabels { operation })?)?;
        }
        let queue = encoder.encode_descriptor(
            "git_queue_depth",
            "Changes waiting for the git writer, all repositories",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(stats.queue_depth() as i64).encode(queue)?;
        Ok(())
    }
}

/// `releases{phase}`, `release_condition{namespace,name,environment,type,status}` and
/// `release_info{...}` for the Releases in the store.
fn encode_releases(
    releases: &[Arc<Release>],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let mut by_phase = std::collections::BTreeMap::new();
    for phase in [
        Phase::Pending,
        Phase::Committed,
        Phase::Applied,
        Phase::Ready,
        Phase::Failed,
    ] {
        by_phase.insert(phase.to_string(), 0i64);
    }
    for rel in releases {
        let phase = rel.status.as_ref().map(|s| s.phase).unwrap_or_default();
        *by_phase.entry(phase.to_string()).or_default() += 1;
    }
    let mut family =
        encoder.encode_descriptor("releases", "Releases by phase", None, MetricType::Gauge)?;
    for (phase, n) in by_phase {
        ConstGauge::new(n).encode(family.encode_family(&PhaseLabels { phase })?)?;
    }

    let mut family = encoder.encode_descriptor(
        "release_condition",
        "The Ready condition of each Release: 1 on the series of its current status (True, False or Unknown), 0 on the others",
        None,
        MetricType::Gauge,
    )?;
    for rel in releases {
        let ready = ready_of(rel);
        for status in STATUSES {
            let labels = [
                ("namespace", namespace_of(rel)),
                ("name", name_of(rel)),
                ("environment", rel.spec.environment.as_str()),
                ("type", READY),
                ("status", status),
            ];
            ConstGauge::new(i64::from(ready.0 == status)).encode(family.encode_family(&labels)?)?;
        }
    }

    let mut family = encoder.encode_descriptor(
        "release_info",
        "One series per Release, 1, labelled with what it is and where it is",
        None,
        MetricType::Gauge,
    )?;
    for rel in releases {
        let (ready, reason) = ready_of(rel);
        let phase = rel.status.as_ref().map(|s| s.phase).unwrap_or_default();
        let labels = [
            ("namespace", namespace_of(rel)),
            ("name", name_of(rel)),
            ("environment", rel.spec.environment.as_str()),
            (
                "environment_namespace",
                rel.spec
                    .environment_namespace
                    .as_deref()
                    .unwrap_or(namespace_of(rel)),
            ),
            ("app", rel.spec.app.as_str()),
            ("version", rel.spec.version.as_str()),
            ("phase", phase.as_str()),
            ("ready", ready),
            ("reason", reason),
        ];
        ConstGauge::new(1).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn namespace_of(rel: &Release) -> &str {
    rel.metadata.namespace.as_deref().unwrap_or_default()
}

fn name_of(rel: &Release) -> &str {
    rel.metadata.name.as_deref().unwrap_or_default()
}

/// The Ready condition's status and reason (`Unknown` and no reason before the first status).
fn ready_of(rel: &Release) -> (&str, &str) {
    rel.status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, READY))
        .map(|c| (c.status.as_str(), c.reason.as_str()))
        .unwrap_or(("Unknown", ""))
}

#[cfg(test)]
mod tests;
