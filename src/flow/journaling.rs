//! The journal stage: every input record is appended to the [`Journal`] before any other
//! stage sees it (the event_sourcing_reverse pattern).
//!
//! The stage appends a batch, commits it under the journal's durability policy, and only
//! then hands the records on: under [`Durability::EveryBatch`](crate::journal::Durability)
//! a record reaches the reactor only once it is on disk. A record the journal refuses
//! (disk full at rotation, a failed flush) is not passed on, since it was never accepted;
//! it is counted in [`JournalingCounters::refused`]. Commands and ticks pass untouched.
//! Without a journal the stage only passes items on.
//!
//! The journal's own events (appends, coalesced; rotations; recoveries; retention) go
//! through a ring to the notify stage, which publishes them on the `journal` topic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine::{Emitter, InPlace, Stage};
use crate::flow::item::{Item, What};
use crate::journal::{Journal, JournalEvent};

/// Journal events buffered between the journal stage and notify.
pub const EVENT_RING: usize = 1024;

/// Counters of the journal stage, readable from any thread.
#[derive(Debug, Default)]
pub struct JournalingCounters {
    /// Records appended and passed on.
    pub journaled: AtomicU64,
    /// Records the journal refused (not passed on).
    pub refused: AtomicU64,
    /// Journal events dropped because the ring to notify was full.
    pub events_dropped: AtomicU64,
}

/// The journal stage. See the [module docs](self).
pub struct JournalingStage {
    journal: Option<Journal>,
    events: Option<rtrb::Producer<JournalEvent>>,
    counters: Arc<JournalingCounters>,
}

impl JournalingStage {
    /// A stage appending to `journal` (or only passing items on, for `None`). Returns the
    /// stage, its counters and the consuming end of its event ring.
    pub fn new(
        journal: Option<Journal>,
    ) -> (
        JournalingStage,
        Arc<JournalingCounters>,
        Option<rtrb::Consumer<JournalEvent>>,
    ) {
        let counters = Arc::new(JournalingCounters::default());
        let (events, consumer) = if journal.is_some() {
            let (p, c) = rtrb::RingBuffer::new(EVENT_RING);
            (Some(p), Some(c))
        } else {
            (None, None)
        };
        (
            JournalingStage {
                journal,
                events,
                counters: counters.clone(),
            },
            counters,
            consumer,
        )
    }
}

/// Which items of a batch the journal took (see [`JournalingStage::append`]).
struct Kept {
    /// Records from this index on were not appended.
    failed_at: usize,
    /// Whether the batch's commit succeeded.
    committed: bool,
    /// Records refused.
    refused: u64,
}

impl Kept {
    /// Whether item `i` goes on: every non-record, and records the journal holds.
    #[inline]
    fn keeps(&self, i: usize, item: &Item) -> bool {
        item.header.what != What::Record || (self.committed && i < self.failed_at)
    }
}

impl JournalingStage {
    /// Appends every record of `inputs`, then commits once, and counts what was journaled
    /// and refused. `None` without a journal (everything goes on).
    #[inline]
    fn append(&mut self, inputs: &[Item]) -> Option<Kept> {
        let journal = self.journal.as_mut()?;
        let is_record = |item: &Item| item.header.what == What::Record;
        let (mut failed_at, mut appended) = (inputs.len(), 0u64);
        for (i, item) in inputs.iter().enumerate() {
            if is_record(item) {
                if journal.append(&item.record).is_err() {
                    failed_at = i;
                    break;
                }
                appended += 1;
            }
        }
        let committed = journal.commit().is_ok();
        // Only the records from a failed append on were not appended (rare: counted here).
        let not_appended = inputs[failed_at..].iter().filter(|i| is_record(i)).count() as u64;
        let journaled = if committed { appended } else { 0 };
        let kept = Kept {
            failed_at,
            committed,
            refused: appended + not_appended - journaled,
        };
        self.counters
            .journaled
            .fetch_add(journaled, Ordering::Relaxed);
        if kept.refused > 0 {
            self.counters
                .refused
                .fetch_add(kept.refused, Ordering::Relaxed);
        }
        Some(kept)
    }
}

impl Stage for JournalingStage {
    type In = Item;
    type Out = Item;

    #[inline]
    fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
        self.process_batch(core::slice::from_ref(&item), out);
    }

    #[inline]
    fn process_batch(&mut self, inputs: &[Item], out: &mut Emitter<Item>) {
        let Some(kept) = self.append(inputs) else {
            out.emit_slice(inputs);
            return;
        };
        for (i, item) in inputs.iter().enumerate() {
            if kept.keeps(i, item) {
                out.emit(*item);
            }
        }
    }

    const IN_PLACE: bool = true;

    /// Appends where the items lie; without a journal, does nothing at all.
    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _after: &mut Emitter<Item>,
    ) -> bool {
        if let Some(kept) = self.append(batch.as_slice()) {
            if kept.refused > 0 {
                let mut i = 0;
                batch.retain_mut(|item| {
                    i += 1;
                    kept.keeps(i - 1, item)
                });
            }
        }
        true
    }

    fn end_of_batch(&mut self, _out: &mut Emitter<Item>) {
        if let (Some(journal), Some(events)) = (self.journal.as_mut(), self.events.as_mut()) {
            let dropped = &self.counters.events_dropped;
            journal.drain_events(|ev| {
                if events.push(ev).is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
}
