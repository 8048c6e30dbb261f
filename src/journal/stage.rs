//! [`JournalStage`]: a pipeline stage that appends every record to a journal before
//! passing it on, so the journal can sit first in a pipeline (event sourcing).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::event::JournalEvent;
use super::writer::{AckHandle, Journal};
use crate::engine::{Emitter, Stage};
use crate::sources::record::Record;

/// Counters a [`JournalStage`] shares with the host.
#[derive(Debug, Default)]
pub struct JournalStageCounters {
    /// Records appended and passed on.
    pub forwarded: AtomicU64,
    /// Records not passed on because appending or committing failed (they are not
    /// accepted; see [`JournalStage`]).
    pub refused: AtomicU64,
    /// Append or commit errors (each refuses the rest of its batch).
    pub errors: AtomicU64,
    /// `journal` events dropped because the event ring was full.
    pub events_dropped: AtomicU64,
}

/// The host's view of a running [`JournalStage`].
#[derive(Clone, Debug)]
pub struct JournalStageHandle {
    /// The journal's acknowledged sequence.
    pub acked: AckHandle,
    /// The stage's counters.
    pub counters: Arc<JournalStageCounters>,
}

/// Appends each record, commits once per batch, then emits the batch.
///
/// Per batch (`process_batch`): every record is appended, then [`Journal::commit`] runs
/// the durability policy, and only then are the records emitted. So under
/// [`Durability::EveryBatch`](super::Durability::EveryBatch) a record leaves the stage
/// only once it is durable; under `Interval` and `Os` it leaves once it is written, and
/// [`JournalStageHandle::acked`] tells how far acceptance has got.
///
/// On an error (disk full at rotation, a failed flush) the records of the batch from the
/// failing one on are not emitted and are counted in `refused` (an append that failed
/// wrote nothing; a failed flush leaves written but unacknowledged entries, which a
/// replay will still find). The stage keeps going with the next batch. Allocates nothing
/// per record.
pub struct JournalStage {
    journal: Journal,
    counters: Arc<JournalStageCounters>,
    events: Option<rtrb::Producer<JournalEvent>>,
}

impl JournalStage {
    /// A stage appending to `journal`; returns it and the host's handle.
    pub fn new(journal: Journal) -> (JournalStage, JournalStageHandle) {
        let counters = Arc::new(JournalStageCounters::default());
        let handle = JournalStageHandle {
            acked: journal.ack_handle(),
            counters: counters.clone(),
        };
        (
            JournalStage {
                journal,
                counters,
                events: None,
            },
            handle,
        )
    }

    /// Also publishes the `journal` topic's events, at the end of every batch, into a ring
    /// of `capacity` events (allocated here); returns the consuming end. Events that do
    /// not fit are counted in `events_dropped`.
    pub fn with_events(mut self, capacity: usize) -> (JournalStage, rtrb::Consumer<JournalEvent>) {
        let (p, c) = rtrb::RingBuffer::new(capacity.max(1));
        self.events = Some(p);
        (self, c)
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn refuse(&self, n: usize) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.counters.refused.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Stage for JournalStage {
    type In = Record;
    type Out = Record;

    fn process(&mut self, input: Record, out: &mut Emitter<Record>) {
        self.process_batch(std::slice::from_ref(&input), out);
    }

    fn process_batch(&mut self, inputs: &[Record], out: &mut Emitter<Record>) {
        let mut appended = 0;
        for r in inputs {
            if self.journal.append(r).is_err() {
                break;
            }
            appended += 1;
        }
        if self.journal.commit().is_err() {
            self.refuse(inputs.len());
            return;
        }
        if appended < inputs.len() {
            self.refuse(inputs.len() - appended);
        }
        for r in &inputs[..appended] {
            out.emit(*r);
        }
        self.counters
            .forwarded
            .fetch_add(appended as u64, Ordering::Relaxed);
    }

    fn end_of_batch(&mut self, _out: &mut Emitter<Record>) {
        if let Some(p) = self.events.as_mut() {
            let dropped = &self.counters.events_dropped;
            self.journal.drain_events(|ev| {
                if p.push(ev).is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
}
