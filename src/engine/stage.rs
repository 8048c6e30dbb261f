//! The [`Stage`] trait and the preallocated [`Emitter`] a stage writes its outputs into.

/// A value that can travel through a pipeline: fixed-size, `Copy`, no borrowed data.
///
/// Every `Copy + Send + 'static` type qualifies. Rings are preallocated arrays of events, so
/// a small event (one cache line, 64 bytes, is a good default) keeps a hop to one
/// cache-line transfer.
pub trait Event: Copy + Send + 'static {}
impl<T: Copy + Send + 'static> Event for T {}

/// One step of a pipeline: consumes `In` events and emits zero or more `Out` events.
///
/// A stage runs on exactly one thread and owns its state; it never shares mutable state
/// except through the pipeline's rings. Stages see batches: the engine calls
/// [`process_batch`](Stage::process_batch) with every event it drained from a ring in one
/// go, then [`end_of_batch`](Stage::end_of_batch) once, where a stage may flush what it
/// aggregated.
///
/// # Contract
///
/// * At most [`MAX_FANOUT`](Stage::MAX_FANOUT) outputs per input event, and at most
///   `MAX_FANOUT` from `end_of_batch`. The emitter is preallocated for exactly that; an
///   emit past it stops the pipeline with
///   [`PipelineError::EmitterOverflow`](crate::engine::PipelineError::EmitterOverflow)
///   naming the stage, rather than allocating or dropping.
/// * `process` must not block: a stage that waits stalls every stage fused with it.
/// * A panic stops the pipeline with
///   [`PipelineError::StagePanicked`](crate::engine::PipelineError::StagePanicked).
pub trait Stage: Send + 'static {
    /// The events this stage consumes.
    type In: Event;
    /// The events this stage produces.
    type Out: Event;

    /// The most outputs one input (or one `end_of_batch`) may produce.
    const MAX_FANOUT: usize = 1;

    /// Processes one event.
    fn process(&mut self, input: Self::In, out: &mut Emitter<Self::Out>);

    /// Processes a batch. The default calls [`process`](Stage::process) for each event;
    /// override it to evaluate a batch at once (branch-light loops, SIMD).
    #[inline]
    fn process_batch(&mut self, inputs: &[Self::In], out: &mut Emitter<Self::Out>) {
        for &input in inputs {
            self.process(input, out);
        }
    }

    /// Whether [`process_in_place`](Stage::process_in_place) may be called. Honoured only
    /// when `Out` is `In`; the engine then hands the stage the previous stage's output
    /// buffer instead of copying every event into this stage's emitter.
    const IN_PLACE: bool = false;

    /// Works on a batch where it lies: change events, drop them
    /// ([`InPlace::retain_mut`], [`InPlace::truncate`]), never add any to it. Events
    /// emitted to `after` follow the batch's (then come those of
    /// [`end_of_batch`](Stage::end_of_batch)): a stage that must insert events, or cannot
    /// go on in place from some event on, truncates the batch there and emits the rest
    /// to `after`, which keeps the order. Called instead of
    /// [`process_batch`](Stage::process_batch) when [`IN_PLACE`](Stage::IN_PLACE) is set
    /// and the stage's output type is its input type, whenever the events already sit in
    /// a buffer the engine owns (the output of a stage fused before this one).
    ///
    /// Returns `false`, having changed and emitted nothing, to have this batch processed
    /// by `process_batch` instead (a batch the stage cannot handle in place). The default
    /// declines every batch.
    #[inline]
    fn process_in_place(
        &mut self,
        _batch: &mut InPlace<'_, Self::In>,
        _after: &mut Emitter<Self::Out>,
    ) -> bool {
        false
    }

    /// Called once after each batch. The default emits nothing.
    #[inline]
    fn end_of_batch(&mut self, _out: &mut Emitter<Self::Out>) {}

    /// Called when the stage's thread has no event to process, before it waits (at least
    /// every 10 ms with [`WaitStrategy::Park`](crate::engine::WaitStrategy::Park), on
    /// every idle turn otherwise; a [host stage](crate::engine::PipelineBuilder::host_stages)
    /// at each [`Input::flush`](crate::engine::Input::flush), inline at each
    /// [`InlinePipeline::idle`](crate::engine::InlinePipeline::idle)): a stage with time-driven
    /// work — a retry whose backoff has passed — emits it here, at most
    /// [`MAX_FANOUT`](Stage::MAX_FANOUT) events, and they go downstream like a batch's.
    /// It runs often, so it must be cheap when there is nothing to do. The default emits
    /// nothing.
    #[inline]
    fn on_idle(&mut self, _out: &mut Emitter<Self::Out>) {}

    /// Called when the stage's input is closed and drained, before its thread stops, so
    /// that a stage holding events (retries waiting for a backoff, open windows) can hand
    /// them on instead of losing them. Emits at most [`MAX_FANOUT`](Stage::MAX_FANOUT)
    /// events per call; the engine forwards them and calls again while it returns `true`.
    /// The default holds nothing.
    #[inline]
    fn on_close(&mut self, _out: &mut Emitter<Self::Out>) -> bool {
        false
    }
}

/// A batch handed to [`Stage::process_in_place`]: its events can be changed, reordered
/// or dropped, but not added to (the buffer's capacity belongs to the stage before).
pub struct InPlace<'a, T> {
    events: &'a mut Vec<T>,
}

impl<'a, T> InPlace<'a, T> {
    pub(crate) fn new(events: &'a mut Vec<T>) -> Self {
        InPlace { events }
    }

    /// The events, to change where they lie.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.events
    }

    /// The events.
    #[inline(always)]
    pub fn as_slice(&self) -> &[T] {
        self.events
    }

    /// Keeps the events for which `keep` returns true (it may change them too), in order.
    #[inline]
    pub fn retain_mut(&mut self, keep: impl FnMut(&mut T) -> bool) {
        self.events.retain_mut(keep);
    }

    /// Keeps the first `len` events (all of them if there are fewer).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
    }

    /// Drops every event (a stage that consumes its input, such as a sink).
    #[inline]
    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// How many events the batch holds.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// A preallocated output buffer handed to a stage.
///
/// Its capacity is fixed when the pipeline is built (batch size × `MAX_FANOUT`, plus
/// `MAX_FANOUT` for `end_of_batch`), so emitting never allocates.
pub struct Emitter<T> {
    buf: Vec<T>,
    capacity: usize,
    overflowed: bool,
}

impl<T: Event> Emitter<T> {
    /// An emitter that holds up to `capacity` events. Allocates once, here.
    pub fn with_capacity(capacity: usize) -> Self {
        Emitter {
            buf: Vec::with_capacity(capacity),
            capacity,
            overflowed: false,
        }
    }

    /// Emits one event. Past the capacity the event is refused and the emitter is marked
    /// overflowed; the engine then stops the pipeline with an error naming the stage.
    #[inline(always)]
    pub fn emit(&mut self, event: T) {
        let len = self.buf.len();
        if len < self.capacity {
            // SAFETY: the buffer was created with at least `self.capacity` slots and never
            // reallocates (nothing pushes past `capacity`; `clear`, `retain_mut` and
            // `extend_from_slice` within `remaining()` keep the allocation), so slot `len`
            // is allocated and unused; it is written before the length covers it. Unlike
            // `Vec::push`, this has no reallocation path between the caller's value and
            // the slot, so the compiler can build the event in place.
            unsafe {
                self.buf.as_mut_ptr().add(len).write(event);
                self.buf.set_len(len + 1);
            }
        } else {
            self.overflowed = true;
        }
    }

    /// Emits copies of `events` and returns them, mutable, so that a stage can evaluate a
    /// whole batch in place (one copy, then branch-light loops over the slice). Events past
    /// the capacity are refused and the emitter is marked overflowed, as with
    /// [`emit`](Self::emit).
    #[inline]
    pub fn emit_slice(&mut self, events: &[T]) -> &mut [T] {
        let start = self.buf.len();
        let fit = events.len().min(self.capacity - start);
        if fit < events.len() {
            self.overflowed = true;
        }
        self.buf.extend_from_slice(&events[..fit]);
        &mut self.buf[start..]
    }

    /// Events emitted so far in this batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was emitted yet in this batch.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many more events fit.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.capacity - self.buf.len()
    }

    #[inline(always)]
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.buf
    }

    #[inline(always)]
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// The buffer itself, for a fused in-place stage to work on.
    #[inline(always)]
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<T> {
        &mut self.buf
    }

    #[inline(always)]
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_past_capacity_is_refused_and_flagged() {
        let mut e = Emitter::<u32>::with_capacity(2);
        e.emit(1);
        e.emit(2);
        assert!(!e.overflowed());
        e.emit(3);
        assert!(e.overflowed());
        assert_eq!(e.as_slice(), &[1, 2]);
    }

    #[test]
    fn emit_slice_hands_back_the_copies_and_refuses_past_capacity() {
        let mut e = Emitter::<u32>::with_capacity(3);
        e.emit(9);
        let tail = e.emit_slice(&[1, 2, 3]);
        assert_eq!(tail, &mut [1, 2]);
        tail[0] = 10;
        assert!(e.overflowed());
        assert_eq!(e.as_slice(), &[9, 10, 2]);
    }
}
