//! The schema stage's common case: `SchemaInferer::observe` on records that
//! bring nothing new, against a plain `HashSet<(kind, field, type)>` lookup
//! per field (the obvious alternative) and a baseline that only walks the
//! fields (the harness and record decoding cost), in the same run.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-schema cargo bench --bench schema -- --warm-up-time 1 --measurement-time 3`
//!
//! Each iteration observes a batch of `BATCH` pre-generated records;
//! criterion reports elements (records) per second.

use std::collections::HashSet;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ebbflow::flow::schema::{SchemaInferer, ValueType};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::record::Record;

const BATCH: usize = 4096;

/// `(kind, field id, value type)` of every field of `r`.
fn triples(r: &Record) -> impl Iterator<Item = (u8, u8, u8)> + '_ {
    r.fields()
        .map(move |f| (r.kind as u8, f.id as u8, ValueType::of(f.value) as u8))
}

fn bench_records(c: &mut Criterion, label: &str, records: &[Record]) {
    let mut inf = SchemaInferer::new();
    let mut set = HashSet::new();
    for r in records {
        inf.observe(r);
        set.extend(triples(r));
    }
    assert!(records.iter().all(|r| inf.observe(r).is_none()));

    let mut group = c.benchmark_group(format!("schema_observe_{label}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("baseline_walk_fields", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for r in records {
                for (k, f, t) in triples(black_box(r)) {
                    acc = acc.wrapping_add(u64::from(k ^ f ^ t));
                }
            }
            black_box(acc)
        })
    });
    group.bench_function("observe_no_change", |b| {
        b.iter(|| {
            let mut changes = 0u64;
            for r in records {
                changes += u64::from(inf.observe(black_box(r)).is_some());
            }
            black_box(changes)
        })
    });
    group.bench_function("hashset_lookup", |b| {
        b.iter(|| {
            let mut new = 0u64;
            for r in records {
                for t in triples(black_box(r)) {
                    new += u64::from(!set.contains(&t));
                }
            }
            black_box(new)
        })
    });
    group.finish();
}

fn schema(c: &mut Criterion) {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    // Skip the initial listing so the batch is the steady-state mix.
    for _ in 0..50_000 {
        k8s.next_record();
    }
    let records: Vec<Record> = (0..BATCH).map(|_| k8s.next_record()).collect();
    bench_records(c, "k8s", &records);
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let records: Vec<Record> = (0..BATCH).map(|_| trading.next_record()).collect();
    bench_records(c, "trading", &records);
}

criterion_group!(benches, schema);
criterion_main!(benches);
