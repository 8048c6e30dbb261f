//! The trace recorder's hot-path cost per event (sampling 1 in 1000, three stages), next to
//! the eight clock reads it makes, in the same run.
//!
//! ```text
//! cargo bench --bench telemetry -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ebbflow::engine::Clock;
use ebbflow::telemetry::{Sampler, Telemetry, TelemetryConfig, TraceAttrs};

static STAGES: &[&str] = &["decode", "route", "publish"];
const EVENTS: u64 = 10_000;

fn recorder(c: &mut Criterion) {
    // A collector address nobody listens on: exports fail and are counted; the hot path
    // is what is measured.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .sampler(Sampler::OneIn(1000));
    let telemetry = Telemetry::start(cfg).unwrap();
    let mut rec = telemetry.recorder(STAGES);
    let clock = *Clock::get();
    let mut g = c.benchmark_group("telemetry_recorder");
    g.throughput(Throughput::Elements(EVENTS))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("recorder_3_stages_1_in_1000", |b| {
        b.iter(|| {
            for _ in 0..EVENTS {
                rec.begin(TraceAttrs::default());
                for s in 0..STAGES.len() {
                    rec.start(s);
                    rec.end(s);
                }
                black_box(rec.finish());
            }
        })
    });
    g.bench_function("eight_clock_reads", |b| {
        b.iter(|| {
            for _ in 0..EVENTS {
                for _ in 0..8 {
                    black_box(clock.ticks());
                }
            }
        })
    });
    g.finish();
    let _ = telemetry.shutdown();
}

criterion_group!(benches, recorder);
criterion_main!(benches);
