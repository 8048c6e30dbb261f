//! Zero allocations on the hot path: once warmed up, a multi-stage, multi-thread pipeline
//! moves 1,000,000 events without one heap allocation, on any thread.

mod common;

use common::{Add, DropThirds, Mix, Rec, Running, Twice, BOUND};
use ebbflow::engine::{PipelineBuilder, Placement, PushError, RecvError, Timing, WaitStrategy};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

const EVENTS: u64 = 1_000_000;

#[test]
fn a_million_events_cross_a_warm_pipeline_without_allocating() {
    // The counter works: an allocation anywhere in the process while counting is seen.
    let (probe, n) = counting_alloc::in_process(|| {
        std::thread::spawn(|| drop(std::hint::black_box(Box::new(1u64)))).join()
    });
    probe.unwrap();
    assert!(n >= 1, "the counting allocator saw nothing");
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
                // Never block in push while outputs wait to be read: read, then retry.
                let mut event = Rec::new(*seq);
                while let Err(e) = input.try_push(event) {
                    assert!(matches!(e, PushError::Full(_)), "pipeline closed: {e:?}");
                    event = e.into_inner();
                    while output.pop().is_some() {
                        *received += 1;
                    }
                }
                *seq += 1;
                while output.pop().is_some() {
                    *received += 1;
                }
            }
        };
        pump(&mut input, &mut output, 100_000, &mut seq, &mut received);
        std::thread::sleep(std::time::Duration::from_millis(50));
        pump(&mut input, &mut output, 10_000, &mut seq, &mut received);

        let ((), allocations) = counting_alloc::in_process(|| {
            pump(&mut input, &mut output, EVENTS, &mut seq, &mut received)
        });

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
