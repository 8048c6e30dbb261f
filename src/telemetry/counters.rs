//! The exporter's own counters, shared by the hot-path sinks and the exporter thread, and
//! exported as metrics (`ebbflow.telemetry.*`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Shared counters. Hot-path sinks only touch `submitted` and `dropped_queue`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) dropped_queue: AtomicU64,
    pub(crate) dropped_pending: AtomicU64,
    pub(crate) dropped_rejected: AtomicU64,
    pub(crate) metrics_dropped: AtomicU64,
    pub(crate) spans_exported: AtomicU64,
    pub(crate) traces_exported: AtomicU64,
    pub(crate) metrics_exports: AtomicU64,
    pub(crate) export_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TelemetryStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TelemetryStats {
            traces_submitted: g(&self.submitted),
            traces_dropped_queue: g(&self.dropped_queue),
            traces_dropped_pending: g(&self.dropped_pending),
            traces_dropped_rejected: g(&self.dropped_rejected),
            metrics_dropped: g(&self.metrics_dropped),
            traces_exported: g(&self.traces_exported),
            spans_exported: g(&self.spans_exported),
            metrics_exports: g(&self.metrics_exports),
            export_failures: g(&self.export_failures),
        }
    }
}

/// A snapshot of the telemetry pipeline's own counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TelemetryStats {
    /// Trace records accepted by a ring.
    pub traces_submitted: u64,
    /// Trace records refused because a ring was full (hot path).
    pub traces_dropped_queue: u64,
    /// Trace records the exporter discarded because too many were waiting while the
    /// collector was down (oldest first).
    pub traces_dropped_pending: u64,
    /// Trace records in batches the collector refused with a non-retryable status.
    pub traces_dropped_rejected: u64,
    /// Metrics snapshots refused because the queue was full.
    pub metrics_dropped: u64,
    /// Trace records the collector accepted.
    pub traces_exported: u64,
    /// Spans (roots and children) the collector accepted.
    pub spans_exported: u64,
    /// Metrics requests the collector accepted.
    pub metrics_exports: u64,
    /// Export requests that failed (connection refused, timeout, 5xx/429): each is retried
    /// after a backoff.
    pub export_failures: u64,
}

impl TelemetryStats {
    /// Every trace record lost, for any reason.
    pub fn traces_dropped(&self) -> u64 {
        self.traces_dropped_queue + self.traces_dropped_pending + self.traces_dropped_rejected
    }
}
