//! Fuzz target for the Kubernetes watch decoder.
//!
//! Feeds arbitrary bytes to every entry point of `WatchDecoder`
//! (`decode_lines`, `decode_complete_lines`, `decode_event`,
//! `decode_object`, `decode_document`) under two configurations (the
//! defaults, and tight limits with unknown kinds accepted) and checks:
//!
//! - nothing panics;
//! - every outcome is counted exactly once: each `Err` in the matching
//!   `ErrorCounts` variant, each `Ok` in `by_kind` and in exactly one of
//!   `added/modified/deleted/bookmarks/relists/statuses`; line counters add
//!   up (`lines = empty_lines + callbacks`);
//! - error offsets lie inside the input (line offsets inside the line);
//! - records are well formed: dense `seq`, at most 8 fields, never
//!   `FIELDS_TRUNCATED` (the decoder pushes ≤ 8 per kind), every symbol
//!   resolves unless the record is flagged `SYMBOL_OVERFLOW`;
//! - `decode_complete_lines` consumes whole lines only and gives the same
//!   outcomes as `decode_lines` on the consumed prefix.
//!
//! Run (see docs/sources.md, "Fuzzing"):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run k8s_decode fuzz/seeds/k8s_decode -- -max_total_time=60`
#![no_main]

use ebbflow::sources::intern::{InternerConfig, Symbol};
use ebbflow::sources::k8s::{
    DecodeError, DecodeStats, Decoded, DecoderConfig, UnknownKinds, WatchDecoder,
};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record, RecordFlags};
use libfuzzer_sys::fuzz_target;

fn fixed_clock() -> i64 {
    1_700_000_000_000_000_000
}

fn configs() -> [DecoderConfig; 2] {
    let interner = InternerConfig {
        max_entries: 256,
        max_bytes: 16 << 10,
    };
    [
        DecoderConfig {
            interner,
            ..DecoderConfig::default()
        },
        DecoderConfig {
            max_depth: 6,
            max_object_bytes: 512,
            max_string_bytes: 16,
            unknown_kinds: UnknownKinds::Accept,
            interner: InternerConfig {
                max_entries: 40,
                max_bytes: 1024,
            },
        },
    ]
}

fn decoder(config: DecoderConfig) -> WatchDecoder {
    WatchDecoder::new(config).with_clock(fixed_clock)
}

/// Outcome counters of `s` that one decode outcome moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Totals {
    ok: u64,
    ops: u64,
    errors: u64,
}

fn totals(s: &DecodeStats) -> Totals {
    Totals {
        ok: s.decoded(),
        ops: s.added + s.modified + s.deleted + s.bookmarks + s.relists + s.statuses,
        errors: s.errors.total(),
    }
}

/// Checks that exactly one outcome, `r`, was counted between `before` and
/// `after`, in the right place.
fn check_counted(before: &DecodeStats, after: &DecodeStats, r: &Result<Decoded, DecodeError>) {
    let (b, a) = (totals(before), totals(after));
    match r {
        Ok(d) => {
            assert_eq!(a.ok, b.ok + 1, "Ok not counted in by_kind");
            assert_eq!(a.ops, b.ops + 1, "Ok not counted in one op counter");
            assert_eq!(a.errors, b.errors, "Ok counted as an error");
            let k = d.record().kind as usize;
            assert_eq!(after.by_kind[k], before.by_kind[k] + 1);
            let (bc, ac) = match d {
                Decoded::Change(rec) => match rec.op {
                    Op::Added => (before.added, after.added),
                    Op::Modified => (before.modified, after.modified),
                    Op::Deleted => (before.deleted, after.deleted),
                    op => panic!("Change with op {op:?}"),
                },
                Decoded::Bookmark(_) => (before.bookmarks, after.bookmarks),
                Decoded::Relist(_) => (before.relists, after.relists),
                Decoded::Status(_) => (before.statuses, after.statuses),
            };
            assert_eq!(ac, bc + 1);
        }
        Err(e) => {
            assert_eq!(a.errors, b.errors + 1, "error not counted: {e:?}");
            assert_eq!(a.ok, b.ok, "error counted as Ok");
            assert_eq!(a.ops, b.ops);
            // The variant's own counter moved.
            let mut one = ebbflow::sources::k8s::ErrorCounts::default();
            one.count(e);
            let diff = |f: fn(&ebbflow::sources::k8s::ErrorCounts) -> u64| {
                f(&after.errors) - f(&before.errors)
            };
            let fields: [fn(&ebbflow::sources::k8s::ErrorCounts) -> u64; 17] = [
                |c| c.empty,
                |c| c.too_large,
                |c| c.not_json,
                |c| c.truncated,
                |c| c.syntax,
                |c| c.invalid_escape,
                |c| c.invalid_utf8,
                |c| c.too_deep,
                |c| c.trailing_data,
                |c| c.not_an_object,
                |c| c.missing_field,
                |c| c.wrong_type,
                |c| c.number_out_of_range,
                |c| c.bad_timestamp,
                |c| c.unknown_event_type,
                |c| c.unknown_kind,
                |c| c.string_too_long,
            ];
            for f in fields {
                assert_eq!(diff(f), f(&one), "wrong counter for {e:?}");
            }
        }
    }
}

fn check_record(d: &WatchDecoder, rec: &Record, expected_seq: &mut u64) {
    assert_eq!(rec.seq, *expected_seq, "seq not dense");
    *expected_seq += 1;
    assert_eq!(rec.ingest_ns, fixed_clock());
    assert!(!rec.flags.contains(RecordFlags::FIELDS_TRUNCATED));
    assert_eq!(rec.dropped_fields(), 0);
    assert!(rec.fields().count() <= 8);
    assert!((rec.kind as usize) < Kind::COUNT);
    let overflow = rec.flags.contains(RecordFlags::SYMBOL_OVERFLOW);
    let mut syms = vec![rec.namespace, rec.name];
    for f in rec.fields() {
        if let FieldValue::Sym(s) = f.value {
            syms.push(s);
        }
    }
    // Labels: at most one of the symbol and the fallback hash; the symbol's
    // text is canonical (pairs sorted, no empty pair) and hashes like the set.
    assert!(rec.get(FieldId::Labels).is_none() || rec.get(FieldId::LabelsHash).is_none());
    if let Some(text) = rec
        .get(FieldId::Labels)
        .and_then(FieldValue::as_sym)
        .and_then(|s| d.resolve(s))
    {
        if !text.is_empty() {
            let pairs: Vec<&str> = text.split(',').collect();
            assert!(pairs.iter().all(|p| p.contains('=')), "{text:?}");
            assert!(
                pairs.windows(2).all(|w| {
                    let k = |p: &str| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()));
                    k(w[0]) <= k(w[1])
                }),
                "labels not sorted: {text:?}"
            );
            assert!(text.len() <= ebbflow::sources::labels::MAX_LABELS_BYTES);
        }
    }
    for s in syms {
        if s == Symbol::OVERFLOW {
            assert!(overflow, "overflow symbol without the flag");
        } else {
            assert!(d.resolve(s).is_some(), "symbol {s:?} does not resolve");
        }
    }
}

fn check_offset(e: &DecodeError, len: usize) {
    if let Some(off) = e.offset() {
        assert!(off <= len, "{e:?}: offset beyond the input of {len} bytes");
    }
}

type Outcome = (usize, usize, Result<Decoded, DecodeError>);

fn lines(data: &[u8], config: DecoderConfig) -> Vec<Outcome> {
    let mut d = decoder(config);
    let mut out = Vec::new();
    let before = *d.stats();
    let mut seq = 0;
    let mut last_end = 0usize;
    let mut events = Vec::new();
    let n = d.decode_lines(data, |line, r| {
        events.push((line.number, line.offset, line.bytes.len(), r))
    });
    // The callback cannot see the stats, so check the totals, then each
    // outcome.
    let after = *d.stats();
    assert_eq!(after.lines - before.lines, n);
    assert_eq!(
        after.lines - before.lines,
        after.empty_lines - before.empty_lines + events.len() as u64
    );
    let oks = events.iter().filter(|e| e.3.is_ok()).count() as u64;
    assert_eq!(totals(&after).ok - totals(&before).ok, oks);
    assert_eq!(totals(&after).ops - totals(&before).ops, oks);
    assert_eq!(
        totals(&after).errors - totals(&before).errors,
        events.len() as u64 - oks
    );
    let mut prev_number = 0;
    for (number, offset, len, r) in events {
        assert!(number > prev_number && number <= n);
        prev_number = number;
        assert!(offset >= last_end && offset + len <= data.len());
        assert!(!data[offset..offset + len].contains(&b'\n'));
        last_end = offset + len;
        match &r {
            Ok(dec) => check_record(&d, dec.record(), &mut seq),
            Err(e) => check_offset(e, len),
        }
        out.push((offset, len, r));
    }
    out
}

fn complete_lines(data: &[u8], config: DecoderConfig, all: &[Outcome]) {
    let mut d = decoder(config);
    let mut got: Vec<Outcome> = Vec::new();
    let consumed = d.decode_complete_lines(data, |line, r| {
        got.push((line.offset, line.bytes.len(), r));
    });
    assert!(consumed <= data.len());
    assert!(consumed == 0 || data[consumed - 1] == b'\n');
    // Every line that `decode_lines` saw and that ends before `consumed`
    // has the same outcome here.
    let prefix: Vec<&Outcome> = all.iter().filter(|o| o.0 + o.1 < consumed).collect();
    assert_eq!(prefix.len(), got.len(), "complete lines differ in number");
    for (a, b) in prefix.iter().zip(&got) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_eq!(a.2, b.2, "outcome differs on line at {}", a.0);
    }
}

fn single(data: &[u8], config: DecoderConfig) {
    let mut d = decoder(config);
    let mut seq = 0;

    let before = *d.stats();
    let r = d.decode_event(data);
    check_counted(&before, d.stats(), &r);
    match &r {
        Ok(dec) => check_record(&d, dec.record(), &mut seq),
        Err(e) => check_offset(e, data.len()),
    }

    for op in [Op::Added, Op::Deleted] {
        let before = *d.stats();
        let r = d.decode_object(data, op);
        check_counted(&before, d.stats(), &r);
        match &r {
            Ok(dec) => check_record(&d, dec.record(), &mut seq),
            Err(e) => check_offset(e, data.len()),
        }
    }

    let before = *d.stats();
    let mut items = Vec::new();
    let r = d.decode_document(data, Op::Added, |r| items.push(r));
    let after = *d.stats();
    match r {
        Ok(summary) => {
            assert_eq!(summary.objects, items.len());
            let errs = items.iter().filter(|r| r.is_err()).count();
            assert_eq!(summary.errors, errs);
            assert_eq!(totals(&after).errors - totals(&before).errors, errs as u64);
            assert_eq!(
                totals(&after).ok - totals(&before).ok,
                (items.len() - errs) as u64
            );
            for item in &items {
                match item {
                    Ok(dec) => check_record(&d, dec.record(), &mut seq),
                    Err(e) => check_offset(e, data.len()),
                }
            }
        }
        Err(e) => {
            assert!(items.is_empty(), "document error after items were reported");
            assert_eq!(totals(&after).errors, totals(&before).errors + 1);
            assert_eq!(totals(&after).ok, totals(&before).ok);
            check_offset(&e, data.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for config in configs() {
        let all = lines(data, config);
        complete_lines(data, config, &all);
        single(data, config);
    }
});
