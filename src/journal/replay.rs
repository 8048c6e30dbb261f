//! Replay: hand a journal's entries, in order and paced, to a callback or into a
//! pipeline's [`Input`].
//!
//! Pacing uses [`Pacer`]: [`Pace::FlatOut`], a fixed [`Pace::Rate`], or
//! [`Pace::Recorded`] (the spacing of the records' `source_ns`). Where replay *starts* by
//! time is [`ReplayFrom::IngestNs`] (see there why `ingest_ns`). Allocates nothing per
//! entry.

use std::ops::ControlFlow;

use super::error::JournalError;
use super::reader::{JournalReader, ReplayFrom};
use crate::engine::{Input, PushError};
use crate::sources::pace::{Pace, Pacer};
use crate::sources::record::Record;

/// What a replay handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReplayStats {
    /// Entries handed out.
    pub entries: u64,
    /// Sequence of the first entry handed out (0 if none).
    pub first_seq: u64,
    /// Sequence of the last entry handed out (0 if none).
    pub last_seq: u64,
    /// The callback asked to stop before the end.
    pub stopped: bool,
}

impl JournalReader {
    /// Replays entries from `from` at `pace` to `f(seq, record)`, until the end of the
    /// data or until `f` returns [`ControlFlow::Break`]. A damaged entry ends the replay
    /// with its error (the entries before it were delivered).
    pub fn replay(
        &self,
        from: ReplayFrom,
        pace: Pace,
        mut f: impl FnMut(u64, &Record) -> ControlFlow<()>,
    ) -> Result<ReplayStats, JournalError> {
        let mut pacer = Pacer::new(pace);
        let mut stats = ReplayStats::default();
        for item in self.entries(from)? {
            let (seq, rec) = item?;
            pacer.wait(rec.source_ns);
            if stats.entries == 0 {
                stats.first_seq = seq;
            }
            stats.entries += 1;
            stats.last_seq = seq;
            if f(seq, &rec).is_break() {
                stats.stopped = true;
                break;
            }
        }
        Ok(stats)
    }

    /// Replays entries from `from` at `pace` into a pipeline, with [`Input::push`] (which
    /// waits for room under [`Backpressure::Block`](crate::engine::Backpressure::Block),
    /// so nothing is lost). Stops with [`JournalError::PipelineClosed`] if the pipeline
    /// stops accepting events.
    pub fn replay_into(
        &self,
        from: ReplayFrom,
        pace: Pace,
        input: &mut Input<Record>,
    ) -> Result<ReplayStats, JournalError> {
        let mut closed = None;
        let stats = self.replay(from, pace, |seq, rec| match input.push(*rec) {
            Ok(()) => ControlFlow::Continue(()),
            Err(PushError::Full(_)) | Err(PushError::Closed(_)) => {
                closed = Some(seq);
                ControlFlow::Break(())
            }
        })?;
        match closed {
            Some(seq) => Err(JournalError::PipelineClosed { seq }),
            None => Ok(stats),
        }
    }
}
