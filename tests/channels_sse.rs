//! Server-Sent Events at `/events`: `id: epoch:offset`, resume by `Last-Event-ID` header or
//! `last_event_id` query with no gap and no duplicate, explicit `gap` events, heartbeats.

#[path = "peers/support.rs"]
mod support;

use std::time::Duration;

use ebbflow::channels::{Counter, Transport};
use support::*;

#[test]
fn events_carry_epoch_offset_ids_in_hub_order_across_topics() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (status, mut sse) = Sse::open(addr, "/events?topics=alerts,room:lobby", "");
    assert_eq!(status, 200);
    assert!(eventually(WAIT, || server
        .metrics()
        .connections(Transport::Sse)
        == 1));
    publish(&mut w, "alerts", "fired", r#"{"n":1}"#);
    publish(&mut w, "dashboard", "s", "0");
    publish(&mut w, "room:lobby", "said", r#""hi""#);
    let a = sse.next_event(WAIT).unwrap();
    assert_eq!(a.id.as_deref(), Some("42:1"));
    let v: serde_json::Value = serde_json::from_str(&a.data).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"message","topic":"alerts","event":"fired","id":"42:1","payload":{"n":1}})
    );
    let b = sse.next_event(WAIT).unwrap();
    assert_eq!(b.id.as_deref(), Some("42:3"));
    assert!(b.data.contains("\"payload\":\"hi\""));
}

#[test]
fn resume_by_header_or_query_continues_without_gap_or_duplicate() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (_, mut sse) = Sse::open(addr, "/events?topics=alerts", "");
    assert!(eventually(WAIT, || server
        .metrics()
        .connections(Transport::Sse)
        == 1));
    for i in 0..5 {
        publish(&mut w, "alerts", "e", &i.to_string());
    }
    let mut last = String::new();
    for i in 0..3 {
        let e = sse.next_event(WAIT).unwrap();
        assert_eq!(
            e.data.split("\"payload\":").nth(1).unwrap(),
            format!("{i}}}")
        );
        last = e.id.unwrap();
    }
    drop(sse);
    for i in 5..7 {
        publish(&mut w, "alerts", "e", &i.to_string());
    }
    for (path, header) in [
        (
            "/events?topics=alerts".to_owned(),
            format!("Last-Event-ID: {last}\r\n"),
        ),
        (
            format!("/events?topics=alerts&last_event_id={last}"),
            String::new(),
        ),
    ] {
        let (status, mut again) = Sse::open(addr, &path, &header);
        assert_eq!(status, 200);
        let ids: Vec<String> = (0..4)
            .map(|_| again.next_event(WAIT).unwrap().id.unwrap())
            .collect();
        assert_eq!(ids, ["42:4", "42:5", "42:6", "42:7"], "{path}");
        assert!(
            again.next_event(Duration::from_millis(300)).is_none(),
            "no duplicates"
        );
    }
}

#[test]
fn a_resume_the_history_cannot_fill_gets_an_explicit_gap_event() {
    let (server, mut w) = start(|c| c.topics[0].history = 2);
    let addr = server.local_addr().unwrap();
    for i in 0..5 {
        publish(&mut w, "alerts", "e", &i.to_string());
    }
    assert!(eventually(WAIT, || server
        .metrics()
        .get(Counter::MessagesIn)
        == 5));
    let (_, mut sse) = Sse::open(addr, "/events?topics=alerts", "Last-Event-ID: 42:1\r\n");
    let gap = sse.next_event(WAIT).unwrap();
    assert_eq!(gap.event.as_deref(), Some("gap"));
    let v: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"topic":"alerts","reason":"history_evicted","position":"42:5"})
    );
    publish(&mut w, "alerts", "e", r#""live""#);
    assert_eq!(
        sse.next_event(WAIT).unwrap().id.as_deref(),
        Some("42:6"),
        "live after the gap"
    );
    let (_, mut other) = Sse::open(addr, "/events?topics=alerts", "Last-Event-ID: 7:1\r\n");
    let v: serde_json::Value = serde_json::from_str(&other.next_event(WAIT).unwrap().data).unwrap();
    assert_eq!(v["reason"], "epoch_changed");
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::Gaps) == 2
    });
    assert_eq!(server.metrics().get(Counter::Gaps), 2);
}

#[test]
fn idle_streams_get_comment_heartbeats() {
    let (server, _w) = start(|c| c.timeouts.sse_heartbeat = Duration::from_millis(200));
    let addr = server.local_addr().unwrap();
    let (_, mut sse) = Sse::open(addr, "/events?topics=alerts", "");
    let mut comments = 0;
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while comments < 2 && std::time::Instant::now() < end {
        if let Some(e) = sse.next(Duration::from_millis(500)) {
            if e.comment {
                comments += 1;
            }
        }
    }
    assert_eq!(comments, 2);
}

#[test]
fn bad_sse_requests_get_specific_statuses() {
    let (server, _w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    assert_eq!(http_get(addr, "/events").0, 400);
    assert_eq!(http_get(addr, "/events?topics=nope").0, 404);
    let (status, body) = http_get(addr, "/events?topics=alerts&last_event_id=banana");
    assert_eq!(status, 400);
    assert!(body.contains("invalid Last-Event-ID"));
}

#[test]
fn a_slow_sse_reader_has_its_stream_ended_and_resumes_from_its_last_id() {
    let (server, mut w) = start(|c| {
        c.limits.max_outbound_bytes = 64 * 1024;
        c.topics[0].history = 100_000;
    });
    let addr = server.local_addr().unwrap();
    let (_, mut sse) = Sse::open(addr, "/events?topics=alerts", "");
    shrink_rcvbuf(&sse.stream);
    let m = server.metrics();
    assert!(eventually(WAIT, || m.connections(Transport::Sse) == 1));
    let filler = "z".repeat(2000);
    let total = 6_000;
    let mut sent = 0;
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while sent < total && std::time::Instant::now() < end {
        let p = format!("{{\"i\":{sent},\"f\":\"{filler}\"}}");
        if w.try_publish("alerts", "e", p.as_bytes()).is_ok() {
            sent += 1;
        } else {
            w.flush();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    w.flush();
    assert!(eventually(WAIT, || m.get(Counter::SlowConsumerCloses) == 1));
    // It reads what reached it, then the end of the stream.
    let mut last = None;
    while let Some(e) = sse.next_event(Duration::from_secs(2)) {
        last = e.id;
    }
    let last = last.expect("some events arrived before the stream ended");
    // Resuming from the last id delivers the rest from history, in order.
    let (_, mut again) = Sse::open(
        addr,
        "/events?topics=alerts",
        &format!("Last-Event-ID: {last}\r\n"),
    );
    let first = again.next_event(WAIT).unwrap();
    let next: u64 = last.split(':').nth(1).unwrap().parse::<u64>().unwrap() + 1;
    assert_eq!(first.id, Some(format!("42:{next}")));
}
