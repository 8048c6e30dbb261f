//! Sampled per-event traces through the reverse flow, carried across the pipeline threads.
//!
//! * **Sampling (host thread).** [`ReverseFlow`](crate::flow::assembly::ReverseFlow) counts
//!   pushed records down; one in N (the telemetry sampler) takes a free slot of a
//!   preallocated [`TRACE_SLOTS`]-slot table, notes the host's clock reading as the trace's
//!   start, and writes the slot's id into the item's [`TraceTag`](crate::flow::TraceTag).
//!   No slot free: the record goes untraced (counted, `slots_busy`).
//! * **Stage times (pipeline threads).** Every stage is wrapped in [`Traced`]. A per-stage
//!   bit mask says which slots' items are expected at that stage next; while it is 0 the
//!   wrapper costs one relaxed load per batch. Otherwise it finds the traced items in the
//!   batch (the first stage by their position in the host's hand-over stream, later stages
//!   by a scan), reads the clock around the inner stage's `process_batch` or
//!   `process_in_place`, stores `[start, end]` of **the batch that contained the event**
//!   into their slots, and passes each slot's
//!   bit to the next stage when the item was emitted again (or marks the slot *stopped*
//!   when the stage held or dropped it: notify's thread then exports the trace so far, with
//!   `ebbflow.stopped_at`, at its next batch or at close). The item crossing a ring
//!   (release / acquire) carries the slot writes with it to the next thread.
//! * **Finish (notify's thread).** The last stage builds a
//!   [`TraceRecord`] (root from the host's sampling time to
//!   the end of notify's batch, one child per stage), attributes scenario, pattern (the
//!   topic the item's outcome maps to, [`pattern_of`]), kind and key (`namespace/name`),
//!   hands it to the exporter's ring (a full ring drops and counts) and frees the slot.
//! * **Budget breakers.** The host stamps every item with its hand-over time (one clock
//!   read per hand-over of up to [`FlowConfig::max_batch`](crate::flow::assembly::FlowConfig::max_batch) items).
//!   A record whose time from hand-over to the end of notify's batch exceeds the
//!   end-to-end budget ([`TraceOptions::e2e_budget`], by default the sum of the stage
//!   budgets) is exported with `budget_exceeded = true`: a sampled one with all its stage
//!   times; an unsampled one with the root (hand-over → notify end) and notify's batch
//!   only, looked for in one notify batch in [`BREAKER_CHECK_EVERY`] and at most one per
//!   [`TraceOptions::breaker_gap`] (so a saturated flow, where every event waits in a full
//!   ring, does not flood the exporter).
//!
//! Nothing here allocates after [`ReverseFlow::start_with_telemetry`](crate::flow::assembly::ReverseFlow::start_with_telemetry)
//! built the table, the wrappers and the notify-side sink.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::engine::{Clock, Emitter, InPlace, Stage};
use crate::flow::assembly::STAGE_NAMES;
use crate::flow::item::{ChangeKind, Item, What};
use crate::flow::notify::topics;
use crate::sources::intern::{Resolver, Symbol};
use crate::sources::record::{Kind, Op};
use crate::telemetry::{IdGen, InlineKey, Telemetry, TraceAttrs, TraceRecord, TraceSink};

/// Traces in flight at once (one bit each in a `u64` mask).
pub const TRACE_SLOTS: usize = 64;

/// The hand-over stamp is `(ticks >> TAG_SHIFT) as u32`: 64-tick resolution; it wraps after
/// 2^38 ticks (a minute or more at TSC rates), far beyond any budget.
pub const TAG_SHIFT: u32 = 6;

const STAGES: usize = STAGE_NAMES.len();
const SLOT_MASK: u32 = TRACE_SLOTS as u32 - 1;
const GEN_SHIFT: u32 = TRACE_SLOTS.trailing_zeros();

/// How traced events and budget breakers are chosen (the sampler itself is the
/// telemetry configuration's, [`TelemetryConfig::sampler`](crate::telemetry::TelemetryConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// End-to-end budget of a record, host hand-over → end of notify's batch. `None`: the
    /// sum of the flow's stage budgets.
    pub e2e_budget: Option<Duration>,
    /// Least time between two *unsampled* budget-breaker traces.
    pub breaker_gap: Duration,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            e2e_budget: None,
            breaker_gap: Duration::from_millis(100),
        }
    }
}

/// Counters of the flow's tracing, exported as `ebbflow.trace.*` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TracingStats {
    /// Records the sampler chose and that got a slot.
    pub sampled: u64,
    /// Records the sampler chose while every slot was in use (not traced).
    pub slots_busy: u64,
    /// Sampled traces that reached notify and were handed to the exporter's ring (a full
    /// ring then drops them: `TelemetryStats::traces_dropped_queue`).
    pub completed: u64,
    /// Sampled traces whose item a stage held or dropped (not exported; slot freed).
    pub stopped: u64,
    /// Unsampled budget-breaker traces handed to the exporter's ring.
    pub breakers: u64,
    /// Traces (sampled or not) marked `budget_exceeded`.
    pub budget_exceeded: u64,
}

struct Slot {
    /// The id of the trace using the slot; 0 when free.
    id: AtomicU32,
    /// Bit `k`: stage `k`'s times are stored.
    recorded: AtomicU32,
    /// Host clock at sampling.
    start: AtomicU64,
    /// Position of the item in the stream the host hands to the first stage.
    seq: AtomicU64,
    /// Index of the item in the batch the last stage that saw it emitted (where the next
    /// fused stage finds it without a scan).
    pos: AtomicU32,
    /// The record's kind (`Kind as u8`), namespace and name symbols, noted at sampling:
    /// what a stopped trace is described by when no item is at hand.
    kind: AtomicU32,
    namespace: AtomicU32,
    name: AtomicU32,
    /// The stage that held or dropped the item, plus one (0: none).
    stopped_at: AtomicU32,
    ticks: [[AtomicU64; 2]; STAGES],
}

#[derive(Default)]
struct HostCounters {
    sampled: AtomicU64,
    slots_busy: AtomicU64,
}

#[derive(Default)]
struct TailCounters {
    completed: AtomicU64,
    stopped: AtomicU64,
    breakers: AtomicU64,
    budget_exceeded: AtomicU64,
}

/// The slots shared by the host and the stage wrappers.
pub(crate) struct TraceTable {
    slots: Box<[CachePadded<Slot>]>,
    /// Bit `s`: slot `s` is free. Only the host clears bits.
    free: CachePadded<AtomicU64>,
    /// `expect[k]` bit `s`: slot `s`'s item is on its way to stage `k`.
    expect: [CachePadded<AtomicU64>; STAGES],
    /// Bit `s`: slot `s`'s item was held or dropped by a stage before the last; the last
    /// stage's thread exports the trace so far and frees the slot.
    stopped: CachePadded<AtomicU64>,
    host: CachePadded<HostCounters>,
    tail: CachePadded<TailCounters>,
}

impl TraceTable {
    pub(crate) fn new() -> Arc<TraceTable> {
        let slots = (0..TRACE_SLOTS)
            .map(|_| {
                CachePadded::new(Slot {
                    id: AtomicU32::new(0),
                    recorded: AtomicU32::new(0),
                    start: AtomicU64::new(0),
                    seq: AtomicU64::new(0),
                    pos: AtomicU32::new(0),
                    kind: AtomicU32::new(0),
                    namespace: AtomicU32::new(0),
                    name: AtomicU32::new(0),
                    stopped_at: AtomicU32::new(0),
                    ticks: std::array::from_fn(|_| [AtomicU64::new(0), AtomicU64::new(0)]),
                })
            })
            .collect();
        Arc::new(TraceTable {
            slots,
            free: CachePadded::new(AtomicU64::new(u64::MAX)),
            expect: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
            stopped: CachePadded::new(AtomicU64::new(0)),
            host: CachePadded::new(HostCounters::default()),
            tail: CachePadded::new(TailCounters::default()),
        })
    }

    pub(crate) fn stats(&self) -> TracingStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TracingStats {
            sampled: g(&self.host.sampled),
            slots_busy: g(&self.host.slots_busy),
            completed: g(&self.tail.completed),
            stopped: g(&self.tail.stopped),
            breakers: g(&self.tail.breakers),
            budget_exceeded: g(&self.tail.budget_exceeded),
        }
    }

    /// The slot of `id` if that trace still owns it.
    #[inline]
    fn live(&self, id: u32) -> Option<usize> {
        let s = (id & SLOT_MASK) as usize;
        (id != 0 && self.slots[s].id.load(Ordering::Acquire) == id).then_some(s)
    }

    fn release(&self, s: usize) {
        for e in self.expect.iter() {
            e.fetch_and(!(1u64 << s), Ordering::Relaxed);
        }
        self.slots[s].id.store(0, Ordering::Relaxed);
        // Release: the slot's reads above happen before the host reuses it.
        self.free.fetch_or(1u64 << s, Ordering::Release);
    }
}

/// The host side: the sampler's countdown and slot allocation, and hand-over stamps.
pub(crate) struct HostTracer {
    table: Arc<TraceTable>,
    clock: &'static Clock,
    one_in: u64,
    countdown: u64,
    generation: u32,
    /// Items handed to the first stage so far.
    handed: u64,
}

impl HostTracer {
    /// Samples one record in `one_in` (0: none), the first one included.
    pub(crate) fn new(table: Arc<TraceTable>, one_in: u32) -> HostTracer {
        HostTracer {
            table,
            clock: Clock::get(),
            one_in: if one_in == 0 {
                u64::MAX
            } else {
                u64::from(one_in)
            },
            countdown: if one_in == 0 { u64::MAX } else { 1 },
            generation: 0,
            handed: 0,
        }
    }

    /// Called for every pushed record, which will be item `waiting` of the next hand-over:
    /// clears any foreign tag and samples one in N.
    #[inline]
    pub(crate) fn on_push(&mut self, item: &mut Item, waiting: usize) {
        item.trace.id = 0;
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.one_in;
            self.sample(item, self.handed + waiting as u64);
        }
    }

    #[cold]
    fn sample(&mut self, item: &mut Item, seq: u64) {
        let t = &*self.table;
        // Acquire: pairs with the release in `TraceTable::release`.
        let free = t.free.load(Ordering::Acquire);
        if free == 0 {
            t.host.slots_busy.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let s = free.trailing_zeros() as usize;
        t.free.fetch_and(!(1u64 << s), Ordering::Acquire);
        self.generation = self.generation.wrapping_add(1);
        if self.generation >= u32::MAX >> GEN_SHIFT {
            self.generation = 1;
        }
        let id = (self.generation << GEN_SHIFT) | s as u32;
        let slot = &t.slots[s];
        slot.recorded.store(0, Ordering::Relaxed);
        slot.start.store(self.clock.ticks(), Ordering::Relaxed);
        slot.seq.store(seq, Ordering::Relaxed);
        let r = &item.record;
        slot.kind.store(u32::from(r.kind as u8), Ordering::Relaxed);
        slot.namespace.store(r.namespace.id(), Ordering::Relaxed);
        slot.name.store(r.name.id(), Ordering::Relaxed);
        slot.stopped_at.store(0, Ordering::Relaxed);
        slot.id.store(id, Ordering::Release);
        t.expect[0].fetch_or(1u64 << s, Ordering::Release);
        t.host.sampled.fetch_add(1, Ordering::Relaxed);
        item.trace.id = id;
    }

    /// Stamps `items`, about to be handed to the first stage, with the hand-over time
    /// (one clock read).
    #[inline]
    pub(crate) fn stamp(&mut self, items: &mut [Item]) {
        self.handed += items.len() as u64;
        let now = ((self.clock.ticks() >> TAG_SHIFT) as u32).max(1);
        for item in items {
            item.trace.handed = now;
        }
    }
}

/// Tracing for a chain of the flow's stages assembled by hand (benchmarks, single-threaded
/// [`InlinePipeline`](crate::engine::InlinePipeline) runs): the slot table, the host side
/// and the stage wrappers, as [`ReverseFlow::start_with_telemetry`](crate::flow::assembly::ReverseFlow::start_with_telemetry)
/// sets them up.
pub struct FlowTracing {
    table: Arc<TraceTable>,
    pub(crate) host: HostTracer,
}

impl FlowTracing {
    /// Tracing that samples one record in `one_in` (0: none; budget breakers still go).
    pub fn new(one_in: u32) -> FlowTracing {
        let table = TraceTable::new();
        FlowTracing {
            host: HostTracer::new(table.clone(), one_in),
            table,
        }
    }

    /// `inner` as stage `stage` (not the last) with tracing.
    pub fn wrap<S>(&self, inner: S, stage: usize) -> Traced<S> {
        Traced::new(inner, stage, Some(self.table.clone()), None)
    }

    /// `inner` as the last stage (notify): it finishes traces into a ring of `telemetry`
    /// and looks for budget breakers over `e2e_budget`, at most one per `breaker_gap`.
    pub fn wrap_last<S>(
        &self,
        inner: S,
        telemetry: &Telemetry,
        resolver: Resolver,
        scenario: &'static str,
        e2e_budget: Duration,
        breaker_gap: Duration,
    ) -> Traced<S> {
        let f = Finisher::new(
            telemetry.sink(),
            resolver,
            scenario,
            e2e_budget,
            breaker_gap,
        );
        Traced::new(inner, STAGES - 1, Some(self.table.clone()), Some(f))
    }

    /// What the host does to items it hands to the first stage: samples records (one in
    /// N) and stamps every item with the hand-over time.
    pub fn hand_over(&mut self, items: &mut [Item]) {
        for (i, item) in items.iter_mut().enumerate() {
            if item.header.what == What::Record {
                self.host.on_push(item, i);
            }
        }
        self.host.stamp(items);
    }

    /// The tracing counters.
    pub fn stats(&self) -> TracingStats {
        self.table.stats()
    }
}

/// What the last stage needs to finish traces.
pub(crate) struct Finisher {
    sink: TraceSink,
    ids: IdGen,
    resolver: Resolver,
    scenario: &'static str,
    budget_ticks: u64,
    budget_stamp: u32,
    gap_ticks: u64,
    next_breaker: u64,
    batches: u32,
}

/// Notify looks for budget breakers in one batch in this many.
pub const BREAKER_CHECK_EVERY: u32 = 16;

impl Finisher {
    pub(crate) fn new(
        sink: TraceSink,
        resolver: Resolver,
        scenario: &'static str,
        e2e_budget: Duration,
        breaker_gap: Duration,
    ) -> Finisher {
        let clock = Clock::get();
        let budget_ticks = clock.us_to_ticks(e2e_budget.as_secs_f64() * 1e6).max(1);
        Finisher {
            sink,
            ids: IdGen::new(),
            resolver,
            scenario,
            budget_ticks,
            budget_stamp: (budget_ticks >> TAG_SHIFT).min(u64::from(u32::MAX / 2)) as u32,
            gap_ticks: clock.us_to_ticks(breaker_gap.as_secs_f64() * 1e6),
            next_breaker: 0,
            batches: 0,
        }
    }

    /// Whether this batch is one in [`BREAKER_CHECK_EVERY`].
    #[inline]
    fn check_due(&mut self) -> bool {
        self.batches = self.batches.wrapping_add(1);
        self.batches.is_multiple_of(BREAKER_CHECK_EVERY)
    }

    fn attrs(&self, item: &Item, budget_exceeded: bool) -> TraceAttrs {
        let r = &item.record;
        let ns = self.resolver.resolve(r.namespace).unwrap_or("");
        let name = self.resolver.resolve(r.name).unwrap_or("");
        TraceAttrs {
            scenario: self.scenario,
            pattern: pattern_of(item),
            kind: r.kind.name(),
            key: InlineKey::join(&[ns, name], "/"),
            budget_exceeded,
            stopped_at: "",
        }
    }

    /// Exports the traces that stopped before the last stage (one relaxed load when there
    /// are none): the root from sampling to the end of the batch of the stage that held or
    /// dropped the item, the stages it went through, `ebbflow.stopped_at` naming that
    /// stage and `ebbflow.pattern` = `none`. Frees their slots.
    #[inline]
    fn export_stopped(&mut self, table: &TraceTable) {
        if table.stopped.load(Ordering::Relaxed) != 0 {
            self.export_stopped_now(table);
        }
    }

    #[cold]
    fn export_stopped_now(&mut self, table: &TraceTable) {
        // Acquire: pairs with the stopping stage's release; its slot writes are visible.
        let mut bits = table.stopped.swap(0, Ordering::Acquire);
        while bits != 0 {
            let s = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let slot = &table.slots[s];
            let Some(stage) = (slot.stopped_at.load(Ordering::Relaxed) as usize).checked_sub(1)
            else {
                continue;
            };
            let kind = slot.kind.load(Ordering::Relaxed);
            let kind = Kind::ALL
                .iter()
                .find(|k| u32::from(**k as u8) == kind)
                .map_or("Unknown", |k| k.name());
            let sym = |a: &AtomicU32| Symbol::from_id(a.load(Ordering::Relaxed));
            let ns = self.resolver.resolve(sym(&slot.namespace)).unwrap_or("");
            let name = self.resolver.resolve(sym(&slot.name)).unwrap_or("");
            let attrs = TraceAttrs {
                scenario: self.scenario,
                pattern: "none",
                kind,
                key: InlineKey::join(&[ns, name], "/"),
                budget_exceeded: false,
                stopped_at: STAGE_NAMES[stage.min(STAGES - 1)],
            };
            let end = slot.ticks[stage.min(STAGES - 1)][1].load(Ordering::Relaxed);
            let rec = self.record(table, s, attrs, end);
            table.release(s);
            table.tail.stopped.fetch_add(1, Ordering::Relaxed);
            self.sink.submit(rec);
        }
    }

    /// The trace in slot `s` as recorded so far, ending at `end`.
    fn record(&mut self, table: &TraceTable, s: usize, attrs: TraceAttrs, end: u64) -> TraceRecord {
        let slot = &table.slots[s];
        let mut rec = TraceRecord::new(&STAGE_NAMES, self.ids.next_u128(), self.ids.next_u64());
        rec.start = slot.start.load(Ordering::Relaxed);
        rec.end = end;
        let recorded = slot.recorded.load(Ordering::Relaxed);
        for (k, t) in slot.ticks.iter().enumerate() {
            if recorded & (1 << k) != 0 {
                rec.set_stage(
                    k,
                    t[0].load(Ordering::Relaxed),
                    t[1].load(Ordering::Relaxed),
                );
            }
        }
        rec.attrs = attrs;
        rec
    }

    /// Exports the sampled trace in slot `s` (its item, described by `attrs`, finished
    /// notify's batch at `end`) and frees the slot.
    fn finish(&mut self, table: &TraceTable, s: usize, mut attrs: TraceAttrs, end: u64) {
        let start = table.slots[s].start.load(Ordering::Relaxed);
        attrs.budget_exceeded = end.wrapping_sub(start) > self.budget_ticks;
        let rec = self.record(table, s, attrs, end);
        table.release(s);
        table.tail.completed.fetch_add(1, Ordering::Relaxed);
        if attrs.budget_exceeded {
            table.tail.budget_exceeded.fetch_add(1, Ordering::Relaxed);
        }
        self.sink.submit(rec);
    }

    /// One unsampled record of `inputs` older than the end-to-end budget at `now` (clock
    /// ticks), if the breaker gap has passed: its attributes and hand-over stamp.
    #[inline]
    fn breaker_candidate(&mut self, inputs: &[Item], now: u64) -> Option<(TraceAttrs, u32)> {
        if now < self.next_breaker {
            return None;
        }
        let stamp = (now >> TAG_SHIFT) as u32;
        let item = inputs.iter().find(|i| {
            i.trace.handed != 0
                && i.trace.id == 0
                && i.header.what == What::Record
                && stamp.wrapping_sub(i.trace.handed) > self.budget_stamp
        })?;
        self.next_breaker = now.saturating_add(self.gap_ticks);
        Some((self.attrs(item, true), item.trace.handed))
    }

    /// Exports a budget breaker found by [`breaker_candidate`](Self::breaker_candidate) in
    /// a batch notify ran from `t0` to `t1`: root from its hand-over to `t1`, notify's
    /// batch as the only child.
    fn breaker(&mut self, table: &TraceTable, attrs: TraceAttrs, handed: u32, t0: u64, t1: u64) {
        let age = u64::from(((t1 >> TAG_SHIFT) as u32).wrapping_sub(handed)) << TAG_SHIFT;
        let mut rec = TraceRecord::new(&STAGE_NAMES, self.ids.next_u128(), self.ids.next_u64());
        rec.start = t1.saturating_sub(age).min(t0);
        rec.end = t1;
        rec.set_stage(STAGES - 1, t0, t1);
        rec.attrs = attrs;
        table.tail.breakers.fetch_add(1, Ordering::Relaxed);
        table.tail.budget_exceeded.fetch_add(1, Ordering::Relaxed);
        self.sink.submit(rec);
    }
}

/// The topic an item's outcome maps to (`ebbflow.pattern`): `feedback` for a record that
/// raised or cleared alerts, `k8s:events` for a Kubernetes change, `analytics` for ticks
/// and sensor readings (they feed the windowed analytics and the dashboard), `recovery`
/// for a watch error, `reactor:steps` for a step event, `commands` for a reply,
/// `dashboard` for a tick item, `none` for what publishes nothing (unchanged records,
/// commands on their way).
pub fn pattern_of(item: &Item) -> &'static str {
    match item.header.what {
        What::Record => {
            if !item.hits.is_empty() {
                topics::FEEDBACK
            } else if item.header.change == ChangeKind::None && item.record.op == Op::Error {
                topics::RECOVERY
            } else if matches!(item.record.kind, Kind::Tick | Kind::Sensor) {
                topics::ANALYTICS
            } else if item.header.change == ChangeKind::None {
                "none"
            } else {
                topics::K8S_EVENTS
            }
        }
        What::Step => topics::REACTOR_STEPS,
        What::Reply => topics::COMMANDS,
        What::Tick => topics::DASHBOARD,
        What::Command | What::Unchanged => "none",
    }
}

/// A traced item found in a batch before the stage ran.
#[derive(Clone, Copy)]
struct Found {
    slot: usize,
    id: u32,
    /// Index in the stage's input batch.
    index: usize,
    /// Its attributes, taken at the last stage (which may consume the item in place).
    attrs: TraceAttrs,
}

/// A reverse-flow stage with tracing around it (see the [module docs](self)). With
/// telemetry off (no table) it is a direct call to the inner stage plus one branch per
/// batch; with telemetry on and no traced item due at this stage, one relaxed load more
/// (and, at notify, a breaker check in one batch in [`BREAKER_CHECK_EVERY`]). Forwards
/// the inner stage's in-place processing ([`Stage::IN_PLACE`]).
pub struct Traced<S> {
    inner: S,
    stage: usize,
    table: Option<Arc<TraceTable>>,
    clock: &'static Clock,
    finisher: Option<Box<Finisher>>,
    /// Items this stage has consumed (the first stage finds traced items by position).
    consumed: u64,
    /// Traced items of the current batch (capacity [`TRACE_SLOTS`], preallocated).
    found: Vec<Found>,
    /// A budget breaker of the current batch.
    breaker: Option<(TraceAttrs, u32)>,
}

impl<S> Traced<S> {
    /// `inner` as stage `stage` (index into [`STAGE_NAMES`]) of a flow without tracing.
    pub fn off(inner: S, stage: usize) -> Traced<S> {
        Traced {
            inner,
            stage: stage.min(STAGES - 1),
            table: None,
            clock: Clock::get(),
            finisher: None,
            consumed: 0,
            found: Vec::new(),
            breaker: None,
        }
    }

    pub(crate) fn new(
        inner: S,
        stage: usize,
        table: Option<Arc<TraceTable>>,
        finisher: Option<Finisher>,
    ) -> Traced<S> {
        let found = if table.is_some() {
            Vec::with_capacity(TRACE_SLOTS)
        } else {
            Vec::new()
        };
        Traced {
            finisher: finisher.map(Box::new),
            table,
            found,
            ..Traced::off(inner, stage)
        }
    }

    /// The wrapped stage.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Before the inner stage runs on `inputs`: counts them, notes the traced items
    /// expected here (the first stage sees exactly the host's hand-over stream, so it
    /// finds them by position, one check per expected slot; later stages scan the batch,
    /// only while a traced item is on its way to them) and, at notify, a budget breaker.
    /// Returns the start time when the batch is to be timed.
    #[inline]
    fn prepare(&mut self, table: &TraceTable, inputs: &[Item]) -> Option<u64> {
        let first = self.consumed;
        self.consumed += inputs.len() as u64;
        let expected = table.expect[self.stage].load(Ordering::Acquire);
        let check = self.finisher.as_mut().is_some_and(|f| f.check_due());
        if expected == 0 && !check {
            return None;
        }
        self.found.clear();
        if expected != 0 {
            self.collect(table, inputs, expected, first);
        }
        if self.found.is_empty() && !check {
            return None;
        }
        let t0 = self.clock.ticks();
        if let (true, Some(f)) = (check, self.finisher.as_mut()) {
            self.breaker = f.breaker_candidate(inputs, t0);
        }
        Some(t0)
    }

    /// Finds the traced items of `inputs` whose slots are in `expected`: the first stage
    /// by position in the host's hand-over stream; later stages first where the previous
    /// stage emitted them (a fused stage's input is the previous stage's output), then,
    /// for any not there (the item crossed a ring), by a scan of the batch.
    #[cold]
    fn collect(&mut self, table: &TraceTable, inputs: &[Item], expected: u64, first: u64) {
        let mut missing = 0u64;
        let mut bits = expected;
        while bits != 0 {
            let s = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let slot = &table.slots[s];
            let at = if self.stage == 0 {
                let seq = slot.seq.load(Ordering::Relaxed);
                if seq.wrapping_sub(first) >= inputs.len() as u64 {
                    continue; // still on its way
                }
                (seq - first) as usize
            } else {
                slot.pos.load(Ordering::Relaxed) as usize
            };
            match inputs.get(at) {
                Some(item) if table.live(item.trace.id) == Some(s) => self.note(item, at, s),
                _ if self.stage > 0 => missing |= 1u64 << s,
                _ => {}
            }
        }
        if missing == 0 {
            return;
        }
        for (at, item) in inputs.iter().enumerate() {
            let id = item.trace.id;
            if id != 0 && missing & (1u64 << (id & SLOT_MASK)) != 0 {
                if let Some(s) = table.live(id) {
                    missing &= !(1u64 << s);
                    self.note(item, at, s);
                }
            }
        }
    }

    fn note(&mut self, item: &Item, index: usize, slot: usize) {
        if self.found.len() < self.found.capacity() {
            let attrs = match &self.finisher {
                Some(f) => f.attrs(item, false),
                None => TraceAttrs::default(),
            };
            self.found.push(Found {
                slot,
                id: item.trace.id,
                index,
                attrs,
            });
        }
    }

    /// After the inner stage ran from `t0` to `t1` and left `outputs`: stores the stage
    /// times of the traced items, hands each on to the next stage (or finishes it at
    /// notify, or frees its slot when the stage did not pass it on), and exports the
    /// batch's budget breaker.
    /// `outputs`: where the stage emitted; `after`: what an in-place stage emitted after
    /// its batch (the next stage gets it as a batch of its own).
    fn complete(&mut self, table: &TraceTable, outputs: &[Item], after: &[Item], t0: u64, t1: u64) {
        let stage = self.stage;
        let last = stage == STAGES - 1;
        for i in 0..self.found.len() {
            let Found {
                slot: s,
                id,
                index,
                attrs,
            } = self.found[i];
            let bit = 1u64 << s;
            let slot = &table.slots[s];
            slot.ticks[stage][0].store(t0, Ordering::Relaxed);
            slot.ticks[stage][1].store(t1, Ordering::Relaxed);
            slot.recorded.fetch_or(1 << stage, Ordering::Relaxed);
            table.expect[stage].fetch_and(!bit, Ordering::Relaxed);
            // Where the stage emitted it: at the same index when it kept every item,
            // otherwise found by a scan.
            let emitted = if last {
                None
            } else if outputs.get(index).is_some_and(|o| o.trace.id == id) {
                Some(index)
            } else {
                outputs
                    .iter()
                    .position(|o| o.trace.id == id)
                    .or_else(|| after.iter().position(|o| o.trace.id == id))
            };
            if let (true, Some(f)) = (last, self.finisher.as_mut()) {
                f.finish(table, s, attrs, t1);
            } else if let Some(at) = emitted {
                slot.pos.store(at as u32, Ordering::Relaxed);
                table.expect[stage + 1].fetch_or(bit, Ordering::Release);
            } else {
                // Held (a retry, a window) or dropped (an unchanged record): the last
                // stage's thread exports what the trace has so far.
                slot.stopped_at.store(stage as u32 + 1, Ordering::Relaxed);
                table.stopped.fetch_or(bit, Ordering::Release);
            }
        }
        self.found.clear();
        if let (Some((attrs, handed)), Some(f)) = (self.breaker.take(), self.finisher.as_mut()) {
            f.breaker(table, attrs, handed, t0, t1);
        }
    }

    /// Forgets what [`prepare`](Self::prepare) noted for a batch the inner stage declined
    /// to process in place (it comes back through `process_batch`).
    fn undo(&mut self, n: usize) {
        self.consumed -= n as u64;
        self.found.clear();
        self.breaker = None;
    }
}

impl<S: Stage<In = Item, Out = Item>> Stage for Traced<S> {
    type In = Item;
    type Out = Item;
    const MAX_FANOUT: usize = S::MAX_FANOUT;
    const IN_PLACE: bool = S::IN_PLACE;

    #[inline]
    fn process(&mut self, input: Item, out: &mut Emitter<Item>) {
        if self.table.is_none() {
            self.inner.process(input, out);
        } else {
            self.process_batch(std::slice::from_ref(&input), out);
        }
    }

    #[inline]
    fn process_batch(&mut self, inputs: &[Item], out: &mut Emitter<Item>) {
        let Some(table) = self.table.take() else {
            return self.inner.process_batch(inputs, out);
        };
        let before = out.len();
        match self.prepare(&table, inputs) {
            None => self.inner.process_batch(inputs, out),
            Some(t0) => {
                self.inner.process_batch(inputs, out);
                let t1 = self.clock.ticks();
                self.complete(&table, &out.as_slice()[before..], &[], t0, t1);
            }
        }
        self.table = Some(table);
    }

    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        after: &mut Emitter<Item>,
    ) -> bool {
        let Some(table) = self.table.take() else {
            return self.inner.process_in_place(batch, after);
        };
        let n = batch.as_slice().len();
        let before = after.len();
        let done = match self.prepare(&table, batch.as_slice()) {
            None => self.inner.process_in_place(batch, after),
            Some(t0) => {
                let done = self.inner.process_in_place(batch, after);
                if done {
                    let t1 = self.clock.ticks();
                    self.complete(
                        &table,
                        batch.as_slice(),
                        &after.as_slice()[before..],
                        t0,
                        t1,
                    );
                }
                done
            }
        };
        if !done {
            self.undo(n);
        }
        self.table = Some(table);
        done
    }

    #[inline]
    fn end_of_batch(&mut self, out: &mut Emitter<Item>) {
        self.inner.end_of_batch(out);
        if let (Some(table), Some(f)) = (self.table.as_deref(), self.finisher.as_mut()) {
            f.export_stopped(table);
        }
    }

    /// The inner stage's idle turn; at notify, traces that stopped are exported too (so
    /// they do not wait for the next batch).
    #[inline]
    fn on_idle(&mut self, out: &mut Emitter<Item>) {
        self.inner.on_idle(out);
        if let (Some(table), Some(f)) = (self.table.as_deref(), self.finisher.as_mut()) {
            f.export_stopped(table);
        }
    }

    #[inline]
    fn on_close(&mut self, out: &mut Emitter<Item>) -> bool {
        let more = self.inner.on_close(out);
        if let (Some(table), Some(f)) = (self.table.as_deref(), self.finisher.as_mut()) {
            f.export_stopped(table);
        }
        more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::item::RuleHits;
    use crate::sources::record::Record;

    struct InPlaceStage;
    impl Stage for InPlaceStage {
        type In = Item;
        type Out = Item;
        const IN_PLACE: bool = true;
        fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
            out.emit(item);
        }
    }

    #[test]
    fn the_wrapper_keeps_the_inner_stage_s_in_place_processing_and_fanout() {
        const { assert!(<Traced<InPlaceStage> as Stage>::IN_PLACE) };
        assert_eq!(<Traced<InPlaceStage> as Stage>::MAX_FANOUT, 1);
    }

    #[test]
    fn patterns_follow_what_notify_publishes() {
        let mut tick = Item::from_record(Record::new(Kind::Tick, Op::Added));
        assert_eq!(pattern_of(&tick), "analytics");
        tick.hits = RuleHits::default();
        tick.hits.push(3);
        assert_eq!(pattern_of(&tick), "feedback");
        let mut pod = Item::from_record(Record::new(Kind::Pod, Op::Modified));
        assert_eq!(pattern_of(&pod), "none", "not yet classified by resources");
        pod.header.change = ChangeKind::Updated;
        assert_eq!(pattern_of(&pod), "k8s:events");
        let error = Item::from_record(Record::new(Kind::Pod, Op::Error));
        assert_eq!(pattern_of(&error), "recovery");
        assert_eq!(pattern_of(&Item::tick(1)), "dashboard");
    }

    #[test]
    fn the_host_samples_one_in_n_from_the_first_and_counts_busy_slots() {
        let table = TraceTable::new();
        let mut host = HostTracer::new(table.clone(), 3);
        let mut ids = Vec::new();
        for i in 0..9 {
            let mut item = Item::from_record(Record::new(Kind::Tick, Op::Added));
            item.trace.id = 12345; // a foreign tag is cleared
            host.on_push(&mut item, i);
            ids.push(item.trace.id);
        }
        let sampled: Vec<usize> = (0..9).filter(|&i| ids[i] != 0).collect();
        assert_eq!(sampled, [0, 3, 6]);
        for &i in &sampled {
            let s = table.live(ids[i]).expect("slot owned by the trace");
            assert_eq!(table.slots[s].seq.load(Ordering::Relaxed), i as u64);
            assert!(table.expect[0].load(Ordering::Relaxed) & (1 << s) != 0);
        }
        assert_eq!(table.stats().sampled, 3);
        // Every slot taken: the next chosen record goes untraced, counted.
        table.free.store(0, Ordering::Relaxed);
        let mut item = Item::from_record(Record::new(Kind::Tick, Op::Added));
        for _ in 0..3 {
            host.on_push(&mut item, 0);
        }
        assert_eq!(item.trace.id, 0);
        assert_eq!(table.stats().slots_busy, 1);
        // A freed slot's old id no longer matches.
        let s = table.live(ids[0]).unwrap();
        table.release(s);
        assert_eq!(table.live(ids[0]), None);
        assert_eq!(table.expect[0].load(Ordering::Relaxed) & (1 << s), 0);
    }
}
