//! [`RuleCatalog`]: what another thread needs to describe a hit.
//!
//! The catalog is an `Arc` shared by the [`BitActor`](super::BitActor) (which writes the
//! atomics) and any reader (the notify stage formats alerts with it). Names, severities
//! and hints never change after compile; thresholds, the enabled flag and the counters
//! are atomics, written with `Relaxed` ordering (each value is independent; a reader sees
//! a recent value, never a torn one).
//!
//! Allocation: built once at compile time; cloning is an `Arc` clone; reads never allocate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::flow::bitactor::rules::Source;
use crate::flow::item::{Item, Severity, CLEARED_BIT};
use crate::sources::record::{FieldId, FieldValue};

/// Static and live facts about one rule.
#[derive(Debug)]
pub(crate) struct RuleInfo {
    pub(crate) name: String,
    pub(crate) severity: Severity,
    pub(crate) hint: String,
    /// Source of the primary predicate (what `observed` reports).
    pub(crate) source: Source,
    /// f64 bits of the current threshold; NaN bits when the rule has none.
    pub(crate) threshold: AtomicU64,
    pub(crate) enabled: AtomicBool,
    pub(crate) raised: AtomicU64,
    pub(crate) cleared: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) rules: Vec<RuleInfo>,
    pub(crate) overflows: AtomicU64,
    pub(crate) items: AtomicU64,
}

/// Per-rule descriptions and counters, cheap to read from any thread (`Send + Sync`,
/// `Clone` is an `Arc` clone).
#[derive(Clone, Debug, Default)]
pub struct RuleCatalog {
    pub(crate) shared: Arc<Shared>,
}

/// Counters of one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounters {
    /// Alerts raised (rising edges, and level hits for objects the table could not hold).
    pub raised: u64,
    /// Alerts cleared (falling edges and deletes).
    pub cleared: u64,
}

impl RuleCatalog {
    /// Number of rules; ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.shared.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.shared.rules.is_empty()
    }

    /// The id of the rule called `name`.
    pub fn id_of(&self, name: &str) -> Option<u16> {
        self.shared
            .rules
            .iter()
            .position(|r| r.name == name)
            .map(|i| i as u16)
    }

    #[inline]
    fn info(&self, rule: u16) -> Option<&RuleInfo> {
        self.shared.rules.get(usize::from(rule & !CLEARED_BIT))
    }

    /// The rule's name (a hit entry with [`CLEARED_BIT`] set is accepted).
    pub fn name(&self, rule: u16) -> Option<&str> {
        self.info(rule).map(|r| r.name.as_str())
    }

    /// The rule's severity.
    pub fn severity(&self, rule: u16) -> Option<Severity> {
        self.info(rule).map(|r| r.severity)
    }

    /// The rule's recovery hint (may be empty).
    pub fn hint(&self, rule: u16) -> Option<&str> {
        self.info(rule).map(|r| r.hint.as_str())
    }

    /// The rule's current threshold (mirrors `SetThreshold`); `None` for an unknown rule
    /// or a rule without a numeric threshold (string or boolean tests only).
    pub fn threshold(&self, rule: u16) -> Option<f64> {
        let v = f64::from_bits(self.info(rule)?.threshold.load(Ordering::Relaxed));
        (!v.is_nan()).then_some(v)
    }

    /// Whether the rule is enabled.
    pub fn enabled(&self, rule: u16) -> Option<bool> {
        self.info(rule).map(|r| r.enabled.load(Ordering::Relaxed))
    }

    /// The rule's counters.
    pub fn counters(&self, rule: u16) -> Option<RuleCounters> {
        self.info(rule).map(|r| RuleCounters {
            raised: r.raised.load(Ordering::Relaxed),
            cleared: r.cleared.load(Ordering::Relaxed),
        })
    }

    /// Items whose object could not get a table entry (the table was full); their
    /// matches were emitted level-triggered (on every matching item).
    pub fn table_overflows(&self) -> u64 {
        self.shared.overflows.load(Ordering::Relaxed)
    }

    /// Record items evaluated so far (published once per batch).
    pub fn items_evaluated(&self) -> u64 {
        self.shared.items.load(Ordering::Relaxed)
    }

    /// The value the rule's primary predicate (its threshold predicate, else its first)
    /// looked at in `item`: the field value, the delta, the percent move or the
    /// difference. Strings read as their symbol id, booleans as 0/1. `None` for an
    /// unknown rule or when a needed value (field, previous value) is missing.
    pub fn observed(&self, rule: u16, item: &Item) -> Option<f64> {
        let info = self.info(rule)?;
        let cur = |f: FieldId| item.record.get(f).map(as_f64);
        let prev = |f: FieldId| item.prev(f).map(as_f64);
        match info.source {
            Source::Value(f) => cur(f),
            Source::Delta(f) => Some(cur(f)? - prev(f)?),
            Source::Pct(f) => {
                let (c, p) = (cur(f)?, prev(f)?);
                Some(((c - p) / p.abs()).abs() * 100.0)
            }
            Source::Diff(a, b) => Some(cur(a)? - cur(b)?),
        }
    }
}

/// A field value as the rules compare it.
#[inline(always)]
pub(crate) fn as_f64(v: FieldValue) -> f64 {
    match v {
        FieldValue::I64(x) => x as f64,
        FieldValue::F64(x) => x,
        FieldValue::Bool(b) => f64::from(u8::from(b)),
        FieldValue::Sym(s) => f64::from(s.id()),
    }
}
