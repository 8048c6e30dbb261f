//! Bad input to the Kubernetes decoder: one test per class. Each yields a
//! specific `DecodeError`, is counted in `DecodeStats`, never panics, and
//! never affects the next line.
//!
//! Run: `cargo test --test sources_bad_input`

use ebbflow::sources::k8s::{
    DecodeError, Decoded, DecoderConfig, JsonType, UnknownKinds, WatchDecoder, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_OBJECT_BYTES,
};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");

/// The three lines of the kubeclient watch stream (ADDED, MODIFIED, DELETED
/// of pod `php`).
fn watch_lines() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{FIXTURES}kubeclient__watch_stream.json")).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// Decodes `input` as lines; returns per line `Ok(resource_version)` or the error.
fn run(d: &mut WatchDecoder, input: &[u8]) -> Vec<Result<u64, DecodeError>> {
    let mut out = Vec::new();
    d.decode_lines(input, |_, r| {
        out.push(r.map(|d| d.record().resource_version))
    });
    out
}

/// `bad` between two good lines: the good ones must decode.
fn sandwiched(d: &mut WatchDecoder, bad: &[u8]) -> DecodeError {
    let lines = watch_lines();
    let mut input = lines[0].clone().into_bytes();
    input.push(b'\n');
    input.extend_from_slice(bad);
    input.push(b'\n');
    input.extend_from_slice(lines[2].as_bytes());
    let out = run(d, &input);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0], Ok(1389));
    assert_eq!(out[2], Ok(1398));
    out[1].unwrap_err()
}

#[test]
fn truncated_lines() {
    let line = &watch_lines()[1];
    let mut d = WatchDecoder::default();
    // Cut in the middle of the object, inside a string, right after a key.
    for cut in [line.len() / 2, 30, 8, line.len() - 1] {
        let e = sandwiched(&mut d, &line.as_bytes()[..cut]);
        assert_eq!(e, DecodeError::Truncated { offset: cut }, "cut at {cut}");
    }
    assert_eq!(d.stats().errors.truncated, 4);
    // Every prefix of a real line fails cleanly (and never panics).
    let mut d = WatchDecoder::default();
    for cut in 1..line.len() {
        let r = d.decode_event(&line.as_bytes()[..cut]);
        assert!(
            matches!(r, Err(DecodeError::Truncated { offset }) if offset == cut),
            "prefix {cut}: {r:?}"
        );
    }
    // A truncated final line without a newline.
    let mut d = WatchDecoder::default();
    let input = format!("{}\n{}", watch_lines()[0], &line[..100]);
    assert_eq!(
        run(&mut d, input.as_bytes())[1],
        Err(DecodeError::Truncated { offset: 100 })
    );
}

#[test]
fn invalid_utf8_in_strings() {
    let line = watch_lines()[1].clone().into_bytes();
    let at = line.windows(5).position(|w| w == b"\"php\"").unwrap() + 2;
    let mut d = WatchDecoder::default();
    for bad in [
        &[0xff][..],
        &[0xc3, 0x28],
        &[0xed, 0xa0, 0x80],
        &[0xf4, 0x90, 0x80, 0x80],
        &[0xc0, 0xaf],
    ] {
        let mut l = line.clone();
        l.splice(at..at + 1, bad.iter().copied());
        let e = sandwiched(&mut d, &l);
        assert_eq!(e, DecodeError::InvalidUtf8 { offset: at }, "{bad:x?}");
    }
    // Invalid UTF-8 inside a skipped value is caught as well.
    let mut l = line.clone();
    let img = l.windows(7).position(|w| w == b"dockerf").unwrap();
    l[img] = 0x80;
    assert_eq!(
        sandwiched(&mut d, &l),
        DecodeError::InvalidUtf8 { offset: img }
    );
    assert_eq!(d.stats().errors.invalid_utf8, 6);
}

#[test]
fn deep_nesting() {
    let nested = |depth: usize| {
        format!(
            r#"{{"type":"ADDED","object":{{"kind":"Pod","metadata":{{"name":"p"}},"spec":{{"x":{}1{}}}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // Envelope, object and spec use 3 levels.
    let ok = nested(DEFAULT_MAX_DEPTH as usize - 3);
    let deep = nested(DEFAULT_MAX_DEPTH as usize - 2);
    let mut d = WatchDecoder::default();
    assert!(d.decode_event(ok.as_bytes()).is_ok());
    let at = deep.find('[').unwrap() + DEFAULT_MAX_DEPTH as usize - 3;
    assert_eq!(
        sandwiched(&mut d, deep.as_bytes()),
        DecodeError::TooDeep {
            offset: at,
            limit: DEFAULT_MAX_DEPTH
        }
    );
    // 100,000 levels: no stack overflow, the limit stops it early.
    let very = "[".repeat(100_000);
    assert_eq!(
        sandwiched(&mut d, very.as_bytes()),
        DecodeError::TooDeep {
            offset: DEFAULT_MAX_DEPTH as usize,
            limit: DEFAULT_MAX_DEPTH
        }
    );
    let very = format!("{{\"type\":{}", "[".repeat(100_000));
    assert!(matches!(
        sandwiched(&mut d, very.as_bytes()),
        DecodeError::TooDeep { .. }
    ));
    // A configured limit.
    let mut shallow = WatchDecoder::new(DecoderConfig {
        max_depth: 4,
        ..DecoderConfig::default()
    });
    assert!(matches!(
        shallow.decode_event(watch_lines()[0].as_bytes()),
        Err(DecodeError::TooDeep { limit: 4, .. })
    ));
    assert_eq!(d.stats().errors.too_deep, 3);
}

#[test]
fn oversize_objects() {
    let line = watch_lines()[0].clone();
    let limit = line.len() - 1;
    let mut d = WatchDecoder::new(DecoderConfig {
        max_object_bytes: limit,
        ..DecoderConfig::default()
    });
    let mut input = line.clone();
    input.push('\n');
    input.push_str(r#"{"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"small","resourceVersion":"5"}}}"#);
    let out = run(&mut d, input.as_bytes());
    assert_eq!(
        out[0],
        Err(DecodeError::TooLarge {
            len: line.len(),
            limit
        })
    );
    assert_eq!(out[1], Ok(5));
    // Exactly at the limit is accepted; trailing whitespace does not count.
    let mut exact = WatchDecoder::new(DecoderConfig {
        max_object_bytes: line.len(),
        ..DecoderConfig::default()
    });
    let padded = format!("{line}   \r\n{line}");
    assert_eq!(run(&mut exact, padded.as_bytes()), [Ok(1389), Ok(1389)]);
    // Whole-buffer entry points check the size up front.
    assert_eq!(
        d.decode_event(line.as_bytes()),
        Err(DecodeError::TooLarge {
            len: line.len(),
            limit
        })
    );
    // The default limit (1.5 MiB) with a 2 MiB annotation.
    let mut d = WatchDecoder::default();
    let big = line.replacen(
        "\"labels\"",
        &format!(
            "\"annotations\":{{\"blob\":\"{}\"}},\"labels\"",
            "x".repeat(2 << 20)
        ),
        1,
    );
    let e = sandwiched(&mut d, big.as_bytes());
    assert_eq!(
        e,
        DecodeError::TooLarge {
            len: big.len(),
            limit: DEFAULT_MAX_OBJECT_BYTES
        }
    );
    assert_eq!(d.stats().errors.too_large, 1);
}

#[test]
fn unknown_kinds() {
    let widget = r#"{"type":"ADDED","object":{"apiVersion":"e2e.opentelemetry.io/v1","kind":"Widget","metadata":{"name":"w","namespace":"default"},"spec":{"replicas":"three"}}}"#;
    let mut d = WatchDecoder::default();
    let at = widget.find("\"Widget\"").unwrap();
    assert_eq!(
        sandwiched(&mut d, widget.as_bytes()),
        DecodeError::UnknownKind { offset: at }
    );
    assert_eq!(d.stats().errors.unknown_kind, 1);
    // With UnknownKinds::Accept the same line decodes; a string
    // `spec.replicas` only matters for Deployments.
    let mut a = WatchDecoder::new(DecoderConfig {
        unknown_kinds: UnknownKinds::Accept,
        ..DecoderConfig::default()
    });
    let r = *a.decode_event(widget.as_bytes()).unwrap().record();
    assert_eq!(r.kind, Kind::Unknown);
    let kind_name = r
        .get(FieldId::KindName)
        .and_then(FieldValue::as_sym)
        .unwrap();
    assert_eq!(a.resolve(kind_name), Some("Widget"));
    // The same body as a Deployment is a type error.
    let dep = widget.replace("Widget", "Deployment");
    assert_eq!(
        a.decode_event(dep.as_bytes()),
        Err(DecodeError::WrongType {
            field: "spec.replicas",
            offset: dep.find("\"three\"").unwrap(),
            expected: JsonType::Integer,
            found: JsonType::String,
        })
    );
}

#[test]
fn wrong_field_types() {
    let line = watch_lines()[0].clone();
    let mut d = WatchDecoder::default();
    let pod = |status: &str| {
        format!(
            r#"{{"type":"MODIFIED","object":{{"kind":"Pod","metadata":{{"name":"p"}},"status":{status}}}}}"#
        )
    };
    let cases: [(String, &str, JsonType, JsonType, &str); 6] = [
        (
            pod(r#"{"containerStatuses":[{"restartCount":"3"}]}"#),
            "status.containerStatuses[].restartCount",
            JsonType::Integer,
            JsonType::String,
            "\"3\"",
        ),
        (
            pod(r#"{"containerStatuses":[{"restartCount":2.5}]}"#),
            "status.containerStatuses[].restartCount",
            JsonType::Integer,
            JsonType::Float,
            "2.5",
        ),
        (
            pod(r#"{"phase":{"running":true}}"#),
            "status.phase",
            JsonType::String,
            JsonType::Object,
            "{\"running\"",
        ),
        (
            pod(r#"{"conditions":{"Ready":"True"}}"#),
            "status.conditions",
            JsonType::Array,
            JsonType::Object,
            "{\"Ready\"",
        ),
        (
            line.replace("\"name\":\"php\"", "\"name\":42"),
            "metadata.name",
            JsonType::String,
            JsonType::Integer,
            "42",
        ),
        (
            line.replace(
                "\"labels\":{\"name\":\"foo\"}",
                "\"labels\":{\"name\":[\"foo\"]}",
            ),
            "metadata.labels",
            JsonType::String,
            JsonType::Array,
            "[\"foo\"]",
        ),
    ];
    for (input, field, expected, found, at) in &cases {
        let offset = input.find(at).unwrap();
        assert_eq!(
            sandwiched(&mut d, input.as_bytes()),
            DecodeError::WrongType {
                field,
                offset,
                expected: *expected,
                found: *found
            },
            "{input}"
        );
    }
    // An integer too large for i64.
    let big = pod(r#"{"containerStatuses":[{"restartCount":9223372036854775808}]}"#);
    assert_eq!(
        sandwiched(&mut d, big.as_bytes()),
        DecodeError::NumberOutOfRange {
            field: "status.containerStatuses[].restartCount",
            offset: big.find("9223").unwrap()
        }
    );
    // A timestamp that is not RFC 3339.
    let ts = line.replace("2015-02-09T05:39:19-05:00", "yesterday");
    assert_eq!(
        sandwiched(&mut d, ts.as_bytes()),
        DecodeError::BadTimestamp {
            field: "metadata.creationTimestamp",
            offset: ts.find("\"yesterday").unwrap()
        }
    );
    let st = d.stats().errors;
    assert_eq!(
        (st.wrong_type, st.number_out_of_range, st.bad_timestamp),
        (6, 1, 1)
    );
}

#[test]
fn not_json_at_all() {
    let mut d = WatchDecoder::default();
    for (bad, byte) in [
        (&b"hello world"[..], b'h'),
        (b"<html><body>502 Bad Gateway</body></html>", b'<'),
        (b"ADDED pod/php", b'A'),
        (b"\x00\x01\x02", 0),
        (b"\xef\xbb\xbf{}", 0xef),
    ] {
        assert_eq!(
            sandwiched(&mut d, bad),
            DecodeError::NotJson { offset: 0, byte }
        );
    }
    assert_eq!(
        sandwiched(&mut d, b"   # comment"),
        DecodeError::NotJson {
            offset: 3,
            byte: b'#'
        }
    );
    assert_eq!(d.stats().errors.not_json, 6);
}

#[test]
fn json_that_is_not_an_object() {
    let mut d = WatchDecoder::default();
    for (bad, found) in [
        (&b"[1,2,3]"[..], JsonType::Array),
        (b"42", JsonType::Integer),
        (b"-1.5e3", JsonType::Float),
        (b"\"ADDED\"", JsonType::String),
        (b"null", JsonType::Null),
        (b"true", JsonType::Bool),
    ] {
        assert_eq!(
            sandwiched(&mut d, bad),
            DecodeError::NotAnObject { offset: 0, found }
        );
    }
    assert_eq!(d.stats().errors.not_an_object, 6);
}

#[test]
fn json_syntax_errors() {
    let line = watch_lines()[0].clone();
    let mut d = WatchDecoder::default();
    let cases = [
        (line.replacen("\"type\":", "\"type\" ", 1), "':'"),
        (line.replacen("\"Pod\",", "\"Pod\",,", 1), "an object key"),
        (line.replacen("80,", "80 81,", 1), "',' or '}'"),
        (
            line.replacen("\"protocol\":\"TCP\"}]", "\"protocol\":\"TCP\"},]", 1),
            "a JSON value",
        ),
        (line.replacen(":30}", ":030}", 1), "',' or '}'"),
        (
            line.replacen("null", "nul", 1),
            "a JSON literal (true/false/null)",
        ),
        (
            line.replacen("\"php\"", "\"p\thp\"", 1),
            "a string character (control bytes must be escaped)",
        ),
    ];
    for (input, expected) in &cases {
        match sandwiched(&mut d, input.as_bytes()) {
            DecodeError::Syntax {
                expected: e,
                offset,
            } => {
                assert_eq!(e, *expected, "{input}");
                assert!(offset < input.len());
            }
            other => panic!("{input}: {other:?}"),
        }
    }
    // Invalid escapes and lone surrogates.
    for esc in [r"\x", r"\u12G4", r"\ud800", r"\udc00x", r"\ud800\u0041"] {
        let input = line.replacen("\"php\"", &format!("\"p{esc}hp\""), 1);
        let at = input.find("\"p\\").unwrap() + 2;
        assert_eq!(
            sandwiched(&mut d, input.as_bytes()),
            DecodeError::InvalidEscape { offset: at },
            "{esc}"
        );
    }
    // Trailing data after a complete value.
    let input = format!("{line} {{}}");
    assert_eq!(
        sandwiched(&mut d, input.as_bytes()),
        DecodeError::TrailingData {
            offset: line.len() + 1
        }
    );
    let st = d.stats().errors;
    assert_eq!((st.syntax, st.invalid_escape, st.trailing_data), (7, 5, 1));
}

#[test]
fn missing_fields_and_unknown_event_types() {
    let mut d = WatchDecoder::default();
    assert_eq!(
        sandwiched(
            &mut d,
            br#"{"object":{"kind":"Pod","metadata":{"name":"p"}}}"#
        ),
        DecodeError::MissingField { field: "type" }
    );
    assert_eq!(
        sandwiched(&mut d, br#"{"type":"ADDED"}"#),
        DecodeError::MissingField { field: "object" }
    );
    assert_eq!(
        sandwiched(&mut d, br#"{"type":"ADDED","object":null}"#),
        DecodeError::MissingField { field: "object" }
    );
    assert_eq!(
        sandwiched(
            &mut d,
            br#"{"type":"ADDED","object":{"metadata":{"name":"p"}}}"#
        ),
        DecodeError::MissingField { field: "kind" }
    );
    assert_eq!(
        sandwiched(&mut d, br#"{"type":"UPSERTED","object":{"kind":"Pod"}}"#),
        DecodeError::UnknownEventType { offset: 8 }
    );
    assert_eq!(
        sandwiched(&mut d, br#"{"type":"added","object":{"kind":"Pod"}}"#),
        DecodeError::UnknownEventType { offset: 8 }
    );
    assert_eq!(
        sandwiched(&mut d, br#"{"type":1,"object":{"kind":"Pod"}}"#),
        DecodeError::WrongType {
            field: "type",
            offset: 8,
            expected: JsonType::String,
            found: JsonType::Integer
        }
    );
    let st = d.stats().errors;
    assert_eq!(
        (st.missing_field, st.unknown_event_type, st.wrong_type),
        (4, 2, 1)
    );
}

#[test]
fn overlong_strings() {
    let mut d = WatchDecoder::new(DecoderConfig {
        max_string_bytes: 16,
        ..DecoderConfig::default()
    });
    let line = format!(
        r#"{{"type":"ADDED","object":{{"kind":"Pod","metadata":{{"name":"{}"}}}}}}"#,
        "n".repeat(17)
    );
    assert_eq!(
        sandwiched(&mut d, line.as_bytes()),
        DecodeError::StringTooLong {
            field: "metadata.name",
            offset: line.find("\"nnn").unwrap(),
            limit: 16
        }
    );
    // Escapes count after unescaping: 16 characters fit.
    let ok = line.replace(&"n".repeat(17), &"\\u006e".repeat(16));
    let r = *d.decode_event(ok.as_bytes()).unwrap().record();
    assert_eq!(d.resolve(r.name), Some("nnnnnnnnnnnnnnnn"));
}

#[test]
fn line_endings_and_empty_lines() {
    let lines = watch_lines();
    let input = format!(
        "\n{}\r\n\r\n   \n\t\r\n{}\r\n{}\n\n",
        lines[0], lines[1], lines[2]
    );
    let mut d = WatchDecoder::default();
    let mut seen = Vec::new();
    let n = d.decode_lines(input.as_bytes(), |l, r| {
        assert!(!l.bytes.ends_with(b"\n"));
        seen.push((l.number, r.unwrap().record().resource_version))
    });
    assert_eq!(seen, [(2, 1389), (6, 1390), (7, 1398)]);
    assert_eq!(n, 8);
    let st = d.stats();
    assert_eq!((st.lines, st.empty_lines, st.errors.total()), (8, 5, 0));
    // An empty buffer and a whitespace-only event.
    assert_eq!(d.decode_lines(b"", |_, _| panic!("no lines")), 0);
    assert_eq!(d.decode_event(b" \r\n\t"), Err(DecodeError::Empty));
    assert_eq!(d.stats().errors.empty, 1);
}

#[test]
fn partial_reads_keep_the_tail() {
    let lines = watch_lines();
    let all = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]);
    let bytes = all.as_bytes();
    // Feed the stream in chunks of 97 bytes, as a pipe reader would.
    let mut d = WatchDecoder::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut rvs = Vec::new();
    for chunk in bytes.chunks(97) {
        pending.extend_from_slice(chunk);
        let used = d.decode_complete_lines(&pending, |_, r| {
            rvs.push(r.unwrap().record().resource_version)
        });
        pending.drain(..used);
    }
    assert!(pending.is_empty());
    assert_eq!(rvs, [1389, 1390, 1398]);
    assert_eq!(d.stats().errors.total(), 0);
}

#[test]
fn every_error_is_counted_per_variant() {
    let lines = watch_lines();
    let input = [
        lines[0].as_str(),
        "not json",
        &lines[1][..40],
        "[]",
        r#"{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"s"}}}"#,
        "",
        r#"{"type":"ADDED","object":{"kind":"Pod","status":{"phase":7}}}"#,
        lines[2].as_str(),
    ]
    .join("\n");
    let mut d = WatchDecoder::default();
    let mut seqs = Vec::new();
    d.decode_lines(input.as_bytes(), |_, r| {
        if let Ok(Decoded::Change(rec)) = r {
            seqs.push((rec.seq, rec.op));
        }
    });
    // Failed lines consume no sequence numbers.
    assert_eq!(seqs, [(0, Op::Added), (1, Op::Deleted)]);
    let st = d.stats();
    assert_eq!((st.lines, st.empty_lines), (8, 1));
    assert_eq!(st.errors.not_json, 1);
    assert_eq!(st.errors.truncated, 1);
    assert_eq!(st.errors.not_an_object, 1);
    assert_eq!(st.errors.unknown_kind, 1);
    assert_eq!(st.errors.wrong_type, 1);
    assert_eq!(st.errors.total(), 5);
    assert_eq!(st.decoded(), 2);
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic corruption of a real 7-10 KB apiserver line: every
    // outcome is a decoded record or a specific error, never a panic.
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{FIXTURES}k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let body = v[0]["response_body"].as_str().unwrap();
    let line = body.lines().next().unwrap().as_bytes().to_vec();
    let mut d = WatchDecoder::default();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let specials = [
        b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b'\n', 0x80, 0xff, b'0', b'-',
    ];
    let (mut ok, mut err) = (0, 0);
    for _ in 0..2000 {
        let mut l = line.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % l.len() as u64) as usize;
            l[at] = specials[(next() % specials.len() as u64) as usize];
        }
        match d.decode_event(&l) {
            Ok(_) => ok += 1,
            Err(e) => {
                err += 1;
                if let Some(off) = e.offset() {
                    assert!(off <= l.len(), "{e:?}");
                }
            }
        }
    }
    assert_eq!(ok + err, 2000);
    assert!(err > 0);
    assert_eq!(d.stats().errors.total(), err);
}

/// Found by the `k8s_decode` fuzz target (fuzz/): an item whose `metadata`
/// has a wrong type, after a good item, used to end `decode_document` with
/// an error after the first item had already been reported (and counted the
/// bad item as a document error). It is now the item's own error, counted
/// once, and the items after it still decode.
#[test]
fn document_item_with_bad_metadata_is_an_item_error() {
    let input = br#"[{"kind":"Pod","metadata":{"name":"a"}},
        {"kind":"Pod","metadata":{"name":1,"labels":{"x":"y"}},"spec":{"nodeName":"n"}},
        {"kind":"Pod","metadata":{"name":"c","managedFields":[{"time":"nope"}]}},
        {"kind":"Pod","metadata":{"name":"d"}}]"#;
    let mut d = WatchDecoder::default();
    let mut out = Vec::new();
    let summary = d
        .decode_document(input, Op::Added, |r| out.push(r.map(|d| d.record().name)))
        .unwrap();
    assert_eq!(summary.objects, 4);
    assert_eq!(summary.errors, 2);
    assert!(out[0].is_ok() && out[3].is_ok(), "{out:?}");
    assert!(
        matches!(
            out[1],
            Err(DecodeError::WrongType {
                field: "metadata.name",
                ..
            })
        ),
        "{out:?}"
    );
    assert!(
        matches!(
            out[2],
            Err(DecodeError::BadTimestamp {
                field: "metadata.managedFields.time",
                ..
            })
        ),
        "{out:?}"
    );
    assert_eq!(d.resolve(out[3].unwrap()), Some("d"));
    let s = d.stats();
    assert_eq!(s.decoded(), 2);
    assert_eq!(s.errors.wrong_type, 1);
    assert_eq!(s.errors.bad_timestamp, 1);
    assert_eq!(s.errors.total(), 2);

    // The same in a `*List`, and as a single object.
    let list = br#"{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"a"}},{"metadata":{"namespace":[]}},{"metadata":{"name":"b"}}]}"#;
    let mut d = WatchDecoder::default();
    let mut n = (0, 0);
    let summary = d
        .decode_document(list, Op::Added, |r| match r {
            Ok(_) => n.0 += 1,
            Err(_) => n.1 += 1,
        })
        .unwrap();
    assert_eq!((summary.objects, summary.errors), (3, 1));
    assert_eq!(n, (2, 1));
    assert_eq!(d.resume_version(), Some("9"));
    assert_eq!(d.stats().errors.wrong_type, 1);

    let mut d = WatchDecoder::default();
    let mut errs = 0;
    let summary = d
        .decode_document(
            br#"{"kind":"Pod","metadata":{"name":true}}"#,
            Op::Added,
            |r| errs += usize::from(r.is_err()),
        )
        .unwrap();
    assert_eq!((summary.objects, summary.errors, errs), (1, 1, 1));
    assert_eq!(d.stats().errors.total(), 1);
}

/// Found by the `k8s_decode` fuzz target (fuzz/, a 300 s run): a line one
/// byte shorter than `max_object_bytes` has its newline as the last byte
/// under the size cap; the decoder took the value as ending *at* the cap,
/// looked past the newline for more of the line, and reported the line
/// `TooLarge` together with the whole next line, which was lost. Lines of
/// every length around the limit, with `\n` and `\r\n`, now decode exactly.
#[test]
fn line_just_under_the_size_limit_keeps_the_next_line() {
    let lines = watch_lines();
    let a = &lines[0];
    // A short second line, well under every limit tried.
    let b = r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"1391"}}}"#;
    for ending in ["\n", "\r\n"] {
        let input = format!("{a}{ending}{b}{ending}");
        let with_cr = usize::from(ending == "\r\n");
        // The limit applies to the line without its ending (`\n` or
        // `\r\n`); `Line::bytes` and `TooLarge::len` include the `\r`.
        let line_len = a.len() + with_cr;
        for limit in a.len() - 2..=a.len() + 3 {
            let mut d = WatchDecoder::new(DecoderConfig {
                max_object_bytes: limit,
                ..DecoderConfig::default()
            });
            let mut out = Vec::new();
            d.decode_lines(input.as_bytes(), |line, r| {
                out.push((
                    line.number,
                    line.bytes.len(),
                    r.map(|d| d.record().resource_version),
                ))
            });
            assert_eq!(out.len(), 2, "limit {limit}, {ending:?}: {out:?}");
            assert_eq!(
                out[1],
                (2, b.len() + with_cr, Ok(1391)),
                "limit {limit}, {ending:?}"
            );
            if a.len() <= limit {
                assert_eq!(out[0], (1, line_len, Ok(1389)), "limit {limit}, {ending:?}");
            } else {
                assert_eq!(
                    out[0],
                    (
                        1,
                        line_len,
                        Err(DecodeError::TooLarge {
                            len: line_len,
                            limit
                        })
                    ),
                    "limit {limit}, {ending:?}"
                );
            }

            // The same through the partial-read driver.
            let mut d = WatchDecoder::new(DecoderConfig {
                max_object_bytes: limit,
                ..DecoderConfig::default()
            });
            let mut n = 0;
            let consumed = d.decode_complete_lines(input.as_bytes(), |_, _| n += 1);
            assert_eq!((consumed, n), (input.len(), 2), "limit {limit}, {ending:?}");
        }
    }
}
