//! [`Ledger`]: a step with a side effect and its compensation.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::flow::reactor::{Step, StepError};
use crate::flow::Item;
use crate::sources::record::Kind;

/// Counts the records that passed it, per [`Kind`]; its compensation takes the count
/// back. After every chain has finished, the counts equal the records whose chain
/// *completed* — the saga property, observable. Never fails.
///
/// The counts are shared with the [`LedgerHandle`]s from [`Ledger::handle`] (relaxed
/// atomics: one uncontended add per record).
#[derive(Debug, Default)]
pub struct Ledger {
    counts: Arc<[AtomicI64; Kind::COUNT]>,
}

/// Reads a [`Ledger`]'s counts from anywhere.
#[derive(Clone, Debug)]
pub struct LedgerHandle {
    counts: Arc<[AtomicI64; Kind::COUNT]>,
}

impl Ledger {
    /// A ledger with every count at 0.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A handle that reads this ledger's counts.
    pub fn handle(&self) -> LedgerHandle {
        LedgerHandle {
            counts: Arc::clone(&self.counts),
        }
    }
}

impl LedgerHandle {
    /// Records of `kind` counted and not compensated.
    pub fn count(&self, kind: Kind) -> i64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }

    /// The sum over every kind.
    pub fn total(&self) -> i64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Step for Ledger {
    fn name(&self) -> &'static str {
        "ledger"
    }

    #[inline]
    fn run(&mut self, item: &mut Item) -> Result<(), StepError> {
        self.counts[item.record.kind as usize].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn compensate(&mut self, item: &Item) {
        self.counts[item.record.kind as usize].fetch_sub(1, Ordering::Relaxed);
    }
}
