//! Statistics: counters are exact, latency percentiles reflect real service time, budget
//! overruns are counted, and ring occupancy is visible.

mod common;

use std::time::{Duration, Instant};

use common::{Add, DropThirds, Rec, Twice, BOUND};
use ebbflow::engine::{Emitter, PipelineBuilder, Placement, Stage, Timing};

/// Spins for a fixed time per event.
struct Slow(Duration);
impl Stage for Slow {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        let t0 = Instant::now();
        while t0.elapsed() < self.0 {
            std::hint::spin_loop();
        }
        out.emit(r);
    }
}

#[test]
fn counters_follow_each_stage_fan_in_and_fan_out() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .stage("drop-thirds", DropThirds)
        .stage("twice", Twice)
        .placement(Placement::Groups(vec![1, 2]))
        .build()
        .unwrap();
    for seq in 0..3000 {
        input.push(Rec::new(seq)).unwrap();
    }
    drop(input);
    let mut n = 0;
    let stats = pipeline.finish(&mut output, |_| n += 1).unwrap();
    let io: Vec<(u64, u64)> = stats
        .stages
        .iter()
        .map(|s| (s.events_in, s.events_out))
        .collect();
    assert_eq!(io, vec![(3000, 3000), (3000, 2000), (2000, 4000)]);
    assert_eq!(n, 4000);
    let rings: Vec<(&str, u64, u64)> = stats
        .rings
        .iter()
        .map(|r| (r.name.as_str(), r.pushed, r.popped))
        .collect();
    assert_eq!(
        rings,
        vec![
            ("input", 3000, 3000),
            ("add -> drop-thirds", 3000, 3000),
            ("output", 4000, 4000)
        ]
    );
    assert_eq!(stats.threads[0].stages, vec![0]);
    assert_eq!(stats.threads[1].stages, vec![1, 2]);
}

#[test]
fn slow_stage_shows_its_latency_and_every_event_over_budget() {
    for timing in [Timing::PerEvent, Timing::PerBatch] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("fast", Add(1))
            .budget(Duration::from_secs(1))
            .stage("slow", Slow(Duration::from_micros(50)))
            .budget(Duration::from_micros(5))
            .timing(timing)
            .build()
            .unwrap();
        for seq in 0..200 {
            input.push(Rec::new(seq)).unwrap();
        }
        drop(input);
        let stats = pipeline.finish(&mut output, |_| {}).unwrap();
        let (fast, slow) = (&stats.stages[0], &stats.stages[1]);
        assert_eq!(slow.over_budget, 200, "{timing:?}");
        assert_eq!(fast.over_budget, 0, "{timing:?}");
        assert!(
            slow.latency.p50_ns >= 50_000,
            "{timing:?}: p50 {}",
            slow.latency.p50_ns
        );
        assert!(
            fast.latency.p50_ns < 50_000,
            "{timing:?}: p50 {}",
            fast.latency.p50_ns
        );
        assert_eq!(slow.latency.count, 200);
    }
}

#[test]
fn a_live_snapshot_sees_events_in_flight_and_histograms_from_busy_threads() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .default_capacity(1024)
        .build()
        .unwrap();
    for seq in 0..500 {
        input.push(Rec::new(seq)).unwrap();
    }
    // Nobody reads the output yet: after the stage ran, all 500 wait in the output ring.
    // Counters are live; a histogram is as of the thread's last fold, so a snapshot taken
    // mid-batch may lag: the next one, with the thread idle, has every sample.
    let t0 = Instant::now();
    let stats = loop {
        let s = pipeline.stats();
        if s.stages[0].events_out == 500 && s.stages[0].latency.count == 500 {
            break s;
        }
        assert!(t0.elapsed() < BOUND, "histogram never caught up: {s:?}");
    };
    assert_eq!(stats.stale_threads, 0);
    let out = stats.rings.last().unwrap();
    assert_eq!((out.name.as_str(), out.occupancy), ("output", 500));
    assert!(
        out.high_water == 0,
        "the host has not read yet, so no high-water reading"
    );
    let mut n = 0;
    while n < 500 {
        output.recv_timeout(BOUND).unwrap();
        n += 1;
    }
    let stats = pipeline.stats();
    assert_eq!(stats.in_flight(), 0);
    assert_eq!(stats.rings.last().unwrap().high_water, 500);
    drop(input);
    pipeline.shutdown().unwrap();
}

#[test]
fn sampled_timing_records_one_batch_in_n() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .max_batch(1)
        .timing(Timing::Sampled(4))
        .build()
        .unwrap();
    for seq in 0..200 {
        input.push(Rec::new(seq)).unwrap();
    }
    drop(input);
    let stats = pipeline.finish(&mut output, |_| {}).unwrap();
    // Batches of one event: 200 batches, every fourth timed.
    assert_eq!(stats.stages[0].batches, 200);
    assert_eq!(stats.stages[0].latency.count, 50);
    assert_eq!(stats.stages[0].events_in, 200);
}
