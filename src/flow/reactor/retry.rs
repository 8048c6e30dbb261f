//! [`RetryPolicy`]: bounded exponential backoff with deterministic, seeded jitter.

use crate::sources::gen::Rng;

/// How a chain retries a step that failed transiently.
///
/// After attempt `n` (1 = the first try) of a step fails transiently, and
/// `n < max_attempts`, the step is retried after
///
/// ```text
/// nominal(n) = min(base_ns · 2^(n−1), max_delay_ns)
/// delay(n)   = nominal(n) − u,  u uniform in [0, nominal(n) · jitter_per_mille / 1000]
/// ```
///
/// so every delay lies in `[nominal(n) · (1 − jitter), nominal(n)]` and never exceeds
/// `max_delay_ns`. `jitter_per_mille = 0` gives the exact schedule; 500 ("equal jitter")
/// spreads retries of many keys that failed together over half of each window; 1000 is
/// "full jitter". `u` is drawn from the reactor's [`Rng`], seeded by
/// [`ReactorConfigBuilder::seed`](crate::flow::reactor::ReactorConfigBuilder::seed): the
/// same inputs give the same schedule.
///
/// When attempt `max_attempts` fails, the chain fails
/// ([`FailReason::AttemptsExhausted`](crate::flow::reactor::FailReason::AttemptsExhausted)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry (before jitter), ns. Must be ≥ 1.
    pub base_ns: u64,
    /// Largest delay, ns. Must be ≥ `base_ns`.
    pub max_delay_ns: u64,
    /// Attempts per step, the first try included (1 = never retry). 1..=255.
    pub max_attempts: u8,
    /// Jitter as a fraction of the nominal delay, in thousandths (0..=1000).
    pub jitter_per_mille: u16,
}

impl Default for RetryPolicy {
    /// 1 ms base, doubling, at most 100 ms, 5 attempts, equal jitter (500‰).
    fn default() -> Self {
        RetryPolicy {
            base_ns: 1_000_000,
            max_delay_ns: 100_000_000,
            max_attempts: 5,
            jitter_per_mille: 500,
        }
    }
}

impl RetryPolicy {
    /// The delay before jitter after attempt `failed_attempt` (1-based) failed.
    pub fn nominal_delay_ns(&self, failed_attempt: u8) -> u64 {
        let shift = u32::from(failed_attempt.max(1) - 1);
        if shift >= 64 || self.base_ns > (u64::MAX >> shift) {
            self.max_delay_ns
        } else {
            (self.base_ns << shift).min(self.max_delay_ns)
        }
    }

    /// The inclusive range every jittered delay after attempt `failed_attempt` lies in.
    pub fn delay_bounds_ns(&self, failed_attempt: u8) -> (u64, u64) {
        let nominal = self.nominal_delay_ns(failed_attempt);
        (nominal - self.jitter_span(nominal), nominal)
    }

    /// The jittered delay after attempt `failed_attempt` failed; draws from `rng` only
    /// when the jitter span is non-zero.
    pub fn delay_ns(&self, failed_attempt: u8, rng: &mut Rng) -> u64 {
        let nominal = self.nominal_delay_ns(failed_attempt);
        let span = self.jitter_span(nominal);
        if span == 0 {
            nominal
        } else {
            nominal - rng.below(span + 1)
        }
    }

    /// Whether attempt `attempt` failing transiently still leaves one to make.
    #[inline]
    pub fn may_retry(&self, attempt: u8) -> bool {
        attempt < self.max_attempts
    }

    fn jitter_span(&self, nominal: u64) -> u64 {
        ((u128::from(nominal) * u128::from(self.jitter_per_mille.min(1000))) / 1000) as u64
    }

    /// Checks the invariants documented on the fields.
    pub(crate) fn problems(&self) -> Option<&'static str> {
        if self.base_ns == 0 {
            Some("base_ns must be at least 1")
        } else if self.max_delay_ns < self.base_ns {
            Some("max_delay_ns must be at least base_ns")
        } else if self.max_attempts == 0 {
            Some("max_attempts must be at least 1")
        } else if self.jitter_per_mille > 1000 {
            Some("jitter_per_mille must be at most 1000")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_doubles_then_caps_without_overflow() {
        let p = RetryPolicy {
            base_ns: 3,
            max_delay_ns: 20,
            max_attempts: 255,
            jitter_per_mille: 0,
        };
        let got: Vec<u64> = (1..=6).map(|n| p.nominal_delay_ns(n)).collect();
        assert_eq!(got, [3, 6, 12, 20, 20, 20]);
        let wide = RetryPolicy {
            base_ns: u64::MAX / 2,
            max_delay_ns: u64::MAX,
            ..p
        };
        assert_eq!(
            wide.nominal_delay_ns(3),
            u64::MAX,
            "shift overflow saturates"
        );
        assert_eq!(wide.nominal_delay_ns(200), u64::MAX);
    }
}
