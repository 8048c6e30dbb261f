//! Failures: a panicking stage or an emitter overflow stops the pipeline with an error
//! that names the stage, within a bounded time, whatever the placement.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::{Add, Mix, PanicAt, Rec, BOUND};
use ebbflow::engine::{
    Emitter, PipelineBuilder, PipelineError, Placement, PushError, Stage, WaitStrategy,
};

/// Declares a fan-out of 1 but emits 3 for every tenth event.
struct Liar;
impl Stage for Liar {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        let n = if r.seq % 10 == 9 { 3 } else { 1 };
        for _ in 0..n {
            out.emit(r);
        }
    }
}

#[test]
fn a_panicking_stage_stops_the_pipeline_with_its_name_and_nothing_hangs() {
    for (placement, wait) in [
        (Placement::Fused, WaitStrategy::SpinYield),
        (Placement::PerStage, WaitStrategy::SpinYield),
        (Placement::PerStage, WaitStrategy::Park),
        (Placement::Groups(vec![2, 1]), WaitStrategy::Park),
    ] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("first", Add(1))
            .stage("explodes", PanicAt(5_000))
            .stage("last", Mix)
            .placement(placement.clone())
            .wait(wait)
            .default_capacity(64)
            .build()
            .unwrap();
        let t0 = Instant::now();
        // Keep offering events (reading every output in between, so the host itself never
        // stalls the pipeline) until the pipeline refuses them.
        let mut refused = None;
        let mut seq = 0;
        while t0.elapsed() < BOUND {
            match input.try_push(Rec::new(seq)) {
                Ok(()) => seq += 1,
                Err(PushError::Full(_)) => std::thread::yield_now(),
                Err(PushError::Closed(r)) => {
                    refused = Some(r.seq);
                    break;
                }
            }
            while output.pop().is_some() {}
        }
        assert!(
            refused.is_some(),
            "{placement:?}: input kept accepting after the panic"
        );
        let err = pipeline.shutdown().unwrap_err();
        assert_eq!(
            err,
            PipelineError::StagePanicked {
                stage: "explodes".into(),
                index: 1,
                message: "bad event 5000".into()
            },
            "{placement:?}"
        );
        assert!(
            t0.elapsed() < BOUND,
            "{placement:?}: took {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn emitting_past_max_fanout_is_an_error_naming_the_stage() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("liar", Liar)
        .max_batch(1)
        .placement(Placement::Fused)
        .build()
        .unwrap();
    for seq in 0..100 {
        if input.push(Rec::new(seq)).is_err() {
            break;
        }
        while output.pop().is_some() {}
    }
    drop(input);
    let err = pipeline.shutdown().unwrap_err();
    assert_eq!(
        err,
        PipelineError::EmitterOverflow {
            stage: "liar".into(),
            index: 0,
            max_fanout: 1
        }
    );
    assert!(err.to_string().contains("liar"));
}

#[test]
fn failure_is_visible_on_the_handle_before_shutdown() {
    let (pipeline, mut input, _output) = PipelineBuilder::<Rec>::new()
        .stage("explodes", PanicAt(0))
        .build()
        .unwrap();
    input.push(Rec::new(0)).unwrap();
    let t0 = Instant::now();
    while pipeline.failure().is_none() {
        assert!(t0.elapsed() < BOUND);
        std::thread::yield_now();
    }
    assert!(matches!(input.push(Rec::new(1)), Err(PushError::Closed(_))));
    assert!(matches!(
        pipeline.shutdown(),
        Err(PipelineError::StagePanicked { index: 0, .. })
    ));
}

/// Panics when the pipeline drops it.
struct PanicOnDrop;
impl Stage for PanicOnDrop {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        out.emit(r);
    }
}
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("cannot release my resources");
    }
}

#[test]
fn a_panic_while_dropping_a_stage_is_reported() {
    let (pipeline, input, _output) = PipelineBuilder::<Rec>::new()
        .stage("stubborn", PanicOnDrop)
        .build()
        .unwrap();
    drop(input);
    match pipeline.shutdown() {
        Err(PipelineError::StagePanicked { stage, message, .. }) => {
            assert_eq!(stage, "stubborn");
            assert!(message.contains("cannot release my resources"), "{message}");
        }
        other => panic!("expected the drop panic to be reported, got {other:?}"),
    }
}

/// Panics when its gate opens.
struct PanicWhenReleased(Arc<AtomicBool>);
impl Stage for PanicWhenReleased {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, _r: Rec, _out: &mut Emitter<Rec>) {
        while !self.0.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        panic!("released into a panic");
    }
}

#[test]
fn a_push_blocked_on_a_full_ring_returns_when_the_consumer_panics() {
    for wait in [WaitStrategy::SpinYield, WaitStrategy::Park] {
        let release = Arc::new(AtomicBool::new(false));
        let (pipeline, mut input, _output) = PipelineBuilder::<Rec>::new()
            .stage("doomed", PanicWhenReleased(release.clone()))
            .capacity(8)
            .max_batch(1)
            .host_wait(wait)
            .wait(wait)
            .build()
            .unwrap();
        // The stage holds event 0, which keeps its slot until the stage returns; 7 more
        // fill the ring; the 9th push blocks.
        for seq in 0..8 {
            input.push(Rec::new(seq)).unwrap();
        }
        let opener = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            release.store(true, Ordering::Release);
        });
        let t0 = Instant::now();
        let r = input.push(Rec::new(9));
        assert!(
            matches!(r, Err(PushError::Closed(e)) if e.seq == 9),
            "{wait:?}: {r:?}"
        );
        assert!(t0.elapsed() < BOUND);
        opener.join().unwrap();
        assert!(matches!(
            pipeline.shutdown(),
            Err(PipelineError::StagePanicked { index: 0, .. })
        ));
    }
}
