//! The [`Publish`] sinks the report puts behind the notify stage.
//!
//! * [`CountingSink`]: counts messages per topic and event (flat-out runs). No allocation
//!   per message: a fixed table of atomics.
//! * [`TeeSink`]: forwards every message into the channels' bus and records, per message
//!   the bus accepted, when it was published and a hash of its payload in a
//!   [`PublishLog`] — the n-th accepted message is the hub's offset n, which is how the
//!   clients turn a received message back into its publish time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use ebbflow::channels::BusWriter;
use ebbflow::engine::Clock;
use ebbflow::flow::notify::{topics, Publish};

/// Event names counted separately; others count as `other`.
pub const EVENTS: &[&str] = &[
    "change",
    "delta",
    "snapshot_begin",
    "snapshot_chunk",
    "snapshot_end",
    "alert",
    "cleared",
    "hint",
    "recovered",
    "relist",
    "engine",
    "retried",
    "compensated",
    "failed",
    "summary",
    "drift",
    "corrected",
    "window",
    "stats",
    "update",
    "version",
    "instances",
    "applied",
    "rejected",
    "appended",
    "rotated",
    "removed",
    "overflow",
    "other",
];

/// Index of `topic` in [`topics::ALL`] (the last slot for an unknown one).
pub fn topic_index(topic: &str) -> usize {
    topics::ALL
        .iter()
        .position(|t| *t == topic)
        .unwrap_or(topics::ALL.len())
}

fn event_index(event: &str) -> usize {
    EVENTS
        .iter()
        .position(|e| *e == event)
        .unwrap_or(EVENTS.len() - 1)
}

/// Messages per topic and event, and payload bytes.
pub struct Counts {
    cells: Vec<AtomicU64>,
    bytes: AtomicU64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            cells: (0..(topics::ALL.len() + 1) * EVENTS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Counts {
    #[inline]
    fn add(&self, topic: &str, event: &str, bytes: usize) {
        let i = topic_index(topic) * EVENTS.len() + event_index(event);
        self.cells[i].fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Messages on `topic` (all events).
    pub fn topic(&self, topic: &str) -> u64 {
        let t = topic_index(topic) * EVENTS.len();
        self.cells[t..t + EVENTS.len()]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Messages on `topic` with `event`.
    pub fn event(&self, topic: &str, event: &str) -> u64 {
        self.cells[topic_index(topic) * EVENTS.len() + event_index(event)].load(Ordering::Relaxed)
    }

    /// Every message.
    pub fn total(&self) -> u64 {
        self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Payload bytes of every message.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Counts messages; publishes nowhere.
pub struct CountingSink(pub Arc<Counts>);

impl Publish for CountingSink {
    #[inline]
    fn publish(&mut self, topic: &str, event: &str, payload: &[u8]) -> bool {
        self.0.add(topic, event, payload.len());
        true
    }
}

/// FNV-1a over the payload's length, its first 512 and its last 64 bytes: enough to tell
/// messages apart, cheap for large schema messages.
pub fn payload_hash(p: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for b in (p.len() as u64).to_le_bytes() {
        eat(b);
    }
    for &b in &p[..p.len().min(512)] {
        eat(b);
    }
    for &b in &p[p.len().saturating_sub(64)..] {
        eat(b);
    }
    h
}

/// One published message: engine clock ticks when notify published it, its topic index
/// and payload hash.
#[derive(Default)]
pub struct LogEntry {
    ticks: AtomicU64,
    topic: AtomicU64,
    hash: AtomicU64,
}

/// Publish times of the messages the bus accepted, in publish order (entry `i` is the
/// hub's offset `i + 1`). One writer (the notify thread), many readers; preallocated.
pub struct PublishLog {
    entries: Box<[LogEntry]>,
    len: AtomicUsize,
    /// Messages accepted after the log was full (not stamped).
    overflow: AtomicU64,
}

impl PublishLog {
    /// A log of `capacity` entries.
    pub fn new(capacity: usize) -> PublishLog {
        PublishLog {
            entries: (0..capacity).map(|_| LogEntry::default()).collect(),
            len: AtomicUsize::new(0),
            overflow: AtomicU64::new(0),
        }
    }

    /// Entries written so far.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Messages that came after the log was full.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    #[inline]
    fn push(&self, ticks: u64, topic: usize, hash: u64) {
        let n = self.len.load(Ordering::Relaxed);
        match self.entries.get(n) {
            Some(e) => {
                e.ticks.store(ticks, Ordering::Relaxed);
                e.topic.store(topic as u64, Ordering::Relaxed);
                e.hash.store(hash, Ordering::Relaxed);
                self.len.store(n + 1, Ordering::Release);
            }
            None => {
                // The hub still numbers it: keep the count so later offsets stay aligned.
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The entry of hub offset `offset` (1-based): `(ticks, topic index, hash)`.
    pub fn at_offset(&self, offset: u64) -> Option<(u64, usize, u64)> {
        let i = usize::try_from(offset.checked_sub(1)?).ok()?;
        if i >= self.len() {
            return None;
        }
        let e = &self.entries[i];
        Some((
            e.ticks.load(Ordering::Relaxed),
            e.topic.load(Ordering::Relaxed) as usize,
            e.hash.load(Ordering::Relaxed),
        ))
    }
}

/// Forwards into the channels' bus, stamps accepted messages in the [`PublishLog`], and
/// counts.
pub struct TeeSink {
    /// The bus to the channels server.
    pub bus: BusWriter,
    /// Publish times.
    pub log: Arc<PublishLog>,
    /// Messages per topic and event (every message notify produced, accepted or not).
    pub counts: Arc<Counts>,
    /// Messages the bus refused (full or too large).
    pub refused: Arc<AtomicU64>,
}

impl Publish for TeeSink {
    fn publish(&mut self, topic: &str, event: &str, payload: &[u8]) -> bool {
        self.counts.add(topic, event, payload.len());
        let ticks = Clock::get().ticks();
        if self.bus.try_publish(topic, event, payload).is_ok() {
            self.log
                .push(ticks, topic_index(topic), payload_hash(payload));
            true
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn flush(&mut self) {
        self.bus.flush();
    }
}
