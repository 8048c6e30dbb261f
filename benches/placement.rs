//! Placement: the same 8-stage chain, each stage doing a fixed amount of arithmetic per
//! event, fused on one pinned thread versus spread over as many pinned threads as the
//! machine allows (`Placement::Auto` with `Pinning::Auto`, one core left to the host).
//!
//! `cargo bench --bench placement`
//!
//! On 2 cores `Auto` also makes one thread, so both variants coincide; the comparison is
//! meant for machines with more cores.

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ebbflow::engine::{CoreSet, Emitter, Pinning, PipelineBuilder, Placement, Stage, WaitStrategy};
use support::{pin, push_chunks, time_stream, Ev, Sink};

const N: u64 = 1 << 18;
const CHUNK: usize = 256;

/// About 40 ns of dependent arithmetic per event.
struct Work;
impl Stage for Work {
    type In = Ev;
    type Out = Ev;
    #[inline]
    fn process(&mut self, mut e: Ev, out: &mut Emitter<Ev>) {
        let mut x = e.payload[0] | 1;
        for _ in 0..32 {
            x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
        }
        e.payload[0] = x;
        out.emit(e);
    }
}

fn placement(c: &mut Criterion) {
    let cores = CoreSet::detect().clone();
    pin(cores.ids()[0]);
    let chunk: Vec<Ev> = (0..CHUNK as u64).map(Ev::new).collect();
    let mut g = c.benchmark_group("eight_stage_placement");
    g.throughput(Throughput::Elements(N))
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for (name, placement) in [("fused", Placement::Fused), ("auto", Placement::Auto)] {
        let seen = Arc::new(AtomicU64::new(0));
        let (pipeline, mut input, _output) = PipelineBuilder::<Ev>::new()
            .stage("w1", Work)
            .stage("w2", Work)
            .stage("w3", Work)
            .stage("w4", Work)
            .stage("w5", Work)
            .stage("w6", Work)
            .stage("w7", Work)
            .stage(
                "sink",
                Sink {
                    seen: 0,
                    counter: seen.clone(),
                },
            )
            .max_batch(CHUNK)
            .placement(placement)
            .pinning(Pinning::Auto)
            .wait(WaitStrategy::BusySpin)
            .host_wait(WaitStrategy::BusySpin)
            .build()
            .expect("valid pipeline");
        eprintln!(
            "{name}: {} pipeline threads on {} allowed cores",
            pipeline.layout().len(),
            cores.len()
        );
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

criterion_group!(benches, placement);
criterion_main!(benches);
