//! Real clients of the channels server, one thread each, over loopback: Phoenix Channels
//! V2 and plain WebSocket (tungstenite), SSE (a plain `TcpStream`), and in-process
//! pub/sub. Each turns every received flow message back into its publish time through the
//! [`PublishLog`] and records publish → receive latency in an HDR histogram.
//!
//! * Plain WebSocket, SSE and in-process messages carry their hub position `epoch:offset`;
//!   the log entry of that offset gives the publish time, and its payload hash must match
//!   the received payload (else the message counts as `mismatched`, not measured).
//! * Phoenix broadcasts carry no position: the client finds, per topic, the next log entry
//!   of that topic with the same payload hash (messages of a topic arrive in order).
//!
//! Sockets use 100 ms read timeouts so every client notices the stop flag; nothing spins.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebbflow::channels::PubSub;
use ebbflow::engine::Clock;
use hdrhistogram::Histogram;
use tungstenite::Message;

use crate::sinks::{payload_hash, topic_index, PublishLog};

/// The transports the report measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Phoenix Channels V2 over WebSocket.
    Phoenix,
    /// Plain WebSocket, JSON messages.
    PlainWs,
    /// Server-Sent Events.
    Sse,
    /// In-process pub/sub (no socket).
    InProc,
}

impl Transport {
    /// All four, in report order.
    pub const ALL: [Transport; 4] = [
        Transport::Phoenix,
        Transport::PlainWs,
        Transport::Sse,
        Transport::InProc,
    ];

    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Phoenix => "Phoenix Channels V2 (WebSocket)",
            Transport::PlainWs => "plain WebSocket",
            Transport::Sse => "Server-Sent Events",
            Transport::InProc => "in-process pub/sub",
        }
    }

    /// Short name (diagrams).
    pub fn short(self) -> &'static str {
        match self {
            Transport::Phoenix => "Phoenix V2",
            Transport::PlainWs => "WebSocket",
            Transport::Sse => "SSE",
            Transport::InProc => "in-process",
        }
    }
}

/// What one client saw.
pub struct ClientResult {
    /// Its transport.
    pub transport: Transport,
    /// Whether it connected and subscribed.
    pub subscribed: bool,
    /// Flow messages received and matched to their publish (measured).
    pub deliveries: u64,
    /// Flow messages received that could not be matched to a publish (position unknown or
    /// payload hash different).
    pub mismatched: u64,
    /// Publish → receive latency of the measured deliveries, ns.
    pub hist: Histogram<u64>,
    /// Why it stopped early, if it did (close code, error).
    pub error: Option<String>,
}

/// What every client needs.
#[derive(Clone)]
pub struct ClientEnv {
    /// Server address.
    pub addr: SocketAddr,
    /// Topics to subscribe.
    pub topics: Vec<&'static str>,
    /// Publish times.
    pub log: Arc<PublishLog>,
    /// Set when the run is over.
    pub stop: Arc<AtomicBool>,
    /// Set by the client once subscribed.
    pub ready: Arc<std::sync::atomic::AtomicUsize>,
    /// Flow messages received by all socket clients together (matched or not), so the run
    /// can wait until they have everything before it stops them.
    pub received: Arc<std::sync::atomic::AtomicU64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Latency bookkeeping shared by every transport.
struct Meter {
    log: Arc<PublishLog>,
    clock: &'static Clock,
    hist: Histogram<u64>,
    deliveries: u64,
    mismatched: u64,
    /// Phoenix: per topic, the next log index to search from.
    cursors: Vec<usize>,
    /// Shared count of received messages (socket clients).
    received: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Meter {
    fn new(log: Arc<PublishLog>, received: Option<Arc<std::sync::atomic::AtomicU64>>) -> Meter {
        Meter {
            log,
            clock: Clock::get(),
            hist: histogram(),
            deliveries: 0,
            mismatched: 0,
            cursors: vec![0; ebbflow::flow::notify::topics::ALL.len() + 1],
            received,
        }
    }

    fn count(&self) {
        if let Some(r) = &self.received {
            r.fetch_add(1, Ordering::Release);
        }
    }

    /// The log entry for `offset`, waiting up to 1 ms for the notify thread to finish
    /// writing it (it stamps right after the bus took the message).
    fn entry(&self, offset: u64) -> Option<(u64, usize, u64)> {
        let deadline = Instant::now() + Duration::from_millis(1);
        loop {
            if let Some(e) = self.log.at_offset(offset) {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::yield_now();
        }
    }

    fn record(&mut self, published: u64, received: u64) {
        let ns = self.clock.to_ns(received.saturating_sub(published)).max(1);
        self.hist.saturating_record(ns);
        self.deliveries += 1;
    }

    /// A message with a hub position.
    fn by_offset(&mut self, offset: u64, payload: &[u8], received: u64) {
        self.count();
        match self.entry(offset) {
            Some((ticks, _, hash)) if hash == payload_hash(payload) => self.record(ticks, received),
            _ => self.mismatched += 1,
        }
    }

    /// A message without a position (Phoenix): the next entry of its topic with the same
    /// payload hash.
    fn by_topic(&mut self, topic: &str, payload: &[u8], received: u64) {
        self.count();
        let t = topic_index(topic);
        let hash = payload_hash(payload);
        let deadline = Instant::now() + Duration::from_millis(1);
        loop {
            let len = self.log.len();
            let mut i = self.cursors[t];
            while i < len {
                if let Some((ticks, topic, h)) = self.log.at_offset(i as u64 + 1) {
                    if topic == t && h == hash {
                        self.cursors[t] = i + 1;
                        self.record(ticks, received);
                        return;
                    }
                }
                i += 1;
            }
            if Instant::now() >= deadline {
                self.mismatched += 1;
                return;
            }
            std::thread::yield_now();
        }
    }

    fn finish(self, transport: Transport, subscribed: bool, error: Option<String>) -> ClientResult {
        ClientResult {
            transport,
            subscribed,
            deliveries: self.deliveries,
            mismatched: self.mismatched,
            hist: self.hist,
            error,
        }
    }
}

/// `{"type":"message",…,"id":"E:O","payload":P}` → (offset, P). The hub writes exactly
/// this shape for plain WebSocket messages and SSE `data:` lines.
fn parse_hub_message(text: &[u8]) -> Option<(u64, &[u8])> {
    if !text.starts_with(b"{\"type\":\"message\"") {
        return None;
    }
    let id_key = b"\"id\":\"";
    let at = find(text, id_key)? + id_key.len();
    let rest = &text[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    let offset = id.split_once(':')?.1.parse().ok()?;
    let p_key = b",\"payload\":";
    let p = at + end + find(&rest[end..], p_key)? + p_key.len();
    let payload = text.get(p..text.len().checked_sub(1)?)?;
    Some((offset, payload))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `[null,null,"topic","event",payload]` → (topic, event, payload).
fn parse_phoenix_broadcast(text: &str) -> Option<(&str, &str, &[u8])> {
    let rest = text.strip_prefix("[null,null,\"")?;
    let (topic, rest) = rest.split_once("\",\"")?;
    let (event, rest) = rest.split_once("\",")?;
    let payload = rest.strip_suffix(']')?;
    Some((topic, event, payload.as_bytes()))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// Opens a WebSocket to `path` and sets a 100 ms read timeout.
pub fn open_ws(addr: SocketAddr, path: &str) -> Result<Ws, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{addr}{path}");
    let (ws, _) =
        tungstenite::client::client(url.as_str(), stream).map_err(|e| format!("handshake: {e}"))?;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// One read; `Ok(None)` on a timeout.
/// The next message, `None` when the read timed out.
pub fn ws_read(ws: &mut Ws) -> Result<Option<Message>, String> {
    match ws.read() {
        Ok(m) => Ok(Some(m)),
        Err(tungstenite::Error::Io(e)) if is_timeout(&e) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn close_reason(m: &Message) -> Option<String> {
    match m {
        Message::Close(Some(f)) => Some(format!(
            "closed by server: {} {}",
            u16::from(f.code),
            f.reason
        )),
        Message::Close(None) => Some("closed by server".to_owned()),
        _ => None,
    }
}

/// Reads a WebSocket client's messages until the run stops (or, not yet subscribed, until
/// the connect deadline): `on_text` handles each text message with its arrival time and
/// returns true once the client counts as subscribed.
fn read_ws(
    mut ws: Ws,
    env: &ClientEnv,
    mut meter: Meter,
    transport: Transport,
    mut on_text: impl FnMut(&str, u64, &mut Meter) -> bool,
) -> ClientResult {
    let mut subscribed = false;
    let mut error = None;
    let connect_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if env.stop.load(Ordering::Acquire) || (!subscribed && Instant::now() > connect_deadline) {
            break;
        }
        match ws_read(&mut ws) {
            Ok(None) => {}
            Ok(Some(Message::Text(t))) => {
                let received = Clock::get().ticks();
                if on_text(t.as_str(), received, &mut meter) && !subscribed {
                    subscribed = true;
                    env.ready.fetch_add(1, Ordering::AcqRel);
                }
            }
            Ok(Some(m)) => {
                if let Some(r) = close_reason(&m) {
                    error = Some(r);
                    break;
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
    meter.finish(transport, subscribed, error)
}

/// A plain WebSocket client subscribed to `env.topics`.
pub fn plain_ws(env: ClientEnv) -> ClientResult {
    let meter = Meter::new(env.log.clone(), Some(env.received.clone()));
    let path = format!("/ws?topics={}", env.topics.join(","));
    let ws = match open_ws(env.addr, &path) {
        Ok(ws) => ws,
        Err(e) => return meter.finish(Transport::PlainWs, false, Some(e)),
    };
    let mut subscribed = false;
    read_ws(
        ws,
        &env,
        meter,
        Transport::PlainWs,
        |text, received, meter| {
            let b = text.as_bytes();
            if let Some((offset, payload)) = parse_hub_message(b) {
                meter.by_offset(offset, payload, received);
            } else if b.starts_with(b"{\"type\":\"subscribed\"") {
                subscribed = true;
            }
            subscribed
        },
    )
}

/// A Phoenix Channels V2 client that joins every topic of `env.topics`.
pub fn phoenix(env: ClientEnv) -> ClientResult {
    let meter = Meter::new(env.log.clone(), Some(env.received.clone()));
    let mut ws = match open_ws(env.addr, "/socket/websocket?vsn=2.0.0") {
        Ok(ws) => ws,
        Err(e) => return meter.finish(Transport::Phoenix, false, Some(e)),
    };
    for (i, t) in env.topics.iter().enumerate() {
        let join = format!("[\"{i}\",\"{i}\",\"{t}\",\"phx_join\",{{}}]");
        if let Err(e) = ws.send(Message::text(join)) {
            return meter.finish(Transport::Phoenix, false, Some(e.to_string()));
        }
    }
    let mut joined = 0usize;
    let topics = env.topics.len();
    read_ws(ws, &env, meter, Transport::Phoenix, |s, received, meter| {
        if let Some((topic, event, payload)) = parse_phoenix_broadcast(s) {
            if event != "presence_diff" {
                meter.by_topic(topic, payload, received);
            }
        } else if s.contains("\"phx_reply\"") && s.contains("\"status\":\"ok\"") {
            joined += 1;
        }
        joined >= topics
    })
}

/// An SSE client of `env.topics`.
pub fn sse(env: ClientEnv) -> ClientResult {
    let mut meter = Meter::new(env.log.clone(), Some(env.received.clone()));
    let mut stream = match TcpStream::connect(env.addr) {
        Ok(s) => s,
        Err(e) => return meter.finish(Transport::Sse, false, Some(format!("connect: {e}"))),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let request = format!(
        "GET /events?topics={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        env.topics.join(","),
        env.addr
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return meter.finish(Transport::Sse, false, Some(e.to_string()));
    }
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let mut subscribed = false;
    let mut error = None;
    let connect_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if env.stop.load(Ordering::Acquire) || (!subscribed && Instant::now() > connect_deadline) {
            break;
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                error = Some("stream ended by server".to_owned());
                break;
            }
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        let received = Clock::get().ticks();
        buf.extend_from_slice(&chunk[..n]);
        if !subscribed {
            let Some(end) = find(&buf, b"\r\n\r\n") else {
                continue;
            };
            if !buf.starts_with(b"HTTP/1.1 200") {
                error = Some(String::from_utf8_lossy(&buf[..end]).into_owned());
                break;
            }
            buf.drain(..end + 4);
            subscribed = true;
            env.ready.fetch_add(1, Ordering::AcqRel);
        }
        // Complete events end with a blank line.
        let mut at = 0;
        while let Some(end) = find(&buf[at..], b"\n\n") {
            let event = &buf[at..at + end];
            for line in event.split(|&b| b == b'\n') {
                if let Some(data) = line.strip_prefix(b"data: ") {
                    if let Some((offset, payload)) = parse_hub_message(data) {
                        meter.by_offset(offset, payload, received);
                    }
                }
            }
            at += end + 2;
        }
        buf.drain(..at);
    }
    meter.finish(Transport::Sse, subscribed, error)
}

/// An in-process subscriber of `topics`; `each` sees every message (the pattern checker
/// uses it), after its latency was recorded.
pub fn inproc(
    pubsub: &PubSub,
    topics: &[&str],
    log: Arc<PublishLog>,
) -> Result<InProcClient, String> {
    let sub = pubsub
        .subscribe(topics, 16 << 20)
        .map_err(|e| format!("subscribe: {e}"))?;
    Ok(InProcClient {
        sub,
        meter: Meter::new(log, None),
    })
}

/// An in-process subscription with its meter.
pub struct InProcClient {
    sub: ebbflow::channels::Subscription,
    meter: Meter,
}

impl InProcClient {
    /// Reads until `stop` is set and no message came for 100 ms; `each(topic, event,
    /// payload)` sees every message.
    pub fn run(
        mut self,
        stop: &AtomicBool,
        mut each: impl FnMut(&str, &str, &[u8]),
    ) -> ClientResult {
        let meter = &mut self.meter;
        loop {
            let n = self.sub.read_timeout(256, Duration::from_millis(100), |d| {
                let received = Clock::get().ticks();
                meter.by_offset(d.position.offset, d.payload, received);
                each(d.topic, d.event, d.payload);
            });
            if n == 0 && stop.load(Ordering::Acquire) {
                break;
            }
        }
        let dropped = self.sub.dropped();
        let error = (dropped > 0).then(|| format!("{dropped} messages dropped by a full ring"));
        self.meter.finish(Transport::InProc, true, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_messages_give_their_offset_and_raw_payload() {
        let m = br#"{"type":"message","topic":"a","event":"e","id":"17:42","payload":{"x":[1,2]}}"#;
        assert_eq!(parse_hub_message(m), Some((42, &br#"{"x":[1,2]}"#[..])));
        assert_eq!(parse_hub_message(br#"{"type":"subscribed"}"#), None);
    }

    #[test]
    fn phoenix_broadcasts_split_into_topic_event_payload() {
        let f = r#"[null,null,"k8s:events","change",{"a":"b,c"}]"#;
        assert_eq!(
            parse_phoenix_broadcast(f),
            Some(("k8s:events", "change", &br#"{"a":"b,c"}"#[..]))
        );
        assert_eq!(
            parse_phoenix_broadcast(r#"["1","1","t","phx_reply",{}]"#),
            None
        );
    }
}
