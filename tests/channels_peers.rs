//! Real clients, unchanged, against the server: the official `phoenix` npm client (Node,
//! `ws` transport), an `EventSource` (npm `eventsource`), and Python `websockets`.
//! The peers are installed by `scripts/setup.d/channels.sh`; each runs as a child process
//! on loopback with a bounded lifetime.

#[path = "peers/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use ebbflow::channels::{Counter, Transport};
use serde_json::{json, Value};
use support::*;

/// A child process printing one JSON object per line.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
    /// Every line so far.
    seen: Vec<Value>,
    /// Lines not yet matched by `expect`, oldest first.
    pending: Vec<Value>,
}

impl Peer {
    fn spawn(program: &str, args: &[&str]) -> Peer {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} (run scripts/setup.d/channels.sh): {e}")
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The oldest unmatched line matching `pred`, waiting up to 20 s for it.
    fn expect(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&mut pred) {
            return self.pending.remove(i);
        }
        let end = Instant::now() + Duration::from_secs(20);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                    self.pending.push(v);
                }
                Err(_) => break,
            }
        }
        panic!("peer never printed {what}; saw {:#?}", self.seen);
    }

    fn ev(&mut self, ev: &str) -> Value {
        self.expect(ev, |v| v["ev"] == ev)
    }

    fn quit(mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"quit\n");
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn the_official_phoenix_client_joins_receives_pushes_tracks_presence_and_rejoins() {
    let (mut server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (mut rx, mut replier) = server.take_commands().unwrap();
    let mut node = Peer::spawn(
        "node",
        &["js/phoenix_client.js", &format!("ws://{addr}/socket")],
    );
    node.ev("open");
    let joined = node.ev("joined");
    assert!(joined["response"]["position"]
        .as_str()
        .unwrap()
        .starts_with("42:"));
    let err = node.expect("join_error for nope", |v| {
        v["ev"] == "join_error" && v["topic"] == "nope"
    });
    assert_eq!(err["response"]["reason"], "unmatched topic");
    assert_eq!(node.ev("presence")["users"], json!(["node"]));
    // The push reaches the pipeline; the reply reaches the client's push callbacks.
    let mut cmd = None;
    assert!(eventually(WAIT, || {
        cmd = rx.try_recv();
        cmd.is_some()
    }));
    let cmd = cmd.unwrap();
    assert_eq!(
        (cmd.event.as_str(), &cmd.payload[..]),
        ("ack", &br#"{"id":1}"#[..])
    );
    replier
        .reply(cmd.origin, Ok(br#"{"acked":1}"#.to_vec()))
        .unwrap();
    let reply = node.expect("reply to ack", |v| v["ev"] == "reply");
    assert_eq!(reply["response"], json!({"acked": 1}));
    let refused = node.ev("reply_error");
    assert_eq!(refused["response"]["reason"], "unknown event");
    // Broadcasts arrive through channel.on.
    publish(&mut w, "room:lobby", "said", r#"{"text":"hello"}"#);
    assert_eq!(node.ev("said")["payload"], json!({"text": "hello"}));
    // Heartbeats every 300 ms are answered: the client would close otherwise.
    std::thread::sleep(Duration::from_millis(1000));
    let fresh: Vec<Value> = node.lines.try_iter().collect();
    node.seen.extend(fresh.iter().cloned());
    node.pending.extend(fresh);
    assert!(
        !node.seen.iter().any(|v| v["ev"] == "close"),
        "heartbeats answered"
    );
    // A server-side disconnect: the client reconnects and rejoins by itself.
    server.disconnect_all();
    assert_eq!(node.ev("close")["code"], 1012);
    node.ev("open");
    node.ev("joined");
    assert_eq!(node.ev("presence")["users"], json!(["node"]));
    publish(&mut w, "room:lobby", "said", r#"{"text":"again"}"#);
    assert_eq!(node.ev("said")["payload"], json!({"text": "again"}));
    // The server counts after it writes: the client may see the effect first.
    eventually(std::time::Duration::from_secs(5), || {
        server.metrics().connections(Transport::Phoenix) == 1
    });
    assert_eq!(server.metrics().connections(Transport::Phoenix), 1);
    node.quit();
}

#[test]
fn an_eventsource_resumes_after_a_forced_disconnect_without_gap_or_duplicate() {
    let (server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let mut es = Peer::spawn(
        "node",
        &[
            "js/sse_client.js",
            &format!("http://{addr}/events?topics=alerts"),
        ],
    );
    es.ev("open");
    for i in 0..5 {
        publish(&mut w, "alerts", "e", &i.to_string());
    }
    for _ in 0..5 {
        es.ev("message");
    }
    server.disconnect_all();
    es.ev("error");
    // Published while the client is away: it must get these from history.
    for i in 5..10 {
        publish(&mut w, "alerts", "e", &i.to_string());
    }
    es.ev("open");
    for _ in 0..5 {
        es.ev("message");
    }
    for i in 10..12 {
        publish(&mut w, "alerts", "e", &i.to_string());
    }
    es.ev("message");
    es.ev("message");
    let got: Vec<(String, i64)> = es
        .seen
        .iter()
        .filter(|v| v["ev"] == "message")
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_owned(),
                v["data"]["payload"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = (0..12).map(|i| (format!("42:{}", i + 1), i)).collect();
    assert_eq!(
        got, want,
        "every message once, in order, across the reconnect"
    );
    assert!(!es.seen.iter().any(|v| v["ev"] == "gap"));
    es.quit();
}

#[test]
fn python_websockets_subscribes_commands_and_closes_normally() {
    let (mut server, mut w) = start(|_| {});
    let addr = server.local_addr().unwrap();
    let (mut rx, mut replier) = server.take_commands().unwrap();
    let mut py = Peer::spawn(
        "python3",
        &[
            "py/ws_client.py",
            &format!("ws://{addr}/ws?topics=alerts"),
            "3",
        ],
    );
    let sub = py.ev("recv");
    assert_eq!(sub["msg"]["type"], "subscribed");
    let mut cmd = None;
    assert!(eventually(WAIT, || {
        cmd = rx.try_recv();
        cmd.is_some()
    }));
    let cmd = cmd.unwrap();
    assert_eq!(cmd.payload, br#"{"py":true}"#);
    replier.reply(cmd.origin, Ok(b"{}".to_vec())).unwrap();
    py.expect("the reply", |v| {
        v["msg"]["type"] == "reply" && v["msg"]["ref"] == "p1" && v["msg"]["status"] == "ok"
    });
    for i in 0..3 {
        publish(&mut w, "alerts", "e", &format!("{{\"i\":{i}}}"));
    }
    assert_eq!(py.ev("closed")["code"], 1000);
    let payloads: Vec<Value> = py
        .seen
        .iter()
        .filter(|v| v["msg"]["type"] == "message")
        .map(|v| v["msg"]["payload"]["i"].clone())
        .collect();
    assert_eq!(payloads, [json!(0), json!(1), json!(2)]);
    let m = server.metrics();
    assert!(eventually(WAIT, || m.connections(Transport::Ws) == 0));
    assert_eq!(m.get(Counter::ProtocolCloses), 0);
    py.quit();
}
