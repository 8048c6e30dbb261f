//! Helpers for the channels tests: a server on loopback, blocking clients with timeouts.
//! Include with `#[path = "peers/support.rs"] mod support;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ebbflow::channels::{bus, BusWriter, Server, ServerConfig, TopicConfig};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub const WAIT: Duration = Duration::from_secs(10);

/// The topics most tests use.
pub fn topics() -> Vec<TopicConfig> {
    vec![
        TopicConfig::new("alerts", 64),
        TopicConfig::new("dashboard", 8).coalescing(),
        TopicConfig::new("room:lobby", 64)
            .with_commands(["ack", "snapshot"])
            .with_presence(),
    ]
}

/// Starts a server on 127.0.0.1:0 with `topics()`, after `tweak` edits the config.
pub fn start(tweak: impl FnOnce(&mut ServerConfig)) -> (Server, BusWriter) {
    let mut cfg = ServerConfig::new(Some("127.0.0.1:0".parse().unwrap()), topics());
    cfg.epoch = Some(42);
    tweak(&mut cfg);
    let (mut writer, reader) = bus(1 << 20);
    let server = Server::start(cfg, reader).expect("server starts");
    writer.set_waker(server.waker());
    (server, writer)
}

pub fn publish(w: &mut BusWriter, topic: &str, event: &str, payload: &str) {
    w.try_publish(topic, event, payload.as_bytes())
        .expect("bus has room");
    w.flush();
}

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// A blocking WebSocket client (read timeout 200 ms per call).
pub fn ws_connect(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (ws, _) =
        tungstenite::client::client(format!("ws://{addr}{path}"), MaybeTlsStream::Plain(stream))
            .expect("websocket handshake");
    ws
}

/// A WebSocket client whose socket receive buffer is capped at 64 KiB (so a client that
/// does not read blocks the server quickly instead of after tens of megabytes).
pub fn ws_connect_small(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    shrink_rcvbuf(&stream);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (ws, _) =
        tungstenite::client::client(format!("ws://{addr}{path}"), MaybeTlsStream::Plain(stream))
            .expect("websocket handshake");
    ws
}

/// Caps the receive buffer of `s` at 64 KiB (turns off receive autotuning).
pub fn shrink_rcvbuf(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 64 * 1024;
    // SAFETY: `s` owns a valid socket descriptor for the duration of the call, and the
    // option value points to a live `c_int` whose size is passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_RCVBUF)");
}

/// What a read attempt found.
#[derive(Debug)]
pub enum Got {
    Text(String),
    Closed(Option<(CloseCode, String)>),
    Nothing,
}

/// Reads the next text message or close within `timeout`.
pub fn ws_next(ws: &mut Ws, timeout: Duration) -> Got {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Text(t)) => return Got::Text(t.to_string()),
            Ok(Message::Close(f)) => return Got::Closed(f.map(|f| (f.code, f.reason.to_string()))),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Got::Closed(None),
        }
    }
    Got::Nothing
}

/// The next text message as JSON; panics on close or timeout.
pub fn ws_json(ws: &mut Ws) -> serde_json::Value {
    match ws_next(ws, WAIT) {
        Got::Text(t) => serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON: {t}: {e}")),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Reads until a message matching `pred` (others are skipped).
pub fn ws_until(
    ws: &mut Ws,
    mut pred: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Got::Text(t) = ws_next(ws, Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if pred(&v) {
                return v;
            }
        }
    }
    panic!("no matching message within {WAIT:?}");
}

/// Reads until the server closes; returns the close frame's code and reason.
pub fn ws_close_code(ws: &mut Ws) -> Option<(CloseCode, String)> {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Got::Closed(c) = ws_next(ws, Duration::from_millis(200)) {
            return c;
        }
    }
    panic!("the server did not close within {WAIT:?}");
}

pub fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).unwrap();
}

/// One HTTP exchange on a fresh connection; returns (status, head+body text).
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// Polls `f` until true or the timeout; returns the last result.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw SSE reader over a plain TCP stream.
pub struct Sse {
    pub stream: TcpStream,
    buf: String,
}

/// One SSE event (comments are kept as `comment`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub comment: bool,
}

impl Sse {
    pub fn open(addr: SocketAddr, path: &str, extra_headers: &str) -> (u16, Sse) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{extra_headers}\r\n").unwrap();
        let mut sse = Sse {
            stream,
            buf: String::new(),
        };
        let end = Instant::now() + WAIT;
        while !sse.buf.contains("\r\n\r\n") && Instant::now() < end {
            sse.fill();
        }
        let head_end = sse.buf.find("\r\n\r\n").expect("response head") + 4;
        let status = sse.buf.split_whitespace().nth(1).unwrap().parse().unwrap();
        sse.buf.drain(..head_end);
        (status, sse)
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
                true
            }
            Err(_) => true,
        }
    }

    /// The next event (or comment block) within `timeout`; `None` on EOF or timeout.
    pub fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut ev = SseEvent::default();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        let _ = c;
                        ev.comment = true;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        ev.data.push_str(v);
                    }
                }
                return Some(ev);
            }
            if Instant::now() >= end || !self.fill() {
                return None;
            }
        }
    }

    /// The next event that is not a comment or `retry:` block.
    pub fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            match self.next(end - Instant::now()) {
                Some(e) if e.comment || (e.data.is_empty() && e.event.is_none()) => continue,
                other => return other,
            }
        }
        None
    }
}
