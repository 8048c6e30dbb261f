//! Plain WebSocket at `/ws`: subscriptions, messages with resumable ids, commands with
//! replies to the sender only, the slow-consumer policy, and `/healthz` + `/metrics`.

#[path = "peers/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use ebbflow::channels::{Counter, ReplyError, Transport};
use support::*;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn subscribers_get_their_topics_in_order_and_can_subscribe_and_unsubscribe() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let mut ws = ws_connect(addr, "/ws?topics=alerts");
    let first = ws_json(&mut ws);
    assert_eq!(first["type"], "subscribed");
    assert_eq!(first["topics"], serde_json::json!(["alerts"]));
    assert_eq!(first["position"], "42:0");
    publish(&mut w, "alerts", "fired", r#"{"n":1}"#);
    publish(&mut w, "dashboard", "state", r#"{"x":1}"#);
    publish(&mut w, "alerts", "fired", r#"{"n":2}"#);
    let a = ws_json(&mut ws);
    assert_eq!(
        a,
        serde_json::json!({"type":"message","topic":"alerts","event":"fired","id":"42:1","payload":{"n":1}})
    );
    assert_eq!(ws_json(&mut ws)["id"], "42:3");
    // Subscribing to the coalescing topic delivers its latest message first.
    send(&mut ws, r#"{"type":"subscribe","topics":["dashboard"]}"#);
    assert_eq!(ws_json(&mut ws)["type"], "subscribed");
    let snap = ws_json(&mut ws);
    assert_eq!(
        (snap["topic"].as_str(), snap["id"].as_str()),
        (Some("dashboard"), Some("42:2"))
    );
    send(&mut ws, r#"{"type":"unsubscribe","topics":["alerts"]}"#);
    assert_eq!(ws_json(&mut ws)["type"], "unsubscribed");
    publish(&mut w, "alerts", "fired", "3");
    publish(&mut w, "dashboard", "state", "4");
    assert_eq!(
        ws_json(&mut ws)["payload"],
        4,
        "alerts no longer arrive, dashboard does"
    );
    send(&mut ws, r#"{"type":"ping"}"#);
    assert_eq!(ws_json(&mut ws)["type"], "pong");
    // A resume by `since` on subscribe replays from history.
    let mut late = ws_connect(addr, "/ws?topics=alerts&since=42:1");
    assert_eq!(ws_json(&mut late)["type"], "subscribed");
    assert_eq!(ws_json(&mut late)["id"], "42:3");
    assert_eq!(ws_json(&mut late)["id"], "42:4");
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().connections(Transport::Ws) == 2
    });
    assert_eq!(server.metrics().connections(Transport::Ws), 2);
}

#[test]
fn bad_messages_get_specific_errors_and_the_connection_stays() {
    let (server, _w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (status, body) = http_raw(
        addr,
        b"GET /ws?topics=nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown topic: nope"));
    let mut ws = ws_connect(addr, "/ws");
    for (msg, code) in [
        ("not json", "bad_message"),
        ("[1,2]", "bad_message"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (
            r#"{"type":"subscribe","topics":["nope"],"ref":"r1"}"#,
            "unknown_topic",
        ),
        (r#"{"type":"subscribe","topics":"alerts"}"#, "bad_message"),
        (
            r#"{"type":"subscribe","topics":["alerts"],"since":"x"}"#,
            "bad_message",
        ),
    ] {
        send(&mut ws, msg);
        let e = ws_json(&mut ws);
        assert_eq!(e["type"], "error", "{msg}");
        assert_eq!(e["code"], code, "{msg}");
    }
    send(&mut ws, r#"{"type":"ping"}"#);
    assert_eq!(ws_json(&mut ws)["type"], "pong");
}

#[test]
fn a_command_reaches_the_pipeline_and_only_its_sender_gets_the_reply() {
    let (mut server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (mut rx, mut replier) = server.take_commands().unwrap();
    assert!(server.take_commands().is_none());
    let mut sender = ws_connect(addr, "/ws?topics=room:lobby");
    let mut other = ws_connect(addr, "/ws?topics=room:lobby");
    ws_json(&mut sender);
    ws_json(&mut other);
    send(
        &mut sender,
        r#"{"type":"command","topic":"room:lobby","event":"ack","payload":{"alert":7},"ref":"c1"}"#,
    );
    let mut cmd = None;
    assert!(eventually(WAIT, || {
        cmd = rx.try_recv();
        cmd.is_some()
    }));
    let cmd = cmd.unwrap();
    assert_eq!(
        (cmd.topic.as_str(), cmd.event.as_str()),
        ("room:lobby", "ack")
    );
    assert_eq!(cmd.payload, br#"{"alert":7}"#);
    // The pipeline answers the sender and publishes the effect for everyone.
    replier
        .reply(cmd.origin, Ok(br#"{"acked":7}"#.to_vec()))
        .unwrap();
    publish(&mut w, "room:lobby", "acked", r#"{"alert":7}"#);
    let r = ws_until(&mut sender, |v| v["type"] == "reply");
    assert_eq!(
        r,
        serde_json::json!({"type":"reply","ref":"c1","status":"ok","response":{"acked":7}})
    );
    ws_until(&mut sender, |v| v["event"] == "acked");
    let o = ws_json(&mut other);
    assert_eq!(
        o["event"], "acked",
        "the other client sees the effect, not the reply"
    );
    // Error replies and refusals.
    send(
        &mut sender,
        r#"{"type":"command","topic":"room:lobby","event":"ack","payload":1,"ref":"c2"}"#,
    );
    assert!(eventually(WAIT, || {
        match rx.try_recv() {
            Some(c) => {
                replier
                    .reply(c.origin, Err(ReplyError::new("not_found", "no alert 1")))
                    .unwrap();
                true
            }
            None => false,
        }
    }));
    let r = ws_until(&mut sender, |v| v["type"] == "reply");
    assert_eq!(r["status"], "error");
    assert_eq!(
        r["response"],
        serde_json::json!({"code":"not_found","reason":"no alert 1"})
    );
    send(
        &mut sender,
        r#"{"type":"command","topic":"alerts","event":"ack","ref":"c3"}"#,
    );
    let r = ws_until(&mut sender, |v| v["type"] == "reply");
    assert_eq!(r["response"]["code"], "unknown_event");
    send(
        &mut sender,
        r#"{"type":"command","topic":"zzz","event":"ack","ref":"c4"}"#,
    );
    let r = ws_until(&mut sender, |v| v["type"] == "reply");
    assert_eq!(r["response"]["code"], "unmatched_topic");
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::CommandsIn) == 2
    });
    assert_eq!(server.metrics().get(Counter::CommandsIn), 2);
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::RepliesOut) == 2
    });
    assert_eq!(server.metrics().get(Counter::RepliesOut), 2);
}

#[test]
fn a_slow_consumer_is_closed_with_1013_while_a_fast_one_gets_everything() {
    let (server, mut w) = start(|c| {
        c.limits.max_outbound_bytes = 256 * 1024;
        c.timeouts.close_linger = Duration::from_secs(10);
        c.topics[0].history = 100_000;
    });
    let addr = server.local_addr().unwrap();
    let mut slow = ws_connect_small(addr, "/ws?topics=alerts");
    let mut fast = ws_connect(addr, "/ws?topics=alerts");
    ws_json(&mut slow);
    ws_json(&mut fast);
    let filler = "x".repeat(2000);
    let total = 6_000; // 12 MB: more than the slow client's socket buffers hold
    let mut received = 0;
    let m = server.metrics();
    let end = std::time::Instant::now() + Duration::from_secs(90);
    // Bursts of 50 (100 KB) the fast client keeps up with; the slow one reads nothing.
    for burst in 0..total / 50 {
        for i in burst * 50..(burst + 1) * 50 {
            let p = format!("{{\"i\":{i},\"f\":\"{filler}\"}}");
            w.try_publish("alerts", "e", p.as_bytes()).unwrap();
        }
        w.flush();
        while received < (burst + 1) * 50 && std::time::Instant::now() < end {
            if let Got::Text(t) = ws_next(&mut fast, Duration::from_millis(100)) {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_eq!(
                    v["payload"]["i"], received,
                    "the fast client sees every message in order"
                );
                received += 1;
            }
        }
    }
    assert_eq!(received, total);
    assert!(eventually(WAIT, || m.get(Counter::SlowConsumerCloses) == 1));
    // The slow client reads its backlog, then the close frame.
    assert_eq!(
        ws_close_code(&mut slow),
        Some((CloseCode::Again, "slow consumer".to_owned()))
    );
}

#[test]
fn a_slow_consumer_of_a_coalescing_topic_skips_to_the_latest_instead() {
    let (server, mut w) = start(|c| {
        c.limits.max_outbound_bytes = 64 * 1024;
        c.topics[1].history = 100_000;
    });
    let addr = server.local_addr().unwrap();
    let mut slow = ws_connect_small(addr, "/ws?topics=dashboard");
    ws_json(&mut slow);
    let filler = "y".repeat(2000);
    let total = 6_000;
    let mut sent = 0;
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while sent < total && std::time::Instant::now() < end {
        let p = format!("{{\"i\":{sent},\"f\":\"{filler}\"}}");
        if w.try_publish("dashboard", "state", p.as_bytes()).is_ok() {
            sent += 1;
        } else {
            w.flush();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    w.flush();
    let m = server.metrics();
    assert!(eventually(WAIT, || m.get(Counter::MessagesIn) == total as u64));
    // Now read: the stream skips ahead and ends on the latest state, still open.
    let mut last = -1i64;
    let mut got = 0;
    while let Got::Text(t) = ws_next(&mut slow, Duration::from_millis(500)) {
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        let i = v["payload"]["i"].as_i64().unwrap();
        assert!(i > last, "in order");
        last = i;
        got += 1;
    }
    assert_eq!(last, total as i64 - 1, "ends on the latest message");
    assert!(
        got < total,
        "skipped some ({got} of {total}); skips {}",
        m.get(Counter::SlowConsumerSkips)
    );
    assert!(m.get(Counter::SlowConsumerSkips) >= 1);
    assert_eq!(m.get(Counter::SlowConsumerCloses), 0);
    send(&mut slow, r#"{"type":"ping"}"#);
    assert_eq!(ws_json(&mut slow)["type"], "pong");
}

#[test]
fn healthz_and_metrics_answer_over_http_with_the_hook_text() {
    let (server, mut w) = start(|c| {
        c.metrics_hook = Some(Arc::new(|out: &mut String| {
            out.push_str("ebbflow_stage_latency_ns{stage=\"notify\",quantile=\"0.99\"} 1234\n")
        }));
    });
    let addr = server.local_addr().unwrap();
    server.track_bus_drops(&w);
    let (status, body) = http_get(addr, "/healthz");
    assert_eq!(status, 200);
    assert!(body.ends_with("\r\n\r\nok\n"));
    let _ws = ws_connect(addr, "/ws?topics=alerts");
    publish(&mut w, "alerts", "e", "1");
    assert!(eventually(WAIT, || server
        .metrics()
        .get(Counter::DeliveriesWs)
        == 1));
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(
        body.contains("ebbflow_channels_connections{transport=\"ws\"} 1"),
        "{body}"
    );
    assert!(body.contains("ebbflow_channels_messages_in_total 1"));
    assert!(body.contains("ebbflow_channels_deliveries_ws_total 1"));
    assert!(body.contains("# TYPE ebbflow_channels_slow_consumer_closes_total counter"));
    assert!(body.contains("ebbflow_stage_latency_ns{stage=\"notify\",quantile=\"0.99\"} 1234"));
    assert!(body.contains("ebbflow_channels_bus_dropped_total 0"));
    assert!(body.contains("process_resident_memory_bytes "));
    assert_eq!(http_get(addr, "/nope").0, 404);
    assert_eq!(
        http_raw(
            addr,
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        .0,
        405
    );
}

#[test]
fn listeners_that_answer_pings_stay_and_silent_sockets_are_closed_as_idle() {
    let (server, mut w) = start(|c| {
        c.timeouts.idle = Duration::from_millis(1200);
        c.timeouts.ping = Duration::from_millis(300);
        c.timeouts.close_linger = Duration::from_millis(300);
    });
    let addr = server.local_addr().unwrap();
    // A listener: reads (so its client library answers pings) but never sends itself.
    let mut listener = ws_connect(addr, "/ws?topics=alerts");
    ws_json(&mut listener);
    // A silent one: completes the handshake, then never reads or writes again.
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut silent,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while std::time::Instant::now() < end {
        publish(&mut w, "alerts", "e", &n.to_string());
        if let Got::Text(t) = ws_next(&mut listener, Duration::from_millis(200)) {
            assert!(t.contains("\"payload\""), "{t}");
        }
        n += 1;
    }
    let m = server.metrics();
    assert_eq!(m.get(Counter::IdleTimeouts), 1, "only the silent socket");
    assert!(eventually(WAIT, || m.connections(Transport::Ws) == 1));
    send(&mut listener, r#"{"type":"ping"}"#);
    ws_until(&mut listener, |v| v["type"] == "pong");
}

#[test]
fn shutdown_closes_every_websocket_with_1001_and_joins_the_thread() {
    let (server, _w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let mut plain = ws_connect(addr, "/ws?topics=alerts");
    ws_json(&mut plain);
    let mut phx = ws_connect(addr, "/socket/websocket?vsn=2.0.0");
    send(&mut phx, r#"["1","1","alerts","phx_join",{}]"#);
    ws_json(&mut phx);
    server.shutdown().unwrap();
    for ws in [&mut plain, &mut phx] {
        assert_eq!(
            ws_close_code(ws),
            Some((CloseCode::Away, "server shutting down".to_owned()))
        );
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is gone"
    );
}
