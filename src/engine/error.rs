//! Error types: one enum per operation, each giving back what could not be delivered.

use std::fmt;
use std::time::Duration;

/// Why a running pipeline stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// A stage panicked. The pipeline stopped; the panic message is kept.
    #[error("stage `{stage}` (#{index}) panicked: {message}")]
    StagePanicked {
        /// The stage's name.
        stage: String,
        /// Its position in the pipeline.
        index: usize,
        /// The panic payload, if it was a string.
        message: String,
    },
    /// A stage emitted more events than its `MAX_FANOUT` allows, so the preallocated
    /// emitter could not hold them. The pipeline stopped rather than allocate or drop.
    #[error("stage `{stage}` (#{index}) emitted more than MAX_FANOUT = {max_fanout} events for one input")]
    EmitterOverflow {
        /// The stage's name.
        stage: String,
        /// Its position in the pipeline.
        index: usize,
        /// The declared bound.
        max_fanout: usize,
    },
    /// Shutdown waited `waited` for the threads to drain and gave up (usually an output
    /// handle that nobody reads). `in_flight` events were still in rings; they are
    /// reported, not silently lost.
    #[error("shutdown timed out after {waited:?} with {in_flight} events still in rings")]
    ShutdownTimedOut {
        /// How long shutdown waited.
        waited: Duration,
        /// Events left in rings when it gave up.
        in_flight: u64,
    },
    /// Shutdown started while the [`Input`](super::Input) that runs the host stages was
    /// still open. Host stages hand on what they hold (retries, windows) only when that
    /// input is closed, so the pipeline was stopped at once instead of draining, and this
    /// error says so rather than lose those events silently. Close the input first.
    #[error(
        "shutdown started with the input still open; its {host_stages} host stages were not closed"
    )]
    HostInputOpen {
        /// How many stages run on the host.
        host_stages: usize,
    },
}

/// Why a pipeline could not be built. Every problem found is listed, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pipeline configuration: {}", DisplayList(.problems))]
pub struct BuildError {
    /// All problems found.
    pub problems: Vec<ConfigProblem>,
}

struct DisplayList<'a>(&'a [ConfigProblem]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One problem in a pipeline configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// A ring was given zero slots.
    #[error("ring `{ring}` has capacity 0")]
    ZeroCapacity {
        /// Which ring.
        ring: String,
    },
    /// A stage was given a zero budget.
    #[error("stage `{stage}` has a budget of 0 µs")]
    ZeroBudget {
        /// Which stage.
        stage: String,
    },
    /// The batch size was zero.
    #[error("max_batch is 0")]
    ZeroBatch,
    /// Two stages share a name (names key the statistics).
    #[error("stage name `{name}` is used twice")]
    DuplicateStageName {
        /// The name.
        name: String,
    },
    /// A per-stage setting was given before any stage.
    #[error("`{setting}` was set before any stage was added")]
    SettingBeforeStage {
        /// The setting.
        setting: &'static str,
    },
    /// Placement groups did not cover the stages exactly.
    #[error("placement groups cover {covered} stages but the pipeline has {stages}")]
    GroupsDoNotCoverStages {
        /// Stages in the pipeline.
        stages: usize,
        /// Stages the groups add up to.
        covered: usize,
    },
    /// A placement group had no stage.
    #[error("placement group {group} is empty")]
    EmptyGroup {
        /// Its index.
        group: usize,
    },
    /// More threads were to be pinned than cores are allowed to this process.
    #[error("{threads} threads are to be pinned but only {cores} cores are allowed")]
    TooManyPinnedThreads {
        /// Threads to pin.
        threads: usize,
        /// Allowed cores.
        cores: usize,
    },
    /// A core id was named that this process may not run on.
    #[error("core {core} is not among the allowed cores {allowed:?}")]
    CoreNotAllowed {
        /// The core named.
        core: usize,
        /// The cores allowed.
        allowed: Vec<usize>,
    },
    /// Two threads were pinned to the same core.
    #[error("core {core} is given to more than one thread")]
    CoreReused {
        /// The core.
        core: usize,
    },
    /// More busy-spinning threads than cores: they would starve each other.
    #[error("{spinning} busy-spinning threads but only {cores} cores are allowed")]
    TooManySpinningThreads {
        /// Threads with `WaitStrategy::BusySpin`.
        spinning: usize,
        /// Allowed cores.
        cores: usize,
    },
    /// The OS refused to start a thread.
    #[error("thread {thread} could not be started: {reason}")]
    SpawnFailed {
        /// Which thread.
        thread: usize,
        /// The OS error.
        reason: String,
    },
    /// `Pinning::Cores` listed a different number of cores than there are threads.
    #[error("{listed} cores listed for pinning but the placement makes {threads} threads")]
    PinListLength {
        /// Cores listed.
        listed: usize,
        /// Threads the placement makes.
        threads: usize,
    },
    /// `host_stages` asked for every stage (or more): at least one must run on a pipeline
    /// thread.
    #[error("{host_stages} host stages asked for, but the pipeline has {stages} stages and at least one must run on a pipeline thread")]
    TooManyHostStages {
        /// The number asked for.
        host_stages: usize,
        /// Stages in the pipeline.
        stages: usize,
    },
    /// A per-thread setting named a thread that does not exist.
    #[error("thread {thread} does not exist (the placement makes {threads} threads)")]
    NoSuchThread {
        /// The index given.
        thread: usize,
        /// Threads the placement makes.
        threads: usize,
    },
}

/// Why the host could not push an event. The event is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError<T> {
    /// The ring is full (only from `try_push`, which never waits).
    #[error("input ring is full")]
    Full(T),
    /// The pipeline is shutting down or has failed; it accepts no more events.
    #[error("pipeline no longer accepts events")]
    Closed(T),
}

impl<T> PushError<T> {
    /// The event that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(t) | PushError::Closed(t) => t,
        }
    }
}

/// Why the host could not receive an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived within the timeout.
    #[error("no event within the timeout")]
    Timeout,
    /// The pipeline has finished and every output was read.
    #[error("pipeline finished and output is drained")]
    Finished,
}
