//! The builder, the running pipeline's handle, and the host's [`Input`] and [`Output`].

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::chain::{segment_body, Append, Assembly, Chain, End, StageConfig, ThreadCx, ThreadSpec};
use super::control::Control;
use super::error::{BuildError, ConfigProblem, PipelineError, PushError, RecvError};
use super::host::HostStages;
use super::inline::{InlinePipeline, INLINE_RESERVE_LIMIT};
use super::placement::{plan, CoreSet, Pinning, Placement, PlanRequest};
use super::ring::{link, Backpressure, Inbound, LinkShared, Outbound};
use super::stage::{Event, Stage};
use super::stats::{LatencySummary, PipelineStats, StageShared, StageStats, ThreadStats};
use super::wait::{Idler, WaitStrategy};
use super::Timing;

/// Default slots per ring.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Default most events handed to a stage at once.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// Default per-event budget of a stage.
pub const DEFAULT_BUDGET: Duration = Duration::from_micros(10);
/// Default time `shutdown` waits for the threads to drain.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`PipelineBuilder::build`] returns: the handle and the host's two ends.
pub type Built<In, Out> = (Pipeline<In, Out>, Input<In>, Output<Out>);

/// Per-stage settings given to the builder (`None` = the builder's default).
#[derive(Debug, Clone)]
struct StageSettings {
    name: String,
    max_fanout: usize,
    budget: Option<Duration>,
    capacity: Option<usize>,
    backpressure: Option<Backpressure>,
}

/// Builds a [`Pipeline`] whose input is `In`, whose last stage emits `Out`, and whose
/// stages so far form the chain `C`.
///
/// ```
/// use ebbflow::engine::{Emitter, PipelineBuilder, Stage};
///
/// struct Double;
/// impl Stage for Double {
///     type In = u64;
///     type Out = u64;
///     fn process(&mut self, x: u64, out: &mut Emitter<u64>) {
///         out.emit(x * 2);
///     }
/// }
///
/// let (pipeline, mut input, mut output) = PipelineBuilder::<u64>::new()
///     .stage("double", Double)
///     .build()
///     .unwrap();
/// input.push(21).unwrap();
/// drop(input); // end of stream
/// assert_eq!(output.recv_timeout(std::time::Duration::from_secs(5)), Ok(42));
/// pipeline.shutdown().unwrap();
/// ```
///
/// A chain whose types do not line up does not compile, and neither does an empty one:
///
/// ```compile_fail
/// use ebbflow::engine::PipelineBuilder;
/// let _ = PipelineBuilder::<u64>::new().build(); // no stages: `End` is not a `Chain`
/// ```
pub struct PipelineBuilder<In, Out = In, C = End> {
    chain: C,
    stages: Vec<StageSettings>,
    problems: Vec<ConfigProblem>,
    capacity: usize,
    budget: Duration,
    backpressure: Backpressure,
    output_capacity: Option<usize>,
    output_backpressure: Backpressure,
    max_batch: usize,
    timing: Timing,
    placement: Placement,
    pinning: Pinning,
    wait: WaitStrategy,
    wait_overrides: Vec<(usize, WaitStrategy)>,
    host_wait: WaitStrategy,
    host_cores: usize,
    host_stages: usize,
    cores: Option<CoreSet>,
    shutdown_timeout: Duration,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In: Event> PipelineBuilder<In, In, End> {
    /// A builder with no stages yet, and every setting at its default.
    pub fn new() -> Self {
        PipelineBuilder {
            chain: End,
            stages: Vec::new(),
            problems: Vec::new(),
            capacity: DEFAULT_CAPACITY,
            budget: DEFAULT_BUDGET,
            backpressure: Backpressure::Block,
            output_capacity: None,
            output_backpressure: Backpressure::Block,
            max_batch: DEFAULT_MAX_BATCH,
            timing: Timing::PerBatch,
            placement: Placement::Auto,
            pinning: Pinning::None,
            wait: WaitStrategy::SpinYield,
            wait_overrides: Vec::new(),
            host_wait: WaitStrategy::SpinYield,
            host_cores: 1,
            host_stages: 0,
            cores: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            _types: PhantomData,
        }
    }
}

impl<In: Event> Default for PipelineBuilder<In, In, End> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In: Event, Out: Event, C> PipelineBuilder<In, Out, C> {
    /// Appends a stage. Its input type must be what the previous stage emits.
    pub fn stage<S>(
        self,
        name: impl Into<String>,
        stage: S,
    ) -> PipelineBuilder<In, S::Out, C::Output>
    where
        S: Stage<In = Out>,
        C: Append<S>,
    {
        let mut stages = self.stages;
        stages.push(StageSettings {
            name: name.into(),
            max_fanout: S::MAX_FANOUT,
            budget: None,
            capacity: None,
            backpressure: None,
        });
        PipelineBuilder {
            chain: self.chain.append(stage),
            stages,
            problems: self.problems,
            capacity: self.capacity,
            budget: self.budget,
            backpressure: self.backpressure,
            output_capacity: self.output_capacity,
            output_backpressure: self.output_backpressure,
            max_batch: self.max_batch,
            timing: self.timing,
            placement: self.placement,
            pinning: self.pinning,
            wait: self.wait,
            wait_overrides: self.wait_overrides,
            host_wait: self.host_wait,
            host_cores: self.host_cores,
            host_stages: self.host_stages,
            cores: self.cores,
            shutdown_timeout: self.shutdown_timeout,
            _types: PhantomData,
        }
    }

    fn last_stage(&mut self, setting: &'static str) -> Option<&mut StageSettings> {
        if self.stages.is_empty() {
            self.problems
                .push(ConfigProblem::SettingBeforeStage { setting });
        }
        self.stages.last_mut()
    }

    /// Budget per event of the stage added last.
    pub fn budget(mut self, budget: Duration) -> Self {
        if let Some(s) = self.last_stage("budget") {
            s.budget = Some(budget);
        }
        self
    }

    /// Capacity of the ring in front of the stage added last (where placement puts one).
    pub fn capacity(mut self, slots: usize) -> Self {
        if let Some(s) = self.last_stage("capacity") {
            s.capacity = Some(slots);
        }
        self
    }

    /// Backpressure policy of the ring in front of the stage added last.
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        if let Some(s) = self.last_stage("backpressure") {
            s.backpressure = Some(policy);
        }
        self
    }

    /// Default ring capacity (every ring without its own; default 4096).
    pub fn default_capacity(mut self, slots: usize) -> Self {
        self.capacity = slots;
        self
    }

    /// Default stage budget (default 10 µs).
    pub fn default_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Default backpressure policy of every ring but the output (default lossless).
    pub fn default_backpressure(mut self, policy: Backpressure) -> Self {
        self.backpressure = policy;
        self
    }

    /// Capacity of the output ring (default: the default capacity).
    pub fn output_capacity(mut self, slots: usize) -> Self {
        self.output_capacity = Some(slots);
        self
    }

    /// Backpressure policy of the output ring (default lossless).
    pub fn output_backpressure(mut self, policy: Backpressure) -> Self {
        self.output_backpressure = policy;
        self
    }

    /// Most events handed to a stage in one batch (default 256).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.max_batch = events;
        self
    }

    /// How stage time is measured (default [`Timing::PerBatch`]).
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Which stages share a thread (default [`Placement::Auto`]).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Which cores threads are pinned to (default [`Pinning::None`]).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.pinning = pinning;
        self
    }

    /// Wait strategy of every pipeline thread (default [`WaitStrategy::SpinYield`]).
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// Wait strategy of pipeline thread `thread` only. The index counts the threads the
    /// placement makes, from 0; with [`host_stages`](Self::host_stages), statistics number
    /// the host 0 and these threads from 1.
    pub fn thread_wait(mut self, thread: usize, wait: WaitStrategy) -> Self {
        self.wait_overrides.push((thread, wait));
        self
    }

    /// How the host waits in a lossless `push` on a full ring and in `recv_timeout`
    /// (default [`WaitStrategy::SpinYield`]).
    pub fn host_wait(mut self, wait: WaitStrategy) -> Self {
        self.host_wait = wait;
        self
    }

    /// Cores [`Placement::Auto`] leaves to the host and I/O threads (default 1).
    pub fn host_cores(mut self, cores: usize) -> Self {
        self.host_cores = cores;
        self
    }

    /// Runs the first `stages` stages on the host: inside [`Input::push`] and
    /// [`Input::push_slice`], on the calling thread, before the first ring (default 0).
    /// [`placement`](Self::placement), [`pinning`](Self::pinning) and
    /// [`thread_wait`](Self::thread_wait) then apply to the stages after them, and thread
    /// 0 in statistics is the host (the planned threads follow it from 1; `pinning` and
    /// `thread_wait` still count the planned threads from 0). At least one stage must stay
    /// on a pipeline thread.
    ///
    /// For a source thread that has time to spare: on a 2-core machine the host and one
    /// pipeline thread then both run stages (see `docs/architecture.md`). The host must
    /// close the [`Input`] before [`Pipeline::shutdown`] or [`Pipeline::finish`], since
    /// host stages hand on what they hold only then; otherwise shutdown stops the pipeline
    /// with [`PipelineError::HostInputOpen`]. Host stages' histograms are folded at the
    /// host's next push after a [`Pipeline::stats`] request, or at once by
    /// [`Input::publish_stats`]. Ignored by [`build_inline`](Self::build_inline).
    pub fn host_stages(mut self, stages: usize) -> Self {
        self.host_stages = stages;
        self
    }

    /// Plans against these cores instead of the detected ones.
    pub fn cores(mut self, cores: CoreSet) -> Self {
        self.cores = Some(cores);
        self
    }

    /// How long `shutdown` waits for threads to drain before it aborts (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// What [`PipelineBuilder::prepare`] hands to `build` and `build_inline`: a checked plan
/// and everything the stages' nodes are built from.
struct Prepared<C> {
    chain: C,
    asm: Assembly,
    control: Arc<Control>,
    stage_shared: Vec<Arc<StageShared>>,
    names: Arc<[(String, usize)]>,
    thread_stats: Vec<ThreadStats>,
}

impl<In: Event, Out: Event, C: Chain<In, Out = Out>> PipelineBuilder<In, Out, C> {
    /// Checks the whole configuration, reporting every problem at once; then creates the
    /// rings and starts the threads. Returns the handle and the host's two ends.
    pub fn build(self) -> Result<Built<In, Out>, BuildError> {
        let host_wait = self.host_wait;
        let shutdown_timeout = self.shutdown_timeout;
        let max_batch = self.max_batch;
        let Prepared {
            chain,
            mut asm,
            control,
            stage_shared,
            names,
            thread_stats,
        } = self.prepare(None)?;
        let threads = asm.plan.threads();
        let host_stages = if asm.plan.host {
            asm.plan.groups[0].len()
        } else {
            0
        };
        let (entry, mut bodies, mut links) = if host_stages > 0 {
            // Thread 0 is the host: its nodes go to the input; the chain itself made the
            // ring after them (the first link).
            let head = chain.instantiate(0, &mut asm);
            let cx = ThreadCx {
                control: control.clone(),
                current: 0,
                spec: ThreadSpec {
                    index: 0,
                    wait: asm.plan.waits[0],
                    core: None,
                    names: names.clone(),
                },
            };
            let ring = asm.links[0].clone();
            let host = HostStages::new(Box::new(head), cx, ring, max_batch);
            let bodies = std::mem::take(&mut asm.segments);
            (Entry::Host(Box::new(host)), bodies, Vec::new())
        } else {
            let (input_out, input_in) = link::<In>(
                "input".to_string(),
                asm.configs[0].capacity,
                asm.configs[0].backpressure,
                host_wait,
                asm.plan.waits[0],
                max_batch,
            );
            let head = chain.instantiate(0, &mut asm);
            let mut bodies = std::mem::take(&mut asm.segments);
            bodies.push((0, segment_body(input_in, head, true)));
            let links = vec![input_out.shared.clone()];
            (Entry::Ring(input_out), bodies, links)
        };
        bodies.sort_by_key(|(t, _)| *t);
        let output_in: Inbound<Out> = *asm
            .output
            .take()
            .expect("the chain's end creates the output ring")
            .downcast::<Inbound<Out>>()
            .expect("the output ring carries the chain's output type");
        links.append(&mut asm.links);
        links.push(output_in.shared.clone());

        let mut handles = Vec::with_capacity(threads);
        for (t, body) in bodies {
            let cx = ThreadCx {
                control: control.clone(),
                current: asm.plan.groups[t].start,
                spec: ThreadSpec {
                    index: t,
                    wait: asm.plan.waits[t],
                    core: asm.plan.cores[t],
                    names: names.clone(),
                },
            };
            let spawned = std::thread::Builder::new()
                .name(format!("ebbflow-{t}"))
                .spawn(move || body(cx));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Threads already started see the abort and exit; their rings close.
                    control.abort();
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(BuildError {
                        problems: vec![ConfigProblem::SpawnFailed {
                            thread: t,
                            reason: e.to_string(),
                        }],
                    });
                }
            }
        }
        control.set_threads(handles.iter().map(|h| h.thread().clone()).collect());
        control.set_links(links.clone());

        let pipeline = Pipeline {
            control: control.clone(),
            handles,
            stages: stage_shared,
            links,
            threads: thread_stats,
            host_stages,
            shutdown_timeout,
            _types: PhantomData,
        };
        let input = Input {
            entry,
            control: control.clone(),
        };
        let output = Output {
            inbound: output_in,
            idler: Idler::new(host_wait),
            control,
        };
        Ok((pipeline, input, output))
    }

    /// Builds the chain to run on the caller's thread instead: no pipeline thread, no
    /// ring, every stage fused, in order (see [`InlinePipeline`]). Placement, pinning and
    /// wait settings are ignored; budgets, timing, batch size and fan-out bounds apply as
    /// in [`build`](Self::build).
    pub fn build_inline(self) -> Result<InlinePipeline<In, Out>, BuildError> {
        // One input batch of `max_batch` events yields at most `(max_batch + 1)` times the
        // product of the stages' fan-outs (each emitter holds one batch plus what
        // `end_of_batch` adds).
        let reserve = self
            .stages
            .iter()
            .fold(self.max_batch.saturating_add(1), |n, s| {
                n.saturating_mul(s.max_fanout.max(1))
            })
            .min(INLINE_RESERVE_LIMIT);
        let max_batch = self.max_batch;
        let Prepared {
            chain,
            mut asm,
            control,
            stage_shared,
            names,
            thread_stats,
        } = self.prepare(Some(reserve))?;
        let head = chain.instantiate(0, &mut asm);
        debug_assert!(asm.segments.is_empty() && asm.links.is_empty());
        let outputs = *asm
            .output
            .take()
            .expect("the chain's end creates the collecting buffer")
            .downcast::<Arc<Mutex<Vec<Out>>>>()
            .expect("the buffer holds the chain's output type");
        let cx = ThreadCx {
            control,
            current: 0,
            spec: ThreadSpec {
                index: 0,
                wait: WaitStrategy::SpinYield,
                core: None,
                names,
            },
        };
        Ok(InlinePipeline::new(
            Box::new(head),
            cx,
            outputs,
            stage_shared,
            thread_stats,
            max_batch,
        ))
    }

    /// Checks the configuration and plans the threads (all fused on one when `inline`
    /// gives the reserved output length).
    fn prepare(mut self, inline: Option<usize>) -> Result<Prepared<C>, BuildError> {
        if inline.is_some() {
            self.placement = Placement::Fused;
            self.pinning = Pinning::None;
            self.wait_overrides.clear();
            self.host_stages = 0;
        }
        let mut problems = self.problems;
        if self.max_batch == 0 {
            problems.push(ConfigProblem::ZeroBatch);
        }
        let mut names = HashSet::new();
        let configs: Vec<StageConfig> = self
            .stages
            .iter()
            .map(|s| StageConfig {
                name: s.name.clone(),
                budget: s.budget.unwrap_or(self.budget),
                capacity: s.capacity.unwrap_or(self.capacity),
                backpressure: s.backpressure.unwrap_or(self.backpressure),
            })
            .collect();
        for (i, c) in configs.iter().enumerate() {
            if !names.insert(c.name.clone()) {
                problems.push(ConfigProblem::DuplicateStageName {
                    name: c.name.clone(),
                });
            }
            if c.budget.is_zero() {
                problems.push(ConfigProblem::ZeroBudget {
                    stage: c.name.clone(),
                });
            }
            if c.capacity == 0 {
                let ring = if i == 0 {
                    "input".to_string()
                } else {
                    format!("{} -> {}", configs[i - 1].name, c.name)
                };
                problems.push(ConfigProblem::ZeroCapacity { ring });
            }
        }
        let output_capacity = self.output_capacity.unwrap_or(self.capacity);
        if output_capacity == 0 {
            problems.push(ConfigProblem::ZeroCapacity {
                ring: "output".to_string(),
            });
        }
        let detected;
        let cores = match &self.cores {
            Some(c) => c,
            None => {
                detected = CoreSet::detect();
                detected
            }
        };
        let host_stages = self.host_stages;
        if host_stages > 0 && host_stages >= configs.len() {
            problems.push(ConfigProblem::TooManyHostStages {
                host_stages,
                stages: configs.len(),
            });
        }
        let plan = plan(
            &PlanRequest {
                stages: configs.len().saturating_sub(host_stages).max(1),
                placement: &self.placement,
                pinning: &self.pinning,
                cores,
                host_cores: self.host_cores,
                wait: self.wait,
                wait_overrides: &self.wait_overrides,
            },
            &mut problems,
        );
        let plan = match plan {
            Some(plan) if problems.is_empty() && host_stages > 0 => {
                plan.with_host_group(host_stages, self.host_wait)
            }
            Some(plan) if problems.is_empty() => plan,
            _ => return Err(BuildError { problems }),
        };

        let threads = plan.threads();
        let control = Arc::new(Control::new(threads));
        let stage_shared: Vec<Arc<StageShared>> = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Arc::new(StageShared::new(
                    c.name.clone(),
                    c.budget,
                    plan.thread_of(i),
                ))
            })
            .collect();
        let names: Arc<[(String, usize)]> = self
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.max_fanout))
            .collect();
        let thread_stats: Vec<ThreadStats> = (0..threads)
            .map(|t| ThreadStats {
                name: if inline.is_some() {
                    "inline".to_string()
                } else if plan.host && t == 0 {
                    "host".to_string()
                } else {
                    format!("ebbflow-{t}")
                },
                stages: plan.groups[t].clone().collect(),
                core: plan.cores[t],
                wait: plan.waits[t],
            })
            .collect();
        let asm = Assembly {
            plan,
            configs,
            max_batch: self.max_batch,
            timing: self.timing,
            host_wait: self.host_wait,
            output_capacity,
            output_backpressure: self.output_backpressure,
            stage_shared: stage_shared.clone(),
            links: Vec::new(),
            segments: Vec::new(),
            output: None,
            inline_outputs: inline,
        };
        Ok(Prepared {
            chain: self.chain,
            asm,
            control,
            stage_shared,
            names,
            thread_stats,
        })
    }
}

/// Every stage's counters and latency summary, as of the last fold.
pub(crate) fn stage_snapshot(stages: &[Arc<StageShared>]) -> Vec<StageStats> {
    stages
        .iter()
        .map(|s| {
            let latency = {
                let h = s.hist.lock().unwrap_or_else(|e| e.into_inner());
                LatencySummary::of(&h)
            };
            StageStats {
                name: s.name.clone(),
                thread: s.thread,
                budget: s.budget,
                events_in: s.events_in.get(),
                events_out: s.events_out.get(),
                batches: s.batches.get(),
                over_budget: s.over_budget.get(),
                latency,
            }
        })
        .collect()
}

/// A running pipeline: statistics and shutdown. Dropping it shuts down like
/// [`shutdown`](Pipeline::shutdown) and discards the result.
pub struct Pipeline<In, Out> {
    control: Arc<Control>,
    handles: Vec<JoinHandle<()>>,
    stages: Vec<Arc<StageShared>>,
    links: Vec<Arc<LinkShared>>,
    threads: Vec<ThreadStats>,
    /// Stages run by the host (thread 0), 0 if none.
    host_stages: usize,
    shutdown_timeout: Duration,
    _types: PhantomData<fn(In) -> Out>,
}

/// How long a snapshot waits for busy threads to fold in their histograms.
const SNAPSHOT_WAIT: Duration = Duration::from_millis(200);

impl<In: Event, Out: Event> Pipeline<In, Out> {
    /// A consistent-enough snapshot: counters as of now, histograms as of each thread's
    /// last batch. Allocates (it builds the report); the hot threads do not. Host stages'
    /// histograms are as of the host's last fold (see
    /// [`PipelineBuilder::host_stages`]); the snapshot does not wait for the host.
    pub fn stats(&self) -> PipelineStats {
        let epoch = self
            .control
            .stats_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        self.control.wake_all();
        let deadline = Instant::now() + SNAPSHOT_WAIT;
        let stale = loop {
            let stale = self
                .control
                .acks
                .iter()
                .skip(usize::from(self.host_stages > 0))
                .filter(|a| a.load(std::sync::atomic::Ordering::Acquire) < epoch)
                .count();
            if stale == 0 || Instant::now() >= deadline {
                break stale;
            }
            std::thread::yield_now();
        };
        self.snapshot(stale)
    }

    /// The threads and what runs on each.
    pub fn layout(&self) -> &[ThreadStats] {
        &self.threads
    }

    /// Whether every thread has stopped (input ended and drained, or a failure).
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
    }

    /// The first failure, if a stage failed.
    pub fn failure(&self) -> Option<PipelineError> {
        self.control.failure()
    }

    /// Graceful shutdown: the [`Input`] stops accepting events, every ring is drained
    /// through the remaining stages into the output ring, and the threads are joined.
    ///
    /// The host must keep reading the [`Output`] (on another thread), or use
    /// [`finish`](Pipeline::finish), or the last stage waits on a full output ring; after
    /// the shutdown timeout the pipeline is aborted and
    /// [`PipelineError::ShutdownTimedOut`] reports how many events were still in rings.
    pub fn shutdown(mut self) -> Result<PipelineStats, PipelineError> {
        self.stop(|| false)
    }

    /// Graceful shutdown from the thread that reads the output: closes the input, then
    /// hands every remaining output event to `sink` until the pipeline has drained.
    pub fn finish(
        mut self,
        output: &mut Output<Out>,
        mut sink: impl FnMut(Out),
    ) -> Result<PipelineStats, PipelineError> {
        self.stop(|| {
            let mut progressed = false;
            while output.read_batch(|batch| batch.iter().for_each(|&e| sink(e))) > 0 {
                progressed = true;
            }
            progressed
        })
    }
}

impl<In, Out> Pipeline<In, Out> {
    fn snapshot(&self, stale_threads: usize) -> PipelineStats {
        PipelineStats {
            stages: stage_snapshot(&self.stages),
            rings: self.links.iter().map(|l| l.snapshot()).collect(),
            threads: self.threads.clone(),
            stale_threads,
        }
    }

    /// Closes the input, waits for the threads (calling `while_waiting`, which returns
    /// whether it made progress, in between), aborts after the shutdown timeout, joins.
    fn stop(
        &mut self,
        mut while_waiting: impl FnMut() -> bool,
    ) -> Result<PipelineStats, PipelineError> {
        self.control.close();
        if self.host_stages > 0 && self.control.host_input_open() {
            // The host stages still hold what they hold; draining without them would lose
            // it silently. Stop now and say why.
            self.control.abort();
            for h in self.handles.drain(..) {
                let _ = h.join();
            }
            while_waiting();
            return Err(self
                .control
                .failure()
                .unwrap_or(PipelineError::HostInputOpen {
                    host_stages: self.host_stages,
                }));
        }
        let start = Instant::now();
        let mut timed_out = false;
        while !self.handles.iter().all(|h| h.is_finished()) {
            let progressed = while_waiting();
            if start.elapsed() >= self.shutdown_timeout {
                timed_out = true;
                break;
            }
            if !progressed {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let in_flight_at_timeout = if timed_out {
            let n = self.snapshot(0).in_flight();
            self.control.abort();
            n
        } else {
            0
        };
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        // Every thread is gone: one last call takes what is left in the output ring.
        while_waiting();
        let stats = self.snapshot(0);
        if let Some(failure) = self.control.failure() {
            return Err(failure);
        }
        if timed_out {
            return Err(PipelineError::ShutdownTimedOut {
                waited: self.shutdown_timeout,
                in_flight: in_flight_at_timeout,
            });
        }
        Ok(stats)
    }
}

impl<In, Out> Drop for Pipeline<In, Out> {
    fn drop(&mut self) {
        if !self.handles.is_empty() {
            let _ = self.stop(|| false);
        }
    }
}

/// The host's producing end: events pushed here enter the first stage.
///
/// Dropping it (or [`close`](Input::close)) is the end of the stream: the pipeline drains
/// and its threads finish. With [host stages](PipelineBuilder::host_stages), each push
/// runs them on the calling thread first.
pub struct Input<T: Event> {
    entry: Entry<T>,
    control: Arc<Control>,
}

/// Where pushed events go.
enum Entry<T: Event> {
    /// Into the input ring of the first pipeline thread.
    Ring(Outbound<T>),
    /// Through the host stages, whose last one writes to the first ring.
    Host(Box<HostStages<T>>),
}

impl<T: Event> Input<T> {
    /// Leaves the shutdown gate; if shutdown started meanwhile, wakes the head thread,
    /// which may be waiting for this push to finish.
    #[inline(always)]
    fn leave(&self) {
        self.control.leave_push();
        if self.control.closing() {
            if let Entry::Ring(out) = &self.entry {
                out.shared.data.wake();
            }
        }
    }

    /// Pushes one event. With [`Backpressure::Block`] (the default) it waits for room by
    /// the host wait strategy; with a lossy policy it never waits and a drop is counted.
    /// Gives the event back if the pipeline is shutting down or has failed.
    #[inline]
    pub fn push(&mut self, event: T) -> Result<(), PushError<T>> {
        if !self.control.enter_push() {
            return Err(PushError::Closed(event));
        }
        let result = match &mut self.entry {
            Entry::Ring(out) => match out.policy {
                Backpressure::Block => out
                    .push_one_blocking(event, &self.control)
                    .map_err(PushError::Closed),
                _ => out
                    .push_slice(std::slice::from_ref(&event), &self.control)
                    .map_err(|_| PushError::Closed(event)),
            },
            Entry::Host(host) => {
                if host.run(std::slice::from_ref(&event)) {
                    Ok(())
                } else {
                    Err(PushError::Closed(event))
                }
            }
        };
        self.leave();
        result
    }

    /// Pushes a slice in as few ring commits as room allows. On shutdown or failure,
    /// returns how many events were accepted before it (with host stages: 0, since the
    /// stages may have held or merged the events before the failure).
    #[inline]
    pub fn push_slice(&mut self, events: &[T]) -> Result<(), PushError<usize>> {
        if !self.control.enter_push() {
            return Err(PushError::Closed(0));
        }
        let result = match &mut self.entry {
            Entry::Ring(out) => match out.policy {
                Backpressure::Block => out
                    .push_blocking(events, &self.control)
                    .map_err(PushError::Closed),
                _ => out
                    .push_slice(events, &self.control)
                    .map_err(|_| PushError::Closed(0)),
            },
            Entry::Host(host) => {
                if host.run(events) {
                    Ok(())
                } else {
                    Err(PushError::Closed(0))
                }
            }
        };
        self.leave();
        result
    }

    /// [`push_slice`](Self::push_slice) for events the caller gives up: `events` is left
    /// empty (its capacity kept). With host stages, a batch of at most `max_batch` events
    /// is handed to the first stage as its buffer, so a first stage that works in place
    /// ([`Stage::IN_PLACE`]) skips the copy a borrowed slice costs.
    #[inline]
    pub fn push_owned(&mut self, events: &mut Vec<T>) -> Result<(), PushError<usize>> {
        let result = match &mut self.entry {
            Entry::Ring(_) => self.push_slice(events),
            Entry::Host(host) => {
                if !self.control.enter_push() {
                    events.clear();
                    return Err(PushError::Closed(0));
                }
                let ok = host.run_owned(events);
                self.leave();
                if ok {
                    Ok(())
                } else {
                    Err(PushError::Closed(0))
                }
            }
        };
        events.clear();
        result
    }

    /// Pushes one event if there is room now; never waits, never drops. With host stages
    /// this is [`push`](Self::push): the stages run first, and what they hand on waits
    /// for room like any push does.
    pub fn try_push(&mut self, event: T) -> Result<(), PushError<T>> {
        if matches!(self.entry, Entry::Host(_)) {
            return self.push(event);
        }
        if !self.control.enter_push() {
            return Err(PushError::Closed(event));
        }
        let result = match &mut self.entry {
            Entry::Ring(out) => out.try_push(event).map_err(PushError::Full),
            Entry::Host(_) => unreachable!("handled above"),
        };
        self.leave();
        result
    }

    /// Drop-oldest: moves events parked in the overflow buffer into the ring as far as
    /// there is room. Returns how many are still parked. With host stages, also gives
    /// them their idle turn ([`Stage::on_idle`]: retries whose backoff has passed), which
    /// a host that stops pushing calls this for.
    pub fn flush(&mut self) -> usize {
        if !self.control.enter_push() {
            // Shutdown started: nothing more may enter; what is parked is dropped, counted.
            if let Entry::Ring(out) = &mut self.entry {
                out.discard_parked();
            }
            return 0;
        }
        let parked = match &mut self.entry {
            Entry::Ring(out) => out.flush_overflow(),
            Entry::Host(host) => host.flush(),
        };
        self.leave();
        parked
    }

    /// Events parked in the drop-oldest overflow buffer (with host stages: before the
    /// ring after them, as of the last push or flush).
    pub fn parked(&self) -> usize {
        match &self.entry {
            Entry::Ring(out) => out.parked(),
            Entry::Host(host) => host.parked(),
        }
    }

    /// Events this input dropped under a lossy policy (newest and oldest together); with
    /// host stages, those the ring after them dropped.
    pub fn dropped(&self) -> u64 {
        let p = match &self.entry {
            Entry::Ring(out) => &out.shared.produced,
            Entry::Host(host) => &host.ring().produced,
        };
        p.dropped_newest.get() + p.dropped_oldest.get()
    }

    /// Folds the host stages' latency histograms into the pipeline's statistics now (call
    /// it before [`Pipeline::stats`] for host stages' figures as of this moment). Returns
    /// whether the fold went through (a snapshot reader held a lock otherwise; the next
    /// push retries). Without host stages there is nothing to fold: `true`.
    pub fn publish_stats(&mut self) -> bool {
        match &mut self.entry {
            Entry::Ring(_) => true,
            Entry::Host(host) => host.publish(),
        }
    }

    /// Ends the stream (same as dropping the input). Events parked by the drop-oldest
    /// policy are delivered first, waiting for room; host stages hand on what they hold.
    pub fn close(self) {}
}

impl<T: Event> Drop for Input<T> {
    fn drop(&mut self) {
        match &mut self.entry {
            Entry::Ring(out) => {
                // End of stream: drop-oldest events still parked are delivered, waiting for
                // room, inside the shutdown gate so the head thread keeps draining
                // meanwhile. If shutdown already started or the pipeline is aborting, they
                // are counted as dropped.
                if out.parked() > 0 && self.control.enter_push() {
                    while out.flush_overflow() > 0 && !self.control.aborting() {
                        std::thread::yield_now();
                    }
                    self.control.leave_push();
                }
                out.discard_parked();
            }
            Entry::Host(host) => {
                // End of stream: the host stages hand on what they hold, then (when the
                // entry drops) their ring tells the first pipeline thread.
                if self.control.enter_push() {
                    host.close();
                    while host.flush() > 0 && !self.control.aborting() {
                        std::thread::yield_now();
                    }
                    self.control.leave_push();
                }
            }
        }
    }
}

/// The host's consuming end: what the last stage emitted.
pub struct Output<T: Event> {
    inbound: Inbound<T>,
    idler: Idler,
    control: Arc<Control>,
}

impl<T: Event> Output<T> {
    /// Takes one event if one is waiting.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.inbound.pop()
    }

    /// Hands up to one batch of waiting events to `f` (one or two slices); returns how many.
    #[inline]
    pub fn read_batch(&mut self, mut f: impl FnMut(&[T])) -> usize {
        self.inbound
            .read_batch(|b| {
                f(b);
                Ok(())
            })
            .unwrap_or(0)
    }

    /// Waits up to `timeout` for an event, by the host wait strategy.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.pop() {
                self.idler.reset();
                return Ok(e);
            }
            if self.inbound.is_finished() {
                return Err(RecvError::Finished);
            }
            if Instant::now() >= deadline {
                return Err(RecvError::Timeout);
            }
            let inbound = &self.inbound;
            let control = &self.control;
            self.idler.wait_at_most(
                &inbound.shared.data,
                || inbound.has_data() || inbound.is_abandoned() || control.aborting(),
                deadline.saturating_duration_since(Instant::now()),
            );
        }
    }

    /// Whether the pipeline has finished and every output was read.
    pub fn is_finished(&self) -> bool {
        self.inbound.is_finished()
    }
}
