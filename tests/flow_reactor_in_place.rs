//! The reactor stage working in place (its input already in a buffer the engine owns) emits
//! exactly what the copying path emits, in the same order: completed records where they
//! lie, and from the first record the reactor takes (a retry, a failure, a record queued
//! behind its key) its lifecycle events and every later record after them.
//!
//! Run: `cargo test --test flow_reactor_in_place`.

use ebbflow::engine::{Emitter, InPlace, PipelineBuilder, Stage, Timing};
use ebbflow::flow::reactor::steps::{FaultInjector, Validate};
use ebbflow::flow::reactor::{ChainConfig, Reactor, ReactorConfig, RetryPolicy};
use ebbflow::flow::stages::ReactorStage;
use ebbflow::flow::{Item, StepState, What};
use ebbflow::sources::record::Kind;

#[path = "support/pods.rs"]
mod pods;
use pods::pod;

/// 20 % transient and 5 % permanent faults; a retry waits 100 s, so none becomes due
/// while the batches run and the outputs do not depend on the clock.
fn reactor() -> Reactor {
    let chain = ChainConfig::new("k8s")
        .kinds(&[Kind::Pod])
        .step(Validate::default())
        .step(FaultInjector::new(200_000, 50_000, 7));
    let cfg = ReactorConfig::builder()
        .chain(chain)
        .retry(RetryPolicy {
            base_ns: 100_000_000_000,
            max_delay_ns: 100_000_000_000,
            max_attempts: 3,
            jitter_per_mille: 0,
        })
        .retry_capacity(64)
        .seed(3)
        .build()
        .expect("valid config");
    Reactor::new(cfg)
}

/// Hands its batch on where it lies (so the reactor after it gets an owned buffer).
struct Keep;
impl Stage for Keep {
    type In = Item;
    type Out = Item;
    const IN_PLACE: bool = true;
    fn process(&mut self, i: Item, out: &mut Emitter<Item>) {
        out.emit(i);
    }
    fn process_in_place(&mut self, _b: &mut InPlace<'_, Item>, _a: &mut Emitter<Item>) -> bool {
        true
    }
}

type Seen = (What, u64, u64, u8, u8);

fn seen(i: &Item) -> Seen {
    (
        i.header.what,
        i.record.key,
        i.record.seq,
        i.steps.state as u8,
        i.steps.step,
    )
}

/// Runs `items` through `keep → reactor` (timing decides the path: `PerEvent` makes every
/// stage copy) in batches of 64; returns what came out before the end of the stream.
fn run(items: &[Item], timing: Timing) -> Vec<Seen> {
    let mut inline = PipelineBuilder::<Item>::new()
        .stage("keep", Keep)
        .stage("reactor", ReactorStage::new(reactor()))
        .max_batch(64)
        .timing(timing)
        .build_inline()
        .unwrap();
    let mut out = Vec::new();
    for batch in items.chunks(64) {
        inline
            .process(batch, |o| out.extend(o.iter().map(seen)))
            .unwrap();
    }
    out
}

#[test]
fn in_place_and_copying_paths_emit_the_same_events_in_the_same_order() {
    // 50 keys, 40 updates each, interleaved: retries park keys, later updates of a parked
    // key queue behind it, other keys pass.
    let items: Vec<Item> = (0..2000u64).map(|s| pod(s % 50, s)).collect();
    let in_place = run(&items, Timing::PerBatch);
    let copying = run(&items, Timing::PerEvent);
    assert_eq!(in_place, copying);
    // The run exercised every path: completions, retries (parked), failures with their
    // compensations, and records held behind a parked key.
    let count = |state: StepState| {
        in_place
            .iter()
            .filter(|s| s.0 == What::Step && s.3 == state as u8)
            .count()
    };
    let completed = in_place.iter().filter(|s| s.0 == What::Record).count();
    assert!(count(StepState::Retried) > 0, "no retry");
    assert!(count(StepState::Failed) > 0, "no failure");
    assert!(count(StepState::Compensated) > 0, "no compensation");
    assert!(completed > 0 && completed < 2000, "{completed} completed");
}
