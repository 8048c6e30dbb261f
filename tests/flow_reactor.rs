//! Reactor behaviour: backoff schedule, jitter bounds, compensation order, per-key order
//! while other keys pass, the retry table's overflow policy, permanent vs transient
//! errors, lifecycle event contents, routing and pass-through.
//!
//! Run: `cargo test --test flow_reactor`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ebbflow::flow::reactor::steps::{FaultInjector, Ledger, RequireFields, Validate};
use ebbflow::flow::reactor::{
    ChainConfig, ConfigError, FailReason, ManualTime, Reactor, ReactorConfig, RetryPolicy, Step,
    StepError, Timing, MAX_OUTPUTS_PER_RUN, MAX_STEPS,
};
use ebbflow::flow::{Command, Item, StepState, StepSummary, What};
use ebbflow::sources::intern::Symbol;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record, RecordFlags};

type Log = Arc<Mutex<Vec<String>>>;

/// A scripted step: per key, a queue of results for successive attempts (then `Ok`);
/// logs runs and compensations; advances the manual clock to give itself a duration.
struct Probe {
    name: &'static str,
    log: Log,
    plan: HashMap<u64, VecDeque<StepError>>,
    always: Option<StepError>,
    clock: Option<(ManualTime, u64, u64)>,
}

impl Probe {
    fn new(name: &'static str, log: &Log) -> Probe {
        Probe {
            name,
            log: Arc::clone(log),
            plan: HashMap::new(),
            always: None,
            clock: None,
        }
    }

    /// Key `key` fails with `errors` on its first attempts.
    fn failing(mut self, key: u64, errors: &[StepError]) -> Probe {
        self.plan.entry(key).or_default().extend(errors);
        self
    }

    fn always(mut self, e: StepError) -> Probe {
        self.always = Some(e);
        self
    }

    /// Each run takes `run_ns`, each compensation `comp_ns` of manual time.
    fn taking(mut self, time: &ManualTime, run_ns: u64, comp_ns: u64) -> Probe {
        self.clock = Some((time.clone(), run_ns, comp_ns));
        self
    }
}

impl Step for Probe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&mut self, item: &mut Item) -> Result<(), StepError> {
        let key = item.record.key;
        self.log
            .lock()
            .unwrap()
            .push(format!("{} run k{} s{}", self.name, key, item.record.seq));
        if let Some((t, run_ns, _)) = &self.clock {
            t.advance(*run_ns);
        }
        if let Some(e) = self.always {
            return Err(e);
        }
        match self.plan.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn compensate(&mut self, item: &Item) {
        self.log.lock().unwrap().push(format!(
            "{} comp k{} s{}",
            self.name, item.record.key, item.record.seq
        ));
        if let Some((t, _, comp_ns)) = &self.clock {
            t.advance(*comp_ns);
        }
    }
}

#[path = "support/pods.rs"]
mod pods;
use pods::pod;

fn exact(base: u64, max: u64, attempts: u8) -> RetryPolicy {
    RetryPolicy {
        base_ns: base,
        max_delay_ns: max,
        max_attempts: attempts,
        jitter_per_mille: 0,
    }
}

fn reactor(chain: ChainConfig, policy: RetryPolicy, time: &ManualTime) -> Reactor<ManualTime> {
    reactor_cap(chain, policy, time, 64)
}

fn reactor_cap(
    chain: ChainConfig,
    policy: RetryPolicy,
    time: &ManualTime,
    cap: usize,
) -> Reactor<ManualTime> {
    let cfg = ReactorConfig::builder()
        .chain(chain)
        .retry(policy)
        .retry_capacity(cap)
        .seed(42)
        .build()
        .expect("valid config");
    Reactor::with_time(cfg, time.clone())
}

/// Collects outputs as (what, key, seq, summary).
#[derive(Default)]
struct Out(Vec<(What, u64, u64, StepSummary)>);

impl Out {
    fn sink(&mut self) -> impl FnMut(Item) + '_ {
        |i: Item| {
            self.0
                .push((i.header.what, i.record.key, i.record.seq, i.steps))
        }
    }
    fn take(&mut self) -> Vec<(What, u64, u64, StepSummary)> {
        std::mem::take(&mut self.0)
    }
}

fn summary(chain: u8, step: u8, state: StepState, attempt: u8, duration_ns: u32) -> StepSummary {
    StepSummary {
        chain,
        step,
        state,
        attempt,
        duration_ns,
    }
}

const T: StepError = StepError::Transient(7);

#[test]
fn retries_follow_the_exact_doubling_schedule_up_to_the_cap() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).failing(1, &[T, T, T, T, T]));
    let mut r = reactor(chain, exact(1_000, 8_000, 6), &time);
    let mut out = Out::default();

    r.process(pod(1, 1), 0, &mut out.sink());
    let first = out.take();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].3.state, StepState::Retried);
    assert_eq!(first[0].3.attempt, 1);

    // Delays 1000, 2000, 4000, 8000 (capped from 8000), 8000 (capped from 16000).
    let expected_due = [1_000u64, 3_000, 7_000, 15_000, 23_000];
    for (n, &due) in expected_due.iter().enumerate() {
        assert_eq!(r.next_due(), Some(due), "retry {} due time", n + 1);
        assert_eq!(r.poll(due - 1, 8, &mut out.sink()), 0, "not due 1 ns early");
        assert!(out.take().is_empty());
        assert_eq!(r.poll(due, 8, &mut out.sink()), 1);
        let got = out.take();
        assert_eq!(got.len(), 1);
        if n + 2 <= 5 {
            assert_eq!(got[0].3.state, StepState::Retried);
            assert_eq!(got[0].3.attempt, n as u8 + 2);
        } else {
            assert_eq!(got[0].0, What::Record);
            assert_eq!(got[0].3.state, StepState::Completed);
            assert_eq!(got[0].3.attempt, 6, "six attempts in all");
        }
    }
    assert_eq!(r.parked(), 0);
    assert_eq!(r.next_due(), None);
    let s = r.chain_stats(0).unwrap();
    assert_eq!((s.started, s.completed, s.retried, s.failed), (1, 1, 5, 0));
}

#[test]
fn jittered_delays_stay_within_bounds_and_repeat_with_the_seed() {
    let policy = RetryPolicy {
        base_ns: 10_000,
        max_delay_ns: 200_000,
        max_attempts: 12,
        jitter_per_mille: 1000,
    };
    let schedule = |seed: u64| -> Vec<u64> {
        let log = Log::default();
        let time = ManualTime::new(0);
        let cfg = ReactorConfig::builder()
            .chain(
                ChainConfig::new("c")
                    .kinds(&[Kind::Pod])
                    .step(Probe::new("a", &log).failing(1, &[T; 11])),
            )
            .retry(policy)
            .seed(seed)
            .build()
            .unwrap();
        let mut r = Reactor::with_time(cfg, time);
        let mut delays = Vec::new();
        let mut now = 0;
        r.process(pod(1, 1), now, &mut |_| {});
        while let Some(due) = r.next_due() {
            delays.push(due - now);
            now = due;
            r.poll(now, 1, &mut |_| {});
        }
        delays
    };
    let a = schedule(5);
    assert_eq!(a.len(), 11);
    for (i, &d) in a.iter().enumerate() {
        let (lo, hi) = policy.delay_bounds_ns(i as u8 + 1);
        assert!(lo <= d && d <= hi, "delay {i}: {d} outside [{lo}, {hi}]");
        assert!(d <= policy.max_delay_ns);
    }
    assert!(
        a.iter()
            .enumerate()
            .any(|(i, &d)| d != policy.nominal_delay_ns(i as u8 + 1)),
        "full jitter moved at least one delay off its nominal value: {a:?}"
    );
    assert_eq!(schedule(5), a, "same seed, same schedule");
    assert_ne!(schedule(6), a, "another seed, another schedule");
}

#[test]
fn exhausted_retries_compensate_completed_steps_in_reverse_order() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("saga")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log))
        .step(Probe::new("b", &log))
        .step(Probe::new("c", &log).always(StepError::Transient(33)))
        .step(Probe::new("d", &log));
    let mut r = reactor(chain, exact(100, 100, 3), &time);
    let mut out = Out::default();
    r.process(pod(9, 1), 0, &mut out.sink());
    r.poll(100, 8, &mut out.sink());
    r.poll(200, 8, &mut out.sink());
    let got = out.take();
    let states: Vec<(StepState, u8, u8)> = got
        .iter()
        .map(|o| (o.3.state, o.3.step, o.3.attempt))
        .collect();
    assert_eq!(
        states,
        [
            (StepState::Retried, 2, 1),
            (StepState::Retried, 2, 2),
            (StepState::Compensated, 1, 1),
            (StepState::Compensated, 0, 1),
            (StepState::Failed, 2, 3),
        ]
    );
    assert!(got.iter().all(|o| o.0 == What::Step && o.1 == 9));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "a run k9 s1",
            "b run k9 s1",
            "c run k9 s1",
            "c run k9 s1",
            "c run k9 s1",
            "b comp k9 s1",
            "a comp k9 s1",
        ],
        "completed steps ran once; d never ran; compensations in reverse order"
    );
    let f = r.last_failure().unwrap();
    assert_eq!(f.reason, FailReason::AttemptsExhausted { code: 33 });
    assert_eq!((f.key, f.step, f.attempt), (9, 2, 3));
    let s = r.chain_stats(0).unwrap();
    assert_eq!((s.retried, s.compensated, s.failed), (2, 2, 1));
    assert_eq!(r.stats().failed_exhausted, 1);
    assert_eq!(r.parked(), 0);
}

#[test]
fn a_permanent_error_fails_at_once_and_a_transient_one_retries() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).failing(1, &[StepError::Permanent(42)]))
        .step(
            Probe::new("b", &log)
                .failing(2, &[StepError::Permanent(43)])
                .failing(3, &[StepError::Transient(44)]),
        );
    let mut r = reactor(chain, exact(100, 1_000, 4), &time);
    let mut out = Out::default();

    r.process(pod(1, 1), 0, &mut out.sink());
    let got = out.take();
    assert_eq!(got.len(), 1, "permanent at step 0: nothing to compensate");
    assert_eq!(
        (got[0].3.state, got[0].3.step, got[0].3.attempt),
        (StepState::Failed, 0, 1)
    );
    assert_eq!(
        r.last_failure().unwrap().reason,
        FailReason::Permanent { code: 42 }
    );

    r.process(pod(2, 1), 0, &mut out.sink());
    let got = out.take();
    let states: Vec<_> = got.iter().map(|o| (o.3.state, o.3.step)).collect();
    assert_eq!(
        states,
        [(StepState::Compensated, 0), (StepState::Failed, 1)],
        "permanent at step 1: no retry, step 0 compensated"
    );
    assert_eq!(r.parked(), 0);

    r.process(pod(3, 1), 0, &mut out.sink());
    let got = out.take();
    assert_eq!(got[0].3.state, StepState::Retried);
    assert_eq!(r.parked(), 1, "transient: parked for a retry");
    r.poll(100, 8, &mut out.sink());
    let got = out.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0, got[0].3.state, got[0].3.attempt),
        (What::Record, StepState::Completed, 3)
    );
    assert_eq!(r.stats().failed_permanent, 2);
    assert_eq!(r.chain_stats(0).unwrap().retried, 1);
}

#[test]
fn other_keys_pass_a_retrying_key_whose_later_items_keep_their_order() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).failing(1, &[T, T]));
    let mut r = reactor(chain, exact(1_000, 1_000, 5), &time);
    let mut out = Out::default();
    // (key, seq) in arrival order.
    let arrivals = [(1, 1), (2, 1), (1, 2), (3, 1), (1, 3), (2, 2)];
    for (i, &(k, s)) in arrivals.iter().enumerate() {
        r.process(pod(k, s), i as u64, &mut out.sink());
    }
    let got = out.take();
    let seen: Vec<(u64, u64, StepState)> = got.iter().map(|o| (o.1, o.2, o.3.state)).collect();
    assert_eq!(
        seen,
        [
            (1, 1, StepState::Retried),
            (2, 1, StepState::Completed),
            (3, 1, StepState::Completed),
            (2, 2, StepState::Completed),
        ],
        "keys 2 and 3 went on at once"
    );
    assert_eq!(r.parked(), 3, "key 1: the retrying item and two behind it");
    assert_eq!(r.stats().parked_high_water, 3);
    assert_eq!(r.stats().queued_behind, 2);

    assert_eq!(r.poll(1_000, 8, &mut out.sink()), 1);
    assert_eq!(out.take()[0].3.attempt, 2, "second failure");
    assert_eq!(
        r.poll(2_000, 8, &mut out.sink()),
        3,
        "head plus both followers"
    );
    let seen: Vec<(u64, u64, StepState)> =
        out.take().iter().map(|o| (o.1, o.2, o.3.state)).collect();
    assert_eq!(
        seen,
        [
            (1, 1, StepState::Completed),
            (1, 2, StepState::Completed),
            (1, 3, StepState::Completed),
        ],
        "key 1 in arrival order"
    );
    assert_eq!(r.parked(), 0);
    let runs: Vec<String> = log.lock().unwrap().clone();
    let key1: Vec<&String> = runs.iter().filter(|l| l.contains("k1 ")).collect();
    assert_eq!(
        key1,
        [
            "a run k1 s1",
            "a run k1 s1",
            "a run k1 s1",
            "a run k1 s2",
            "a run k1 s3"
        ],
        "no later item of key 1 ran before the first completed"
    );
}

#[test]
fn a_head_that_finally_fails_releases_the_items_behind_it_in_order() {
    let log = Log::default();
    let time = ManualTime::new(0);
    // Key 1's first three attempts fail: all of them hit the first item.
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).failing(1, &[T, T, T]));
    let mut r = reactor(chain, exact(1_000, 1_000, 3), &time);
    let mut out = Out::default();
    r.process(pod(1, 1), 0, &mut out.sink()); // attempt 1 fails
    r.process(pod(1, 2), 0, &mut out.sink());
    r.process(pod(1, 3), 0, &mut out.sink());
    out.take();
    r.poll(1_000, 8, &mut out.sink()); // s1 attempt 2 fails
    assert_eq!(out.take().len(), 1);
    r.poll(2_000, 8, &mut out.sink()); // s1 attempt 3 fails: exhausted
    let got = out.take();
    let seen: Vec<(u64, StepState)> = got.iter().map(|o| (o.2, o.3.state)).collect();
    assert_eq!(
        seen,
        [
            (1, StepState::Failed),
            (2, StepState::Completed),
            (3, StepState::Completed)
        ]
    );
    assert_eq!(r.parked(), 0);
}

#[test]
fn a_failing_follower_is_rescheduled_and_holds_back_later_items() {
    let time = ManualTime::new(0);
    /// Fails items with seq 1 and 2 of every key once each (first attempt only).
    struct FirstTwo(HashMap<(u64, u64), u8>);
    impl Step for FirstTwo {
        fn name(&self) -> &'static str {
            "first_two"
        }
        fn run(&mut self, item: &mut Item) -> Result<(), StepError> {
            let n = self
                .0
                .entry((item.record.key, item.record.seq))
                .or_insert(0);
            *n += 1;
            if item.record.seq <= 2 && *n == 1 {
                Err(T)
            } else {
                Ok(())
            }
        }
    }
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(FirstTwo(HashMap::new()));
    let mut r = reactor(chain, exact(1_000, 1_000, 3), &time);
    let mut out = Out::default();
    for s in 1..=3 {
        r.process(pod(5, s), 0, &mut out.sink());
    }
    r.process(pod(6, 9), 0, &mut out.sink());
    let seen: Vec<(u64, u64, StepState)> =
        out.take().iter().map(|o| (o.1, o.2, o.3.state)).collect();
    assert_eq!(
        seen,
        [(5, 1, StepState::Retried), (6, 9, StepState::Completed)]
    );
    // s1 succeeds at 1000, s2 runs right away and fails: it is now the head, due 2000.
    assert_eq!(r.poll(1_000, 8, &mut out.sink()), 2);
    let seen: Vec<(u64, StepState, u8)> = out
        .take()
        .iter()
        .map(|o| (o.2, o.3.state, o.3.attempt))
        .collect();
    assert_eq!(
        seen,
        [(1, StepState::Completed, 2), (2, StepState::Retried, 1)]
    );
    assert_eq!(r.parked(), 2, "s2 retrying, s3 behind it");
    assert_eq!(r.next_due(), Some(2_000));
    assert_eq!(r.poll(2_000, 8, &mut out.sink()), 2);
    let seen: Vec<(u64, StepState)> = out.take().iter().map(|o| (o.2, o.3.state)).collect();
    assert_eq!(seen, [(2, StepState::Completed), (3, StepState::Completed)]);
}

#[test]
fn poll_runs_at_most_max_and_leaves_the_rest_due() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c").kinds(&[Kind::Pod]).step(
        Probe::new("a", &log)
            .failing(1, &[T])
            .failing(2, &[T])
            .failing(3, &[T]),
    );
    let mut r = reactor(chain, exact(10, 10, 2), &time);
    let mut out = Out::default();
    for k in 1..=3 {
        r.process(pod(k, 1), 0, &mut out.sink());
    }
    r.process(pod(1, 2), 0, &mut out.sink());
    out.take();
    assert_eq!(r.parked(), 4);
    assert_eq!(r.poll(10, 2, &mut out.sink()), 2);
    // Key 1's head completed within the budget but its follower did not fit.
    let got = out.take();
    assert_eq!(got.len(), 2);
    assert_eq!(r.parked(), 2);
    assert_eq!(r.poll(10, 1, &mut out.sink()), 1);
    assert_eq!(r.poll(10, 1, &mut out.sink()), 1);
    assert_eq!(r.poll(10, 1, &mut out.sink()), 0, "nothing left");
    let mut done: Vec<(u64, u64)> = got
        .iter()
        .chain(out.take().iter())
        .map(|o| (o.1, o.2))
        .collect();
    done.sort();
    assert_eq!(done, [(1, 1), (1, 2), (2, 1), (3, 1)]);
    assert_eq!(r.parked(), 0);
}

#[test]
fn a_full_retry_table_fails_retries_and_followers_at_once_with_their_reason() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Probe::new("ok", &log))
        .step(
            Probe::new("flaky", &log)
                .failing(1, &[T])
                .failing(2, &[T])
                .failing(3, &[StepError::Transient(55)]),
        );
    let mut r = reactor_cap(chain, exact(100, 100, 3), &time, 2);
    let mut out = Out::default();
    r.process(pod(1, 1), 0, &mut out.sink());
    r.process(pod(2, 1), 0, &mut out.sink());
    assert_eq!(r.parked(), 2);
    out.take();
    log.lock().unwrap().clear();

    // A third key's transient failure cannot park: it fails now and compensates.
    r.process(pod(3, 1), 0, &mut out.sink());
    let states: Vec<_> = out.take().iter().map(|o| (o.3.state, o.3.step)).collect();
    assert_eq!(
        states,
        [(StepState::Compensated, 0), (StepState::Failed, 1)]
    );
    assert_eq!(
        r.last_failure().unwrap().reason,
        FailReason::RetryTableFull { code: 55 }
    );

    // An item behind parked key 1 cannot queue: it fails without running a step.
    r.process(pod(1, 2), 0, &mut out.sink());
    let got = out.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].2, got[0].3),
        (2, summary(0, 0, StepState::Failed, 0, 0))
    );
    assert_eq!(r.last_failure().unwrap().reason, FailReason::QueueFull);
    assert_eq!(
        *log.lock().unwrap(),
        ["ok run k3 s1", "flaky run k3 s1", "ok comp k3 s1"],
        "the queued-out item ran nothing"
    );

    // Keys that do not fail still pass while the table is full.
    r.process(pod(4, 1), 0, &mut out.sink());
    assert_eq!(out.take()[0].3.state, StepState::Completed);

    let st = r.stats();
    assert_eq!(
        (st.overflows, st.failed_overflow, st.parked_high_water),
        (2, 2, 2)
    );
    // Once the parked items finish, parking works again.
    assert_eq!(r.poll(100, 8, &mut out.sink()), 2);
    assert_eq!(r.parked(), 0);
    r.process(pod(1, 3), 100, &mut out.sink());
    assert_eq!(r.parked(), 0, "key 1's plan is used up: completes");
    let c = r.chain_stats(0).unwrap();
    assert_eq!(
        c.started,
        c.completed + c.failed,
        "every started item finished"
    );
}

#[test]
fn lifecycle_events_carry_chain_step_attempt_record_and_durations() {
    let log = Log::default();
    let time = ManualTime::new(1_000_000);
    let other = ChainConfig::new("nodes")
        .kinds(&[Kind::Node])
        .step(Probe::new("n", &log));
    let chain = ChainConfig::new("pods")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).taking(&time, 100, 30))
        .step(Probe::new("b", &log).taking(&time, 250, 0).failing(4, &[T]))
        .step(
            Probe::new("c", &log)
                .taking(&time, 50, 0)
                .failing(5, &[StepError::Permanent(9)]),
        );
    let cfg = ReactorConfig::builder()
        .chain(other)
        .chain(chain)
        .retry(exact(1_000, 1_000, 3))
        .timing(Timing::PerStep)
        .build()
        .unwrap();
    let mut r = Reactor::with_time(cfg, time.clone());
    assert_eq!(r.chain_name(1), Some("pods"));
    assert_eq!(r.step_name(1, 1), Some("b"));
    let mut items = Vec::new();

    r.process(pod(4, 77), time.now(), &mut |i| items.push(i));
    assert_eq!(items.len(), 1);
    let e = items.pop().unwrap();
    assert_eq!(e.header.what, What::Step);
    assert_eq!(
        (e.record.key, e.record.seq),
        (4, 77),
        "the event carries the record"
    );
    assert_eq!(
        e.record.get(FieldId::RestartsTotal),
        Some(FieldValue::I64(77))
    );
    assert_eq!(e.steps, summary(1, 1, StepState::Retried, 1, 250));

    time.advance(1_000);
    r.poll(time.now(), 8, &mut |i| items.push(i));
    let done = items.pop().unwrap();
    assert_eq!(done.header.what, What::Record);
    // a: 100, b: 250 + 250, c: 50; attempts 1 + 2 + 1.
    assert_eq!(done.steps, summary(1, 3, StepState::Completed, 4, 650));

    // A final failure: compensation events (with their own durations), then Failed
    // with the chain's running time.
    r.process(pod(5, 78), time.now(), &mut |i| items.push(i));
    let got: Vec<StepSummary> = items.drain(..).map(|i| i.steps).collect();
    assert_eq!(
        got,
        [
            summary(1, 1, StepState::Compensated, 1, 0),
            summary(1, 0, StepState::Compensated, 1, 30),
            summary(1, 2, StepState::Failed, 1, 400),
        ]
    );

    // Chain timing: a Retried event carries the run's time up to the failure.
    let chain = ChainConfig::new("pods")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).taking(&time, 100, 0))
        .step(Probe::new("b", &log).taking(&time, 250, 0).failing(4, &[T]));
    let cfg = ReactorConfig::builder()
        .chain(chain)
        .retry(exact(1_000, 1_000, 3))
        .timing(Timing::Chain)
        .build()
        .unwrap();
    let mut r = Reactor::with_time(cfg, time.clone());
    r.process(pod(4, 1), time.now(), &mut |i| items.push(i));
    assert_eq!(
        items.pop().unwrap().steps,
        summary(0, 1, StepState::Retried, 1, 350)
    );

    // Off: no clock reads, durations 0.
    let chain = ChainConfig::new("pods")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).taking(&time, 100, 0));
    let cfg = ReactorConfig::builder()
        .chain(chain)
        .timing(Timing::Off)
        .build()
        .unwrap();
    let mut r = Reactor::with_time(cfg, time.clone());
    r.process(pod(4, 1), time.now(), &mut |i| items.push(i));
    assert_eq!(
        items.pop().unwrap().steps,
        summary(0, 1, StepState::Completed, 1, 0)
    );
}

#[test]
fn a_full_chain_failing_at_its_last_step_emits_exactly_the_documented_bound() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let mut chain = ChainConfig::new("long").kinds(&[Kind::Pod]);
    for _ in 0..MAX_STEPS - 1 {
        chain = chain.step(Probe::new("s", &log));
    }
    chain = chain.step(Probe::new("last", &log).always(StepError::Permanent(1)));
    let mut r = reactor(chain, exact(1, 1, 1), &time);
    let mut n = 0;
    r.process(pod(1, 1), 0, &mut |_| n += 1);
    assert_eq!(n, MAX_OUTPUTS_PER_RUN);
    assert_eq!(r.chain_stats(0).unwrap().compensated, MAX_STEPS as u64 - 1);
}

#[test]
fn non_records_and_kinds_without_a_chain_pass_untouched_even_while_keys_wait() {
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Probe::new("a", &log).failing(0, &[T]));
    let mut r = reactor(chain, exact(10, 10, 2), &time);
    let mut items = Vec::new();
    r.process(pod(0, 1), 0, &mut |i| items.push(i));
    assert_eq!(r.parked(), 1);
    items.clear();

    let tick = Item::tick(123);
    let cmd = Item::from_command(Command::Snapshot { request: 5 });
    let mut node = Record::new(Kind::Node, Op::Modified);
    node.key = 0; // same key as the parked pod: still not routed, so not held back
    node.name = Symbol::from_id(3);
    let node = Item::from_record(node);
    for i in [tick, cmd, node] {
        r.process(i, 1, &mut |o| items.push(o));
    }
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].header.what, What::Tick);
    assert_eq!(items[0].record.ingest_ns, 123);
    assert_eq!(items[1].command, Command::Snapshot { request: 5 });
    assert_eq!(items[2].record, node.record);
    for i in &items {
        assert_eq!(
            i.steps,
            StepSummary::default(),
            "untouched: reactor ran nothing"
        );
    }
    assert_eq!(r.stats().passed_through, 3);
    assert!(log.lock().unwrap().iter().all(|l| l.contains("k0 s1")));
}

#[test]
fn namespace_routes_send_a_kind_in_a_namespace_to_its_own_chain() {
    let payments = Symbol::from_id(40);
    let log = Log::default();
    let cfg = ReactorConfig::builder()
        .chain(
            ChainConfig::new("pods")
                .kinds(&[Kind::Pod])
                .step(Probe::new("p", &log)),
        )
        .chain(
            ChainConfig::new("payments")
                .namespace(Kind::Pod, payments)
                .step(Probe::new("strict", &log))
                .step(RequireFields::new(&[FieldId::Phase])),
        )
        .build()
        .unwrap();
    let mut r = Reactor::with_time(cfg, ManualTime::new(0));
    let mut items = Vec::new();
    let plain = pod(1, 1);
    let mut paying = pod(2, 1);
    paying.record.namespace = payments;
    assert_eq!(r.chain_for(&plain.record), Some(0));
    assert_eq!(r.chain_for(&paying.record), Some(1));
    r.process(plain, 0, &mut |i| items.push(i));
    r.process(paying, 0, &mut |i| items.push(i));
    assert_eq!(
        items[0].steps,
        summary(0, 1, StepState::Completed, 1, items[0].steps.duration_ns)
    );
    let states: Vec<(u8, StepState)> = items[1..]
        .iter()
        .map(|i| (i.steps.chain, i.steps.state))
        .collect();
    assert_eq!(
        states,
        [(1, StepState::Compensated), (1, StepState::Failed)]
    );
    assert_eq!(
        r.last_failure().unwrap().reason,
        FailReason::Permanent {
            code: RequireFields::MISSING_FIELD
        },
        "the payments chain requires a phase"
    );
}

#[test]
fn validate_rejects_untrustworthy_records_with_their_code() {
    let cfg = ReactorConfig::builder()
        .chain(
            ChainConfig::new("all")
                .kinds(&Kind::ALL)
                .step(Validate::default()),
        )
        .build()
        .unwrap();
    let mut r = Reactor::with_time(cfg, ManualTime::new(0));
    let base = pod(1, 1);
    let mut cases: Vec<(&str, Item, Option<u16>)> = vec![("good pod", base, None)];
    let mut t = base;
    for _ in 0..9 {
        t.record.push(FieldId::Count, FieldValue::I64(1));
    }
    cases.push(("truncated", t, Some(Validate::TRUNCATED)));
    let mut t = base;
    t.record.flags.insert(RecordFlags::SYMBOL_OVERFLOW);
    cases.push(("symbol overflow", t, Some(Validate::SYMBOL_OVERFLOW)));
    let mut t = base;
    t.record.op = Op::Error;
    cases.push(("watch error", t, Some(Validate::ERROR_RECORD)));
    let mut t = base;
    t.record.name = Symbol::EMPTY;
    cases.push(("nameless pod", t, Some(Validate::MISSING_NAME)));
    let mut t = base;
    t.record.name = Symbol::EMPTY;
    t.record.op = Op::Bookmark;
    cases.push(("bookmark", t, None));
    let mut tick = Item::from_record(Record::new(Kind::Tick, Op::Modified));
    tick.record.push(FieldId::Price, FieldValue::F64(f64::NAN));
    cases.push(("NaN price", tick, Some(Validate::NON_FINITE)));
    let mut reading = Item::from_record(Record::new(Kind::Sensor, Op::Modified));
    reading.record.push(FieldId::Value, FieldValue::F64(21.5));
    cases.push(("nameless reading", reading, None));
    for (what, item, code) in cases {
        let mut got = Vec::new();
        r.process(item, 0, &mut |i| got.push(i.steps.state));
        match code {
            None => assert_eq!(got, [StepState::Completed], "{what}"),
            Some(c) => {
                assert_eq!(got, [StepState::Failed], "{what}");
                assert_eq!(
                    r.last_failure().unwrap().reason,
                    FailReason::Permanent { code: c },
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn every_configuration_mistake_is_reported_together() {
    let log = Log::default();
    let mut long = ChainConfig::new("long").kinds(&[Kind::Node]);
    for _ in 0..=MAX_STEPS {
        long = long.step(Probe::new("s", &log));
    }
    let err = ReactorConfig::builder()
        .chain(ChainConfig::new("empty").kinds(&[Kind::Pod]))
        .chain(long)
        .chain(
            ChainConfig::new("dup")
                .kinds(&[Kind::Pod])
                .step(Probe::new("s", &log))
                .retry(RetryPolicy {
                    max_attempts: 0,
                    ..RetryPolicy::default()
                }),
        )
        .chain(ChainConfig::new("lost").step(Probe::new("s", &log)))
        .retry_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.0,
        [
            ConfigError::BadCapacity {
                capacity: 0,
                max: ebbflow::flow::reactor::MAX_RETRY_CAPACITY
            },
            ConfigError::EmptyChain {
                chain: "empty".into()
            },
            ConfigError::TooManySteps {
                chain: "long".into(),
                steps: MAX_STEPS + 1,
                max: MAX_STEPS
            },
            ConfigError::BadRetryPolicy {
                scope: "chain \"dup\"".into(),
                problem: "max_attempts must be at least 1"
            },
            ConfigError::KindClaimedTwice {
                kind: Kind::Pod,
                first: "empty".into(),
                second: "dup".into()
            },
            ConfigError::Unreachable {
                chain: "lost".into()
            },
        ]
    );
    assert!(err.to_string().contains("chain \"long\" has 9 steps"));
}

#[test]
fn the_saga_ledger_counts_exactly_the_completed_chains_under_injected_faults() {
    let run = |seed: u64| {
        let ledger = Ledger::new();
        let handle = ledger.handle();
        let cfg = ReactorConfig::builder()
            .chain(
                ChainConfig::new("c")
                    .kinds(&[Kind::Pod])
                    .step(ledger)
                    .step(FaultInjector::new(150_000, 50_000, seed)),
            )
            .retry(RetryPolicy {
                base_ns: 100,
                max_delay_ns: 400,
                max_attempts: 3,
                jitter_per_mille: 500,
            })
            .seed(seed)
            .build()
            .unwrap();
        let mut r = Reactor::with_time(cfg, ManualTime::new(0));
        let mut trace = Vec::new();
        let mut now = 0;
        for i in 0..5_000u64 {
            now += 10;
            r.process(pod(i % 50, i), now, &mut |o| {
                trace.push((o.record.seq, o.steps))
            });
            r.poll(now, 4, &mut |o| trace.push((o.record.seq, o.steps)));
        }
        while let Some(due) = r.next_due() {
            r.poll(due, 64, &mut |o| trace.push((o.record.seq, o.steps)));
        }
        (r.chain_stats(0).unwrap(), handle.total(), trace, r.parked())
    };
    let (s, total, trace, parked) = run(3);
    assert_eq!(parked, 0);
    assert_eq!(s.started, 5_000);
    assert_eq!(s.started, s.completed + s.failed);
    assert!(
        s.retried > 500 && s.failed > 100,
        "faults were injected: {s:?}"
    );
    assert_eq!(
        total, s.completed as i64,
        "compensations took back failed chains"
    );
    assert_eq!(
        s.compensated, s.failed,
        "one completed step (the ledger) per failure"
    );
    let (_, _, again, _) = run(3);
    assert_eq!(again, trace, "same seeds, same outcomes");
}

#[test]
fn changes_made_by_completed_steps_travel_with_retries_and_the_output() {
    /// Stamps the record's resource version (a step that enriches the item).
    struct Stamp;
    impl Step for Stamp {
        fn name(&self) -> &'static str {
            "stamp"
        }
        fn run(&mut self, item: &mut Item) -> Result<(), StepError> {
            item.record.resource_version += 1_000;
            Ok(())
        }
    }
    let log = Log::default();
    let time = ManualTime::new(0);
    let chain = ChainConfig::new("c")
        .kinds(&[Kind::Pod])
        .step(Stamp)
        .step(Probe::new("b", &log).failing(1, &[T]));
    let mut r = reactor(chain, exact(10, 10, 2), &time);
    let mut items = Vec::new();
    let mut p = pod(1, 1);
    p.record.resource_version = 5;
    r.process(p, 0, &mut |i| items.push(i));
    r.poll(10, 1, &mut |i| items.push(i));
    let rv: Vec<(StepState, u64)> = items
        .iter()
        .map(|i| (i.steps.state, i.record.resource_version))
        .collect();
    assert_eq!(
        rv,
        [(StepState::Retried, 1_005), (StepState::Completed, 1_005)],
        "stamped once: the retry reran only the failing step"
    );
}
