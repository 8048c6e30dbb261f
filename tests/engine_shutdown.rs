//! Shutdown: no accepted event is lost, the input refuses events once shutdown starts,
//! and dropping the handle stops every thread.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{digest, Add, Mix, Rec, BOUND};
use ebbflow::engine::{
    Emitter, PipelineBuilder, PipelineError, Placement, PushError, RecvError, Stage, WaitStrategy,
};

#[test]
fn shutdown_drains_every_ring_count_and_checksum_match() {
    for placement in [
        Placement::Fused,
        Placement::PerStage,
        Placement::Groups(vec![1, 2]),
    ] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("a", Add(3))
            .stage("b", Mix)
            .stage("c", Add(11))
            .placement(placement.clone())
            .default_capacity(512)
            .build()
            .unwrap();
        let (mut sent, mut sent_sum) = (0u64, 0u64);
        for seq in 0..50_000 {
            let r = Rec::new(seq);
            // Push without waiting; only when the input ring is full, read what has come
            // out. The rings stay partly full, and the host never blocks on a pipeline
            // that is itself waiting for the host to read.
            let mut pending = r;
            while let Err(PushError::Full(back)) = input.try_push(pending) {
                pending = back;
                while let Some(out) = output.pop() {
                    sent_sum = sent_sum.wrapping_sub(digest(&out));
                    sent -= 1;
                }
                std::thread::yield_now();
            }
            sent += 1;
            let mut e = r;
            e.value = (e.value.wrapping_add(3).rotate_left(7) ^ e.seq).wrapping_add(11);
            sent_sum = sent_sum.wrapping_add(digest(&e));
        }
        // Shut down with events still in every ring; `finish` drains them to us.
        let (mut got, mut got_sum) = (0u64, 0u64);
        let stats = pipeline
            .finish(&mut output, |r| {
                got += 1;
                got_sum = got_sum.wrapping_add(digest(&r));
            })
            .unwrap();
        assert_eq!(got, sent, "{placement:?}: events lost or invented");
        assert_eq!(got_sum, sent_sum, "{placement:?}: checksum differs");
        assert_eq!(stats.in_flight(), 0);
        assert_eq!(stats.total_dropped(), 0);
        assert!(matches!(input.push(Rec::new(0)), Err(PushError::Closed(_))));
        assert_eq!(output.recv_timeout(BOUND), Err(RecvError::Finished));
    }
}

#[test]
fn shutdown_from_another_thread_loses_nothing_the_input_accepted() {
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("a", Add(1))
        .stage("b", Mix)
        .placement(Placement::PerStage)
        .default_capacity(64)
        .build()
        .unwrap();
    let producer = std::thread::spawn(move || {
        let mut accepted = 0u64;
        let mut seq = 0;
        loop {
            match input.push(Rec::new(seq)) {
                Ok(()) => accepted += 1,
                Err(PushError::Closed(r)) => {
                    assert_eq!(r.seq, seq, "the refused event is given back");
                    return accepted;
                }
                Err(PushError::Full(_)) => unreachable!("push waits, it does not report full"),
            }
            seq += 1;
        }
    });
    let consumer = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut last = None;
        loop {
            match output.recv_timeout(BOUND) {
                Ok(r) => {
                    assert!(last < Some(r.seq), "reordered");
                    last = Some(r.seq);
                    n += 1;
                }
                Err(RecvError::Finished) => return n,
                Err(RecvError::Timeout) => panic!("stalled"),
            }
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    pipeline.shutdown().unwrap();
    let accepted = producer.join().unwrap();
    let received = consumer.join().unwrap();
    assert!(accepted > 0);
    assert_eq!(received, accepted, "accepted events were lost in shutdown");
}

#[test]
fn dropping_the_handle_stops_all_threads() {
    let (pipeline, input, output) = PipelineBuilder::<Rec>::new()
        .stage("a", Add(1))
        .stage("b", Mix)
        .placement(Placement::PerStage)
        .build()
        .unwrap();
    let t0 = Instant::now();
    drop(pipeline);
    assert!(t0.elapsed() < BOUND);
    assert!(output.is_finished(), "threads still running after drop");
    drop(input);
}

/// Blocks until released: lets a test fill the rings behind it.
struct Gate(Arc<AtomicBool>);
impl Stage for Gate {
    type In = Rec;
    type Out = Rec;
    fn process(&mut self, r: Rec, out: &mut Emitter<Rec>) {
        while !self.0.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        out.emit(r);
    }
}

#[test]
fn shutdown_with_an_unread_output_times_out_and_reports_what_is_in_flight() {
    let (pipeline, mut input, output) = PipelineBuilder::<Rec>::new()
        .stage("a", Add(1))
        .default_capacity(16)
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    // 16 fit in the output ring, 16 in the input ring; nobody reads.
    for seq in 0..32 {
        input.push(Rec::new(seq)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    match pipeline.shutdown() {
        Err(PipelineError::ShutdownTimedOut { in_flight, .. }) => assert_eq!(in_flight, 32),
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(output);
}

#[test]
fn end_of_input_lets_threads_finish_without_shutdown() {
    let release = Arc::new(AtomicBool::new(true));
    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("gate", Gate(release))
        .stage("b", Mix)
        .placement(Placement::PerStage)
        .build()
        .unwrap();
    for seq in 0..1000 {
        input.push(Rec::new(seq)).unwrap();
    }
    input.close();
    let mut n = 0;
    while output.recv_timeout(BOUND).is_ok() {
        n += 1;
    }
    assert_eq!(n, 1000);
    let t0 = Instant::now();
    while !pipeline.is_finished() {
        assert!(
            t0.elapsed() < BOUND,
            "threads did not finish after end of input"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    pipeline.shutdown().unwrap();
}

/// Holds every event until the input closes, then hands them on two per call.
struct HoldUntilClose {
    held: Vec<Rec>,
}
impl Stage for HoldUntilClose {
    type In = Rec;
    type Out = Rec;
    const MAX_FANOUT: usize = 2;
    fn process(&mut self, r: Rec, _out: &mut Emitter<Rec>) {
        self.held.push(r);
    }
    fn on_close(&mut self, out: &mut Emitter<Rec>) -> bool {
        for _ in 0..2 {
            if let Some(r) = self.held.pop() {
                out.emit(r);
            }
        }
        !self.held.is_empty()
    }
}

#[test]
fn stages_hand_on_what_they_hold_when_the_input_closes() {
    for placement in [Placement::Fused, Placement::PerStage] {
        let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
            .stage("add", Add(1))
            .stage("hold", HoldUntilClose { held: Vec::new() })
            .stage("mix", Mix)
            .placement(placement.clone())
            .wait(WaitStrategy::Park)
            .build()
            .unwrap();
        for seq in 0..101 {
            input.push(Rec::new(seq)).unwrap();
        }
        assert!(
            output.recv_timeout(Duration::from_millis(50)).is_err(),
            "{placement:?}: nothing passes the holding stage before close"
        );
        let mut seqs = Vec::new();
        pipeline.finish(&mut output, |r| seqs.push(r.seq)).unwrap();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (0..101).collect::<Vec<_>>(),
            "{placement:?}: all 101 handed on at close"
        );
    }
}
