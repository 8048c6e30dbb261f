//! Cost of the bitactor per evaluated item ("signal") in TSC ticks, with 64 rules and
//! batches of 64 items, for the three scenarios; plus criterion times per batch against a
//! naive peer (per-rule branches, `Record::get`, a `HashMap` of active alerts) measured in
//! the same run.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-bitactor cargo bench --bench bitactor -- --warm-up-time 1 --measurement-time 3`
//!
//! Counting: every evaluated record item yields one signal (its rule mask, compared with the
//! object's state); hits (raised or cleared alerts) are the subset that changed state. The
//! TSC section prints ticks per signal, per hit and per predicate evaluated.
//!
//! Rule sets: `spread` is the example file (19 rules) plus 45 filler rules spread over the
//! scenario kinds (so an item meets only its kind's rules); `same-kind` puts all 64 rules
//! on the scenario's own kind (the worst case: every item evaluates every rule).

use std::collections::HashMap;

use criterion::{black_box, Criterion, Throughput};
use ebbflow::engine::Clock;
use ebbflow::flow::bitactor::rules::{CmpOp, Literal, Source, Test};
use ebbflow::flow::bitactor::{ActorConfig, BitActor, RuleSet};
use ebbflow::flow::{ChangeKind, Item, RuleHits, CLEARED_BIT};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

const DEFAULT_RULES: &str = include_str!("../examples/rules/default.rules");
const BATCH: usize = 64;
/// Items per scenario held in memory (4 MiB of items), evaluated round and round.
const ITEMS: usize = 16_384;

/// 45 filler rules over all scenario kinds, rarely true, of every predicate type.
fn spread_rules() -> String {
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
fn same_kind_rules(kind: Kind) -> String {
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
fn items(g: &mut dyn Generator, n: usize) -> Vec<Item> {
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
struct Naive<'a> {
    rules: &'a RuleSet,
    consts: Vec<Vec<f64>>,
    ns: Vec<Option<f64>>,
    active: HashMap<u64, u64>,
}

impl<'a> Naive<'a> {
    fn new(rules: &'a RuleSet, interner: &Interner) -> Naive<'a> {
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
            rules,
            active: HashMap::with_capacity(1 << 17),
        }
    }

    fn evaluate(&mut self, items: &mut [Item]) -> usize {
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

struct Scenario {
    name: &'static str,
    kind: Kind,
    items: Vec<Item>,
    interner: Interner,
}

fn scenarios() -> Vec<Scenario> {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let k8s_items = items(&mut k8s, ITEMS);
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let trading_items = items(&mut trading, ITEMS);
    let mut city = SmartCityGenerator::new(SmartCityConfig {
        devices: 4096,
        ..SmartCityConfig::default()
    });
    let city_items = items(&mut city, ITEMS);
    // Copy each generator's interner's strings into a fresh one in id order so that the
    // symbols match (the generators own theirs).
    let copy = |src: &Interner| {
        let mut dst = Interner::default();
        for id in 0..src.len() as u32 {
            if let Some(s) = src.resolve(ebbflow::sources::intern::Symbol::from_id(id)) {
                dst.intern(s);
            }
        }
        dst
    };
    vec![
        Scenario {
            name: "k8s",
            kind: Kind::Pod,
            items: k8s_items,
            interner: copy(k8s.interner()),
        },
        Scenario {
            name: "trading",
            kind: Kind::Tick,
            items: trading_items,
            interner: copy(trading.decoder().interner()),
        },
        Scenario {
            name: "iot",
            kind: Kind::Sensor,
            items: city_items,
            interner: copy(city.decoder().interner()),
        },
    ]
}

/// Predicates of the rules of each item's kind (namespace filters included), per item:
/// the nominal count; guard dispatch evaluates fewer.
fn preds_per_item(rules: &RuleSet, items: &[Item]) -> f64 {
    let total: usize = items
        .iter()
        .map(|it| {
            rules
                .rules()
                .iter()
                .filter(|r| r.kinds & (1 << it.record.kind as u16) != 0)
                .map(|r| r.preds.len() + usize::from(r.namespace.is_some()))
                .sum::<usize>()
        })
        .sum();
    total as f64 / items.len() as f64
}

/// Times every batch of 64 with the TSC (two reads per batch, ~1 % of a batch) and
/// prints the median and 10th percentile per signal: on a loaded machine most batches
/// run undisturbed between preemptions, so these are robust where a mean is not.
fn tsc_report(sc: &Scenario, label: &str, rules: &RuleSet, items: &mut [Item], hot: bool) {
    let clock = Clock::get();
    let mut a = BitActor::compile_readonly(rules, &sc.interner, ActorConfig::default());
    for chunk in items.chunks_mut(BATCH) {
        a.evaluate(chunk);
    }
    let rounds = 40;
    let mut hits = 0usize;
    let mut per_batch: Vec<u64> = Vec::with_capacity(rounds * items.len() / BATCH);
    for _ in 0..rounds {
        for chunk in items.chunks_exact_mut(BATCH) {
            if hot {
                touch(chunk);
            }
            let t0 = clock.ticks();
            hits += a.evaluate(chunk);
            per_batch.push(clock.ticks() - t0);
        }
    }
    per_batch.sort_unstable();
    let q = |f: f64| per_batch[((per_batch.len() - 1) as f64 * f) as usize] as f64 / BATCH as f64;
    let (median, p10, p90) = (q(0.5), q(0.1), q(0.9));
    let n = (per_batch.len() * BATCH) as f64;
    let ppi = preds_per_item(rules, items);
    println!(
        "bitactor-tsc {:8} {:9} {} rules={} batch={BATCH}: ticks/signal median {:6.1} (p10 {:6.1}, p90 {:6.1}); \
         {:6.2} predicates/signal -> {:5.2} ticks/predicate, {:5.2} ticks per rule x signal; \
         hits/signal {:.4}; {:.2} ticks/ns, tsc={}",
        sc.name,
        label,
        if hot { "hot   " } else { "stream" },
        rules.len(),
        median,
        p10,
        p90,
        ppi,
        median / ppi.max(1e-9),
        median / rules.len() as f64,
        hits as f64 / n,
        clock.ticks_per_ns(),
        clock.is_tsc(),
    );
}

/// Reads every cache line of the batch, as the stage before the bitactor has just done in
/// a pipeline (the batch arrives in L1/L2).
fn touch(chunk: &[Item]) {
    let bytes = std::mem::size_of_val(chunk);
    let base = chunk.as_ptr().cast::<u8>();
    let mut sum = 0u8;
    for off in (0..bytes).step_by(64) {
        // SAFETY: `off < bytes`, the size of the slice `base` points to.
        sum = sum.wrapping_add(unsafe { base.add(off).read_volatile() });
    }
    black_box(sum);
}

fn bench(c: &mut Criterion) {
    let mut scs = scenarios();
    let spread = RuleSet::parse(&spread_rules()).expect("spread rules");
    assert_eq!(spread.len(), 64);
    for sc in scs.iter_mut() {
        let same = RuleSet::parse(&same_kind_rules(sc.kind)).expect("same-kind rules");
        assert_eq!(same.len(), 64);
        let mut items = sc.items.clone();
        for hot in [false, true] {
            tsc_report(sc, "spread", &spread, &mut items, hot);
        }
        let mut only: Vec<Item> = sc
            .items
            .iter()
            .filter(|i| i.record.kind == sc.kind)
            .copied()
            .collect();
        for hot in [false, true] {
            tsc_report(sc, "same-kind", &same, &mut only, hot);
        }
    }

    let mut group = c.benchmark_group("bitactor");
    group.throughput(Throughput::Elements(BATCH as u64));
    for sc in scs.iter_mut() {
        let mut a = BitActor::compile_readonly(&spread, &sc.interner, ActorConfig::default());
        let mut naive = Naive::new(&spread, &sc.interner);
        let mut items = sc.items.clone();
        let batches = items.len() / BATCH;
        let mut i = 0;
        group.bench_function(format!("{}_bitactor", sc.name), |b| {
            b.iter(|| {
                let chunk = &mut items[i * BATCH..(i + 1) * BATCH];
                i = (i + 1) % batches;
                black_box(a.evaluate(chunk))
            })
        });
        let mut i = 0;
        group.bench_function(format!("{}_naive", sc.name), |b| {
            b.iter(|| {
                let chunk = &mut items[i * BATCH..(i + 1) * BATCH];
                i = (i + 1) % batches;
                black_box(naive.evaluate(chunk))
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
