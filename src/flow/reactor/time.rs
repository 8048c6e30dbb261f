//! Where the reactor reads time: [`TimeSource`], the engine's TSC clock ([`TscTime`]) or
//! a clock the caller drives ([`ManualTime`]), and how much it measures ([`Timing`]).
//!
//! Two kinds of time are involved:
//!
//! * `now`, passed to [`Reactor::process`](crate::flow::reactor::Reactor::process) and
//!   [`Reactor::poll`](crate::flow::reactor::Reactor::poll) in the time source's ticks:
//!   retry due times are `now + delay`. The stage passes the reading it took for the
//!   batch, so scheduling costs no clock read.
//! * step durations, measured by reading the time source around steps as [`Timing`]
//!   says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine::clock::Clock;

/// A monotonic clock in ticks, with conversions to and from nanoseconds.
pub trait TimeSource: Send + 'static {
    /// The current reading.
    fn ticks(&self) -> u64;
    /// A tick difference in nanoseconds.
    fn ticks_to_ns(&self, ticks: u64) -> u64;
    /// A duration in nanoseconds as ticks.
    fn ns_to_ticks(&self, ns: u64) -> u64;
}

/// The engine's calibrated clock ([`Clock::get`]): TSC ticks where the CPU has an
/// invariant TSC, nanoseconds otherwise. Pass `Clock::get().ticks()` as `now`.
#[derive(Clone, Copy, Debug)]
pub struct TscTime {
    clock: &'static Clock,
}

impl TscTime {
    /// The process-wide clock (calibrates it on first use, about 20 ms).
    pub fn new() -> TscTime {
        TscTime {
            clock: Clock::get(),
        }
    }
}

impl Default for TscTime {
    fn default() -> Self {
        TscTime::new()
    }
}

impl TimeSource for TscTime {
    #[inline(always)]
    fn ticks(&self) -> u64 {
        self.clock.ticks()
    }

    #[inline]
    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        self.clock.to_ns(ticks)
    }

    #[inline]
    fn ns_to_ticks(&self, ns: u64) -> u64 {
        let t = ns as f64 * self.clock.ticks_per_ns();
        if t >= u64::MAX as f64 {
            u64::MAX
        } else {
            t as u64
        }
    }
}

/// A clock the caller sets: one tick is one nanosecond. Clones share the reading, so a
/// test (or a test step) can advance the time the reactor sees.
#[derive(Clone, Debug, Default)]
pub struct ManualTime(Arc<AtomicU64>);

impl ManualTime {
    /// A clock reading `start_ns`.
    pub fn new(start_ns: u64) -> ManualTime {
        ManualTime(Arc::new(AtomicU64::new(start_ns)))
    }

    /// Sets the reading.
    pub fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::Relaxed);
    }

    /// Advances the reading by `ns`; returns the new reading.
    pub fn advance(&self, ns: u64) -> u64 {
        self.0.fetch_add(ns, Ordering::Relaxed) + ns
    }

    /// The reading.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TimeSource for ManualTime {
    #[inline]
    fn ticks(&self) -> u64 {
        self.now()
    }

    #[inline]
    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ticks
    }

    #[inline]
    fn ns_to_ticks(&self, ns: u64) -> u64 {
        ns
    }
}

/// How much the reactor measures per chain run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Timing {
    /// Reads the clock before the first step and after every step (`steps + 1` reads per
    /// run): lifecycle events carry the failing step's own duration.
    #[default]
    PerStep,
    /// Reads the clock at the start and end of a run (2 reads): the chain duration is
    /// exact; a `Retried` event carries the run's time up to the failure.
    Chain,
    /// Never reads the clock: every duration is 0 (retry scheduling still uses `now`).
    Off,
}
