//! The `journal` topic: what the journal reports (appends, rotations, recoveries,
//! retention), as a small `Copy` enum and its JSON form.

use std::io::Write;

/// Name of the topic these events are published on.
pub const TOPIC: &str = "journal";

/// One event of the `journal` topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalEvent {
    /// Entries appended since the previous `Appended` (coalesced: one event per
    /// [`Journal::drain_events`](super::Journal::drain_events), not per entry).
    Appended {
        /// First sequence appended in this span.
        first_seq: u64,
        /// Last sequence appended in this span.
        last_seq: u64,
        /// Entries in the span.
        entries: u64,
        /// Bytes written for them (frames included).
        bytes: u64,
        /// The acknowledged sequence when the event was drained.
        acked_seq: u64,
    },
    /// The active segment filled up; a new one was started.
    Rotated {
        /// Index of the segment that was sealed.
        sealed_index: u64,
        /// Index of the new active segment.
        new_index: u64,
        /// First sequence of the new segment.
        first_seq: u64,
    },
    /// The journal was opened (and repaired if needed).
    Recovered {
        /// Segments found (after repair).
        segments: u64,
        /// Oldest retained sequence (0 if the journal is empty).
        first_seq: u64,
        /// Last intact sequence (0 if the journal is empty).
        last_seq: u64,
        /// Slots with data that were truncated from the tail.
        dropped_entries: u64,
        /// Bytes truncated from the tail.
        dropped_bytes: u64,
        /// Whether the journal was created by this open.
        created: bool,
    },
    /// Retention deleted old segments.
    Removed {
        /// Segments deleted.
        segments: u64,
        /// Bytes freed.
        bytes: u64,
        /// Oldest sequence still retained.
        first_seq: u64,
    },
    /// Events were lost because the queue was full (rotations or removals faster than
    /// [`drain_events`](super::Journal::drain_events) was called).
    Overflow {
        /// Events lost since the last drain.
        lost: u64,
    },
}

impl JournalEvent {
    /// The event's `type` in JSON.
    pub const fn kind(&self) -> &'static str {
        match self {
            JournalEvent::Appended { .. } => "appended",
            JournalEvent::Rotated { .. } => "rotated",
            JournalEvent::Recovered { .. } => "recovered",
            JournalEvent::Removed { .. } => "removed",
            JournalEvent::Overflow { .. } => "overflow",
        }
    }
}

/// Appends `ev` as one JSON object to `out`:
/// `{"topic":"journal","type":"appended","first_seq":1,…}`. Allocates only if `out` has
/// too little spare capacity (256 bytes always suffice).
pub fn encode_json(ev: &JournalEvent, out: &mut Vec<u8>) {
    // Writing to a Vec<u8> cannot fail.
    let _ = write_json(ev, out);
}

fn write_json(ev: &JournalEvent, out: &mut Vec<u8>) -> std::io::Result<()> {
    write!(out, "{{\"topic\":\"{TOPIC}\",\"type\":\"{}\"", ev.kind())?;
    match *ev {
        JournalEvent::Appended {
            first_seq,
            last_seq,
            entries,
            bytes,
            acked_seq,
        } => write!(
            out,
            ",\"first_seq\":{first_seq},\"last_seq\":{last_seq},\"entries\":{entries},\"bytes\":{bytes},\"acked_seq\":{acked_seq}"
        )?,
        JournalEvent::Rotated {
            sealed_index,
            new_index,
            first_seq,
        } => write!(
            out,
            ",\"sealed_index\":{sealed_index},\"new_index\":{new_index},\"first_seq\":{first_seq}"
        )?,
        JournalEvent::Recovered {
            segments,
            first_seq,
            last_seq,
            dropped_entries,
            dropped_bytes,
            created,
        } => write!(
            out,
            ",\"segments\":{segments},\"first_seq\":{first_seq},\"last_seq\":{last_seq},\"dropped_entries\":{dropped_entries},\"dropped_bytes\":{dropped_bytes},\"created\":{created}"
        )?,
        JournalEvent::Removed {
            segments,
            bytes,
            first_seq,
        } => write!(
            out,
            ",\"segments\":{segments},\"bytes\":{bytes},\"first_seq\":{first_seq}"
        )?,
        JournalEvent::Overflow { lost } => write!(out, ",\"lost\":{lost}")?,
    }
    out.push(b'}');
    Ok(())
}

/// Capacity of the queue of non-append events.
pub(crate) const QUEUE: usize = 32;

/// Pending events: appends coalesced into one span, the rest in a fixed ring. Allocates
/// nothing.
#[derive(Debug)]
pub(crate) struct EventQueue {
    ring: [Option<JournalEvent>; QUEUE],
    head: usize,
    len: usize,
    lost: u64,
    span_first: u64,
    span_last: u64,
    span_entries: u64,
}

impl EventQueue {
    pub(crate) fn new() -> EventQueue {
        EventQueue {
            ring: [None; QUEUE],
            head: 0,
            len: 0,
            lost: 0,
            span_first: 0,
            span_last: 0,
            span_entries: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn appended(&mut self, seq: u64) {
        if self.span_entries == 0 {
            self.span_first = seq;
        }
        self.span_last = seq;
        self.span_entries += 1;
    }

    pub(crate) fn push(&mut self, ev: JournalEvent) {
        if self.len == QUEUE {
            self.lost += 1;
            return;
        }
        self.ring[(self.head + self.len) % QUEUE] = Some(ev);
        self.len += 1;
    }

    /// Hands out the queued events in order, then the coalesced append span, then an
    /// overflow note if events were lost.
    pub(crate) fn drain(
        &mut self,
        acked_seq: u64,
        entry_len: u64,
        mut f: impl FnMut(JournalEvent),
    ) {
        while self.len > 0 {
            if let Some(ev) = self.ring[self.head].take() {
                f(ev);
            }
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
        }
        if self.span_entries > 0 {
            f(JournalEvent::Appended {
                first_seq: self.span_first,
                last_seq: self.span_last,
                entries: self.span_entries,
                bytes: self.span_entries * entry_len,
                acked_seq,
            });
            self.span_entries = 0;
        }
        if self.lost > 0 {
            f(JournalEvent::Overflow { lost: self.lost });
            self.lost = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_valid_and_carries_every_field() {
        let mut out = Vec::with_capacity(256);
        encode_json(
            &JournalEvent::Recovered {
                segments: 3,
                first_seq: 1,
                last_seq: 99,
                dropped_entries: 1,
                dropped_bytes: 144,
                created: false,
            },
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["topic"], "journal");
        assert_eq!(v["type"], "recovered");
        assert_eq!(v["last_seq"], 99);
        assert_eq!(v["dropped_bytes"], 144);
        assert_eq!(v["created"], false);
    }

    #[test]
    fn queue_coalesces_appends_and_counts_overflow() {
        let mut q = EventQueue::new();
        for s in 5..=9 {
            q.appended(s);
        }
        for i in 0..(QUEUE as u64 + 2) {
            q.push(JournalEvent::Rotated {
                sealed_index: i,
                new_index: i + 1,
                first_seq: 0,
            });
        }
        let mut got = Vec::new();
        q.drain(9, 144, |e| got.push(e));
        assert_eq!(got.len(), QUEUE + 2);
        assert_eq!(
            got[QUEUE],
            JournalEvent::Appended {
                first_seq: 5,
                last_seq: 9,
                entries: 5,
                bytes: 720,
                acked_seq: 9
            }
        );
        assert_eq!(got[QUEUE + 1], JournalEvent::Overflow { lost: 2 });
        let mut again = 0;
        q.drain(9, 144, |_| again += 1);
        assert_eq!(again, 0);
    }
}
