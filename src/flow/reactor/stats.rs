//! Reactor counters and failure reasons.

/// Why a chain failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// A step failed with [`StepError::Permanent`](super::StepError::Permanent).
    Permanent {
        /// The step's code.
        code: u16,
    },
    /// A step failed transiently on its last allowed attempt.
    AttemptsExhausted {
        /// The code of the last failure.
        code: u16,
    },
    /// A step failed transiently but the retry table was full, so it could not wait for
    /// a retry: the chain failed at once (overflow policy; counted in
    /// [`ReactorStats::overflows`]).
    RetryTableFull {
        /// The code of the transient failure.
        code: u16,
    },
    /// The item arrived behind a parked item of the same key and the retry table was
    /// full, so it could neither wait nor overtake: it failed without running a step
    /// (overflow policy; counted in [`ReactorStats::overflows`]).
    QueueFull,
}

/// The last chain failure, for logs and diagnostics (lifecycle events carry no reason
/// code; see `docs/reactor.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `record.key` of the item.
    pub key: u64,
    /// `record.seq` of the item.
    pub seq: u64,
    /// Chain id.
    pub chain: u8,
    /// Index of the failing step (0 for [`FailReason::QueueFull`]).
    pub step: u8,
    /// Attempts made on that step (0 for [`FailReason::QueueFull`]).
    pub attempt: u8,
    /// Why.
    pub reason: FailReason,
}

/// Counters of one chain.
///
/// Once nothing of the chain is parked, `started == completed + failed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainStats {
    /// Items routed to the chain (including those that had to wait behind a parked key).
    pub started: u64,
    /// Chains that ran every step successfully.
    pub completed: u64,
    /// Retries scheduled (one `Retried` event each).
    pub retried: u64,
    /// Compensations run (one `Compensated` event each).
    pub compensated: u64,
    /// Chains that failed (one `Failed` event each).
    pub failed: u64,
}

/// Counters of a reactor, across chains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorStats {
    /// Items passed on untouched: not a record, or a kind without a chain.
    pub passed_through: u64,
    /// Items parked now (retrying, or waiting behind one of their key).
    pub parked: u64,
    /// Largest `parked` seen.
    pub parked_high_water: u64,
    /// Items that arrived while an item of their key was parked and were queued behind
    /// it (per-key order).
    pub queued_behind: u64,
    /// Items that found the retry table full ([`FailReason::RetryTableFull`] and
    /// [`FailReason::QueueFull`]).
    pub overflows: u64,
    /// Chains failed by a permanent error.
    pub failed_permanent: u64,
    /// Chains failed after their last attempt.
    pub failed_exhausted: u64,
    /// Chains failed by the overflow policy (equals `overflows`).
    pub failed_overflow: u64,
}
