//! One run of a chain for one item: the steps from where the item stopped, until it
//! completes, fails, or must wait for a retry.

use crate::flow::reactor::{
    ChainStats, FailReason, Failure, ReactorStats, RetryPolicy, Step, TimeSource, Timing, MAX_STEPS,
};
use crate::flow::{Item, StepState, StepSummary, What};
use crate::sources::gen::Rng;
use crate::sources::record::{Kind, Op, Record};

/// A chain as the reactor runs it.
pub(crate) struct Chain {
    pub(crate) name: String,
    pub(crate) steps: Vec<Box<dyn Step>>,
    pub(crate) policy: RetryPolicy,
    pub(crate) stats: ChainStats,
}

/// Where an item is in its chain (kept apart from the item so that a run works on the
/// item in place and only a parked item is copied into the retry table).
#[derive(Clone, Copy)]
pub(crate) struct Progress {
    /// Chain id.
    pub(crate) chain: u8,
    /// The step to run next.
    pub(crate) next: u8,
    /// Attempts already made on `next`.
    pub(crate) attempt: u8,
    /// Attempts each completed step took.
    pub(crate) step_attempts: [u8; MAX_STEPS],
    /// Their sum, saturating (kept as steps complete, so that a completed run does not
    /// add them up again).
    pub(crate) total_attempts: u8,
    /// Clock ticks spent running steps so far (waits excluded).
    pub(crate) spent_ticks: u64,
}

impl Progress {
    pub(crate) const fn new(chain: u8) -> Progress {
        Progress {
            chain,
            next: 0,
            attempt: 0,
            step_attempts: [0; MAX_STEPS],
            total_attempts: 0,
            spent_ticks: 0,
        }
    }
}

/// An empty item, to fill preallocated slots.
pub(crate) const fn empty_item() -> Item {
    Item::from_record(Record::new(Kind::Unknown, Op::Added))
}

/// How a run ended.
pub(crate) enum Outcome {
    /// Every step ran: the item carries its `Completed` summary; the caller emits it.
    Completed,
    /// Failed; its outputs are emitted.
    Done,
    /// A step failed transiently: retry at `due` (a `Retried` event is emitted).
    Retry {
        /// When, in the time source's ticks.
        due: u64,
    },
}

/// What a run borrows from the reactor besides the chain.
pub(crate) struct Env<'a, T> {
    pub(crate) rng: &'a mut Rng,
    pub(crate) time: &'a T,
    pub(crate) timing: Timing,
    pub(crate) stats: &'a mut ReactorStats,
    pub(crate) last_failure: &'a mut Option<Failure>,
}

impl<T> Env<'_, T> {
    /// A shorter-lived copy, to hand to a failure path by value: the `Env` of a run that
    /// completes then never needs to be laid out in memory.
    #[inline]
    pub(crate) fn reborrow(&mut self) -> Env<'_, T> {
        Env {
            rng: &mut *self.rng,
            time: self.time,
            timing: self.timing,
            stats: &mut *self.stats,
            last_failure: &mut *self.last_failure,
        }
    }
}

#[inline]
fn ns32(ns: u64) -> u32 {
    ns.min(u64::from(u32::MAX)) as u32
}

#[inline]
fn event(item: &Item, summary: StepSummary) -> Item {
    let mut e = *item;
    e.header.what = What::Step;
    e.steps = summary;
    e
}

/// Runs `item` through `chain` from step `st.next`. `can_park`: whether a transient
/// failure may wait for a retry (the item holds a slot, or one is free).
#[inline(always)]
pub(crate) fn run<T: TimeSource>(
    chain: &mut Chain,
    env: &mut Env<'_, T>,
    item: &mut Item,
    st: &mut Progress,
    now: u64,
    can_park: bool,
    out: &mut impl FnMut(Item),
) -> Outcome {
    // One copy of the run per timing mode, so that the clock decisions are made once
    // per call here rather than at every step.
    match env.timing {
        Timing::Off => run_timed::<T, false, false>(chain, env, item, st, now, can_park, out),
        Timing::Chain => run_timed::<T, true, false>(chain, env, item, st, now, can_park, out),
        Timing::PerStep => run_timed::<T, true, true>(chain, env, item, st, now, can_park, out),
    }
}

/// [`run`] for one timing mode: `MEASURE` reads the clock at all, `PER_STEP` after every
/// step.
#[inline]
fn run_timed<T: TimeSource, const MEASURE: bool, const PER_STEP: bool>(
    chain: &mut Chain,
    env: &mut Env<'_, T>,
    item: &mut Item,
    st: &mut Progress,
    now: u64,
    can_park: bool,
    out: &mut impl FnMut(Item),
) -> Outcome {
    let n = chain.steps.len();
    let measure = MEASURE;
    let per_step = PER_STEP;
    let run_start = if measure { env.time.ticks() } else { 0 };
    // Start of the current step (PerStep), else the start of the run.
    let mut mark = run_start;
    while (st.next as usize) < n {
        let i = st.next as usize;
        st.attempt = st.attempt.saturating_add(1);
        let result = chain.steps[i].run(item);
        let t = if per_step { env.time.ticks() } else { mark };
        let err = match result {
            Ok(()) => {
                st.step_attempts[i] = st.attempt;
                st.total_attempts = st.total_attempts.saturating_add(st.attempt);
                st.attempt = 0;
                st.next += 1;
                mark = t;
                continue;
            }
            Err(e) => e,
        };
        let t_fail = if per_step {
            t
        } else if measure {
            env.time.ticks()
        } else {
            0
        };
        let step_ticks = t_fail.saturating_sub(mark);
        st.spent_ticks = st
            .spent_ticks
            .saturating_add(t_fail.saturating_sub(run_start));
        let attempt = st.attempt;
        let code = err.code();
        let reason = if err.is_transient() {
            if chain.policy.may_retry(attempt) {
                if can_park {
                    let delay = chain.policy.delay_ns(attempt, env.rng);
                    let due = now.saturating_add(env.time.ns_to_ticks(delay));
                    chain.stats.retried += 1;
                    out(event(
                        item,
                        StepSummary {
                            chain: st.chain,
                            step: i as u8,
                            state: StepState::Retried,
                            attempt,
                            duration_ns: ns32(env.time.ticks_to_ns(step_ticks)),
                        },
                    ));
                    return Outcome::Retry { due };
                }
                env.stats.overflows += 1;
                env.stats.failed_overflow += 1;
                FailReason::RetryTableFull { code }
            } else {
                env.stats.failed_exhausted += 1;
                FailReason::AttemptsExhausted { code }
            }
        } else {
            env.stats.failed_permanent += 1;
            FailReason::Permanent { code }
        };
        fail(chain, env.reborrow(), item, st, i, reason, out);
        return Outcome::Done;
    }
    let end = if per_step {
        mark
    } else if measure {
        env.time.ticks()
    } else {
        0
    };
    st.spent_ticks = st.spent_ticks.saturating_add(end.saturating_sub(run_start));
    let attempts = st.total_attempts;
    item.steps = StepSummary {
        chain: st.chain,
        step: n as u8,
        state: StepState::Completed,
        attempt: attempts,
        // Without clock reads nothing was measured: 0, as `Timing::Off` documents.
        duration_ns: if measure {
            ns32(env.time.ticks_to_ns(st.spent_ticks))
        } else {
            0
        },
    };
    chain.stats.completed += 1;
    Outcome::Completed
}

/// Step `failed` finally failed: compensates steps `failed-1 … 0`, then emits `Failed`.
fn fail<T: TimeSource>(
    chain: &mut Chain,
    env: Env<'_, T>,
    item: &Item,
    st: &Progress,
    failed: usize,
    reason: FailReason,
    out: &mut impl FnMut(Item),
) {
    let measure = env.timing != Timing::Off;
    for j in (0..failed).rev() {
        let t0 = if measure { env.time.ticks() } else { 0 };
        chain.steps[j].compensate(item);
        let t1 = if measure { env.time.ticks() } else { 0 };
        chain.stats.compensated += 1;
        out(event(
            item,
            StepSummary {
                chain: st.chain,
                step: j as u8,
                state: StepState::Compensated,
                attempt: st.step_attempts[j],
                duration_ns: ns32(env.time.ticks_to_ns(t1.saturating_sub(t0))),
            },
        ));
    }
    failed_event(chain, env, item, st, failed as u8, reason, out);
}

/// Emits the `Failed` event for `item` at step `step` and records the failure.
pub(crate) fn failed_event<T: TimeSource>(
    chain: &mut Chain,
    env: Env<'_, T>,
    item: &Item,
    st: &Progress,
    step: u8,
    reason: FailReason,
    out: &mut impl FnMut(Item),
) {
    chain.stats.failed += 1;
    *env.last_failure = Some(Failure {
        key: item.record.key,
        seq: item.record.seq,
        chain: st.chain,
        step,
        attempt: st.attempt,
        reason,
    });
    out(event(
        item,
        StepSummary {
            chain: st.chain,
            step,
            state: StepState::Failed,
            attempt: st.attempt,
            duration_ns: ns32(env.time.ticks_to_ns(st.spent_ticks)),
        },
    ));
}
