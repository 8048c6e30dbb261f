//! Pacing: hand events out flat out, at a fixed rate, or at the rate their
//! own timestamps record.
//!
//! A [`Pacer`] turns "event number *i*" or "event time *t*" into a deadline
//! on the monotonic clock and waits for it: sleeping while the deadline is
//! more than [`Pacer::SPIN_BELOW`] away, spinning for the rest. Deadlines
//! are computed from the start, never from the previous event, so a late
//! event does not push every later one back (no drift); a consumer that
//! falls behind is caught up at once, in a burst.

use std::time::{Duration, Instant};

/// How fast a source hands out events.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Pace {
    /// As fast as the consumer takes them.
    #[default]
    FlatOut,
    /// At a fixed rate in events per second (values ≤ 0 or not finite mean
    /// flat out).
    Rate(f64),
    /// At the pace of the events' own timestamps (`source_ns`), multiplied
    /// by `speedup` (1.0 = recorded rate, 10.0 = ten times faster). Events
    /// without a timestamp (0), or with one earlier than the previous
    /// event's, are released at once.
    Recorded {
        /// Replay speed relative to the recording (≤ 0 means flat out).
        speedup: f64,
    },
}

/// Waits for the deadlines of a [`Pace`]. Allocates nothing.
#[derive(Debug)]
pub struct Pacer {
    pace: Pace,
    start: Option<Instant>,
    first_ns: i64,
    last_ns: i64,
    count: u64,
}

impl Pacer {
    /// Deadlines nearer than this are spun for instead of slept for.
    pub const SPIN_BELOW: Duration = Duration::from_micros(200);

    /// A pacer; the clock starts at the first [`wait`](Self::wait).
    pub fn new(pace: Pace) -> Pacer {
        Pacer {
            pace,
            start: None,
            first_ns: 0,
            last_ns: 0,
            count: 0,
        }
    }

    /// The pace.
    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// Events released so far.
    pub fn released(&self) -> u64 {
        self.count
    }

    /// The offset from the start at which the next event is due, or `None`
    /// when it is due at once. `source_ns` is the event's own timestamp
    /// (only [`Pace::Recorded`] reads it).
    pub fn due(&mut self, source_ns: i64) -> Option<Duration> {
        let i = self.count;
        self.count += 1;
        match self.pace {
            Pace::FlatOut => None,
            Pace::Rate(r) if !(r.is_finite() && r > 0.0) => None,
            Pace::Rate(r) => Some(Duration::from_secs_f64(i as f64 / r)),
            Pace::Recorded { speedup } if !(speedup.is_finite() && speedup > 0.0) => None,
            Pace::Recorded { speedup } => {
                if source_ns == 0 {
                    return None;
                }
                if self.first_ns == 0 {
                    self.first_ns = source_ns;
                    self.last_ns = source_ns;
                }
                if source_ns < self.last_ns {
                    return None;
                }
                self.last_ns = source_ns;
                let ns = (source_ns - self.first_ns) as f64 / speedup;
                Some(Duration::from_nanos(ns as u64))
            }
        }
    }

    /// Waits until the next event is due (see [`due`](Self::due)).
    pub fn wait(&mut self, source_ns: i64) {
        let start = *self.start.get_or_insert_with(Instant::now);
        let Some(offset) = self.due(source_ns) else {
            return;
        };
        let deadline = start + offset;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let left = deadline - now;
            if left > Self::SPIN_BELOW {
                std::thread::sleep(left - Self::SPIN_BELOW);
            } else {
                std::hint::spin_loop();
            }
        }
    }
}
