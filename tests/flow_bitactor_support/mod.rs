//! Shared helpers of the bitactor tests: a stand-in for the resources stage (previous
//! values, change kind) and a naive reference evaluator the engine must agree with.
#![allow(dead_code)]

use std::collections::HashMap;

use ebbflow::flow::bitactor::rules::{CmpOp, Literal, RuleDef, RuleSet, Source, Test};
use ebbflow::flow::{ChangeKind, FieldMask, Item, RuleHits, CLEARED_BIT};
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::{FieldId, FieldValue, Op, Record};

/// The example rules file.
pub const DEFAULT_RULES: &str = include_str!("../../examples/rules/default.rules");

/// What the resources stage will do, done naively: keeps the last state per key and
/// fills `change`, `changed` and the previous values of each record.
#[derive(Default)]
pub struct FakeResources {
    state: HashMap<u64, Record>,
}

impl FakeResources {
    /// The item for `rec`, annotated against the stored state.
    pub fn annotate(&mut self, rec: Record) -> Item {
        let mut item = Item::from_record(rec);
        if rec.op == Op::Deleted {
            item.header.change = ChangeKind::Deleted;
            if let Some(old) = self.state.remove(&rec.key) {
                set_prev(&mut item, &old);
            }
            return item;
        }
        match self.state.insert(rec.key, rec) {
            None => {
                item.header.change = ChangeKind::Created;
                let mut m = FieldMask::EMPTY;
                for f in rec.fields() {
                    m.insert(f.id);
                }
                item.changed = m;
            }
            Some(old) => {
                item.header.change = ChangeKind::Updated;
                set_prev(&mut item, &old);
            }
        }
        item
    }
}

fn set_prev(item: &mut Item, old: &Record) {
    let rec = item.record;
    let mut changed = FieldMask::EMPTY;
    for (i, f) in rec.fields().enumerate() {
        match old.get(f.id) {
            Some(v) => {
                item.set_prev_at(i, v);
                if v != f.value {
                    changed.insert(f.id);
                }
            }
            None => changed.insert(f.id),
        }
    }
    item.changed = changed;
}

/// A field value as a number (strings as symbol ids).
pub fn num(v: FieldValue) -> f64 {
    match v {
        FieldValue::I64(x) => x as f64,
        FieldValue::F64(x) => x,
        FieldValue::Bool(b) => f64::from(u8::from(b)),
        FieldValue::Sym(s) => f64::from(s.id()),
    }
}

/// Naive evaluation of one rule: plain comparisons, `Record::get`, `Item::prev`.
pub fn holds(def: &RuleDef, item: &Item, interner: &Interner) -> bool {
    let rec = &item.record;
    if def.kinds & (1 << rec.kind as u16) == 0 {
        return false;
    }
    let sym = |s: &str| interner.get(s).map(|x| f64::from(x.id()));
    if let Some(ns) = &def.namespace {
        if sym(ns) != Some(f64::from(rec.namespace.id())) {
            return false;
        }
    }
    def.preds.iter().all(|p| {
        let cur = |f: FieldId| rec.get(f).map(num);
        let prev = |f: FieldId| item.prev(f).map(num);
        let x = match p.source {
            Source::Value(f) => cur(f),
            Source::Delta(f) => cur(f).zip(prev(f)).map(|(c, q)| c - q),
            Source::Pct(f) => cur(f)
                .zip(prev(f))
                .map(|(c, q)| ((c - q) / q.abs()).abs() * 100.0),
            Source::Diff(a, b) => cur(a).zip(cur(b)).map(|(c, d)| c - d),
        };
        let Some(x) = x.filter(|x| !x.is_nan()) else {
            return false;
        };
        match &p.test {
            Test::Outside(lo, hi) => x < *lo || x > *hi,
            Test::Cmp(op, lit) => {
                let c = match lit {
                    Literal::Num(v) => *v,
                    Literal::Bool(b) => f64::from(u8::from(*b)),
                    Literal::Str(s) => sym(s).unwrap_or(-1.0),
                };
                match op {
                    CmpOp::Gt => x > c,
                    CmpOp::Ge => x >= c,
                    CmpOp::Lt => x < c,
                    CmpOp::Le => x <= c,
                    CmpOp::Eq => x == c,
                    CmpOp::Ne => x != c,
                }
            }
        }
    })
}

/// Naive edge detection over a stream: the hits the engine must write.
#[derive(Default)]
pub struct Reference {
    active: HashMap<u64, u64>,
}

impl Reference {
    /// The expected hits of `item` (a `What::Record` item).
    pub fn hits(&mut self, rules: &RuleSet, item: &Item, interner: &Interner) -> RuleHits {
        let deleted = item.header.change == ChangeKind::Deleted || item.record.op == Op::Deleted;
        let mut m = 0u64;
        if !deleted {
            for (r, def) in rules.rules().iter().enumerate() {
                if def.enabled && holds(def, item, interner) {
                    m |= 1 << r;
                }
            }
        }
        let old = self.active.get(&item.record.key).copied().unwrap_or(0);
        if m == 0 {
            self.active.remove(&item.record.key);
        } else {
            self.active.insert(item.record.key, m);
        }
        let mut hits = RuleHits::default();
        for r in 0..64u16 {
            if (m & !old) >> r & 1 == 1 {
                hits.push(r);
            }
        }
        for r in 0..64u16 {
            if (old & !m) >> r & 1 == 1 {
                hits.push(r | CLEARED_BIT);
            }
        }
        hits
    }
}
