//! Zero allocations on the hot path: once warmed up, a multi-stage, multi-thread pipeline
//! moves 1,000,000 events without one heap allocation, on any thread.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Add, DropThirds, Mix, Rec, Running, Twice, BOUND};
use ebbflow::engine::{PipelineBuilder, Placement, RecvError, Timing, WaitStrategy};

/// Counts every allocation in the process while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call unchanged to the system allocator; counting has no effect
// on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const EVENTS: u64 = 1_000_000;

#[test]
fn a_million_events_cross_a_warm_pipeline_without_allocating() {
    for (placement, wait, timing) in [
        (
            Placement::Groups(vec![2, 3]),
            WaitStrategy::SpinYield,
            Timing::PerBatch,
        ),
        (Placement::Fused, WaitStrategy::SpinYield, Timing::PerEvent),
        (
            Placement::Groups(vec![3, 2]),
            WaitStrategy::Park,
            Timing::PerBatch,
        ),
    ] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("add", Add(1))
            .stage("drop-thirds", DropThirds)
            .stage("twice", Twice)
            .stage("mix", Mix)
            .stage("running", Running::default())
            .placement(placement.clone())
            .wait(wait)
            .timing(timing)
            .default_capacity(1024)
            .build()
            .unwrap();
        // Warm-up: every thread has run, parked (where it may) and been woken, and every
        // lazily created piece (thread handles, TSC calibration) exists.
        let mut seq = 0u64;
        let mut received = 0u64;
        let pump = |input: &mut ebbflow::engine::Input<Rec>,
                    output: &mut ebbflow::engine::Output<Rec>,
                    n: u64,
                    seq: &mut u64,
                    received: &mut u64| {
            let end = *seq + n;
            while *seq < end {
                input.push(Rec::new(*seq)).unwrap();
                *seq += 1;
                while let Some(_r) = output.pop() {
                    *received += 1;
                }
            }
        };
        pump(&mut input, &mut output, 100_000, &mut seq, &mut received);
        std::thread::sleep(std::time::Duration::from_millis(50));
        pump(&mut input, &mut output, 10_000, &mut seq, &mut received);

        ALLOCATIONS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        pump(&mut input, &mut output, EVENTS, &mut seq, &mut received);
        COUNTING.store(false, Ordering::SeqCst);
        let allocations = ALLOCATIONS.load(Ordering::SeqCst);

        drop(input);
        loop {
            match output.recv_timeout(BOUND) {
                Ok(_) => received += 1,
                Err(RecvError::Finished) => break,
                Err(RecvError::Timeout) => panic!("stalled"),
            }
        }
        let stats = pipeline.shutdown().unwrap();
        let expected_out: u64 = (0..seq).filter(|s| !s.is_multiple_of(3)).count() as u64 * 2;
        assert_eq!(received, expected_out, "{placement:?}: events lost");
        assert_eq!(stats.stages[0].events_in, seq);
        assert_eq!(
            allocations, 0,
            "{placement:?} {wait:?} {timing:?}: {allocations} allocations while {EVENTS} events crossed"
        );
    }
}
