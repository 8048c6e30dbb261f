//! `ebbflow-loadgen`: opens N WebSocket clients (plain or Phoenix) against a broadcast
//! server, subscribes them to a topic, and measures publish→receive latency (from the
//! `ts_ns` field the publisher puts in each payload) and deliveries per second.
//!
//! ```text
//! cargo run --release --example channels_demo -- --addr 127.0.0.1:4000 --rate 20 &
//! cargo run --release --bin ebbflow-loadgen -- --addr 127.0.0.1:4000 --clients 10000 --secs 10
//! ```
//!
//! One thread, `mio`, loopback; bounded in clients (`--clients`, at most 19,500) and time
//! (`--connect-secs`, `--secs`); prints progress every second. Before and after connecting
//! it reads the server's `process_resident_memory_bytes` from `/metrics` and reports the
//! resident memory per idle connection.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const MAX_CLIENTS: usize = 19_500;

struct Args {
    addr: SocketAddr,
    clients: usize,
    phoenix: bool,
    topic: String,
    secs: u64,
    connect_secs: u64,
    in_flight: usize,
    server_pid: Option<u32>,
}

fn parse_args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_owned())
    };
    Args {
        addr: get("--addr", "127.0.0.1:4000")
            .parse()
            .expect("--addr host:port"),
        clients: get("--clients", "1000")
            .parse::<usize>()
            .expect("--clients N")
            .min(MAX_CLIENTS),
        phoenix: get("--proto", "plain") == "phoenix",
        topic: get("--topic", "bench"),
        secs: get("--secs", "10").parse().expect("--secs"),
        connect_secs: get("--connect-secs", "120")
            .parse()
            .expect("--connect-secs"),
        in_flight: get("--in-flight", "256").parse().expect("--in-flight"),
        server_pid: get("--server-pid", "").parse().ok(),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum State {
    Connecting,
    Handshaking,
    Open,
    Dead,
}

struct Client {
    stream: TcpStream,
    state: State,
    buf: Vec<u8>,
    subscribed: bool,
}

struct Stats {
    deliveries: u64,
    closed: u64,
    /// Messages published before the measurement began (backlog), not measured.
    stale: u64,
    /// Publish time (unix ns) from which messages are measured.
    since_ns: u64,
    hist: Histogram<u64>,
    window: Histogram<u64>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A masked client text frame.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81u8];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn pong_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = text_frame(payload);
    f[0] = 0x8A;
    f
}

/// The `ts_ns` number inside a payload.
fn ts_of(payload: &[u8]) -> Option<u64> {
    let key = b"\"ts_ns\":";
    let at = payload.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut v = 0u64;
    let mut any = false;
    for d in digits {
        v = v * 10 + u64::from(d - b'0');
        any = true;
    }
    any.then_some(v)
}

/// Handles complete server frames in `c.buf`; returns false if the connection closed.
fn frames(c: &mut Client, stats: &mut Stats, measuring: bool) -> bool {
    let mut at = 0;
    let mut alive = true;
    loop {
        let b = &c.buf[at..];
        if b.len() < 2 {
            break;
        }
        let op = b[0] & 0x0f;
        let mut len = (b[1] & 0x7f) as usize;
        let mut head = 2;
        if len == 126 {
            if b.len() < 4 {
                break;
            }
            len = u16::from_be_bytes([b[2], b[3]]) as usize;
            head = 4;
        } else if len == 127 {
            if b.len() < 10 {
                break;
            }
            len = u64::from_be_bytes(b[2..10].try_into().unwrap_or([0; 8])) as usize;
            head = 10;
        }
        if b.len() < head + len {
            break;
        }
        let payload = &b[head..head + len];
        match op {
            0x1 => {
                if let Some(ts) = ts_of(payload) {
                    if measuring && ts >= stats.since_ns {
                        let lat_us = now_ns().saturating_sub(ts) / 1000;
                        let _ = stats.hist.record(lat_us.max(1));
                        let _ = stats.window.record(lat_us.max(1));
                        stats.deliveries += 1;
                    } else if measuring {
                        stats.stale += 1;
                    }
                } else if !c.subscribed {
                    c.subscribed = true;
                }
            }
            0x8 => alive = false,
            0x9 => {
                let _ = c.stream.write_all(&pong_frame(payload));
            }
            _ => {}
        }
        at += head + len;
    }
    c.buf.drain(..at);
    alive
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat` (100 Hz ticks).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn fetch_rss(addr: SocketAddr) -> Option<u64> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let line = out
        .lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let a = parse_args();
    let rss0 = fetch_rss(a.addr);
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut clients: Vec<Client> = Vec::with_capacity(a.clients);
    let path = if a.phoenix {
        "/socket/websocket?vsn=2.0.0".to_owned()
    } else {
        format!("/ws?topics={}", a.topic)
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n",
        a.addr
    );
    let join = text_frame(format!("[\"1\",\"1\",\"{}\",\"phx_join\",{{}}]", a.topic).as_bytes());
    let heartbeat = text_frame(b"[null,\"hb\",\"phoenix\",\"heartbeat\",{}]");
    let mut stats = Stats {
        deliveries: 0,
        closed: 0,
        stale: 0,
        since_ns: 0,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
        window: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    };
    let mut scratch = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut handshaking = 0usize;
    let mut open = 0usize;
    let mut errors: HashMap<&'static str, u64> = HashMap::new();

    // Phase 1: connect and subscribe everyone.
    let connect_deadline = started + Duration::from_secs(a.connect_secs);
    while (open < a.clients
        || clients
            .iter()
            .any(|c| c.state == State::Open && !c.subscribed))
        && Instant::now() < connect_deadline
    {
        while clients.len() < a.clients && handshaking < a.in_flight {
            match TcpStream::connect(a.addr) {
                Ok(mut s) => {
                    let tok = Token(clients.len());
                    poll.registry()
                        .register(&mut s, tok, Interest::READABLE | Interest::WRITABLE)
                        .expect("register");
                    clients.push(Client {
                        stream: s,
                        state: State::Connecting,
                        buf: Vec::new(),
                        subscribed: false,
                    });
                    handshaking += 1;
                }
                Err(_) => {
                    *errors.entry("connect").or_default() += 1;
                    break;
                }
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        for ev in events.iter() {
            let c = &mut clients[ev.token().0];
            service(
                c,
                &request,
                &join,
                &mut scratch,
                &mut stats,
                &mut handshaking,
                &mut open,
                &mut errors,
                a.phoenix,
                false,
            );
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let subscribed = clients.iter().filter(|c| c.subscribed).count();
            println!(
                "[{:>5.1}s] connecting: {} open, {} subscribed, {} handshaking, errors {:?}",
                started.elapsed().as_secs_f64(),
                open,
                subscribed,
                handshaking,
                errors
            );
        }
    }
    let subscribed = clients.iter().filter(|c| c.subscribed).count();
    println!(
        "connected {open} of {} clients ({subscribed} subscribed) in {:.1}s",
        a.clients,
        started.elapsed().as_secs_f64()
    );
    // Idle a moment, then read the server's resident memory.
    std::thread::sleep(Duration::from_secs(2));
    drain_all(
        &mut poll,
        &mut events,
        &mut clients,
        &request,
        &join,
        &mut scratch,
        &mut stats,
        &mut handshaking,
        &mut open,
        &mut errors,
        a.phoenix,
        Duration::from_millis(200),
        false,
    );
    let rss1 = fetch_rss(a.addr);
    if let (Some(r0), Some(r1)) = (rss0, rss1) {
        println!(
            "server RSS: {:.1} MiB before, {:.1} MiB with {open} idle connections: {:.1} KiB per connection",
            r0 as f64 / 1048576.0,
            r1 as f64 / 1048576.0,
            (r1.saturating_sub(r0)) as f64 / 1024.0 / open.max(1) as f64
        );
    }

    // Phase 2: measure messages published from now on (older ones are backlog).
    let measure_start = Instant::now();
    stats.since_ns = now_ns();
    let server_pid = a.server_pid.map(|p| p.to_string());
    let cpu0 = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    let mut last_count = 0u64;
    let mut last_hb = Instant::now();
    let mut progress = Instant::now();
    while measure_start.elapsed() < Duration::from_secs(a.secs) {
        drain_all(
            &mut poll,
            &mut events,
            &mut clients,
            &request,
            &join,
            &mut scratch,
            &mut stats,
            &mut handshaking,
            &mut open,
            &mut errors,
            a.phoenix,
            Duration::from_millis(20),
            true,
        );
        if a.phoenix && last_hb.elapsed() > Duration::from_secs(20) {
            last_hb = Instant::now();
            for c in clients.iter_mut().filter(|c| c.state == State::Open) {
                let _ = c.stream.write_all(&heartbeat);
            }
        }
        if progress.elapsed() >= Duration::from_secs(1) {
            let dt = progress.elapsed().as_secs_f64();
            progress = Instant::now();
            println!(
                "[{:>5.1}s] {:.0} deliveries/s, this second: p50 {} µs, p99 {} µs, max {} µs; open {open}, closed {}, backlog skipped {}",
                measure_start.elapsed().as_secs_f64(),
                (stats.deliveries - last_count) as f64 / dt,
                stats.window.value_at_quantile(0.5),
                stats.window.value_at_quantile(0.99),
                stats.window.max(),
                stats.closed,
                stats.stale
            );
            stats.window.reset();
            last_count = stats.deliveries;
        }
    }
    let secs = measure_start.elapsed().as_secs_f64();
    let cpu1 = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    if let (Some(s0), Some(s1)) = (cpu0.0, cpu1.0) {
        println!(
            "server CPU: {:.2} cores ({:.2} µs per delivery)",
            (s1 - s0) / secs,
            (s1 - s0) * 1e6 / stats.deliveries.max(1) as f64
        );
    }
    if let (Some(l0), Some(l1)) = (cpu0.1, cpu1.1) {
        println!("loadgen CPU: {:.2} cores", (l1 - l0) / secs);
    }
    println!(
        "RESULT clients={} proto={} deliveries={} deliveries_per_s={:.0} p50_us={} p99_us={} p999_us={} max_us={} closed={} errors={:?}",
        open,
        if a.phoenix { "phoenix" } else { "plain" },
        stats.deliveries,
        stats.deliveries as f64 / secs,
        stats.hist.value_at_quantile(0.5),
        stats.hist.value_at_quantile(0.99),
        stats.hist.value_at_quantile(0.999),
        stats.hist.max(),
        stats.closed,
        errors
    );
}

#[allow(clippy::too_many_arguments)]
fn drain_all(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    request: &str,
    join: &[u8],
    scratch: &mut [u8],
    stats: &mut Stats,
    handshaking: &mut usize,
    open: &mut usize,
    errors: &mut HashMap<&'static str, u64>,
    phoenix: bool,
    timeout: Duration,
    measuring: bool,
) {
    if poll.poll(events, Some(timeout)).is_err() {
        return;
    }
    for ev in events.iter() {
        let c = &mut clients[ev.token().0];
        service(
            c,
            request,
            join,
            scratch,
            stats,
            handshaking,
            open,
            errors,
            phoenix,
            measuring,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn service(
    c: &mut Client,
    request: &str,
    join: &[u8],
    scratch: &mut [u8],
    stats: &mut Stats,
    handshaking: &mut usize,
    open: &mut usize,
    errors: &mut HashMap<&'static str, u64>,
    phoenix: bool,
    measuring: bool,
) {
    if c.state == State::Connecting {
        if c.stream.peer_addr().is_err() {
            return; // not connected yet
        }
        if c.stream.write_all(request.as_bytes()).is_err() {
            *errors.entry("handshake write").or_default() += 1;
            c.state = State::Dead;
            *handshaking -= 1;
            return;
        }
        c.state = State::Handshaking;
    }
    loop {
        match c.stream.read(scratch) {
            Ok(0) => {
                if c.state == State::Open {
                    *open -= 1;
                    stats.closed += 1;
                } else if c.state == State::Handshaking {
                    *handshaking -= 1;
                    *errors.entry("closed in handshake").or_default() += 1;
                }
                c.state = State::Dead;
                return;
            }
            Ok(n) => {
                c.buf.extend_from_slice(&scratch[..n]);
                if n < scratch.len() {
                    // A short read drained the socket; the next edge will come with data.
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                if c.state == State::Open {
                    *open -= 1;
                    stats.closed += 1;
                } else if c.state == State::Handshaking {
                    *handshaking -= 1;
                }
                c.state = State::Dead;
                return;
            }
        }
    }
    if c.state == State::Handshaking {
        let Some(end) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return;
        };
        if !c.buf.starts_with(b"HTTP/1.1 101") {
            *errors.entry("refused").or_default() += 1;
            c.state = State::Dead;
            *handshaking -= 1;
            return;
        }
        c.buf.drain(..end + 4);
        c.state = State::Open;
        *handshaking -= 1;
        *open += 1;
        if phoenix {
            let _ = c.stream.write_all(join);
        }
    }
    if c.state == State::Open && !frames(c, stats, measuring) {
        c.state = State::Dead;
        *open -= 1;
        stats.closed += 1;
    }
}
