//! The `ebbflow-journal` inspection tool: lists, counts, verifies (exit 1 and the damage
//! named on a flipped bit) and dumps a range.
//!
//! Run: `cargo test --test journal_tool`

#[path = "journal_common.rs"]
mod common;

use std::os::unix::fs::FileExt;
use std::process::Command;

use common::{rec, TempDir};
use ebbflow::journal::format::{segment_name, slot_offset, ENTRY_LEN};
use ebbflow::journal::{Durability, Journal, JournalConfig};

fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ebbflow-journal"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn tool_lists_counts_verifies_and_dumps() {
    let dir = TempDir::new("tool");
    let mut j = Journal::open(
        dir.path(),
        JournalConfig {
            segment_bytes: 64 + 10 * ENTRY_LEN as u64,
            durability: Durability::Os,
            ..JournalConfig::default()
        },
    )
    .unwrap();
    for i in 1..=25 {
        j.append(&rec(i)).unwrap();
    }
    drop(j);
    let d = dir.path().to_str().unwrap();

    let (code, out, _) = tool(&["segments", d]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2 + 3, "{out}");
    let seg1: Vec<&str> = out.lines().nth(3).unwrap().split_whitespace().collect();
    let len = (64 + 10 * ENTRY_LEN).to_string();
    assert_eq!(seg1[..5], ["1", "11", "10", len.as_str(), "true"], "{out}");

    let (code, out, _) = tool(&["count", d]);
    assert_eq!(
        (code, out.trim()),
        (0, "entries 25 first_seq 1 last_seq 25")
    );

    let (code, out, _) = tool(&["verify", d]);
    assert_eq!(code, 0);
    assert!(out.starts_with("OK segments 3 entries 25"), "{out}");

    let (code, out, _) = tool(&["dump", d, "--from", "12", "--count", "3", "--json"]);
    assert_eq!(code, 0);
    let seqs: Vec<u64> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["record_seq"], v["seq"]);
            assert_eq!(v["ingest_ns"], rec(v["seq"].as_u64().unwrap()).ingest_ns);
            v["seq"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![12, 13, 14]);

    let (code, out, _) = tool(&["dump", d, "--from", "24"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2);
    assert!(out.starts_with("24\tRecord {"), "{out}");

    // Damage: a flipped bit in entry 5.
    let seg0 = dir.path().join(segment_name(0, &mut [0u8; 24]));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg0)
        .unwrap();
    let at = slot_offset(4) as u64 + 100;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
    let (code, out, _) = tool(&["verify", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DAMAGED segment 0 offset"), "{out}");
    assert!(out.contains("(seq 5): CRC mismatch"), "{out}");
    let (code, out, err) = tool(&["count", d]);
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "entries 4 first_seq 1 last_seq 4");
    assert!(err.contains("CRC mismatch"), "{err}");

    // Bad usage and a missing journal.
    assert_eq!(tool(&["frobnicate", d]).0, 2);
    assert_eq!(tool(&["dump", d, "--from"]).0, 2);
    let (code, _, err) = tool(&["count", "/nonexistent/ebbflow-journal"]);
    assert_eq!(code, 1);
    assert!(err.contains("no journal here"), "{err}");
}
