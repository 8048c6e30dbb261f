//! Stages and events shared by the engine tests.
#![allow(dead_code)]

use std::time::Duration;

use ebbflow::engine::{Chain, Emitter, PipelineBuilder, Stage};

/// A one-cache-line test event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Rec {
    pub seq: u64,
    pub value: u64,
    pub tag: u32,
}

impl Rec {
    pub fn new(seq: u64) -> Rec {
        Rec {
            seq,
            value: seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            tag: 0,
        }
    }
}

/// Adds a constant to `value`.
pub struct Add(pub u64);
impl Stage for Add {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, mut r: Rec, out: &mut Emitter<Rec>) {
        r.value = r.value.wrapping_add(self.0);
        out.emit(r);
    }
}

/// Rotates and xors `value`: order-sensitive if events were mixed up.
pub struct Mix;
impl Stage for Mix {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, mut r: Rec, out: &mut Emitter<Rec>) {
        r.value = r.value.rotate_left(7) ^ r.seq;
        out.emit(r);
    }
}

/// Drops events whose seq is divisible by 3 (fan-out 0 or 1).
pub struct DropThirds;
impl Stage for DropThirds {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        if !r.seq.is_multiple_of(3) {
            out.emit(r);
        }
    }
}

/// Emits each event twice, tagged 0 and 1 (fan-out 2).
pub struct Twice;
impl Stage for Twice {
    type In = Rec;
    type Out = Rec;
    const MAX_FANOUT: usize = 2;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        out.emit(Rec { tag: 0, ..r });
        out.emit(Rec { tag: 1, ..r });
    }
}

/// Folds a running checksum into each event (stateful: depends on every earlier event).
#[derive(Default)]
pub struct Running(pub u64);
impl Stage for Running {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, mut r: Rec, out: &mut Emitter<Rec>) {
        self.0 = self
            .0
            .wrapping_mul(31)
            .wrapping_add(r.value ^ u64::from(r.tag));
        r.value = self.0;
        out.emit(r);
    }
}

/// A pure function of an event, order-independent, for checksums across a run.
pub fn digest(r: &Rec) -> u64 {
    (r.seq ^ r.value.rotate_left(17) ^ (u64::from(r.tag) << 61)).wrapping_mul(0xFF51_AFD7_ED55_8CCD)
}

/// Upper bound for any wait in a test: a hang fails instead of blocking CI.
pub const BOUND: Duration = Duration::from_secs(20);

/// Holds every event until the stream ends, then releases them (like a window).
pub struct HoldAll(pub Vec<Rec>);
impl Stage for HoldAll {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, _out: &mut Emitter<Rec>) {
        self.0.push(r);
    }
    fn on_close(&mut self, out: &mut Emitter<Rec>) -> bool {
        let n = out.remaining().min(self.0.len());
        for r in self.0.drain(..n) {
            out.emit(r);
        }
        !self.0.is_empty()
    }
}

/// Panics on the event with sequence number `.0`, with "bad event N".
pub struct PanicAt(pub u64);
impl Stage for PanicAt {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        assert!(r.seq != self.0, "bad event {}", r.seq);
        out.emit(r);
    }
}

/// Events `0..n`.
pub fn inputs(n: u64) -> Vec<Rec> {
    (0..n).map(Rec::new).collect()
}

/// The five-stage chain of the engine tests (filter, fan-out 2, stateful fold), batches of
/// 64.
pub fn five_stages() -> PipelineBuilder<Rec, Rec, impl Chain<Rec, Out = Rec>> {
    PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .stage("drop-thirds", DropThirds)
        .stage("twice", Twice)
        .stage("mix", Mix)
        .stage("running", Running::default())
        .max_batch(64)
}
