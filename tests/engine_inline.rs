//! The inline pipeline runs the same chain on the caller's thread: same outputs in the
//! same order as the threaded pipeline, the same statistics, held events released at
//! finish, failures reported and sticky, and no allocation per call once warm.

mod common;

use common::{five_stages, inputs, Add, HoldAll, PanicAt, Rec};
use ebbflow::engine::{Emitter, PipelineBuilder, PipelineError, Placement, Stage, Timing};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

macro_rules! chain {
    () => {
        five_stages()
    };
}

#[test]
fn inline_outputs_equal_the_threaded_pipelines_in_order() {
    let events = inputs(10_000);
    let (pipeline, mut input, mut output) = chain!()
        .placement(Placement::Groups(vec![2, 3]))
        .build()
        .unwrap();
    let mut threaded = Vec::new();
    for &e in &events {
        input.push(e).unwrap();
    }
    drop(input);
    pipeline
        .finish(&mut output, |e| threaded.push(e))
        .expect("threaded run");

    let mut inline = chain!().build_inline().unwrap();
    let mut got = Vec::new();
    // Uneven calls: batches are split at max_batch and the order still holds.
    for part in events.chunks(997) {
        inline
            .process(part, |out| got.extend_from_slice(out))
            .unwrap();
    }
    let stats = inline.finish(|out| got.extend_from_slice(out)).unwrap();
    // 10,000 inputs, a third dropped (3,334 of them), the rest doubled.
    assert_eq!(got.len(), 2 * (10_000 - 3_334));
    assert_eq!(got, threaded, "inline and threaded outputs differ");
    let by_name = |n: &str| stats.stages.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(by_name("add").events_in, 10_000);
    assert_eq!(by_name("drop-thirds").events_out, 6_666);
    assert_eq!(by_name("twice").events_out, 13_332);
    assert_eq!(by_name("running").events_out, 13_332);
    assert!(stats.stages.iter().all(|s| s.thread == 0));
    assert_eq!(stats.threads.len(), 1);
    assert!(stats.rings.is_empty());
}

#[test]
fn finish_releases_what_stages_hold_through_the_rest_of_the_chain() {
    let mut inline = PipelineBuilder::<Rec>::new()
        .stage("hold", HoldAll(Vec::with_capacity(1000)))
        .stage("add", Add(5))
        .max_batch(16)
        .build_inline()
        .unwrap();
    let mut got = Vec::new();
    inline
        .process(&inputs(1000), |out| got.extend_from_slice(out))
        .unwrap();
    assert!(got.is_empty(), "held events came out before finish");
    let stats = inline.finish(|out| got.extend_from_slice(out)).unwrap();
    assert_eq!(got.len(), 1000);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == i as u64 && r.value == Rec::new(i as u64).value.wrapping_add(5)));
    assert_eq!(stats.stages[1].events_in, 1000);
}

/// Declares fan-out 1 and emits twice.
struct Liar;
impl Stage for Liar {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        out.emit(r);
        out.emit(r);
    }
}

#[test]
fn a_panicking_stage_fails_this_call_and_every_later_one() {
    let mut inline = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .stage("panic-at-100", PanicAt(100))
        .max_batch(32)
        .build_inline()
        .unwrap();
    let mut got = 0usize;
    let err = inline
        .process(&inputs(200), |out| got += out.len())
        .unwrap_err();
    match &err {
        PipelineError::StagePanicked {
            stage,
            index,
            message,
        } => {
            assert_eq!((stage.as_str(), *index), ("panic-at-100", 1));
            assert!(message.contains("bad event 100"), "{message}");
        }
        other => panic!("expected StagePanicked, got {other:?}"),
    }
    // The three full batches before the failing one (events 0..96) came out.
    assert_eq!(got, 96);
    assert_eq!(inline.failure(), Some(&err));
    assert_eq!(inline.process(&inputs(1), |_| {}), Err(err.clone()));
    assert_eq!(inline.finish(|_| {}).unwrap_err(), err);
}

#[test]
fn breaking_the_fan_out_bound_is_an_emitter_overflow() {
    let mut inline = PipelineBuilder::<Rec>::new()
        .stage("liar", Liar)
        .max_batch(8)
        .build_inline()
        .unwrap();
    let err = inline.process(&inputs(8), |_| {}).unwrap_err();
    assert_eq!(
        err,
        PipelineError::EmitterOverflow {
            stage: "liar".into(),
            index: 0,
            max_fanout: 1
        }
    );
}

#[test]
fn build_inline_checks_the_configuration_like_build() {
    let err = PipelineBuilder::<Rec>::new()
        .stage("a", Add(1))
        .stage("a", Add(2))
        .max_batch(0)
        .build_inline()
        .err()
        .expect("a duplicate name and a zero batch are refused");
    let text = err.to_string();
    assert!(text.contains("a"), "{text}");
    assert_eq!(err.problems.len(), 2, "{err:?}");
}

#[test]
fn warm_inline_calls_do_not_allocate() {
    for timing in [Timing::PerBatch, Timing::PerEvent, Timing::Off] {
        let mut inline = chain!().timing(timing).build_inline().unwrap();
        let events = inputs(4096);
        let mut sum = 0u64;
        // Warm-up: histograms, clock calibration.
        inline
            .process(&events, |out| sum += out.len() as u64)
            .unwrap();
        let (r, allocations) = counting_alloc::on_this_thread(|| {
            for _ in 0..250 {
                inline.process(&events, |out| sum += out.len() as u64)?;
            }
            Ok::<_, PipelineError>(())
        });
        r.unwrap();
        assert_eq!(
            allocations, 0,
            "{timing:?}: allocations in 1,024,000 events"
        );
        assert!(sum > 0);
    }
}
