//! The typed stage chain and its run-time form.
//!
//! The builder appends stages to a right-nested type, `Then<A, Then<B, Then<C, End>>>`, so
//! a chain whose types do not line up does not compile, and an empty chain has no `build`.
//! Building turns it into nested [`Node`]s, each owning its stage, its preallocated
//! emitter and its meter. Between two stages sits a [`Hop`]: a direct call when placement
//! fuses them, a ring to another thread otherwise. The hop's variant is fixed at build
//! time, so its branch is perfectly predicted, and nothing on the path is `dyn`.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};

use super::control::{Control, Halt};
use super::placement::Plan;
use super::ring::{link, Backpressure, Inbound, LinkShared, Outbound};
use super::stage::{Emitter, Event, InPlace, Stage};
use super::stats::{StageMeter, StageShared};
use super::wait::WaitStrategy;
use super::Timing;

/// The end of a chain: outputs go to the pipeline's output ring.
pub struct End;

/// Stage `S` followed by the rest of the chain `R`.
pub struct Then<S, R> {
    stage: S,
    rest: R,
}

/// Type-level append: adds stage `S` at the end of a chain.
pub trait Append<S> {
    /// The chain with `S` appended.
    type Output;
    /// Appends `stage`.
    fn append(self, stage: S) -> Self::Output;
}

impl<S> Append<S> for End {
    type Output = Then<S, End>;
    fn append(self, stage: S) -> Self::Output {
        Then { stage, rest: End }
    }
}

impl<S, A, R: Append<S>> Append<S> for Then<A, R> {
    type Output = Then<A, R::Output>;
    fn append(self, stage: S) -> Self::Output {
        Then {
            stage: self.stage,
            rest: self.rest.append(stage),
        }
    }
}

/// What a pipeline thread knows about itself.
#[derive(Clone)]
pub(crate) struct ThreadSpec {
    pub(crate) index: usize,
    pub(crate) wait: WaitStrategy,
    pub(crate) core: Option<usize>,
    /// Every stage's name and `MAX_FANOUT`, for error reports.
    pub(crate) names: Arc<[(String, usize)]>,
}

/// Per-thread context threaded through a batch.
pub struct ThreadCx {
    pub(crate) control: Arc<Control>,
    /// Index of the stage currently running (read if it panics).
    pub(crate) current: usize,
    pub(crate) spec: ThreadSpec,
}

/// Something a batch of `T` can be handed to on the same thread.
pub trait Downstream<T>: Send + 'static {
    /// Processes (or forwards) a batch.
    fn accept(&mut self, batch: &[T], cx: &mut ThreadCx) -> Result<(), Halt>;
    /// Processes a batch held in a buffer the caller owns and clears afterwards: a fused
    /// in-place stage works on it where it lies (see [`Stage::process_in_place`]).
    #[inline(always)]
    fn accept_owned(&mut self, batch: &mut Vec<T>, cx: &mut ThreadCx) -> Result<(), Halt> {
        self.accept(batch, cx)
    }
    /// Folds the histograms of this thread's stages into the shared ones. False if a
    /// reader held a lock; retry later.
    fn publish(&mut self) -> bool;
    /// Moves drop-oldest overflow into rings; returns how many events are still parked.
    fn flush_idle(&mut self) -> usize;
    /// The thread is idle: each fused stage's [`Stage::on_idle`], in chain order, its
    /// outputs handed on like a batch's.
    fn on_idle(&mut self, cx: &mut ThreadCx) -> Result<(), Halt>;
    /// Whether a batch handed here goes straight into a ring to another thread (rather
    /// than to a stage fused on this thread).
    fn hands_to_ring(&self) -> bool;
    /// The input is closed and drained: lets each fused stage emit what it still holds
    /// ([`Stage::on_close`]), in chain order. Stages behind a ring close on their own thread.
    fn close(&mut self, cx: &mut ThreadCx) -> Result<(), Halt>;
}

/// A stage at run time.
pub struct Node<S: Stage, D> {
    stage: S,
    emitter: Emitter<S::Out>,
    /// An in-place stage fed a borrowed slice (from a ring) copies it here first.
    scratch: Vec<S::In>,
    meter: StageMeter,
    index: usize,
    max_batch: usize,
    down: D,
}

impl<S: Stage, D: Downstream<S::Out>> Downstream<S::In> for Node<S, D> {
    #[inline]
    fn accept(&mut self, batch: &[S::In], cx: &mut ThreadCx) -> Result<(), Halt> {
        if self.works_in_place() {
            let mut scratch = std::mem::take(&mut self.scratch);
            let r = batch.chunks(self.max_batch).try_for_each(|chunk| {
                scratch.clear();
                scratch.extend_from_slice(chunk);
                self.in_place(&mut scratch, cx)
            });
            scratch.clear();
            self.scratch = scratch;
            return r;
        }
        self.copying(batch, cx)
    }

    #[inline]
    fn accept_owned(&mut self, batch: &mut Vec<S::In>, cx: &mut ThreadCx) -> Result<(), Halt> {
        if self.works_in_place() {
            self.in_place(batch, cx)
        } else {
            self.copying(batch, cx)
        }
    }

    fn publish(&mut self) -> bool {
        let mine = self.meter.publish();
        self.down.publish() && mine
    }

    fn flush_idle(&mut self) -> usize {
        self.down.flush_idle()
    }

    fn on_idle(&mut self, cx: &mut ThreadCx) -> Result<(), Halt> {
        cx.current = self.index;
        self.stage.on_idle(&mut self.emitter);
        if self.emitter.overflowed() {
            return Err(Halt::Overflow(self.index));
        }
        if !self.emitter.is_empty() {
            let emitted = self.emitter.len() as u64;
            let r = self.down.accept_owned(self.emitter.buf_mut(), cx);
            self.emitter.clear();
            self.meter.count(0, emitted, 0);
            r?;
        }
        self.down.on_idle(cx)
    }

    fn hands_to_ring(&self) -> bool {
        false
    }

    fn close(&mut self, cx: &mut ThreadCx) -> Result<(), Halt> {
        cx.current = self.index;
        loop {
            self.emitter.clear();
            let more = self.stage.on_close(&mut self.emitter);
            if self.emitter.overflowed() {
                return Err(Halt::Overflow(self.index));
            }
            if !self.emitter.is_empty() {
                let n = self.emitter.len() as u64;
                let r = self.down.accept_owned(self.emitter.buf_mut(), cx);
                self.emitter.clear();
                self.meter.count(0, n, 0);
                r?;
            }
            if !more {
                break;
            }
        }
        self.down.close(cx)
    }
}

impl<S: Stage, D: Downstream<S::Out>> Node<S, D> {
    /// Whether batches go to [`Stage::process_in_place`]: the stage asks for it, its output
    /// type is its input type, and timing is not per event (which times each `process`).
    #[inline(always)]
    fn works_in_place(&self) -> bool {
        S::IN_PLACE
            && TypeId::of::<S::In>() == TypeId::of::<S::Out>()
            && self.meter.timing() != Timing::PerEvent
    }

    /// The copying path: `process_batch` into the emitter, in batches of `max_batch`.
    #[inline]
    fn copying(&mut self, batch: &[S::In], cx: &mut ThreadCx) -> Result<(), Halt> {
        // A fused predecessor with fan-out > 1 can hand over more than `max_batch` events;
        // the emitter is sized for `max_batch` inputs, so split.
        if batch.len() <= self.max_batch {
            self.accept_batch(batch, cx)
        } else {
            batch
                .chunks(self.max_batch)
                .try_for_each(|chunk| self.accept_batch(chunk, cx))
        }
    }

    /// The in-place path: the stage changes `batch` where it lies, which then goes on
    /// (followed by what `end_of_batch` emitted). A batch the stage declines takes the
    /// copying path.
    #[inline]
    fn in_place(&mut self, batch: &mut Vec<S::In>, cx: &mut ThreadCx) -> Result<(), Halt> {
        cx.current = self.index;
        let n = batch.len() as u64;
        let timed = self.meter.time_this_batch();
        let t0 = if timed { self.meter.now() } else { 0 };
        if !self
            .stage
            .process_in_place(&mut InPlace::new(batch), &mut self.emitter)
        {
            return self.copying(batch, cx);
        }
        self.stage.end_of_batch(&mut self.emitter);
        if self.emitter.overflowed() {
            return Err(Halt::Overflow(self.index));
        }
        let out = (batch as &mut dyn Any)
            .downcast_mut::<Vec<S::Out>>()
            .expect("works_in_place checked that In is Out");
        let emitted = (out.len() + self.emitter.len()) as u64;
        let t1 = (timed && !self.down.hands_to_ring()).then(|| self.meter.now());
        let mut result = if out.is_empty() {
            Ok(())
        } else {
            self.down.accept_owned(out, cx)
        };
        if result.is_ok() && !self.emitter.is_empty() {
            result = self.down.accept_owned(self.emitter.buf_mut(), cx);
        }
        self.emitter.clear();
        let over = if timed {
            let t1 = t1.unwrap_or_else(|| self.meter.now());
            self.meter.record_batch(t1.wrapping_sub(t0), n)
        } else {
            0
        };
        self.meter.count(n, emitted, over);
        result
    }

    #[inline]
    fn accept_batch(&mut self, batch: &[S::In], cx: &mut ThreadCx) -> Result<(), Halt> {
        cx.current = self.index;
        let n = batch.len() as u64;
        // Clock reads bracket the stage; recording and counting wait until the outputs
        // have been handed on, so bookkeeping never delays the next hop.
        let (timed, t0, t1, over) = if self.meter.timing() == Timing::PerEvent {
            let mut over = 0;
            let mut t0 = self.meter.now();
            for &event in batch {
                self.stage.process(event, &mut self.emitter);
                let t1 = self.meter.now();
                over += u64::from(self.meter.record_event(t1.wrapping_sub(t0)));
                t0 = t1;
            }
            self.stage.end_of_batch(&mut self.emitter);
            (false, 0, None, over)
        } else if self.meter.time_this_batch() {
            let t0 = self.meter.now();
            self.stage.process_batch(batch, &mut self.emitter);
            self.stage.end_of_batch(&mut self.emitter);
            // Before a ring, the end is read after the write instead (below), so the next
            // thread gets the events without waiting for a clock read.
            let t1 = (!self.down.hands_to_ring()).then(|| self.meter.now());
            (true, t0, t1, 0)
        } else {
            self.stage.process_batch(batch, &mut self.emitter);
            self.stage.end_of_batch(&mut self.emitter);
            (false, 0, None, 0)
        };
        if self.emitter.overflowed() {
            return Err(Halt::Overflow(self.index));
        }
        let emitted = self.emitter.len() as u64;
        let result = if emitted == 0 {
            Ok(())
        } else {
            let r = self.down.accept_owned(self.emitter.buf_mut(), cx);
            self.emitter.clear();
            r
        };
        let over = if timed {
            let t1 = t1.unwrap_or_else(|| self.meter.now());
            self.meter.record_batch(t1.wrapping_sub(t0), n)
        } else {
            over
        };
        self.meter.count(n, emitted, over);
        result
    }
}

/// The connection from one stage to the next.
pub enum Hop<T, N> {
    /// The next stage runs on this thread.
    Fused(N),
    /// The next stage runs on another thread, behind a ring.
    Ring(Outbound<T>),
}

impl<T: Event, N: Downstream<T>> Downstream<T> for Hop<T, N> {
    #[inline(always)]
    fn accept(&mut self, batch: &[T], cx: &mut ThreadCx) -> Result<(), Halt> {
        match self {
            Hop::Fused(next) => next.accept(batch, cx),
            Hop::Ring(out) => out.push_slice(batch, &cx.control),
        }
    }

    #[inline(always)]
    fn accept_owned(&mut self, batch: &mut Vec<T>, cx: &mut ThreadCx) -> Result<(), Halt> {
        match self {
            Hop::Fused(next) => next.accept_owned(batch, cx),
            Hop::Ring(out) => out.push_slice(batch, &cx.control),
        }
    }

    fn publish(&mut self) -> bool {
        match self {
            Hop::Fused(next) => next.publish(),
            Hop::Ring(_) => true,
        }
    }

    fn flush_idle(&mut self) -> usize {
        match self {
            Hop::Fused(next) => next.flush_idle(),
            Hop::Ring(out) => out.flush_overflow(),
        }
    }

    #[inline]
    fn on_idle(&mut self, cx: &mut ThreadCx) -> Result<(), Halt> {
        match self {
            Hop::Fused(next) => next.on_idle(cx),
            // The stages behind the ring have idle turns of their own.
            Hop::Ring(_) => Ok(()),
        }
    }

    #[inline(always)]
    fn hands_to_ring(&self) -> bool {
        matches!(self, Hop::Ring(_))
    }

    fn close(&mut self, cx: &mut ThreadCx) -> Result<(), Halt> {
        match self {
            Hop::Fused(next) => next.close(cx),
            Hop::Ring(_) => Ok(()),
        }
    }
}

/// Where the last stage's outputs go.
pub enum Tail<T> {
    /// The output ring to the host (a threaded [`Pipeline`](super::Pipeline)).
    Ring(Outbound<T>),
    /// The buffer an [`InlinePipeline`](super::InlinePipeline) drains after each call,
    /// reserved at build time for one batch's worth of outputs.
    Collect(Arc<Mutex<Vec<T>>>),
}

impl<T: Event> Downstream<T> for Tail<T> {
    #[inline(always)]
    fn accept(&mut self, batch: &[T], cx: &mut ThreadCx) -> Result<(), Halt> {
        match self {
            Tail::Ring(out) => out.push_slice(batch, &cx.control),
            Tail::Collect(buf) => {
                // Uncontended: only the caller's thread ever locks it.
                buf.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(batch);
                Ok(())
            }
        }
    }

    fn publish(&mut self) -> bool {
        true
    }

    fn flush_idle(&mut self) -> usize {
        match self {
            Tail::Ring(out) => out.flush_overflow(),
            Tail::Collect(_) => 0,
        }
    }

    fn on_idle(&mut self, _cx: &mut ThreadCx) -> Result<(), Halt> {
        Ok(())
    }

    #[inline(always)]
    fn hands_to_ring(&self) -> bool {
        matches!(self, Tail::Ring(_))
    }

    fn close(&mut self, _cx: &mut ThreadCx) -> Result<(), Halt> {
        Ok(())
    }
}

/// Settings of one stage, collected by the builder.
#[derive(Debug, Clone)]
pub(crate) struct StageConfig {
    pub(crate) name: String,
    pub(crate) budget: std::time::Duration,
    /// Capacity of the ring in front of this stage (used only where one exists).
    pub(crate) capacity: usize,
    pub(crate) backpressure: Backpressure,
}

/// A thread's body, ready to spawn.
pub(crate) type SegmentBody = Box<dyn FnOnce(ThreadCx) + Send>;

/// Everything `build` accumulates while it turns the chain into nodes.
pub struct Assembly {
    pub(crate) plan: Plan,
    pub(crate) configs: Vec<StageConfig>,
    pub(crate) max_batch: usize,
    pub(crate) timing: Timing,
    pub(crate) host_wait: WaitStrategy,
    pub(crate) output_capacity: usize,
    pub(crate) output_backpressure: Backpressure,
    pub(crate) stage_shared: Vec<Arc<StageShared>>,
    /// Rings between threads, in pipeline order (the input and output rings are added by
    /// the builder).
    pub(crate) links: Vec<Arc<LinkShared>>,
    /// Thread bodies for every thread but the first, which the builder starts itself.
    pub(crate) segments: Vec<(usize, SegmentBody)>,
    /// The output ring's consuming end, as `Inbound<Out>`; for an inline pipeline, the
    /// collecting buffer, as `Arc<Mutex<Vec<Out>>>`.
    pub(crate) output: Option<Box<dyn Any + Send>>,
    /// Building an [`InlinePipeline`](super::InlinePipeline): outputs are collected, not
    /// sent to a ring; the value is the buffer's reserved length.
    pub(crate) inline_outputs: Option<usize>,
}

/// A non-empty chain of stages consuming `In`.
pub trait Chain<In: Event>: Send + 'static {
    /// What the last stage emits.
    type Out: Event;
    /// The run-time form of the first stage (and everything fused after it).
    type Runtime: Downstream<In>;
    /// Builds the nodes from stage `at` on.
    fn instantiate(self, at: usize, asm: &mut Assembly) -> Self::Runtime;
}

/// What follows a stage emitting `T`: more stages, or the output ring.
pub trait Continuation<T: Event>: Send + 'static {
    /// What the pipeline finally emits.
    type Out: Event;
    /// The run-time form of the hop after the stage.
    type Down: Downstream<T>;
    /// Builds the hop after stage `at`.
    fn instantiate_after(self, at: usize, asm: &mut Assembly) -> Self::Down;
}

impl<S: Stage, R: Continuation<S::Out>> Chain<S::In> for Then<S, R> {
    type Out = R::Out;
    type Runtime = Node<S, R::Down>;

    fn instantiate(self, at: usize, asm: &mut Assembly) -> Self::Runtime {
        let shared = asm.stage_shared[at].clone();
        let meter = StageMeter::new(shared, asm.timing);
        let emitter = Emitter::with_capacity((asm.max_batch + 1) * S::MAX_FANOUT.max(1));
        let scratch = if S::IN_PLACE {
            Vec::with_capacity(asm.max_batch)
        } else {
            Vec::new()
        };
        let down = self.rest.instantiate_after(at, asm);
        Node {
            stage: self.stage,
            emitter,
            scratch,
            meter,
            index: at,
            max_batch: asm.max_batch,
            down,
        }
    }
}

impl<T: Event> Continuation<T> for End {
    type Out = T;
    type Down = Tail<T>;

    fn instantiate_after(self, at: usize, asm: &mut Assembly) -> Self::Down {
        if let Some(reserve) = asm.inline_outputs {
            let buf = Arc::new(Mutex::new(Vec::with_capacity(reserve)));
            asm.output = Some(Box::new(buf.clone()));
            return Tail::Collect(buf);
        }
        let thread = asm.plan.thread_of(at);
        let (out, inbound) = link::<T>(
            "output".to_string(),
            asm.output_capacity,
            asm.output_backpressure,
            asm.plan.waits[thread],
            asm.host_wait,
            asm.max_batch,
        );
        asm.output = Some(Box::new(inbound));
        Tail::Ring(out)
    }
}

impl<S: Stage, R: Continuation<S::Out>> Continuation<S::In> for Then<S, R> {
    type Out = R::Out;
    type Down = Hop<S::In, Node<S, R::Down>>;

    fn instantiate_after(self, at: usize, asm: &mut Assembly) -> Self::Down {
        let next = at + 1;
        if asm.plan.fused_after(at) {
            return Hop::Fused(self.instantiate(next, asm));
        }
        let (from, to) = (asm.plan.thread_of(at), asm.plan.thread_of(next));
        let config = &asm.configs[next];
        let (out, inbound) = link::<S::In>(
            format!("{} -> {}", asm.configs[at].name, config.name),
            config.capacity,
            config.backpressure,
            asm.plan.waits[from],
            asm.plan.waits[to],
            asm.max_batch,
        );
        asm.links.push(out.shared.clone());
        let node = self.instantiate(next, asm);
        asm.segments.push((
            to,
            Box::new(move |cx| super::runtime::run_segment(inbound, node, cx, false)),
        ));
        Hop::Ring(out)
    }
}

/// Runs one thread's share of the pipeline; used by the builder for the first thread.
pub(crate) fn segment_body<T: Event, D: Downstream<T>>(
    inbound: Inbound<T>,
    head: D,
    is_head: bool,
) -> SegmentBody {
    Box::new(move |cx| super::runtime::run_segment(inbound, head, cx, is_head))
}
