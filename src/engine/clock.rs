//! The stage clock: a calibrated time-stamp counter where the CPU has an invariant one,
//! `std::time::Instant` elsewhere.
//!
//! Stage timing reads the clock twice per batch (or per event, see [`Timing`]); at tens of
//! millions of events per second a `clock_gettime` call per read is measurable, while
//! `rdtsc` costs a few nanoseconds. The figures behind this choice are in
//! `docs/benchmarks.md` (bench `timing_cost`).
//!
//! [`Timing`]: crate::engine::Timing

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Conversion from raw clock ticks to nanoseconds, measured once per process.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Nanoseconds per tick, scaled by 2^32 (fixed point, so a conversion is one multiply).
    ns_per_tick_q32: u64,
    /// Ticks per microsecond, for budget checks without conversion.
    ticks_per_us: f64,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

impl Clock {
    /// The process-wide clock, calibrated on first use (about 20 ms, once).
    pub fn get() -> &'static Clock {
        CLOCK.get_or_init(Clock::calibrate)
    }

    fn calibrate() -> Clock {
        if !has_tsc() {
            // `ticks()` returns nanoseconds since a process epoch.
            return Clock {
                ns_per_tick_q32: 1 << 32,
                ticks_per_us: 1000.0,
            };
        }
        // Take the best of a few short windows so a preemption does not skew the rate.
        let mut best = f64::NAN;
        for _ in 0..4 {
            let t0 = Instant::now();
            let c0 = raw_ticks();
            while t0.elapsed() < Duration::from_millis(5) {
                std::hint::spin_loop();
            }
            let c1 = raw_ticks();
            let ns = t0.elapsed().as_nanos() as f64;
            let rate = (c1.wrapping_sub(c0)) as f64 / ns; // ticks per ns
            if best.is_nan() || rate > best {
                best = rate;
            }
        }
        let ticks_per_ns = if best.is_finite() && best > 0.0 {
            best
        } else {
            1.0
        };
        Clock {
            ns_per_tick_q32: ((1u64 << 32) as f64 / ticks_per_ns) as u64,
            ticks_per_us: ticks_per_ns * 1000.0,
        }
    }

    /// Reads the clock. Ticks are only comparable within one process.
    #[inline(always)]
    pub fn ticks(&self) -> u64 {
        raw_ticks()
    }

    /// Converts a tick difference to nanoseconds.
    #[inline(always)]
    pub fn to_ns(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.ns_per_tick_q32 as u128) >> 32) as u64
    }

    /// Converts microseconds to ticks (for budgets).
    pub fn us_to_ticks(&self, us: f64) -> u64 {
        (us * self.ticks_per_us) as u64
    }

    /// Ticks per nanosecond as measured at calibration (1.0 where no TSC is used).
    pub fn ticks_per_ns(&self) -> f64 {
        self.ticks_per_us / 1000.0
    }

    /// Whether the clock reads the CPU's time-stamp counter.
    pub fn is_tsc(&self) -> bool {
        has_tsc()
    }
}

#[cfg(target_arch = "x86_64")]
fn has_tsc() -> bool {
    // Invariant TSC: CPUID 0x8000_0007, EDX bit 8. Without it the rate may change with
    // frequency scaling and `Instant` is used instead.
    // Leaf 0x8000_0000 reports the highest extended leaf; 0x8000_0007 is read only when
    // it exists.
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    if max_ext < 0x8000_0007 {
        return false;
    }
    let edx = core::arch::x86_64::__cpuid(0x8000_0007).edx;
    edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn has_tsc() -> bool {
    false
}

#[inline(always)]
fn raw_ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        static TSC: OnceLock<bool> = OnceLock::new();
        if *TSC.get_or_init(has_tsc) {
            // SAFETY: `rdtsc` has no preconditions on x86_64; it only reads a counter.
            return unsafe { core::arch::x86_64::_rdtsc() };
        }
    }
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_wall_time_within_ten_percent() {
        let clock = Clock::get();
        let t0 = Instant::now();
        let c0 = clock.ticks();
        std::thread::sleep(Duration::from_millis(30));
        let c1 = clock.ticks();
        let wall = t0.elapsed().as_nanos() as f64;
        let measured = clock.to_ns(c1 - c0) as f64;
        assert!(
            (measured / wall - 1.0).abs() < 0.10,
            "clock says {measured} ns, wall clock {wall} ns"
        );
    }

    #[test]
    fn budget_conversion_round_trips() {
        let clock = Clock::get();
        let ticks = clock.us_to_ticks(5.0);
        let ns = clock.to_ns(ticks);
        assert!((4_900..=5_100).contains(&ns), "5 µs became {ns} ns");
    }
}
