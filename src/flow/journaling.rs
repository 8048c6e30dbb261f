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

use crate::engine::{Emitter, Stage};
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

impl Stage for JournalingStage {
    type In = Item;
    type Out = Item;

    #[inline]
    fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
        self.process_batch(core::slice::from_ref(&item), out);
    }

    #[inline]
    fn process_batch(&mut self, inputs: &[Item], out: &mut Emitter<Item>) {
        let Some(journal) = self.journal.as_mut() else {
            out.emit_slice(inputs);
            return;
        };
        // Append every record of the batch, then commit once.
        let mut failed_at = inputs.len();
        for (i, item) in inputs.iter().enumerate() {
            if item.header.what == What::Record && journal.append(&item.record).is_err() {
                failed_at = i;
                break;
            }
        }
        let committed = journal.commit().is_ok();
        let mut refused = 0u64;
        let mut journaled = 0u64;
        for (i, item) in inputs.iter().enumerate() {
            let is_record = item.header.what == What::Record;
            if is_record && (!committed || i >= failed_at) {
                refused += 1;
                continue;
            }
            journaled += u64::from(is_record);
            out.emit(*item);
        }
        self.counters
            .journaled
            .fetch_add(journaled, Ordering::Relaxed);
        if refused > 0 {
            self.counters.refused.fetch_add(refused, Ordering::Relaxed);
        }
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
