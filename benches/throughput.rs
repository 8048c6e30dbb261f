//! Throughput of a trivial 2-thread pipeline: the host thread produces 64-byte events,
//! a pinned peer thread consumes them. ebbflow (host `push_slice` → input ring → a
//! counting sink stage) against raw `rtrb` (chunked and one at a time),
//! `crossbeam-channel` bounded and `std::sync::mpsc::sync_channel`, in the same run.
//!
//! `cargo bench --bench throughput`

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ebbflow::engine::{Pinning, PipelineBuilder, Placement, Timing, WaitStrategy};
use support::{cores, pin, push_chunks, time_stream, Ev, Sink};

/// Events per measured iteration.
const N: u64 = 1 << 20;
/// Chunk the producers write at once where the API allows it.
const CHUNK: usize = 256;
const CAPACITY: usize = 4096;

fn throughput(c: &mut Criterion) {
    let (host_core, peer_core) = cores();
    pin(host_core);
    let chunk: Vec<Ev> = (0..CHUNK as u64).map(Ev::new).collect();
    let mut g = c.benchmark_group("two_thread_throughput");
    g.throughput(Throughput::Elements(N))
        .sample_size(20)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));

    // Raw rtrb, chunked on both sides.
    {
        let (mut tx, mut rx) = rtrb::RingBuffer::<Ev>::new(CAPACITY);
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let consumer = std::thread::spawn(move || {
            pin(peer_core);
            let mut n = 0u64;
            loop {
                let avail = rx.slots();
                if avail == 0 {
                    if rx.is_abandoned() && rx.is_empty() {
                        return;
                    }
                    std::hint::spin_loop();
                    continue;
                }
                let chunk = rx.read_chunk(avail.min(CHUNK)).unwrap();
                let (a, b) = chunk.as_slices();
                for e in a.iter().chain(b) {
                    std::hint::black_box(e);
                }
                n += chunk.len() as u64;
                chunk.commit_all();
                s.store(n, Ordering::Release);
            }
        });
        let mut total = 0;
        g.bench_function("rtrb_chunked", |b| {
            b.iter_custom(|iters| {
                time_stream(iters, N, &mut total, &seen, || {
                    let mut sent = 0u64;
                    while sent < N {
                        let (w, _) = tx.push_partial_slice(&chunk);
                        sent += w.len() as u64;
                    }
                })
            })
        });
        drop(tx);
        consumer.join().unwrap();
    }

    // Raw rtrb, one push and one pop per event.
    {
        let (mut tx, mut rx) = rtrb::RingBuffer::<Ev>::new(CAPACITY);
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let consumer = std::thread::spawn(move || {
            pin(peer_core);
            let mut n = 0u64;
            loop {
                match rx.pop() {
                    Ok(e) => {
                        std::hint::black_box(e);
                        n += 1;
                        if n.is_multiple_of(64) {
                            s.store(n, Ordering::Release);
                        }
                    }
                    Err(_) => {
                        s.store(n, Ordering::Release);
                        if rx.is_abandoned() {
                            return;
                        }
                        std::hint::spin_loop();
                    }
                }
            }
        });
        let mut total = 0;
        g.bench_function("rtrb_single", |b| {
            b.iter_custom(|iters| {
                time_stream(iters, N, &mut total, &seen, || {
                    for i in 0..N {
                        let mut e = Ev::new(i);
                        while let Err(rtrb::PushError::Full(back)) = tx.push(e) {
                            e = back;
                        }
                    }
                })
            })
        });
        drop(tx);
        consumer.join().unwrap();
    }

    // ebbflow: host push_slice → input ring → sink stage on the pinned peer thread.
    for (name, timing) in [
        ("ebbflow", Timing::PerBatch),
        ("ebbflow_timing_off", Timing::Off),
    ] {
        let seen = Arc::new(AtomicU64::new(0));
        let (pipeline, mut input, _output) = PipelineBuilder::<Ev>::new()
            .stage(
                "sink",
                Sink {
                    seen: 0,
                    counter: seen.clone(),
                },
            )
            .capacity(CAPACITY)
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

    // crossbeam-channel bounded, one send/recv per event.
    {
        let (tx, rx) = crossbeam_channel::bounded::<Ev>(CAPACITY);
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let consumer = std::thread::spawn(move || {
            pin(peer_core);
            let mut n = 0u64;
            while let Ok(e) = rx.recv() {
                std::hint::black_box(e);
                n += 1;
                if n.is_multiple_of(64) || rx.is_empty() {
                    s.store(n, Ordering::Release);
                }
            }
        });
        let mut total = 0;
        g.bench_function("crossbeam_channel", |b| {
            b.iter_custom(|iters| {
                time_stream(iters, N, &mut total, &seen, || {
                    for i in 0..N {
                        tx.send(Ev::new(i)).unwrap();
                    }
                })
            })
        });
        drop(tx);
        consumer.join().unwrap();
    }

    // std::sync::mpsc::sync_channel, one send/recv per event.
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Ev>(CAPACITY);
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let consumer = std::thread::spawn(move || {
            pin(peer_core);
            let mut n = 0u64;
            loop {
                match rx.try_recv() {
                    Ok(e) => {
                        std::hint::black_box(e);
                        n += 1;
                        if n.is_multiple_of(64) {
                            s.store(n, Ordering::Release);
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        s.store(n, Ordering::Release);
                        match rx.recv() {
                            Ok(e) => {
                                std::hint::black_box(e);
                                n += 1;
                            }
                            Err(_) => return,
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
        });
        let mut total = 0;
        g.bench_function("std_sync_channel", |b| {
            b.iter_custom(|iters| {
                time_stream(iters, N, &mut total, &seen, || {
                    for i in 0..N {
                        tx.send(Ev::new(i)).unwrap();
                    }
                })
            })
        });
        drop(tx);
        consumer.join().unwrap();
    }
    g.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
