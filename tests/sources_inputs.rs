//! File replay through `memmap2`, the stdin-style stream reader, and
//! pacing.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use ebbflow::sources::k8s::{DecodeError, Decoded, DecoderConfig, WatchDecoder};
use ebbflow::sources::pace::{Pace, Pacer};
use ebbflow::sources::record::Kind;
use ebbflow::sources::replay::{
    replay_bytes, replay_reader, split_value, MappedFile, ReplayError, Split,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap()
}

fn pod(name: &str, rv: u64, ts: &str) -> String {
    format!(
        r#"{{"type":"ADDED","object":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"default","resourceVersion":"{rv}","creationTimestamp":"{ts}"}}}}}}"#
    )
}

/// NDJSON watch lines, a pretty-printed multi-line event, junk, and a
/// truncated tail — what `kubectl … -o json` plus a broken pipe can give.
fn mixed_stream() -> Vec<u8> {
    let mut s = fixture("kubeclient__watch_stream.json");
    if !s.ends_with(b"\n") {
        s.push(b'\n');
    }
    s.extend_from_slice(&fixture("kubeclient__node_notice.json"));
    s.extend_from_slice(b"\nthis is not json\n");
    s.extend_from_slice(pod("tail", 2000, "2026-01-01T00:00:00Z").as_bytes());
    s.extend_from_slice(b"\n  {\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"");
    s
}

#[derive(Debug, PartialEq)]
enum Out {
    Ok(Kind, u64),
    Err(DecodeError),
}

fn outcome(r: Result<Decoded, DecodeError>) -> Out {
    match r {
        Ok(d) => Out::Ok(d.record().kind, d.record().resource_version),
        Err(e) => Out::Err(e),
    }
}

fn expected_mixed() -> Vec<Out> {
    vec![
        Out::Ok(Kind::Pod, 1389),
        Out::Ok(Kind::Pod, 1390),
        Out::Ok(Kind::Pod, 1398),
        Out::Ok(Kind::Node, 367410),
        Out::Err(DecodeError::NotJson {
            offset: 0,
            byte: b't',
        }),
        Out::Ok(Kind::Pod, 2000),
    ]
}

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ebbflow-{}-{tag}.json", std::process::id()))
}

#[test]
fn split_value_handles_strings_escapes_and_junk() {
    let b = br#" {"a":"}\"{","b":[1,{"c":2}]}  [3] x y
{"#;
    assert_eq!(split_value(b, 0), Split::Value { start: 1, end: 29 });
    assert_eq!(split_value(b, 29), Split::Value { start: 31, end: 34 });
    assert_eq!(split_value(b, 34), Split::Junk { start: 35, end: 38 });
    assert_eq!(split_value(b, 38), Split::Incomplete { start: 39 });
    assert_eq!(split_value(b"  \n\t", 0), Split::End);
}

#[test]
fn mapped_file_replays_ndjson_pretty_and_bad_input() {
    let path = temp_path("mixed");
    let stream = mixed_stream();
    std::fs::write(&path, &stream).unwrap();
    let file = MappedFile::open(&path).unwrap();
    assert_eq!(file.bytes(), &stream[..]);
    let mut d = WatchDecoder::default();
    let mut outs = Vec::new();
    let mut offsets = Vec::new();
    let s = file.replay(&mut d, Pace::FlatOut, |v, r| {
        offsets.push(v.offset);
        assert_eq!(
            v.bytes,
            &stream[v.offset as usize..v.offset as usize + v.bytes.len()]
        );
        outs.push(outcome(r));
    });
    std::fs::remove_file(&path).unwrap();
    let mut want = expected_mixed();
    assert!(
        matches!(outs.last(), Some(Out::Err(DecodeError::Truncated { .. }))),
        "{outs:?}"
    );
    outs.pop();
    want.truncate(6);
    assert_eq!(outs, want);
    assert_eq!(s.values, 7);
    assert_eq!(s.errors, 2);
    assert_eq!(s.bytes, stream.len() as u64);
    assert_eq!(offsets[0], 0);
    // The pretty-printed event starts right after the three NDJSON lines.
    let nd = fixture("kubeclient__watch_stream.json");
    assert_eq!(
        offsets[3],
        nd.len() as u64 + u64::from(!nd.ends_with(b"\n"))
    );
    assert_eq!(d.stats().errors.total(), 2);
    assert_eq!(d.resume_version(), Some("2000"));
}

#[test]
fn empty_and_missing_files() {
    let path = temp_path("empty");
    std::fs::write(&path, b"").unwrap();
    let file = MappedFile::open(&path).unwrap();
    let mut d = WatchDecoder::default();
    let s = file.replay(&mut d, Pace::FlatOut, |_, _| panic!("no values"));
    assert_eq!(s.values, 0);
    std::fs::remove_file(&path).unwrap();
    let err = MappedFile::open(temp_path("does-not-exist")).unwrap_err();
    assert!(
        matches!(err, ReplayError::Map { ref source, .. } if source.kind() == io::ErrorKind::NotFound)
    );
}

/// A reader that hands out at most `n` bytes per read, like a pipe.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

#[test]
fn stream_reader_matches_file_replay_for_every_read_size() {
    let stream = mixed_stream();
    for n in [1, 7, 64, 4096, 1 << 20] {
        let mut d = WatchDecoder::default();
        let mut outs = Vec::new();
        let mut offsets = Vec::new();
        let s = replay_reader(
            Trickle { data: &stream, n },
            &mut d,
            Pace::FlatOut,
            |v, r| {
                offsets.push(v.offset);
                outs.push(outcome(r));
            },
        )
        .unwrap();
        let mut d2 = WatchDecoder::default();
        let mut outs2 = Vec::new();
        let mut offsets2 = Vec::new();
        replay_bytes(&stream, &mut d2, Pace::FlatOut, |v, r| {
            offsets2.push(v.offset);
            outs2.push(outcome(r));
        });
        assert_eq!(outs, outs2, "read size {n}");
        assert_eq!(offsets, offsets2, "read size {n}");
        assert_eq!(s.values, 7);
        assert_eq!(s.bytes, stream.len() as u64);
    }
}

#[test]
fn oversize_values_are_reported_and_skipped() {
    let cfg = DecoderConfig {
        max_object_bytes: 2000,
        ..DecoderConfig::default()
    };
    let big = pod(&"x".repeat(200), 7, "2026-01-01T00:00:00Z").replace(
        r#""metadata""#,
        &format!(r#""pad":"{}","metadata""#, "y".repeat(5000)),
    );
    let stream = format!(
        "{}\n{big}\n{}\n",
        pod("a", 1, "2026-01-01T00:00:00Z"),
        pod("b", 2, "2026-01-01T00:00:00Z")
    );
    let check = |outs: Vec<Out>| {
        assert_eq!(outs.len(), 3, "{outs:?}");
        assert_eq!(outs[0], Out::Ok(Kind::Pod, 1));
        assert!(
            matches!(outs[1], Out::Err(DecodeError::TooLarge { limit: 2000, .. })),
            "{outs:?}"
        );
        assert_eq!(outs[2], Out::Ok(Kind::Pod, 2));
    };
    let mut d = WatchDecoder::new(cfg);
    let mut outs = Vec::new();
    replay_bytes(stream.as_bytes(), &mut d, Pace::FlatOut, |_, r| {
        outs.push(outcome(r))
    });
    check(outs);
    assert_eq!(d.stats().errors.total(), 1);
    let mut d = WatchDecoder::new(cfg);
    let mut outs = Vec::new();
    replay_reader(
        Trickle {
            data: stream.as_bytes(),
            n: 333,
        },
        &mut d,
        Pace::FlatOut,
        |_, r| outs.push(outcome(r)),
    )
    .unwrap();
    check(outs);
}

#[test]
fn pacer_deadlines() {
    let mut p = Pacer::new(Pace::Rate(1000.0));
    let due: Vec<_> = (0..3).map(|_| p.due(0)).collect();
    assert_eq!(
        due,
        [
            Some(Duration::ZERO),
            Some(Duration::from_millis(1)),
            Some(Duration::from_millis(2))
        ]
    );
    let mut p = Pacer::new(Pace::Recorded { speedup: 2.0 });
    let t0 = 1_000_000_000_000;
    assert_eq!(p.due(t0), Some(Duration::ZERO));
    assert_eq!(p.due(t0 + 40_000_000), Some(Duration::from_millis(20)));
    assert_eq!(p.due(0), None, "no timestamp: at once");
    assert_eq!(p.due(t0 + 10), None, "earlier than the previous: at once");
    assert_eq!(p.due(t0 + 100_000_000), Some(Duration::from_millis(50)));
    let mut p = Pacer::new(Pace::FlatOut);
    assert_eq!(p.due(t0), None);
    let mut p = Pacer::new(Pace::Rate(0.0));
    assert_eq!(p.due(t0), None);
}

#[test]
fn replay_at_recorded_rate_takes_the_recorded_time() {
    // Three pods created 0, 30 and 60 ms apart; replayed at the recorded
    // rate the last one cannot come out before 60 ms.
    let stream = [
        pod("a", 1, "2026-01-01T00:00:00.000Z"),
        pod("b", 2, "2026-01-01T00:00:00.030Z"),
        pod("c", 3, "2026-01-01T00:00:00.060Z"),
    ]
    .join("\n");
    let mut d = WatchDecoder::default();
    let t = Instant::now();
    let s = replay_bytes(
        stream.as_bytes(),
        &mut d,
        Pace::Recorded { speedup: 1.0 },
        |_, r| {
            assert!(r.is_ok());
        },
    );
    assert_eq!(s.values, 3);
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "{:?}",
        t.elapsed()
    );
    let mut d = WatchDecoder::default();
    let t = Instant::now();
    replay_bytes(stream.as_bytes(), &mut d, Pace::Rate(100.0), |_, _| {});
    assert!(
        t.elapsed() >= Duration::from_millis(20),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn an_unclosed_value_is_cut_at_the_limit_and_later_lines_decode() {
    let cfg = DecoderConfig {
        max_object_bytes: 2000,
        ..DecoderConfig::default()
    };
    let mut stream = String::from("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\n");
    for i in 0..40 {
        stream.push_str(&pod(&format!("p{i}"), 100 + i, "2026-01-01T00:00:00Z"));
        stream.push('\n');
    }
    let run_bytes = || {
        let mut d = WatchDecoder::new(cfg);
        let mut outs = Vec::new();
        replay_bytes(stream.as_bytes(), &mut d, Pace::FlatOut, |v, r| {
            outs.push((v.offset, outcome(r)))
        });
        outs
    };
    let outs = run_bytes();
    assert!(
        matches!(
            outs[0].1,
            Out::Err(DecodeError::TooLarge { limit: 2000, .. })
        ),
        "{outs:?}"
    );
    // Everything after the first newline past the limit decodes.
    let first_ok = outs[1].0 as usize;
    assert!(first_ok > 2000 && stream.as_bytes()[first_ok - 1] == b'\n');
    assert!(
        outs[1..]
            .iter()
            .all(|(_, o)| matches!(o, Out::Ok(Kind::Pod, _))),
        "{outs:?}"
    );
    assert_eq!(outs.last().unwrap().1, Out::Ok(Kind::Pod, 139));
    for n in [1, 100, 5000, 1 << 20] {
        let mut d = WatchDecoder::new(cfg);
        let mut outs2 = Vec::new();
        replay_reader(
            Trickle {
                data: stream.as_bytes(),
                n,
            },
            &mut d,
            Pace::FlatOut,
            |v, r| outs2.push((v.offset, outcome(r))),
        )
        .unwrap();
        assert_eq!(outs2, outs, "read size {n}");
    }
}
