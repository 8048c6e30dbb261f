//! The ingest clock every source stamps `Record::ingest_ns` with: wall time
//! in ns since the Unix epoch, cheap enough to read once per record.
//!
//! [`IngestClock::wall`] reads the engine's stage [`Clock`] (the CPU's
//! time-stamp counter where it has an invariant one: `rdtsc`, a few ns;
//! `Instant` elsewhere) per record and adds the elapsed time to a
//! `SystemTime` anchor taken at most [`REANCHOR_INTERVAL_US`] earlier,
//! instead of calling `SystemTime::now()` (a vDSO `clock_gettime`) per
//! record. Between re-anchorings the error against `SystemTime` is the
//! counter's calibration error over ≤ 50 ms (µs at worst); each
//! re-anchoring reads `SystemTime` again, so the clock follows wall time
//! and its steps as `SystemTime` does. A counter read behind the anchor
//! (another core's counter slightly behind) re-anchors instead of going
//! backwards by a wrapped difference.
//!
//! [`IngestClock::custom`] calls a function per record instead (fixed or
//! test clocks: the generators' deterministic output relies on it).
//!
//! `engine::Clock` itself only converts tick differences to ns; the wall
//! anchor lives here because only sources need wall time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::Clock;

/// How long [`IngestClock::wall`] extrapolates wall time from the stage
/// clock before it reads `SystemTime` again, in µs (50 ms).
pub const REANCHOR_INTERVAL_US: f64 = 50_000.0;

/// `SystemTime::now()` in ns since the Unix epoch (0 before the epoch,
/// `i64::MAX` after 2262).
pub fn system_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// A per-record source of `ingest_ns`. See the [module docs](self).
#[derive(Clone, Copy)]
pub struct IngestClock(Inner);

#[derive(Clone, Copy)]
enum Inner {
    Wall {
        clock: &'static Clock,
        base_ns: i64,
        base_ticks: u64,
        /// Counter ticks after which to re-anchor; 0 before the first read.
        reanchor_ticks: u64,
    },
    Custom(fn() -> i64),
}

impl core::fmt::Debug for IngestClock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Inner::Wall { base_ns, .. } => f
                .debug_struct("IngestClock::Wall")
                .field("anchor_ns", &base_ns)
                .finish(),
            Inner::Custom(_) => f.write_str("IngestClock::Custom"),
        }
    }
}

impl Default for IngestClock {
    fn default() -> Self {
        Self::wall()
    }
}

impl IngestClock {
    /// Wall time from a `SystemTime` anchor plus the stage clock's elapsed
    /// ticks. Calibrates the process-wide [`Clock`] on first use (≈ 20 ms,
    /// once per process); the first [`now`](Self::now) takes the anchor.
    pub fn wall() -> IngestClock {
        IngestClock(Inner::Wall {
            clock: Clock::get(),
            base_ns: 0,
            base_ticks: 0,
            reanchor_ticks: 0,
        })
    }

    /// Calls `f` for every reading.
    pub const fn custom(f: fn() -> i64) -> IngestClock {
        IngestClock(Inner::Custom(f))
    }

    /// The current time in ns since the Unix epoch. Never allocates.
    #[inline]
    pub fn now(&mut self) -> i64 {
        match &mut self.0 {
            Inner::Wall {
                clock,
                base_ns,
                base_ticks,
                reanchor_ticks,
            } => {
                let ticks = clock.ticks();
                // A counter read before the anchor wraps to a huge value
                // and re-anchors too.
                let dt = ticks.wrapping_sub(*base_ticks);
                if dt < *reanchor_ticks {
                    let ns = i64::try_from(clock.to_ns(dt)).unwrap_or(i64::MAX);
                    return base_ns.saturating_add(ns);
                }
                reanchor(clock, base_ns, base_ticks, reanchor_ticks)
            }
            Inner::Custom(f) => f(),
        }
    }
}

#[cold]
fn reanchor(
    clock: &'static Clock,
    base_ns: &mut i64,
    base_ticks: &mut u64,
    reanchor_ticks: &mut u64,
) -> i64 {
    *base_ticks = clock.ticks();
    *base_ns = system_ns();
    *reanchor_ticks = clock.us_to_ticks(REANCHOR_INTERVAL_US).max(1);
    *base_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_stays_within_two_ms_of_system_time() {
        let mut c = IngestClock::wall();
        let start = std::time::Instant::now();
        let mut n = 0u32;
        // Spans several re-anchorings; bounded in time and count.
        while start.elapsed() < std::time::Duration::from_millis(120) && n < 5_000_000 {
            let before = system_ns();
            let t = c.now();
            let after = system_ns();
            assert!(
                t >= before - 2_000_000 && t <= after + 2_000_000,
                "{t} not within 2 ms of [{before}, {after}]"
            );
            n += 1;
        }
        assert!(n > 100, "only {n} readings");
    }

    #[test]
    fn custom_clock_is_called_per_reading() {
        let mut c = IngestClock::custom(|| 42);
        assert_eq!(c.now(), 42);
        assert_eq!(c.now(), 42);
    }
}
