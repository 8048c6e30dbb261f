//! Seeded, deterministic scenario generators that produce [`Record`]s
//! directly.
//!
//! - [`k8s`]: `enterprise_k8s_cluster` (50 nodes, 2000 pods, 150 services,
//!   80 deployments, 5 namespaces, 5000 changes/min, node status every 5 s),
//!   optionally as watch-event JSON lines.
//! - [`trading`]: `financial_trading_platform` (forex, crypto, stock and
//!   bond ticks).
//! - [`iot`]: `iot_smart_city_platform` (100,000 devices of 4 types behind
//!   200 edge nodes).
//!
//! Every generator runs on a *virtual clock*: each record's `source_ns` is
//! the scenario's own time (start + its nominal schedule), so the same seed
//! yields the same records bit for bit — except `ingest_ns`, which reads
//! the generator's ingest clock (by default wall time from a `SystemTime`
//! anchor extrapolated with the TSC, see [`wallclock`](crate::sources::wallclock);
//! replace it with `with_clock` for exact comparisons). [`drive`] releases records flat out, at a fixed rate, or
//! at the virtual clock's rate ([`Pace::Recorded`]). After construction no
//! generator allocates.
//!
//! Randomness: [`Rng`] is xoshiro256** seeded through SplitMix64 (the
//! seeding its authors recommend); no `rand` crate, and its output is
//! fixed by this code, not by a dependency's version.

pub mod iot;
pub mod k8s;
pub mod trading;

use crate::sources::pace::{Pace, Pacer};
use crate::sources::record::Record;

/// SplitMix64 step (Steele, Lea, Flood 2014): used to expand a seed.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256** (Blackman, Vigna 2018), seeded with SplitMix64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; `n` > 0). The bias is
    /// below `n / 2^64`, immaterial for scenario shapes.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `per_million / 1,000,000`.
    #[inline]
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

/// A scenario generator.
pub trait Generator {
    /// The next record (its `source_ns` is on the virtual clock).
    fn next_record(&mut self) -> Record;
}

/// Calls `f` with `n` records from `g`, released at `pace`
/// ([`Pace::Recorded`] follows the virtual clock). Returns `n`.
pub fn drive<G, F>(g: &mut G, n: u64, pace: Pace, mut f: F) -> u64
where
    G: Generator + ?Sized,
    F: FnMut(&Record),
{
    let mut pacer = Pacer::new(pace);
    for _ in 0..n {
        let r = g.next_record();
        pacer.wait(r.source_ns);
        f(&r);
    }
    n
}

/// 2026-01-01T00:00:00Z in ns: the default start of the virtual clocks.
pub const DEFAULT_START_NS: i64 = 1_767_225_600_000_000_000;
