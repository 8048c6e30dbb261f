//! [`FaultInjector`]: deterministic, seeded fault injection for demos and tests.

use crate::flow::reactor::{Step, StepError};
use crate::flow::Item;
use crate::sources::gen::Rng;

/// **Injects faults on purpose** — for demos, tests and chaos runs, never for real
/// validation. Each attempt draws once from a seeded [`Rng`]: with probability
/// `permanent_per_million / 10⁶` it fails with
/// `StepError::Permanent(`[`FaultInjector::PERMANENT`]`)`, else with probability
/// `transient_per_million / 10⁶` with `StepError::Transient(`[`FaultInjector::TRANSIENT`]`)`,
/// else it succeeds. Retries draw again, so a transient fault usually clears on retry.
/// The same seed and the same sequence of attempts give the same faults.
#[derive(Clone, Debug)]
pub struct FaultInjector {
    /// Attempts per million that fail transiently.
    pub transient_per_million: u32,
    /// Attempts per million that fail permanently.
    pub permanent_per_million: u32,
    rng: Rng,
    injected_transient: u64,
    injected_permanent: u64,
}

impl FaultInjector {
    /// Code of an injected transient fault.
    pub const TRANSIENT: u16 = 900;
    /// Code of an injected permanent fault.
    pub const PERMANENT: u16 = 901;

    /// An injector with the given rates (each clamped to 10⁶) and seed.
    pub fn new(transient_per_million: u32, permanent_per_million: u32, seed: u64) -> Self {
        FaultInjector {
            transient_per_million: transient_per_million.min(1_000_000),
            permanent_per_million: permanent_per_million.min(1_000_000),
            rng: Rng::new(seed),
            injected_transient: 0,
            injected_permanent: 0,
        }
    }

    /// Faults injected so far: (transient, permanent).
    pub fn injected(&self) -> (u64, u64) {
        (self.injected_transient, self.injected_permanent)
    }
}

impl Step for FaultInjector {
    fn name(&self) -> &'static str {
        "fault_injector"
    }

    #[inline]
    fn run(&mut self, _item: &mut Item) -> Result<(), StepError> {
        let roll = self.rng.below(1_000_000);
        let permanent = u64::from(self.permanent_per_million);
        if roll < permanent {
            self.injected_permanent += 1;
            Err(StepError::Permanent(Self::PERMANENT))
        } else if roll < permanent + u64::from(self.transient_per_million) {
            self.injected_transient += 1;
            Err(StepError::Transient(Self::TRANSIENT))
        } else {
            Ok(())
        }
    }
}
