//! The bus: a byte ring from the pipeline's notify stage to the broadcast thread.
//!
//! ```text
//! notify stage ──BusWriter::try_publish──▶ [rtrb ring of bytes] ──BusReader::read──▶ broadcast thread
//!                └──BusWriter::flush──▶ mio::Waker (at most one wake per flush)
//! ```
//!
//! Each message is one length-framed record (a 16-byte header, then topic, event and
//! payload) copied into a preallocated `rtrb::RingBuffer<u8>`. Neither end allocates or blocks after [`bus`]
//! returns: a full ring is an error ([`BusError::Full`]), counted in [`BusWriter::dropped`].
//! The reader borrows records in place; a record that wraps around the end of the ring is
//! copied once into a scratch buffer preallocated at [`bus`] time.
//!
//! The same framing carries in-process subscriptions ([`crate::channels::Subscription`]),
//! where each record also holds the message's hub offset.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of the record header: `len: u32` (bytes after the header), `offset: u64`,
/// `topic_len: u16`, `event_len: u16`, all little-endian.
pub(crate) const HEADER: usize = 16;

/// Why a message did not enter the ring.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusError {
    /// The ring has no room for the message now; the message was dropped and counted.
    #[error("bus ring is full")]
    Full,
    /// The framed message is larger than the ring accepts (half its capacity), or the topic
    /// or event name is longer than 65,535 bytes.
    #[error("message of {len} bytes exceeds the bus limit of {max} bytes")]
    TooLarge {
        /// Framed size of the rejected message.
        len: usize,
        /// The largest framed size accepted.
        max: usize,
    },
}

/// One message read from a ring: borrowed from the ring (or the reader's scratch buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusMessage<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Event name (for Phoenix clients, the event field of the frame).
    pub event: &'a str,
    /// Payload: one JSON value, already encoded.
    pub payload: &'a [u8],
}

/// Creates a bus whose ring holds `capacity_bytes` bytes (at least 64).
///
/// One message may take at most half the ring ([`BusWriter::max_message_len`]). This is the
/// only call that allocates.
pub fn bus(capacity_bytes: usize) -> (BusWriter, BusReader) {
    let (writer, reader) = frame_ring(capacity_bytes);
    let pending = Arc::new(AtomicBool::new(false));
    (
        BusWriter {
            ring: writer,
            published_since_flush: false,
            waker: None,
            wake_pending: Arc::clone(&pending),
        },
        BusReader {
            ring: reader,
            wake_pending: pending,
        },
    )
}

/// The producing end of a [`bus`]: single producer, `Send`, never allocates or blocks.
pub struct BusWriter {
    ring: FrameWriter,
    published_since_flush: bool,
    waker: Option<Arc<mio::Waker>>,
    wake_pending: Arc<AtomicBool>,
}

impl BusWriter {
    /// Copies one message (topic, event name, JSON payload) into the ring.
    ///
    /// The message is visible to the reader at once; [`flush`](Self::flush) wakes it.
    /// Errors when the ring is full ([`BusError::Full`]) or the message can never fit
    /// ([`BusError::TooLarge`]); both are counted in [`dropped`](Self::dropped).
    pub fn try_publish(
        &mut self,
        topic: &str,
        event: &str,
        payload: &[u8],
    ) -> Result<(), BusError> {
        self.ring.try_write(0, topic, event, payload)?;
        self.published_since_flush = true;
        Ok(())
    }

    /// Makes published messages visible and wakes the reader: at most one wake per flush,
    /// none when nothing was published since the last flush or a wake is still unanswered.
    pub fn flush(&mut self) {
        if !self.published_since_flush {
            return;
        }
        self.published_since_flush = false;
        if let Some(waker) = &self.waker {
            // SeqCst pairs with the reader's `store(false)` before it drains: either the
            // reader clears the flag after this swap (and then sees every record committed
            // before it), or this swap sees `false` and wakes it.
            if !self.wake_pending.swap(true, Ordering::SeqCst) {
                // A failed wake (eventfd overflow) still leaves the records readable on
                // the reader's next pass; there is nothing better to do here.
                let _ = waker.wake();
            }
        }
    }

    /// Messages refused so far (ring full or too large).
    pub fn dropped(&self) -> u64 {
        self.ring.dropped.load(Ordering::Relaxed)
    }

    /// The largest framed message (16 header bytes + topic + event + payload) accepted.
    pub fn max_message_len(&self) -> usize {
        self.ring.max_record
    }

    /// Sets the waker [`flush`](Self::flush) uses to wake the reader's event loop.
    pub fn set_waker(&mut self, waker: Arc<mio::Waker>) {
        self.waker = Some(waker);
    }

    /// A shared view of the drop counter (for metrics on another thread).
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.ring.dropped)
    }
}

/// The consuming end of a [`bus`]: single consumer, `Send`.
pub struct BusReader {
    ring: FrameReader,
    wake_pending: Arc<AtomicBool>,
}

impl BusReader {
    /// Calls `f` for up to `max` messages, oldest first; returns how many it read.
    ///
    /// Also re-arms the writer's wake-up: call it after every wake and read until it
    /// returns less than `max`, or the next [`BusWriter::flush`] may not wake you.
    pub fn read(&mut self, max: usize, mut f: impl FnMut(BusMessage<'_>)) -> usize {
        self.wake_pending.store(false, Ordering::SeqCst);
        self.ring.read(max, |_, m| f(m))
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// The framing, shared with in-process subscriptions.

/// Creates a framed byte ring of `capacity` bytes (at least 64).
pub(crate) fn frame_ring(capacity: usize) -> (FrameWriter, FrameReader) {
    let capacity = capacity.max(64);
    let (p, c) = rtrb::RingBuffer::<u8>::new(capacity);
    let max_record = capacity / 2;
    let dropped = Arc::new(AtomicU64::new(0));
    (
        FrameWriter {
            ring: p,
            max_record,
            dropped,
        },
        FrameReader {
            ring: c,
            scratch: Vec::with_capacity(max_record),
        },
    )
}

/// Writes framed records; counts refusals.
pub(crate) struct FrameWriter {
    ring: rtrb::Producer<u8>,
    max_record: usize,
    pub(crate) dropped: Arc<AtomicU64>,
}

impl FrameWriter {
    /// Copies one record into the ring and commits it.
    pub(crate) fn try_write(
        &mut self,
        offset: u64,
        topic: &str,
        event: &str,
        payload: &[u8],
    ) -> Result<(), BusError> {
        let len = HEADER + topic.len() + event.len() + payload.len();
        if len > self.max_record
            || topic.len() > u16::MAX as usize
            || event.len() > u16::MAX as usize
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(BusError::TooLarge {
                len,
                max: self.max_record,
            });
        }
        let Ok(mut chunk) = self.ring.write_chunk_uninit(len) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(BusError::Full);
        };
        let mut header = [0u8; HEADER];
        header[0..4].copy_from_slice(&((len - HEADER) as u32).to_le_bytes());
        header[4..12].copy_from_slice(&offset.to_le_bytes());
        header[12..14].copy_from_slice(&(topic.len() as u16).to_le_bytes());
        header[14..16].copy_from_slice(&(event.len() as u16).to_le_bytes());
        let (a, b) = chunk.as_mut_slices();
        let mut out = SplitWriter { a, b, at: 0 };
        out.put(&header);
        out.put(topic.as_bytes());
        out.put(event.as_bytes());
        out.put(payload);
        debug_assert_eq!(out.at, len);
        // SAFETY: `SplitWriter::put` initialised exactly `len` bytes, the chunk's full
        // length, in order across both slices.
        unsafe { chunk.commit_all() };
        Ok(())
    }
}

/// Copies byte slices into the two halves of an uninitialised chunk.
struct SplitWriter<'a> {
    a: &'a mut [MaybeUninit<u8>],
    b: &'a mut [MaybeUninit<u8>],
    at: usize,
}

impl SplitWriter<'_> {
    fn put(&mut self, src: &[u8]) {
        for &byte in src {
            let at = self.at;
            if at < self.a.len() {
                self.a[at].write(byte);
            } else {
                self.b[at - self.a.len()].write(byte);
            }
            self.at += 1;
        }
    }
}

/// Reads framed records.
pub(crate) struct FrameReader {
    ring: rtrb::Consumer<u8>,
    scratch: Vec<u8>,
}

impl FrameReader {
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Calls `f(offset, message)` for up to `max` records.
    pub(crate) fn read(&mut self, max: usize, mut f: impl FnMut(u64, BusMessage<'_>)) -> usize {
        let mut n = 0;
        while n < max {
            let mut header = [0u8; HEADER];
            {
                let Ok(chunk) = self.ring.read_chunk(HEADER) else {
                    break;
                };
                let (a, b) = chunk.as_slices();
                header[..a.len()].copy_from_slice(a);
                header[a.len()..].copy_from_slice(b);
                // Not committed: the header is read again with its body below.
            }
            let body = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let offset = u64::from_le_bytes(header[4..12].try_into().unwrap_or([0; 8]));
            let topic_len = u16::from_le_bytes([header[12], header[13]]) as usize;
            let event_len = u16::from_le_bytes([header[14], header[15]]) as usize;
            let Ok(chunk) = self.ring.read_chunk(HEADER + body) else {
                // The writer commits whole records, so this cannot happen; stop safely.
                break;
            };
            let (a, b) = chunk.as_slices();
            let record: &[u8] = if b.is_empty() {
                &a[HEADER..]
            } else {
                self.scratch.clear();
                self.scratch.extend_from_slice(a);
                self.scratch.extend_from_slice(b);
                &self.scratch[HEADER..]
            };
            let (topic, rest) = record.split_at(topic_len);
            let (event, payload) = rest.split_at(event_len);
            // The writer copied these bytes from `&str`s, so they are valid UTF-8; the
            // checked conversion costs little on short names and keeps this safe code.
            if let (Ok(topic), Ok(event)) = (std::str::from_utf8(topic), std::str::from_utf8(event))
            {
                f(
                    offset,
                    BusMessage {
                        topic,
                        event,
                        payload,
                    },
                );
            }
            chunk.commit_all();
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_order_with_their_fields_even_across_the_wrap() {
        let (mut w, mut r) = bus(256);
        let mut seen = Vec::new();
        for i in 0..200u32 {
            let payload = format!("{{\"i\":{i}}}");
            w.try_publish("t", "ev", payload.as_bytes()).unwrap();
            w.flush();
            assert_eq!(
                r.read(10, |m| seen.push((
                    m.topic.to_owned(),
                    m.event.to_owned(),
                    m.payload.to_vec()
                ))),
                1
            );
            assert_eq!(seen.last().unwrap().2, payload.as_bytes());
        }
        assert_eq!(seen.len(), 200);
        assert_eq!(w.dropped(), 0);
    }

    #[test]
    fn a_full_ring_refuses_and_counts_and_an_oversized_message_is_too_large() {
        let (mut w, mut r) = bus(128);
        assert_eq!(w.max_message_len(), 64);
        assert_eq!(
            w.try_publish("t", "e", &[b'x'; 60]),
            Err(BusError::TooLarge { len: 78, max: 64 })
        );
        let mut ok = 0;
        while w.try_publish("t", "e", b"1234567890").is_ok() {
            ok += 1;
        }
        assert_eq!(ok, 128 / 28);
        assert_eq!(w.try_publish("t", "e", b"1"), Err(BusError::Full));
        assert_eq!(w.dropped(), 3);
        assert_eq!(r.read(100, |_| {}), ok);
        assert!(w.try_publish("t", "e", b"1").is_ok());
    }

    #[test]
    fn flush_wakes_once_until_the_reader_reads_again() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let (mut w, mut r) = bus(1024);
        w.set_waker(waker);
        w.flush(); // nothing published: no wake
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(std::time::Duration::from_millis(10)))
            .unwrap();
        assert!(events.is_empty());
        w.try_publish("a", "b", b"{}").unwrap();
        w.flush();
        w.try_publish("a", "b", b"{}").unwrap();
        w.flush(); // still pending: no second wake
        assert!(r.wake_pending.load(Ordering::SeqCst));
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events.iter().count(), 1);
        assert_eq!(r.read(10, |_| {}), 2);
        assert!(!r.wake_pending.load(Ordering::SeqCst));
    }
}
