//! The exporter side thread and the [`Telemetry`] handle the host keeps.
//!
//! The thread wakes every few milliseconds, moves trace records out of the rings into a
//! bounded pending queue, and exports them in batches (`/v1/traces`) when a batch is full
//! or the export interval has passed; every metrics interval it exports the latest metrics
//! snapshot plus its own counters (`/v1/metrics`). A failed request is retried after a
//! capped exponential backoff; while the collector is down, pending traces beyond
//! `max_pending` are dropped oldest first and counted. Everything that allocates
//! (request encoding, HTTP, the pending queue) happens on this thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::config::{Endpoint, TelemetryConfig};
use super::counters::{Counters, TelemetryStats};
use super::http::{post, ExportError};
use super::metrics::MetricsSnapshot;
use super::proto::{encode_metrics, encode_traces, unix_now_ns, TimeBase};
use super::trace::{TraceRecord, TraceRecorder, TraceSink};

/// How often the exporter thread looks at the rings.
const POLL: Duration = Duration::from_millis(5);

/// A metrics source the exporter calls every metrics interval (e.g. a closure that takes
/// `MetricsSnapshot::from_stats(&pipeline.stats())`). Runs on the exporter thread.
pub type MetricsSource = Box<dyn FnMut() -> Option<MetricsSnapshot> + Send>;

/// Why telemetry could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The exporter thread could not be spawned.
    #[error("cannot spawn the telemetry exporter thread: {0}")]
    Spawn(#[from] std::io::Error),
}

struct Shared {
    new_rings: Mutex<Vec<rtrb::Consumer<TraceRecord>>>,
    metrics: Mutex<rtrb::Producer<MetricsSnapshot>>,
    stop: AtomicBool,
}

/// The running telemetry pipeline (or a disabled one). Dropping it stops the exporter
/// after one last flush attempt.
pub struct Telemetry {
    config: TelemetryConfig,
    counters: Arc<Counters>,
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl Telemetry {
    /// Starts the exporter thread if `config` has an endpoint; otherwise returns a
    /// disabled handle whose recorders drop nothing and export nothing.
    pub fn start(config: TelemetryConfig) -> Result<Telemetry, StartError> {
        Self::start_with_metrics(config, None)
    }

    /// Like [`Telemetry::start`], with a metrics source polled every metrics interval.
    pub fn start_with_metrics(
        config: TelemetryConfig,
        source: Option<MetricsSource>,
    ) -> Result<Telemetry, StartError> {
        let counters = Arc::new(Counters::default());
        let Some(endpoint) = config.endpoint.clone() else {
            return Ok(Telemetry {
                config,
                counters,
                shared: None,
                thread: None,
            });
        };
        let (mtx, mrx) = rtrb::RingBuffer::new(config.metrics_queue.max(1));
        let shared = Arc::new(Shared {
            new_rings: Mutex::new(Vec::new()),
            metrics: Mutex::new(mtx),
            stop: AtomicBool::new(false),
        });
        let exporter = Exporter {
            config: config.clone(),
            endpoint,
            counters: counters.clone(),
            shared: shared.clone(),
            metrics_rx: mrx,
            source,
        };
        let thread = std::thread::Builder::new()
            .name("ebbflow-otlp".into())
            .spawn(move || exporter.run())?;
        Ok(Telemetry {
            config,
            counters,
            shared: Some(shared),
            thread: Some(thread),
        })
    }

    /// A handle that exports nothing.
    pub fn disabled() -> Telemetry {
        Telemetry {
            config: TelemetryConfig::default(),
            counters: Arc::new(Counters::default()),
            shared: None,
            thread: None,
        }
    }

    /// Whether an exporter thread runs.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// The configuration in use.
    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    /// A new trace ring to the exporter (allocates the ring once, here). One per
    /// producing thread.
    pub fn sink(&self) -> TraceSink {
        match &self.shared {
            Some(shared) => {
                let (tx, rx) = rtrb::RingBuffer::new(self.config.trace_queue.max(1));
                // A poisoned lock only means another thread panicked while pushing.
                let mut rings = shared.new_rings.lock().unwrap_or_else(|e| e.into_inner());
                rings.push(rx);
                TraceSink::new(Some(tx), self.counters.clone())
            }
            None => TraceSink::new(None, self.counters.clone()),
        }
    }

    /// A recorder over `stage_names` with its own ring and the configured sampler. Stage
    /// names must be `'static` (a host with runtime names leaks them once at setup).
    /// With telemetry off nothing is sampled (budget breakers finish as `Dropped`).
    pub fn recorder(&self, stage_names: &'static [&'static str]) -> TraceRecorder {
        let one_in = if self.is_enabled() {
            self.config.sampler.one_in()
        } else {
            0
        };
        TraceRecorder::new(self.sink(), stage_names, one_in)
    }

    /// Queues a metrics snapshot for the next metrics export. Never blocks: returns false
    /// (and counts a drop) when the queue is full or another thread is submitting.
    pub fn submit_metrics(&self, snapshot: MetricsSnapshot) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let pushed = match shared.metrics.try_lock() {
            Ok(mut tx) => tx.push(snapshot).is_ok(),
            Err(_) => false,
        };
        if !pushed {
            self.counters
                .metrics_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        pushed
    }

    /// The telemetry pipeline's own counters.
    pub fn stats(&self) -> TelemetryStats {
        self.counters.snapshot()
    }

    /// Stops the exporter after one last flush attempt (bounded by the request timeout per
    /// request) and returns the final counters.
    pub fn shutdown(mut self) -> TelemetryStats {
        self.stop();
        self.counters.snapshot()
    }

    fn stop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Release);
        }
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Capped exponential backoff.
struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    retry_at: Option<Instant>,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            current: Duration::ZERO,
            retry_at: None,
        }
    }

    fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) {
        self.current = if self.current.is_zero() {
            self.initial
        } else {
            (self.current * 2).min(self.max)
        };
        self.retry_at = Some(now + self.current);
    }

    fn succeeded(&mut self) {
        self.current = Duration::ZERO;
        self.retry_at = None;
    }
}

struct Exporter {
    config: TelemetryConfig,
    endpoint: Endpoint,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    metrics_rx: rtrb::Consumer<MetricsSnapshot>,
    source: Option<MetricsSource>,
}

impl Exporter {
    fn run(mut self) {
        let time = TimeBase::now();
        let traces_path = self.endpoint.path("traces");
        let metrics_path = self.endpoint.path("metrics");
        let mut rings: Vec<rtrb::Consumer<TraceRecord>> = Vec::new();
        let mut pending: VecDeque<TraceRecord> = VecDeque::new();
        let mut latest: Option<MetricsSnapshot> = None;
        let mut trace_backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut metrics_backoff =
            Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut last_trace_export = Instant::now();
        let mut next_metrics = Instant::now() + self.config.metrics_interval;
        loop {
            let stopping = self.shared.stop.load(Ordering::Acquire);
            self.drain(&mut rings, &mut pending);
            while let Ok(s) = self.metrics_rx.pop() {
                latest = Some(s);
            }
            let now = Instant::now();

            // Traces: a full batch, or the interval passed, or a final flush.
            let due = pending.len() >= self.config.batch_size
                || now.duration_since(last_trace_export) >= self.config.export_interval
                || stopping;
            if !pending.is_empty() && due && (trace_backoff.ready(now) || stopping) {
                loop {
                    let n = pending.len().min(self.config.batch_size);
                    let (body, spans) = encode_traces(
                        &self.config.service_name,
                        &pending.make_contiguous()[..n],
                        &time,
                    );
                    match post(
                        &self.endpoint,
                        &traces_path,
                        &body,
                        self.config.request_timeout,
                    ) {
                        Ok(()) => {
                            pending.drain(..n);
                            self.counters
                                .traces_exported
                                .fetch_add(n as u64, Ordering::Relaxed);
                            self.counters
                                .spans_exported
                                .fetch_add(spans, Ordering::Relaxed);
                            trace_backoff.succeeded();
                            last_trace_export = Instant::now();
                        }
                        Err(e) => self.failed(e, n, &mut pending, &mut trace_backoff),
                    }
                    // On a final flush keep going while the collector accepts.
                    if !stopping || pending.is_empty() || trace_backoff.retry_at.is_some() {
                        break;
                    }
                }
            }

            // Metrics: every interval, and once more on the final flush.
            if (now >= next_metrics && metrics_backoff.ready(now)) || stopping {
                if let Some(src) = self.source.as_mut() {
                    if let Some(s) = src() {
                        latest = Some(s);
                    }
                }
                let body = encode_metrics(
                    &self.config.service_name,
                    latest.as_ref(),
                    &self.counters.snapshot(),
                    time.anchor_unix_ns(),
                    unix_now_ns(),
                );
                match post(
                    &self.endpoint,
                    &metrics_path,
                    &body,
                    self.config.request_timeout,
                ) {
                    Ok(()) => {
                        self.counters
                            .metrics_exports
                            .fetch_add(1, Ordering::Relaxed);
                        metrics_backoff.succeeded();
                        next_metrics = Instant::now() + self.config.metrics_interval;
                    }
                    Err(e) => {
                        self.counters
                            .export_failures
                            .fetch_add(1, Ordering::Relaxed);
                        if e.is_retryable() {
                            metrics_backoff.failed(Instant::now());
                        } else {
                            next_metrics = Instant::now() + self.config.metrics_interval;
                        }
                    }
                }
            }
            if stopping {
                return;
            }
            std::thread::park_timeout(POLL);
        }
    }

    /// Adopts new rings, moves their records into `pending` (bounded: the oldest go
    /// first, counted), and forgets rings whose sink is gone and that are empty.
    fn drain(
        &self,
        rings: &mut Vec<rtrb::Consumer<TraceRecord>>,
        pending: &mut VecDeque<TraceRecord>,
    ) {
        if let Ok(mut new) = self.shared.new_rings.try_lock() {
            rings.append(&mut new);
        }
        for ring in rings.iter_mut() {
            while let Ok(r) = ring.pop() {
                if pending.len() >= self.config.max_pending {
                    pending.pop_front();
                    self.counters
                        .dropped_pending
                        .fetch_add(1, Ordering::Relaxed);
                }
                pending.push_back(r);
            }
        }
        rings.retain(|r| !(r.is_abandoned() && r.is_empty()));
    }

    fn failed(
        &self,
        e: ExportError,
        n: usize,
        pending: &mut VecDeque<TraceRecord>,
        backoff: &mut Backoff,
    ) {
        self.counters
            .export_failures
            .fetch_add(1, Ordering::Relaxed);
        if e.is_retryable() {
            backoff.failed(Instant::now());
        } else {
            pending.drain(..n);
            self.counters
                .dropped_rejected
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::trace::{Finished, TraceAttrs};
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(35));
        let t = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..4 {
            b.failed(t);
            seen.push(b.current.as_millis());
        }
        assert_eq!(seen, [10, 20, 35, 35]);
        assert!(!b.ready(t));
        assert!(b.ready(t + Duration::from_millis(35)));
        b.succeeded();
        assert!(b.ready(t));
        b.failed(t);
        assert_eq!(b.current.as_millis(), 10);
    }

    #[test]
    fn batches_the_collector_refuses_for_good_are_dropped_and_counted() {
        use std::io::{Read, Write};
        static NAMES: &[&str] = &["a"];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        // Answers 400 to every request until told to stop (bounded by 20 s).
        let server = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let mut buf = [0u8; 65536];
                        let _ = s.read(&mut buf);
                        let _ =
                            s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .sampler(crate::telemetry::Sampler::All)
            .intervals(Duration::from_millis(5), Duration::from_secs(60));
        let t = Telemetry::start(cfg).unwrap();
        let mut rec = t.recorder(NAMES);
        for _ in 0..3 {
            rec.begin(TraceAttrs::default());
            assert_eq!(rec.finish(), Finished::Submitted);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.stats().traces_dropped_rejected < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = t.stats();
        assert_eq!(stats.traces_dropped_rejected, 3);
        assert_eq!(stats.traces_exported, 0);
        assert!(stats.export_failures >= 1);
        done.store(true, Ordering::Relaxed);
        drop(t);
        server.join().unwrap();
    }

    #[test]
    fn disabled_telemetry_accepts_and_exports_nothing() {
        static NAMES: &[&str] = &["a"];
        let t = Telemetry::start(TelemetryConfig::default()).unwrap();
        assert!(!t.is_enabled());
        let mut rec = t.recorder(NAMES);
        assert!(!rec.sink().is_enabled());
        rec.begin(TraceAttrs::default());
        assert_eq!(rec.finish(), Finished::NotSampled);
        rec.begin(TraceAttrs::default());
        rec.mark_budget_exceeded();
        assert_eq!(rec.finish(), Finished::Dropped);
        assert!(!t.submit_metrics(MetricsSnapshot::default()));
        assert_eq!(t.shutdown(), TelemetryStats::default());
    }
}
