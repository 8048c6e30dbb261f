//! The engine core: stages on pinned threads joined by SPSC rings.
//!
//! ```text
//! host ──Input──▶ [ring] ──▶ thread 0: stage a → stage b ──▶ [ring] ──▶ thread 1: stage c ──▶ [ring] ──Output──▶ host
//! ```
//!
//! With [`host_stages`](PipelineBuilder::host_stages), the first stages run inside the
//! host's pushes instead, and the first ring follows them (see `docs/architecture.md`).
//!
//! * [`Stage`]: one step, batch-aware, writing into a preallocated [`Emitter`].
//! * [`PipelineBuilder`]: chains stages (types checked at compile time), then places them
//!   on threads ([`Placement`]), pins them ([`Pinning`]), and picks how each thread waits
//!   ([`WaitStrategy`]) and what a full ring does ([`Backpressure`]).
//! * [`Pipeline`]: the running pipeline's handle: statistics snapshots and shutdown;
//!   [`Input`] and [`Output`] are the host's ends.
//!
//! See `docs/architecture.md` for threads, rings, budgets and what may allocate.

mod chain;
pub mod clock;
mod control;
mod error;
mod host;
mod inline;
mod pipeline;
mod placement;
mod ring;
mod runtime;
mod stage;
mod stats;
mod wait;

pub use chain::{Append, Chain, Continuation, End, Then};
pub use clock::Clock;
pub use error::{BuildError, ConfigProblem, PipelineError, PushError, RecvError};
pub use inline::InlinePipeline;
pub use pipeline::{
    Built, Input, Output, Pipeline, PipelineBuilder, DEFAULT_BUDGET, DEFAULT_CAPACITY,
    DEFAULT_MAX_BATCH, DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use placement::{CoreSet, Pinning, Placement};
pub use ring::Backpressure;
pub use stage::{Emitter, Event, InPlace, Stage};
pub use stats::{LatencySummary, PipelineStats, RingStats, StageStats, ThreadStats};
pub use wait::WaitStrategy;

/// How stage service time is measured.
///
/// Reading the clock costs a few nanoseconds (TSC) to tens (`clock_gettime`); the
/// measured cost of each mode is in `docs/benchmarks.md` (bench `timing_cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// No clock reads. Histograms stay empty; counters still count.
    Off,
    /// Two clock reads per stage per batch; each event of the batch is recorded with the
    /// batch's mean time, and a batch whose mean exceeds the budget counts all its events
    /// as over budget. The default: it costs almost nothing at high rates.
    #[default]
    PerBatch,
    /// One clock read per event per stage: exact per-event percentiles and budget
    /// overruns. Calls `Stage::process` per event even where `process_batch` is overridden.
    PerEvent,
    /// Like `PerBatch`, but only one batch in `n` per stage is timed (`n` = 0 is taken as
    /// 1). Histograms and over-budget counts then cover the sampled batches only. For
    /// latency-critical pipelines at low rates, where most batches hold one event and two
    /// clock reads per hop are a visible share of the hop.
    Sampled(u32),
}
