//! Backpressure: lossless by default; drop-newest and drop-oldest count every drop
//! exactly, and keep exactly the events their names promise.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{Rec, BOUND};
use ebbflow::engine::{Backpressure, Emitter, PipelineBuilder, Placement, PushError, Stage};

/// Holds its first event until released, so the ring fills behind it. A batch's slots are
/// freed only after the stage returns, so the held event still occupies one slot.
struct Gate {
    release: Arc<AtomicBool>,
    entered: Arc<AtomicBool>,
}

impl Gate {
    fn new() -> (Gate, Arc<AtomicBool>, Arc<AtomicBool>) {
        let (release, entered) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        (
            Gate {
                release: release.clone(),
                entered: entered.clone(),
            },
            release,
            entered,
        )
    }
}

fn wait_for(flag: &AtomicBool) {
    let t0 = std::time::Instant::now();
    while !flag.load(Ordering::Acquire) {
        assert!(t0.elapsed() < BOUND, "stage never started");
        std::thread::yield_now();
    }
}

impl Stage for Gate {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        self.entered.store(true, Ordering::Release);
        while !self.release.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        out.emit(r);
    }
}

const CAP: usize = 32;
const N: u64 = 1000;

type Stalled = (
    ebbflow::engine::Pipeline<Rec, Rec>,
    ebbflow::engine::Input<Rec>,
    ebbflow::engine::Output<Rec>,
    Arc<AtomicBool>,
);

/// A gated pipeline whose stage holds event 0 while events 1..N are pushed behind it, so
/// the ring's contents are exact. Returns the pipeline, its ends and the gate's release.
fn stalled_with_all_pushed(policy: Backpressure) -> Stalled {
    let (gate, release, entered) = Gate::new();
    let (pipeline, mut input, output) = PipelineBuilder::<Rec>::new()
        .stage("gate", gate)
        .capacity(CAP)
        .backpressure(policy)
        .max_batch(1)
        .output_capacity(2048)
        .placement(Placement::Fused)
        .build()
        .unwrap();
    input.push(Rec::new(0)).unwrap();
    wait_for(&entered);
    for seq in 1..N {
        input.push(Rec::new(seq)).unwrap();
    }
    (pipeline, input, output, release)
}

/// Pushes N events into a stalled pipeline, releases it, and returns (seqs out, stats).
fn stalled(policy: Backpressure) -> (Vec<u64>, ebbflow::engine::PipelineStats) {
    let (pipeline, input, mut output, release) = stalled_with_all_pushed(policy);
    release.store(true, Ordering::Release);
    drop(input);
    let mut seqs = Vec::new();
    let stats = pipeline.finish(&mut output, |r| seqs.push(r.seq)).unwrap();
    (seqs, stats)
}

#[test]
fn drop_newest_keeps_the_first_events_and_counts_the_rest() {
    let (seqs, stats) = stalled(Backpressure::DropNewest);
    // Event 0 is in the stage (still holding its slot); CAP - 1 more fit in the ring; the
    // rest were refused.
    let expected: Vec<u64> = (0..CAP as u64).collect();
    assert_eq!(seqs, expected);
    assert_eq!(stats.rings[0].dropped_newest, N - CAP as u64);
    assert_eq!(stats.rings[0].dropped_oldest, 0);
    assert_eq!(seqs.len() as u64 + stats.total_dropped(), N);
}

#[test]
fn drop_oldest_keeps_the_newest_events_in_order_and_counts_the_rest() {
    let (seqs, stats) = stalled(Backpressure::DropOldest);
    // Event 0 is in the stage, 1..CAP in the ring; the overflow buffer (CAP slots) keeps
    // the newest CAP events; everything between was discarded, oldest first.
    let mut expected: Vec<u64> = (0..CAP as u64).collect();
    expected.extend(N - CAP as u64..N);
    assert_eq!(seqs, expected);
    assert_eq!(stats.rings[0].dropped_oldest, N - 2 * CAP as u64);
    assert_eq!(stats.rings[0].dropped_newest, 0);
    assert_eq!(seqs.len() as u64 + stats.total_dropped(), N);
}

#[test]
fn lossless_mode_delivers_everything_through_a_tiny_ring() {
    let (gate, release, entered) = Gate::new();
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("gate", gate)
        .capacity(4)
        .max_batch(1)
        .placement(Placement::Fused)
        .build()
        .unwrap();
    input.push(Rec::new(0)).unwrap();
    wait_for(&entered);
    for seq in 1..4 {
        input.push(Rec::new(seq)).unwrap();
    }
    // The ring is full now: try_push says so and gives the event back.
    let r = Rec::new(99);
    assert_eq!(input.try_push(r), Err(PushError::Full(r)));
    release.store(true, Ordering::Release);
    input.push(r).unwrap();
    for seq in 4..N {
        input.push(Rec::new(seq)).unwrap();
    }
    drop(input);
    let mut seqs = Vec::new();
    let stats = pipeline.finish(&mut output, |r| seqs.push(r.seq)).unwrap();
    let mut expected: Vec<u64> = (0..4).collect();
    expected.push(99);
    expected.extend(4..N);
    assert_eq!(seqs, expected);
    assert_eq!(stats.total_dropped(), 0);
    assert_eq!(stats.rings[0].pushed, N + 1);
}

#[test]
fn drop_policy_between_threads_counts_drops_exactly() {
    // A lossy ring between two threads: whatever was dropped plus what came out is N.
    let (gate, release, _entered) = Gate::new();
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("first", common::Add(0))
        .stage("gate", gate)
        .capacity(8)
        .backpressure(Backpressure::DropNewest)
        .placement(Placement::PerStage)
        .build()
        .unwrap();
    for seq in 0..N {
        input.push(Rec::new(seq)).unwrap();
    }
    let t0 = std::time::Instant::now();
    while pipeline.stats().stages[0].events_in < N {
        assert!(t0.elapsed() < BOUND);
        std::thread::yield_now();
    }
    release.store(true, Ordering::Release);
    drop(input);
    let mut seqs = Vec::new();
    let stats = pipeline.finish(&mut output, |r| seqs.push(r.seq)).unwrap();
    let hop = &stats.rings[1];
    assert_eq!(hop.name, "first -> gate");
    assert!(hop.dropped_newest > 0);
    assert_eq!(seqs.len() as u64 + hop.dropped_newest, N);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "survivors stay in order"
    );
}

#[test]
fn drop_oldest_events_parked_at_shutdown_are_counted_not_lost() {
    let (pipeline, mut input, mut output, release) =
        stalled_with_all_pushed(Backpressure::DropOldest);
    assert_eq!(
        input.parked(),
        CAP,
        "the overflow buffer holds the newest events"
    );
    // Shut down while the host still holds its input: the parked events can no longer
    // enter, and must show up as drops.
    release.store(true, Ordering::Release);
    let mut seqs = Vec::new();
    let stats = pipeline.finish(&mut output, |r| seqs.push(r.seq)).unwrap();
    assert_eq!(seqs, (0..CAP as u64).collect::<Vec<_>>());
    assert_eq!(stats.rings[0].dropped_oldest, N - 2 * CAP as u64);
    // The input is closed now: flushing delivers nothing and counts the parked events.
    assert_eq!(input.flush(), 0);
    assert_eq!(input.parked(), 0);
    assert_eq!(input.dropped(), N - CAP as u64);
    assert_eq!(
        seqs.len() as u64 + input.dropped(),
        N,
        "every event delivered or counted"
    );
}
