//! Fanning a message out to many WebSocket clients costs the same allocations as sending
//! it to one: the message is encoded once and deliveries share the encoded bytes. (Its own
//! test binary: the process-wide allocation count must not see other tests' threads.)

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "peers/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ebbflow::channels::{Counter, Transport};
use support::*;

/// Opens a WebSocket subscribed to `alerts` by hand; returns the raw stream.
fn raw_subscriber(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(
        b"GET /ws?topics=alerts HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    s
}

fn drain(streams: &mut [TcpStream]) {
    let mut buf = [0u8; 65536];
    for s in streams {
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

/// Process-wide allocations while `messages` go out to `clients` subscribers.
fn allocations_for(clients: usize, messages: u64) -> u64 {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let m = server.metrics();
    let mut streams: Vec<TcpStream> = (0..clients).map(|_| raw_subscriber(addr)).collect();
    assert!(eventually(WAIT, || m.connections(Transport::Ws) == clients as i64));
    let payload = br#"{"alert":"CrashLoopBackOff","pod":"web-1"}"#;
    let mut round = |n: u64| {
        let before = m.get(Counter::DeliveriesWs);
        for _ in 0..n {
            w.try_publish("alerts", "fired", payload).unwrap();
        }
        w.flush();
        let want = before + n * clients as u64;
        assert!(eventually(WAIT, || m.get(Counter::DeliveriesWs) == want));
    };
    // Warm up: buffers grow to their working size, history fills.
    for _ in 0..3 {
        round(messages);
        drain(&mut streams);
    }
    let ((), n) = counting_alloc::in_process(|| round(messages));
    drain(&mut streams);
    n
}

#[test]
fn fan_out_to_forty_clients_allocates_no_more_than_to_one() {
    let messages = 300;
    let one = allocations_for(1, messages);
    let forty = allocations_for(40, messages);
    eprintln!("allocations for {messages} messages: 1 client {one}, 40 clients {forty}");
    // Per message, on the broadcast thread: the event name, two encoded forms and their
    // shared handles, the JSON check; the count is per message, never per client.
    assert!(
        one <= messages * 6,
        "{one} allocations for {messages} messages to one client"
    );
    assert!(
        forty <= one + messages / 10,
        "40 clients: {forty} allocations, 1 client: {one}"
    );
}
