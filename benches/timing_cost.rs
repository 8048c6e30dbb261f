//! What stage timing costs: the price of one clock read (TSC through `Clock`, and
//! `Instant::now`), and the throughput of a 4-stage fused pipeline with timing off,
//! per batch and per event, in the same run.
//!
//! `cargo bench --bench timing_cost`

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ebbflow::engine::{Clock, Pinning, PipelineBuilder, Placement, Timing, WaitStrategy};
use support::{cores, pin, push_chunks, time_stream, Ev, Sink, Touch};

const N: u64 = 1 << 20;
const CHUNK: usize = 256;

fn clock_reads(c: &mut Criterion) {
    let clock = Clock::get();
    let mut g = c.benchmark_group("clock_read");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    g.bench_function("tsc_clock", |b| b.iter(|| black_box(clock.ticks())));
    g.bench_function("instant_now", |b| b.iter(|| black_box(Instant::now())));
    g.finish();
}

fn timed_pipeline(c: &mut Criterion) {
    let (host_core, peer_core) = cores();
    pin(host_core);
    let chunk: Vec<Ev> = (0..CHUNK as u64).map(Ev::new).collect();
    let mut g = c.benchmark_group("four_stage_timing");
    g.throughput(Throughput::Elements(N))
        .sample_size(20)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for (name, timing) in [
        ("off", Timing::Off),
        ("per_batch", Timing::PerBatch),
        ("sampled_64", Timing::Sampled(64)),
        ("per_event", Timing::PerEvent),
    ] {
        let seen = Arc::new(AtomicU64::new(0));
        let (pipeline, mut input, _output) = PipelineBuilder::<Ev>::new()
            .stage("a", Touch)
            .stage("b", Touch)
            .stage("c", Touch)
            .stage(
                "sink",
                Sink {
                    seen: 0,
                    counter: seen.clone(),
                },
            )
            .max_batch(CHUNK)
            .placement(Placement::Fused)
            .pinning(Pinning::Cores(vec![peer_core]))
            .wait(WaitStrategy::BusySpin)
            .host_wait(WaitStrategy::BusySpin)
            .timing(timing)
            .build()
            .expect("valid pipeline");
        let mut total = 0;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                time_stream(iters, N, &mut total, &seen, || {
                    push_chunks(&mut input, &chunk, N)
                })
            })
        });
        drop(input);
        pipeline.shutdown().unwrap();
    }
    g.finish();
}

criterion_group!(benches, clock_reads, timed_pipeline);
criterion_main!(benches);
