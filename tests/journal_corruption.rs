//! Damage is detected and reported specifically, never a panic: a flipped bit (in a sealed
//! segment, in the last segment before intact entries, and as a torn last entry), a
//! truncated segment, a missing segment, a segment from another journal, a garbage
//! segment, a damaged identity file, a second writer.
//!
//! Run: `cargo test --test journal_corruption`

#[path = "journal_common.rs"]
mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{rec, TempDir};
use ebbflow::journal::format::{segment_name, slot_offset, ENTRY_LEN};
use ebbflow::journal::{
    Durability, EntryProblem, HeaderProblem, Journal, JournalConfig, JournalError, JournalReader,
    ReplayFrom, TailRepair,
};

/// 10 entries per segment.
const SEGMENT_BYTES: u64 = 64 + 10 * ENTRY_LEN as u64;

fn config() -> JournalConfig {
    JournalConfig {
        segment_bytes: SEGMENT_BYTES,
        durability: Durability::Os,
        ..JournalConfig::default()
    }
}

/// A journal with `n` entries `rec(1..=n)`, closed.
fn journal_with(dir: &Path, n: u64) -> u64 {
    let mut j = Journal::open(dir, config()).unwrap();
    for i in 1..=n {
        assert_eq!(j.append(&rec(i)).unwrap(), i);
    }
    j.sync().unwrap();
    j.id()
}

fn seg(dir: &Path, index: u64) -> PathBuf {
    dir.join(segment_name(index, &mut [0u8; 24]))
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 1 << bit;
    f.write_all_at(&b, offset).unwrap();
}

#[test]
fn flipped_bit_in_sealed_segment_is_found_by_verify_and_stops_replay_at_that_entry() {
    let dir = TempDir::new("flip-sealed");
    journal_with(dir.path(), 25); // segments 0, 1 (sealed), 2 (last, 5 entries)
                                  // Entry seq 4 = segment 0, slot 3; flip a payload bit.
    let off = slot_offset(3) as u64 + 40;
    flip_bit(&seg(dir.path(), 0), off, 5);
    // Opening only scans the last segment: it succeeds and continues numbering.
    let j = Journal::open(dir.path(), config()).unwrap();
    assert_eq!(j.next_seq(), 26);
    assert_eq!(j.recovery().dropped, None);
    drop(j);
    let reader = JournalReader::open(dir.path()).unwrap();
    let v = reader.verify();
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    match &v.problems[0] {
        JournalError::Corrupt {
            segment_index: 0,
            offset,
            seq: 4,
            problem: EntryProblem::CrcMismatch { .. },
        } => assert_eq!(*offset, slot_offset(3) as u64),
        other => panic!("unexpected problem {other:?}"),
    }
    let mut got = Vec::new();
    let mut err = None;
    for item in reader.entries(ReplayFrom::Start).unwrap() {
        match item {
            Ok((seq, r)) => {
                assert_eq!(r, rec(seq));
                got.push(seq);
            }
            Err(e) => err = Some(e),
        }
    }
    assert_eq!(got, vec![1, 2, 3]);
    assert!(matches!(
        err,
        Some(JournalError::Corrupt {
            seq: 4,
            problem: EntryProblem::CrcMismatch { .. },
            ..
        })
    ));
    // Replaying from after the damage works.
    let after: Vec<u64> = reader
        .entries(ReplayFrom::Seq(5))
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(after, (5..=25).collect::<Vec<_>>());
}

#[test]
fn flipped_bit_before_intact_entries_in_last_segment_refuses_open_unless_truncate_any() {
    let dir = TempDir::new("flip-last");
    journal_with(dir.path(), 27); // last segment 2 holds seq 21..=27
                                  // seq 23 = segment 2, slot 2: flip a bit of its sequence field.
    flip_bit(&seg(dir.path(), 2), slot_offset(2) as u64 + 9, 0);
    match Journal::open(dir.path(), config()) {
        Err(JournalError::Corrupt {
            segment_index: 2,
            seq: 23,
            problem: EntryProblem::CrcMismatch { .. },
            offset,
        }) => assert_eq!(offset, slot_offset(2) as u64),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let repair = JournalConfig {
        repair: TailRepair::TruncateAny,
        ..config()
    };
    let mut j = Journal::open(dir.path(), repair).unwrap();
    let d = j.recovery().dropped.expect("a dropped tail");
    assert_eq!(d.first_seq, 23);
    assert_eq!(d.entries, 5, "seq 23..=27 dropped");
    assert_eq!(
        d.valid_crc_entries, 4,
        "24..=27 were intact and are reported lost"
    );
    assert_eq!(d.bytes, 5 * ENTRY_LEN as u64);
    assert_eq!(j.recovery().last_seq, 22);
    assert_eq!(j.append(&rec(23)).unwrap(), 23);
}

#[test]
fn torn_last_entry_is_truncated_reported_and_numbering_continues() {
    let dir = TempDir::new("torn");
    journal_with(dir.path(), 24); // last segment 2 holds seq 21..=24
                                  // Tear the last entry: its frame is there, the second half of its payload is not.
    let path = seg(dir.path(), 2);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0u8; 64], slot_offset(3) as u64 + 80)
        .unwrap();
    drop(f);
    let mut j = Journal::open(dir.path(), config()).unwrap();
    let r = *j.recovery();
    let d = r.dropped.expect("the torn entry is reported");
    assert_eq!(d.segment_index, 2);
    assert_eq!(d.first_seq, 24);
    assert_eq!(d.offset, slot_offset(3) as u64);
    assert_eq!(d.entries, 1);
    assert_eq!(d.bytes, ENTRY_LEN as u64);
    assert_eq!(d.valid_crc_entries, 0);
    assert!(matches!(d.problem, EntryProblem::CrcMismatch { .. }));
    assert_eq!(r.last_seq, 23);
    assert_eq!(r.tail_entries, 3);
    // Numbering continues from the last good sequence; the torn bytes are gone.
    assert_eq!(j.append(&rec(24)).unwrap(), 24);
    j.sync().unwrap();
    drop(j);
    let v = JournalReader::open(dir.path()).unwrap().verify();
    assert!(v.is_ok(), "{:?}", v.problems);
    assert_eq!((v.first_seq, v.last_seq, v.entries), (1, 24, 24));
}

#[test]
fn bad_length_in_last_frame_is_a_torn_tail() {
    let dir = TempDir::new("badlen");
    journal_with(dir.path(), 3);
    flip_bit(&seg(dir.path(), 0), slot_offset(2) as u64 + 1, 3);
    let j = Journal::open(dir.path(), config()).unwrap();
    let d = j.recovery().dropped.unwrap();
    assert_eq!(d.problem, EntryProblem::BadLength { len: 128 | 1 << 11 });
    assert_eq!(j.next_seq(), 3);
}

#[test]
fn truncated_sealed_segment_is_reported_by_open_and_reader() {
    let dir = TempDir::new("trunc-sealed");
    journal_with(dir.path(), 25);
    let path = seg(dir.path(), 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(SEGMENT_BYTES - 100)
        .unwrap();
    for r in [
        Journal::open(dir.path(), config()).map(|_| ()),
        JournalReader::open(dir.path()).map(|_| ()),
    ] {
        match r {
            Err(JournalError::TruncatedSegment {
                path: p,
                expected_len,
                actual_len,
            }) => {
                assert_eq!(p, path);
                assert_eq!(expected_len, SEGMENT_BYTES);
                assert_eq!(actual_len, SEGMENT_BYTES - 100);
            }
            other => panic!("expected TruncatedSegment, got {other:?}"),
        }
    }
}

#[test]
fn truncated_last_segment_refused_or_reextended_with_loss_reported() {
    let dir = TempDir::new("trunc-last");
    journal_with(dir.path(), 27); // last segment 2 holds 21..=27
    let path = seg(dir.path(), 2);
    // Cut in the middle of slot 4 (seq 25).
    let cut = slot_offset(4) as u64 + 50;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    assert!(matches!(
        Journal::open(dir.path(), config()),
        Err(JournalError::TruncatedSegment { actual_len, .. }) if actual_len == cut
    ));
    let repair = JournalConfig {
        repair: TailRepair::TruncateAny,
        ..config()
    };
    let j = Journal::open(dir.path(), repair).unwrap();
    let r = *j.recovery();
    assert_eq!(r.extended_from, Some(cut));
    let d = r.dropped.expect("the cut entry is dropped");
    assert_eq!(d.first_seq, 25);
    assert_eq!(
        d.entries, 1,
        "only the half entry had data; 26 and 27 were cut off"
    );
    assert_eq!(r.last_seq, 24);
}

#[test]
fn missing_middle_and_missing_last_segments_are_named() {
    let dir = TempDir::new("missing");
    journal_with(dir.path(), 35); // segments 0..=3
    std::fs::remove_file(seg(dir.path(), 1)).unwrap();
    let expect_mid = |r: Result<(), JournalError>| match r {
        Err(JournalError::MissingSegment {
            expected_index: 1,
            found_index: Some(2),
        }) => {}
        other => panic!("expected MissingSegment 1, got {other:?}"),
    };
    expect_mid(Journal::open(dir.path(), config()).map(|_| ()));
    expect_mid(JournalReader::open(dir.path()).map(|_| ()));

    let dir = TempDir::new("missing-last");
    journal_with(dir.path(), 35);
    std::fs::remove_file(seg(dir.path(), 3)).unwrap();
    match Journal::open(dir.path(), config()) {
        Err(JournalError::MissingSegment {
            expected_index: 3,
            found_index: None,
        }) => {}
        other => panic!("expected the last segment reported missing, got {other:?}"),
    }
}

#[test]
fn segment_from_another_journal_is_named_with_both_ids() {
    let a = TempDir::new("foreign-a");
    let b = TempDir::new("foreign-b");
    let id_a = journal_with(a.path(), 25);
    let id_b = journal_with(b.path(), 25);
    assert_ne!(id_a, id_b);
    std::fs::copy(seg(b.path(), 1), seg(a.path(), 1)).unwrap();
    for r in [
        Journal::open(a.path(), config()).map(|_| ()),
        JournalReader::open(a.path()).map(|_| ()),
    ] {
        match r {
            Err(JournalError::ForeignSegment {
                path,
                expected,
                found,
            }) => {
                assert_eq!(path, seg(a.path(), 1));
                assert_eq!((expected, found), (id_a, id_b));
            }
            other => panic!("expected ForeignSegment, got {other:?}"),
        }
    }
}

#[test]
fn garbage_segment_and_damaged_id_file_are_refused() {
    let dir = TempDir::new("garbage");
    journal_with(dir.path(), 5);
    std::fs::write(seg(dir.path(), 1), vec![0xAAu8; 500]).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), config()),
        Err(JournalError::BadHeader {
            problem: HeaderProblem::BadMagic,
            ..
        })
    ));
    std::fs::write(seg(dir.path(), 1), [0u8; 10]).unwrap();
    assert!(matches!(
        JournalReader::open(dir.path()),
        Err(JournalError::BadHeader {
            problem: HeaderProblem::TooShort,
            ..
        })
    ));
    std::fs::remove_file(seg(dir.path(), 1)).unwrap();
    // A flipped bit in a header field.
    flip_bit(&seg(dir.path(), 0), 33, 2);
    assert!(matches!(
        Journal::open(dir.path(), config()),
        Err(JournalError::BadHeader {
            problem: HeaderProblem::Crc,
            ..
        })
    ));
    flip_bit(&dir.path().join("journal.id"), 10, 1);
    assert!(matches!(
        Journal::open(dir.path(), config()),
        Err(JournalError::BadIdFile(_))
    ));
}

#[test]
fn second_writer_is_refused_and_missing_journal_not_created_when_asked_not_to() {
    let dir = TempDir::new("locked");
    let j = Journal::open(dir.path(), config()).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), config()),
        Err(JournalError::Locked(_))
    ));
    drop(j);
    assert!(Journal::open(dir.path(), config()).is_ok());
    let none = TempDir::new("absent");
    let no_create = JournalConfig {
        create: false,
        ..config()
    };
    assert!(matches!(
        Journal::open(none.path(), no_create),
        Err(JournalError::NotFound(_))
    ));
    assert!(matches!(
        JournalReader::open(none.path()),
        Err(JournalError::NotFound(_)) | Err(JournalError::Io { .. })
    ));
    assert!(matches!(
        Journal::open(
            none.path(),
            JournalConfig {
                segment_bytes: 100,
                ..config()
            }
        ),
        Err(JournalError::Config(_))
    ));
}
