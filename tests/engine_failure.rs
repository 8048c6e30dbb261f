//! Failures: a panicking stage or an emitter overflow stops the pipeline with an error
//! that names the stage, within a bounded time, whatever the placement.

mod common;

use std::time::Instant;

use common::{Add, Mix, Rec, BOUND};
use ebbflow::engine::{
    Emitter, PipelineBuilder, PipelineError, Placement, PushError, Stage, WaitStrategy,
};

struct PanicAt(u64);
impl Stage for PanicAt {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        if r.seq == self.0 {
            panic!("bad event {}", r.seq);
        }
        out.emit(r);
    }
}

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
        // Keep pushing until the pipeline refuses: a push must not block forever on a
        // ring whose consumer died.
        let mut refused = None;
        for seq in 0..1_000_000 {
            if let Err(PushError::Closed(r)) = input.push(Rec::new(seq)) {
                refused = Some(r.seq);
                break;
            }
            output.pop();
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
        output.pop();
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
