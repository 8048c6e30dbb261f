//! Rule sets, items and the naive peer shared by the bitactor benchmarks (`bitactor`,
//! `instructions`).
#![allow(dead_code)]

use std::collections::HashMap;

use ebbflow::flow::bitactor::rules::{CmpOp, Literal, Source, Test};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::{ChangeKind, Item, RuleHits, CLEARED_BIT};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

pub const DEFAULT_RULES: &str = include_str!("../../examples/rules/default.rules");
/// Items per batch.
pub const BATCH: usize = 64;

/// 45 filler rules over all scenario kinds, rarely true, of every predicate type.
pub fn spread_rules() -> String {
    let mut s = String::from(DEFAULT_RULES);
    for i in 0..45 {
        let body = match i % 9 {
            0 => format!("kind Tick\nwhen Quantity > {}", 1_000_000 + i),
            1 => format!("kind Tick\nwhen pct(Price) > {}", 20 + i),
            2 => format!(
                "kind Tick\nwhen AssetClass == \"crypto\"\nwhen Price outside [0, {}]",
                1e7 + f64::from(i)
            ),
            3 => format!("kind Sensor\nwhen Value outside [-{}, 1e6]", 1000 + i),
            4 => format!("kind Sensor\nwhen delta(Value) > {}", 10_000 + i),
            5 => format!("kind Pod\nwhen RestartsTotal > {}", 1000 + i),
            6 => format!("kind Pod\nwhen RestartsMax - RestartsTotal > {i}"),
            7 => format!("kind Node\nwhen NodePressure == {}", 100 + i),
            _ => format!(
                "kind Deployment\nwhen ReplicasUpdated - ReplicasAvailable > {}",
                50 + i
            ),
        };
        s.push_str(&format!("\nrule filler_{i}\n{body}\n"));
    }
    s
}

/// 64 rules, all on `kind`, mixing predicate types; a few fire.
pub fn same_kind_rules(kind: Kind) -> String {
    let mut s = String::new();
    for i in 0..64 {
        let body = match (kind, i % 4) {
            (Kind::Tick, 0) => format!("when pct(Price) > {}", 0.01 * f64::from(i + 1)),
            (Kind::Tick, 1) => format!("when Quantity > {}", 100 * (i + 1)),
            (Kind::Tick, 2) => format!(
                "when AssetClass == \"bond\"\nwhen Price outside [{}, 1e6]",
                90 + i
            ),
            (Kind::Tick, _) => format!("when Side == true\nwhen Price < {}", i + 1),
            (Kind::Sensor, 0) => format!("when Value outside [0, {}]", 40 + i),
            (Kind::Sensor, 1) => format!("when delta(Value) > {}", 5 * (i + 1)),
            (Kind::Sensor, 2) => format!("when DeviceType == \"water\"\nwhen Value > {}", 100 + i),
            (Kind::Sensor, _) => format!("when EdgeNode - DeviceId > {}", i),
            (_, 0) => format!("when delta(RestartsTotal) >= {}", 1 + i % 5),
            (_, 1) => {
                format!("when WaitingReason == \"CrashLoopBackOff\"\nwhen RestartsTotal > {i}")
            }
            (_, 2) => format!("when Ready == false\nwhen RestartsMax >= {}", i % 7),
            (_, _) => format!("when Phase != \"Running\"\nwhen RestartsTotal < {i}"),
        };
        s.push_str(&format!("rule r{i}\nkind {}\n{body}\n", kind.name()));
    }
    s
}

/// Items with previous values, as the resources stage will produce them.
pub fn items_with_prev(g: &mut dyn Generator, n: usize) -> Vec<Item> {
    let mut state: HashMap<u64, Record> = HashMap::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let rec = g.next_record();
        let mut item = Item::from_record(rec);
        let old = if rec.op == Op::Deleted {
            item.header.change = ChangeKind::Deleted;
            state.remove(&rec.key)
        } else {
            let old = state.insert(rec.key, rec);
            item.header.change = if old.is_some() {
                ChangeKind::Updated
            } else {
                ChangeKind::Created
            };
            old
        };
        if let Some(old) = old {
            for (i, f) in rec.fields().enumerate() {
                if let Some(v) = old.get(f.id) {
                    item.set_prev_at(i, v);
                }
            }
        }
        out.push(item);
    }
    out
}

/// The naive peer: every rule, every predicate, with branches; edges in a `HashMap`.
pub struct Naive {
    rules: RuleSet,
    consts: Vec<Vec<f64>>,
    ns: Vec<Option<f64>>,
    active: HashMap<u64, u64>,
}

impl Naive {
    pub fn new(rules: &RuleSet, interner: &Interner) -> Naive {
        let sym = |s: &str| interner.get(s).map_or(-1.0, |x| f64::from(x.id()));
        Naive {
            consts: rules
                .rules()
                .iter()
                .map(|r| {
                    r.preds
                        .iter()
                        .map(|p| match &p.test {
                            Test::Cmp(_, Literal::Num(v)) => *v,
                            Test::Cmp(_, Literal::Bool(b)) => f64::from(u8::from(*b)),
                            Test::Cmp(_, Literal::Str(s)) => sym(s),
                            Test::Outside(..) => 0.0,
                        })
                        .collect()
                })
                .collect(),
            ns: rules
                .rules()
                .iter()
                .map(|r| r.namespace.as_deref().map(sym))
                .collect(),
            rules: rules.clone(),
            active: HashMap::with_capacity(1 << 17),
        }
    }

    pub fn evaluate(&mut self, items: &mut [Item]) -> usize {
        let num = |v: FieldValue| match v {
            FieldValue::I64(x) => x as f64,
            FieldValue::F64(x) => x,
            FieldValue::Bool(b) => f64::from(u8::from(b)),
            FieldValue::Sym(s) => f64::from(s.id()),
        };
        let mut hits = 0;
        for item in items.iter_mut() {
            let rec = item.record;
            let mut m = 0u64;
            if rec.op != Op::Deleted {
                'rules: for (r, def) in self.rules.rules().iter().enumerate() {
                    if def.kinds & (1 << rec.kind as u16) == 0 {
                        continue;
                    }
                    if let Some(ns) = self.ns[r] {
                        if ns != f64::from(rec.namespace.id()) {
                            continue;
                        }
                    }
                    for (p, c) in def.preds.iter().zip(&self.consts[r]) {
                        let cur = |f: FieldId| rec.get(f).map(num);
                        let x = match p.source {
                            Source::Value(f) => cur(f),
                            Source::Delta(f) => {
                                cur(f).zip(item.prev(f).map(num)).map(|(a, b)| a - b)
                            }
                            Source::Pct(f) => cur(f)
                                .zip(item.prev(f).map(num))
                                .map(|(a, b)| ((a - b) / b.abs()).abs() * 100.0),
                            Source::Diff(a, b) => cur(a).zip(cur(b)).map(|(a, b)| a - b),
                        };
                        let Some(x) = x else { continue 'rules };
                        let ok = match &p.test {
                            Test::Outside(lo, hi) => x < *lo || x > *hi,
                            Test::Cmp(op, _) => match op {
                                CmpOp::Gt => x > *c,
                                CmpOp::Ge => x >= *c,
                                CmpOp::Lt => x < *c,
                                CmpOp::Le => x <= *c,
                                CmpOp::Eq => x == *c,
                                CmpOp::Ne => x != *c,
                            },
                        };
                        if !ok {
                            continue 'rules;
                        }
                    }
                    m |= 1 << r;
                }
            }
            let old = self.active.get(&rec.key).copied().unwrap_or(0);
            item.hits = RuleHits::default();
            if old != m {
                if m == 0 {
                    self.active.remove(&rec.key);
                } else {
                    self.active.insert(rec.key, m);
                }
                let (mut up, mut down) = (m & !old, old & !m);
                while up != 0 {
                    item.hits.push(up.trailing_zeros() as u16);
                    up &= up - 1;
                    hits += 1;
                }
                while down != 0 {
                    item.hits.push(down.trailing_zeros() as u16 | CLEARED_BIT);
                    down &= down - 1;
                    hits += 1;
                }
            }
        }
        hits
    }
}
