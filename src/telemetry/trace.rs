//! Trace records: fixed-size, `Copy` values filled on the hot path and handed to the
//! exporter thread through a ring.
//!
//! Nothing here allocates after [`TraceRecorder`] is created: `begin`, `start`, `end`
//! and `finish` read the clock, write into the record in place and, for a sampled or
//! budget-breaking event, push the record (a copy) into a bounded SPSC ring. A full ring
//! drops the record and counts it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::clock::Clock;

use super::counters::Counters;

/// Most stages one trace records; stages past this are ignored.
pub const MAX_STAGES: usize = 16;

/// Longest key kept in a record, in bytes; longer keys are cut at a character boundary.
pub const MAX_KEY: usize = 40;

/// A short string stored inline (the event's key), so a record stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineKey {
    len: u8,
    bytes: [u8; MAX_KEY],
}

impl InlineKey {
    /// The empty key.
    pub const EMPTY: InlineKey = InlineKey {
        len: 0,
        bytes: [0; MAX_KEY],
    };

    /// Copies `s`, cut to at most [`MAX_KEY`] bytes at a character boundary.
    pub fn new(s: &str) -> InlineKey {
        let mut end = s.len().min(MAX_KEY);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; MAX_KEY];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        InlineKey {
            len: end as u8,
            bytes,
        }
    }

    /// The non-empty parts joined by `sep` (e.g. `namespace/name`), cut to at most
    /// [`MAX_KEY`] bytes at a character boundary. Does not allocate.
    pub fn join(parts: &[&str], sep: &str) -> InlineKey {
        let mut key = InlineKey::EMPTY;
        let mut first = true;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            if !first {
                key.push(sep);
            }
            first = false;
            key.push(part);
        }
        key
    }

    /// Appends as much of `s` as fits, cut at a character boundary.
    fn push(&mut self, s: &str) {
        let at = self.len as usize;
        let mut n = s.len().min(MAX_KEY - at);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.bytes[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n as u8;
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        // Only whole characters of a `&str` are ever copied in.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for InlineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl Default for InlineKey {
    fn default() -> Self {
        InlineKey::EMPTY
    }
}

/// The attributes of a trace (set on the root span).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceAttrs {
    /// Scenario name (`ebbflow.scenario`).
    pub scenario: &'static str,
    /// Pattern name (`ebbflow.pattern`).
    pub pattern: &'static str,
    /// Event kind (`ebbflow.kind`).
    pub kind: &'static str,
    /// Event key (`ebbflow.key`).
    pub key: InlineKey,
    /// Whether the event broke its budget (`ebbflow.budget_exceeded`).
    pub budget_exceeded: bool,
    /// The stage that held or dropped the event, which therefore never reached the last
    /// one (`ebbflow.stopped_at`, set only when not empty).
    pub stopped_at: &'static str,
}

/// One completed (or in-progress) trace: the root's time span, per-stage start/end clock
/// ticks (see [`Clock`]) and attributes. Fixed-size and `Copy`.
#[derive(Debug, Clone, Copy)]
pub struct TraceRecord {
    /// Trace id (never 0).
    pub trace_id: u128,
    /// Root span id (never 0). Child span ids are derived from it by the exporter.
    pub span_id: u64,
    /// Root start, in clock ticks.
    pub start: u64,
    /// Root end, in clock ticks.
    pub end: u64,
    /// Stage names; `stage_ticks[i]` belongs to `stage_names[i]`.
    pub stage_names: &'static [&'static str],
    /// `[start, end]` ticks per stage.
    pub stage_ticks: [[u64; 2]; MAX_STAGES],
    /// Bit `i` set: stage `i` has both a start and an end.
    pub recorded: u32,
    /// Attributes.
    pub attrs: TraceAttrs,
}

impl TraceRecord {
    /// An empty record over `stage_names` with the given ids.
    pub fn new(stage_names: &'static [&'static str], trace_id: u128, span_id: u64) -> Self {
        TraceRecord {
            trace_id,
            span_id,
            start: 0,
            end: 0,
            stage_names,
            stage_ticks: [[0; 2]; MAX_STAGES],
            recorded: 0,
            attrs: TraceAttrs::default(),
        }
    }

    /// Sets stage `stage`'s start and end ticks (ignored past [`MAX_STAGES`]).
    pub fn set_stage(&mut self, stage: usize, start: u64, end: u64) {
        if stage < MAX_STAGES {
            self.stage_ticks[stage] = [start, end];
            self.recorded |= 1 << stage;
        }
    }

    /// Stages with both ends recorded, in index order: `(index, start, end)`.
    pub fn stages(&self) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        (0..MAX_STAGES)
            .filter(move |i| self.recorded & (1 << i) != 0)
            .map(move |i| (i, self.stage_ticks[i][0], self.stage_ticks[i][1]))
    }
}

/// A cheap, non-cryptographic id source (splitmix64), one per recorder.
#[derive(Debug, Clone)]
pub struct IdGen(u64);

static SEED: AtomicU64 = AtomicU64::new(0x243F_6A88_85A3_08D3);

impl IdGen {
    /// A generator seeded from a process-wide counter, the wall clock and the TSC, so
    /// recorders on different threads and processes produce different ids.
    pub fn new() -> IdGen {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        IdGen(splitmix(n ^ now ^ Clock::get().ticks().rotate_left(32)))
    }

    /// The next non-zero 64-bit id.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix(self.0).max(1)
    }

    /// The next non-zero 128-bit id.
    #[inline]
    pub fn next_u128(&mut self) -> u128 {
        ((self.next_u64() as u128) << 64) | self.next_u64() as u128
    }
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen::new()
    }
}

/// The splitmix64 finaliser.
#[inline]
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The span id of stage `stage` under root span `root` (non-zero, distinct per stage).
pub fn child_span_id(root: u64, stage: usize) -> u64 {
    splitmix(root ^ (stage as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)).max(1)
}

/// The producing end of one trace ring. Pushing never blocks or allocates; a full ring
/// drops the record and counts it (`ebbflow.telemetry.traces_dropped`, reason `queue`).
pub struct TraceSink {
    ring: Option<rtrb::Producer<TraceRecord>>,
    counters: Arc<Counters>,
}

impl TraceSink {
    pub(crate) fn new(ring: Option<rtrb::Producer<TraceRecord>>, counters: Arc<Counters>) -> Self {
        TraceSink { ring, counters }
    }

    /// Hands `record` to the exporter. Returns false when telemetry is off or the ring is
    /// full (the record is then dropped and counted).
    #[inline]
    pub fn submit(&mut self, record: TraceRecord) -> bool {
        let Some(ring) = self.ring.as_mut() else {
            return false;
        };
        match ring.push(record) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.counters.dropped_queue.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether records go anywhere (false when telemetry is off).
    pub fn is_enabled(&self) -> bool {
        self.ring.is_some()
    }
}

/// What [`TraceRecorder::finish`] did with the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Neither sampled nor over budget: discarded.
    NotSampled,
    /// Handed to the exporter.
    Submitted,
    /// Should have been exported but the ring was full, or telemetry is off.
    Dropped,
}

/// Fills one [`TraceRecord`] per event on one thread: `begin`, then `start(stage)` /
/// `end(stage)` around each stage, then `finish`. Sampling is one in N events per
/// recorder (from the config's sampler); an event whose total time exceeds the recorder's
/// budget, or that was marked with [`TraceRecorder::mark_budget_exceeded`], is exported
/// whether sampled or not. Nothing here allocates.
pub struct TraceRecorder {
    sink: TraceSink,
    clock: Clock,
    ids: IdGen,
    record: TraceRecord,
    one_in: u32,
    countdown: u32,
    sampled: bool,
    budget_ticks: u64,
}

impl TraceRecorder {
    pub(crate) fn new(sink: TraceSink, stage_names: &'static [&'static str], one_in: u32) -> Self {
        TraceRecorder {
            sink,
            clock: *Clock::get(),
            ids: IdGen::new(),
            record: TraceRecord::new(stage_names, 0, 0),
            one_in,
            countdown: 0,
            sampled: false,
            budget_ticks: u64::MAX,
        }
    }

    /// Exports every event whose `begin`..`finish` time exceeds `budget`.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget_ticks = self.clock.us_to_ticks(budget.as_secs_f64() * 1e6).max(1);
        self
    }

    /// Starts a new event's trace. Returns whether the event is sampled; a host that only
    /// wants sampled traces may skip `start`/`end` when it is false (budget breakers then
    /// go unrecorded per stage).
    #[inline]
    pub fn begin(&mut self, attrs: TraceAttrs) -> bool {
        self.sampled = match self.one_in {
            0 => false,
            1 => true,
            n => {
                if self.countdown == 0 {
                    self.countdown = n - 1;
                    true
                } else {
                    self.countdown -= 1;
                    false
                }
            }
        };
        self.record.attrs = attrs;
        self.record.recorded = 0;
        self.record.start = self.clock.ticks();
        self.record.end = self.record.start;
        self.sampled
    }

    /// Notes that stage `stage` starts now.
    #[inline]
    pub fn start(&mut self, stage: usize) {
        if stage < MAX_STAGES {
            self.record.stage_ticks[stage][0] = self.clock.ticks();
        }
    }

    /// Notes that stage `stage` ends now.
    #[inline]
    pub fn end(&mut self, stage: usize) {
        if stage < MAX_STAGES {
            self.record.stage_ticks[stage][1] = self.clock.ticks();
            self.record.recorded |= 1 << stage;
        }
    }

    /// Marks the current event as over budget: it is exported whatever the sampler says.
    #[inline]
    pub fn mark_budget_exceeded(&mut self) {
        self.record.attrs.budget_exceeded = true;
    }

    /// Ends the event's trace and submits it if it is sampled or over budget.
    #[inline]
    pub fn finish(&mut self) -> Finished {
        self.record.end = self.clock.ticks();
        if self.record.end.wrapping_sub(self.record.start) > self.budget_ticks {
            self.record.attrs.budget_exceeded = true;
        }
        if !self.sampled && !self.record.attrs.budget_exceeded {
            return Finished::NotSampled;
        }
        self.record.trace_id = self.ids.next_u128();
        self.record.span_id = self.ids.next_u64();
        if self.sink.submit(self.record) {
            Finished::Submitted
        } else {
            Finished::Dropped
        }
    }

    /// The record being filled (for inspection and tests).
    pub fn record(&self) -> &TraceRecord {
        &self.record
    }

    /// The sink, for hosts that build records themselves.
    pub fn sink(&mut self) -> &mut TraceSink {
        &mut self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_key_cuts_at_a_character_boundary() {
        let long = "é".repeat(30); // 60 bytes
        let k = InlineKey::new(&long);
        assert_eq!(k.as_str().len(), 40);
        assert_eq!(k.as_str(), &long[..40]);
        assert_eq!(InlineKey::new("pod/a").as_str(), "pod/a");
        assert_eq!(InlineKey::join(&["ns", "pod"], "/").as_str(), "ns/pod");
        assert_eq!(InlineKey::join(&["", "pod"], "/").as_str(), "pod");
        assert_eq!(InlineKey::join(&["sensor", ""], "/").as_str(), "sensor");
        let joined = InlineKey::join(&["ns", &long], "/");
        assert_eq!(joined.as_str().len(), 39, "cut at a character boundary");
        assert!(joined.as_str().starts_with("ns/é"));
    }

    #[test]
    fn ids_are_non_zero_and_distinct() {
        let mut g = IdGen::new();
        let a = g.next_u128();
        let b = g.next_u128();
        assert!(a != 0 && b != 0 && a != b);
        let root = g.next_u64();
        let kids: Vec<u64> = (0..MAX_STAGES).map(|i| child_span_id(root, i)).collect();
        for (i, k) in kids.iter().enumerate() {
            assert_ne!(*k, root);
            assert!(!kids[i + 1..].contains(k));
        }
    }

    #[test]
    fn sampling_is_one_in_n_and_budget_breakers_always_go() {
        static NAMES: &[&str] = &["a", "b"];
        let counters = Arc::new(Counters::default());
        let (tx, mut rx) = rtrb::RingBuffer::new(64);
        let mut rec = TraceRecorder::new(TraceSink::new(Some(tx), counters.clone()), NAMES, 4);
        let mut sent = 0;
        for i in 0..16 {
            rec.begin(TraceAttrs::default());
            rec.start(0);
            rec.end(0);
            if i == 5 {
                rec.mark_budget_exceeded();
            }
            if rec.finish() == Finished::Submitted {
                sent += 1;
            }
        }
        assert_eq!(sent, 4 + 1);
        let first = rx.pop().unwrap();
        assert_eq!(first.stages().count(), 1);
        assert!(first.start <= first.end);
        assert_eq!(counters.submitted.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn events_longer_than_the_budget_are_exported_unsampled() {
        static NAMES: &[&str] = &["a"];
        let counters = Arc::new(Counters::default());
        let (tx, mut rx) = rtrb::RingBuffer::new(8);
        let mut rec = TraceRecorder::new(TraceSink::new(Some(tx), counters), NAMES, 0)
            .with_budget(Duration::from_micros(200));
        rec.begin(TraceAttrs::default());
        assert_eq!(
            rec.finish(),
            Finished::NotSampled,
            "fast event, sampler off"
        );
        rec.begin(TraceAttrs::default());
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(rec.finish(), Finished::Submitted);
        let r = rx.pop().unwrap();
        assert!(r.attrs.budget_exceeded);
        assert!(r.trace_id != 0 && r.span_id != 0);
        assert!(rx.pop().is_err());
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        static NAMES: &[&str] = &["a"];
        let counters = Arc::new(Counters::default());
        let (tx, _rx) = rtrb::RingBuffer::new(2);
        let mut rec = TraceRecorder::new(TraceSink::new(Some(tx), counters.clone()), NAMES, 1);
        let results: Vec<Finished> = (0..5)
            .map(|_| {
                rec.begin(TraceAttrs::default());
                rec.finish()
            })
            .collect();
        assert_eq!(&results[..2], &[Finished::Submitted; 2]);
        assert_eq!(&results[2..], &[Finished::Dropped; 3]);
        assert_eq!(counters.dropped_queue.load(Ordering::Relaxed), 3);
    }
}
