//! The reactor: per-kind step chains with retries, backoff, compensation (a saga) and
//! step lifecycle events — stage 1 of the reverse flow.
//!
//! ```text
//! Item ──► Router ──(kind / (kind, namespace))──► chain: step 0 → step 1 → … → step k
//!   │                                               │ transient error: park, retry later
//!   └─ not a record / no chain: passed on untouched  │ final failure: compensate k-1 … 0
//! ```
//!
//! * A [`Step`] does one unit of work on an [`Item`](crate::flow::Item); it fails with a
//!   [`StepError`] that is transient (retry) or permanent (fail now), with a code.
//!   Built-ins are in [`steps`]; users add their own.
//! * A chain ([`ChainConfig`], at most [`MAX_STEPS`] steps) takes the records of some
//!   kinds, or of a kind in a namespace (the namespace classifier, see
//!   [`ChainConfig::namespace`]).
//! * A transient failure retries the same step after a backoff ([`RetryPolicy`]:
//!   exponential, capped, seeded jitter) — without blocking other keys: the item is parked
//!   in a preallocated retry table and later items of **the same key** wait behind it, in
//!   arrival order; items of other keys go on at once.
//! * A chain that finally fails compensates the steps it completed, in reverse order,
//!   and reports `Failed`.
//!
//! # Contract for the stage that wraps it
//!
//! * Call [`Reactor::process`] for each input and [`Reactor::poll`] regularly (for
//!   example in `end_of_batch`) with the same clock's `now`; [`Reactor::next_due`] says
//!   when `poll` has work.
//! * Outputs per run: at most [`MAX_OUTPUTS_PER_RUN`] (= [`MAX_STEPS`]) items: a
//!   completed item (1), or a `Retried` event (1), or up to `MAX_STEPS − 1`
//!   `Compensated` events plus one `Failed` event. `process` is one run; `poll(now, max)`
//!   is at most `max` runs. So a stage sets `MAX_FANOUT = MAX_OUTPUTS_PER_RUN` and calls
//!   `poll(now, 1, …)` in `end_of_batch`, or sizes the emitter for `max` runs.
//! * Outputs are items: a completed item keeps `header.what == What::Record` and gets
//!   `steps = StepSummary { chain, step: steps run, state: Completed, attempt: total
//!   attempts, duration_ns: time spent running steps }`. Lifecycle events are copies of
//!   the item with `header.what == What::Step` and `steps` describing the step. A failed
//!   chain's record does not continue as a record; its `Failed` event carries it.
//! * Allocation: only at configuration ([`ReactorConfig::builder`], [`Reactor::new`]);
//!   `process` and `poll` allocate nothing (proven by `tests/flow_reactor_alloc.rs`).
//!
//! See `docs/reactor.md` for the whole story (policies, capacities, ordering).
//!
//! # Example
//!
//! ```
//! use ebbflow::flow::reactor::steps::{FaultInjector, Validate};
//! use ebbflow::flow::reactor::{ChainConfig, ManualTime, Reactor, ReactorConfig, RetryPolicy};
//! use ebbflow::flow::{Item, StepState};
//! use ebbflow::sources::intern::Symbol;
//! use ebbflow::sources::record::{Kind, Op, Record};
//!
//! let config = ReactorConfig::builder()
//!     .chain(
//!         ChainConfig::new("pods")
//!             .kinds(&[Kind::Pod])
//!             .step(Validate::default())
//!             // Injected faults, for the demo: every attempt fails transiently.
//!             .step(FaultInjector::new(1_000_000, 0, 1)),
//!     )
//!     .retry(RetryPolicy { base_ns: 1_000, max_delay_ns: 4_000, max_attempts: 2, jitter_per_mille: 0 })
//!     .build()?;
//! let time = ManualTime::new(0); // tests drive time; a stage uses `Reactor::new` (TSC)
//! let mut reactor = Reactor::with_time(config, time);
//!
//! let mut pod = Record::new(Kind::Pod, Op::Modified);
//! pod.key = 42;
//! pod.name = Symbol::from_id(7);
//! let mut out = Vec::new();
//! reactor.process(Item::from_record(pod), 0, &mut |i: Item| out.push(i.steps.state));
//! assert_eq!(out, [StepState::Retried]);
//! assert_eq!(reactor.parked(), 1);
//! assert_eq!(reactor.next_due(), Some(1_000));
//! reactor.poll(1_000, 1, &mut |i: Item| out.push(i.steps.state));
//! // Second attempt failed too: Validate is compensated, then the chain fails.
//! assert_eq!(out, [StepState::Retried, StepState::Compensated, StepState::Failed]);
//! # Ok::<(), ebbflow::flow::reactor::ConfigErrors>(())
//! ```

mod config;
mod orchestrator;
mod park;
mod retry;
mod router;
mod run;
mod stats;
mod step;
pub mod steps;
mod time;

pub use config::{
    ChainConfig, ConfigError, ConfigErrors, ReactorConfig, ReactorConfigBuilder,
    DEFAULT_RETRY_CAPACITY, MAX_CHAINS, MAX_RETRY_CAPACITY, MAX_ROUTES,
};
pub use orchestrator::Reactor;
pub use retry::RetryPolicy;
pub use stats::{ChainStats, FailReason, Failure, ReactorStats};
pub use step::{Step, StepError};
pub use time::{ManualTime, TimeSource, Timing, TscTime};

/// Most steps in one chain (step indices and attempt counts are `u8`; the bound also
/// bounds the outputs of one run).
pub const MAX_STEPS: usize = 8;

/// Most items one run emits: a final failure at the last step of a full chain emits
/// `MAX_STEPS − 1` `Compensated` events and one `Failed` event.
pub const MAX_OUTPUTS_PER_RUN: usize = MAX_STEPS;
