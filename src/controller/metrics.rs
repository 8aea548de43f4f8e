//! Prometheus metrics: reconciles per kind (count, duration, errors by reason), Releases by
//! phase, and the git writer's operations. Served as text on `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::{Phase, Release};
use crate::gitops::Writer;
use kube::runtime::reflector::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// The metrics a controller process exports.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<KindLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub events_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tumbler");
        let reconciles = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error, by kind and reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconcile took, by kind",
            reconcile_duration.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "events_dropped",
            "Normal Events not published because the Event budget was spent (Warnings are never dropped)",
            events_dropped.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            events_dropped,
        }
    }
}

impl Metrics {
    /// Adds the collectors that read live state at scrape time.
    pub fn with_state(mut self, releases: Store<Release>, writer: Writer) -> Self {
        self.registry
            .register_collector(Box::new(StateCollector { releases, writer }));
        self
    }

    /// Starts timing one reconcile; the guard counts it when dropped.
    pub fn reconcile(self: &Arc<Self>, kind: &'static str) -> ReconcileTimer {
        ReconcileTimer {
            metrics: self.clone(),
            kind,
            start: Instant::now(),
        }
    }

    pub fn error(&self, kind: &'static str, reason: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { kind, reason })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    kind: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let labels = KindLabels { kind: self.kind };
        self.metrics.reconciles.get_or_create(&labels).inc();
        self.metrics
            .reconcile_duration
            .get_or_create(&labels)
            .observe(self.start.elapsed().as_secs_f64());
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

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
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
        for rel in self.releases.state() {
            let phase = rel.status.as_ref().map(|s| s.phase).unwrap_or_default();
            *by_phase.entry(phase.to_string()).or_default() += 1;
        }
        let mut family = encoder.encode_descriptor(
            "releases",
            "Releases by phase",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (phase, n) in by_phase {
            ConstGauge::new(n).encode(family.encode_family(&PhaseLabels { phase })?)?;
        }

        let stats = self.writer.stats();
        let mut ops = encoder.encode_descriptor(
            "git_operations",
            "Git operations by the writer",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (operation, n) in stats.counters() {
            ConstCounter::new(n).encode(ops.encode_family(&OpLabels { operation })?)?;
        }
        let queue = encoder.encode_descriptor(
            "git_queue_depth",
            "Changes waiting for the git writer, all repositories",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(stats.queue_depth() as i64).encode(queue)?;
        Ok(())
    }
}
