//! Rules compiled to per-kind predicate programs.
//!
//! Every predicate — threshold, string or boolean equality, delta, percent move,
//! difference, band, namespace filter — becomes one of two tests on a value `x` computed
//! from the record: inside the closed interval `[lo, hi]`, or (`neg`) outside it. Strict
//! comparisons use the next representable float (`x > c` ⇔ `x ≥ next_up(c)`), strings
//! compare their symbol id, booleans compare 0/1, `!=` and `outside` set `neg`.
//!
//! Each kind gets its own program (or one per guard value, see [`KindDispatch`]): the
//! predicates of the rules that apply to it, grouped by how `x` is computed and by `neg`,
//! so that each group is one branch-free loop. A failing predicate sets its rule's bit in
//! a fail mask.
//!
//! Missing values are NaN: before an item is evaluated, every field its kind's program
//! reads is set to NaN, then the record's fields (and previous values) are written over
//! them. Both tests — `lo ≤ x ≤ hi` and `x < lo ∨ x > hi` — are false for NaN, so a
//! predicate whose value is missing (or NaN, or 0/0) never holds, without a presence
//! check per predicate.

use crate::flow::bitactor::rules::{CmpOp, Literal, RuleDef, RuleSet, Source, Test};
use crate::sources::record::Kind;

/// How a predicate computes its value; also the group order inside a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    Value = 0,
    Delta = 1,
    Pct = 2,
    Diff = 3,
    Namespace = 4,
}

pub(crate) const MODES: usize = 5;

/// Groups of a program: `mode * 2 + neg`.
pub(crate) const GROUPS: usize = MODES * 2;
const _: () = assert!(GROUPS <= 16, "group bits must fit KindProgram::groups");

/// One compiled predicate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Pred {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) a: u8,
    pub(crate) b: u8,
    pub(crate) rule: u8,
}

/// The predicates of one kind (or of one guard branch of a kind).
#[derive(Clone, Debug, Default)]
pub(crate) struct KindProgram {
    pub(crate) preds: Vec<Pred>,
    /// End index in `preds` of each group (`mode * 2 + neg`).
    pub(crate) ends: [usize; GROUPS],
    /// Rules that can hold in this program.
    pub(crate) rules: u64,
    /// Bit `g` set: group `g` holds at least one predicate (evaluation skips the others).
    pub(crate) groups: u16,
}

/// Most guard branches per kind.
pub(crate) const MAX_BRANCHES: usize = 16;

/// How an item of one kind finds its program.
///
/// Rules guarded by a string equality on one field (`DeviceType == "water"`, `AssetClass
/// == "bond"`) are split by that value: a branch per value holds the rules guarded by it
/// (without the guard, which the dispatch has already checked) plus the unguarded rules;
/// the default program holds the unguarded rules. An item evaluates one program.
#[derive(Clone, Debug, Default)]
pub(crate) struct KindDispatch {
    /// Rules of the kind.
    pub(crate) rules: u64,
    /// Fields whose current value some predicate (or the guard) reads.
    pub(crate) need_cur: u64,
    /// Fields whose previous value some predicate reads.
    pub(crate) need_prev: u64,
    /// The guard field, if the kind has guarded rules.
    pub(crate) guard: Option<u8>,
    /// `(symbol id, program index)` per guard value.
    pub(crate) branches: Vec<(f64, usize)>,
    /// Program index when the guard value has no branch (or there is no guard).
    pub(crate) default: usize,
}

/// Where a rule's threshold predicate was compiled, and how to rebuild its bounds.
#[derive(Clone, Debug)]
pub(crate) struct ThresholdSpec {
    pub(crate) shape: Shape,
    pub(crate) int_valued: bool,
    pub(crate) pct: bool,
    /// `(program, index into its preds)`.
    pub(crate) locs: Vec<(usize, usize)>,
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

/// Bounds for `x OP c`: `(lo, hi, neg)`.
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
    /// Indexed by `Kind` discriminant.
    pub(crate) kinds: Vec<KindDispatch>,
    pub(crate) progs: Vec<KindProgram>,
    pub(crate) thresholds: Vec<Option<ThresholdSpec>>,
}

/// One compiled predicate with what it needs.
#[derive(Clone, Copy, Debug)]
struct Compiled {
    group: usize,
    pred: Pred,
    need_cur: u64,
    need_prev: u64,
    /// `(field, symbol id)` when the predicate is `Field == "string"` on a known string.
    guard: Option<(u8, f64)>,
}

/// Compiles `rules`; `Err(rule index, text)` when a string could not be interned.
pub(crate) fn compile(
    rules: &RuleSet,
    resolve: &mut Resolve<'_>,
) -> Result<Program, (usize, String)> {
    // Per rule: its compiled predicates (namespace filter first) and the index of its
    // threshold predicate among them.
    let mut per_rule: Vec<(Vec<Compiled>, Option<usize>)> = Vec::with_capacity(rules.len());
    for (r, def) in rules.rules().iter().enumerate() {
        let rule = r as u8;
        let mut compiled = Vec::with_capacity(def.preds.len() + 1);
        if let Some(ns) = &def.namespace {
            let id = resolve(ns).map_err(|()| (r, ns.clone()))?;
            compiled.push(Compiled {
                group: Mode::Namespace as usize * 2,
                pred: Pred {
                    lo: id,
                    hi: id,
                    a: 0,
                    b: 0,
                    rule,
                },
                need_cur: 0,
                need_prev: 0,
                guard: None,
            });
        }
        for p in &def.preds {
            let (mode, a, b) = match p.source {
                Source::Value(f) => (Mode::Value, f as u8, f as u8),
                Source::Delta(f) => (Mode::Delta, f as u8, f as u8),
                Source::Pct(f) => (Mode::Pct, f as u8, f as u8),
                Source::Diff(x, y) => (Mode::Diff, x as u8, y as u8),
            };
            let mut guard = None;
            let (lo, hi, neg) = match &p.test {
                Test::Outside(lo, hi) => (*lo, *hi, true),
                Test::Cmp(op, lit) => {
                    let c = match lit {
                        Literal::Num(v) => *v,
                        Literal::Bool(v) => f64::from(u8::from(*v)),
                        Literal::Str(s) => {
                            let id = resolve(s).map_err(|()| (r, s.clone()))?;
                            if *op == CmpOp::Eq && mode == Mode::Value && id >= 0.0 {
                                guard = Some((a, id));
                            }
                            id
                        }
                    };
                    cmp_bounds(*op, c)
                }
            };
            compiled.push(Compiled {
                group: mode as usize * 2 + usize::from(neg),
                pred: Pred { lo, hi, a, b, rule },
                need_cur: (1u64 << a) | (1u64 << b),
                need_prev: match mode {
                    Mode::Delta | Mode::Pct => 1u64 << a,
                    _ => 0,
                },
                guard,
            });
        }
        let tp = def
            .threshold_pred()
            .map(|t| t + usize::from(def.namespace.is_some()));
        per_rule.push((compiled, tp));
    }

    let mut kinds = Vec::with_capacity(Kind::COUNT);
    let mut progs = Vec::new();
    let mut locs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); rules.len()];
    for k in 0..Kind::COUNT {
        let of_kind: Vec<usize> = (0..rules.len())
            .filter(|&r| rules.rules()[r].kinds & (1 << k) != 0)
            .collect();
        let mut d = KindDispatch::default();
        for &r in &of_kind {
            d.rules |= 1u64 << r;
            for c in &per_rule[r].0 {
                d.need_cur |= c.need_cur;
                d.need_prev |= c.need_prev;
            }
        }
        // The guard field: the one most rules of this kind are guarded on (at least 2).
        let first_guard = |r: usize, field: u8| {
            per_rule[r]
                .0
                .iter()
                .position(|c| c.guard.is_some_and(|(f, _)| f == field))
        };
        let mut best: Option<(u8, usize)> = None;
        for field in 0u8..64 {
            let n = of_kind
                .iter()
                .filter(|&&r| first_guard(r, field).is_some())
                .count();
            if n >= 2 && best.is_none_or(|(_, m)| n > m) {
                best = Some((field, n));
            }
        }
        let mut values: Vec<f64> = Vec::new();
        if let Some((field, _)) = best {
            for &r in &of_kind {
                if let Some(j) = first_guard(r, field) {
                    let v = per_rule[r].0[j].guard.map_or(-1.0, |g| g.1);
                    if !values.contains(&v) && values.len() < MAX_BRANCHES {
                        values.push(v);
                    }
                }
            }
            d.guard = Some(field);
            d.need_cur |= 1u64 << field;
        }
        // Program for guard value `branch` (None: the default program).
        let guard_field = d.guard;
        let mut build = |branch: Option<f64>| {
            let mut groups: [Vec<(Pred, usize, bool)>; GROUPS] = Default::default();
            let mut prog = KindProgram::default();
            for &r in &of_kind {
                let (compiled, tp) = &per_rule[r];
                let guard_at = guard_field.and_then(|g| first_guard(r, g));
                let guard_value = guard_at.and_then(|j| compiled[j].guard).map(|g| g.1);
                let skip = match (guard_value, branch) {
                    // Guarded on a value with its own branch: only in that branch.
                    (Some(v), Some(b)) if values.contains(&v) => {
                        if v != b {
                            continue;
                        }
                        guard_at
                    }
                    (Some(v), None) if values.contains(&v) => continue,
                    _ => None,
                };
                prog.rules |= 1u64 << r;
                for (j, c) in compiled.iter().enumerate() {
                    if Some(j) != skip {
                        groups[c.group].push((c.pred, r, Some(j) == *tp));
                    }
                }
            }
            let index = progs.len();
            for (g, list) in groups.iter().enumerate() {
                for &(pred, r, is_threshold) in list {
                    if is_threshold {
                        locs[r].push((index, prog.preds.len()));
                    }
                    prog.preds.push(pred);
                }
                prog.ends[g] = prog.preds.len();
                if !list.is_empty() {
                    prog.groups |= 1 << g;
                }
            }
            progs.push(prog);
            index
        };
        d.default = build(None);
        d.branches = values.iter().map(|&v| (v, build(Some(v)))).collect();
        kinds.push(d);
    }
    let thresholds = rules
        .rules()
        .iter()
        .zip(&per_rule)
        .zip(locs)
        .map(|((def, (_, tp)), locs)| {
            tp.map(|_| ThresholdSpec {
                locs,
                ..threshold_spec(def, def.threshold_pred().unwrap_or(0))
            })
        })
        .collect();
    Ok(Program {
        kinds,
        progs,
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
        locs: Vec::new(),
        current,
    }
}
