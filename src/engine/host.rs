//! Host stages: the first stages of a threaded pipeline, run on the thread that pushes
//! (see [`PipelineBuilder::host_stages`](super::PipelineBuilder::host_stages)).
//!
//! ```text
//! host: push ─▶ stage a → stage b ──▶ [ring] ──▶ thread 1: stage c → … ──▶ [ring] ──Output──▶ host
//! ```
//!
//! A source thread that would otherwise wait for room in the input ring does the first
//! stages' work itself; on a 2-core machine both cores then run stages, with one ring hop
//! and no third thread. The [`Input`](super::Input) owns the host stages' nodes: each push
//! runs them, in batches of at most `max_batch`, and the last of them hands its outputs to
//! the ring of the first pipeline thread. Statistics, budgets, fan-out bounds and failure
//! handling are the pipeline threads' own: a host stage that panics fails the pipeline
//! with [`PipelineError::StagePanicked`], and every later push is refused.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::chain::{Downstream, ThreadCx};
use super::control::{Control, Halt};
use super::ring::LinkShared;
use super::runtime::{caller_failure, panic_message};
use super::stage::Event;
use super::PipelineError;

/// The host stages' nodes and the host's thread context (thread 0 of the plan).
pub(crate) struct HostStages<T: Event> {
    head: Box<dyn Downstream<T>>,
    cx: ThreadCx,
    control: Arc<Control>,
    /// The ring from the last host stage to the first pipeline thread.
    ring: Arc<LinkShared>,
    max_batch: usize,
    /// The last statistics epoch whose histograms the host folded in.
    folded_epoch: u64,
    /// Drop-oldest events parked before the ring, as of the last push or flush.
    parked: usize,
}

impl<T: Event> HostStages<T> {
    pub(crate) fn new(
        head: Box<dyn Downstream<T>>,
        cx: ThreadCx,
        ring: Arc<LinkShared>,
        max_batch: usize,
    ) -> Self {
        let control = cx.control.clone();
        control.set_host_input_open(true);
        HostStages {
            head,
            cx,
            control,
            ring,
            max_batch,
            folded_epoch: 0,
            parked: 0,
        }
    }

    /// Runs `events` through the host stages, `max_batch` at a time. Fails the pipeline
    /// and returns `false` if a stage panics or breaks its fan-out bound, or if the
    /// pipeline is aborting.
    #[inline]
    pub(crate) fn run(&mut self, events: &[T]) -> bool {
        let (head, cx, max_batch) = (&mut self.head, &mut self.cx, self.max_batch);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            events
                .chunks(max_batch)
                .try_for_each(|chunk| head.accept(chunk, cx))
        }));
        let ok = self.check(outcome);
        self.fold_if_asked();
        ok
    }

    /// [`run`](Self::run) for events the caller gives up: a batch of at most `max_batch`
    /// is handed to the first stage as its own buffer, so a first stage that works in
    /// place does so there, without a copy. `events` is left empty, its capacity kept.
    #[inline]
    pub(crate) fn run_owned(&mut self, events: &mut Vec<T>) -> bool {
        if events.len() > self.max_batch {
            let ok = self.run(events);
            events.clear();
            return ok;
        }
        let (head, cx) = (&mut self.head, &mut self.cx);
        let outcome = catch_unwind(AssertUnwindSafe(|| head.accept_owned(events, cx)));
        events.clear();
        let ok = self.check(outcome);
        self.fold_if_asked();
        ok
    }

    /// The host stages' idle turn ([`Stage::on_idle`](super::Stage::on_idle): retries
    /// whose backoff has passed), then moves drop-oldest events parked before the ring
    /// into it as far as there is room; returns how many are still parked.
    pub(crate) fn flush(&mut self) -> usize {
        let (head, cx) = (&mut self.head, &mut self.cx);
        let outcome = catch_unwind(AssertUnwindSafe(|| head.on_idle(cx)));
        self.check(outcome);
        self.parked = self.head.flush_idle();
        self.fold_if_asked();
        self.parked
    }

    /// Drop-oldest events parked before the ring, as of the last push or flush.
    pub(crate) fn parked(&self) -> usize {
        self.parked
    }

    /// The ring after the host stages.
    pub(crate) fn ring(&self) -> &LinkShared {
        &self.ring
    }

    /// Folds the host stages' histograms into the shared ones now (a snapshot reader holds
    /// the lock only briefly). Returns whether every stage's fold went through.
    pub(crate) fn publish(&mut self) -> bool {
        self.head.publish()
    }

    /// A snapshot was requested since the last fold: fold and acknowledge it, as a
    /// pipeline thread does between batches. One relaxed load when nothing was asked.
    #[inline]
    fn fold_if_asked(&mut self) {
        let epoch = self.control.stats_epoch.load(Ordering::Relaxed);
        if epoch != self.folded_epoch && self.head.publish() {
            self.folded_epoch = epoch;
            self.control.acks[0].store(epoch, Ordering::Release);
        }
    }

    /// End of stream: the host stages hand on what they still hold
    /// ([`Stage::on_close`](super::Stage::on_close)).
    pub(crate) fn close(&mut self) {
        let (head, cx) = (&mut self.head, &mut self.cx);
        let outcome = catch_unwind(AssertUnwindSafe(|| head.close(cx)));
        self.check(outcome);
    }

    /// Turns a push's outcome into the pipeline's failure.
    fn check(&mut self, outcome: std::thread::Result<Result<(), Halt>>) -> bool {
        let ok = matches!(outcome, Ok(Ok(())));
        // An abort is another thread's failure, already recorded.
        if let Some(failure) = caller_failure(outcome, &self.cx, || None) {
            self.control.fail(failure);
        }
        ok
    }
}

impl<T: Event> Drop for HostStages<T> {
    fn drop(&mut self) {
        while !self.head.publish() {
            std::thread::yield_now();
        }
        // Dropping the nodes drops the stages (their `Drop` may panic) and the ring's
        // producing end, which tells the first pipeline thread that the stream ended.
        let head = std::mem::replace(&mut self.head, Box::new(Closed));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(head))) {
            self.control.fail(PipelineError::StagePanicked {
                stage: self.cx.spec.names[0].0.clone(),
                index: 0,
                message: format!(
                    "while dropping the host stages: {}",
                    panic_message(&*payload)
                ),
            });
        }
        self.control.acks[0].store(u64::MAX, Ordering::Release);
        self.control.set_host_input_open(false);
    }
}

/// What is left in place of the host stages once they are dropped.
struct Closed;

impl<T> Downstream<T> for Closed {
    fn accept(&mut self, _batch: &[T], _cx: &mut ThreadCx) -> Result<(), Halt> {
        Err(Halt::Abort)
    }
    fn publish(&mut self) -> bool {
        true
    }
    fn flush_idle(&mut self) -> usize {
        0
    }
    fn on_idle(&mut self, _cx: &mut ThreadCx) -> Result<(), Halt> {
        Ok(())
    }
    fn hands_to_ring(&self) -> bool {
        false
    }
    fn close(&mut self, _cx: &mut ThreadCx) -> Result<(), Halt> {
        Ok(())
    }
}
