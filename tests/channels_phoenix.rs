//! Phoenix Channels V2 at `/socket/websocket?vsn=2.0.0`, frame by frame: heartbeat,
//! join/leave with replies, broadcasts, pushes answered by the pipeline, presence, and the
//! specific errors for unmatched topics and unknown events.

#[path = "peers/support.rs"]
mod support;

use ebbflow::channels::{Counter, Transport};
use serde_json::{json, Value};
use support::*;

const PATH: &str = "/socket/websocket?vsn=2.0.0";

fn phx(ws: &mut Ws, jr: Value, r: Value, topic: &str, event: &str, payload: Value) {
    send(ws, &json!([jr, r, topic, event, payload]).to_string());
}

/// The next frame whose event is `event`.
fn until_event(ws: &mut Ws, event: &str) -> Value {
    ws_until(ws, |v| v[3] == event)
}

#[test]
fn heartbeat_join_broadcast_leave_follow_the_v2_wire_format() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let mut ws = ws_connect(addr, PATH);
    phx(
        &mut ws,
        Value::Null,
        json!("1"),
        "phoenix",
        "heartbeat",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws),
        json!([null, "1", "phoenix", "phx_reply", {"status":"ok","response":{}}])
    );
    phx(
        &mut ws,
        json!("3"),
        json!("3"),
        "alerts",
        "phx_join",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws),
        json!(["3", "3", "alerts", "phx_reply", {"status":"ok","response":{"position":"42:0"}}])
    );
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().connections(Transport::Phoenix) == 1
    });
    assert_eq!(server.metrics().connections(Transport::Phoenix), 1);
    publish(&mut w, "alerts", "fired", r#"{"pod":"web-1"}"#);
    assert_eq!(
        ws_json(&mut ws),
        json!([null, null, "alerts", "fired", {"pod":"web-1"}])
    );
    phx(
        &mut ws,
        json!("3"),
        json!("4"),
        "alerts",
        "phx_leave",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws),
        json!(["3", "4", "alerts", "phx_reply", {"status":"ok","response":{}}])
    );
    assert_eq!(
        ws_json(&mut ws),
        json!(["3", "3", "alerts", "phx_close", {}])
    );
    publish(&mut w, "alerts", "fired", "2");
    phx(
        &mut ws,
        Value::Null,
        json!("5"),
        "phoenix",
        "heartbeat",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws)[1],
        "5",
        "no broadcast after leave, only the heartbeat reply"
    );
    // Joining with `since` replays from history.
    phx(
        &mut ws,
        json!("6"),
        json!("6"),
        "alerts",
        "phx_join",
        json!({"since": "42:0"}),
    );
    assert_eq!(ws_json(&mut ws)[3], "phx_reply");
    assert_eq!(ws_json(&mut ws)[4], json!({"pod":"web-1"}));
    assert_eq!(ws_json(&mut ws)[4], json!(2));
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::DeliveriesPhoenix) == 3
    });
    assert_eq!(server.metrics().get(Counter::DeliveriesPhoenix), 3);
}

#[test]
fn unmatched_topics_unknown_events_and_bad_params_get_error_replies() {
    let (server, _w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let mut ws = ws_connect(addr, PATH);
    let err = |reason: &str, code: &str| json!({"status":"error","response":{"reason":reason,"code":code}});
    phx(
        &mut ws,
        json!("1"),
        json!("1"),
        "nope",
        "phx_join",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws),
        json!([
            "1",
            "1",
            "nope",
            "phx_reply",
            err("unmatched topic", "unmatched_topic")
        ])
    );
    phx(
        &mut ws,
        json!("2"),
        json!("2"),
        "room:lobby",
        "ack",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws)[4],
        err("unmatched topic", "unmatched_topic"),
        "push before join"
    );
    phx(
        &mut ws,
        json!("3"),
        json!("3"),
        "room:lobby",
        "phx_join",
        json!({"since": 5}),
    );
    assert_eq!(ws_json(&mut ws)[4]["response"]["code"], "invalid_params");
    phx(
        &mut ws,
        json!("4"),
        json!("4"),
        "room:lobby",
        "phx_join",
        json!([1]),
    );
    assert_eq!(ws_json(&mut ws)[4]["response"]["code"], "invalid_params");
    phx(
        &mut ws,
        json!("5"),
        json!("5"),
        "room:lobby",
        "phx_join",
        json!({}),
    );
    assert_eq!(until_event(&mut ws, "phx_reply")[4]["status"], "ok");
    until_event(&mut ws, "presence_diff");
    phx(
        &mut ws,
        json!("5"),
        json!("6"),
        "room:lobby",
        "launch_missiles",
        json!({}),
    );
    assert_eq!(ws_json(&mut ws)[4], err("unknown event", "unknown_event"));
    phx(
        &mut ws,
        Value::Null,
        json!("7"),
        "phoenix",
        "dance",
        json!({}),
    );
    assert_eq!(ws_json(&mut ws)[4], err("unknown event", "unknown_event"));
    phx(
        &mut ws,
        json!("8"),
        json!("8"),
        "alerts",
        "phx_leave",
        json!({}),
    );
    assert_eq!(
        ws_json(&mut ws)[4],
        err("unmatched topic", "unmatched_topic"),
        "leave without join"
    );
    // The server counts after it acts: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::CommandErrors) >= 4
    });
    assert!(server.metrics().get(Counter::CommandErrors) >= 4);
    assert_eq!(
        http_get(addr, "/socket/websocket").0,
        400,
        "vsn is required"
    );
}

#[test]
fn pushes_reach_the_pipeline_and_the_reply_goes_to_the_sender_with_its_refs() {
    let (mut server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (mut rx, mut replier) = server.take_commands().unwrap();
    let mut a = ws_connect(addr, PATH);
    let mut b = ws_connect(addr, PATH);
    for ws in [&mut a, &mut b] {
        phx(
            ws,
            json!("1"),
            json!("1"),
            "room:lobby",
            "phx_join",
            json!({}),
        );
        until_event(ws, "phx_reply");
    }
    phx(
        &mut a,
        json!("1"),
        json!("9"),
        "room:lobby",
        "ack",
        json!({"id": 3}),
    );
    let mut got = None;
    assert!(eventually(WAIT, || {
        got = rx.try_recv();
        got.is_some()
    }));
    let cmd = got.unwrap();
    assert_eq!(
        (cmd.topic.as_str(), cmd.event.as_str(), &cmd.payload[..]),
        ("room:lobby", "ack", &br#"{"id":3}"#[..])
    );
    replier
        .reply(cmd.origin, Ok(br#"{"acked":3}"#.to_vec()))
        .unwrap();
    publish(&mut w, "room:lobby", "acked", r#"{"id":3}"#);
    assert_eq!(
        until_event(&mut a, "phx_reply"),
        json!(["1", "9", "room:lobby", "phx_reply", {"status":"ok","response":{"acked":3}}])
    );
    assert_eq!(until_event(&mut b, "acked")[4], json!({"id": 3}));
    // b never saw a reply to a's push (the next reply b sees is its own heartbeat's).
    phx(
        &mut b,
        Value::Null,
        json!("hb"),
        "phoenix",
        "heartbeat",
        json!({}),
    );
    assert_eq!(until_event(&mut b, "phx_reply")[1], "hb");
}

#[test]
fn presence_tracks_who_watches_a_topic() {
    let (server, _w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let mut alice = ws_connect(addr, PATH);
    phx(
        &mut alice,
        json!("1"),
        json!("1"),
        "room:lobby",
        "phx_join",
        json!({"user": "alice"}),
    );
    until_event(&mut alice, "phx_reply");
    let state = until_event(&mut alice, "presence_state");
    assert_eq!(state[0], "1", "presence_state carries the join ref");
    assert_eq!(state[4]["alice"]["metas"].as_array().unwrap().len(), 1);
    let own = until_event(&mut alice, "presence_diff");
    assert!(own[4]["joins"]["alice"].is_object());
    let mut bob = ws_connect(addr, PATH);
    phx(
        &mut bob,
        json!("1"),
        json!("1"),
        "room:lobby",
        "phx_join",
        json!({"user": "bob"}),
    );
    let state = until_event(&mut bob, "presence_state");
    let keys: Vec<&String> = state[4].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2);
    let diff = until_event(&mut alice, "presence_diff");
    assert!(diff[4]["joins"]["bob"]["metas"][0]["phx_ref"].is_string());
    assert_eq!(diff[4]["leaves"], json!({}));
    drop(bob);
    let diff = until_event(&mut alice, "presence_diff");
    assert!(
        diff[4]["leaves"]["bob"].is_object(),
        "bob's disconnect is a leave: {diff}"
    );
    // Topics without presence send none.
    phx(
        &mut alice,
        json!("2"),
        json!("2"),
        "alerts",
        "phx_join",
        json!({"user": "alice"}),
    );
    until_event(&mut alice, "phx_reply");
    phx(
        &mut alice,
        Value::Null,
        json!("hb"),
        "phoenix",
        "heartbeat",
        json!({}),
    );
    assert_eq!(ws_json(&mut alice)[1], "hb");
}
