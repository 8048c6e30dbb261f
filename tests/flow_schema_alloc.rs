//! `SchemaInferer::observe` never allocates: neither in steady state (the
//! no-change check, over 1,000,000 records of each scenario generator
//! after warm-up, in release) nor when it learns something new.
//!
//! Run: `cargo test --release --test flow_schema_alloc` (also passes in
//! debug, with smaller counts).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use ebbflow::flow::schema::SchemaInferer;
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::record::Record;

/// Records per generator in the counted phase.
const N: usize = if cfg!(debug_assertions) {
    100_000
} else {
    1_000_000
};
/// Records per generator before counting.
const WARM_UP: usize = 200_000;
/// Records generated (uncounted) per counted chunk.
const CHUNK: usize = 10_000;

/// Warms `inf` up on `g`, then observes `N` more records in chunks,
/// counting only the `observe` calls. Returns (allocations, changes seen
/// while counting).
fn steady_state<G: Generator>(g: &mut G, inf: &mut SchemaInferer) -> (u64, u64) {
    for _ in 0..WARM_UP {
        inf.observe(&g.next_record());
    }
    let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
    let (mut allocs, mut changes) = (0, 0);
    for _ in 0..N / CHUNK {
        chunk.clear();
        chunk.extend((0..CHUNK).map(|_| g.next_record()));
        let (c, a) = counting_alloc::on_this_thread(|| {
            let mut c = 0u64;
            for r in &chunk {
                c += u64::from(inf.observe(r).is_some());
            }
            c
        });
        allocs += a;
        changes += c;
    }
    (allocs, changes)
}

#[test]
fn no_change_observe_allocates_nothing_in_steady_state() {
    // The counter works: one Box is one allocation.
    let (_, one) = counting_alloc::on_this_thread(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(one, 1);

    let mut inf = SchemaInferer::new();
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let (allocs, changes) = steady_state(&mut k8s, &mut inf);
    assert_eq!(allocs, 0, "k8s: allocations in {N} observes");
    assert_eq!(changes, 0, "k8s: the schema settled during warm-up");
    let v = inf.version();
    assert!(v >= 5, "k8s yields several classes, got version {v}");

    // The same inferer takes the other scenarios: new classes first, then
    // steady state again.
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let (allocs, changes) = steady_state(&mut trading, &mut inf);
    assert_eq!(allocs, 0, "trading: allocations in {N} observes");
    assert_eq!(changes, 0, "trading: the schema settled during warm-up");
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let (allocs, changes) = steady_state(&mut city, &mut inf);
    assert_eq!(allocs, 0, "iot: allocations in {N} observes");
    assert_eq!(changes, 0, "iot: the schema settled during warm-up");
    assert!(inf.version() > v, "trading and iot added classes");
}

#[test]
fn learning_new_classes_and_properties_allocates_nothing() {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let mut records: Vec<Record> = (0..20_000).map(|_| k8s.next_record()).collect();
    records.extend((0..1_000).map(|_| trading.next_record()));
    records.extend((0..1_000).map(|_| city.next_record()));
    let mut inf = SchemaInferer::new();
    let (changes, allocs) = counting_alloc::on_this_thread(|| {
        records.iter().filter(|r| inf.observe(r).is_some()).count()
    });
    assert!(
        changes >= 7,
        "classes of three scenarios were learned: {changes}"
    );
    assert_eq!(allocs, 0);
    // Keeping the previous version is a heap-free clone.
    let (copy, allocs) = counting_alloc::on_this_thread(|| inf.schema().clone());
    assert_eq!(allocs, 0);
    assert_eq!(&copy, inf.schema());
}
