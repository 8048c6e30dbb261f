//! Scenario generator rates (records per second), flat out, plus the
//! decoders fed by them: binary tick frames, CSV, and the k8s JSON form
//! through the watch decoder.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-sources cargo bench --bench generators -- --warm-up-time 1 --measurement-time 2`
//!
//! Each iteration produces a batch of `BATCH` records; criterion reports
//! elements (records) per second.

use criterion::{black_box, Criterion, Throughput};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::k8s::WatchDecoder;
use ebbflow::sources::ticks::TickDecoder;

const BATCH: u64 = 10_000;

fn batch<G: Generator>(g: &mut G) -> u64 {
    let mut acc = 0u64;
    for _ in 0..BATCH {
        acc ^= g.next_record().key;
    }
    acc
}

fn generators(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(BATCH));
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    group.bench_function("enterprise_k8s_cluster", |b| {
        b.iter(|| black_box(batch(&mut k8s)))
    });
    let mut trading = TradingGenerator::new(TradingConfig::default());
    group.bench_function("financial_trading_platform", |b| {
        b.iter(|| black_box(batch(&mut trading)))
    });
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    group.bench_function("iot_smart_city_platform", |b| {
        b.iter(|| black_box(batch(&mut city)))
    });
    // The k8s scenario as watch-event JSON lines, written and decoded.
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let mut decoder = WatchDecoder::default();
    let mut line = Vec::with_capacity(4096);
    group.bench_function("enterprise_k8s_cluster_json_roundtrip", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for _ in 0..BATCH {
                let r = k8s.next_record();
                line.clear();
                k8s.write_watch_json(&r, &mut line).unwrap();
                ok += u64::from(decoder.decode_event(&line).is_ok());
            }
            black_box(ok)
        })
    });
    group.finish();
}

fn decoders(c: &mut Criterion) {
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let mut frames = Vec::new();
    let mut csv = Vec::new();
    for i in 0..BATCH {
        if i % 2 == 0 {
            let t = trading.next_tick();
            frames.extend_from_slice(&t.to_frame());
            t.write_csv(&mut csv).unwrap();
        } else {
            let r = city.next_reading();
            frames.extend_from_slice(&r.to_frame());
            r.write_csv(&mut csv).unwrap();
        }
    }
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH));
    let mut d = TickDecoder::default();
    group.bench_function("binary_frames", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            d.decode_frames(&frames, |r| ok += u64::from(r.is_ok()));
            black_box(ok)
        })
    });
    let mut d = TickDecoder::default();
    group.bench_function("csv", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            d.decode_csv(&csv, |r| ok += u64::from(r.is_ok()));
            black_box(ok)
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    generators(&mut c);
    decoders(&mut c);
    c.final_summary();
}
