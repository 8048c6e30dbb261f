//! Zero allocations per event: appending 1,000,000 records — through segment rotations,
//! retention deletions, commits and event draining — allocates nothing after warm-up
//! (the open). Replaying them allocates nothing per entry either.
//!
//! Run: `cargo test --release --test journal_alloc` (also passes in debug, more slowly).

#[path = "journal_common.rs"]
mod common;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use common::{rec, TempDir};
use ebbflow::journal::format::ENTRY_LEN;
use ebbflow::journal::{Durability, Journal, JournalConfig, ReplayFrom, Retention};
use ebbflow::sources::record::Record;

const EVENTS: u64 = 1_000_000;
/// 16 MiB segments: ~116,500 entries each, so 1 M appends rotate 8 times.
const SEGMENT_BYTES: u64 = 16 << 20;

#[test]
fn appending_a_million_records_with_rotations_allocates_nothing() {
    let dir = TempDir::new("alloc");
    let cfg = JournalConfig {
        segment_bytes: SEGMENT_BYTES,
        durability: Durability::Os,
        // Keep at most 3 segments on disk: retention deletes during the run too.
        retention: Retention {
            max_bytes: Some(3 * SEGMENT_BYTES),
            max_age: None,
        },
        ..JournalConfig::default()
    };
    // Warm-up: open (allocates: paths, segment list, lock) and the records to append.
    let mut journal = Journal::open(dir.path(), cfg).unwrap();
    let records: Vec<Record> = (0..1024).map(rec).collect();
    let mut events = 0u64;
    let mut rotations = 0u64;
    let ((), allocations) = counting_alloc::on_this_thread(|| {
        for i in 0..EVENTS {
            journal.append(&records[(i % 1024) as usize]).unwrap();
            if i % 1000 == 999 {
                journal.commit().unwrap();
                journal.drain_events(|e| {
                    events += 1;
                    if let ebbflow::journal::JournalEvent::Rotated { .. } = e {
                        rotations += 1;
                    }
                });
            }
        }
        journal.sync().unwrap();
    });
    let per_segment = (SEGMENT_BYTES - 64) / ENTRY_LEN as u64;
    assert_eq!(rotations, EVENTS / per_segment, "the run must rotate");
    assert!(
        journal.segments().count() <= 3,
        "retention must have deleted segments"
    );
    assert_eq!(journal.written_seq(), EVENTS);
    assert!(events > 1000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while appending {EVENTS} records"
    );
}

#[test]
fn durable_appends_and_replay_allocate_nothing_per_entry() {
    let dir = TempDir::new("alloc-replay");
    let cfg = JournalConfig {
        segment_bytes: 1 << 20,
        durability: Durability::EveryBatch,
        ..JournalConfig::default()
    };
    let mut journal = Journal::open(dir.path(), cfg).unwrap();
    let records: Vec<Record> = (0..256).map(rec).collect();
    const N: u64 = 30_000; // 4 rotations, 300 msyncs
    let ((), allocations) = counting_alloc::on_this_thread(|| {
        for i in 0..N {
            journal.append(&records[(i % 256) as usize]).unwrap();
            if i % 100 == 99 {
                journal.commit().unwrap();
            }
        }
    });
    assert_eq!(journal.acked(), N);
    assert_eq!(
        allocations, 0,
        "durable appends allocated {allocations} times"
    );
    let reader = journal.reader().unwrap();
    let mut entries = reader.entries(ReplayFrom::Start).unwrap();
    // Warm-up: the first entry maps the first segment.
    assert_eq!(entries.next().unwrap().unwrap().1, records[0]);
    let (n, allocations) = counting_alloc::on_this_thread(|| {
        let mut n = 1u64;
        for e in entries.by_ref() {
            let (seq, r) = e.unwrap();
            assert_eq!(r, records[((seq - 1) % 256) as usize]);
            n += 1;
        }
        n
    });
    assert_eq!(n, N);
    assert_eq!(allocations, 0, "replay allocated {allocations} times");
}
