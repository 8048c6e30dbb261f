//! Helpers shared by the journal tests (`#[path = "journal_common.rs"] mod common;`):
//! a self-removing temporary directory and deterministic records. As a test target of its
//! own it checks that the records it generates are distinct and round-trip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ebbflow::sources::intern::Symbol;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

/// A directory under `std::env::temp_dir()`, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ebbflow-journal-{name}-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A SplitMix64 step (deterministic, seedable).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Base of the generated `ingest_ns` values.
pub const INGEST_BASE_NS: i64 = 1_700_000_000_000_000_000;

/// The record the tests journal as entry number `i` (content depends only on `i`;
/// `ingest_ns` grows with `i`, 1 µs apart).
pub fn rec(i: u64) -> Record {
    let kinds = Kind::ALL;
    let ops = [
        Op::Added,
        Op::Modified,
        Op::Deleted,
        Op::Bookmark,
        Op::Error,
    ];
    let mut r = Record::new(
        kinds[(i % kinds.len() as u64) as usize],
        ops[(i % 5) as usize],
    );
    r.key = mix(i);
    r.seq = i;
    r.source_ns = INGEST_BASE_NS - 5_000 + (mix(i ^ 0xabc) % 10_000) as i64 + i as i64 * 1_000;
    r.ingest_ns = INGEST_BASE_NS + i as i64 * 1_000;
    r.resource_version = i * 3;
    r.namespace = Symbol::from_id((i % 7) as u32);
    r.name = Symbol::from_id((i % 1013) as u32);
    r.push(FieldId::RestartsTotal, FieldValue::I64(i as i64));
    r.push(FieldId::Value, FieldValue::F64(i as f64 * 0.5));
    if i.is_multiple_of(2) {
        r.push(FieldId::Ready, FieldValue::Bool(i.is_multiple_of(4)));
    }
    r
}

#[test]
fn generated_records_differ_and_grow_in_ingest_time() {
    assert_ne!(rec(1), rec(2));
    assert_eq!(rec(5), rec(5));
    assert!(rec(2).ingest_ns > rec(1).ingest_ns);
}
