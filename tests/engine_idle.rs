//! `Stage::on_idle`: a stage with time-driven work gets turns while no event arrives — on
//! its pipeline thread whatever the wait strategy (parking threads wake at least every
//! 10 ms), as a host stage at each `Input::flush`, and in an inline pipeline at each
//! `InlinePipeline::idle` — and what it emits there goes downstream like a batch's
//! outputs.

mod common;

use std::time::{Duration, Instant};

use common::{inputs, Add, Rec};
use ebbflow::engine::{Emitter, PipelineBuilder, Placement, Stage, WaitStrategy};

/// Holds every event until its next idle turn (like a retry whose backoff has passed).
struct UntilIdle(Vec<Rec>);
impl Stage for UntilIdle {
    type In = Rec;
    type Out = Rec;
    const MAX_FANOUT: usize = 64;
    fn process(&mut self, r: Rec, _out: &mut Emitter<Rec>) {
        self.0.push(r);
    }
    fn on_idle(&mut self, out: &mut Emitter<Rec>) {
        let n = out.remaining().min(self.0.len());
        for r in self.0.drain(..n) {
            out.emit(r);
        }
    }
}

fn until_idle() -> UntilIdle {
    UntilIdle(Vec::with_capacity(64))
}

#[test]
fn held_events_leave_on_the_pipeline_thread_s_idle_turns_for_every_wait_strategy() {
    for wait in [WaitStrategy::SpinYield, WaitStrategy::Park] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("hold", until_idle())
            .stage("add", Add(1))
            .placement(Placement::Fused)
            .wait(wait)
            .build()
            .unwrap();
        input.push_slice(&inputs(40)).unwrap();
        // No more input, and the stream stays open: only idle turns can release them.
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 40 && Instant::now() < deadline {
            if let Ok(r) = output.recv_timeout(Duration::from_millis(50)) {
                got.push(r);
            }
        }
        assert_eq!(
            got.len(),
            40,
            "{wait:?}: held events did not leave while idle"
        );
        assert!(got.iter().enumerate().all(|(i, r)| r.seq == i as u64));
        let stats = pipeline.stats();
        assert_eq!(stats.stages[0].events_out, 40, "{wait:?}");
        drop(input);
        pipeline.finish(&mut output, |_| {}).unwrap();
    }
}

#[test]
fn a_host_stage_s_held_events_leave_at_the_host_s_flush() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("hold", until_idle())
        .stage("add", Add(1))
        .host_stages(1)
        .build()
        .unwrap();
    input.push_slice(&inputs(40)).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        output.pop(),
        None,
        "the host stage released events on its own"
    );
    input.flush();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 40 && Instant::now() < deadline {
        if let Ok(r) = output.recv_timeout(Duration::from_millis(50)) {
            got.push(r);
        }
    }
    assert_eq!(got.len(), 40);
    input.close();
    pipeline.finish(&mut output, |_| {}).unwrap();
}

#[test]
fn an_inline_pipeline_gives_idle_turns_when_asked() {
    let mut inline = PipelineBuilder::<Rec>::new()
        .stage("hold", until_idle())
        .stage("add", Add(1))
        .build_inline()
        .unwrap();
    let mut got = Vec::new();
    inline
        .process(&inputs(40), |o| got.extend_from_slice(o))
        .unwrap();
    assert!(got.is_empty(), "held events left before an idle turn");
    inline.idle(|o| got.extend_from_slice(o)).unwrap();
    assert_eq!(got.len(), 40);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == i as u64 && r.value == Rec::new(i as u64).value.wrapping_add(1)));
    let stats = inline.finish(|_| {}).unwrap();
    assert_eq!(stats.stages[1].events_in, 40);
}
