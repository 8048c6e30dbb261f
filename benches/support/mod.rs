//! Shared pieces of the engine benchmarks: the event, pinning, and the stages.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ebbflow::engine::{CoreSet, Emitter, Stage};

/// A one-cache-line event, as in the engine's default.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct Ev {
    pub seq: u64,
    pub payload: [u64; 7],
}

impl Ev {
    pub fn new(seq: u64) -> Ev {
        Ev {
            seq,
            payload: [seq; 7],
        }
    }
}

/// The two cores benchmarks run on: the host thread on the first, the peer on the last.
/// Reads the allowed cores before anything is pinned.
pub fn cores() -> (usize, usize) {
    let ids = CoreSet::detect().ids().to_vec();
    (ids[0], *ids.last().unwrap())
}

pub fn pin(core: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
}

/// Passes events on unchanged.
pub struct Identity;
impl Stage for Identity {
    type In = Ev;
    type Out = Ev;
    #[inline]
    fn process(&mut self, e: Ev, out: &mut Emitter<Ev>) {
        out.emit(e);
    }
}

/// Touches the payload and passes the event on (a stage that does a little work).
pub struct Touch;
impl Stage for Touch {
    type In = Ev;
    type Out = Ev;
    #[inline]
    fn process(&mut self, mut e: Ev, out: &mut Emitter<Ev>) {
        e.payload[0] = e.payload[0].wrapping_add(e.seq);
        out.emit(e);
    }
}

/// Consumes events and publishes how many it has seen, once per batch. It reads each
/// event in place, as the raw-ring consumers in the benches do.
pub struct Sink {
    pub seen: u64,
    pub counter: Arc<AtomicU64>,
}
impl Stage for Sink {
    type In = Ev;
    type Out = Ev;
    const MAX_FANOUT: usize = 0;
    #[inline]
    fn process(&mut self, e: Ev, _out: &mut Emitter<Ev>) {
        std::hint::black_box(&e);
        self.seen += 1;
    }
    #[inline]
    fn process_batch(&mut self, inputs: &[Ev], _out: &mut Emitter<Ev>) {
        for e in inputs {
            std::hint::black_box(e);
        }
        self.seen += inputs.len() as u64;
    }
    #[inline]
    fn end_of_batch(&mut self, _out: &mut Emitter<Ev>) {
        self.counter.store(self.seen, Ordering::Release);
    }
}

/// Spins until `counter` reaches `target`.
pub fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Acquire) < target {
        std::hint::spin_loop();
    }
}

/// Times `iters × rounds` calls of `round(i)` and returns the time per round: the body
/// every round-trip variant shares.
pub fn time_rounds(iters: u64, rounds: u64, mut round: impl FnMut(u64)) -> std::time::Duration {
    let t0 = std::time::Instant::now();
    for i in 0..iters * rounds {
        round(i);
    }
    t0.elapsed() / rounds as u32
}

/// Times `iters` calls of `send_batch` (each sends `per_iter` events) until the consumer's
/// counter `seen` has caught up: the body every throughput variant shares. `sent` carries
/// the running total across criterion's calls.
pub fn time_stream(
    iters: u64,
    per_iter: u64,
    sent: &mut u64,
    seen: &AtomicU64,
    mut send_batch: impl FnMut(),
) -> std::time::Duration {
    let t0 = std::time::Instant::now();
    for _ in 0..iters {
        send_batch();
        *sent += per_iter;
    }
    wait_for(seen, *sent);
    t0.elapsed()
}

/// Pushes `n` events into a pipeline input, `chunk` at a time.
pub fn push_chunks(input: &mut ebbflow::engine::Input<Ev>, chunk: &[Ev], n: u64) {
    let mut sent = 0;
    while sent < n {
        input
            .push_slice(chunk)
            .expect("pipeline accepts until closed");
        sent += chunk.len() as u64;
    }
}
