//! Hop latency: one event to a peer thread and back, as a round trip, through
//! an ebbflow pipeline (input ring → stage thread → output ring) and through the same shape
//! built from raw `rtrb`, `crossbeam-channel` and `std::sync::mpsc::sync_channel`.
//!
//! `cargo bench --bench hop`
//!
//! Host thread pinned to the first allowed core, peer thread to the last; both spin.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ebbflow::engine::{Pinning, PipelineBuilder, Placement, Timing, WaitStrategy};
use support::{cores, pin, time_rounds, Ev, Identity};

const ROUNDS: u64 = 1000;

fn hop(c: &mut Criterion) {
    let (host_core, peer_core) = cores();
    pin(host_core);
    let mut g = c.benchmark_group("hop_round_trip");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    // Raw rtrb: two rings and an echo thread.
    {
        let (mut to_tx, mut to_rx) = rtrb::RingBuffer::<Ev>::new(4096);
        let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<Ev>::new(4096);
        let echo = std::thread::spawn(move || {
            pin(peer_core);
            loop {
                match to_rx.pop() {
                    Ok(e) if e.seq == u64::MAX => return,
                    Ok(e) => while back_tx.push(e).is_err() {},
                    Err(_) => std::hint::spin_loop(),
                }
            }
        });
        g.bench_function("rtrb", |b| {
            b.iter_custom(|iters| {
                time_rounds(iters, ROUNDS, |i| {
                    while to_tx.push(Ev::new(i)).is_err() {}
                    loop {
                        if let Ok(e) = back_rx.pop() {
                            std::hint::black_box(e);
                            break;
                        }
                        std::hint::spin_loop();
                    }
                })
            })
        });
        while to_tx.push(Ev::new(u64::MAX)).is_err() {}
        echo.join().unwrap();
    }

    // ebbflow: one identity stage on a pinned, busy-spinning thread; default timing (two
    // TSC reads per batch, here per event), one batch in 64 timed, and no timing.
    for (name, timing) in [
        ("ebbflow", Timing::PerBatch),
        ("ebbflow_sampled_64", Timing::Sampled(64)),
        ("ebbflow_timing_off", Timing::Off),
    ] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Ev>::new()
            .stage("identity", Identity)
            .placement(Placement::Fused)
            .pinning(Pinning::Cores(vec![peer_core]))
            .wait(WaitStrategy::BusySpin)
            .host_wait(WaitStrategy::BusySpin)
            .timing(timing)
            .build()
            .expect("valid pipeline");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                time_rounds(iters, ROUNDS, |i| {
                    input.push(Ev::new(i)).unwrap();
                    loop {
                        if let Some(e) = output.pop() {
                            std::hint::black_box(e);
                            break;
                        }
                        std::hint::spin_loop();
                    }
                })
            })
        });
        drop(input);
        pipeline.shutdown().unwrap();
    }

    // crossbeam-channel bounded.
    {
        let (to_tx, to_rx) = crossbeam_channel::bounded::<Ev>(4096);
        let (back_tx, back_rx) = crossbeam_channel::bounded::<Ev>(4096);
        let echo = std::thread::spawn(move || {
            pin(peer_core);
            while let Ok(e) = to_rx.recv() {
                back_tx.send(e).unwrap();
            }
        });
        g.bench_function("crossbeam_channel", |b| {
            b.iter_custom(|iters| {
                time_rounds(iters, ROUNDS, |i| {
                    to_tx.send(Ev::new(i)).unwrap();
                    std::hint::black_box(back_rx.recv().unwrap());
                })
            })
        });
        drop(to_tx);
        echo.join().unwrap();
    }

    // std::sync::mpsc::sync_channel.
    {
        let (to_tx, to_rx) = std::sync::mpsc::sync_channel::<Ev>(4096);
        let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Ev>(4096);
        let echo = std::thread::spawn(move || {
            pin(peer_core);
            while let Ok(e) = to_rx.recv() {
                back_tx.send(e).unwrap();
            }
        });
        g.bench_function("std_sync_channel", |b| {
            b.iter_custom(|iters| {
                time_rounds(iters, ROUNDS, |i| {
                    to_tx.send(Ev::new(i)).unwrap();
                    std::hint::black_box(back_rx.recv().unwrap());
                })
            })
        });
        drop(to_tx);
        echo.join().unwrap();
    }
    g.finish();
}

criterion_group!(benches, hop);
criterion_main!(benches);
