//! Order and placement: events leave in the order they entered, and every placement of
//! the same stages produces exactly the same output.

mod common;

use common::{Add, DropThirds, Mix, Rec, Running, Twice, BOUND};
use ebbflow::engine::{
    Backpressure, CoreSet, Pinning, PipelineBuilder, Placement, RecvError, Timing, WaitStrategy,
};

const N: u64 = 200_000;

fn run(placement: Placement, wait: WaitStrategy, capacity: usize, max_batch: usize) -> Vec<Rec> {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(5))
        .stage("drop-thirds", DropThirds)
        .stage("twice", Twice)
        .stage("mix", Mix)
        .stage("running", Running::default())
        .placement(placement)
        .wait(wait)
        .default_capacity(capacity)
        .max_batch(max_batch)
        .build()
        .expect("valid pipeline");
    let producer = std::thread::spawn(move || {
        for seq in 0..N {
            input
                .push(Rec::new(seq))
                .expect("pipeline accepts until closed");
        }
    });
    let mut out = Vec::with_capacity((N * 2) as usize);
    loop {
        match output.recv_timeout(BOUND) {
            Ok(r) => out.push(r),
            Err(RecvError::Finished) => break,
            Err(RecvError::Timeout) => panic!("no output for {BOUND:?}"),
        }
    }
    producer.join().unwrap();
    pipeline.shutdown().expect("clean shutdown");
    out
}

fn reference() -> Vec<Rec> {
    // The same stages applied by hand, single-threaded.
    let mut running = 0u64;
    let mut out = Vec::new();
    for seq in 0..N {
        let mut r = Rec::new(seq);
        r.value = r.value.wrapping_add(5);
        if seq.is_multiple_of(3) {
            continue;
        }
        for tag in 0..2 {
            let mut t = Rec { tag, ..r };
            t.value = t.value.rotate_left(7) ^ t.seq;
            running = running
                .wrapping_mul(31)
                .wrapping_add(t.value ^ u64::from(tag));
            t.value = running;
            out.push(t);
        }
    }
    out
}

#[test]
fn fused_output_equals_single_threaded_reference() {
    assert_eq!(
        run(Placement::Fused, WaitStrategy::SpinYield, 1024, 256),
        reference()
    );
}

#[test]
fn every_placement_gives_identical_output() {
    let expected = reference();
    for placement in [
        Placement::PerStage,
        Placement::Groups(vec![2, 3]),
        Placement::Groups(vec![1, 1, 3]),
        Placement::Groups(vec![4, 1]),
        Placement::Auto,
    ] {
        let got = run(placement.clone(), WaitStrategy::SpinYield, 64, 16);
        assert_eq!(got.len(), expected.len(), "{placement:?}");
        assert!(got == expected, "{placement:?} changed the output");
    }
}

#[test]
fn parked_threads_deliver_everything_in_order() {
    // Small rings force many sleeps and wake-ups on both sides of each ring.
    let got = run(Placement::PerStage, WaitStrategy::Park, 8, 4);
    assert!(got == reference());
}

#[test]
fn order_is_preserved_per_producer_with_tiny_rings_and_batches() {
    let got = run(Placement::Groups(vec![1, 4]), WaitStrategy::SpinYield, 2, 1);
    let seqs: Vec<(u64, u32)> = got.iter().map(|r| (r.seq, r.tag)).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted, "events were reordered");
}

#[test]
fn timing_mode_does_not_change_output() {
    for timing in [Timing::Off, Timing::PerEvent] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("add", Add(5))
            .stage("mix", Mix)
            .timing(timing)
            .backpressure(Backpressure::Block)
            .build()
            .unwrap();
        for seq in 0..1000 {
            input.push(Rec::new(seq)).unwrap();
        }
        drop(input);
        let mut got = Vec::new();
        let stats = pipeline.finish(&mut output, |r| got.push(r)).unwrap();
        let expected: Vec<Rec> = (0..1000)
            .map(|s| {
                let mut r = Rec::new(s);
                r.value = r.value.wrapping_add(5).rotate_left(7) ^ s;
                r
            })
            .collect();
        assert_eq!(got, expected, "{timing:?}");
        let recorded = stats.stages[0].latency.count;
        match timing {
            Timing::Off => assert_eq!(recorded, 0),
            _ => assert_eq!(recorded, 1000),
        }
    }
}

#[test]
fn pinned_pipeline_runs_on_the_planned_core() {
    let cores = CoreSet::detect().clone();
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .stage("mix", Mix)
        .placement(Placement::Fused)
        .pinning(Pinning::Auto)
        .build()
        .unwrap();
    assert_eq!(pipeline.layout()[0].core, cores.ids().last().copied());
    input.push(Rec::new(7)).unwrap();
    assert_eq!(output.recv_timeout(BOUND).unwrap().seq, 7);
    drop(input);
    pipeline.shutdown().unwrap();
}
