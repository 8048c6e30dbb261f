//! Stages that work in place (`Stage::IN_PLACE`) change, drop and pass on the events in
//! the buffer of the stage before them instead of copying each into their own emitter.
//! The outputs must be exactly what the same stages give on the copying path, in order,
//! fused or across threads, inline or threaded; `end_of_batch` emissions follow the batch;
//! a declined batch takes the copying path; and nothing allocates once warm.

mod common;

use common::{Add, Rec};
use ebbflow::engine::{Emitter, InPlace, PipelineBuilder, Placement, Stage, Timing, WaitStrategy};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Multiplies `value` by 3 and drops events whose seq is divisible by 5; `IN_PLACE` is a
/// parameter so that the same logic runs on both paths.
struct TripleDropFifths<const IN_PLACE: bool>;
impl<const P: bool> Stage for TripleDropFifths<P> {
    type In = Rec;
    type Out = Rec;
    const IN_PLACE: bool = P;
    fn process(&mut self, mut r: Rec, out: &mut Emitter<Rec>) {
        if !r.seq.is_multiple_of(5) {
            r.value = r.value.wrapping_mul(3);
            out.emit(r);
        }
    }
    fn process_in_place(&mut self, batch: &mut InPlace<'_, Rec>, _out: &mut Emitter<Rec>) -> bool {
        batch.retain_mut(|r| {
            r.value = r.value.wrapping_mul(3);
            !r.seq.is_multiple_of(5)
        });
        true
    }
}

/// Folds a running checksum into each event and emits a marker after every batch.
#[derive(Default)]
struct RunningWithMarker<const IN_PLACE: bool>(u64);
impl<const P: bool> Stage for RunningWithMarker<P> {
    type In = Rec;
    type Out = Rec;
    const IN_PLACE: bool = P;
    fn process(&mut self, mut r: Rec, out: &mut Emitter<Rec>) {
        self.0 = self.0.wrapping_mul(31).wrapping_add(r.value);
        r.value = self.0;
        out.emit(r);
    }
    fn process_in_place(&mut self, batch: &mut InPlace<'_, Rec>, _out: &mut Emitter<Rec>) -> bool {
        for r in batch.as_mut_slice() {
            self.0 = self.0.wrapping_mul(31).wrapping_add(r.value);
            r.value = self.0;
        }
        true
    }
    fn end_of_batch(&mut self, out: &mut Emitter<Rec>) {
        out.emit(Rec {
            seq: u64::MAX,
            value: self.0,
            tag: 7,
        });
    }
}

/// Declines (in place) every batch that holds an event whose seq is divisible by 7, and
/// tags events on both paths with which path ran, so the test sees both were taken.
struct Picky<const IN_PLACE: bool>;
impl<const P: bool> Stage for Picky<P> {
    type In = Rec;
    type Out = Rec;
    const IN_PLACE: bool = P;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        out.emit(Rec {
            tag: r.tag | 1 << 8,
            ..r
        });
    }
    fn process_in_place(&mut self, batch: &mut InPlace<'_, Rec>, _out: &mut Emitter<Rec>) -> bool {
        if batch.as_slice().iter().any(|r| r.seq.is_multiple_of(7)) {
            return false;
        }
        for r in batch.as_mut_slice() {
            r.tag |= 1 << 9;
        }
        true
    }
}

fn inputs(n: u64) -> Vec<Rec> {
    (0..n).map(Rec::new).collect()
}

/// Strips the path tag so both paths compare equal.
fn untagged(v: &[Rec]) -> Vec<Rec> {
    v.iter()
        .map(|r| Rec {
            tag: r.tag & 0xff,
            ..*r
        })
        .collect()
}

macro_rules! chain {
    ($p:expr) => {
        PipelineBuilder::<Rec>::new()
            .stage("add", Add(1))
            .stage("triple", TripleDropFifths::<$p>)
            .stage("picky", Picky::<$p>)
            .stage("running", RunningWithMarker::<$p>::default())
            .max_batch(32)
    };
}

fn inline_run<const P: bool>(events: &[Rec], timing: Timing) -> Vec<Rec> {
    let mut inline = chain!(P).timing(timing).build_inline().unwrap();
    let mut got = Vec::new();
    for part in events.chunks(100) {
        inline.process(part, |o| got.extend_from_slice(o)).unwrap();
    }
    let stats = inline.finish(|o| got.extend_from_slice(o)).unwrap();
    let picky = &stats.stages[2];
    assert_eq!(picky.events_in, picky.events_out, "picky passes everything");
    got
}

#[test]
fn in_place_stages_give_the_copying_paths_outputs_inline() {
    let events = inputs(5_000);
    let copying = inline_run::<false>(&events, Timing::PerBatch);
    let in_place = inline_run::<true>(&events, Timing::PerBatch);
    assert_eq!(untagged(&in_place), untagged(&copying));
    // 4,000 survivors plus one marker per batch of `running`.
    assert_eq!(copying.iter().filter(|r| r.seq != u64::MAX).count(), 4_000);
    assert!(copying
        .iter()
        .all(|r| r.seq == u64::MAX || r.tag & (1 << 8) != 0));
    // Both paths ran: some batches declined (copied), the others worked in place.
    let placed = in_place.iter().filter(|r| r.tag & (1 << 9) != 0).count();
    let copied = in_place.iter().filter(|r| r.tag & (1 << 8) != 0).count();
    assert!(placed > 0 && copied > 0, "placed {placed}, copied {copied}");
    // Per-event timing keeps the copying path (it times each `process`).
    let per_event = inline_run::<true>(&events, Timing::PerEvent);
    assert!(per_event.iter().all(|r| r.tag & (1 << 9) == 0));
    assert_eq!(untagged(&per_event), untagged(&copying));
}

#[test]
fn in_place_stages_give_the_copying_paths_outputs_across_threads() {
    let events = inputs(20_000);
    let expected = untagged(&inline_run::<false>(&events, Timing::PerBatch));
    // A ring before `triple` (which then copies the ring's slice once) and one before
    // `running`.
    for placement in [Placement::Groups(vec![1, 2, 1]), Placement::Fused] {
        let (pipeline, mut input, mut output) = chain!(true)
            .placement(placement.clone())
            .wait(WaitStrategy::Park)
            .build()
            .unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(r) = output.recv_timeout(common::BOUND) {
                got.push(r);
            }
            got
        });
        for &e in &events {
            input.push(e).unwrap();
        }
        drop(input);
        let got = reader.join().unwrap();
        pipeline.shutdown().unwrap();
        // Batches differ from the inline run (they follow the ring), so markers differ:
        // compare the events and check the markers' count.
        let strip = |v: &[Rec]| -> Vec<Rec> {
            untagged(v)
                .into_iter()
                .filter(|r| r.seq != u64::MAX)
                .collect()
        };
        let got_events = strip(&got);
        let want: Vec<u64> = strip(&expected).iter().map(|r| r.seq).collect();
        assert_eq!(
            got_events.iter().map(|r| r.seq).collect::<Vec<_>>(),
            want,
            "{placement:?}: order or membership differs"
        );
        assert!(
            got.iter().any(|r| r.seq == u64::MAX),
            "{placement:?}: no markers"
        );
    }
}

#[test]
fn warm_in_place_chains_do_not_allocate() {
    let mut inline = chain!(true).build_inline().unwrap();
    let events = inputs(4096);
    let mut n = 0u64;
    inline.process(&events, |o| n += o.len() as u64).unwrap();
    let (r, allocations) = counting_alloc::on_this_thread(|| {
        (0..100).try_for_each(|_| inline.process(&events, |o| n += o.len() as u64))
    });
    r.unwrap();
    assert_eq!(allocations, 0, "allocations over 409,600 events");
    assert!(n > 0);
}
