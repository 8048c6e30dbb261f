//! Rules compiled to predicates over columns of values.
//!
//! Every predicate — threshold, string or boolean equality, delta, percent move,
//! difference, band, namespace filter — becomes one of two tests on a value `x` computed
//! from the record (its [`SourceKey`]): inside the closed interval `[lo, hi]`, or outside
//! it. Strict comparisons use the next representable float (`x > c` ⇔ `x ≥ next_up(c)`),
//! strings compare their symbol id, booleans compare 0/1, `!=` and `outside` test
//! outside.
//!
//! The program lists every distinct value the rules read ([`Program::sources`]); in a
//! chunk of up to 64 items, the items of one kind fill one
//! [`Column`](super::column::Column) per value its rules read, packed from row 0 (each item
//! computes each value once), then each predicate tests the packed rows of its column at
//! once into a 64-bit mask, one bit per row, and a rule's rows are the AND of its
//! predicates' masks (see [`BitActor`](super::BitActor)).
//!
//! Missing values are NaN: a value whose field the record lacks, or a `delta`/`pct`
//! without a previous value, is NaN, and both tests — `lo ≤ x ≤ hi` and `x < lo ∨ x > hi`
//! — are false for NaN, so a predicate whose value is missing (or NaN, or 0/0) never
//! holds, without a presence check per predicate.

use crate::flow::bitactor::rules::{CmpOp, Literal, RuleDef, RuleSet, Source, Test};
use crate::sources::record::Kind;

/// The value a predicate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceKey {
    /// Field `f`'s current value.
    Value(u8),
    /// Current minus previous value of field `f`.
    Delta(u8),
    /// `|current − previous| / |previous| × 100` of field `f`.
    Pct(u8),
    /// Field `a` minus field `b`.
    Diff(u8, u8),
    /// The record's namespace symbol.
    Namespace,
}

/// One compiled predicate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Pred {
    /// Index of its value in [`Program::sources`].
    pub(crate) source: u16,
    /// The rule it belongs to.
    pub(crate) rule: u8,
    /// Holds when `x < lo ∨ x > hi` (else when `lo ≤ x ≤ hi`).
    pub(crate) outside: bool,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
}

/// What the items of one kind compute.
#[derive(Clone, Debug, Default)]
pub(crate) struct KindSources {
    /// Rules of the kind.
    pub(crate) rules: u64,
    /// Indices in [`Program::sources`] of the values the kind's rules read.
    pub(crate) sources: Vec<u16>,
}

/// Where a rule's threshold predicate was compiled, and how to rebuild its bounds.
#[derive(Clone, Debug)]
pub(crate) struct ThresholdSpec {
    pub(crate) shape: Shape,
    pub(crate) int_valued: bool,
    pub(crate) pct: bool,
    /// Index of the predicate in [`Program::preds`].
    pub(crate) pred: usize,
    pub(crate) current: f64,
}

/// The comparison a threshold feeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    Cmp(CmpOp),
    /// `outside [lo, threshold]`: the threshold is the upper bound.
    Band {
        lo: f64,
    },
}

/// Bounds for `x OP c`: `(lo, hi, outside)`.
pub(crate) fn cmp_bounds(op: CmpOp, c: f64) -> (f64, f64, bool) {
    match op {
        CmpOp::Gt => (c.next_up(), f64::INFINITY, false),
        CmpOp::Ge => (c, f64::INFINITY, false),
        CmpOp::Lt => (f64::NEG_INFINITY, c.next_down(), false),
        CmpOp::Le => (f64::NEG_INFINITY, c, false),
        CmpOp::Eq => (c, c, false),
        CmpOp::Ne => (c, c, true),
    }
}

/// Bounds of a threshold shape with threshold `t`.
pub(crate) fn shape_bounds(shape: Shape, t: f64) -> (f64, f64, bool) {
    match shape {
        Shape::Cmp(op) => cmp_bounds(op, t),
        Shape::Band { lo } => (lo, t, true),
    }
}

/// Symbol lookup during compilation: the id as `f64`, or `-1.0` (matches nothing) for a
/// string that cannot occur; `Err(())` when the interner is full.
pub(crate) type Resolve<'a> = dyn FnMut(&str) -> Result<f64, ()> + 'a;

/// The compiled rule set.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    /// Every distinct value some predicate reads, over all kinds: one column each.
    pub(crate) sources: Vec<SourceKey>,
    /// Indexed by `Kind` discriminant.
    pub(crate) kinds: [KindSources; Kind::COUNT],
    /// Every predicate, grouped by rule in rule order (a rule's namespace filter first).
    pub(crate) preds: Vec<Pred>,
    /// Per rule: the range of its predicates in `preds`.
    pub(crate) rule_preds: Vec<std::ops::Range<usize>>,
    pub(crate) thresholds: Vec<Option<ThresholdSpec>>,
}

/// The index of `key` in `sources`, appended if new.
fn source_of(sources: &mut Vec<SourceKey>, key: SourceKey) -> u16 {
    match sources.iter().position(|&s| s == key) {
        Some(i) => i as u16,
        None => {
            sources.push(key);
            (sources.len() - 1) as u16
        }
    }
}

/// Compiles `rules`; `Err(rule index, text)` when a string could not be interned.
pub(crate) fn compile(
    rules: &RuleSet,
    resolve: &mut Resolve<'_>,
) -> Result<Program, (usize, String)> {
    let mut sources = Vec::new();
    let mut preds = Vec::new();
    let mut thresholds = Vec::with_capacity(rules.len());
    let mut rule_kinds = Vec::with_capacity(rules.len());
    let mut rule_preds = Vec::with_capacity(rules.len());
    for (r, def) in rules.rules().iter().enumerate() {
        let rule = r as u8;
        rule_kinds.push(def.kinds);
        let first = preds.len();
        if let Some(ns) = &def.namespace {
            let id = resolve(ns).map_err(|()| (r, ns.clone()))?;
            preds.push(Pred {
                source: source_of(&mut sources, SourceKey::Namespace),
                rule,
                outside: false,
                lo: id,
                hi: id,
            });
        }
        let threshold = def.threshold_pred();
        for (j, p) in def.preds.iter().enumerate() {
            let key = match p.source {
                Source::Value(f) => SourceKey::Value(f as u8),
                Source::Delta(f) => SourceKey::Delta(f as u8),
                Source::Pct(f) => SourceKey::Pct(f as u8),
                Source::Diff(x, y) => SourceKey::Diff(x as u8, y as u8),
            };
            let (lo, hi, outside) = match &p.test {
                Test::Outside(lo, hi) => (*lo, *hi, true),
                Test::Cmp(op, lit) => {
                    let c = match lit {
                        Literal::Num(v) => *v,
                        Literal::Bool(v) => f64::from(u8::from(*v)),
                        Literal::Str(s) => resolve(s).map_err(|()| (r, s.clone()))?,
                    };
                    cmp_bounds(*op, c)
                }
            };
            if threshold == Some(j) {
                thresholds.push(Some(ThresholdSpec {
                    pred: preds.len(),
                    ..threshold_spec(def, j)
                }));
            }
            preds.push(Pred {
                source: source_of(&mut sources, key),
                rule,
                outside,
                lo,
                hi,
            });
        }
        if threshold.is_none() {
            thresholds.push(None);
        }
        rule_preds.push(first..preds.len());
    }
    let kinds = std::array::from_fn(|k| {
        let mut ks = KindSources::default();
        for p in &preds {
            if rule_kinds[usize::from(p.rule)] >> k & 1 != 0 {
                ks.rules |= 1u64 << p.rule;
                if !ks.sources.contains(&p.source) {
                    ks.sources.push(p.source);
                }
            }
        }
        ks
    });
    Ok(Program {
        sources,
        kinds,
        preds,
        rule_preds,
        thresholds,
    })
}

fn threshold_spec(def: &RuleDef, t: usize) -> ThresholdSpec {
    let p = &def.preds[t];
    let (shape, current) = match &p.test {
        Test::Outside(lo, hi) => (Shape::Band { lo: *lo }, *hi),
        Test::Cmp(op, Literal::Num(c)) => (Shape::Cmp(*op), *c),
        // `threshold_pred` only selects numeric predicates.
        Test::Cmp(op, _) => (Shape::Cmp(*op), f64::NAN),
    };
    use crate::flow::bitactor::rules::{field_type, FieldType};
    let int_valued = match p.source {
        Source::Value(f) | Source::Delta(f) => field_type(f) == FieldType::Int,
        Source::Diff(a, b) => field_type(a) == FieldType::Int && field_type(b) == FieldType::Int,
        Source::Pct(_) => false,
    };
    ThresholdSpec {
        shape,
        int_valued,
        pct: matches!(p.source, Source::Pct(_)),
        pred: 0,
        current,
    }
}
