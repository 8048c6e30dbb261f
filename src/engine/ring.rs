//! The hops between threads: `rtrb` SPSC rings with batched writes and reads, a
//! backpressure policy on the producing side, doorbells for parked threads, and counters.

use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::control::{Control, Halt};
use super::stats::{OwnedCounter, RingStats};
use super::wait::{Doorbell, Idler, WaitStrategy};
use super::Event;

/// What a producer does when the ring in front of it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Lossless: the producer waits, by its thread's wait strategy, until there is room.
    #[default]
    Block,
    /// Lossy: the event that does not fit is discarded and counted in
    /// [`RingStats::dropped_newest`]. The producer never waits.
    DropNewest,
    /// Lossy: the event that does not fit waits in a preallocated overflow buffer of the
    /// ring's capacity; when that is full too, its oldest event is discarded and counted in
    /// [`RingStats::dropped_oldest`]. Order is preserved: parked events enter the ring
    /// before newer ones. The producer never waits.
    DropOldest,
}

/// Counters only the producing thread writes.
#[derive(Default)]
pub(crate) struct ProducerCounters {
    pub(crate) pushed: OwnedCounter,
    pub(crate) dropped_newest: OwnedCounter,
    pub(crate) dropped_oldest: OwnedCounter,
}

/// Counters only the consuming thread writes.
#[derive(Default)]
pub(crate) struct ConsumerCounters {
    pub(crate) popped: OwnedCounter,
    pub(crate) high_water: OwnedCounter,
}

/// State shared by both ends of one ring. Each side's counters sit on cache lines of their
/// own (`CachePadded`, 128 bytes for adjacent-line prefetch), so counting adds no
/// cache-line transfer to a hop.
pub(crate) struct LinkShared {
    pub(crate) name: String,
    pub(crate) capacity: usize,
    /// Rung by the producer after committing events; the consumer may sleep on it.
    pub(crate) data: CachePadded<Doorbell>,
    /// Rung by the consumer after freeing slots; the producer may sleep on it.
    pub(crate) space: CachePadded<Doorbell>,
    pub(crate) produced: CachePadded<ProducerCounters>,
    pub(crate) consumed: CachePadded<ConsumerCounters>,
}

impl LinkShared {
    pub(crate) fn snapshot(&self) -> RingStats {
        let popped = self.consumed.popped.get();
        let pushed = self.produced.pushed.get();
        RingStats {
            name: self.name.clone(),
            capacity: self.capacity,
            occupancy: pushed.saturating_sub(popped),
            high_water: self.consumed.high_water.get(),
            pushed,
            popped,
            dropped_newest: self.produced.dropped_newest.get(),
            dropped_oldest: self.produced.dropped_oldest.get(),
        }
    }
}

/// Creates a ring and its two ends. `producer_wait`/`consumer_wait` are the strategies of
/// the threads that will own each end (they decide whether doorbells must be rung).
pub(crate) fn link<T: Event>(
    name: String,
    capacity: usize,
    policy: Backpressure,
    producer_wait: WaitStrategy,
    consumer_wait: WaitStrategy,
    max_batch: usize,
) -> (Outbound<T>, Inbound<T>) {
    let shared = Arc::new(LinkShared {
        name,
        capacity,
        data: CachePadded::new(Doorbell::new(consumer_wait.sleeps())),
        space: CachePadded::new(Doorbell::new(producer_wait.sleeps())),
        produced: CachePadded::default(),
        consumed: CachePadded::default(),
    });
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    let overflow = match policy {
        Backpressure::DropOldest => VecDeque::with_capacity(capacity),
        _ => VecDeque::new(),
    };
    (
        Outbound {
            producer,
            _bell: RingOnDrop {
                shared: shared.clone(),
                data: true,
            },
            policy,
            overflow,
            overflow_limit: capacity,
            idler: Idler::new(producer_wait),
            shared: shared.clone(),
        },
        Inbound {
            consumer,
            _bell: RingOnDrop {
                shared: shared.clone(),
                data: false,
            },
            max_batch,
            shared,
        },
    )
}

/// Rings a doorbell when dropped. Declared after the ring end it guards, so it rings
/// after that end is gone (fields drop in declaration order) and the other side sees the
/// ring abandoned when it wakes.
struct RingOnDrop {
    shared: Arc<LinkShared>,
    data: bool,
}

impl Drop for RingOnDrop {
    fn drop(&mut self) {
        if self.data {
            self.shared.data.wake();
        } else {
            self.shared.space.wake();
        }
    }
}

/// The producing end of a ring, owned by one thread.
pub struct Outbound<T> {
    producer: rtrb::Producer<T>,
    _bell: RingOnDrop,
    pub(crate) policy: Backpressure,
    /// Drop-oldest only: events that did not fit yet, oldest first. Preallocated.
    overflow: VecDeque<T>,
    overflow_limit: usize,
    idler: Idler,
    pub(crate) shared: Arc<LinkShared>,
}

impl<T: Event> Outbound<T> {
    /// Writes `batch` according to the policy. Under [`Backpressure::Block`] it waits for
    /// room, giving up only when the pipeline is aborting.
    #[inline]
    pub(crate) fn push_slice(&mut self, batch: &[T], control: &Control) -> Result<(), Halt> {
        match self.policy {
            Backpressure::Block => self.push_blocking(batch, control).map_err(|_| Halt::Abort),
            Backpressure::DropNewest => {
                let (written, rest) = self.producer.push_partial_slice(batch);
                self.committed(written.len());
                if !rest.is_empty() {
                    self.shared.produced.dropped_newest.add(rest.len() as u64);
                }
                Ok(())
            }
            Backpressure::DropOldest => {
                self.flush_overflow();
                let rest = if self.overflow.is_empty() {
                    let (written, rest) = self.producer.push_partial_slice(batch);
                    self.committed(written.len());
                    rest
                } else {
                    batch
                };
                for &event in rest {
                    if self.overflow.len() == self.overflow_limit {
                        self.overflow.pop_front();
                        self.shared.produced.dropped_oldest.add(1);
                    }
                    self.overflow.push_back(event);
                }
                Ok(())
            }
        }
    }

    /// Writes one event, waiting for room; gives it back if the pipeline aborts first.
    #[inline]
    pub(crate) fn push_one_blocking(&mut self, mut event: T, control: &Control) -> Result<(), T> {
        loop {
            match self.producer.push(event) {
                Ok(()) => {
                    self.committed(1);
                    self.idler.reset();
                    return Ok(());
                }
                Err(rtrb::PushError::Full(back)) => event = back,
            }
            if control.aborting() {
                return Err(event);
            }
            let producer = &self.producer;
            self.idler.wait(&self.shared.space, || {
                producer.slots() > 0 || control.aborting()
            });
        }
    }

    /// Tries to push one event without waiting; gives it back if there is no room.
    pub(crate) fn try_push(&mut self, event: T) -> Result<(), T> {
        if self.policy == Backpressure::DropOldest && !self.overflow.is_empty() {
            self.flush_overflow();
            if !self.overflow.is_empty() {
                return Err(event);
            }
        }
        match self.producer.push(event) {
            Ok(()) => {
                self.committed(1);
                Ok(())
            }
            Err(rtrb::PushError::Full(event)) => Err(event),
        }
    }

    /// Writes all of `batch`, waiting for room. On abort, returns how many were written.
    pub(crate) fn push_blocking(
        &mut self,
        mut batch: &[T],
        control: &Control,
    ) -> Result<(), usize> {
        let mut written_total = 0;
        loop {
            let (written, rest) = self.producer.push_partial_slice(batch);
            if !written.is_empty() {
                written_total += written.len();
                self.committed(written.len());
            }
            if rest.is_empty() {
                self.idler.reset();
                return Ok(());
            }
            batch = rest;
            if control.aborting() {
                return Err(written_total);
            }
            let producer = &self.producer;
            self.idler.wait(&self.shared.space, || {
                producer.slots() > 0 || control.aborting()
            });
        }
    }

    /// Drop-oldest only: events parked in the overflow buffer.
    pub(crate) fn parked(&self) -> usize {
        self.overflow.len()
    }

    /// Discards parked events, counting them as dropped-oldest (the producer is closing).
    pub(crate) fn discard_parked(&mut self) {
        let n = self.overflow.len();
        if n > 0 {
            self.overflow.clear();
            self.shared.produced.dropped_oldest.add(n as u64);
        }
    }

    /// Drop-oldest only: moves parked events into the ring as far as there is room.
    /// Returns how many are still parked.
    pub(crate) fn flush_overflow(&mut self) -> usize {
        if self.overflow.is_empty() {
            return 0;
        }
        if self.producer.is_abandoned() {
            // Nobody will read them (the pipeline failed): count them, don't deliver them.
            self.discard_parked();
            return 0;
        }
        let (front, back) = self.overflow.as_slices();
        let (written, _) = self.producer.push_partial_slice(front);
        let mut n = written.len();
        if n == front.len() && !back.is_empty() {
            let (written, _) = self.producer.push_partial_slice(back);
            n += written.len();
        }
        self.overflow.drain(..n);
        self.committed(n);
        self.overflow.len()
    }

    #[inline(always)]
    fn committed(&self, n: usize) {
        if n > 0 {
            self.shared.produced.pushed.add(n as u64);
            self.shared.data.ring();
        }
    }
}

impl<T> Drop for Outbound<T> {
    fn drop(&mut self) {
        // Drop-oldest events that never reached the ring (abort): counted, not silent.
        let n = self.overflow.len();
        if n > 0 {
            self.overflow.clear();
            self.shared.produced.dropped_oldest.add(n as u64);
        }
    }
}

/// The consuming end of a ring, owned by one thread.
pub struct Inbound<T> {
    consumer: rtrb::Consumer<T>,
    _bell: RingOnDrop,
    max_batch: usize,
    pub(crate) shared: Arc<LinkShared>,
}

impl<T: Event> Inbound<T> {
    /// Reads up to `max_batch` waiting events and hands them to `f` as one or two slices
    /// (two when the batch wraps around the end of the ring), then frees the slots.
    /// Returns how many events were read.
    #[inline]
    pub(crate) fn read_batch(
        &mut self,
        mut f: impl FnMut(&[T]) -> Result<(), Halt>,
    ) -> Result<usize, Halt> {
        let available = self.consumer.slots();
        if available == 0 {
            return Ok(0);
        }
        self.shared.consumed.high_water.raise_to(available as u64);
        let n = available.min(self.max_batch);
        let chunk = self
            .consumer
            .read_chunk(n)
            .expect("slots() said these events are there");
        let (a, b) = chunk.as_slices();
        let result = f(a).and_then(|()| if b.is_empty() { Ok(()) } else { f(b) });
        chunk.commit_all();
        self.shared.consumed.popped.add(n as u64);
        self.shared.space.ring();
        result.map(|()| n)
    }

    /// Pops one event.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let available = self.consumer.slots();
        if available == 0 {
            return None;
        }
        self.shared.consumed.high_water.raise_to(available as u64);
        let event = self.consumer.pop().ok()?;
        self.shared.consumed.popped.add(1);
        self.shared.space.ring();
        Some(event)
    }

    /// Whether events are waiting.
    #[inline]
    pub(crate) fn has_data(&self) -> bool {
        !self.consumer.is_empty()
    }

    /// Whether the producer is gone and every event it wrote has been read.
    pub(crate) fn is_finished(&self) -> bool {
        if !self.consumer.is_abandoned() {
            return false;
        }
        // The producer's last commit happened before it dropped its end; pair with that
        // release before looking at the ring once more.
        fence(Ordering::Acquire);
        self.consumer.is_empty()
    }

    /// Whether the producer has dropped its end.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.consumer.is_abandoned()
    }
}
