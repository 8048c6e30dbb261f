//! Zero allocations in `BitActor::process` (evaluate) and `BitActor::apply`: a counting global
//! allocator around 1,000,000 items of each scenario (k8s, trading, IoT) evaluated in
//! batches of 64 with the example rules, previous values filled in by a fixed-size stand-in
//! for the resources stage.
//!
//! Run: `cargo test --release --test flow_bitactor_alloc` (also passes in debug, more
//! slowly).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
mod flow_bitactor_support;

use ebbflow::flow::bitactor::{ActorConfig, BitActor, RuleSet};
use ebbflow::flow::{ChangeKind, Command, FieldMask, Item};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::record::{Op, Record};
use flow_bitactor_support::DEFAULT_RULES;

const ITEMS: usize = 1_000_000;
const BATCH: usize = 64;

/// Last state per key in a preallocated open-addressing table (no allocation per record).
struct FixedResources {
    slots: Vec<(u64, Option<Record>)>,
    mask: usize,
}

impl FixedResources {
    fn new(log2: u32) -> FixedResources {
        FixedResources {
            slots: vec![(0, None); 1 << log2],
            mask: (1 << log2) - 1,
        }
    }

    fn annotate(&mut self, rec: Record, item: &mut Item) {
        *item = Item::from_record(rec);
        let mut i = (rec.key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & self.mask;
        while self.slots[i].1.is_some() && self.slots[i].0 != rec.key {
            i = (i + 1) & self.mask;
        }
        let old = self.slots[i].1;
        if rec.op == Op::Deleted {
            item.header.change = ChangeKind::Deleted;
            // Keep the slot (no deletion in this stand-in): a later record re-creates it.
            self.slots[i] = (rec.key, Some(Record::new(rec.kind, Op::Deleted)));
            return;
        }
        self.slots[i] = (rec.key, Some(rec));
        match old.filter(|o| o.op != Op::Deleted) {
            None => {
                item.header.change = ChangeKind::Created;
                item.changed = FieldMask(u64::MAX);
            }
            Some(old) => {
                item.header.change = ChangeKind::Updated;
                for (n, f) in rec.fields().enumerate() {
                    if let Some(v) = old.get(f.id) {
                        item.set_prev_at(n, v);
                        if v != f.value {
                            item.changed.insert(f.id);
                        }
                    }
                }
            }
        }
    }
}

/// Evaluates `ITEMS` records of `g` in batches; returns (allocations inside `evaluate`,
/// hits).
fn run(mut a: BitActor, g: &mut dyn Generator) -> (u64, usize) {
    let mut res = FixedResources::new(18);
    let mut batch = [Item::tick(0); BATCH];
    let (mut allocs, mut hits) = (0, 0);
    for _ in 0..ITEMS / BATCH {
        for it in batch.iter_mut() {
            res.annotate(g.next_record(), it);
        }
        let (h, n) = counting_alloc::on_this_thread(|| a.process(&mut batch));
        allocs += n;
        hits += h;
    }
    // Commands do not allocate either (an EnableRule(false) walks the table).
    let cmds = [
        Command::SetThreshold {
            request: 1,
            rule: 6,
            value: 4.0,
        },
        Command::SetThreshold {
            request: 2,
            rule: 6,
            value: f64::NAN,
        },
        Command::EnableRule {
            request: 3,
            rule: 0,
            enabled: false,
        },
        Command::EnableRule {
            request: 4,
            rule: 0,
            enabled: true,
        },
        Command::AckAlert {
            request: 5,
            key: 1,
            rule: 0,
        },
    ];
    let (_, n) = counting_alloc::on_this_thread(|| {
        for c in &cmds {
            let _ = std::hint::black_box(a.apply(c));
        }
    });
    allocs += n;
    (allocs, hits)
}

#[test]
fn evaluate_allocates_nothing_over_a_million_items_per_scenario() {
    // The counter works: one Box is one allocation.
    assert_eq!(
        counting_alloc::on_this_thread(|| drop(std::hint::black_box(Box::new(1u64)))).1,
        1
    );
    let rules = RuleSet::parse(DEFAULT_RULES).unwrap();

    let cfg = ActorConfig::default();

    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let a = BitActor::compile_readonly(&rules, k8s.interner(), cfg);
    let (allocs, hits) = run(a, &mut k8s);
    assert_eq!(allocs, 0, "k8s: {allocs} allocations");
    assert!(hits > 0, "k8s: the rules fired");

    let mut trading = TradingGenerator::new(TradingConfig::default());
    let a = BitActor::compile_readonly(&rules, trading.decoder().interner(), cfg);
    let (allocs, hits) = run(a, &mut trading);
    assert_eq!(allocs, 0, "trading: {allocs} allocations");
    assert!(hits > 0, "trading: the rules fired");

    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let a = BitActor::compile_readonly(&rules, city.decoder().interner(), cfg);
    let (allocs, hits) = run(a, &mut city);
    assert_eq!(allocs, 0, "iot: {allocs} allocations");
    assert!(hits > 0, "iot: the rules fired");
}
