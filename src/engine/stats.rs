//! Per-stage, per-thread latency histograms and counters, and the snapshots built from them.
//!
//! The thread that runs a stage owns its histogram and records into it with no lock and no
//! atomic read-modify-write. Counters are single-writer atomics stored once per batch. A
//! snapshot asks every thread (through an epoch counter) to fold its histogram into a
//! shared one; the hot thread does that with `try_lock`, never waiting, and retries on its
//! next batch if the reader holds the lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::clock::Clock;
use super::Timing;

/// Largest latency a histogram records exactly (60 s); longer samples saturate.
const HIST_MAX_NS: u64 = 60_000_000_000;
/// Significant figures: 3 gives 0.1% resolution at every magnitude.
const HIST_SIGFIG: u8 = 3;

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, HIST_SIGFIG)
        .expect("static histogram bounds are valid")
}

/// A counter with exactly one writing thread: a plain load and store, no `lock` prefix.
#[derive(Default, Debug)]
pub(crate) struct OwnedCounter(AtomicU64);

impl OwnedCounter {
    #[inline(always)]
    pub(crate) fn add(&self, n: u64) {
        // Only the owning thread writes, so load + store cannot lose an update.
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v + n, Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn raise_to(&self, n: u64) {
        if n > self.0.load(Ordering::Relaxed) {
            self.0.store(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The part of a stage's statistics other threads can read.
pub(crate) struct StageShared {
    pub(crate) name: String,
    pub(crate) budget: Duration,
    pub(crate) thread: usize,
    pub(crate) events_in: OwnedCounter,
    pub(crate) events_out: OwnedCounter,
    pub(crate) over_budget: OwnedCounter,
    pub(crate) batches: OwnedCounter,
    pub(crate) hist: Mutex<Histogram<u64>>,
}

impl StageShared {
    pub(crate) fn new(name: String, budget: Duration, thread: usize) -> Self {
        StageShared {
            name,
            budget,
            thread,
            events_in: OwnedCounter::default(),
            events_out: OwnedCounter::default(),
            over_budget: OwnedCounter::default(),
            batches: OwnedCounter::default(),
            hist: Mutex::new(new_histogram()),
        }
    }
}

/// The hot-thread side of a stage's statistics.
pub(crate) struct StageMeter {
    timing: Timing,
    clock: Clock,
    budget_ticks: u64,
    local: Histogram<u64>,
    dirty: bool,
    /// `Timing::Sampled`: batches left until the next timed one.
    countdown: u32,
    pub(crate) shared: std::sync::Arc<StageShared>,
}

impl StageMeter {
    pub(crate) fn new(shared: std::sync::Arc<StageShared>, timing: Timing) -> Self {
        let clock = *Clock::get();
        let budget_ticks = clock.us_to_ticks(shared.budget.as_secs_f64() * 1e6).max(1);
        StageMeter {
            timing,
            clock,
            budget_ticks,
            local: new_histogram(),
            dirty: false,
            countdown: 0,
            shared,
        }
    }

    #[inline(always)]
    pub(crate) fn timing(&self) -> Timing {
        self.timing
    }

    /// Whether this batch is timed: always under `PerBatch`, one in `n` under `Sampled(n)`.
    #[inline(always)]
    pub(crate) fn time_this_batch(&mut self) -> bool {
        match self.timing {
            Timing::PerBatch => true,
            Timing::Sampled(n) => {
                if self.countdown == 0 {
                    self.countdown = n.max(1) - 1;
                    true
                } else {
                    self.countdown -= 1;
                    false
                }
            }
            Timing::Off | Timing::PerEvent => false,
        }
    }

    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        self.clock.ticks()
    }

    /// Records `n` events that took `ticks` together (batch timing: each gets the mean).
    /// Returns how many of them count as over budget (all or none).
    #[inline(always)]
    pub(crate) fn record_batch(&mut self, ticks: u64, n: u64) -> u64 {
        // A batch of one is common at low rates: skip the 64-bit division then.
        let per_event = if n == 1 { ticks } else { ticks / n };
        self.local
            .saturating_record_n(self.clock.to_ns(per_event).max(1), n);
        self.dirty = true;
        if per_event > self.budget_ticks {
            n
        } else {
            0
        }
    }

    /// Records one event that took `ticks`.
    #[inline(always)]
    pub(crate) fn record_event(&mut self, ticks: u64) -> bool {
        self.local.saturating_record(self.clock.to_ns(ticks).max(1));
        self.dirty = true;
        ticks > self.budget_ticks
    }

    #[inline(always)]
    pub(crate) fn count(&mut self, events_in: u64, events_out: u64, over_budget: u64) {
        self.shared.events_in.add(events_in);
        self.shared.events_out.add(events_out);
        if over_budget > 0 {
            self.shared.over_budget.add(over_budget);
        }
        self.shared.batches.add(1);
    }

    /// Folds the local histogram into the shared one. Returns false if the reader held the
    /// lock; the caller retries later. Never blocks and never allocates (same bounds).
    pub(crate) fn publish(&mut self) -> bool {
        if !self.dirty {
            return true;
        }
        match self.shared.hist.try_lock() {
            Ok(mut shared) => {
                // Same bounds on both sides, so `add` cannot fail or resize.
                let _ = shared.add(&self.local);
                self.local.reset();
                self.dirty = false;
                true
            }
            Err(_) => false,
        }
    }
}

/// Latency percentiles of one stage, in nanoseconds per event.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    /// Samples recorded (events, or events weighted by batch under batch timing).
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl LatencySummary {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }
}

/// A snapshot of one stage.
#[derive(Debug, Clone)]
pub struct StageStats {
    /// The name given at build time.
    pub name: String,
    /// Index of the thread the stage runs on.
    pub thread: usize,
    /// The stage's latency budget per event.
    pub budget: Duration,
    /// Events the stage consumed.
    pub events_in: u64,
    /// Events the stage emitted.
    pub events_out: u64,
    /// Batches processed.
    pub batches: u64,
    /// Events whose measured service time exceeded the budget (see [`Timing`] for how a
    /// batch-timed event is judged).
    pub over_budget: u64,
    /// Service-time percentiles (empty with [`Timing::Off`]).
    pub latency: LatencySummary,
}

/// A snapshot of one ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingStats {
    /// Which hop: `input`, `<stage> -> <stage>`, or `output`.
    pub name: String,
    /// Slots in the ring.
    pub capacity: usize,
    /// Events in the ring when the snapshot was taken (pushed − popped).
    pub occupancy: u64,
    /// Most events the consumer ever found waiting at once.
    pub high_water: u64,
    /// Events written into the ring.
    pub pushed: u64,
    /// Events read from the ring.
    pub popped: u64,
    /// Events refused because the ring was full (drop-newest policy).
    pub dropped_newest: u64,
    /// Older events discarded to make room (drop-oldest policy).
    pub dropped_oldest: u64,
}

/// One pipeline thread and what runs on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStats {
    /// The thread's name (`ebbflow-<index>`).
    pub name: String,
    /// Indices of the stages fused on this thread, in order.
    pub stages: Vec<usize>,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
    /// Its wait strategy.
    pub wait: super::WaitStrategy,
}

/// A snapshot of a whole pipeline.
#[derive(Debug, Clone)]
pub struct PipelineStats {
    /// One entry per stage, in pipeline order.
    pub stages: Vec<StageStats>,
    /// The input ring, each ring between threads, and the output ring.
    pub rings: Vec<RingStats>,
    /// The threads and their stages.
    pub threads: Vec<ThreadStats>,
    /// Threads that did not fold in their latest histogram in time (busy in a long stage
    /// call); their latency figures lag by at most one snapshot.
    pub stale_threads: usize,
}

impl PipelineStats {
    /// Every drop counted on every ring.
    pub fn total_dropped(&self) -> u64 {
        self.rings
            .iter()
            .map(|r| r.dropped_newest + r.dropped_oldest)
            .sum()
    }

    /// Events still in rings.
    pub fn in_flight(&self) -> u64 {
        self.rings.iter().map(|r| r.occupancy).sum()
    }
}

impl std::fmt::Display for PipelineStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<14} {:>6} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "stage",
            "thread",
            "in",
            "out",
            "p50 ns",
            "p99 ns",
            "p99.9 ns",
            "max ns",
            "budget",
            "over"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<14} {:>6} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>7}µs {:>10}",
                s.name,
                s.thread,
                s.events_in,
                s.events_out,
                s.latency.p50_ns,
                s.latency.p99_ns,
                s.latency.p999_ns,
                s.latency.max_ns,
                s.budget.as_secs_f64() * 1e6,
                s.over_budget
            )?;
        }
        writeln!(
            f,
            "{:<28} {:>8} {:>8} {:>8} {:>12} {:>10} {:>10}",
            "ring", "capacity", "now", "high", "pushed", "drop-new", "drop-old"
        )?;
        for r in &self.rings {
            writeln!(
                f,
                "{:<28} {:>8} {:>8} {:>8} {:>12} {:>10} {:>10}",
                r.name,
                r.capacity,
                r.occupancy,
                r.high_water,
                r.pushed,
                r.dropped_newest,
                r.dropped_oldest
            )?;
        }
        for t in &self.threads {
            writeln!(
                f,
                "thread {:<12} stages {:?} core {:?} wait {:?}",
                t.name, t.stages, t.core, t.wait
            )?;
        }
        Ok(())
    }
}
