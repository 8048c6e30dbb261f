//! Zero allocations per item in steady state: 1,000,000 records from the k8s, trading
//! and IoT generators through a reactor with validation, a ledger (with compensation),
//! required fields and a fault injector at a low rate — retries, parked followers,
//! compensations and failures all happen inside the counted region.
//!
//! Run: `cargo test --release --test flow_reactor_alloc` (also passes in debug, slower).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use ebbflow::flow::reactor::steps::{FaultInjector, Ledger, LedgerHandle, RequireFields, Validate};
use ebbflow::flow::reactor::{
    ChainConfig, ManualTime, Reactor, ReactorConfig, RetryPolicy, TimeSource, Timing,
};
use ebbflow::flow::{Item, StepState, What};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::record::{FieldId, Kind};

const ITEMS: u64 = 1_000_000;
/// Virtual time between items (10 M items/s).
const GAP_NS: u64 = 100;

/// Output tallies (plain integers: updating them allocates nothing).
#[derive(Default, Debug)]
struct Tally {
    completed: u64,
    retried: u64,
    compensated: u64,
    failed: u64,
    other: u64,
}

impl Tally {
    fn add(&mut self, i: Item) {
        match (i.header.what, i.steps.state) {
            (What::Record, StepState::Completed) => self.completed += 1,
            (What::Step, StepState::Retried) => self.retried += 1,
            (What::Step, StepState::Compensated) => self.compensated += 1,
            (What::Step, StepState::Failed) => self.failed += 1,
            _ => self.other += 1,
        }
    }
}

fn build<T: TimeSource>(time: T, timing: Timing) -> (Reactor<T>, LedgerHandle) {
    let ledger = Ledger::new();
    let handle = ledger.handle();
    let cfg = ReactorConfig::builder()
        .chain(
            ChainConfig::new("k8s")
                .kinds(&[
                    Kind::Pod,
                    Kind::Node,
                    Kind::Deployment,
                    Kind::Service,
                    Kind::ConfigMap,
                    Kind::Event,
                ])
                .step(Validate::default())
                .step(ledger)
                .step(FaultInjector::new(2_000, 100, 11)),
        )
        .chain(
            ChainConfig::new("ticks")
                .kinds(&[Kind::Tick])
                .step(Validate::default())
                .step(RequireFields::new(&[FieldId::Price, FieldId::Instrument]))
                .step(FaultInjector::new(2_000, 100, 12)),
        )
        .chain(
            ChainConfig::new("sensors")
                .kinds(&[Kind::Sensor])
                .step(Validate::default())
                .step(FaultInjector::new(2_000, 100, 13)),
        )
        .retry(RetryPolicy {
            base_ns: 20_000,
            max_delay_ns: 500_000,
            max_attempts: 4,
            jitter_per_mille: 500,
        })
        .retry_capacity(8192)
        .timing(timing)
        .seed(7)
        .build()
        .expect("valid config");
    (Reactor::with_time(cfg, time), handle)
}

struct Sources {
    k8s: ClusterGenerator,
    trading: TradingGenerator,
    city: SmartCityGenerator,
    n: u64,
}

impl Sources {
    fn new() -> Sources {
        Sources {
            k8s: ClusterGenerator::new(ClusterConfig::default()),
            trading: TradingGenerator::new(TradingConfig::default()),
            city: SmartCityGenerator::new(SmartCityConfig::default()),
            n: 0,
        }
    }

    /// Two k8s records, one tick, one reading, repeating.
    fn next(&mut self) -> Item {
        self.n += 1;
        let r = match self.n % 4 {
            0 | 1 => self.k8s.next_record(),
            2 => self.trading.next_record(),
            _ => self.city.next_record(),
        };
        Item::from_record(r)
    }
}

#[test]
fn one_million_items_with_retries_and_compensations_allocate_nothing() {
    let time = ManualTime::new(0);
    let (mut reactor, ledger) = build(time.clone(), Timing::PerStep);
    let mut src = Sources::new();
    let mut t = Tally::default();
    let mut now = 0u64;
    // Warm-up: generators intern their names, the reactor parks and releases.
    for _ in 0..50_000 {
        now += GAP_NS;
        time.set(now);
        let item = src.next();
        reactor.process(item, now, &mut |o| t.add(o));
        reactor.poll(now, 4, &mut |o| t.add(o));
    }
    let warm = reactor.stats();

    let (probe, probe_allocations) =
        counting_alloc::on_this_thread(|| std::hint::black_box(Vec::<u8>::with_capacity(16)));
    drop(probe);
    assert_eq!(probe_allocations, 1, "the counter sees allocations");

    let mut t = Tally::default();
    let started = std::time::Instant::now();
    let ((), allocations) = counting_alloc::on_this_thread(|| {
        for _ in 0..ITEMS {
            now += GAP_NS;
            time.set(now);
            let item = src.next();
            reactor.process(item, now, &mut |o| t.add(o));
            reactor.poll(now, 4, &mut |o| t.add(o));
        }
        // Drain what is still parked.
        while let Some(due) = reactor.next_due() {
            time.set(due);
            reactor.poll(due, 64, &mut |o| t.add(o));
        }
    });
    let elapsed = started.elapsed();
    assert_eq!(
        allocations, 0,
        "allocations while reacting to {ITEMS} items"
    );

    let st = reactor.stats();
    assert_eq!(reactor.parked(), 0);
    assert_eq!(
        st.overflows, 0,
        "capacity 8192 is ample at these rates: {st:?}"
    );
    assert!(
        st.queued_behind > warm.queued_behind,
        "items waited behind a retrying item of their key while counting: {st:?}"
    );
    assert_eq!(t.other, 0, "every input is a record with a chain");
    assert!(t.completed > ITEMS * 99 / 100, "{t:?}");
    assert!(
        t.retried > 1_000 && t.failed > 50 && t.compensated > 10,
        "{t:?}"
    );
    let mut started_sum = 0;
    let mut done_sum = 0;
    for c in 0..reactor.chains() as u8 {
        let s = reactor.chain_stats(c).unwrap();
        assert_eq!(s.started, s.completed + s.failed, "chain {c}: {s:?}");
        started_sum += s.started;
        done_sum += s.completed;
    }
    assert_eq!(started_sum, ITEMS + 50_000);
    assert!(done_sum >= t.completed);
    let k8s = reactor.chain_stats(0).unwrap();
    assert_eq!(
        ledger.total(),
        k8s.completed as i64,
        "the ledger kept exactly the completed k8s chains"
    );
    eprintln!(
        "reacted to {ITEMS} items with 0 allocations in {:.1} ms ({:.0} ns/item, {} build; \
         machine shared with other sessions): {t:?}; parked high water {}, queued behind a key {}",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / ITEMS as f64,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        st.parked_high_water,
        st.queued_behind - warm.queued_behind
    );
}

/// CPU time of the calling thread, ns (less disturbed by other sessions than wall time).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported
    // on Linux, and the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The reactor alone on the engine's TSC clock, as a stage runs it (one `now` per batch
/// of 64, `poll` after each batch), over pre-generated items: no allocations in any
/// timing mode. Prints thread-CPU ns/item per mode next to a baseline that only hands
/// each item to the same sink (rough figures: the machine is shared).
#[test]
fn the_reactor_alone_on_the_engine_clock_allocates_nothing_in_any_timing_mode() {
    use ebbflow::engine::clock::Clock;
    use ebbflow::flow::reactor::TscTime;

    const PASSES: usize = 5;
    let mut src = Sources::new();
    let items: Vec<Item> = (0..200_000).map(|_| src.next()).collect();
    let n = (PASSES * items.len()) as f64;
    let clock = Clock::get();

    let mut t = Tally::default();
    let c0 = thread_cpu_ns();
    for _ in 0..PASSES {
        for batch in items.chunks(64) {
            std::hint::black_box(clock.ticks());
            for &i in batch {
                t.add(std::hint::black_box(i));
            }
        }
    }
    let baseline = (thread_cpu_ns() - c0) as f64 / n;
    assert_eq!(t.other, PASSES as u64 * items.len() as u64);
    let mut report = vec![format!("baseline (sink only) {baseline:.1} ns/item")];

    for timing in [Timing::PerStep, Timing::Chain, Timing::Off] {
        let (mut reactor, _) = build(TscTime::new(), timing);
        let mut t = Tally::default();
        // Warm-up pass.
        for batch in items.chunks(64) {
            let now = clock.ticks();
            for &i in batch {
                reactor.process(i, now, &mut |o| t.add(o));
            }
            reactor.poll(now, 4, &mut |o| t.add(o));
        }
        let mut t = Tally::default();
        let c0 = thread_cpu_ns();
        let ((), allocations) = counting_alloc::on_this_thread(|| {
            for _ in 0..PASSES {
                for batch in items.chunks(64) {
                    let now = clock.ticks();
                    for &i in batch {
                        reactor.process(i, now, &mut |o| t.add(o));
                    }
                    reactor.poll(now, 4, &mut |o| t.add(o));
                }
            }
        });
        let ns = (thread_cpu_ns() - c0) as f64 / n;
        assert_eq!(allocations, 0, "{timing:?}: allocations");
        assert!(
            t.completed > PASSES as u64 * items.len() as u64 * 99 / 100,
            "{timing:?}: {t:?}"
        );
        report.push(format!(
            "{timing:?} {ns:.1} ns/item ({:.1} over baseline)",
            ns - baseline
        ));
    }
    eprintln!(
        "reactor alone, thread CPU time, 3 chains of 2-3 steps, faults 0.2%/0.01% ({} build, shared machine): {}",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        report.join(", ")
    );
}
