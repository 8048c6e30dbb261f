//! In-process pub/sub: a host service subscribes to topics and reads messages from a ring,
//! without sockets.
//!
//! ```text
//! hub (server thread) ──[framed byte ring, one per subscription]──▶ Subscription::read
//! ```
//!
//! Each subscription owns an SPSC byte ring filled by the server thread as messages enter
//! the hub. A full ring drops the message for that subscription only; drops are counted
//! ([`Subscription::dropped`]) and visible as jumps in [`Delivery::position`]. Reading never
//! allocates; [`PubSub::subscribe`] allocates the ring and waits until the server thread has
//! registered it, so every message published after it returns is delivered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::bus::{frame_ring, FrameReader, FrameWriter};
use super::hub::{GapReason, Position};
use super::metrics::Metrics;

/// One message delivered to an in-process subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Event name.
    pub event: &'a str,
    /// Payload: one JSON value.
    pub payload: &'a [u8],
    /// The message's hub position.
    pub position: Position,
}

/// A topic whose resume could not be served from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The topic.
    pub topic: String,
    /// Why.
    pub reason: GapReason,
}

/// Why a subscription was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SubscribeError {
    /// The topic is not declared in the server config.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The server thread has stopped.
    #[error("the broadcast server has stopped")]
    Stopped,
}

/// Messages from handles to the server thread.
pub(crate) enum Control {
    Subscribe(InprocRequest),
    DisconnectAll,
    Shutdown,
}

/// A new in-process subscription for the server thread to register.
pub(crate) struct InprocRequest {
    pub topics: Vec<usize>,
    pub since: Option<Position>,
    pub writer: FrameWriter,
    pub alive: Arc<AtomicBool>,
    pub ack: mpsc::Sender<(Position, Vec<Gap>)>,
}

/// State shared by the server thread and its handles.
pub(crate) struct Shared {
    pub control: Mutex<Vec<Control>>,
    pub waker: Arc<mio::Waker>,
    pub topic_names: Vec<String>,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    pub fn send(&self, c: Control) {
        if let Ok(mut q) = self.control.lock() {
            q.push(c);
        }
        let _ = self.waker.wake();
    }
}

/// Subscribes host services to topics; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct PubSub {
    pub(crate) shared: Arc<Shared>,
}

impl PubSub {
    /// Subscribes to `topics` from now on, with a ring of `ring_bytes` bytes.
    ///
    /// Waits (up to 5 s) until the server thread has registered the subscription.
    pub fn subscribe(
        &self,
        topics: &[&str],
        ring_bytes: usize,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_since(topics, ring_bytes, None)
    }

    /// Subscribes to `topics`, first replaying what the history holds after `since`
    /// (`None`: from now on). Topics that cannot be resumed are listed in
    /// [`Subscription::gaps`] and start live.
    pub fn subscribe_since(
        &self,
        topics: &[&str],
        ring_bytes: usize,
        since: Option<Position>,
    ) -> Result<Subscription, SubscribeError> {
        let mut idx = Vec::with_capacity(topics.len());
        for t in topics {
            let i = self
                .shared
                .topic_names
                .iter()
                .position(|n| n == t)
                .ok_or_else(|| SubscribeError::UnknownTopic((*t).to_owned()))?;
            idx.push(i);
        }
        let (writer, reader) = frame_ring(ring_bytes);
        let dropped = Arc::clone(&writer.dropped);
        let alive = Arc::new(AtomicBool::new(true));
        let (tx, rx) = mpsc::channel();
        self.shared.send(Control::Subscribe(InprocRequest {
            topics: idx,
            since,
            writer,
            alive: Arc::clone(&alive),
            ack: tx,
        }));
        let (start, gaps) = rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| SubscribeError::Stopped)?;
        Ok(Subscription {
            reader,
            alive,
            dropped,
            start,
            gaps,
        })
    }
}

/// One in-process subscription; dropping it unsubscribes.
pub struct Subscription {
    reader: FrameReader,
    alive: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    start: Position,
    gaps: Vec<Gap>,
}

impl Subscription {
    /// Calls `f` for up to `max` waiting messages, oldest first; returns how many. Never
    /// blocks or allocates.
    pub fn read(&mut self, max: usize, mut f: impl FnMut(Delivery<'_>)) -> usize {
        let epoch = self.start.epoch;
        self.reader.read(max, |offset, m| {
            f(Delivery {
                topic: m.topic,
                event: m.event,
                payload: m.payload,
                position: Position { epoch, offset },
            })
        })
    }

    /// Like [`read`](Self::read), but waits up to `timeout` for the first message
    /// (sleeping in steps of 50 µs to 1 ms). Returns 0 on timeout.
    pub fn read_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
        mut f: impl FnMut(Delivery<'_>),
    ) -> usize {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_micros(50);
        loop {
            let n = self.read(max, &mut f);
            if n > 0 || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }

    /// Messages dropped because this subscription's ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The hub position when the subscription was registered.
    pub fn start(&self) -> Position {
        self.start
    }

    /// Topics whose resume (`since`) could not be served from history.
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}
