//! The full reverse flow on the trading scenario (BRIEF §7): throughput through all nine
//! stages with ticks pre-generated in memory, next to peers in the same run, and
//! end-to-end latency at a fixed offered rate with coordinated omission corrected.
//!
//! ```text
//! cargo bench --bench flow                 # both
//! cargo bench --bench flow -- throughput   # criterion groups only
//! FLOW_LATENCY_ONLY=1 cargo bench --bench flow
//! FLOW_LATENCY_ONLY=1 FLOW_RATES=100000,1000000 cargo bench --bench flow
//! ```
//!
//! Placement: the host (source) thread is pinned to the first allowed core, the pipeline
//! thread to the last — the 2-core layout of BRIEF §2. `busy_spin` fuses all nine stages
//! on the pipeline thread; `host_3` runs journal, reactor and resources on the host thread
//! inside its pushes (`FlowPlacement::Host`) and the other six on the pipeline thread.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ebbflow::engine::{
    Clock, Emitter, Pinning, PipelineBuilder, Placement, Stage, Timing, WaitStrategy,
};
use ebbflow::flow::assembly::{FlowConfig, FlowPlacement, ReverseFlow, HOST_PLACEMENT_STAGES};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::Publish;
use ebbflow::flow::Item;
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::Record;

const RULES: &str = include_str!("../examples/rules/default.rules");

/// Counts messages; never allocates.
struct NullSink(u64);
impl Publish for NullSink {
    fn publish(&mut self, _t: &str, _e: &str, payload: &[u8]) -> bool {
        self.0 += payload.len() as u64;
        true
    }
}

fn flow_config(pipeline_core: usize, wait: WaitStrategy) -> FlowConfig {
    let mut cfg = FlowConfig::new(
        "financial_trading_platform",
        RuleSet::parse(RULES).expect("default rules"),
    );
    cfg.pinning = Pinning::Cores(vec![pipeline_core]);
    cfg.wait = wait;
    cfg.store_capacity = 1 << 12;
    cfg.actor.capacity_log2 = 12;
    // The trading configuration: no per-record reactor clock reads (stage latency is still
    // measured by the engine, per batch).
    cfg.reactor_timing = ebbflow::flow::reactor::Timing::Off;
    cfg
}

fn ticks(n: usize) -> (Vec<Record>, TradingGenerator) {
    let mut g = TradingGenerator::new(TradingConfig::default());
    let recs = (0..n).map(|_| g.next_record()).collect();
    (recs, g)
}

fn interner(g: &mut TradingGenerator) -> &mut Interner {
    g.decoder_mut().interner_mut()
}

/// Passes items on unchanged (the engine's cost with the flow's item and stage count).
struct Pass;
impl Stage for Pass {
    type In = Item;
    type Out = Item;
    #[inline]
    fn process(&mut self, i: Item, out: &mut Emitter<Item>) {
        out.emit(i);
    }
}

/// Pushes every record as an item and returns when the pipeline has drained.
fn push_all_flow(cfg: FlowConfig, g: &mut TradingGenerator, recs: &[Record]) -> Duration {
    let mut flow = ReverseFlow::start(cfg, interner(g), Box::new(NullSink(0))).unwrap();
    let t = Instant::now();
    for r in recs {
        flow.push_record(*r).unwrap();
    }
    flow.finish().unwrap();
    t.elapsed()
}

fn throughput(c: &mut Criterion) {
    let (host, peer) = support::cores();
    support::pin(host);
    const N: usize = 1 << 20;
    let (recs, mut g) = ticks(N);
    let items: Vec<Item> = recs.iter().map(|r| Item::from_record(*r)).collect();
    let mut group = c.benchmark_group("flow_throughput");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(
        BenchmarkId::new("reverse_flow_9_stages", "busy_spin"),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        push_all_flow(flow_config(peer, WaitStrategy::BusySpin), &mut g, &recs)
                    })
                    .sum()
            })
        },
    );
    group.bench_function(
        BenchmarkId::new(
            "reverse_flow_9_stages",
            format!("host_{HOST_PLACEMENT_STAGES}"),
        ),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let mut cfg = flow_config(peer, WaitStrategy::BusySpin);
                        cfg.placement = FlowPlacement::Host {
                            stages: HOST_PLACEMENT_STAGES,
                        };
                        push_all_flow(cfg, &mut g, &recs)
                    })
                    .sum()
            })
        },
    );
    group.bench_function(BenchmarkId::new("engine_8_pass_stages", "busy_spin"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (p, mut input, mut output) = PipelineBuilder::<Item>::new()
                        .stage("1", Pass)
                        .stage("2", Pass)
                        .stage("3", Pass)
                        .stage("4", Pass)
                        .stage("5", Pass)
                        .stage("6", Pass)
                        .stage("7", Pass)
                        .stage("8", Pass)
                        .placement(Placement::Fused)
                        .pinning(Pinning::Cores(vec![peer]))
                        .wait(WaitStrategy::BusySpin)
                        .timing(Timing::PerBatch)
                        // Room for every item: the host never has to read while it pushes.
                        .output_capacity(N)
                        .build()
                        .unwrap();
                    let t = Instant::now();
                    let mut out = 0u64;
                    for chunk in items.chunks(4096) {
                        let mut rest = chunk;
                        while !rest.is_empty() {
                            match input.push_slice(rest) {
                                Ok(()) => rest = &[],
                                Err(_) => unreachable!("pipeline stopped"),
                            }
                            while output.read_batch(|b| out += b.len() as u64) > 0 {}
                        }
                    }
                    p.finish(&mut output, |_| out += 1).unwrap();
                    assert_eq!(out, N as u64);
                    t.elapsed()
                })
                .sum()
        })
    });
    group.bench_function(BenchmarkId::new("raw_rtrb_item", "chunked"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (mut tx, mut rx) = rtrb::RingBuffer::<Item>::new(4096);
                    let consumer = std::thread::spawn(move || {
                        support::pin(peer);
                        let mut n = 0usize;
                        let mut acc = 0u64;
                        while n < N {
                            if let Ok(chunk) = rx.read_chunk(rx.slots()) {
                                let (a, b2) = chunk.as_slices();
                                for i in a.iter().chain(b2) {
                                    acc = acc.wrapping_add(i.record.seq);
                                }
                                n += chunk.len();
                                chunk.commit_all();
                            } else {
                                std::hint::spin_loop();
                            }
                        }
                        acc
                    });
                    let t = Instant::now();
                    let mut rest = &items[..];
                    while !rest.is_empty() {
                        let k = tx.slots().min(rest.len());
                        if k == 0 {
                            std::hint::spin_loop();
                            continue;
                        }
                        let chunk = tx.write_chunk_uninit(k).unwrap();
                        chunk.fill_from_iter(rest[..k].iter().copied());
                        rest = &rest[k..];
                    }
                    std::hint::black_box(consumer.join().unwrap());
                    t.elapsed()
                })
                .sum()
        })
    });
    group.finish();
}

/// Distribution's cost: the same items through two fused stages, plain (`Pass`, `Pass`)
/// and as distribution + a sharded stage with 1 and 4 shards.
fn distribution(c: &mut Criterion) {
    use ebbflow::flow::distribution::{Distribution, Sharded};
    let (host, peer) = support::cores();
    support::pin(host);
    const N: usize = 1 << 18;
    let (recs, _g) = ticks(N);
    let items: Vec<Item> = recs.iter().map(|r| Item::from_record(*r)).collect();
    let mut group = c.benchmark_group("distribution");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    fn drive<S1, S2>(s1: S1, s2: S2, items: &[Item], peer: usize) -> Duration
    where
        S1: Stage<In = Item, Out = Item>,
        S2: Stage<In = Item, Out = Item>,
    {
        let (p, mut input, mut output) = PipelineBuilder::<Item>::new()
            .stage("a", s1)
            .stage("b", s2)
            .placement(Placement::Fused)
            .pinning(Pinning::Cores(vec![peer]))
            .wait(WaitStrategy::BusySpin)
            // Room for every item: the host never has to read while it pushes.
            .output_capacity(items.len().next_power_of_two())
            .build()
            .unwrap();
        let t = Instant::now();
        let mut out = 0usize;
        for chunk in items.chunks(1024) {
            input.push_slice(chunk).unwrap();
            while output.read_batch(|b| out += b.len()) > 0 {}
        }
        p.finish(&mut output, |_| out += 1).unwrap();
        assert_eq!(out, items.len());
        t.elapsed()
    }
    group.bench_function("pass_pass", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| drive(Pass, Pass, &items, peer)).sum())
    });
    for shards in [1usize, 4] {
        group.bench_function(BenchmarkId::new("distribution_sharded", shards), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let s = Sharded::<Pass, 8>::new((0..shards).map(|_| Pass).collect());
                        drive(Distribution::new(shards), s, &items, peer)
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

/// End-to-end latency at `rate` events/s offered on a fixed schedule for `n` events:
/// item `i` is due at `t0 + i / rate`; the host waits for that moment (spinning), stamps
/// the item with the *scheduled* time and pushes it; notify records `now − scheduled`.
/// A late push (the ring was full, the host was preempted) therefore counts in full.
fn latency_run(rate: u64, n: usize, wait: WaitStrategy) -> hdrhistogram::Histogram<u64> {
    let (host, peer) = support::cores();
    support::pin(host);
    let (mut recs, mut g) = ticks(n);
    let hist: Arc<Mutex<hdrhistogram::Histogram<u64>>> = Arc::new(Mutex::new(
        hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
    ));
    let mut cfg = flow_config(peer, wait);
    cfg.notify.latency_probe = Some(hist.clone());
    let mut flow = ReverseFlow::start(cfg, interner(&mut g), Box::new(NullSink(0))).unwrap();
    let clock = Clock::get();
    let period_ticks = clock.ticks_per_ns() * 1e9 / rate as f64;
    // Warm-up outside the schedule: the first 10%, stamped 0 so the probe skips them.
    let warm = n / 10;
    for r in &mut recs[..warm] {
        r.ingest_ns = 0;
        flow.push_record(*r).unwrap();
    }
    flow.flush();
    std::thread::sleep(Duration::from_millis(50));
    let t0 = clock.ticks() as f64;
    for (i, r) in recs[warm..].iter_mut().enumerate() {
        let due = (t0 + i as f64 * period_ticks) as u64;
        while clock.ticks() < due {
            std::hint::spin_loop();
        }
        r.ingest_ns = due as i64;
        flow.push_record(*r).unwrap();
        flow.flush();
    }
    flow.finish().unwrap();
    let h = hist.lock().unwrap().clone();
    assert_eq!(
        h.len() as usize,
        n - warm,
        "every scheduled tick was measured"
    );
    h
}

/// The same schedule through one raw `rtrb` ring to a busy-polling thread on the pipeline's
/// core, which records `now − scheduled`: the floor the machine itself sets.
fn raw_latency_run(rate: u64, n: usize) -> hdrhistogram::Histogram<u64> {
    let (host, peer) = support::cores();
    support::pin(host);
    let clock = Clock::get();
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(4096);
    let consumer = std::thread::spawn(move || {
        support::pin(peer);
        let clock = Clock::get();
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut seen = 0usize;
        while seen < n {
            match rx.pop() {
                Ok(stamp) => {
                    seen += 1;
                    if stamp > 0 {
                        let ns = clock.to_ns(clock.ticks().saturating_sub(stamp)).max(1);
                        h.saturating_record(ns);
                    }
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        h
    });
    let period_ticks = clock.ticks_per_ns() * 1e9 / rate as f64;
    let warm = n / 10;
    for _ in 0..warm {
        while tx.push(0).is_err() {
            std::hint::spin_loop();
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let t0 = clock.ticks() as f64;
    for i in 0..n - warm {
        let due = (t0 + i as f64 * period_ticks) as u64;
        while clock.ticks() < due {
            std::hint::spin_loop();
        }
        while tx.push(due).is_err() {
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap()
}

/// The same schedule on one thread alone: wait for each due time, read the clock again and
/// record the lateness. No ring, no stage: what the machine lets any one spinning thread
/// keep (preemption by the hypervisor or the kernel shows here and nowhere else).
fn schedule_floor(rate: u64, n: usize) -> hdrhistogram::Histogram<u64> {
    let (host, _) = support::cores();
    support::pin(host);
    let clock = Clock::get();
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let period_ticks = clock.ticks_per_ns() * 1e9 / rate as f64;
    let t0 = clock.ticks() as f64;
    for i in 0..n {
        let due = (t0 + i as f64 * period_ticks) as u64;
        while clock.ticks() < due {
            std::hint::spin_loop();
        }
        let late = clock.ticks().saturating_sub(due);
        h.saturating_record(clock.to_ns(late).max(1));
    }
    h
}

fn latency() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (n, mut rates): (usize, Vec<u64>) = if quick {
        (20_000, vec![100_000])
    } else {
        (3_000_000, vec![1_000_000])
    };
    // `FLOW_RATES=100000,1000000` measures other offered rates (each for `n` events).
    if let Ok(list) = std::env::var("FLOW_RATES") {
        rates = list
            .split(',')
            .filter_map(|r| r.trim().parse().ok())
            .collect();
    }
    for &rate in &rates {
        {
            let wait = WaitStrategy::BusySpin;
            let h = latency_run(rate, n, wait);
            println!(
                "flow_latency/{rate}_per_s/{wait:?}: n={} p50={} ns p99={} ns p99.9={} ns max={} ns (coordinated omission corrected)",
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
            let r = raw_latency_run(rate, n);
            println!(
                "raw_rtrb_latency/{rate}_per_s: n={} p50={} ns p99={} ns p99.9={} ns max={} ns (same schedule, one ring, busy poll)",
                r.len(),
                r.value_at_quantile(0.5),
                r.value_at_quantile(0.99),
                r.value_at_quantile(0.999),
                r.max()
            );
            let f = schedule_floor(rate, n);
            println!(
                "schedule_floor/{rate}_per_s: n={} p50={} ns p99={} ns p99.9={} ns max={} ns (one thread, no ring: lateness of the clock read after each due time)",
                f.len(),
                f.value_at_quantile(0.5),
                f.value_at_quantile(0.99),
                f.value_at_quantile(0.999),
                f.max()
            );
        }
    }
}

criterion_group!(benches, throughput, distribution);

fn main() {
    if std::env::var_os("FLOW_LATENCY_ONLY").is_none() {
        benches();
    }
    latency();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
