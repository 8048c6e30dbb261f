//! Bad input, each with its specific answer (HTTP status, close code, phx_reply error,
//! counter), while the server keeps serving everyone else.

#[path = "peers/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ebbflow::channels::{Counter, Transport};
use serde_json::json;
use support::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket opened by hand (raw frames can then be sent).
fn raw_ws(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// A masked client frame (FIN set) with any opcode and payload length.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [1u8, 2, 3, 4];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads server frames until a close frame; returns its code and reason.
fn close_of(s: &mut TcpStream) -> (u16, String) {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).expect("a frame before EOF");
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            len = u16::from_be_bytes(l) as usize;
        } else if len == 127 {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).unwrap();
            len = u64::from_be_bytes(l) as usize;
        }
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).unwrap();
        if h[0] & 0x0f == 0x8 {
            let code = u16::from_be_bytes([p[0], p[1]]);
            return (code, String::from_utf8_lossy(&p[2..]).into_owned());
        }
    }
    panic!("no close frame");
}

/// The server still serves a normal client end to end.
fn still_serves(addr: SocketAddr, w: &mut ebbflow::channels::BusWriter, n: u32) {
    let mut ws = ws_connect(addr, "/ws?topics=alerts");
    assert_eq!(ws_json(&mut ws)["type"], "subscribed");
    publish(w, "alerts", "check", &n.to_string());
    assert_eq!(ws_until(&mut ws, |v| v["event"] == "check")["payload"], n);
}

#[test]
fn garbage_before_the_handshake_gets_400_and_others_are_served() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (status, body) = http_raw(
        addr,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed HTTP request"));
    let (status, _) = http_raw(addr, &[b'A'; 20_000]);
    assert!(status == 400 || status == 431, "{status}");
    let mut huge = b"GET /healthz HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.extend(std::iter::repeat_n(b'p', 9000));
    let (status, _) = http_raw(addr, &huge);
    assert_eq!(status, 431, "a head over max_request_bytes");
    still_serves(addr, &mut w, 1);
    // The server counts after it acts: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::HttpErrors) >= 3
    });
    assert!(server.metrics().get(Counter::HttpErrors) >= 3);
}

#[test]
fn a_wrong_websocket_version_gets_426_naming_the_supported_one() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    );
    let (status, body) = http_raw(addr, req.as_bytes());
    assert_eq!(status, 426);
    assert!(body.contains("Sec-WebSocket-Version: 13\r\n"));
    let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(http_raw(addr, no_key.as_bytes()).0, 400);
    assert_eq!(http_get(addr, "/ws").0, 426, "no upgrade at all");
    still_serves(addr, &mut w, 2);
}

#[test]
fn a_frame_over_the_size_limit_is_closed_with_1009() {
    let (server, mut w) = start(|c| c.limits.max_message_bytes = 4096);
    let addr = server.local_addr().unwrap();
    let mut s = raw_ws(addr, "/ws");
    s.write_all(&frame(0x1, "x".repeat(10_000).as_bytes()))
        .unwrap();
    assert_eq!(close_of(&mut s), (1009, "message too big".into()));
    still_serves(addr, &mut w, 3);
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::ProtocolCloses) == 1
    });
    assert_eq!(server.metrics().get(Counter::ProtocolCloses), 1);
}

#[test]
fn invalid_utf8_in_a_text_frame_is_closed_with_1007() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    for path in ["/ws", "/socket/websocket?vsn=2.0.0"] {
        let mut s = raw_ws(addr, path);
        s.write_all(&frame(0x1, b"{\"type\":\"\xff\xfe\"}"))
            .unwrap();
        assert_eq!(
            close_of(&mut s),
            (1007, "invalid UTF-8 in text frame".into()),
            "{path}"
        );
    }
    still_serves(addr, &mut w, 4);
}

#[test]
fn malformed_phoenix_arrays_are_closed_with_1007_and_binary_with_1003() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    for bad in [
        "not json",
        "{\"topic\":\"alerts\"}",
        "[null,null,\"alerts\",\"phx_join\"]",
        "[null,null,\"alerts\",\"phx_join\",{},6]",
        "[{},null,\"alerts\",\"phx_join\",{}]",
        "[null,null,7,\"phx_join\",{}]",
    ] {
        let mut s = raw_ws(addr, "/socket/websocket?vsn=2.0.0");
        s.write_all(&frame(0x1, bad.as_bytes())).unwrap();
        assert_eq!(
            close_of(&mut s),
            (1007, "malformed Phoenix message".into()),
            "{bad}"
        );
    }
    let mut s = raw_ws(addr, "/socket/websocket?vsn=2.0.0");
    s.write_all(&frame(0x2, b"\x01\x02")).unwrap();
    assert_eq!(
        close_of(&mut s),
        (1003, "binary frames are not supported".into())
    );
    // An unmasked client frame is a protocol error.
    let mut s = raw_ws(addr, "/ws");
    s.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    assert_eq!(close_of(&mut s).0, 1002);
    still_serves(addr, &mut w, 5);
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::ProtocolCloses) == 8
    });
    assert_eq!(server.metrics().get(Counter::ProtocolCloses), 8);
}

#[test]
fn a_push_flood_is_rate_limited_then_closed_with_1008_while_others_are_served() {
    let (mut server, mut w) = start(|c| {
        c.limits.push_burst = 10;
        c.limits.push_per_second = 1;
        c.limits.flood_close_after = 200;
    });
    let addr = server.local_addr().unwrap();
    let (mut rx, _replier) = server.take_commands().unwrap();
    let mut ws = ws_connect(addr, "/socket/websocket?vsn=2.0.0");
    send(
        &mut ws,
        &json!(["1", "1", "room:lobby", "phx_join", {}]).to_string(),
    );
    ws_until(&mut ws, |v| v[3] == "phx_reply");
    for i in 0..300 {
        if ws
            .send(tungstenite::Message::Text(
                json!(["1", i.to_string(), "room:lobby", "ack", {"i": i}])
                    .to_string()
                    .into(),
            ))
            .is_err()
        {
            break;
        }
    }
    let mut limited = 0;
    let code = loop {
        match ws_next(&mut ws, WAIT) {
            Got::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v[3] == "phx_reply" && v[4]["response"]["code"] == "rate_limited" {
                    limited += 1;
                }
            }
            Got::Closed(c) => break c,
            Got::Nothing => panic!("neither closed nor answered"),
        }
    };
    let (code, reason) = code.expect("a close frame");
    assert_eq!(u16::from(code), 1008);
    assert_eq!(reason, "push flood");
    assert!(limited >= 190, "{limited} rate_limited replies");
    let mut forwarded = 0;
    while rx.try_recv().is_some() {
        forwarded += 1;
    }
    assert!(
        (10..=12).contains(&forwarded),
        "only the burst reached the pipeline: {forwarded}"
    );
    // The server counts after it acts: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::CommandsRateLimited) >= 190
    });
    assert!(server.metrics().get(Counter::CommandsRateLimited) >= 190);
    still_serves(addr, &mut w, 6);
}

#[test]
fn a_thousand_half_open_connections_do_not_stop_service_and_time_out() {
    let (server, mut w) = start(|c| c.timeouts.handshake = Duration::from_secs(8));
    let addr = server.local_addr().unwrap();
    let mut idle = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr).unwrap();
        if i % 2 == 0 {
            // Half of them start a request and never finish it.
            s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        idle.push(s);
    }
    let m = server.metrics();
    assert!(eventually(WAIT, || m.connections(Transport::Http) == 1000));
    still_serves(addr, &mut w, 7);
    assert_eq!(m.get(Counter::HandshakeTimeouts), 0);
    assert!(eventually(Duration::from_secs(20), || m
        .get(Counter::HandshakeTimeouts)
        == 1000));
    assert_eq!(m.connections(Transport::Http), 0);
    // Each was closed: reads see EOF.
    let mut buf = [0u8; 16];
    idle[0].set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(idle[0].read(&mut buf).unwrap_or(0), 0);
    still_serves(addr, &mut w, 8);
}

#[test]
fn connections_over_the_limit_are_closed_on_accept() {
    let (server, mut w) = start(|c| c.limits.max_connections = 3);
    let addr = server.local_addr().unwrap();
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let m = server.metrics();
    assert!(eventually(WAIT, || m.connections(Transport::Http) == 3));
    let mut extra = TcpStream::connect(addr).unwrap();
    extra.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(extra.read(&mut buf).unwrap_or(0), 0, "closed at once");
    assert!(eventually(WAIT, || m.get(Counter::Rejected) == 1));
    drop(held);
    assert!(eventually(WAIT, || m.connections(Transport::Http) == 0));
    still_serves(addr, &mut w, 9);
}
