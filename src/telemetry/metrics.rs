//! Metrics snapshots: what the exporter turns into OTLP metrics, built from a pipeline's
//! [`PipelineStats`] plus any counters the host adds. Built off the hot path (a snapshot
//! allocates its vectors and names).

use crate::engine::{LatencySummary, PipelineStats};

/// One stage's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StageMetrics {
    /// Stage name (attribute `stage`).
    pub name: String,
    /// Events consumed (cumulative).
    pub events_in: u64,
    /// Events emitted (cumulative).
    pub events_out: u64,
    /// Events over budget (cumulative).
    pub over_budget: u64,
    /// Service-time percentiles, ns.
    pub latency: LatencySummary,
}

/// One ring's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingMetrics {
    /// Ring name (attribute `ring`).
    pub name: String,
    /// Slots.
    pub capacity: u64,
    /// Events in the ring at snapshot time.
    pub occupancy: u64,
    /// Most events ever waiting.
    pub high_water: u64,
    /// Events pushed (cumulative).
    pub pushed: u64,
    /// Events dropped, newest or oldest (cumulative).
    pub dropped: u64,
}

/// A point-in-time set of figures to export.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsSnapshot {
    /// Per-stage figures.
    pub stages: Vec<StageMetrics>,
    /// Per-ring figures.
    pub rings: Vec<RingMetrics>,
    /// Extra cumulative counters from the host (feedback signals, connections, …),
    /// exported as monotonic sums named as given.
    pub counters: Vec<(String, u64)>,
    /// Extra gauges from the host, exported as given.
    pub gauges: Vec<(String, f64)>,
}

impl MetricsSnapshot {
    /// The figures of one pipeline snapshot.
    pub fn from_stats(stats: &PipelineStats) -> MetricsSnapshot {
        MetricsSnapshot {
            stages: stats
                .stages
                .iter()
                .map(|s| StageMetrics {
                    name: s.name.clone(),
                    events_in: s.events_in,
                    events_out: s.events_out,
                    over_budget: s.over_budget,
                    latency: s.latency,
                })
                .collect(),
            rings: stats
                .rings
                .iter()
                .map(|r| RingMetrics {
                    name: r.name.clone(),
                    capacity: r.capacity as u64,
                    occupancy: r.occupancy,
                    high_water: r.high_water,
                    pushed: r.pushed,
                    dropped: r.dropped_newest + r.dropped_oldest,
                })
                .collect(),
            counters: Vec::new(),
            gauges: Vec::new(),
        }
    }

    /// Adds a cumulative counter.
    pub fn with_counter(mut self, name: &str, value: u64) -> Self {
        self.counters.push((name.to_string(), value));
        self
    }

    /// Adds a gauge.
    pub fn with_gauge(mut self, name: &str, value: f64) -> Self {
        self.gauges.push((name.to_string(), value));
        self
    }
}
