//! [`InlinePipeline`]: a chain of stages run on the caller's thread.
//!
//! The same stages, nodes, emitters, budgets and statistics as a threaded
//! [`Pipeline`](super::Pipeline), with every stage fused and no ring at either end: the
//! caller hands a batch to [`process`](InlinePipeline::process) and gets the outputs back
//! before the call returns. For hosts that want the stages on a thread of their own
//! choosing (an event loop, a test, a single-core box) and for instruction-count
//! measurements, where a spinning second thread would make counts depend on scheduling.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use super::chain::{Downstream, ThreadCx};
use super::control::Halt;
use super::error::PipelineError;
use super::pipeline::stage_snapshot;
use super::stage::Event;
use super::stats::{PipelineStats, StageShared, ThreadStats};

/// The most outputs reserved for one batch (8 Mi events); chains whose fan-out bound
/// exceeds it grow the buffer when a batch really produces that many (an allocation,
/// never a loss).
pub(crate) const INLINE_RESERVE_LIMIT: usize = 1 << 23;

/// A pipeline whose stages run on the thread that calls it (built by
/// [`PipelineBuilder::build_inline`](super::PipelineBuilder::build_inline)).
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
/// let mut inline = PipelineBuilder::<u64>::new()
///     .stage("double", Double)
///     .build_inline()
///     .unwrap();
/// let mut got = Vec::new();
/// inline.process(&[1, 2, 3], |out| got.extend_from_slice(out)).unwrap();
/// assert_eq!(got, [2, 4, 6]);
/// let stats = inline.finish(|_| {}).unwrap();
/// assert_eq!(stats.stages[0].events_in, 3);
/// ```
///
/// Allocation: none per call in steady state. The output buffer is reserved at build time
/// for one batch of `max_batch` inputs times the stages' fan-out bounds; the statistics
/// snapshot ([`stats`](Self::stats), [`finish`](Self::finish)) builds its report.
pub struct InlinePipeline<In: Event, Out: Event> {
    head: Box<dyn Downstream<In>>,
    cx: ThreadCx,
    outputs: Arc<Mutex<Vec<Out>>>,
    stages: Vec<Arc<StageShared>>,
    threads: Vec<ThreadStats>,
    max_batch: usize,
    failure: Option<PipelineError>,
}

impl<In: Event, Out: Event> InlinePipeline<In, Out> {
    pub(crate) fn new(
        head: Box<dyn Downstream<In>>,
        cx: ThreadCx,
        outputs: Arc<Mutex<Vec<Out>>>,
        stages: Vec<Arc<StageShared>>,
        threads: Vec<ThreadStats>,
        max_batch: usize,
    ) -> Self {
        InlinePipeline {
            head,
            cx,
            outputs,
            stages,
            threads,
            max_batch,
            failure: None,
        }
    }

    /// Runs `events` through every stage, in batches of at most `max_batch`, handing the
    /// outputs of each batch to `sink` before the next batch starts.
    ///
    /// A stage that panics or breaks its fan-out bound fails the pipeline: this call and
    /// every later one return the error ([`PipelineError::StagePanicked`],
    /// [`PipelineError::EmitterOverflow`]); outputs produced before the failure were
    /// handed to `sink`.
    pub fn process(
        &mut self,
        events: &[In],
        mut sink: impl FnMut(&[Out]),
    ) -> Result<(), PipelineError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        for chunk in events.chunks(self.max_batch) {
            let (head, cx) = (&mut self.head, &mut self.cx);
            let outcome = catch_unwind(AssertUnwindSafe(|| head.accept(chunk, cx)));
            self.drain(&mut sink);
            self.check(outcome)?;
        }
        Ok(())
    }

    /// Gives every stage its idle turn ([`Stage::on_idle`](super::Stage::on_idle): work
    /// that is due by time, such as retries whose backoff has passed), in chain order, and
    /// hands what they emit, through the rest of the chain, to `sink`. An inline pipeline
    /// has no thread of its own to be idle on: a host that stops calling
    /// [`process`](Self::process) calls this now and then instead.
    pub fn idle(&mut self, mut sink: impl FnMut(&[Out])) -> Result<(), PipelineError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let (head, cx) = (&mut self.head, &mut self.cx);
        let outcome = catch_unwind(AssertUnwindSafe(|| head.on_idle(cx)));
        self.drain(&mut sink);
        self.check(outcome)
    }

    /// Folds the stages' histograms and returns the statistics (allocates the report).
    pub fn stats(&mut self) -> PipelineStats {
        self.head.publish();
        PipelineStats {
            stages: stage_snapshot(&self.stages),
            rings: Vec::new(),
            threads: self.threads.clone(),
            stale_threads: 0,
        }
    }

    /// The first failure, if a stage failed.
    pub fn failure(&self) -> Option<&PipelineError> {
        self.failure.as_ref()
    }

    /// End of stream: lets every stage hand on what it still holds
    /// ([`Stage::on_close`](super::Stage::on_close)), in chain order, passes those outputs
    /// to `sink`, and returns the final statistics.
    pub fn finish(mut self, mut sink: impl FnMut(&[Out])) -> Result<PipelineStats, PipelineError> {
        if self.failure.is_none() {
            let (head, cx) = (&mut self.head, &mut self.cx);
            let outcome = catch_unwind(AssertUnwindSafe(|| head.close(cx)));
            self.drain(&mut sink);
            self.check(outcome)?;
        }
        let stats = self.stats();
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(stats),
        }
    }

    fn drain(&mut self, sink: &mut impl FnMut(&[Out])) {
        let mut buf = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        if !buf.is_empty() {
            sink(&buf);
            buf.clear();
        }
    }

    /// Turns a batch's outcome into the pipeline's failure, kept for later calls.
    fn check(
        &mut self,
        outcome: std::thread::Result<Result<(), Halt>>,
    ) -> Result<(), PipelineError> {
        // No other thread can abort an inline pipeline; report it as the stage's.
        let cx = &self.cx;
        let aborted = || {
            Some(PipelineError::StagePanicked {
                stage: cx.spec.names[cx.current].0.clone(),
                index: cx.current,
                message: "aborted".to_string(),
            })
        };
        let Some(failure) = super::runtime::caller_failure(outcome, cx, aborted) else {
            return Ok(());
        };
        self.failure = Some(failure.clone());
        Err(failure)
    }
}
