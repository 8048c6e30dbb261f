//! Decoding every Kubernetes fixture in `../shared/fixtures/k8s/`, with the
//! expected values read from the fixtures, and cross-checks against
//! `serde_json`.
//!
//! Run: `cargo test --test sources_k8s`

use ebbflow::sources::hash::key_of;
use ebbflow::sources::intern::{known, InternerConfig, Symbol};
use ebbflow::sources::k8s::{
    DecodeError, Decoded, DecoderConfig, Line, UnknownKinds, WatchDecoder, PRESSURE_MEMORY,
};
use ebbflow::sources::labels::{canonical_hash, MAX_LABELS, MAX_LABELS_BYTES};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record, RecordFlags};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `response_body` of interaction `i` of a k8s-openapi replay file (the raw
/// HTTP body, i.e. the apiserver's NDJSON watch stream).
fn replay_body(name: &str, i: usize) -> String {
    let v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    v[i]["response_body"].as_str().unwrap().to_owned()
}

fn accept_unknown() -> WatchDecoder {
    WatchDecoder::new(DecoderConfig {
        unknown_kinds: UnknownKinds::Accept,
        ..DecoderConfig::default()
    })
}

fn lines(d: &mut WatchDecoder, input: &[u8]) -> Vec<Result<Decoded, DecodeError>> {
    let mut out = Vec::new();
    d.decode_lines(input, |_, r| out.push(r));
    out
}

fn document(d: &mut WatchDecoder, input: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    d.decode_document(input, Op::Added, |r| out.push(*r.unwrap().record()))
        .unwrap();
    out
}

fn change(r: &Result<Decoded, DecodeError>) -> Record {
    match r {
        Ok(Decoded::Change(rec)) => *rec,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn s(d: &WatchDecoder, v: Option<FieldValue>) -> Option<&str> {
    v.and_then(FieldValue::as_sym)
        .and_then(|sym| d.resolve(sym))
}

fn name<'a>(d: &'a WatchDecoder, r: &Record) -> &'a str {
    d.resolve(r.name).unwrap()
}

fn ns<'a>(d: &'a WatchDecoder, r: &Record) -> &'a str {
    d.resolve(r.namespace).unwrap()
}

fn int(r: &Record, id: FieldId) -> Option<i64> {
    r.get(id).and_then(FieldValue::as_i64)
}

fn flag(r: &Record, id: FieldId) -> Option<bool> {
    r.get(id).and_then(FieldValue::as_bool)
}

/// Seconds since the epoch as ns (expected values computed with
/// `date -u -d <timestamp> +%s`).
fn secs(s: i64) -> i64 {
    s * 1_000_000_000
}

// ---------------------------------------------------------------------------
// Watch streams (NDJSON)
// ---------------------------------------------------------------------------

#[test]
fn kubeclient_watch_stream_added_modified_deleted() {
    let mut d = WatchDecoder::default();
    let out = lines(&mut d, &fixture("kubeclient__watch_stream.json"));
    assert_eq!(out.len(), 3);
    let recs: Vec<Record> = out.iter().map(change).collect();
    assert_eq!(
        recs.iter().map(|r| r.op).collect::<Vec<_>>(),
        [Op::Added, Op::Modified, Op::Deleted]
    );
    assert_eq!(
        recs.iter().map(|r| r.resource_version).collect::<Vec<_>>(),
        [1389, 1390, 1398]
    );
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
    for r in &recs {
        assert_eq!(r.kind, Kind::Pod);
        assert_eq!(name(&d, r), "php");
        assert_eq!(ns(&d, r), "default");
        assert_eq!(r.key, key_of(b"Pod", b"default", b"php"));
        assert_eq!(r.get(FieldId::Phase), Some(FieldValue::Sym(known::PENDING)));
        assert_eq!(int(r, FieldId::RestartsTotal), Some(0));
        // No containerStatuses and no conditions in this legacy stream.
        assert_eq!(r.get(FieldId::Ready), None);
        assert_eq!(r.get(FieldId::WaitingReason), None);
        // creationTimestamp 2015-02-09T05:39:19-05:00 = 10:39:19Z.
        assert_eq!(r.source_ns, secs(1_423_478_359));
        assert!(r.ingest_ns > 0);
    }
    // The spec did not change between the three events; the labels neither.
    assert_eq!(
        recs[0].get(FieldId::SpecHash),
        recs[2].get(FieldId::SpecHash)
    );
    // Labels {"name": "foo"}: interned as their canonical text.
    for r in &recs {
        assert_eq!(s(&d, r.get(FieldId::Labels)), Some("name=foo"));
        assert_eq!(r.get(FieldId::LabelsHash), None);
    }
    assert_eq!(recs[0].get(FieldId::Labels), recs[1].get(FieldId::Labels));
    assert_eq!(d.resume_version(), Some("1398"));
    let st = d.stats();
    assert_eq!((st.added, st.modified, st.deleted), (1, 1, 1));
    assert_eq!(st.lines, 3);
    assert_eq!(st.errors.total(), 0);
    assert_eq!(st.by_kind[Kind::Pod as usize], 3);
}

#[test]
fn apiserver_stream_with_initial_events_and_bookmark() {
    let body = replay_body(
        "k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json",
        0,
    );
    let mut d = WatchDecoder::default();
    let mut seen = Vec::new();
    let n = d.decode_lines(body.as_bytes(), |line: Line<'_>, r| {
        seen.push((line.number, line.bytes.len(), r))
    });
    assert_eq!(n, 9);
    assert_eq!(seen.len(), 9);
    let expected = [
        ("coredns-589f44dc88-4fpns", 481, 1_781_496_906),
        ("coredns-589f44dc88-lxdzt", 480, 1_781_496_906),
        ("etcd-v1.36-control-plane", 417, 1_781_496_897),
        ("kindnet-4pxt7", 407, 1_781_496_893),
        ("kube-apiserver-v1.36-control-plane", 415, 1_781_496_896),
        (
            "kube-controller-manager-v1.36-control-plane",
            428,
            1_781_496_903,
        ),
        ("kube-proxy-hsdvx", 401, 1_781_496_893),
        ("kube-scheduler-v1.36-control-plane", 425, 1_781_496_902),
    ];
    for (i, (pod, rv, last_write)) in expected.iter().enumerate() {
        let (number, len, r) = &seen[i];
        assert_eq!(*number, i as u64 + 1);
        assert!(*len > 5000, "real lines are 5-10 KB");
        let r = change(r);
        assert_eq!((r.kind, r.op), (Kind::Pod, Op::Added));
        assert_eq!(name(&d, &r), *pod);
        assert_eq!(ns(&d, &r), "kube-system");
        assert_eq!(r.resource_version, *rv);
        assert_eq!(r.get(FieldId::Phase), Some(FieldValue::Sym(known::RUNNING)));
        assert_eq!(flag(&r, FieldId::Ready), Some(true));
        assert_eq!(int(&r, FieldId::RestartsTotal), Some(0));
        assert_eq!(int(&r, FieldId::RestartsMax), Some(0));
        assert_eq!(r.get(FieldId::WaitingReason), None);
        assert_eq!(s(&d, r.get(FieldId::NodeName)), Some("v1.36-control-plane"));
        // source time = the latest managedFields[].time.
        assert_eq!(r.source_ns, secs(*last_write));
        assert_eq!(r.key, key_of(b"Pod", b"kube-system", pod.as_bytes()));
    }
    // The two coredns replicas carry the same labels; etcd's differ.
    let coredns_a = change(&seen[0].2);
    let coredns_b = change(&seen[1].2);
    let etcd = change(&seen[2].2);
    assert_eq!(
        coredns_a.get(FieldId::Labels),
        coredns_b.get(FieldId::Labels)
    );
    assert_eq!(
        s(&d, coredns_a.get(FieldId::Labels)),
        Some("k8s-app=kube-dns,pod-template-hash=589f44dc88")
    );
    assert_eq!(
        s(&d, etcd.get(FieldId::Labels)),
        Some("component=etcd,tier=control-plane")
    );

    match &seen[8].2 {
        Ok(Decoded::Bookmark(b)) => {
            assert_eq!((b.kind, b.op), (Kind::Pod, Op::Bookmark));
            assert_eq!(b.resource_version, 550);
            assert!(b.flags.contains(RecordFlags::INITIAL_EVENTS_END));
            assert_eq!(b.field_count(), 0);
        }
        other => panic!("line 9 should be a bookmark: {other:?}"),
    }
    assert_eq!(d.resume_version(), Some("550"));
    assert_eq!(d.stats().bookmarks, 1);
    assert_eq!(d.stats().added, 8);
}

#[test]
fn apiserver_plain_watch_stream() {
    let body = replay_body("k8s-openapi__v1-36__watch_event-watch_pods.json", 0);
    let mut d = WatchDecoder::default();
    let recs: Vec<Record> = lines(&mut d, body.as_bytes()).iter().map(change).collect();
    let got: Vec<(&str, u64)> = recs
        .iter()
        .map(|r| (name(&d, r), r.resource_version))
        .collect();
    assert_eq!(
        got,
        [
            ("coredns-589f44dc88-4fpns", 481),
            ("coredns-589f44dc88-lxdzt", 480),
            ("etcd-v1.36-control-plane", 417),
            ("kindnet-4pxt7", 407),
            ("kube-apiserver-v1.36-control-plane", 415),
        ]
    );
    assert!(recs
        .iter()
        .all(|r| r.op == Op::Added && flag(r, FieldId::Ready) == Some(true)));
    // No bookmark in a plain watch: the resume point is the last line's rv.
    assert_eq!(d.resume_version(), Some("415"));
}

#[test]
fn custom_resource_watch_and_status_bodies() {
    let file = "k8s-openapi__v1-36__custom_resource_definition-test.json";
    let watch = replay_body(file, 8);

    // Default policy: unknown kinds are rejected, each line on its own.
    let mut strict = WatchDecoder::default();
    let out = lines(&mut strict, watch.as_bytes());
    assert_eq!(out.len(), 2);
    for r in &out {
        assert!(matches!(r, Err(DecodeError::UnknownKind { .. })), "{r:?}");
    }
    assert_eq!(strict.stats().errors.unknown_kind, 2);

    // Accept policy: Kind::Unknown records that carry the kind name.
    let mut d = accept_unknown();
    let recs: Vec<Record> = lines(&mut d, watch.as_bytes()).iter().map(change).collect();
    assert_eq!(
        recs.iter()
            .map(|r| (name(&d, r), r.resource_version))
            .collect::<Vec<_>>(),
        [("fb1", 622), ("fb2", 623)]
    );
    for r in &recs {
        assert_eq!(r.kind, Kind::Unknown);
        assert_eq!(s(&d, r.get(FieldId::KindName)), Some("FooBar"));
        assert_eq!(ns(&d, r), "default");
        assert_eq!(r.key, key_of(b"FooBar", b"default", name(&d, r).as_bytes()));
    }
    assert_ne!(
        recs[0].get(FieldId::SpecHash),
        recs[1].get(FieldId::SpecHash)
    );

    // The three HTTP 422 bodies are Status objects with code 422 / Invalid.
    for i in 11..=13 {
        let body = replay_body(file, i);
        match d.decode_object(body.as_bytes(), Op::Added) {
            Ok(Decoded::Status(r)) => {
                assert_eq!((r.kind, r.op), (Kind::Status, Op::Error));
                assert_eq!(int(&r, FieldId::StatusCode), Some(422));
                assert_eq!(s(&d, r.get(FieldId::Reason)), Some("Invalid"));
            }
            other => panic!("interaction {i}: {other:?}"),
        }
    }
    // A DELETE's `Success` Status has no code, and is not an error: it
    // keeps the op it was decoded with.
    match d.decode_object(replay_body(file, 9).as_bytes(), Op::Deleted) {
        Ok(Decoded::Status(r)) => {
            assert_eq!((r.kind, r.op), (Kind::Status, Op::Deleted));
            assert_eq!(r.get(FieldId::StatusCode), None);
        }
        other => panic!("{other:?}"),
    }
    // The list of FooBars (interaction 5) holds both objects.
    let list = document(&mut d, replay_body(file, 5).as_bytes());
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0].get(FieldId::SpecHash),
        recs[0].get(FieldId::SpecHash)
    );
}

// ---------------------------------------------------------------------------
// Single events and objects
// ---------------------------------------------------------------------------

#[test]
fn pretty_printed_node_watch_event() {
    let mut d = WatchDecoder::default();
    let r = change(&d.decode_event(&fixture("kubeclient__node_notice.json")));
    assert_eq!((r.kind, r.op), (Kind::Node, Op::Added));
    assert_eq!(name(&d, &r), "openshift.local");
    assert_eq!(ns(&d, &r), "");
    assert_eq!(r.resource_version, 367_410);
    // Ready is True; OutOfDisk/MemoryPressure/DiskPressure are all False.
    assert_eq!(flag(&r, FieldId::Ready), Some(true));
    assert_eq!(int(&r, FieldId::NodePressure), Some(0));
    assert_eq!(flag(&r, FieldId::Unschedulable), Some(false));
    assert_eq!(r.source_ns, secs(1_512_993_613));
    assert_eq!(r.key, key_of(b"Node", b"", b"openshift.local"));
    // The same file is not NDJSON: line by line it is a series of errors.
    let mut d2 = WatchDecoder::default();
    let out = lines(&mut d2, &fixture("kubeclient__node_notice.json"));
    assert!(!out.is_empty() && out.iter().all(Result::is_err));
    assert!(matches!(out[0], Err(DecodeError::Truncated { offset: 1 })));
}

#[test]
fn watch_event_fixture_with_invalid_type() {
    let bytes = fixture("k8s__core.v1.WatchEvent.json");
    let mut d = WatchDecoder::default();
    assert_eq!(
        d.decode_event(&bytes),
        Err(DecodeError::UnknownEventType { offset: 12 })
    );
    // Derived variant with a valid type: the CustomType object is unknown.
    let fixed = String::from_utf8(bytes)
        .unwrap()
        .replace("typeValue", "MODIFIED");
    assert!(matches!(
        d.decode_event(fixed.as_bytes()),
        Err(DecodeError::UnknownKind { .. })
    ));
    let mut a = accept_unknown();
    let r = change(&a.decode_event(fixed.as_bytes()));
    assert_eq!((r.kind, r.op), (Kind::Unknown, Op::Modified));
    assert_eq!(s(&a, r.get(FieldId::KindName)), Some("CustomType"));
    assert!(r.get(FieldId::SpecHash).is_some());
}

#[test]
fn gone_410_yields_relist() {
    let body = fixture("kubeclient__pods_410.json");
    let mut d = WatchDecoder::default();
    // The fixture is a bare (tab-indented) Status body.
    match d.decode_object(&body, Op::Added) {
        Ok(Decoded::Relist(r)) => {
            assert_eq!((r.kind, r.op), (Kind::Status, Op::Error));
            assert_eq!(int(&r, FieldId::StatusCode), Some(410));
            assert_eq!(
                r.get(FieldId::Reason),
                Some(FieldValue::Sym(known::EXPIRED))
            );
        }
        other => panic!("{other:?}"),
    }
    // The same Status inside a watch ERROR envelope, on one line of a stream
    // between two changes.
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let error_line = format!("{{\"type\":\"ERROR\",\"object\":{status}}}");
    let watch = fixture("kubeclient__watch_stream.json");
    let watch = String::from_utf8(watch).unwrap();
    let mut stream = watch.lines().next().unwrap().to_owned();
    stream.push('\n');
    stream.push_str(&error_line);
    stream.push('\n');
    stream.push_str(watch.lines().nth(1).unwrap());
    let out = lines(&mut d, stream.as_bytes());
    assert_eq!(out.len(), 3);
    assert!(matches!(out[0], Ok(Decoded::Change(_))));
    assert!(matches!(out[1], Ok(Decoded::Relist(_))));
    assert!(matches!(out[2], Ok(Decoded::Change(_))));
    assert_eq!(d.stats().relists, 2);
}

#[test]
fn success_status_is_not_an_error_except_in_an_error_event() {
    let success = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200,"details":{"name":"fb1","kind":"foobars"}}"#;
    let failure = success.replace("Success", "Failure");
    let mut d = WatchDecoder::default();
    // A bare object (a response body) and a list item: op kept.
    for op in [Op::Added, Op::Deleted] {
        match d.decode_object(success.as_bytes(), op) {
            Ok(Decoded::Status(r)) => {
                assert_eq!((r.kind, r.op), (Kind::Status, op));
                assert_eq!(int(&r, FieldId::StatusCode), Some(200));
            }
            other => panic!("{other:?}"),
        }
    }
    let list = format!(r#"{{"kind":"StatusList","items":[{success},{failure}]}}"#);
    let mut ops = Vec::new();
    d.decode_document(list.as_bytes(), Op::Added, |r| match r {
        Ok(Decoded::Status(r)) => ops.push(r.op),
        other => panic!("{other:?}"),
    })
    .unwrap();
    assert_eq!(ops, [Op::Added, Op::Error]);
    // `Failure` (or no `status`) outside an ERROR event is an error.
    let no_status = success.replace(r#""status":"Success","#, "");
    for body in [&failure, &no_status] {
        match d.decode_object(body.as_bytes(), Op::Added) {
            Ok(Decoded::Status(r)) => assert_eq!(r.op, Op::Error),
            other => panic!("{other:?}"),
        }
    }
    // A watch ERROR event is an error whatever its object says.
    let event = format!(r#"{{"type":"ERROR","object":{success}}}"#);
    match d.decode_event(event.as_bytes()) {
        Ok(Decoded::Status(r)) => assert_eq!((r.kind, r.op), (Kind::Status, Op::Error)),
        other => panic!("{other:?}"),
    }
    // A `Success` status in an ADDED event keeps ADDED.
    let event = format!(r#"{{"type":"ADDED","object":{success}}}"#);
    match d.decode_event(event.as_bytes()) {
        Ok(Decoded::Status(r)) => assert_eq!(r.op, Op::Added),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.stats().statuses, 8);
}

#[test]
fn status_fixture_other_code() {
    let mut d = WatchDecoder::default();
    let mut out = Vec::new();
    d.decode_document(&fixture("k8s__core.v1.Status.json"), Op::Added, |r| {
        out.push(r)
    })
    .unwrap();
    match &out[..] {
        [Ok(Decoded::Status(r))] => {
            assert_eq!(int(r, FieldId::StatusCode), Some(6));
            assert_eq!(s(&d, r.get(FieldId::Reason)), Some("reasonValue"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn synthetic_full_pod() {
    let mut d = WatchDecoder::default();
    let r = change(&d.decode_object(&fixture("k8s__core.v1.Pod.json"), Op::Modified));
    assert_eq!((r.kind, r.op), (Kind::Pod, Op::Modified));
    assert_eq!((name(&d, &r), ns(&d, &r)), ("nameValue", "namespaceValue"));
    assert_eq!(s(&d, r.get(FieldId::Phase)), Some("phaseValue"));
    // init, regular and ephemeral container statuses, restartCount 5 each.
    assert_eq!(int(&r, FieldId::RestartsTotal), Some(15));
    assert_eq!(int(&r, FieldId::RestartsMax), Some(5));
    assert_eq!(s(&d, r.get(FieldId::WaitingReason)), Some("reasonValue"));
    assert_eq!(s(&d, r.get(FieldId::NodeName)), Some("nodeNameValue"));
    // The only condition is "typeValue", so no Ready field.
    assert_eq!(r.get(FieldId::Ready), None);
    assert!(r.flags.contains(RecordFlags::DELETING));
    assert!(r.flags.contains(RecordFlags::RESOURCE_VERSION_OPAQUE));
    assert_eq!(r.resource_version, 0);
    // managedFields[0].time 2004-01-01T01:01:01Z.
    assert_eq!(r.source_ns, secs(1_072_918_861));
    assert_eq!(r.field_count(), 7);
    assert!(!r.flags.contains(RecordFlags::FIELDS_TRUNCATED));
}

#[test]
fn synthetic_full_deployment_node_service_configmap() {
    let mut d = WatchDecoder::default();
    let dep = document(&mut d, &fixture("k8s__apps.v1.Deployment.json"))[0];
    assert_eq!(dep.kind, Kind::Deployment);
    assert_eq!(int(&dep, FieldId::ReplicasDesired), Some(1));
    assert_eq!(int(&dep, FieldId::ReplicasCurrent), Some(2));
    assert_eq!(int(&dep, FieldId::ReplicasReady), Some(7));
    assert_eq!(int(&dep, FieldId::ReplicasAvailable), Some(4));
    assert_eq!(int(&dep, FieldId::ReplicasUpdated), Some(3));

    let node = document(&mut d, &fixture("k8s__core.v1.Node.json"))[0];
    assert_eq!(node.kind, Kind::Node);
    assert_eq!(flag(&node, FieldId::Unschedulable), Some(true));
    assert_eq!(node.get(FieldId::Ready), None);

    let svc = document(&mut d, &fixture("k8s__core.v1.Service.json"))[0];
    assert_eq!(svc.kind, Kind::Service);
    assert_eq!(s(&d, svc.get(FieldId::ServiceType)), Some("typeValue"));

    let cm = document(&mut d, &fixture("k8s__core.v1.ConfigMap.json"))[0];
    assert_eq!(cm.kind, Kind::ConfigMap);
    assert_eq!(flag(&cm, FieldId::Immutable), Some(true));
    assert_eq!(int(&cm, FieldId::DataCount), Some(2)); // data + binaryData
    assert!(cm.get(FieldId::SpecHash).is_some());

    // All four synthetic objects carry the same labels {labelsKey: labelsValue}.
    assert_eq!(
        s(&d, dep.get(FieldId::Labels)),
        Some("labelsKey=labelsValue")
    );
    let lh = dep.get(FieldId::Labels);
    assert!([node, svc, cm].iter().all(|r| r.get(FieldId::Labels) == lh));
}

#[test]
fn synthetic_events_core_and_events_api() {
    let mut d = WatchDecoder::default();
    for (file, count) in [
        ("k8s__core.v1.Event.json", 8),
        ("k8s__events.k8s.io.v1.Event.json", 15),
    ] {
        let r = document(&mut d, &fixture(file))[0];
        assert_eq!(r.kind, Kind::Event, "{file}");
        assert_eq!(s(&d, r.get(FieldId::Reason)), Some("reasonValue"));
        assert_eq!(s(&d, r.get(FieldId::EventType)), Some("typeValue"));
        assert_eq!(s(&d, r.get(FieldId::RegardingKind)), Some("kindValue"));
        assert_eq!(s(&d, r.get(FieldId::RegardingName)), Some("nameValue"));
        assert_eq!(
            r.get(FieldId::RegardingKey)
                .and_then(FieldValue::as_u64_bits),
            Some(key_of(b"kindValue", b"namespaceValue", b"nameValue"))
        );
        // count/deprecatedCount vs series.count 1: the largest wins.
        assert_eq!(int(&r, FieldId::Count), Some(count), "{file}");
        // series.lastObservedTime 2002-01-01T01:01:01.000002Z.
        assert_eq!(r.source_ns, secs(1_009_846_861) + 2_000);
    }
}

#[test]
fn fuzzed_unicode_and_large_integers() {
    let mut d = WatchDecoder::default();
    let pod = document(&mut d, &fixture("k8s-fuzzed__core.v1.Pod.json"))[0];
    assert_eq!((name(&d, &pod), ns(&d, &pod)), ("2", "4"));
    assert_eq!(pod.resource_version, 11_042_405_498_087_606_203);
    assert_eq!(s(&d, pod.get(FieldId::Phase)), Some("å譥a"));
    // 840157370 + (-1399651668) + 692446142 over the three status lists.
    assert_eq!(int(&pod, FieldId::RestartsTotal), Some(132_951_844));
    assert_eq!(int(&pod, FieldId::RestartsMax), Some(840_157_370));
    assert_eq!(s(&d, pod.get(FieldId::WaitingReason)), Some("476"));
    assert_eq!(pod.source_ns, secs(2_894_379_216)); // 2061-09-19T18:13:36Z

    let ev = document(&mut d, &fixture("k8s-fuzzed__core.v1.Event.json"))[0];
    assert_eq!(int(&ev, FieldId::Count), Some(1_266_076_158));
    assert_eq!(s(&d, ev.get(FieldId::Reason)), Some("26"));
    // series.lastObservedTime is in year 2951: clamped and flagged.
    assert_eq!(ev.source_ns, i64::MAX);
    assert!(ev.flags.contains(RecordFlags::SOURCE_TIME_CLAMPED));

    let ev2 = document(&mut d, &fixture("k8s-fuzzed__events.k8s.io.v1.Event.json"))[0];
    assert_eq!(int(&ev2, FieldId::Count), Some(-180_456_314));
    assert_eq!(s(&d, ev2.get(FieldId::RegardingName)), Some("26"));
    assert_eq!(d.stats().source_time_clamped, 2);
}

#[test]
fn kubeclient_objects_and_lists() {
    let mut d = WatchDecoder::default();
    let pod = document(&mut d, &fixture("kubeclient__pod.json"))[0];
    assert_eq!((name(&d, &pod), ns(&d, &pod)), ("redis-master3", "default"));
    assert_eq!(pod.resource_version, 9);
    assert_eq!(
        pod.get(FieldId::Phase),
        Some(FieldValue::Sym(known::RUNNING))
    );

    let list = document(&mut d, &fixture("kubeclient__pod_list.json"));
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].kind,
        Kind::Pod,
        "items take the kind of the PodList"
    );
    assert_eq!(
        list[0].get(FieldId::Phase),
        Some(FieldValue::Sym(known::PENDING))
    );
    assert_eq!(list[0].resource_version, 1301);
    assert_eq!(d.resume_version(), Some("1315"));

    let pods = document(&mut d, &fixture("kubeclient__pods_1.json"));
    assert_eq!(pods.len(), 2);
    assert_eq!(name(&d, &pods[0]), "my-ruby-project-2-build");
    assert_eq!(
        pods[0].get(FieldId::Phase),
        Some(FieldValue::Sym(known::FAILED))
    );
    assert_eq!(flag(&pods[0], FieldId::Ready), Some(false));
    assert!(pods[0].flags.contains(RecordFlags::DELETING));
    assert_eq!(name(&d, &pods[1]), "redis-1-94zxb");
    assert_eq!(ns(&d, &pods[1]), "customer-logging");
    assert_eq!(flag(&pods[1], FieldId::Ready), Some(true));
    assert_eq!(d.resume_version(), Some("53225946"));

    let pods2 = document(&mut d, &fixture("kubeclient__pods_2.json"));
    assert_eq!(
        pods2.iter().map(|r| r.resource_version).collect::<Vec<_>>(),
        [51_987_342, 51_996_115]
    );
    assert_eq!(d.resume_version(), Some("53226147"));

    let node = document(&mut d, &fixture("kubeclient__node.json"))[0];
    assert_eq!(name(&d, &node), "127.0.0.1");
    // Legacy condition {kind: Ready, status: None}: neither True nor False.
    assert!(node.flags.contains(RecordFlags::READY_UNKNOWN));
    assert_eq!(node.get(FieldId::Ready), None);
    let nodes = document(&mut d, &fixture("kubeclient__node_list.json"));
    assert_eq!((nodes.len(), nodes[0].resource_version), (1, 137));

    let svc = document(&mut d, &fixture("kubeclient__service.json"))[0];
    assert_eq!(
        (name(&d, &svc), ns(&d, &svc)),
        ("redis-slave", "development")
    );
    assert_eq!(svc.resource_version, 2815);
    let svcs = document(&mut d, &fixture("kubeclient__service_list.json"));
    assert_eq!(
        svcs.iter().map(|r| name(&d, r)).collect::<Vec<_>>(),
        ["kubernetes", "kubernetes-ro", "redis-slave"]
    );
    // Same object in two files: same key, labels and spec.
    assert_eq!(svcs[2].key, svc.key);
    assert_eq!(
        s(&d, svc.get(FieldId::Labels)),
        Some("name=redis,role=slave")
    );
    assert_eq!(svcs[2].get(FieldId::Labels), svc.get(FieldId::Labels));
    assert_eq!(
        s(&d, svcs[0].get(FieldId::Labels)),
        Some("component=apiserver,provider=kubernetes")
    );
    assert_eq!(svcs[2].get(FieldId::SpecHash), svc.get(FieldId::SpecHash));
    let entities = document(&mut d, &fixture("kubeclient__entity_list.json"));
    assert_eq!(entities.len(), 2);
    assert!(entities.iter().all(|r| r.kind == Kind::Service));
    let created = document(&mut d, &fixture("kubeclient__created_service.json"))[0];
    assert_eq!(
        (name(&d, &created), ns(&d, &created)),
        ("guestbook", "staging")
    );

    let cms = document(&mut d, &fixture("kubeclient__config_map_list.json"));
    assert!(cms.is_empty());
    assert_eq!(d.resume_version(), Some("665"));

    let events = document(&mut d, &fixture("kubeclient__event_list.json"));
    assert_eq!(events.len(), 1);
    let ev = events[0];
    assert_eq!(ev.kind, Kind::Event);
    assert_eq!(name(&d, &ev), "php.13c130f78da4641e");
    assert_eq!(s(&d, ev.get(FieldId::Reason)), Some("created"));
    assert_eq!(s(&d, ev.get(FieldId::RegardingKind)), Some("BoundPod"));
    assert_eq!(s(&d, ev.get(FieldId::RegardingName)), Some("php"));
    assert_eq!(
        int(&ev, FieldId::Count),
        Some(1),
        "no count field: one occurrence"
    );

    let dep = document(&mut d, &fixture("kubeclient__deployment.json"))[0];
    assert_eq!(name(&d, &dep), "nginx-deployment");
    assert_eq!(int(&dep, FieldId::ReplicasDesired), Some(3));
    assert_eq!(int(&dep, FieldId::ReplicasCurrent), Some(3));
    assert_eq!(int(&dep, FieldId::ReplicasUpdated), Some(3));
    assert_eq!(
        int(&dep, FieldId::ReplicasReady),
        Some(0),
        "absent = 0 (omitempty)"
    );
    assert_eq!(dep.source_ns, secs(1_449_789_583)); // 2015-12-10T23:19:43Z
}

#[test]
fn pulumi_pod_state_sequences() {
    let mut d = WatchDecoder::default();
    let states = document(
        &mut d,
        &fixture("pulumi__workflows_pod_imagePullErrorResolved.json"),
    );
    assert_eq!(states.len(), 9);
    let waiting: Vec<Option<&str>> = states
        .iter()
        .map(|r| s(&d, r.get(FieldId::WaitingReason)))
        .collect();
    assert_eq!(
        waiting,
        [
            Some("ImagePullBackOff"),
            Some("ErrImagePull"),
            Some("ErrImagePull"),
            None,
            None,
            None,
            None,
            Some("ContainerCreating"),
            None
        ]
    );
    assert_eq!(
        states
            .iter()
            .map(|r| r.flags.contains(RecordFlags::DELETING))
            .collect::<Vec<_>>(),
        [false, false, true, true, true, false, false, false, false]
    );
    assert_eq!(
        states[0].get(FieldId::WaitingReason),
        Some(FieldValue::Sym(known::IMAGE_PULL_BACK_OFF))
    );
    let last = states[8];
    assert_eq!(
        last.get(FieldId::Phase),
        Some(FieldValue::Sym(known::RUNNING))
    );
    assert_eq!(flag(&last, FieldId::Ready), Some(true));
    assert!(states
        .iter()
        .all(|r| r.key == key_of(b"Pod", b"default", b"foo")));

    let states = document(
        &mut d,
        &fixture("pulumi__workflows_pod_containerTerminatedError.json"),
    );
    assert_eq!(
        states
            .iter()
            .map(|r| int(r, FieldId::RestartsTotal).unwrap())
            .collect::<Vec<_>>(),
        [0, 0, 0, 0, 1]
    );
    assert_eq!(
        states
            .iter()
            .map(|r| s(&d, r.get(FieldId::WaitingReason)))
            .collect::<Vec<_>>(),
        [
            None,
            None,
            Some("ContainerCreating"),
            Some("RunContainerError"),
            Some("RunContainerError")
        ]
    );
    assert_eq!(
        states
            .iter()
            .map(|r| r.resource_version)
            .collect::<Vec<_>>(),
        [415_749, 415_750, 415_752, 415_757, 415_764]
    );
}

#[test]
fn yaml_fixtures_are_not_json() {
    let mut d = WatchDecoder::default();
    for (file, byte) in [
        ("otel__event.yaml", b'a'),
        ("otel__event_core.yaml", b'a'),
        ("otel__namespace.yaml", b'a'),
        ("otel__widget.yaml", b'a'),
    ] {
        let bytes = fixture(file);
        let r = d.decode_document(&bytes, Op::Added, |_| panic!("no item expected"));
        assert_eq!(r, Err(DecodeError::NotJson { offset: 0, byte }), "{file}");
    }
    assert_eq!(d.stats().errors.not_json, 4);
}

#[test]
fn every_fixture_file_is_covered() {
    // Guards this file against new fixtures that no test decodes.
    let covered = [
        "k8s-fuzzed__core.v1.Event.json",
        "k8s-fuzzed__core.v1.Pod.json",
        "k8s-fuzzed__events.k8s.io.v1.Event.json",
        "k8s-openapi__v1-36__custom_resource_definition-test.json",
        "k8s-openapi__v1-36__watch_event-watch_pods.json",
        "k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json",
        "k8s__apps.v1.Deployment.json",
        "k8s__core.v1.ConfigMap.json",
        "k8s__core.v1.Event.json",
        "k8s__core.v1.Node.json",
        "k8s__core.v1.Pod.json",
        "k8s__core.v1.Service.json",
        "k8s__core.v1.Status.json",
        "k8s__core.v1.WatchEvent.json",
        "k8s__events.k8s.io.v1.Event.json",
        "kubeclient__config_map_list.json",
        "kubeclient__created_service.json",
        "kubeclient__deployment.json",
        "kubeclient__entity_list.json",
        "kubeclient__event_list.json",
        "kubeclient__node.json",
        "kubeclient__node_list.json",
        "kubeclient__node_notice.json",
        "kubeclient__pod.json",
        "kubeclient__pod_list.json",
        "kubeclient__pods_1.json",
        "kubeclient__pods_2.json",
        "kubeclient__pods_410.json",
        "kubeclient__service.json",
        "kubeclient__service_list.json",
        "kubeclient__watch_stream.json",
        "otel__event.yaml",
        "otel__event_core.yaml",
        "otel__namespace.yaml",
        "otel__widget.yaml",
        "pulumi__workflows_pod_containerTerminatedError.json",
        "pulumi__workflows_pod_imagePullErrorResolved.json",
    ];
    let mut files: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "SOURCES.md")
        .collect();
    files.sort();
    assert_eq!(files, covered);
}

// ---------------------------------------------------------------------------
// Order independence, hashes, cross-checks against serde_json
// ---------------------------------------------------------------------------

/// Removes whitespace outside strings (a minimal JSON minifier for tests).
fn minify(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_str, mut esc) = (false, false);
    for &b in json {
        if in_str {
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if !b.is_ascii_whitespace() {
            out.push(b);
            in_str = b == b'"';
        }
    }
    out
}

#[test]
fn spec_hash_ignores_whitespace_only() {
    let pretty = fixture("k8s__core.v1.Pod.json");
    let compact = minify(&pretty);
    assert!(compact.len() < pretty.len() * 3 / 4);
    let mut d = WatchDecoder::default();
    let a = change(&d.decode_object(&pretty, Op::Added));
    let b = change(&d.decode_object(&compact, Op::Added));
    assert_eq!(a.get(FieldId::SpecHash), b.get(FieldId::SpecHash));
    assert_eq!(a.get(FieldId::Labels), b.get(FieldId::Labels));
    // A change inside the spec changes the spec hash, not the labels.
    let drifted = String::from_utf8(compact.clone()).unwrap().replace(
        "\"schedulerName\":\"schedulerNameValue\"",
        "\"schedulerName\":\"other\"",
    );
    assert_ne!(drifted.as_bytes(), &compact[..]);
    let c = change(&d.decode_object(drifted.as_bytes(), Op::Added));
    assert_ne!(a.get(FieldId::SpecHash), c.get(FieldId::SpecHash));
    assert_eq!(a.get(FieldId::Labels), c.get(FieldId::Labels));
}

fn pod_with_labels(labels: &str) -> String {
    format!(
        r#"{{"type":"ADDED","object":{{"kind":"Pod","metadata":{{"name":"p","namespace":"n","labels":{labels}}}}}}}"#
    )
}

#[test]
fn label_sets_are_interned_in_canonical_form_whatever_the_order() {
    let mut d = WatchDecoder::default();
    let l = |d: &mut WatchDecoder, l: &str| {
        change(&d.decode_event(pod_with_labels(l).as_bytes())).get(FieldId::Labels)
    };
    let ab = l(&mut d, r#"{"b":"2","a":"1"}"#);
    let sym = ab.and_then(FieldValue::as_sym).unwrap();
    assert_eq!(d.resolve(sym), Some("a=1,b=2"));
    assert_eq!(l(&mut d, r#"{ "a" : "1", "b" : "2" }"#), ab);
    // Escapes are resolved before the text is made: "a" is "a".
    assert_eq!(l(&mut d, r#"{"b":"2","\u0061":"\u0031"}"#), ab);
    assert_ne!(l(&mut d, r#"{"a":"1"}"#), ab);
    assert_ne!(l(&mut d, r#"{"a":"2","b":"1"}"#), ab);
    // No labels, {} and null all give the empty symbol; null values are skipped.
    assert_eq!(l(&mut d, "{}"), Some(FieldValue::Sym(Symbol::EMPTY)));
    assert_eq!(l(&mut d, "null"), Some(FieldValue::Sym(Symbol::EMPTY)));
    assert_eq!(
        l(&mut d, r#"{"x":null}"#),
        Some(FieldValue::Sym(Symbol::EMPTY))
    );
    let bare = r#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p"}}}"#;
    let r = change(&d.decode_event(bare.as_bytes()));
    assert_eq!(r.get(FieldId::Labels), Some(FieldValue::Sym(Symbol::EMPTY)));
    // Same set, same symbol: nothing new interned.
    let before = d.interner().len();
    assert_eq!(l(&mut d, r#"{"b":"2","a":"1"}"#), ab);
    assert_eq!(d.interner().len(), before);
    assert_eq!(d.stats().labels_hashed, 0);
}

#[test]
fn label_sets_without_canonical_text_fall_back_to_the_hash() {
    let mut d = WatchDecoder::default();
    let hashed = |d: &mut WatchDecoder, l: &str| {
        let r = change(&d.decode_event(pod_with_labels(l).as_bytes()));
        assert_eq!(r.get(FieldId::Labels), None, "{l}");
        assert!(!r.flags.contains(RecordFlags::SYMBOL_OVERFLOW));
        r.get(FieldId::LabelsHash)
            .and_then(FieldValue::as_u64_bits)
            .unwrap()
    };
    // `,`/`=` would make the text ambiguous.
    let a = hashed(&mut d, r#"{"a":"b,c=d"}"#);
    let b = change(&d.decode_event(pod_with_labels(r#"{"c":"d","a":"b"}"#).as_bytes()));
    assert_eq!(s(&d, b.get(FieldId::Labels)), Some("a=b,c=d"));
    assert_ne!(a, canonical_hash("a=b,c=d"));
    // Order-insensitive hash: more than MAX_LABELS pairs, in two orders.
    let many: Vec<String> = (0..=MAX_LABELS)
        .map(|i| format!(r#""k{i:03}":"v""#))
        .collect();
    let fwd = format!("{{{}}}", many.join(","));
    let rev = format!(
        "{{{}}}",
        many.iter().rev().cloned().collect::<Vec<_>>().join(",")
    );
    let h = hashed(&mut d, &fwd);
    assert_eq!(h, hashed(&mut d, &rev));
    // The hash is the one the canonical text of the same pairs would have.
    let text: Vec<String> = (0..=MAX_LABELS).map(|i| format!("k{i:03}=v")).collect();
    assert_eq!(h, canonical_hash(&text.join(",")));
    // Over MAX_LABELS_BYTES of text.
    let long = format!(r#"{{"k":"{}"}}"#, "x".repeat(MAX_LABELS_BYTES));
    hashed(&mut d, &long);
    assert_eq!(d.stats().labels_hashed, 4);
}

#[test]
fn full_interner_falls_back_to_the_labels_hash_with_overflow_flag() {
    let mut d = WatchDecoder::new(DecoderConfig {
        interner: InternerConfig {
            max_entries: 40,
            max_bytes: 1 << 12,
        },
        ..DecoderConfig::default()
    });
    // Fill the interner with label sets until one overflows.
    let mut overflowed = None;
    for i in 0..64 {
        let r =
            change(&d.decode_event(pod_with_labels(&format!(r#"{{"app":"a{i}"}}"#)).as_bytes()));
        if r.flags.contains(RecordFlags::SYMBOL_OVERFLOW) {
            overflowed = Some((i, r));
            break;
        }
        assert_eq!(
            s(&d, r.get(FieldId::Labels)),
            Some(format!("app=a{i}").as_str())
        );
    }
    let (i, r) = overflowed.expect("the interner fills up");
    assert_eq!(r.get(FieldId::Labels), None);
    assert_eq!(
        r.get(FieldId::LabelsHash).and_then(FieldValue::as_u64_bits),
        Some(canonical_hash(&format!("app=a{i}")))
    );
    assert_eq!(d.stats().labels_hashed, 1);
    assert!(d.stats().symbol_overflows >= 1);
    // Sets interned before still resolve to their symbol.
    let r = change(&d.decode_event(pod_with_labels(r#"{"app":"a0"}"#).as_bytes()));
    assert_eq!(s(&d, r.get(FieldId::Labels)), Some("app=a0"));
}

#[test]
fn keys_in_any_order_and_nested_noise() {
    // `type` after `object`, `kind` after everything it qualifies, decoy
    // keys of the same names nested in objects, arrays and escaped strings.
    let line = concat!(
        r#"{"object":{"metadata":{"labels":{"kind":"Node"},"name":"we\"ird\\name","#,
        r#""annotations":{"status":"{\"phase\":\"Failed\"}"},"namespace":"ns1","resourceVersion":"77"},"#,
        r#""spec":{"containers":[{"name":"c","status":{"phase":"Failed"}}],"nodeName":"n\u00f6de"},"#,
        r#""status":{"containerStatuses":[{"state":{"waiting":{"message":"x","reason":"CrashLoopBackOff"}},"restartCount":4},"#,
        r#"{"restartCount":9,"state":{"running":{}}}],"conditions":[{"status":"False","type":"Ready"}],"phase":"Running"},"#,
        r#""kind":"Pod"},"type":"MODIFIED","extra":[{"type":"DELETED"}]}"#
    );
    let mut d = WatchDecoder::default();
    let r = change(&d.decode_event(line.as_bytes()));
    assert_eq!((r.kind, r.op), (Kind::Pod, Op::Modified));
    assert_eq!(name(&d, &r), "we\"ird\\name");
    assert_eq!(r.key, key_of(b"Pod", b"ns1", b"we\"ird\\name"));
    assert_eq!(r.resource_version, 77);
    assert_eq!(r.get(FieldId::Phase), Some(FieldValue::Sym(known::RUNNING)));
    assert_eq!(flag(&r, FieldId::Ready), Some(false));
    assert_eq!(int(&r, FieldId::RestartsTotal), Some(13));
    assert_eq!(int(&r, FieldId::RestartsMax), Some(9));
    assert_eq!(
        r.get(FieldId::WaitingReason),
        Some(FieldValue::Sym(known::CRASH_LOOP_BACK_OFF))
    );
    assert_eq!(s(&d, r.get(FieldId::NodeName)), Some("nöde"));

    // A Status whose string `status` precedes `kind`.
    let status = r#"{"object":{"status":"Failure","code":410,"reason":"Gone","kind":"Status"},"type":"ERROR"}"#;
    assert!(matches!(
        d.decode_event(status.as_bytes()),
        Ok(Decoded::Relist(_))
    ));
}

#[test]
fn node_pressure_bits() {
    let line = r#"{"type":"MODIFIED","object":{"kind":"Node","metadata":{"name":"n1"},"spec":{"unschedulable":true},"status":{"conditions":[{"type":"MemoryPressure","status":"True"},{"type":"DiskPressure","status":"False"},{"type":"Ready","status":"Unknown"}]}}}"#;
    let mut d = WatchDecoder::default();
    let r = change(&d.decode_event(line.as_bytes()));
    assert_eq!(int(&r, FieldId::NodePressure), Some(PRESSURE_MEMORY));
    assert_eq!(flag(&r, FieldId::Unschedulable), Some(true));
    assert!(r.flags.contains(RecordFlags::READY_UNKNOWN));
}

/// Values a real JSON parser reads from one Pod object.
fn serde_pod(v: &serde_json::Value) -> (String, String, u64, String, i64, i64, Option<bool>) {
    let m = &v["metadata"];
    let st = &v["status"];
    let mut total = 0;
    let mut max = None::<i64>;
    for list in [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ] {
        for c in st[list].as_array().into_iter().flatten() {
            let n = c["restartCount"].as_i64().unwrap_or(0);
            total += n;
            max = Some(max.map_or(n, |m| m.max(n)));
        }
    }
    let ready = st["conditions"].as_array().and_then(|cs| {
        cs.iter()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| match c["status"].as_str() {
                Some("True") => Some(true),
                Some("False") => Some(false),
                _ => None,
            })
    });
    (
        m["name"].as_str().unwrap().to_owned(),
        m["namespace"].as_str().unwrap_or("").to_owned(),
        m["resourceVersion"].as_str().unwrap().parse().unwrap(),
        st["phase"].as_str().unwrap().to_owned(),
        total,
        max.unwrap_or(0),
        ready,
    )
}

fn ours_pod(d: &WatchDecoder, r: &Record) -> (String, String, u64, String, i64, i64, Option<bool>) {
    (
        name(d, r).to_owned(),
        ns(d, r).to_owned(),
        r.resource_version,
        s(d, r.get(FieldId::Phase)).unwrap().to_owned(),
        int(r, FieldId::RestartsTotal).unwrap(),
        int(r, FieldId::RestartsMax).unwrap(),
        flag(r, FieldId::Ready),
    )
}

#[test]
fn agrees_with_serde_json_on_real_pods() {
    let body = replay_body(
        "k8s-openapi__v1-36__watch_event-watch_pods_without_initial_events.json",
        0,
    );
    let mut d = WatchDecoder::default();
    let mut checked = 0;
    for line in body.lines().filter(|l| l.contains("\"ADDED\"")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let r = change(&d.decode_event(line.as_bytes()));
        assert_eq!(ours_pod(&d, &r), serde_pod(&v["object"]));
        // Re-serialised by serde_json: every object's keys are now sorted
        // (`object` before `type`, `status` before `type` in conditions, …).
        let reordered = serde_json::to_vec(&v).unwrap();
        assert_ne!(reordered, line.as_bytes());
        let r2 = change(&d.decode_event(&reordered));
        assert_eq!(ours_pod(&d, &r2), ours_pod(&d, &r));
        assert_eq!(r2.key, r.key);
        assert_eq!(r2.source_ns, r.source_ns);
        assert_eq!(r2.get(FieldId::Labels), r.get(FieldId::Labels));
        // The canonical text is the serde_json labels map, sorted.
        let canon = v["object"]["metadata"]["labels"]
            .as_object()
            .map(|m| {
                let mut kv: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                    .collect();
                kv.sort();
                kv.join(",")
            })
            .unwrap_or_default();
        assert_eq!(s(&d, r.get(FieldId::Labels)), Some(canon.as_str()));
        checked += 1;
    }
    assert_eq!(checked, 8);
    for file in [
        "pulumi__workflows_pod_imagePullErrorResolved.json",
        "pulumi__workflows_pod_containerTerminatedError.json",
        "k8s-fuzzed__core.v1.Pod.json",
        "kubeclient__pods_1.json",
    ] {
        let bytes = fixture(file);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let objects: Vec<&serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.iter().collect(),
            o if o.get("items").is_some() => o["items"].as_array().unwrap().iter().collect(),
            o => vec![o],
        };
        let recs = document(&mut d, &bytes);
        assert_eq!(recs.len(), objects.len(), "{file}");
        for (r, o) in recs.iter().zip(objects) {
            assert_eq!(ours_pod(&d, r), serde_pod(o), "{file}");
        }
    }
}

#[test]
fn agrees_with_serde_json_on_names_of_every_object_fixture() {
    let mut d = accept_unknown();
    for file in [
        "k8s__apps.v1.Deployment.json",
        "k8s__core.v1.ConfigMap.json",
        "k8s__core.v1.Event.json",
        "k8s__core.v1.Node.json",
        "k8s__core.v1.Service.json",
        "k8s__events.k8s.io.v1.Event.json",
        "k8s-fuzzed__core.v1.Event.json",
        "k8s-fuzzed__events.k8s.io.v1.Event.json",
        "kubeclient__created_service.json",
        "kubeclient__deployment.json",
        "kubeclient__entity_list.json",
        "kubeclient__event_list.json",
        "kubeclient__node.json",
        "kubeclient__node_list.json",
        "kubeclient__pod.json",
        "kubeclient__pod_list.json",
        "kubeclient__pods_2.json",
        "kubeclient__service.json",
        "kubeclient__service_list.json",
    ] {
        let bytes = fixture(file);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let objects: Vec<&serde_json::Value> = match v.get("items") {
            Some(items) => items.as_array().unwrap().iter().collect(),
            None => vec![&v],
        };
        let recs = document(&mut d, &bytes);
        assert_eq!(recs.len(), objects.len(), "{file}");
        for (r, o) in recs.iter().zip(objects) {
            let m = &o["metadata"];
            assert_eq!(name(&d, r), m["name"].as_str().unwrap(), "{file}");
            assert_eq!(ns(&d, r), m["namespace"].as_str().unwrap_or(""), "{file}");
            match m["resourceVersion"].as_str().unwrap().parse::<u64>() {
                Ok(rv) => assert_eq!(r.resource_version, rv, "{file}"),
                Err(_) => assert!(r.flags.contains(RecordFlags::RESOURCE_VERSION_OPAQUE)),
            }
            if let Some(c) = o.get("count").and_then(|c| c.as_i64()) {
                assert!(int(r, FieldId::Count).unwrap() >= c, "{file}");
            }
            if let Some(reason) = o.get("reason").and_then(|c| c.as_str()) {
                assert_eq!(s(&d, r.get(FieldId::Reason)), Some(reason), "{file}");
            }
        }
    }
}

/// The default ingest clock (the engine's stage clock, anchored to
/// `SystemTime` at most every 50 ms) stays within a few ms of wall time and
/// does not run backwards between anchorings by more than the anchoring
/// correction.
#[test]
fn default_ingest_clock_follows_wall_time() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let wall = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64
    };
    let line =
        br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","namespace":"n"}}}"#;
    let mut d = WatchDecoder::default();
    let mut prev = 0i64;
    let started = std::time::Instant::now();
    let mut n = 0u32;
    while started.elapsed() < std::time::Duration::from_millis(250) {
        let before = wall();
        let t = d.decode_event(line).unwrap().record().ingest_ns;
        let after = wall();
        // 2 ms of slack for the stage clock's calibration error and
        // preemption between the reads.
        assert!(
            t >= before - 2_000_000 && t <= after + 2_000_000,
            "{before} {t} {after}"
        );
        assert!(
            t >= prev - 1_000_000,
            "ingest time went back: {prev} -> {t}"
        );
        prev = t;
        n += 1;
        if n.is_multiple_of(64) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    assert!(n > 100);
}
