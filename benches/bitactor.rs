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
//! The TSC section then repeats the hot runs with the vector instructions capped at AVX,
//! SSE2 and none (`ActorConfig::vectors`), to show what the vector width buys.
//!
//! Rule sets: `spread` is the example file (19 rules) plus 45 filler rules spread over the
//! scenario kinds (so an item meets only its kind's rules); `same-kind` puts all 64 rules
//! on the scenario's own kind (the worst case: every item evaluates every rule).

use criterion::{black_box, Criterion, Throughput};
use ebbflow::engine::Clock;
use ebbflow::flow::bitactor::{ActorConfig, BitActor, RuleSet, Vectors};
use ebbflow::flow::Item;
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::Kind;

#[path = "support/rulesets.rs"]
mod rulesets;
use rulesets::{items_with_prev, same_kind_rules, spread_rules, Naive, BATCH};

/// Items per scenario held in memory (4 MiB of items), evaluated round and round.
const ITEMS: usize = 16_384;

struct Scenario {
    name: &'static str,
    kind: Kind,
    items: Vec<Item>,
    interner: Interner,
}

fn scenarios() -> Vec<Scenario> {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let k8s_items = items_with_prev(&mut k8s, ITEMS);
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let trading_items = items_with_prev(&mut trading, ITEMS);
    let mut city = SmartCityGenerator::new(SmartCityConfig {
        devices: 4096,
        ..SmartCityConfig::default()
    });
    let city_items = items_with_prev(&mut city, ITEMS);
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
fn tsc_report(
    sc: &Scenario,
    label: &str,
    rules: &RuleSet,
    items: &mut [Item],
    hot: bool,
    config: ActorConfig,
) {
    let clock = Clock::get();
    let mut a = BitActor::compile_readonly(rules, &sc.interner, config);
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
         hits/signal {:.4}; {:.2} ticks/ns, tsc={}, isa={}",
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
        a.instruction_set(),
    );
}

/// The scenario's items of its own kind (for the same-kind rules).
fn own_kind(sc: &Scenario) -> Vec<Item> {
    sc.items
        .iter()
        .filter(|i| i.record.kind == sc.kind)
        .copied()
        .collect()
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
            tsc_report(
                sc,
                "spread",
                &spread,
                &mut items,
                hot,
                ActorConfig::default(),
            );
        }
        let mut only = own_kind(sc);
        for hot in [false, true] {
            tsc_report(
                sc,
                "same-kind",
                &same,
                &mut only,
                hot,
                ActorConfig::default(),
            );
        }
    }

    // The same evaluator capped at each narrower instruction set, in the same run: what the
    // vector width buys (hot batches; the `isa=` field names what ran).
    for sc in scs.iter_mut() {
        let same = RuleSet::parse(&same_kind_rules(sc.kind)).expect("same-kind rules");
        let mut only = own_kind(sc);
        for vectors in [Vectors::Avx, Vectors::Sse2, Vectors::Scalar] {
            let config = ActorConfig {
                vectors,
                ..ActorConfig::default()
            };
            let mut items = sc.items.clone();
            tsc_report(sc, "spread", &spread, &mut items, true, config);
            tsc_report(sc, "same-kind", &same, &mut only, true, config);
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
