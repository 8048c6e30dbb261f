//! The notify stage: turns items into topic messages, encoded once, and hands them on.
//!
//! Messages are JSON objects written into one preallocated buffer and given to a
//! [`Publish`] sink — normally the channels' bus ring to the broadcast thread
//! ([`crate::channels`]), or an in-memory [`MemoryPublisher`] in tests. Per topic (BRIEF §4):
//!
//! | topic | event(s) | when |
//! |---|---|---|
//! | `k8s:events` | `change` | every created/updated/deleted Kubernetes object |
//! | `feedback` | `alert`, `cleared` | a rule starts / stops matching an object (capped per window, the rest counted) |
//! | `recovery` | `hint`, `recovered`, `relist`, `engine` | a raised alert's recovery hint; its clearing; a watch 410 Gone; the reactor's own retries and failures |
//! | `reactor:steps` | `retried`, `compensated`, `failed`, `summary` | each lifecycle event; per window, chains finished, completed, retried, compensated, failed, the mean chain duration and the records the reactor holds |
//! | `state` | `delta`, `snapshot_begin`, `snapshot_chunk`, `snapshot_end` | every Kubernetes change, positioned by `seq`; a snapshot on request |
//! | `drift` | `drift`, `corrected` | a spec hash leaves / returns to its baseline (first seen) |
//! | `analytics` | `window` | per window: rates per kind, namespace, group (market / device type), top-N keys |
//! | `monitoring` | `stats` | per window: the pipeline's per-stage statistics |
//! | `dashboard` | `update` | at most once per dashboard interval: the coalesced summary |
//! | `schema` | `version`, `instances` | when the schema grows: version, diff, Turtle, typed models; with a snapshot: its objects as Turtle instances |
//! | `commands` | `applied`, `rejected` | a command's effect, for every subscriber |
//! | `journal` | `appended`, `rotated`, `recovered`, `removed`, `overflow` | the journal's events (coalesced appends per batch) |
//!
//! High-rate records (ticks, sensor readings) are not published one by one: they feed the
//! windowed `analytics` and the coalesced `dashboard`, and their alerts go to `feedback`.
//!
//! # Allocation
//!
//! None per item: the buffer is reserved at construction; the analytics, drift and alert
//! tables are fixed-size. A message that would not fit in the buffer is not published and
//! is counted in [`NotifyCounters::oversize`]. Snapshots and schema messages read shared
//! state under a lock on the (rare) paths that publish them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::{Clock, Emitter, InPlace, PipelineStats, Stage};
use crate::flow::commands::CommandDesk;
use crate::flow::item::{ChangeKind, Command, Item, Severity, StepState, What, CLEARED_BIT};
use crate::flow::json;
use crate::flow::resources::SnapshotSlot;
use crate::sources::intern::{Resolver, Symbol};
use crate::sources::record::{FieldId, FieldValue, Kind, Op, Record};

/// Topic names.
pub mod topics {
    /// Decoded Kubernetes changes (k8s_feedback).
    pub const K8S_EVENTS: &str = "k8s:events";
    /// Feedback signals (k8s_feedback).
    pub const FEEDBACK: &str = "feedback";
    /// Reactor step lifecycle (reactor_notifications).
    pub const REACTOR_STEPS: &str = "reactor:steps";
    /// Journal appends, rotations, recoveries (event_sourcing_reverse).
    pub const JOURNAL: &str = "journal";
    /// Per-stage statistics (realtime_monitoring_reverse).
    pub const MONITORING: &str = "monitoring";
    /// Recovery hints and the engine's own recovery (failure_recovery_reverse).
    pub const RECOVERY: &str = "recovery";
    /// Snapshot plus ordered deltas (state_sync_reverse).
    pub const STATE: &str = "state";
    /// Windowed aggregates (performance_analytics_reverse).
    pub const ANALYTICS: &str = "analytics";
    /// Spec drift against a baseline (config_drift_reverse).
    pub const DRIFT: &str = "drift";
    /// Coalesced dashboard feed (live_dashboard_reverse).
    pub const DASHBOARD: &str = "dashboard";
    /// Schema versions and generated artifacts.
    pub const SCHEMA: &str = "schema";
    /// Command effects (bidirectional_channels).
    pub const COMMANDS: &str = "commands";
    /// Every topic the reverse flow publishes.
    pub const ALL: &[&str] = &[
        K8S_EVENTS,
        FEEDBACK,
        REACTOR_STEPS,
        JOURNAL,
        MONITORING,
        RECOVERY,
        STATE,
        ANALYTICS,
        DRIFT,
        DASHBOARD,
        SCHEMA,
        COMMANDS,
    ];
}

/// Where notify puts encoded messages.
pub trait Publish: Send + 'static {
    /// Takes one message; `false` when it could not (full, too large): notify counts it.
    fn publish(&mut self, topic: &str, event: &str, payload: &[u8]) -> bool;
    /// Makes what was published visible to readers (called once per batch).
    fn flush(&mut self) {}
}

/// What notify needs to know about rules to describe a hit.
pub trait DescribeRules: Send + Sync + 'static {
    /// Number of rules.
    fn rule_count(&self) -> usize;
    /// The rule's name.
    fn name(&self, rule: u16) -> &str;
    /// The rule's severity.
    fn severity(&self, rule: u16) -> Severity;
    /// The rule's recovery hint (empty for none).
    fn hint(&self, rule: u16) -> &str;
    /// The rule's current threshold.
    fn threshold(&self, rule: u16) -> f64;
    /// The value the rule looked at in `item`.
    fn observed(&self, rule: u16, item: &Item) -> Option<f64>;
}

/// A message kept by [`MemoryPublisher`].
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedMessage {
    /// Topic.
    pub topic: String,
    /// Event name.
    pub event: String,
    /// JSON payload.
    pub payload: serde_json::Value,
}

/// A [`Publish`] sink that keeps every message in memory (tests, tools). Allocates per
/// message; not for the hot path.
#[derive(Clone, Default)]
pub struct MemoryPublisher {
    messages: Arc<Mutex<Vec<OwnedMessage>>>,
}

impl MemoryPublisher {
    /// An empty publisher.
    pub fn new() -> MemoryPublisher {
        MemoryPublisher::default()
    }

    /// Takes every message published so far.
    pub fn take(&self) -> Vec<OwnedMessage> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Publish for MemoryPublisher {
    fn publish(&mut self, topic: &str, event: &str, payload: &[u8]) -> bool {
        let payload = serde_json::from_slice(payload).expect("notify writes valid JSON");
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(OwnedMessage {
                topic: topic.to_owned(),
                event: event.to_owned(),
                payload,
            });
        true
    }
}

/// Schema artifacts, written by the schema/turtle/typer stages when the schema grows.
#[derive(Debug, Default, Clone)]
pub struct SchemaArtifacts {
    /// Schema version these artifacts describe.
    pub version: u32,
    /// Number of classes.
    pub classes: usize,
    /// Number of properties.
    pub properties: usize,
    /// What changed since the previous version, one line per addition or widening.
    pub diff: Vec<String>,
    /// The schema as Turtle.
    pub turtle: String,
    /// The generated Python module.
    pub python: String,
    /// The generated JSON Schema document.
    pub json_schema: String,
}

/// State shared between the host, the schema stages and notify.
#[derive(Default)]
pub struct Shared {
    /// The latest pipeline statistics, stored by the host for the `monitoring` topic.
    pub stats: Mutex<Option<PipelineStats>>,
    /// The latest schema artifacts.
    pub schema: Mutex<SchemaArtifacts>,
    /// The latest schema, stored by the schema stage when it grows.
    pub schema_model: Mutex<Option<crate::flow::schema::Schema>>,
    /// The schema before the latest change (for the diff).
    pub schema_previous: Mutex<crate::flow::schema::Schema>,
    /// Records the reactor holds now (parked for a retry, or queued behind a parked
    /// record of their key), as of its last batch; stored by the reactor stage.
    pub reactor_parked: std::sync::atomic::AtomicU64,
}

/// Settings of the notify stage.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Scenario name, included in dashboard and monitoring messages.
    pub scenario: &'static str,
    /// Window of analytics, monitoring and reactor summaries.
    pub window: Duration,
    /// Least time between two dashboard updates.
    pub dashboard_interval: Duration,
    /// Most `feedback` messages per window; more are counted, not sent.
    pub feedback_per_window: u32,
    /// Keys in the analytics top-N list.
    pub top_n: usize,
    /// Objects per `snapshot_chunk` message.
    pub snapshot_chunk: usize,
    /// Largest message, in bytes (the preallocated buffer).
    pub max_message: usize,
    /// Record end-to-end latency of every record here (benchmarks; see
    /// [`LatencyHistogram`]). `None` in normal operation.
    pub latency_probe: Option<LatencyHistogram>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            scenario: "custom",
            window: Duration::from_secs(1),
            dashboard_interval: Duration::from_millis(250),
            feedback_per_window: 10_000,
            top_n: 10,
            snapshot_chunk: 200,
            max_message: 256 * 1024,
            latency_probe: None,
        }
    }
}

/// Counters of the notify stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyCounters {
    /// Messages handed to the sink.
    pub published: u64,
    /// Messages the sink refused (full ring).
    pub refused: u64,
    /// Messages larger than the buffer, not published.
    pub oversize: u64,
    /// Feedback messages over the per-window cap, counted instead of sent.
    pub feedback_suppressed: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts cleared.
    pub cleared: u64,
    /// Drift events.
    pub drifts: u64,
    /// Commands completed.
    pub commands: u64,
}

const SYM_SLOTS: usize = 64;

/// Counts per symbol in a small fixed table; symbols past it count under "other".
struct SymCounts {
    syms: [u32; SYM_SLOTS],
    counts: [u64; SYM_SLOTS],
    used: usize,
    other: u64,
}

impl SymCounts {
    fn new() -> Self {
        SymCounts {
            syms: [0; SYM_SLOTS],
            counts: [0; SYM_SLOTS],
            used: 0,
            other: 0,
        }
    }

    #[inline]
    fn add(&mut self, s: Symbol) {
        let id = s.id();
        let start = (id as usize).wrapping_mul(0x9e37_79b9) % SYM_SLOTS;
        for probe in 0..SYM_SLOTS {
            let i = (start + probe) % SYM_SLOTS;
            if self.counts[i] == 0 {
                if self.used == SYM_SLOTS {
                    break;
                }
                self.syms[i] = id;
                self.counts[i] = 1;
                self.used += 1;
                return;
            }
            if self.syms[i] == id {
                self.counts[i] += 1;
                return;
            }
        }
        self.other += 1;
    }

    fn reset(&mut self) {
        self.counts = [0; SYM_SLOTS];
        self.used = 0;
        self.other = 0;
    }

    fn write(&self, out: &mut Vec<u8>, resolver: &Resolver, per_s: f64) {
        out.push(b'{');
        let mut first = true;
        for i in 0..SYM_SLOTS {
            if self.counts[i] == 0 {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match resolver.resolve(Symbol::from_id(self.syms[i])) {
                Some(t) if !t.is_empty() => json::key(out, t),
                Some(_) => json::key(out, "(none)"),
                None => json::key(out, "(overflow)"),
            }
            json::float(out, self.counts[i] as f64 * per_s);
        }
        if self.other > 0 {
            if !first {
                out.push(b',');
            }
            json::key(out, "(other)");
            json::float(out, self.other as f64 * per_s);
        }
        out.push(b'}');
    }
}

const HEAVY_SLOTS: usize = 4096;

/// Approximate heavy hitters: a direct-mapped table of (key, count); a colliding key
/// decrements the resident and takes the slot when it reaches zero (Misra–Gries per slot).
struct HeavyHitters {
    keys: Vec<u64>,
    counts: Vec<u32>,
    names: Vec<(Kind, Symbol, Symbol)>,
}

impl HeavyHitters {
    fn new() -> Self {
        HeavyHitters {
            keys: vec![0; HEAVY_SLOTS],
            counts: vec![0; HEAVY_SLOTS],
            names: vec![(Kind::Unknown, Symbol::EMPTY, Symbol::EMPTY); HEAVY_SLOTS],
        }
    }

    #[inline]
    fn add(&mut self, r: &Record) {
        let i = (r.key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize;
        if self.keys[i] == r.key && self.counts[i] > 0 {
            self.counts[i] += 1;
        } else if self.counts[i] == 0 {
            self.keys[i] = r.key;
            self.counts[i] = 1;
            self.names[i] = (r.kind, r.namespace, r.name);
        } else {
            self.counts[i] -= 1;
        }
    }

    fn top(&self, n: usize, out: &mut [(u32, usize); 32]) -> usize {
        let n = n.min(out.len());
        let mut len = 0;
        for i in 0..HEAVY_SLOTS {
            let c = self.counts[i];
            if c == 0 {
                continue;
            }
            if len < n {
                out[len] = (c, i);
                len += 1;
            } else if c > out[len - 1].0 {
                out[len - 1] = (c, i);
            } else {
                continue;
            }
            let mut j = len - 1;
            while j > 0 && out[j].0 > out[j - 1].0 {
                out.swap(j, j - 1);
                j -= 1;
            }
        }
        len
    }

    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}

/// Baselines of spec hashes, per object key (first seen is the baseline).
struct DriftTable {
    keys: Vec<u64>,
    baseline: Vec<u64>,
    last: Vec<u64>,
    mask: usize,
    len: usize,
    full: u64,
}

impl DriftTable {
    fn new(capacity: usize) -> Self {
        let cap = capacity.max(16).next_power_of_two();
        DriftTable {
            keys: vec![0; cap],
            baseline: vec![0; cap],
            last: vec![0; cap],
            mask: cap - 1,
            len: 0,
            full: 0,
        }
    }

    /// Returns `Some((baseline, drifted))` when the observed spec changed and either is
    /// or was away from the baseline: a new drift (or a further edit while drifted), or
    /// a correction back to the baseline. An unchanged spec reports nothing.
    #[inline]
    fn observe(&mut self, key: u64, spec: u64) -> Option<(u64, bool)> {
        let k = if key == 0 { 1 } else { key };
        let mut i = (k as usize) & self.mask;
        loop {
            if self.keys[i] == k {
                let last = self.last[i];
                if spec == last {
                    return None;
                }
                self.last[i] = spec;
                let drifted = spec != self.baseline[i];
                let was = last != self.baseline[i];
                return (drifted || was).then_some((self.baseline[i], drifted));
            }
            if self.keys[i] == 0 {
                if self.len * 8 >= self.keys.len() * 7 {
                    self.full += 1;
                    return None;
                }
                self.keys[i] = k;
                self.baseline[i] = spec;
                self.last[i] = spec;
                self.len += 1;
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// End-to-end latency, source push → notify, for benchmarks: the source stamps each
/// record's `ingest_ns` with the engine clock's raw ticks ([`Clock::ticks`]) at the
/// moment the item was *scheduled* to enter, and notify records `now − stamp` per record
/// in a local histogram (no lock, no allocation; records stamped 0 are skipped), merged into the shared one when the
/// stage is dropped (after the pipeline finished). Measuring from the schedule rather than
/// from the actual push corrects for coordinated omission.
pub type LatencyHistogram = Arc<Mutex<hdrhistogram::Histogram<u64>>>;

struct LatencyProbe {
    clock: &'static Clock,
    local: hdrhistogram::Histogram<u64>,
    shared: LatencyHistogram,
}

impl LatencyProbe {
    fn new(shared: LatencyHistogram) -> LatencyProbe {
        LatencyProbe {
            clock: Clock::get(),
            local: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds"),
            shared,
        }
    }

    #[inline]
    fn record(&mut self, stamp_ticks: i64) {
        if stamp_ticks <= 0 {
            return; // not stamped (warm-up)
        }
        let now = self.clock.ticks();
        let ns = self
            .clock
            .to_ns(now.saturating_sub(stamp_ticks as u64))
            .max(1);
        self.local.saturating_record(ns);
    }
}

impl Drop for LatencyProbe {
    fn drop(&mut self) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let _ = shared.add(&self.local);
    }
}

/// The notify stage. See the [module docs](self).
pub struct NotifyStage {
    probe: Option<LatencyProbe>,
    journal_events: Option<rtrb::Consumer<crate::journal::JournalEvent>>,
    sink: Box<dyn Publish>,
    resolver: Resolver,
    rules: Option<Arc<dyn DescribeRules>>,
    snapshots: Arc<SnapshotSlot>,
    shared: Arc<Shared>,
    desk: Arc<CommandDesk>,
    config: NotifyConfig,
    buf: Vec<u8>,
    counters: NotifyCounters,
    // windows
    window_start_ns: i64,
    last_dashboard_ns: i64,
    window_events: u64,
    per_kind: [u64; Kind::COUNT],
    per_namespace: SymCounts,
    per_group: SymCounts,
    heavy: HeavyHitters,
    feedback_in_window: u32,
    completed_chains: u64,
    completed_ns: u64,
    step_events: [u64; 6],
    total_events: u64,
    active_alerts: i64,
    last_alert: Option<(u16, u64)>,
    schema_version: u32,
    drift: DriftTable,
}

impl NotifyStage {
    /// A notify stage publishing to `sink`.
    pub fn new(
        sink: Box<dyn Publish>,
        resolver: Resolver,
        rules: Option<Arc<dyn DescribeRules>>,
        snapshots: Arc<SnapshotSlot>,
        shared: Arc<Shared>,
        desk: Arc<CommandDesk>,
        config: NotifyConfig,
    ) -> NotifyStage {
        NotifyStage {
            probe: config.latency_probe.clone().map(LatencyProbe::new),
            journal_events: None,
            sink,
            resolver,
            rules,
            snapshots,
            shared,
            desk,
            buf: Vec::with_capacity(config.max_message),
            config,
            counters: NotifyCounters::default(),
            window_start_ns: 0,
            last_dashboard_ns: 0,
            window_events: 0,
            per_kind: [0; Kind::COUNT],
            per_namespace: SymCounts::new(),
            per_group: SymCounts::new(),
            heavy: HeavyHitters::new(),
            feedback_in_window: 0,
            completed_chains: 0,
            completed_ns: 0,
            step_events: [0; 6],
            total_events: 0,
            active_alerts: 0,
            last_alert: None,
            schema_version: 0,
            drift: DriftTable::new(1 << 16),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> NotifyCounters {
        self.counters
    }

    /// Publishes the journal's events (read from the journal stage's ring at the end of
    /// every batch) on the `journal` topic.
    pub fn with_journal_events(
        mut self,
        events: Option<rtrb::Consumer<crate::journal::JournalEvent>>,
    ) -> NotifyStage {
        self.journal_events = events;
        self
    }

    fn publish_journal_events(&mut self) {
        let Some(mut events) = self.journal_events.take() else {
            return;
        };
        while let Ok(ev) = events.pop() {
            crate::journal::encode_json(&ev, &mut self.buf);
            self.send(topics::JOURNAL, ev.kind());
        }
        self.journal_events = Some(events);
    }

    /// Publishes the buffer as it is (and keeps it, for a second topic).
    fn publish_buf(&mut self, topic: &str, event: &str) {
        if self.buf.len() > self.config.max_message {
            self.counters.oversize += 1;
        } else if self.sink.publish(topic, event, &self.buf) {
            self.counters.published += 1;
        } else {
            self.counters.refused += 1;
        }
    }

    /// Publishes the buffer and clears it.
    fn send(&mut self, topic: &str, event: &str) {
        self.publish_buf(topic, event);
        self.buf.clear();
    }

    /// `"kind":…,"namespace":…,"name":…,"key":…`
    fn write_identity(&mut self, r: &Record) {
        write_identity(&mut self.buf, &self.resolver, r);
    }

    fn write_object(&mut self, r: &Record) {
        write_object(&mut self.buf, &self.resolver, r);
    }

    fn on_change(&mut self, item: &Item) {
        let r = &item.record;
        self.count_for_analytics(r);
        if !is_k8s(r.kind) {
            return;
        }
        // k8s:events and state deltas.
        let change = match item.header.change {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
            ChangeKind::None => "none",
        };
        for topic in [topics::K8S_EVENTS, topics::STATE] {
            self.buf.extend_from_slice(b"{\"change\":");
            json::string(&mut self.buf, change);
            self.buf.extend_from_slice(b",\"op\":");
            json::string(&mut self.buf, r.op.name());
            self.buf.extend_from_slice(b",\"object\":");
            self.write_object(r);
            if topic == topics::K8S_EVENTS {
                self.buf.extend_from_slice(b",\"changed\":[");
                for (i, id) in item.changed.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    json::string(&mut self.buf, id.name());
                }
                self.buf.extend_from_slice(b"],\"prev\":{");
                let mut first = true;
                for (i, f) in r.fields().enumerate() {
                    if let Some(p) = item.prev_at(i) {
                        if !item.changed.contains(f.id) {
                            continue;
                        }
                        if !first {
                            self.buf.push(b',');
                        }
                        first = false;
                        json::key(&mut self.buf, f.id.name());
                        write_field(&mut self.buf, &self.resolver, f.id, p);
                    }
                }
                self.buf.push(b'}');
            }
            self.buf.push(b'}');
            let event = if topic == topics::K8S_EVENTS {
                "change"
            } else {
                "delta"
            };
            self.send(topic, event);
        }
        // Drift: the spec hash against its baseline.
        if let Some(spec) = r.get(FieldId::SpecHash).and_then(FieldValue::as_u64_bits) {
            if item.header.change == ChangeKind::Deleted {
                return;
            }
            if let Some((baseline, drifted)) = self.drift.observe(r.key, spec) {
                self.counters.drifts += u64::from(drifted);
                self.buf.push(b'{');
                self.write_identity(r);
                self.buf.extend_from_slice(b",\"baseline\":");
                json::hex(&mut self.buf, baseline);
                self.buf.extend_from_slice(b",\"observed\":");
                json::hex(&mut self.buf, spec);
                self.buf.extend_from_slice(b",\"seq\":");
                json::uint(&mut self.buf, r.seq);
                self.buf.push(b'}');
                self.send(topics::DRIFT, if drifted { "drift" } else { "corrected" });
            }
        }
    }

    #[inline]
    fn count_for_analytics(&mut self, r: &Record) {
        self.window_events += 1;
        self.total_events += 1;
        self.per_kind[r.kind as usize] += 1;
        if is_k8s(r.kind) {
            self.per_namespace.add(r.namespace);
        }
        let group = r
            .get(FieldId::AssetClass)
            .or_else(|| r.get(FieldId::DeviceType))
            .and_then(FieldValue::as_sym);
        if let Some(g) = group {
            self.per_group.add(g);
        }
        self.heavy.add(r);
    }

    fn on_hits(&mut self, item: &Item) {
        // Taken out for the loop (and put back) rather than cloned: no atomic per item.
        let Some(rules) = self.rules.take() else {
            return;
        };
        for &hit in item.hits.as_slice() {
            let cleared = hit & CLEARED_BIT != 0;
            let rule = hit & !CLEARED_BIT;
            if (rule as usize) >= rules.rule_count() {
                continue;
            }
            if cleared {
                self.counters.cleared += 1;
                self.active_alerts -= 1;
            } else {
                self.counters.alerts += 1;
                self.active_alerts += 1;
                self.last_alert = Some((rule, item.record.key));
            }
            if self.feedback_in_window >= self.config.feedback_per_window {
                self.counters.feedback_suppressed += 1;
                continue;
            }
            self.feedback_in_window += 1;
            write_hit(&mut self.buf, &self.resolver, &*rules, item, rule);
            self.publish_buf(topics::FEEDBACK, if cleared { "cleared" } else { "alert" });
            let hint = rules.hint(rule);
            if !hint.is_empty() {
                // The same object, plus the hint, on the recovery topic.
                self.buf.pop();
                self.buf.extend_from_slice(b",\"hint\":");
                json::string(&mut self.buf, hint);
                self.buf.push(b'}');
                self.publish_buf(topics::RECOVERY, if cleared { "recovered" } else { "hint" });
            }
            self.buf.clear();
        }
        self.rules = Some(rules);
    }

    fn on_step(&mut self, item: &Item) {
        let s = item.steps;
        self.step_events[s.state as usize] += 1;
        let r = item.record;
        self.buf.push(b'{');
        self.write_identity(&r);
        let b = &mut self.buf;
        b.extend_from_slice(b",\"chain\":");
        json::uint(b, u64::from(s.chain));
        b.extend_from_slice(b",\"step\":");
        json::uint(b, u64::from(s.step));
        b.extend_from_slice(b",\"attempt\":");
        json::uint(b, u64::from(s.attempt));
        b.extend_from_slice(b",\"duration_ns\":");
        json::uint(b, u64::from(s.duration_ns));
        b.extend_from_slice(b",\"seq\":");
        json::uint(b, r.seq);
        b.push(b'}');
        if matches!(s.state, StepState::Retried | StepState::Failed) {
            // The engine's own recovery, on the recovery topic too (same payload).
            self.publish_buf(topics::RECOVERY, s.state.name());
        }
        self.send(topics::REACTOR_STEPS, s.state.name());
    }

    fn on_error_record(&mut self, r: &Record) {
        let code = r.get(FieldId::StatusCode).and_then(FieldValue::as_i64);
        if r.op == Op::Error && code == Some(410) {
            self.buf.extend_from_slice(b"{\"reason\":\"410 Gone: resource version too old\",\"action\":\"relist\",\"seq\":");
            json::uint(&mut self.buf, r.seq);
            self.buf.push(b'}');
            self.send(topics::RECOVERY, "relist");
        }
    }

    fn on_reply(&mut self, item: &Item) {
        let Command::Reply {
            request,
            code,
            detail,
        } = item.command
        else {
            return;
        };
        let Some(cmd) = self.desk.complete(request, code, detail) else {
            return;
        };
        self.counters.commands += 1;
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"request\":");
        json::uint(b, request);
        b.extend_from_slice(b",\"code\":");
        json::uint(b, u64::from(code));
        match cmd {
            Command::SetThreshold { rule, value, .. } => {
                b.extend_from_slice(b",\"command\":\"set_threshold\",\"rule\":");
                json::uint(b, u64::from(rule));
                b.extend_from_slice(b",\"value\":");
                json::float(b, value);
                b.extend_from_slice(b",\"previous\":");
                json::float(b, detail);
            }
            Command::EnableRule { rule, enabled, .. } => {
                b.extend_from_slice(b",\"command\":\"enable_rule\",\"rule\":");
                json::uint(b, u64::from(rule));
                b.extend_from_slice(b",\"enabled\":");
                json::boolean(b, enabled);
            }
            Command::AckAlert { key, rule, .. } => {
                b.extend_from_slice(b",\"command\":\"ack_alert\",\"rule\":");
                json::uint(b, u64::from(rule));
                b.extend_from_slice(b",\"key\":");
                json::hex(b, key);
            }
            Command::Snapshot { .. } => {
                b.extend_from_slice(b",\"command\":\"snapshot\",\"objects\":");
                json::float(b, detail);
            }
            _ => {}
        }
        b.push(b'}');
        self.send(
            topics::COMMANDS,
            if code == 0 { "applied" } else { "rejected" },
        );
        if code == 0 {
            if let Command::Snapshot { request } = cmd {
                self.publish_snapshot(request);
            }
        }
    }

    fn publish_snapshot(&mut self, request: u64) {
        let snapshots = self.snapshots.clone();
        snapshots.with(|snap| {
            if snap.request != request {
                return;
            }
            self.buf.extend_from_slice(b"{\"request\":");
            json::uint(&mut self.buf, request);
            self.buf.extend_from_slice(b",\"last_seq\":");
            json::uint(&mut self.buf, snap.last_seq);
            self.buf.extend_from_slice(b",\"objects\":");
            json::uint(&mut self.buf, snap.records.len() as u64);
            self.buf.push(b'}');
            self.send(topics::STATE, "snapshot_begin");
            let chunk = self.config.snapshot_chunk.max(1);
            for (n, part) in snap.records.chunks(chunk).enumerate() {
                self.buf.extend_from_slice(b"{\"request\":");
                json::uint(&mut self.buf, request);
                self.buf.extend_from_slice(b",\"chunk\":");
                json::uint(&mut self.buf, n as u64);
                self.buf.extend_from_slice(b",\"objects\":[");
                for (i, r) in part.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.write_object(r);
                }
                self.buf.extend_from_slice(b"]}");
                self.send(topics::STATE, "snapshot_chunk");
            }
            self.buf.extend_from_slice(b"{\"request\":");
            json::uint(&mut self.buf, request);
            self.buf.extend_from_slice(b",\"last_seq\":");
            json::uint(&mut self.buf, snap.last_seq);
            self.buf.push(b'}');
            self.send(topics::STATE, "snapshot_end");
            self.publish_instances(request, snap);
        });
    }

    /// The snapshot's objects as Turtle instances of the current schema, on the `schema`
    /// topic, in chunks (each a complete Turtle document). Allocates: request path only.
    fn publish_instances(&mut self, request: u64, snap: &crate::flow::resources::Snapshot) {
        let Some(schema) = self
            .shared
            .schema_model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let chunk = self.config.snapshot_chunk.max(1);
        let mut text = String::new();
        for (n, part) in snap.records.chunks(chunk).enumerate() {
            text.clear();
            crate::flow::schema::turtle::write_instances(&schema, part, &self.resolver, &mut text);
            self.buf.extend_from_slice(b"{\"request\":");
            json::uint(&mut self.buf, request);
            self.buf.extend_from_slice(b",\"chunk\":");
            json::uint(&mut self.buf, n as u64);
            self.buf.extend_from_slice(b",\"schema_version\":");
            json::uint(&mut self.buf, schema.version());
            self.buf.extend_from_slice(b",\"turtle\":");
            json::string(&mut self.buf, &text);
            self.buf.push(b'}');
            self.send(topics::SCHEMA, "instances");
        }
    }

    fn on_schema(&mut self, version: u32) {
        if version <= self.schema_version {
            return;
        }
        self.schema_version = version;
        let shared = self.shared.clone();
        let art = shared.schema.lock().unwrap_or_else(|p| p.into_inner());
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"version\":");
        json::uint(b, u64::from(version));
        b.extend_from_slice(b",\"artifacts_version\":");
        json::uint(b, u64::from(art.version));
        b.extend_from_slice(b",\"classes\":");
        json::uint(b, art.classes as u64);
        b.extend_from_slice(b",\"properties\":");
        json::uint(b, art.properties as u64);
        b.extend_from_slice(b",\"diff\":[");
        for (i, d) in art.diff.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            json::string(b, d);
        }
        b.extend_from_slice(b"],\"turtle\":");
        json::string(b, &art.turtle);
        b.extend_from_slice(b",\"python\":");
        json::string(b, &art.python);
        b.extend_from_slice(b",\"json_schema\":");
        json::string(b, &art.json_schema);
        b.push(b'}');
        drop(art);
        self.send(topics::SCHEMA, "version");
    }

    fn on_tick(&mut self, now_ns: i64) {
        if self.window_start_ns == 0 {
            self.window_start_ns = now_ns;
            self.last_dashboard_ns = now_ns;
            return;
        }
        let window_ns = self.config.window.as_nanos() as i64;
        if now_ns - self.last_dashboard_ns >= self.config.dashboard_interval.as_nanos() as i64 {
            self.last_dashboard_ns = now_ns;
            self.publish_dashboard(now_ns);
        }
        if now_ns - self.window_start_ns >= window_ns {
            self.publish_window(now_ns);
            self.publish_monitoring();
            self.window_start_ns = now_ns;
        }
    }

    fn publish_dashboard(&mut self, now_ns: i64) {
        let elapsed = (now_ns - self.window_start_ns).max(1) as f64 / 1e9;
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"scenario\":");
        json::string(b, self.config.scenario);
        b.extend_from_slice(b",\"time_ns\":");
        json::int(b, now_ns);
        b.extend_from_slice(b",\"events_total\":");
        json::uint(b, self.total_events);
        b.extend_from_slice(b",\"events_per_s\":");
        json::float(b, self.window_events as f64 / elapsed);
        b.extend_from_slice(b",\"active_alerts\":");
        json::int(b, self.active_alerts);
        b.extend_from_slice(b",\"alerts_total\":");
        json::uint(b, self.counters.alerts);
        b.extend_from_slice(b",\"drifts_total\":");
        json::uint(b, self.counters.drifts);
        b.extend_from_slice(b",\"schema_version\":");
        json::uint(b, u64::from(self.schema_version));
        b.extend_from_slice(b",\"feedback_suppressed\":");
        json::uint(b, self.counters.feedback_suppressed);
        b.extend_from_slice(b",\"last_alert\":");
        match (self.last_alert, &self.rules) {
            (Some((rule, key)), Some(rules)) => {
                b.extend_from_slice(b"{\"rule_name\":");
                json::string(b, rules.name(rule));
                b.extend_from_slice(b",\"key\":");
                json::hex(b, key);
                b.push(b'}');
            }
            _ => b.extend_from_slice(b"null"),
        }
        b.push(b'}');
        self.send(topics::DASHBOARD, "update");
    }

    fn publish_window(&mut self, now_ns: i64) {
        let elapsed_s = (now_ns - self.window_start_ns).max(1) as f64 / 1e9;
        let per_s = 1.0 / elapsed_s;
        let mut top = [(0u32, 0usize); 32];
        let n = self.heavy.top(self.config.top_n, &mut top);
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"window_s\":");
        json::float(b, elapsed_s);
        b.extend_from_slice(b",\"events\":");
        json::uint(b, self.window_events);
        b.extend_from_slice(b",\"events_per_s\":");
        json::float(b, self.window_events as f64 * per_s);
        b.extend_from_slice(b",\"per_kind\":{");
        let mut first = true;
        for k in Kind::ALL {
            let c = self.per_kind[k as usize];
            if c == 0 {
                continue;
            }
            if !first {
                b.push(b',');
            }
            first = false;
            json::key(b, k.name());
            json::float(b, c as f64 * per_s);
        }
        b.extend_from_slice(b"},\"per_namespace\":");
        self.per_namespace.write(b, &self.resolver, per_s);
        b.extend_from_slice(b",\"per_group\":");
        self.per_group.write(b, &self.resolver, per_s);
        b.extend_from_slice(b",\"top_keys\":[");
        for (i, &(count, slot)) in top[..n].iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            let (kind, ns, name) = self.heavy.names[slot];
            b.extend_from_slice(b"{\"key\":");
            json::hex(b, self.heavy.keys[slot]);
            b.extend_from_slice(b",\"kind\":");
            json::string(b, kind.name());
            b.extend_from_slice(b",\"namespace\":");
            json::symbol(b, &self.resolver, ns);
            b.extend_from_slice(b",\"name\":");
            json::symbol(b, &self.resolver, name);
            b.extend_from_slice(b",\"count_at_least\":");
            json::uint(b, u64::from(count));
            b.push(b'}');
        }
        b.extend_from_slice(b"]}");
        self.send(topics::ANALYTICS, "window");
        // Reactor summary for the same window: chains that finished (completed + failed)
        // and the lifecycle events of the window.
        let b = &mut self.buf;
        let failed = self.step_events[StepState::Failed as usize];
        b.extend_from_slice(b"{\"finished\":");
        json::uint(b, self.completed_chains + failed);
        b.extend_from_slice(b",\"retried\":");
        json::uint(b, self.step_events[StepState::Retried as usize]);
        b.extend_from_slice(b",\"compensated\":");
        json::uint(b, self.step_events[StepState::Compensated as usize]);
        b.extend_from_slice(b",\"failed\":");
        json::uint(b, failed);
        b.extend_from_slice(b",\"completed\":");
        json::uint(b, self.completed_chains);
        b.extend_from_slice(b",\"mean_duration_ns\":");
        json::float(
            b,
            if self.completed_chains == 0 {
                0.0
            } else {
                self.completed_ns as f64 / self.completed_chains as f64
            },
        );
        b.extend_from_slice(b",\"parked\":");
        json::uint(
            b,
            self.shared
                .reactor_parked
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        b.push(b'}');
        self.send(topics::REACTOR_STEPS, "summary");
        self.window_events = 0;
        self.per_kind = [0; Kind::COUNT];
        self.per_namespace.reset();
        self.per_group.reset();
        self.heavy.reset();
        self.feedback_in_window = 0;
        self.completed_chains = 0;
        self.completed_ns = 0;
        self.step_events = [0; 6];
    }

    fn publish_monitoring(&mut self) {
        let shared = self.shared.clone();
        let Ok(guard) = shared.stats.try_lock() else {
            return;
        };
        let Some(stats) = guard.as_ref() else {
            return;
        };
        write_monitoring(&mut self.buf, self.config.scenario, stats);
        drop(guard);
        self.send(topics::MONITORING, "stats");
    }
}

/// Writes `"kind":…,"namespace":…,"name":…,"key":…` for `r`.
pub fn write_identity(b: &mut Vec<u8>, resolver: &Resolver, r: &Record) {
    json::key(b, "kind");
    json::string(b, r.kind.name());
    b.push(b',');
    json::key(b, "namespace");
    json::symbol(b, resolver, r.namespace);
    b.push(b',');
    json::key(b, "name");
    json::symbol(b, resolver, r.name);
    b.push(b',');
    json::key(b, "key");
    json::hex(b, r.key);
}

/// Writes `r` as the object JSON of `state` and `k8s:events` messages: identity, `seq`,
/// `resource_version` and `fields` (hash fields as 16 hex digits).
pub fn write_object(b: &mut Vec<u8>, resolver: &Resolver, r: &Record) {
    b.push(b'{');
    write_identity(b, resolver, r);
    b.push(b',');
    json::key(b, "seq");
    json::uint(b, r.seq);
    b.push(b',');
    json::key(b, "resource_version");
    json::uint(b, r.resource_version);
    b.push(b',');
    json::key(b, "fields");
    b.push(b'{');
    for (i, f) in r.fields().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        json::key(b, f.id.name());
        write_field(b, resolver, f.id, f.value);
    }
    b.extend_from_slice(b"}}");
}

/// Writes one feedback signal: the object's identity, the rule, its severity, the observed
/// value, the threshold and the record's sequence.
fn write_hit(
    b: &mut Vec<u8>,
    resolver: &Resolver,
    rules: &dyn DescribeRules,
    item: &Item,
    rule: u16,
) {
    let r = &item.record;
    b.push(b'{');
    write_identity(b, resolver, r);
    b.extend_from_slice(b",\"rule\":");
    json::uint(b, u64::from(rule));
    b.extend_from_slice(b",\"rule_name\":");
    json::string(b, rules.name(rule));
    b.extend_from_slice(b",\"severity\":");
    json::string(b, rules.severity(rule).name());
    b.extend_from_slice(b",\"observed\":");
    match rules.observed(rule, item) {
        Some(v) => json::float(b, v),
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(b",\"threshold\":");
    json::float(b, rules.threshold(rule));
    b.extend_from_slice(b",\"seq\":");
    json::uint(b, r.seq);
    b.push(b'}');
}

/// Writes the `monitoring` payload for `stats`.
pub fn write_monitoring(b: &mut Vec<u8>, scenario: &str, stats: &PipelineStats) {
    b.extend_from_slice(b"{\"scenario\":");
    json::string(b, scenario);
    b.extend_from_slice(b",\"stages\":[");
    for (i, s) in stats.stages.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(b"{\"name\":");
        json::string(b, &s.name);
        b.extend_from_slice(b",\"events_in\":");
        json::uint(b, s.events_in);
        b.extend_from_slice(b",\"events_out\":");
        json::uint(b, s.events_out);
        b.extend_from_slice(b",\"budget_ns\":");
        json::uint(b, s.budget.as_nanos() as u64);
        b.extend_from_slice(b",\"over_budget\":");
        json::uint(b, s.over_budget);
        b.extend_from_slice(b",\"p50_ns\":");
        json::uint(b, s.latency.p50_ns);
        b.extend_from_slice(b",\"p99_ns\":");
        json::uint(b, s.latency.p99_ns);
        b.extend_from_slice(b",\"p999_ns\":");
        json::uint(b, s.latency.p999_ns);
        b.extend_from_slice(b",\"max_ns\":");
        json::uint(b, s.latency.max_ns);
        b.push(b'}');
    }
    b.extend_from_slice(b"],\"rings\":[");
    for (i, r) in stats.rings.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(b"{\"name\":");
        json::string(b, &r.name);
        b.extend_from_slice(b",\"capacity\":");
        json::uint(b, r.capacity as u64);
        b.extend_from_slice(b",\"occupancy\":");
        json::uint(b, r.occupancy);
        b.extend_from_slice(b",\"high_water\":");
        json::uint(b, r.high_water);
        b.extend_from_slice(b",\"dropped\":");
        json::uint(b, r.dropped_newest + r.dropped_oldest);
        b.push(b'}');
    }
    b.extend_from_slice(b"]}");
}

fn write_field(b: &mut Vec<u8>, resolver: &Resolver, id: FieldId, v: FieldValue) {
    // Hash fields are u64 bit patterns: hex strings, as keys are.
    if matches!(
        id,
        FieldId::SpecHash | FieldId::LabelsHash | FieldId::RegardingKey
    ) {
        if let Some(bits) = v.as_u64_bits() {
            return json::hex(b, bits);
        }
    }
    json::value(b, resolver, v)
}

#[inline]
fn is_k8s(kind: Kind) -> bool {
    !matches!(kind, Kind::Tick | Kind::Sensor)
}

impl Stage for NotifyStage {
    type In = Item;
    type Out = Item;
    const MAX_FANOUT: usize = 1;
    const IN_PLACE: bool = true;

    fn process(&mut self, item: Item, _out: &mut Emitter<Item>) {
        self.handle(&item);
    }

    /// Publishes from the items where they lie; nothing goes on (notify is the sink).
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        batch.as_slice().iter().for_each(|item| self.handle(item));
        batch.clear();
        true
    }

    fn end_of_batch(&mut self, _out: &mut Emitter<Item>) {
        if self.journal_events.is_some() {
            self.publish_journal_events();
        }
        self.sink.flush();
    }
}

impl NotifyStage {
    /// Everything notify does with one item: topics, windows, replies.
    #[inline]
    fn handle(&mut self, item: &Item) {
        if item.header.schema_version > self.schema_version {
            self.on_schema(item.header.schema_version);
        }
        match item.header.what {
            What::Record => {
                if let Some(p) = &mut self.probe {
                    p.record(item.record.ingest_ns);
                }
                match item.header.change {
                    ChangeKind::None => self.on_error_record(&item.record),
                    _ => self.on_change(item),
                }
                if item.steps.state == StepState::Completed {
                    self.completed_chains += 1;
                    self.completed_ns += u64::from(item.steps.duration_ns);
                }
                if !item.hits.is_empty() {
                    self.on_hits(item);
                }
            }
            What::Step => self.on_step(item),
            What::Reply => self.on_reply(item),
            What::Tick => self.on_tick(item.record.ingest_ns),
            What::Command | What::Unchanged => {}
        }
    }
}
