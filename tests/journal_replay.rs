//! Replay gives back exactly what was appended — from a sequence, from a time, paced,
//! into a pipeline — and the journal's promises around it: durability acknowledgement,
//! numbering across reopen, retention, events, and the journal as a pipeline's first stage.
//!
//! Run: `cargo test --test journal_replay`

#[path = "journal_common.rs"]
mod common;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use common::{rec, TempDir, INGEST_BASE_NS};
use ebbflow::engine::{Emitter, PipelineBuilder, RecvError, Stage, WaitStrategy};
use ebbflow::journal::format::ENTRY_LEN;
use ebbflow::journal::{
    encode_json, Durability, Journal, JournalConfig, JournalError, JournalEvent, JournalReader,
    JournalStage, ReplayFrom, Retention,
};
use ebbflow::sources::pace::Pace;
use ebbflow::sources::record::Record;

/// 50 entries per segment.
const SEGMENT_BYTES: u64 = 64 + 50 * ENTRY_LEN as u64;

fn config(durability: Durability) -> JournalConfig {
    JournalConfig {
        segment_bytes: SEGMENT_BYTES,
        durability,
        ..JournalConfig::default()
    }
}

fn fill(dir: &std::path::Path, n: u64) -> Journal {
    let mut j = Journal::open(dir, config(Durability::EveryBatch)).unwrap();
    for i in 1..=n {
        j.append(&rec(i)).unwrap();
        if i % 100 == 0 {
            j.commit().unwrap();
        }
    }
    j.commit().unwrap();
    j
}

#[test]
fn replay_from_seq_and_from_time_returns_exactly_the_appended_records() {
    let dir = TempDir::new("replay");
    let j = fill(dir.path(), 1000);
    assert!(j.segments().count() >= 20);
    drop(j);
    let reader = JournalReader::open(dir.path()).unwrap();
    let all: Vec<(u64, Record)> = reader
        .entries(ReplayFrom::Start)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(all.len(), 1000);
    for (seq, r) in &all {
        assert_eq!(*r, rec(*seq));
    }
    assert_eq!(all.first().unwrap().0, 1);
    // From a sequence in the middle of a segment.
    let from: Vec<u64> = reader
        .entries(ReplayFrom::Seq(437))
        .unwrap()
        .map(|e| {
            let (s, r) = e.unwrap();
            assert_eq!(r, rec(s));
            s
        })
        .collect();
    assert_eq!(from, (437..=1000).collect::<Vec<_>>());
    // From a time: rec(i).ingest_ns = base + i µs; a time between 611 and 612 starts at 612.
    let t = INGEST_BASE_NS + 611 * 1_000 + 1;
    let mut seen = Vec::new();
    let stats = reader
        .replay(ReplayFrom::IngestNs(t), Pace::FlatOut, |s, r| {
            assert_eq!(*r, rec(s));
            seen.push(s);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, (612..=1000).collect::<Vec<_>>());
    assert_eq!(
        (stats.entries, stats.first_seq, stats.last_seq),
        (389, 612, 1000)
    );
    // Past the end: nothing; before any time: everything.
    assert_eq!(reader.entries(ReplayFrom::Seq(1001)).unwrap().count(), 0);
    assert_eq!(
        reader.entries(ReplayFrom::IngestNs(0)).unwrap().count(),
        1000
    );
    assert_eq!(
        reader
            .entries(ReplayFrom::IngestNs(i64::MAX))
            .unwrap()
            .count(),
        0
    );
    // Stopping early.
    let stats = reader
        .replay(ReplayFrom::Start, Pace::FlatOut, |s, _| {
            if s == 10 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert!(stats.stopped);
    assert_eq!(stats.last_seq, 10);
}

#[test]
fn paced_replay_at_a_rate_takes_the_time_the_rate_implies() {
    let dir = TempDir::new("paced");
    drop(fill(dir.path(), 120));
    let reader = JournalReader::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let stats = reader
        .replay(ReplayFrom::Seq(21), Pace::Rate(1000.0), |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(stats.entries, 100);
    // 100 events at 1000/s: the last is due 99 ms after the first.
    assert!(took >= Duration::from_millis(99), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

struct Identity;
impl Stage for Identity {
    type In = Record;
    type Out = Record;
    fn process(&mut self, r: Record, out: &mut Emitter<Record>) {
        out.emit(r);
    }
}

#[test]
fn replay_into_a_pipeline_input_delivers_every_record_in_order() {
    let dir = TempDir::new("into");
    let j = fill(dir.path(), 700);
    // Replaying while the journal is live: the reader is bounded to what was written.
    let reader = j.reader().unwrap();
    let (pipeline, mut input, mut output) = PipelineBuilder::<Record>::new()
        .stage("identity", Identity)
        .capacity(64)
        .wait(WaitStrategy::Park)
        .host_wait(WaitStrategy::Park)
        .build()
        .unwrap();
    let consumer = std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match output.recv_timeout(Duration::from_secs(10)) {
                Ok(r) => got.push(r),
                Err(RecvError::Finished) => break,
                Err(RecvError::Timeout) => panic!("pipeline stalled"),
            }
        }
        got
    });
    let stats = reader
        .replay_into(ReplayFrom::Seq(101), Pace::FlatOut, &mut input)
        .unwrap();
    assert_eq!(stats.entries, 600);
    drop(input);
    let got = consumer.join().unwrap();
    pipeline.shutdown().unwrap();
    let want: Vec<Record> = (101..=700).map(rec).collect();
    assert_eq!(got, want);
}

#[test]
fn journal_stage_first_in_a_pipeline_journals_then_forwards_and_publishes_events() {
    let dir = TempDir::new("stage");
    let journal = Journal::open(dir.path(), config(Durability::EveryBatch)).unwrap();
    let (stage, handle) = JournalStage::new(journal);
    let (stage, mut events) = stage.with_events(256);
    let (pipeline, mut input, mut output) = PipelineBuilder::<Record>::new()
        .stage("journal", stage)
        .stage("identity", Identity)
        .wait(WaitStrategy::Park)
        .host_wait(WaitStrategy::Park)
        .build()
        .unwrap();
    let consumer = std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match output.recv_timeout(Duration::from_secs(10)) {
                Ok(r) => got.push(r),
                Err(RecvError::Finished) => break,
                Err(RecvError::Timeout) => panic!("pipeline stalled"),
            }
        }
        got
    });
    for i in 1..=500 {
        input.push(rec(i)).unwrap();
    }
    drop(input);
    let got = consumer.join().unwrap();
    pipeline.shutdown().unwrap();
    assert_eq!(got, (1..=500).map(rec).collect::<Vec<_>>());
    // Under EveryBatch a record leaves the stage only once durable: all 500 acknowledged.
    assert_eq!(handle.acked.acked(), 500);
    let c = &handle.counters;
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(c.forwarded.load(Relaxed), 500);
    assert_eq!(c.refused.load(Relaxed), 0);
    // The journal holds exactly what passed.
    let reader = JournalReader::open(dir.path()).unwrap();
    let journaled: Vec<Record> = reader
        .entries(ReplayFrom::Start)
        .unwrap()
        .map(|e| e.unwrap().1)
        .collect();
    assert_eq!(journaled, got);
    // Events: recovery (created), rotations (500 entries / 50 per segment), appends
    // adding up to 500.
    let mut appended = 0;
    let mut rotations = 0;
    let mut recovered = false;
    let mut json = Vec::with_capacity(256);
    while let Ok(ev) = events.pop() {
        json.clear();
        encode_json(&ev, &mut json);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["topic"], "journal");
        match ev {
            JournalEvent::Appended { entries, .. } => appended += entries,
            JournalEvent::Rotated { .. } => rotations += 1,
            JournalEvent::Recovered { created, .. } => recovered = created,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(recovered);
    assert_eq!(rotations, 9);
    assert_eq!(appended, 500);
}

#[test]
fn acknowledgement_follows_the_durability_policy() {
    let dir = TempDir::new("ack-batch");
    let mut j = Journal::open(dir.path(), config(Durability::EveryBatch)).unwrap();
    j.append(&rec(1)).unwrap();
    j.append(&rec(2)).unwrap();
    assert_eq!((j.written_seq(), j.acked()), (2, 0));
    assert_eq!(j.commit().unwrap(), 2);

    let dir = TempDir::new("ack-os");
    let mut j = Journal::open(dir.path(), config(Durability::Os)).unwrap();
    j.append(&rec(1)).unwrap();
    assert_eq!(j.acked(), 1, "Os: accepted on write");

    let dir = TempDir::new("ack-interval");
    let d = Duration::from_millis(30);
    let mut j = Journal::open(dir.path(), config(Durability::Interval(d))).unwrap();
    let h = j.ack_handle();
    std::thread::sleep(d); // the interval since open has passed: the next commit flushes
    j.append(&rec(1)).unwrap();
    assert_eq!(j.commit().unwrap(), 1);
    j.append(&rec(2)).unwrap();
    assert_eq!(j.commit().unwrap(), 1, "flushed less than the interval ago");
    std::thread::sleep(d);
    assert_eq!(j.commit().unwrap(), 2);
    assert_eq!(h.acked(), 2);
    j.append(&rec(3)).unwrap();
    assert_eq!(j.sync().unwrap(), 3, "sync flushes whatever the policy");
}

#[test]
fn reopening_continues_numbering_and_recovered_entries_count_as_acknowledged() {
    let dir = TempDir::new("reopen");
    drop(fill(dir.path(), 123));
    let mut j = Journal::open(dir.path(), config(Durability::EveryBatch)).unwrap();
    let r = *j.recovery();
    assert!(!r.created);
    assert_eq!((r.first_seq, r.last_seq, r.dropped), (1, 123, None));
    assert_eq!(j.acked(), 123);
    assert_eq!(j.append(&rec(124)).unwrap(), 124);
    j.commit().unwrap();
    let mut evs = Vec::new();
    j.drain_events(|e| evs.push(e));
    assert!(matches!(
        evs[0],
        JournalEvent::Recovered {
            last_seq: 123,
            created: false,
            dropped_entries: 0,
            ..
        }
    ));
}

#[test]
fn retention_by_size_and_age_deletes_oldest_segments_only() {
    let dir = TempDir::new("retain-size");
    let cfg = JournalConfig {
        retention: Retention {
            max_bytes: Some(3 * SEGMENT_BYTES),
            max_age: None,
        },
        ..config(Durability::Os)
    };
    let mut j = Journal::open(dir.path(), cfg).unwrap();
    let mut removed = 0;
    for i in 1..=1000 {
        j.append(&rec(i)).unwrap();
        if i % 100 == 0 {
            j.drain_events(|e| match e {
                JournalEvent::Removed { segments, .. } => removed += segments,
                JournalEvent::Overflow { .. } => panic!("drained often enough not to lose any"),
                _ => {}
            });
        }
    }
    assert_eq!(j.segments().count(), 3);
    // 1000 entries, 50 per segment: segments 17, 18, 19 remain, from seq 851.
    assert_eq!(j.first_seq(), 851);
    assert_eq!(removed, 17);
    let reader = j.reader().unwrap();
    assert!(matches!(
        reader.entries(ReplayFrom::Seq(5)),
        Err(JournalError::NotRetained {
            requested: 5,
            first: 851
        })
    ));
    let kept: Vec<u64> = reader
        .entries(ReplayFrom::Start)
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(kept, (851..=1000).collect::<Vec<_>>());
    drop(j);
    // Reopening after retention: the oldest segment is not index 0; that is fine.
    let j = Journal::open(dir.path(), cfg).unwrap();
    assert_eq!((j.first_seq(), j.written_seq()), (851, 1000));
    drop(j);

    let dir = TempDir::new("retain-age");
    let cfg = JournalConfig {
        retention: Retention {
            max_bytes: None,
            max_age: Some(Duration::from_millis(50)),
        },
        ..config(Durability::Os)
    };
    let mut j = Journal::open(dir.path(), cfg).unwrap();
    for i in 1..=120 {
        j.append(&rec(i)).unwrap(); // segments 0, 1, 2 (active)
    }
    j.apply_retention().unwrap();
    assert_eq!(j.segments().count(), 3, "nothing is old yet");
    std::thread::sleep(Duration::from_millis(60));
    j.apply_retention().unwrap();
    assert_eq!(j.segments().count(), 1, "only the active segment is kept");
    assert_eq!(j.first_seq(), 101);
}

#[test]
fn journal_stage_refuses_and_counts_records_it_cannot_journal_and_keeps_running() {
    let dir = TempDir::new("stage-fail");
    let cfg = JournalConfig {
        segment_bytes: 64 + 10 * ENTRY_LEN as u64, // 10 entries per segment
        ..config(Durability::EveryBatch)
    };
    let journal = Journal::open(dir.path(), cfg).unwrap();
    let (stage, handle) = JournalStage::new(journal);
    let (pipeline, mut input, mut output) = PipelineBuilder::<Record>::new()
        .stage("journal", stage)
        .wait(WaitStrategy::Park)
        .host_wait(WaitStrategy::Park)
        .build()
        .unwrap();
    // The directory disappears: the mapped first segment still takes 10 entries, then
    // every rotation fails (no directory to create the next segment in).
    std::fs::remove_dir_all(dir.path()).unwrap();
    for i in 1..=25 {
        input.push(rec(i)).unwrap();
    }
    drop(input);
    let mut got = Vec::new();
    loop {
        match output.recv_timeout(Duration::from_secs(10)) {
            Ok(r) => got.push(r),
            Err(RecvError::Finished) => break,
            Err(RecvError::Timeout) => panic!("pipeline stalled"),
        }
    }
    pipeline.shutdown().unwrap();
    use std::sync::atomic::Ordering::Relaxed;
    let c = &handle.counters;
    assert_eq!(
        got,
        (1..=10).map(rec).collect::<Vec<_>>(),
        "only journaled records pass"
    );
    assert_eq!(c.forwarded.load(Relaxed), 10);
    assert_eq!(
        c.refused.load(Relaxed),
        15,
        "every record not journaled is counted"
    );
    assert!(c.errors.load(Relaxed) >= 1);
    assert_eq!(handle.acked.acked(), 10);
}
