//! [`ReverseFlow`]: the whole chain — journal → reactor → resources → distribution → bitactor →
//! schema → turtle → typer → notify — assembled on the engine from a [`FlowConfig`].
//!
//! The host thread is the *source* (stage 0): it decodes or generates records and pushes
//! them with [`ReverseFlow::push_record`], pushes a [`tick`](ReverseFlow::tick) now and then
//! (windows and coalesced topics close on ticks), and submits client commands with
//! [`ReverseFlow::submit`], which parses them, registers them with the [`CommandDesk`] and
//! sends them down the pipeline in order with the data.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{
    BuildError, Chain, Input, Output, Pinning, Pipeline, PipelineBuilder, PipelineError,
    PipelineStats, Placement, Timing, WaitStrategy,
};
use crate::flow::bitactor::{ActorConfig, BitActor, RuleCatalog, RuleSet, RulesError};
use crate::flow::commands::{parse_command, CommandDesk, CommandParseError, Outcome};
use crate::flow::distribution::{Distribution, Sharded};
use crate::flow::item::{Item, Severity};
use crate::flow::journaling::{JournalingCounters, JournalingStage};
use crate::flow::notify::{DescribeRules, NotifyConfig, NotifyStage, Publish, Shared};
use crate::flow::reactor::steps::{FaultInjector, Validate};
use crate::flow::reactor::{
    ChainConfig, ConfigErrors, Reactor, ReactorConfig, Timing as ReactorTiming,
};
use crate::flow::resources::{ResourcesStage, SnapshotSlot, DEFAULT_CAPACITY};
use crate::flow::stages::{BitActorStage, ReactorStage, SchemaStage, TurtleStage, TyperStage};
use crate::flow::tracing::{FlowTracing, TraceOptions, Traced, TracingStats};
use crate::journal::Journal;
use crate::sources::intern::Interner;
use crate::sources::record::{Kind, Record};
use crate::telemetry::{MetricsSnapshot, Telemetry};

/// The stages, in order, as named in statistics.
pub const STAGE_NAMES: [&str; 9] = [
    "journal",
    "reactor",
    "resources",
    "distribution",
    "bitactor",
    "schema",
    "turtle",
    "typer",
    "notify",
];

/// Most bitactor shards (see [`Sharded`]).
pub const MAX_SHARDS: usize = 8;

/// Where the stages run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FlowPlacement {
    /// All nine stages on one pipeline thread (the host is the second thread). The
    /// default: on a 2-core machine the hot path owns one core, the source the other.
    #[default]
    Fused,
    /// Two pipeline threads: journal, reactor, resources and distribution on the first;
    /// the rest on the second.
    Split,
    /// One thread per stage (for machines with ≥ 10 cores).
    PerStage,
    /// The first `stages` stages (journal first) run on the host thread, inside the
    /// pushes; the rest fused on one pipeline thread. On a 2-core machine both cores then
    /// run stages, with one ring hop and no third thread: the host, otherwise waiting for
    /// room in the first ring, does the front stages' work ([`HOST_PLACEMENT_STAGES`] is
    /// the measured best split for the trading scenario; see `docs/benchmarks.md`). The
    /// host's pushes take longer, and the reactor's retries run when the host pushes,
    /// ticks or calls [`ReverseFlow::flush`] (on a pipeline thread they also run on its
    /// idle turns).
    Host {
        /// Stages on the host (1..=8).
        stages: usize,
    },
}

/// Stages [`FlowPlacement::Host`] runs on the host by default: journal, reactor and
/// resources.
pub const HOST_PLACEMENT_STAGES: usize = 3;

impl FlowPlacement {
    fn engine(&self) -> Placement {
        match self {
            FlowPlacement::Fused | FlowPlacement::Host { .. } => Placement::Fused,
            FlowPlacement::Split => Placement::Groups(vec![4, 5]),
            FlowPlacement::PerStage => Placement::PerStage,
        }
    }

    /// Stages the host runs (0 unless [`FlowPlacement::Host`]).
    pub fn host_stages(&self) -> usize {
        match self {
            FlowPlacement::Host { stages } => *stages,
            _ => 0,
        }
    }
}

/// Latency budgets per event, per stage (in [`STAGE_NAMES`] order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budgets(pub [Duration; 9]);

impl Default for Budgets {
    /// 2 µs for the journal (a memory-mapped append; a policy that syncs per batch
    /// exceeds it by design), reactor and resources; 1 µs for distribution, bitactor,
    /// schema, turtle and typer (a no-op check when the schema does not change); 5 µs for
    /// notify (it encodes messages).
    fn default() -> Self {
        let us = Duration::from_micros;
        Budgets([
            us(2),
            us(2),
            us(2),
            us(1),
            us(1),
            us(1),
            us(1),
            us(1),
            us(5),
        ])
    }
}

/// Everything that shapes a [`ReverseFlow`].
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Scenario name (in messages).
    pub scenario: &'static str,
    /// The rules the bitactor evaluates.
    pub rules: RuleSet,
    /// Where stages run.
    pub placement: FlowPlacement,
    /// Pin pipeline threads.
    pub pinning: Pinning,
    /// How idle pipeline threads wait.
    pub wait: WaitStrategy,
    /// Stage timing.
    pub timing: Timing,
    /// Ring slots between threads.
    pub ring_capacity: usize,
    /// Most items a stage gets per batch, and the host's hand-over size. Each fused stage
    /// has an output buffer of this many 256-byte items; small enough, all of them stay in
    /// the core's caches.
    pub max_batch: usize,
    /// Bitactor shards (1..=[`MAX_SHARDS`]).
    pub shards: usize,
    /// Resource store slots.
    pub store_capacity: usize,
    /// Bitactor settings.
    pub actor: ActorConfig,
    /// Injected transient reactor faults per million records (0 = none).
    pub transient_faults_per_million: u32,
    /// Injected permanent reactor faults per million records (0 = none).
    pub permanent_faults_per_million: u32,
    /// Seed of injected faults and retry jitter.
    pub seed: u64,
    /// How much the reactor measures per chain run: `PerStep` (default: lifecycle events
    /// carry each step's duration, 3–4 clock reads per record), `Chain` (2 reads) or `Off`
    /// (durations are 0; for the highest rates).
    pub reactor_timing: ReactorTiming,
    /// Notify settings.
    pub notify: NotifyConfig,
    /// Stage budgets.
    pub budgets: Budgets,
}

impl FlowConfig {
    /// A configuration with defaults around `rules`.
    pub fn new(scenario: &'static str, rules: RuleSet) -> FlowConfig {
        FlowConfig {
            scenario,
            rules,
            placement: FlowPlacement::Fused,
            pinning: Pinning::None,
            wait: WaitStrategy::SpinYield,
            timing: Timing::PerBatch,
            ring_capacity: 4096,
            max_batch: DEFAULT_MAX_BATCH,
            shards: 1,
            store_capacity: DEFAULT_CAPACITY,
            actor: ActorConfig::default(),
            transient_faults_per_million: 0,
            permanent_faults_per_million: 0,
            seed: 1,
            reactor_timing: ReactorTiming::PerStep,
            notify: NotifyConfig {
                scenario,
                ..NotifyConfig::default()
            },
            budgets: Budgets::default(),
        }
    }
}

/// Why a [`ReverseFlow`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The rules file is invalid.
    #[error("rules: {0}")]
    Rules(#[from] RulesError),
    /// The rules do not compile.
    #[error("rules do not compile: {0}")]
    Compile(String),
    /// The reactor configuration is invalid.
    #[error("reactor: {0}")]
    Reactor(#[from] ConfigErrors),
    /// The pipeline configuration is invalid.
    #[error("pipeline: {0}")]
    Build(#[from] BuildError),
    /// Shards out of range.
    #[error("shards must be 1..={MAX_SHARDS}, got {0}")]
    Shards(usize),
}

impl DescribeRules for RuleCatalog {
    fn rule_count(&self) -> usize {
        self.len()
    }
    fn name(&self, rule: u16) -> &str {
        RuleCatalog::name(self, rule).unwrap_or("?")
    }
    fn severity(&self, rule: u16) -> Severity {
        RuleCatalog::severity(self, rule).unwrap_or_default()
    }
    fn hint(&self, rule: u16) -> &str {
        RuleCatalog::hint(self, rule).unwrap_or("")
    }
    fn threshold(&self, rule: u16) -> f64 {
        RuleCatalog::threshold(self, rule).unwrap_or(f64::NAN)
    }
    fn observed(&self, rule: u16, item: &Item) -> Option<f64> {
        RuleCatalog::observed(self, rule, item)
    }
}

/// The default reactor: a Kubernetes chain (validate, then injected faults if
/// configured), a market chain and a sensor chain (validate).
pub fn default_reactor(config: &FlowConfig) -> Result<Reactor, ConfigErrors> {
    let k8s_validate = Validate {
        // Watch errors go on to notify (a 410 becomes a `relist` recovery message).
        reject_errors: false,
        ..Validate::default()
    };
    // Every Kubernetes kind (and unknown kinds): all but ticks and sensor readings.
    let mut k8s_kinds = [Kind::Unknown; Kind::COUNT];
    let mut n = 0;
    for k in Kind::ALL {
        if !matches!(k, Kind::Tick | Kind::Sensor) {
            k8s_kinds[n] = k;
            n += 1;
        }
    }
    let mut k8s = ChainConfig::new("k8s")
        .kinds(&k8s_kinds[..n])
        .step(k8s_validate);
    if config.transient_faults_per_million > 0 || config.permanent_faults_per_million > 0 {
        k8s = k8s.step(FaultInjector::new(
            config.transient_faults_per_million,
            config.permanent_faults_per_million,
            config.seed,
        ));
    }
    let market = ChainConfig::new("market")
        .kinds(&[Kind::Tick])
        .step(Validate::default());
    let sensor = ChainConfig::new("sensor")
        .kinds(&[Kind::Sensor])
        .step(Validate::default());
    let cfg = ReactorConfig::builder()
        .chain(k8s)
        .chain(market)
        .chain(sensor)
        .seed(config.seed)
        .timing(config.reactor_timing)
        .build()?;
    Ok(Reactor::new(cfg))
}

/// The flow no longer accepts items: it is shutting down or a stage failed (see
/// [`ReverseFlow::failure`]). The item was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reverse flow no longer accepts items")]
pub struct FlowClosed;

/// Default [`FlowConfig::max_batch`]: the engine's default (256 items, 64 KiB per stage
/// buffer). 32 measured no faster on the 2-vCPU VM.
pub const DEFAULT_MAX_BATCH: usize = crate::engine::DEFAULT_MAX_BATCH;

/// A running reverse flow.
///
/// Pushed items are gathered on the host side and handed to the pipeline
/// [`FlowConfig::max_batch`] at a time: one pass through the engine's shutdown gate and one
/// ring commit per batch, and full batches for every stage at high rates (a hand-over of 64
/// instead measured 20–25 % slower flat out on the 2-vCPU VM; `docs/benchmarks.md`).
/// [`flush`](Self::flush) hands over what is gathered at once; [`tick`](Self::tick), [`submit`](Self::submit) and
/// [`finish`](Self::finish) flush too. A host that pushes at a low rate and wants each item
/// on its way immediately calls `flush` after each push.
pub struct ReverseFlow {
    /// The rules as loaded (definitions; the live values are in `catalog`).
    rule_set: RuleSet,
    pending: Vec<Item>,
    /// Items gathered before a hand-over ([`FlowConfig::max_batch`]).
    host_batch: usize,
    /// Stages run inside the host's pushes ([`FlowPlacement::Host`]).
    host_runs_stages: bool,
    journal: Arc<JournalingCounters>,
    pipeline: Pipeline<Item, Item>,
    input: Input<Item>,
    output: Output<Item>,
    shared: Arc<Shared>,
    desk: Arc<CommandDesk>,
    catalog: RuleCatalog,
    telemetry: Option<FlowTelemetry>,
}

/// The telemetry a flow was started with (see [`ReverseFlow::start_with_telemetry`]).
struct FlowTelemetry {
    telemetry: Arc<Telemetry>,
    tracing: FlowTracing,
    extras: Vec<MetricsExtra>,
}

/// Adds host figures to a metrics snapshot (see [`ReverseFlow::add_metrics`]).
pub type MetricsExtra = Box<dyn Fn(MetricsSnapshot) -> MetricsSnapshot + Send + Sync>;

/// The metrics of one statistics snapshot: the stages' and rings' figures plus the flow's
/// counters (see `docs/telemetry.md`).
fn flow_metrics(
    stats: &PipelineStats,
    catalog: &RuleCatalog,
    shared: &Shared,
    tel: Option<&FlowTelemetry>,
) -> MetricsSnapshot {
    let feedback: u64 = (0..catalog.len() as u16)
        .filter_map(|r| catalog.counters(r))
        .map(|c| c.raised + c.cleared)
        .sum();
    let mut m = MetricsSnapshot::from_stats(stats)
        .with_counter(
            "ebbflow.flow.events",
            stats.stages.first().map_or(0, |s| s.events_in),
        )
        .with_counter(
            "ebbflow.flow.drops",
            stats
                .rings
                .iter()
                .map(|r| r.dropped_newest + r.dropped_oldest)
                .sum(),
        )
        .with_counter(
            "ebbflow.flow.overruns",
            stats.stages.iter().map(|s| s.over_budget).sum(),
        )
        .with_counter("ebbflow.flow.feedback_signals", feedback)
        .with_gauge(
            "ebbflow.flow.reactor_parked",
            shared.reactor_parked.load(Ordering::Relaxed) as f64,
        );
    if let Some(tel) = tel {
        let t = tel.tracing.stats();
        m = m
            .with_counter("ebbflow.trace.sampled", t.sampled)
            .with_counter("ebbflow.trace.slots_busy", t.slots_busy)
            .with_counter("ebbflow.trace.completed", t.completed)
            .with_counter("ebbflow.trace.stopped", t.stopped)
            .with_counter("ebbflow.trace.breakers", t.breakers)
            .with_counter("ebbflow.trace.budget_exceeded", t.budget_exceeded);
        for extra in &tel.extras {
            m = extra(m);
        }
    }
    m
}

/// What [`flow_chain`] builds.
pub struct FlowChain<C> {
    /// The nine stages, chained: `.build()` or `.build_inline()` it.
    pub builder: PipelineBuilder<Item, Item, C>,
    /// The handles a running flow keeps.
    pub parts: FlowParts,
}

/// The handles a running flow keeps (see [`FlowChain`]).
pub struct FlowParts {
    /// The journal stage's counters.
    pub journal: Arc<JournalingCounters>,
    /// What the stages publish for the host (schema artifacts, statistics).
    pub shared: Arc<Shared>,
    /// The command desk (replies to submitted commands).
    pub desk: Arc<CommandDesk>,
    /// The rules, as the bitactor compiled them.
    pub catalog: RuleCatalog,
}

/// The nine stages, built, wrapped for tracing and chained with their budgets, batch size
/// and timing exactly as [`ReverseFlow`] runs them; the caller sets placement, pinning,
/// waits and ring capacity, then calls `.build()` (pipeline threads, as
/// [`ReverseFlow::start`] does) or `.build_inline()` (the caller's thread: the
/// instruction-count benches). `tracing`: the slot table and host side, the telemetry the
/// last stage finishes traces into, and the breaker options.
pub fn flow_chain(
    config: &FlowConfig,
    interner: &mut Interner,
    sink: Box<dyn Publish>,
    journal: Option<Journal>,
    tracing: Option<(&FlowTracing, &Telemetry, TraceOptions)>,
) -> Result<FlowChain<impl Chain<Item, Out = Item>>, FlowError> {
    if !(1..=MAX_SHARDS).contains(&config.shards) {
        return Err(FlowError::Shards(config.shards));
    }
    let shared = Arc::new(Shared::default());
    let desk = Arc::new(CommandDesk::new());
    let snapshots = SnapshotSlot::with_capacity(config.store_capacity);
    let actors: Vec<BitActorStage> = (0..config.shards)
        .map(|_| {
            BitActor::compile_with(&config.rules, interner, config.actor)
                .map(BitActorStage::new)
                .map_err(|e| FlowError::Compile(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let catalog = actors[0].actor().catalog().clone();
    let (journaling, journal_counters, journal_events) = JournalingStage::new(journal);
    let notify = NotifyStage::new(
        sink,
        interner.resolver(),
        Some(Arc::new(catalog.clone())),
        snapshots.clone(),
        shared.clone(),
        desk.clone(),
        config.notify.clone(),
    )
    .with_journal_events(journal_events);
    let b = config.budgets.0;
    /// Stage `i`, traced when tracing is on.
    fn wrap<S>(t: Option<&FlowTracing>, s: S, i: usize) -> Traced<S> {
        match t {
            Some(t) => t.wrap(s, i),
            None => Traced::off(s, i),
        }
    }
    let t = tracing.map(|(t, _, _)| t);
    let last = match tracing {
        Some((t, telemetry, o)) => t.wrap_last(
            notify,
            telemetry,
            interner.resolver(),
            config.scenario,
            o.e2e_budget.unwrap_or_else(|| b.iter().sum()),
            o.breaker_gap,
        ),
        None => Traced::off(notify, 8),
    };
    let reactor = ReactorStage::new(default_reactor(config)?).publishing_to(shared.clone());
    let resources = ResourcesStage::new(config.store_capacity, snapshots);
    let bitactor = Sharded::<_, MAX_SHARDS>::new(actors);
    let chain = PipelineBuilder::<Item>::new()
        .stage(STAGE_NAMES[0], wrap(t, journaling, 0))
        .budget(b[0])
        .stage(STAGE_NAMES[1], wrap(t, reactor, 1))
        .budget(b[1])
        .stage(STAGE_NAMES[2], wrap(t, resources, 2))
        .budget(b[2])
        .stage(STAGE_NAMES[3], wrap(t, Distribution::new(config.shards), 3))
        .budget(b[3])
        .stage(STAGE_NAMES[4], wrap(t, bitactor, 4))
        .budget(b[4])
        .stage(STAGE_NAMES[5], wrap(t, SchemaStage::new(shared.clone()), 5))
        .budget(b[5])
        .stage(STAGE_NAMES[6], wrap(t, TurtleStage::new(shared.clone()), 6))
        .budget(b[6])
        .stage(STAGE_NAMES[7], wrap(t, TyperStage::new(shared.clone()), 7))
        .budget(b[7])
        .stage(STAGE_NAMES[8], last)
        .budget(b[8])
        .max_batch(config.max_batch)
        .timing(config.timing);
    let parts = FlowParts {
        journal: journal_counters,
        shared,
        desk,
        catalog,
    };
    Ok(FlowChain {
        builder: chain,
        parts,
    })
}

impl ReverseFlow {
    /// Builds and starts the flow. `interner` is the source's: the rules' strings are
    /// interned into it (so a rule on a namespace not seen yet matches once it appears),
    /// and the stages resolve symbols through it.
    pub fn start(
        config: FlowConfig,
        interner: &mut Interner,
        sink: Box<dyn Publish>,
    ) -> Result<ReverseFlow, FlowError> {
        ReverseFlow::start_journaled(config, interner, sink, None)
    }

    /// Like [`start`](Self::start), with every input record appended to `journal` before
    /// the reactor sees it (see [`crate::flow::journaling`]).
    pub fn start_journaled(
        config: FlowConfig,
        interner: &mut Interner,
        sink: Box<dyn Publish>,
        journal: Option<Journal>,
    ) -> Result<ReverseFlow, FlowError> {
        ReverseFlow::build(config, interner, sink, journal, None)
    }

    /// Like [`start_journaled`](Self::start_journaled), with sampled traces and metrics
    /// exported through `telemetry` (see [`crate::flow::tracing`] and `docs/telemetry.md`):
    /// one record in N (the telemetry's sampler) carries per-stage times to an OTLP span
    /// tree, budget breakers are exported too (`options`), and every
    /// [`stats`](Self::stats) snapshot (and the final one) is queued as metrics. With a
    /// disabled `telemetry` (no endpoint) the flow runs as without it.
    pub fn start_with_telemetry(
        config: FlowConfig,
        interner: &mut Interner,
        sink: Box<dyn Publish>,
        journal: Option<Journal>,
        telemetry: Arc<Telemetry>,
        options: TraceOptions,
    ) -> Result<ReverseFlow, FlowError> {
        let tel = telemetry.is_enabled().then_some((telemetry, options));
        ReverseFlow::build(config, interner, sink, journal, tel)
    }

    fn build(
        config: FlowConfig,
        interner: &mut Interner,
        sink: Box<dyn Publish>,
        journal: Option<Journal>,
        telemetry: Option<(Arc<Telemetry>, TraceOptions)>,
    ) -> Result<ReverseFlow, FlowError> {
        let tracing = telemetry
            .as_ref()
            .map(|(t, _)| FlowTracing::new(t.config().sampler.one_in()));
        let traced = tracing
            .as_ref()
            .zip(telemetry.as_ref())
            .map(|(tracing, (t, o))| (tracing, &**t, *o));
        let FlowChain { builder, parts } = flow_chain(&config, interner, sink, journal, traced)?;
        let (pipeline, input, output) = builder
            .default_capacity(config.ring_capacity)
            .placement(config.placement.engine())
            .host_stages(config.placement.host_stages())
            .pinning(config.pinning.clone())
            .wait(config.wait)
            .build()?;
        Ok(ReverseFlow {
            rule_set: config.rules.clone(),
            pending: Vec::with_capacity(config.max_batch),
            host_batch: config.max_batch,
            host_runs_stages: config.placement.host_stages() > 0,
            journal: parts.journal,
            pipeline,
            input,
            output,
            shared: parts.shared,
            desk: parts.desk,
            catalog: parts.catalog,
            telemetry: telemetry
                .zip(tracing)
                .map(|((telemetry, _), tracing)| FlowTelemetry {
                    telemetry,
                    tracing,
                    extras: Vec::new(),
                }),
        })
    }

    /// Pushes one record (waits while the first ring is full: lossless). It reaches the
    /// pipeline with its batch (see the [type docs](Self)).
    #[inline]
    pub fn push_record(&mut self, record: Record) -> Result<(), FlowClosed> {
        self.push_item(Item::from_record(record))
    }

    /// Pushes one item as is.
    #[inline]
    pub fn push_item(&mut self, mut item: Item) -> Result<(), FlowClosed> {
        if let Some(t) = self.telemetry.as_mut() {
            t.tracing.host.on_push(&mut item, self.pending.len());
        }
        self.pending.push(item);
        if self.pending.len() >= self.host_batch {
            self.hand_over()?;
        }
        Ok(())
    }

    #[inline]
    fn hand_over(&mut self) -> Result<(), FlowClosed> {
        if let Some(t) = self.telemetry.as_mut() {
            t.tracing.host.stamp(&mut self.pending);
        }
        self.input
            .push_owned(&mut self.pending)
            .map_err(|_| FlowClosed)
    }

    /// Pushes a tick carrying wall-clock time `now_ns` (ns since the Unix epoch), and
    /// flushes.
    pub fn tick(&mut self, now_ns: i64) -> Result<(), FlowClosed> {
        self.pending.push(Item::tick(now_ns));
        self.hand_over()
    }

    /// Parses a client command and sends it down the pipeline; `reply` runs on the notify
    /// thread when the owning stage has applied it. A command with bad arguments is
    /// rejected here, before it can change anything.
    pub fn submit(
        &mut self,
        event: &str,
        payload: &[u8],
        reply: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<u64, CommandParseError> {
        let catalog = self.catalog.clone();
        let cmd = parse_command(
            event,
            payload,
            &|name| catalog.id_of(name),
            self.catalog.len(),
        )?;
        let cmd = self.desk.submit(cmd, reply);
        let request = cmd.request().unwrap_or(0);
        // A command always gets in: the push waits for room like a record does.
        self.pending.push(Item::from_command(cmd));
        let _ = self.hand_over();
        Ok(request)
    }

    /// Hands the gathered items to the pipeline now. With [`FlowPlacement::Host`], also
    /// gives the host stages their idle turn (the reactor's retries whose backoff has
    /// passed): a host that stops pushing calls this now and then.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.hand_over();
        }
        if self.host_runs_stages {
            self.input.flush();
        }
    }

    /// The pipeline statistics, also stored for the `monitoring` topic and, with
    /// telemetry, queued as metrics ([`metrics`](Self::metrics)). With
    /// [`FlowPlacement::Host`], folds the host stages' histograms first.
    pub fn stats(&mut self) -> PipelineStats {
        self.input.publish_stats();
        let stats = self.pipeline.stats();
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats.clone());
        if let Some(t) = &self.telemetry {
            t.telemetry
                .submit_metrics(flow_metrics(&stats, &self.catalog, &self.shared, Some(t)));
        }
        stats
    }

    /// The metrics of a statistics snapshot: per-stage events, overruns and latency
    /// summaries, ring figures, and the counters `ebbflow.flow.events` (records and items
    /// into the first stage), `ebbflow.flow.drops` (ring drops), `ebbflow.flow.overruns`
    /// (events over a stage budget), `ebbflow.flow.feedback_signals` (alerts raised and
    /// cleared), the `ebbflow.trace.*` counters ([`TracingStats`]) and those added with
    /// [`add_metrics`](Self::add_metrics).
    /// Allocates (names, vectors): once per snapshot, never per event.
    pub fn metrics(&self, stats: &PipelineStats) -> MetricsSnapshot {
        flow_metrics(stats, &self.catalog, &self.shared, self.telemetry.as_ref())
    }

    /// Adds host figures to every metrics snapshot, e.g. a channel server's connections:
    /// `flow.add_metrics(move |m| m.with_gauge("ebbflow.channels.connections", open()))`.
    /// Runs on the thread that takes [`stats`](Self::stats). Ignored without telemetry.
    pub fn add_metrics(
        &mut self,
        extra: impl Fn(MetricsSnapshot) -> MetricsSnapshot + Send + Sync + 'static,
    ) {
        if let Some(t) = self.telemetry.as_mut() {
            t.extras.push(Box::new(extra));
        }
    }

    /// The telemetry the flow exports to, if started with an enabled one.
    pub fn telemetry(&self) -> Option<&Arc<Telemetry>> {
        self.telemetry.as_ref().map(|t| &t.telemetry)
    }

    /// The tracing counters (all zero without telemetry).
    pub fn tracing_stats(&self) -> TracingStats {
        self.telemetry
            .as_ref()
            .map(|t| t.tracing.stats())
            .unwrap_or_default()
    }

    /// The rules, as loaded (names, severities, current thresholds, counters).
    pub fn rules(&self) -> &RuleCatalog {
        &self.catalog
    }

    /// The rules' definitions as loaded: kinds, namespace, predicates, severity, hint
    /// (thresholds and enabled flags as loaded; the live ones are in [`rules`](Self::rules)).
    pub fn rule_definitions(&self) -> &RuleSet {
        &self.rule_set
    }

    /// State shared with the stages (schema artifacts, statistics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The journal stage's counters (all zero without a journal).
    pub fn journal_counters(&self) -> &JournalingCounters {
        &self.journal
    }

    /// Records the reactor holds now: parked for a retry, or queued behind a parked record
    /// of their key (as of the reactor's last batch; also the `ebbflow.flow.reactor_parked`
    /// gauge and `parked` in the `reactor:steps` summary). A host that wants a snapshot
    /// with nothing held back waits until this is 0: retries run when their backoff has
    /// passed, on the reactor thread's idle turns (with [`FlowPlacement::Host`], at each
    /// [`flush`](Self::flush)).
    pub fn reactor_parked(&self) -> u64 {
        self.shared.reactor_parked.load(Ordering::Relaxed)
    }

    /// Commands submitted and not yet answered.
    pub fn pending_commands(&self) -> usize {
        self.desk.pending()
    }

    /// Whether the pipeline stopped (a stage failed).
    pub fn failure(&self) -> Option<PipelineError> {
        self.pipeline.failure()
    }

    /// Closes the input, drains every stage, and returns the final statistics (with
    /// telemetry, also queued as metrics; the exporter sends them at its next metrics
    /// interval or when the [`Telemetry`] shuts down).
    pub fn finish(mut self) -> Result<PipelineStats, PipelineError> {
        self.flush();
        let ReverseFlow {
            pipeline,
            input,
            mut output,
            catalog,
            shared,
            telemetry,
            ..
        } = self;
        // End of stream first: host stages (FlowPlacement::Host) hand on what they hold.
        input.close();
        let stats = pipeline.finish(&mut output, |_| {})?;
        if let Some(t) = &telemetry {
            t.telemetry
                .submit_metrics(flow_metrics(&stats, &catalog, &shared, Some(t)));
        }
        Ok(stats)
    }
}
