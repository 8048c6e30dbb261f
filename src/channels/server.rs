//! The broadcast server: one `mio` thread owning every client socket, the hub, in-process
//! subscriptions and the command rings.
//!
//! Each loop pass: handle control requests (subscriptions, disconnects, shutdown), drain
//! the bus into the hub (copying into in-process rings and marking subscribers dirty),
//! deliver replies, service socket events, write to dirty connections (batched, up to
//! `write_batch_bytes` each per pass, so one busy client cannot starve others), and every
//! 100 ms run the timers (handshake and idle timeouts, pings, SSE heartbeats).
//!
//! Slow-consumer policy: a client's lag is the encoded bytes of the messages it has not
//! been written yet. When its socket is full (the kernel buffers are taken) and the lag
//! exceeds `max_outbound_bytes`, or the topic's history dropped messages it has not seen, subscriptions to coalescing topics skip to the latest message
//! (counted); if that is not enough, a WebSocket is closed with 1013 ("slow consumer") and
//! an SSE stream is ended (its client resumes by `Last-Event-ID` or is told of the gap).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::Value;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::bus::{BusReader, FrameWriter};
use super::command::{
    command_rings, CommandReceiver, CommandReplier, InboundCommand, Origin, Reply,
};
use super::config::{ConfigError, ServerConfig};
use super::conn::{Conn, Flow, Io, Pending, Sub, WsPhase};
use super::http::{self, Parsed, Request};
use super::hub::{json_str, GapReason, Hub, Position, PresenceMeta};
use super::metrics::{Counter, Metrics, Transport};
use super::phoenix::{self, PhxIn};
use super::pubsub::{Control, Gap, InprocRequest, PubSub, Shared};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
const TICK: Duration = Duration::from_millis(100);

/// A running broadcast server (the handle). Dropping it shuts the server down.
pub struct Server {
    addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    epoch: u64,
    thread: Option<JoinHandle<()>>,
    commands: Option<(CommandReceiver, CommandReplier)>,
    stop: Arc<AtomicBool>,
}

/// The server thread ended abnormally.
#[derive(thiserror::Error, Debug)]
#[error("the broadcast server thread panicked")]
pub struct ShutdownError;

impl Server {
    /// Starts the server thread, reading messages from `bus`.
    ///
    /// Set the bus writer's waker to [`Server::waker`] so a flush wakes the loop (without
    /// it, messages still arrive within 100 ms).
    pub fn start(config: ServerConfig, bus: BusReader) -> Result<Server, ConfigError> {
        config.validate()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = match config.bind {
            Some(addr) => Some(TcpListener::bind(addr)?),
            None => None,
        };
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        let addr = match &listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let epoch = config.epoch.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(1)
        });
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared {
            control: Mutex::new(Vec::new()),
            waker: Arc::clone(&waker),
            topic_names: config.topics.iter().map(|t| t.name.clone()).collect(),
            metrics: Arc::clone(&metrics),
        });
        let (cmd_tx, receiver, replier, reply_rx) = command_rings(
            config.command_capacity,
            config.reply_capacity,
            Arc::clone(&waker),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let mut lp = Loop {
            hub: Hub::new(&config.topics, epoch),
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            next_gen: 1,
            bus,
            cmd_tx,
            reply_rx,
            shared: Arc::clone(&shared),
            metrics,
            inproc: Vec::new(),
            dirty: Vec::with_capacity(1024),
            dirty_spare: Vec::with_capacity(1024),
            touched: Vec::with_capacity(64),
            cfg: config,
            stop: Arc::clone(&stop),
            presence_seq: 0,
        };
        let thread = std::thread::Builder::new()
            .name("ebbflow-broadcast".into())
            .spawn(move || lp.run())?;
        Ok(Server {
            addr,
            shared,
            epoch,
            thread: Some(thread),
            commands: Some((receiver, replier)),
            stop,
        })
    }

    /// The bound address (`None` without sockets).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The epoch of every position this server hands out.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The waker for [`BusWriter::set_waker`](super::BusWriter::set_waker).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.shared.waker)
    }

    /// In-process subscriptions.
    pub fn pubsub(&self) -> PubSub {
        PubSub {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The server's counters and gauges.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Reports `writer`'s refusals as `ebbflow_channels_bus_dropped_total` in `/metrics`.
    pub fn track_bus_drops(&self, writer: &super::BusWriter) {
        if let Ok(mut slot) = self.shared.metrics.bus_dropped.lock() {
            *slot = Some(writer.dropped_counter());
        }
    }

    /// Takes the command ends (once): commands from clients, and replies to them.
    pub fn take_commands(&mut self) -> Option<(CommandReceiver, CommandReplier)> {
        self.commands.take()
    }

    /// Closes every client connection from the server side (WebSockets with 1012, SSE
    /// streams ended): clients that reconnect resume. For tests and maintenance.
    pub fn disconnect_all(&self) {
        self.shared.send(Control::DisconnectAll);
    }

    /// Closes every connection (WebSockets with 1001) and joins the server thread.
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ShutdownError> {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.send(Control::Shutdown);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ShutdownError),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

struct InprocSub {
    writer: FrameWriter,
    alive: Arc<AtomicBool>,
    topics: Vec<usize>,
}

struct Loop {
    hub: Hub,
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_gen: u64,
    bus: BusReader,
    cmd_tx: rtrb::Producer<InboundCommand>,
    reply_rx: rtrb::Consumer<Reply>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    inproc: Vec<Option<InprocSub>>,
    dirty: Vec<usize>,
    dirty_spare: Vec<usize>,
    touched: Vec<usize>,
    cfg: ServerConfig,
    stop: Arc<AtomicBool>,
    presence_seq: u64,
}

/// What a text frame from a client asks for, once parsed.
enum Outcome {
    Ok,
    Close(CloseCode, &'static str),
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let timeout = if self.dirty.is_empty() && self.bus.is_empty() {
                next_tick.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            if self.control() || self.stop.load(Ordering::SeqCst) {
                self.close_all(CloseCode::Away, "server shutting down");
                break;
            }
            self.ingest();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        self.service(
                            t - FIRST_CONN,
                            ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                            ev.is_writable() || ev.is_write_closed(),
                        );
                        self.sync_interest(t - FIRST_CONN);
                    }
                }
            }
            self.replies();
            self.write_dirty();
            let now = Instant::now();
            if now >= next_tick {
                self.timers(now);
                next_tick = now + TICK;
            }
        }
    }

    // ---- control, bus, replies ---------------------------------------------------

    /// Handles control requests; true on shutdown.
    fn control(&mut self) -> bool {
        let reqs = match self.shared.control.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return true,
        };
        let mut shutdown = false;
        for r in reqs {
            match r {
                Control::Shutdown => shutdown = true,
                Control::DisconnectAll => self.close_all(CloseCode::Restart, "server restart"),
                Control::Subscribe(req) => self.add_inproc(req),
            }
        }
        shutdown
    }

    fn add_inproc(&mut self, req: InprocRequest) {
        let InprocRequest {
            topics,
            since,
            mut writer,
            alive,
            ack,
        } = req;
        let slot = self
            .inproc
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                self.inproc.push(None);
                self.inproc.len() - 1
            });
        let mut gaps = Vec::new();
        // Replay history after `since`, in hub order across topics.
        let mut cursors: Vec<(usize, u64)> = Vec::new();
        for &t in &topics {
            let (cursor, _, gap) = self.hub.start(t, since);
            if let Some(reason) = gap {
                self.metrics.add(Counter::Gaps, 1);
                gaps.push(Gap {
                    topic: self.hub.topics[t].cfg.name.clone(),
                    reason,
                });
            }
            cursors.push((t, cursor));
            self.hub.topics[t].inproc.push(slot);
        }
        loop {
            let next = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, &(t, c))| self.hub.topics[t].next_after(c).map(|e| (e.offset, i)))
                .min();
            let Some((_, i)) = next else { break };
            let (t, _) = cursors[i];
            let topic = &self.hub.topics[t];
            let Some(e) = topic.next_after(cursors[i].1) else {
                break;
            };
            if writer
                .try_write(e.offset, &topic.cfg.name, &e.event, e.payload())
                .is_err()
            {
                self.metrics.add(Counter::InprocDrops, 1);
            }
            cursors[i].1 = e.offset;
        }
        self.inproc[slot] = Some(InprocSub {
            writer,
            alive,
            topics,
        });
        let _ = ack.send((self.hub.position(), gaps));
    }

    /// Moves one pass worth of bus messages into the hub: at most the smallest topic
    /// history, so no topic evicts a message in the same pass it arrived (subscribers
    /// that keep up are written to before the next pass).
    fn ingest(&mut self) {
        let budget = self.hub.min_history();
        let Loop {
            bus,
            hub,
            inproc,
            metrics,
            touched,
            ..
        } = self;
        bus.read(budget, |m| {
            let Some(t) = hub.topic_index(m.topic) else {
                metrics.add(Counter::UnknownTopic, 1);
                return;
            };
            if serde_json::from_slice::<serde::de::IgnoredAny>(m.payload).is_err() {
                metrics.add(Counter::InvalidPayload, 1);
                return;
            }
            let offset = hub.append(t, m.event, m.payload);
            metrics.add(Counter::MessagesIn, 1);
            for &s in &hub.topics[t].inproc {
                if let Some(sub) = inproc.get_mut(s).and_then(Option::as_mut) {
                    if !sub.alive.load(Ordering::Relaxed) {
                        continue;
                    }
                    match sub.writer.try_write(offset, m.topic, m.event, m.payload) {
                        Ok(()) => metrics.add(Counter::DeliveriesInproc, 1),
                        Err(_) => metrics.add(Counter::InprocDrops, 1),
                    }
                }
            }
            if !touched.contains(&t) {
                touched.push(t);
            }
        });
        // Index loops keep the scratch vectors' capacity (no allocation per pass).
        for k in 0..self.touched.len() {
            let t = self.touched[k];
            for i in 0..self.hub.topics[t].subscribers.len() {
                let slot = self.hub.topics[t].subscribers[i];
                self.mark_dirty(slot);
            }
        }
        self.touched.clear();
        // Forget in-process subscriptions whose handle was dropped.
        for slot in 0..self.inproc.len() {
            let dead = matches!(&self.inproc[slot], Some(s) if !s.alive.load(Ordering::Relaxed));
            if dead {
                if let Some(s) = self.inproc[slot].take() {
                    for t in s.topics {
                        self.hub.topics[t].inproc.retain(|&x| x != slot);
                    }
                }
            }
        }
    }

    fn replies(&mut self) {
        while let Ok(reply) = self.reply_rx.pop() {
            let slot = (reply.origin.conn & 0xffff_ffff) as usize;
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if conn.id != reply.origin.conn {
                continue;
            }
            let Some(i) = conn.pending.iter().position(|p| p.seq == reply.origin.seq) else {
                continue;
            };
            let p = conn.pending.swap_remove(i);
            let ok_payload = match &reply.result {
                Ok(v) if v.is_empty() => Some(&b"{}"[..]),
                Ok(v) if serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok() => Some(&v[..]),
                _ => None,
            };
            let text = if conn.is_phoenix() {
                match (&reply.result, ok_payload) {
                    (Ok(_), Some(v)) => {
                        phoenix::reply_ok(p.join_ref.as_deref(), p.msg_ref.as_deref(), &p.topic, v)
                    }
                    (Ok(_), None) => phoenix::reply_error(
                        p.join_ref.as_deref(),
                        p.msg_ref.as_deref(),
                        &p.topic,
                        Some("bad_reply"),
                        "the pipeline replied with invalid JSON",
                    ),
                    (Err(e), _) => phoenix::reply_error(
                        p.join_ref.as_deref(),
                        p.msg_ref.as_deref(),
                        &p.topic,
                        Some(&e.code),
                        &e.reason,
                    ),
                }
            } else {
                match (&reply.result, ok_payload) {
                    (Ok(_), Some(v)) => plain_reply(p.msg_ref.as_deref(), Ok(v)),
                    (Ok(_), None) => plain_reply(
                        p.msg_ref.as_deref(),
                        Err(("bad_reply", "the pipeline replied with invalid JSON")),
                    ),
                    (Err(e), _) => plain_reply(p.msg_ref.as_deref(), Err((&e.code, &e.reason))),
                }
            };
            self.metrics.add(Counter::RepliesOut, 1);
            if conn.send_text(text) == Flow::Dead {
                self.drop_conn(slot);
            }
            self.sync_interest(slot);
        }
    }

    // ---- accepting and servicing sockets -------------------------------------------

    fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // EMFILE and friends: try again on the next connection
            };
            self.metrics.add(Counter::Accepted, 1);
            let open = self.conns.len() - self.free.len();
            if open >= self.cfg.limits.max_connections {
                self.metrics.add(Counter::Rejected, 1);
                drop(stream);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let id = (self.next_gen << 32) | slot as u64;
            self.next_gen += 1;
            let mut conn = Conn::new(id, stream, Instant::now(), self.cfg.limits.push_burst);
            let registered = match &mut conn.io {
                Io::Http { stream, .. } => self
                    .poll
                    .registry()
                    .register(
                        stream,
                        Token(slot + FIRST_CONN),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_ok(),
                _ => false,
            };
            if !registered {
                self.free.push(slot);
                continue;
            }
            self.metrics.conn_delta(Transport::Http, 1);
            self.conns[slot] = Some(conn);
        }
    }

    /// Handles a readiness event. Writes resume only after a write blocked, reads happen
    /// only when readable: a writable edge on an idle socket (each ACK can raise one)
    /// costs no system call.
    fn service(&mut self, slot: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let resume = writable && conn.blocked;
        if resume {
            conn.blocked = false;
        }
        match &conn.io {
            Io::Http { .. } => {
                if readable {
                    self.read_http(slot);
                }
            }
            Io::Respond { .. } => {
                if conn.flush() == Flow::Dead {
                    self.drop_conn(slot);
                }
            }
            Io::Draining { .. } | Io::WsDraining { .. } => {
                if conn.drain() == Flow::Dead {
                    self.drop_conn(slot);
                }
            }
            Io::Sse { .. } => {
                // SSE clients send nothing; a read of 0 means they left.
                let gone = readable
                    && match &mut conn.io {
                        Io::Sse { stream, .. } => peer_gone(stream),
                        _ => false,
                    };
                if gone {
                    self.drop_conn(slot);
                } else if resume {
                    if conn.flush() == Flow::Dead {
                        self.drop_conn(slot);
                    } else {
                        self.mark_dirty(slot);
                    }
                }
            }
            Io::Ws { phase, .. } => {
                if *phase == WsPhase::Closing {
                    if conn.flush() == Flow::Dead {
                        self.drop_conn(slot);
                    }
                    return;
                }
                if resume {
                    if conn.flush() == Flow::Dead {
                        self.drop_conn(slot);
                        return;
                    }
                    self.mark_dirty(slot);
                }
                if readable {
                    self.read_ws(slot);
                }
            }
            Io::Gone => self.drop_conn(slot),
        }
    }

    fn read_http(&mut self, slot: usize) {
        let max = self.cfg.limits.max_request_bytes;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Io::Http { stream, buf } = &mut conn.io else {
            return;
        };
        let mut chunk = [0u8; 2048];
        let mut eof = false;
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > max {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        match http::parse(buf) {
            Parsed::Partial if buf.len() > max => {
                self.respond_error(slot, 431, "", "request head too large");
            }
            Parsed::Partial if eof => self.drop_conn(slot),
            Parsed::Partial => {}
            Parsed::Invalid(why) => self.respond_error(slot, 400, "", why),
            Parsed::Done(req, len) => {
                let rest = buf[len..].to_vec();
                self.route(slot, req, rest);
            }
        }
    }

    fn respond(&mut self, slot: usize, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let io = std::mem::replace(&mut conn.io, Io::Gone);
        let stream = match io {
            Io::Http { stream, .. } => stream,
            other => {
                conn.io = other;
                return;
            }
        };
        conn.io = Io::Respond {
            stream,
            out: bytes,
            pos: 0,
        };
        conn.deadline = Some(Instant::now() + self.cfg.timeouts.close_linger);
        if conn.flush() == Flow::Dead {
            self.drop_conn(slot);
        }
    }

    fn respond_error(&mut self, slot: usize, status: u16, headers: &str, body: &str) {
        self.metrics.add(Counter::HttpErrors, 1);
        self.respond(slot, http::error(status, headers, body));
    }

    fn route(&mut self, slot: usize, req: Request, rest: Vec<u8>) {
        if req.method != "GET" {
            return self.respond_error(slot, 405, "Allow: GET\r\n", "only GET is served");
        }
        match req.path.as_str() {
            "/healthz" => self.respond(
                slot,
                http::response(200, "", "text/plain; charset=utf-8", "ok\n"),
            ),
            "/metrics" => {
                let mut text = String::with_capacity(4096);
                self.metrics.render(&mut text);
                if let Some(hook) = &self.cfg.metrics_hook {
                    hook(&mut text);
                }
                self.respond(
                    slot,
                    http::response(200, "", "text/plain; version=0.0.4", &text),
                );
            }
            "/events" => self.open_sse(slot, &req),
            "/ws" => self.open_ws(slot, &req, rest, false),
            "/socket/websocket" => match req.param("vsn") {
                Some("2.0.0") => self.open_ws(slot, &req, rest, true),
                _ => self.respond_error(
                    slot,
                    400,
                    "",
                    "unsupported vsn: this server speaks Phoenix V2 (vsn=2.0.0)",
                ),
            },
            path => match &self.cfg.static_files {
                Some(dir) => match dir.response(path) {
                    Ok(bytes) => self.respond(slot, bytes),
                    Err(e) => self.respond_error(slot, e.status(), "", &e.to_string()),
                },
                None => self.respond_error(slot, 404, "", "no such endpoint"),
            },
        }
    }

    /// Topics of a `topics=` parameter; `Err` with the first unknown name.
    fn topics_param(&self, req: &Request) -> Result<Vec<usize>, String> {
        let names = http::split_topics(req.param("topics").unwrap_or(""));
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match self.hub.topic_index(&n) {
                Some(t) if !out.contains(&t) => out.push(t),
                Some(_) => {}
                None => return Err(n),
            }
        }
        Ok(out)
    }

    fn open_sse(&mut self, slot: usize, req: &Request) {
        let topics = match self.topics_param(req) {
            Ok(t) if t.is_empty() => {
                return self.respond_error(slot, 400, "", "topics= is required")
            }
            Ok(t) if t.len() > self.cfg.limits.max_topics_per_connection => {
                return self.respond_error(slot, 400, "", "too many topics")
            }
            Ok(t) => t,
            Err(name) => {
                return self.respond_error(slot, 404, "", &format!("unknown topic: {name}"))
            }
        };
        let since_text = req.last_event_id.as_deref().or(req.param("last_event_id"));
        let since = match since_text.map(str::parse::<Position>) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return self.respond_error(
                    slot,
                    400,
                    "",
                    "invalid Last-Event-ID: expected epoch:offset",
                )
            }
        };
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Io::Http { .. } = conn.io else { return };
        let Io::Http { stream, .. } = std::mem::replace(&mut conn.io, Io::Gone) else {
            return;
        };
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\nX-Accel-Buffering: no\r\n\r\nretry: 1000\n\n",
        );
        conn.io = Io::Sse {
            stream,
            out,
            pos: 0,
        };
        self.metrics.conn_delta(Transport::Http, -1);
        self.metrics.conn_delta(Transport::Sse, 1);
        conn.transport = Transport::Sse;
        for t in topics {
            let (cursor, cum, gap) = self.hub.start(t, since);
            let topic = &mut self.hub.topics[t];
            if let Some(reason) = gap {
                self.metrics.add(Counter::Gaps, 1);
                let mut b = Vec::with_capacity(128);
                b.extend_from_slice(b"event: gap\ndata: ");
                gap_json(
                    &mut b,
                    &topic.cfg.name,
                    reason,
                    self.hub.epoch,
                    self.hub.last_offset,
                    false,
                );
                b.extend_from_slice(b"\n\n");
                conn.sse_push(&b);
            }
            topic.subscribers.push(slot);
            conn.subs.push(Sub {
                topic: t,
                cursor,
                cum,
            });
        }
        self.mark_dirty(slot);
    }

    fn open_ws(&mut self, slot: usize, req: &Request, rest: Vec<u8>, phx: bool) {
        if !req.upgrade_websocket || !req.connection_upgrade {
            return self.respond_error(
                slot,
                426,
                "Upgrade: websocket\r\nConnection: Upgrade\r\n",
                "websocket upgrade required",
            );
        }
        if req.ws_version.as_deref() != Some("13") {
            return self.respond_error(
                slot,
                426,
                "Sec-WebSocket-Version: 13\r\n",
                "unsupported Sec-WebSocket-Version (13 is supported)",
            );
        }
        let Some(key) = req.ws_key.as_deref().filter(|k| !k.is_empty()) else {
            return self.respond_error(slot, 400, "", "missing Sec-WebSocket-Key");
        };
        let topics = if phx {
            Vec::new()
        } else {
            match self.topics_param(req) {
                Ok(t) if t.len() > self.cfg.limits.max_topics_per_connection => {
                    return self.respond_error(slot, 400, "", "too many topics")
                }
                Ok(t) => t,
                Err(name) => {
                    return self.respond_error(slot, 404, "", &format!("unknown topic: {name}"))
                }
            }
        };
        let since = match req.param("since").map(str::parse::<Position>) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return self.respond_error(slot, 400, "", "invalid since: expected epoch:offset")
            }
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let limits = &self.cfg.limits;
        let mut wsc = WebSocketConfig::default();
        wsc.read_buffer_size = 4096;
        wsc.write_buffer_size = limits.write_batch_bytes;
        wsc.max_write_buffer_size = usize::MAX;
        wsc.max_message_size = Some(limits.max_message_bytes);
        wsc.max_frame_size = Some(limits.max_message_bytes);
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Io::Http { mut stream, .. } = std::mem::replace(&mut conn.io, Io::Gone) else {
            return;
        };
        // A fresh socket's send buffer is empty: the 101 head (under 200 bytes) is written
        // whole, or the peer is broken and the connection is dropped.
        if stream.write_all(head.as_bytes()).is_err() {
            conn.io = Io::Draining { stream };
            self.drop_conn(slot);
            return;
        }
        let ws = WebSocket::from_partially_read(stream, rest, Role::Server, Some(wsc));
        conn.io = Io::Ws {
            ws: Box::new(ws),
            phase: WsPhase::Open,
        };
        let transport = if phx {
            Transport::Phoenix
        } else {
            Transport::Ws
        };
        conn.transport = transport;
        conn.last_in = Instant::now();
        conn.deadline = None;
        self.metrics.conn_delta(Transport::Http, -1);
        self.metrics.conn_delta(transport, 1);
        if !topics.is_empty() {
            let names: Vec<String> = topics
                .iter()
                .map(|&t| self.hub.topics[t].cfg.name.clone())
                .collect();
            self.subscribe_plain(slot, &topics, since, &names);
        }
        self.read_ws(slot);
        self.mark_dirty(slot);
    }

    fn read_ws(&mut self, slot: usize) {
        let now = Instant::now();
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            let Io::Ws {
                ws,
                phase: WsPhase::Open,
            } = &mut conn.io
            else {
                return;
            };
            let msg = match ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(tungstenite::Error::Capacity(_)) => {
                    return self.protocol_close(slot, CloseCode::Size, "message too big");
                }
                Err(tungstenite::Error::Utf8) => {
                    return self.protocol_close(
                        slot,
                        CloseCode::Invalid,
                        "invalid UTF-8 in text frame",
                    );
                }
                Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => {
                    // The client went away without a close handshake: a disconnect.
                    return self.drop_conn(slot);
                }
                Err(tungstenite::Error::Protocol(_)) => {
                    return self.protocol_close(slot, CloseCode::Protocol, "protocol error");
                }
                Err(_) => return self.drop_conn(slot),
            };
            conn.last_in = now;
            let outcome = match msg {
                Message::Text(t) => {
                    if conn.is_phoenix() {
                        self.phoenix_text(slot, t.as_str())
                    } else {
                        self.plain_text(slot, t.as_str())
                    }
                }
                Message::Binary(_) => {
                    Outcome::Close(CloseCode::Unsupported, "binary frames are not supported")
                }
                Message::Close(_) => {
                    // tungstenite queued the echo; flush it, then drain to EOF.
                    if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                        if let Io::Ws { phase, .. } = &mut conn.io {
                            *phase = WsPhase::Closing;
                        }
                        conn.deadline = Some(now + self.cfg.timeouts.close_linger);
                        if conn.flush() == Flow::Dead {
                            self.drop_conn(slot);
                        }
                    }
                    return;
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Outcome::Ok,
            };
            if let Outcome::Close(code, reason) = outcome {
                return self.protocol_close(slot, code, reason);
            }
        }
    }

    fn protocol_close(&mut self, slot: usize, code: CloseCode, reason: &str) {
        self.metrics.add(Counter::ProtocolCloses, 1);
        self.close_conn(slot, code, reason);
    }

    /// Closes a WebSocket with a code, or ends another connection.
    fn close_conn(&mut self, slot: usize, code: CloseCode, reason: &str) {
        let linger = self.cfg.timeouts.close_linger;
        self.unsubscribe_all(slot);
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let flow = if matches!(conn.io, Io::Ws { .. }) {
            conn.close_ws(code, reason, Instant::now(), linger)
        } else {
            conn.deadline = Some(Instant::now() + linger);
            conn.start_draining()
        };
        if flow == Flow::Dead {
            self.drop_conn(slot);
        }
        self.sync_interest(slot);
    }

    fn close_all(&mut self, code: CloseCode, reason: &str) {
        for slot in 0..self.conns.len() {
            if self.conns[slot].is_some() {
                self.close_conn(slot, code, reason);
            }
        }
    }

    fn drop_conn(&mut self, slot: usize) {
        self.unsubscribe_all(slot);
        if let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) {
            self.metrics.conn_delta(conn.transport, -1);
            let stream: Option<&mut TcpStream> = match &mut conn.io {
                Io::Http { stream, .. }
                | Io::Respond { stream, .. }
                | Io::Sse { stream, .. }
                | Io::Draining { stream } => Some(stream),
                Io::Ws { ws, .. } | Io::WsDraining { ws } => Some(ws.get_mut()),
                Io::Gone => None,
            };
            if let Some(s) = stream {
                let _ = self.poll.registry().deregister(s);
            }
            self.free.push(slot);
        }
    }

    /// Removes a connection from every topic (and its presence).
    fn unsubscribe_all(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let subs = std::mem::take(&mut conn.subs);
        let id = conn.id;
        for s in subs {
            self.hub.topics[s.topic].subscribers.retain(|&x| x != slot);
            self.presence_leave(s.topic, id);
        }
    }

    /// Registers for writable events only while a write is pending.
    fn sync_interest(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let want = conn.wants_write();
        if want == conn.write_interest {
            return;
        }
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        conn.write_interest = want;
        if let Some(s) = conn.socket() {
            let _ = self
                .poll
                .registry()
                .reregister(s, Token(slot + FIRST_CONN), interest);
        }
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    // ---- delivery --------------------------------------------------------------------

    fn write_dirty(&mut self) {
        // Swap with the spare list so connections marked dirty while pumping wait for
        // the next pass; both lists keep their capacity.
        let mut batch = std::mem::take(&mut self.dirty_spare);
        std::mem::swap(&mut batch, &mut self.dirty);
        for &slot in &batch {
            if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                conn.dirty = false;
            }
            self.pump(slot);
            self.sync_interest(slot);
        }
        batch.clear();
        self.dirty_spare = batch;
    }

    /// Writes what a connection has not seen yet, up to one batch.
    fn pump(&mut self, slot: usize) {
        let limits = &self.cfg.limits;
        let (cap, batch) = (limits.max_outbound_bytes as u64, limits.write_batch_bytes);
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if !conn.is_open() || conn.subs.is_empty() {
            return;
        }
        // Slow-consumer policy: applies to a client whose socket filled up since it was
        // last fully caught up (stalled) and that lags more than the cap, or that missed
        // messages the history no longer holds.
        let blocked = conn.blocked;
        let stalled = blocked || conn.stalled;
        let mut lag = 0u64;
        let mut stuck = false;
        for s in conn.subs.iter_mut() {
            let topic = &self.hub.topics[s.topic];
            let behind = topic.total_bytes - s.cum;
            if topic.gap_after(s.cursor) || (stalled && behind > cap) {
                if topic.cfg.coalesce {
                    s.cursor = topic.latest_cursor(self.hub.last_offset);
                    s.cum = topic.cum_at(s.cursor);
                    self.metrics.add(Counter::SlowConsumerSkips, 1);
                } else {
                    stuck = stuck || topic.gap_after(s.cursor);
                }
            }
            lag += topic.total_bytes - s.cum;
        }
        if stuck || (stalled && lag > cap) {
            self.metrics.add(Counter::SlowConsumerCloses, 1);
            return self.close_conn(slot, CloseCode::Again, "slow consumer");
        }
        if blocked {
            return;
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let sse = conn.transport == Transport::Sse;
        let phx = conn.transport == Transport::Phoenix;
        let mut count = 0u64;
        let mut flow = Flow::Done;
        loop {
            // The next message in hub order across this connection's topics.
            let mut best: Option<(u64, usize)> = None;
            for (i, s) in conn.subs.iter().enumerate() {
                if let Some(e) = self.hub.topics[s.topic].next_after(s.cursor) {
                    if best.is_none_or(|(o, _)| e.offset < o) {
                        best = Some((e.offset, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let topic = &self.hub.topics[conn.subs[i].topic];
            let Some(e) = topic.next_after(conn.subs[i].cursor) else {
                break;
            };
            if sse {
                let mut head = [0u8; 64];
                let mut w = &mut head[..];
                let _ = write!(w, "id: {}:{}\ndata: ", self.hub.epoch, e.offset);
                let used = 64 - w.len();
                conn.sse_push(&head[..used]);
                conn.sse_push(e.ws.as_bytes());
                conn.sse_push(b"\n\n");
            } else {
                let text = if phx { e.phx.clone() } else { e.ws.clone() };
                flow = conn.ws_text(text);
            }
            conn.subs[i].cursor = e.offset;
            conn.subs[i].cum = e.cum_end;
            count += 1;
            if flow != Flow::Done {
                break;
            }
            // SSE bytes queue in our own buffer: hand them to the socket per batch.
            if sse && conn.sse_queued() >= batch {
                flow = conn.flush();
                if flow != Flow::Done {
                    break;
                }
            }
        }
        if flow == Flow::Done {
            flow = conn.flush();
        }
        let counter = match conn.transport {
            Transport::Sse => Counter::DeliveriesSse,
            Transport::Phoenix => Counter::DeliveriesPhoenix,
            _ => Counter::DeliveriesWs,
        };
        self.metrics.add(counter, count);
        match flow {
            Flow::Dead => self.drop_conn(slot),
            Flow::Done => conn.stalled = false,
            Flow::Blocked => conn.stalled = true,
        }
    }

    // ---- timers ------------------------------------------------------------------------

    fn timers(&mut self, now: Instant) {
        let t = self.cfg.timeouts.clone();
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_mut() else {
                continue;
            };
            match &mut conn.io {
                Io::Http { .. } => {
                    if now.duration_since(conn.created) > t.handshake {
                        self.metrics.add(Counter::HandshakeTimeouts, 1);
                        self.drop_conn(slot);
                    }
                }
                Io::Respond { .. } | Io::Draining { .. } | Io::WsDraining { .. } | Io::Gone => {
                    if conn.deadline.is_some_and(|d| now > d) {
                        self.drop_conn(slot);
                    }
                }
                Io::Ws { ws, phase } => {
                    if *phase == WsPhase::Closing {
                        if conn.deadline.is_some_and(|d| now > d) {
                            self.drop_conn(slot);
                        }
                    } else if now.duration_since(conn.last_in) > t.idle {
                        self.metrics.add(Counter::IdleTimeouts, 1);
                        self.close_conn(slot, CloseCode::Away, "idle timeout");
                    } else if now.duration_since(conn.last_in) > t.ping
                        && now.duration_since(conn.last_ping) > t.ping
                    {
                        // A client that only listens still answers pings (pong frames
                        // count as input), so it is not taken for idle.
                        let _ = ws.write(Message::Ping(Default::default()));
                        conn.last_ping = now;
                        if conn.flush() == Flow::Dead {
                            self.drop_conn(slot);
                        }
                        self.sync_interest(slot);
                    }
                }
                Io::Sse { .. } => {
                    if now.duration_since(conn.last_out) > t.sse_heartbeat {
                        conn.sse_push(b": hb\n\n");
                        conn.last_out = now;
                        if conn.flush() == Flow::Dead {
                            self.drop_conn(slot);
                        }
                        self.sync_interest(slot);
                    }
                }
            }
        }
    }

    // ---- plain WebSocket protocol ------------------------------------------------------

    fn plain_text(&mut self, slot: usize, text: &str) -> Outcome {
        let v: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                self.send_plain(
                    slot,
                    plain_error(None, "bad_message", "expected a JSON object"),
                );
                return Outcome::Ok;
            }
        };
        let msg_ref = v.get("ref").and_then(ref_string);
        match v.get("type").and_then(Value::as_str) {
            Some("ping") => self.send_plain(slot, "{\"type\":\"pong\"}".to_owned()),
            Some("subscribe") | Some("unsubscribe") => {
                let sub = v["type"] == "subscribe";
                let Some(names) = v.get("topics").and_then(Value::as_array) else {
                    self.send_plain(
                        slot,
                        plain_error(
                            msg_ref.as_deref(),
                            "bad_message",
                            "topics must be an array of strings",
                        ),
                    );
                    return Outcome::Ok;
                };
                let mut idx = Vec::new();
                let mut out_names = Vec::new();
                for n in names {
                    let Some(name) = n.as_str() else {
                        self.send_plain(
                            slot,
                            plain_error(
                                msg_ref.as_deref(),
                                "bad_message",
                                "topics must be an array of strings",
                            ),
                        );
                        return Outcome::Ok;
                    };
                    match self.hub.topic_index(name) {
                        Some(t) => {
                            idx.push(t);
                            out_names.push(name.to_owned());
                        }
                        None => {
                            self.send_plain(
                                slot,
                                plain_error(
                                    msg_ref.as_deref(),
                                    "unknown_topic",
                                    &format!("unknown topic: {name}"),
                                ),
                            );
                            return Outcome::Ok;
                        }
                    }
                }
                if sub {
                    let since = match v
                        .get("since")
                        .and_then(Value::as_str)
                        .map(str::parse::<Position>)
                    {
                        None => None,
                        Some(Ok(p)) => Some(p),
                        Some(Err(_)) => {
                            self.send_plain(
                                slot,
                                plain_error(
                                    msg_ref.as_deref(),
                                    "bad_message",
                                    "since must be epoch:offset",
                                ),
                            );
                            return Outcome::Ok;
                        }
                    };
                    let current = self.conns[slot].as_ref().map_or(0, |c| c.subs.len());
                    if current + idx.len() > self.cfg.limits.max_topics_per_connection {
                        self.send_plain(
                            slot,
                            plain_error(
                                msg_ref.as_deref(),
                                "too_many_topics",
                                "topic limit reached",
                            ),
                        );
                        return Outcome::Ok;
                    }
                    self.subscribe_plain(slot, &idx, since, &out_names);
                } else {
                    for &t in &idx {
                        self.unsubscribe(slot, t);
                    }
                    let mut b = Vec::with_capacity(64);
                    b.extend_from_slice(b"{\"type\":\"unsubscribed\",\"topics\":");
                    json_names(&mut b, &out_names);
                    b.push(b'}');
                    self.send_plain(slot, String::from_utf8(b).unwrap_or_default());
                }
            }
            Some("command") => {
                let (Some(topic), Some(event)) = (
                    v.get("topic").and_then(Value::as_str),
                    v.get("event").and_then(Value::as_str),
                ) else {
                    self.send_plain(
                        slot,
                        plain_error(
                            msg_ref.as_deref(),
                            "bad_message",
                            "command needs topic and event strings",
                        ),
                    );
                    return Outcome::Ok;
                };
                let payload = v.get("payload").cloned().unwrap_or(Value::Null);
                return self.command(
                    slot,
                    None,
                    msg_ref,
                    topic.to_owned(),
                    event.to_owned(),
                    payload,
                );
            }
            _ => self.send_plain(
                slot,
                plain_error(
                    msg_ref.as_deref(),
                    "unknown_type",
                    "type must be subscribe, unsubscribe, command or ping",
                ),
            ),
        }
        Outcome::Ok
    }

    fn send_plain(&mut self, slot: usize, text: String) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
            if conn.send_text(text) == Flow::Dead {
                self.drop_conn(slot);
            }
        }
    }

    fn subscribe_plain(
        &mut self,
        slot: usize,
        topics: &[usize],
        since: Option<Position>,
        names: &[String],
    ) {
        let mut gaps = Vec::new();
        for &t in topics {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if conn.subs.iter().any(|s| s.topic == t) {
                continue;
            }
            let (cursor, cum, gap) = self.hub.start(t, since);
            if let Some(r) = gap {
                gaps.push((t, r));
            }
            conn.subs.push(Sub {
                topic: t,
                cursor,
                cum,
            });
            self.hub.topics[t].subscribers.push(slot);
        }
        let mut b = Vec::with_capacity(96);
        b.extend_from_slice(b"{\"type\":\"subscribed\",\"topics\":");
        json_names(&mut b, names);
        let _ = write!(b, ",\"position\":\"{}\"}}", self.hub.position());
        self.send_plain(slot, String::from_utf8(b).unwrap_or_default());
        for (t, r) in gaps {
            self.metrics.add(Counter::Gaps, 1);
            let mut b = Vec::with_capacity(96);
            gap_json(
                &mut b,
                &self.hub.topics[t].cfg.name,
                r,
                self.hub.epoch,
                self.hub.last_offset,
                true,
            );
            self.send_plain(slot, String::from_utf8(b).unwrap_or_default());
        }
        self.mark_dirty(slot);
    }

    fn unsubscribe(&mut self, slot: usize, t: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let before = conn.subs.len();
        conn.subs.retain(|s| s.topic != t);
        let id = conn.id;
        if conn.subs.len() != before {
            self.hub.topics[t].subscribers.retain(|&x| x != slot);
            self.presence_leave(t, id);
        }
    }

    // ---- commands (both protocols) -------------------------------------------------------

    /// Validates, rate-limits and forwards one command; replies to refusals at once.
    fn command(
        &mut self,
        slot: usize,
        join_ref: Option<String>,
        msg_ref: Option<String>,
        topic: String,
        event: String,
        payload: Value,
    ) -> Outcome {
        let limits = self.cfg.limits.clone();
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Outcome::Ok;
        };
        let phx = conn.is_phoenix();
        let refuse = |code: &str, reason: &str| -> String {
            if phx {
                phoenix::reply_error(
                    join_ref.as_deref(),
                    msg_ref.as_deref(),
                    &topic,
                    Some(code),
                    reason,
                )
            } else {
                plain_reply(msg_ref.as_deref(), Err((code, reason)))
            }
        };
        let t = self.hub.topic_index(&topic);
        let joined = t.is_some_and(|t| conn.subs.iter().any(|s| s.topic == t));
        let error = if t.is_none() || (phx && !joined) {
            Some(("unmatched_topic", "unmatched topic"))
        } else if !t.is_some_and(|t| self.hub.topics[t].cfg.commands.contains(&event)) {
            Some(("unknown_event", "unknown event"))
        } else if !conn.take_token(Instant::now(), limits.push_burst, limits.push_per_second) {
            self.metrics.add(Counter::CommandsRateLimited, 1);
            if conn.violations > limits.flood_close_after {
                return Outcome::Close(CloseCode::Policy, "push flood");
            }
            Some(("rate_limited", "rate limited"))
        } else {
            None
        };
        if let Some((code, reason)) = error {
            if code != "rate_limited" {
                self.metrics.add(Counter::CommandErrors, 1);
            }
            let text = refuse(code, reason);
            if conn.send_text(text) == Flow::Dead {
                self.drop_conn(slot);
            }
            return Outcome::Ok;
        }
        let seq = conn.next_seq;
        let cmd = InboundCommand {
            origin: Origin { conn: conn.id, seq },
            topic: topic.clone(),
            event,
            payload: serde_json::to_vec(&payload).unwrap_or_else(|_| b"null".to_vec()),
        };
        match self.cmd_tx.push(cmd) {
            Ok(()) => {
                conn.next_seq += 1;
                conn.pending.push(Pending {
                    seq,
                    join_ref,
                    msg_ref,
                    topic,
                });
                self.metrics.add(Counter::CommandsIn, 1);
            }
            Err(_) => {
                self.metrics.add(Counter::CommandsRingFull, 1);
                let text = refuse("overloaded", "command queue is full, retry later");
                if conn.send_text(text) == Flow::Dead {
                    self.drop_conn(slot);
                }
            }
        }
        Outcome::Ok
    }

    // ---- Phoenix Channels V2 -------------------------------------------------------------

    fn phoenix_text(&mut self, slot: usize, text: &str) -> Outcome {
        let msg = match phoenix::parse(text) {
            Ok(m) => m,
            Err(_) => return Outcome::Close(CloseCode::Invalid, "malformed Phoenix message"),
        };
        let PhxIn {
            join_ref,
            msg_ref,
            topic,
            event,
            payload,
        } = msg;
        let (jr, mr) = (join_ref.as_deref(), msg_ref.as_deref());
        if topic == "phoenix" {
            let text = if event == "heartbeat" {
                phoenix::reply_ok(jr, mr, "phoenix", b"{}")
            } else {
                self.metrics.add(Counter::CommandErrors, 1);
                phoenix::reply_error(jr, mr, "phoenix", Some("unknown_event"), "unknown event")
            };
            self.send_plain(slot, text);
            return Outcome::Ok;
        }
        match event.as_str() {
            "phx_join" => self.phx_join(slot, join_ref, msg_ref, topic, payload),
            "phx_leave" => {
                let t = self.hub.topic_index(&topic);
                let joined = t.is_some_and(|t| {
                    self.conns[slot]
                        .as_ref()
                        .is_some_and(|c| c.subs.iter().any(|s| s.topic == t))
                });
                if let (Some(t), true) = (t, joined) {
                    self.unsubscribe(slot, t);
                    self.send_plain(slot, phoenix::reply_ok(jr, mr, &topic, b"{}"));
                    self.send_plain(slot, phoenix::frame(jr, jr, &topic, "phx_close", b"{}"));
                } else {
                    self.send_plain(
                        slot,
                        phoenix::reply_error(
                            jr,
                            mr,
                            &topic,
                            Some("unmatched_topic"),
                            "unmatched topic",
                        ),
                    );
                }
                Outcome::Ok
            }
            _ => self.command(slot, join_ref, msg_ref, topic, event, payload),
        }
    }

    fn phx_join(
        &mut self,
        slot: usize,
        join_ref: Option<String>,
        msg_ref: Option<String>,
        topic: String,
        params: Value,
    ) -> Outcome {
        let (jr, mr) = (join_ref.as_deref(), msg_ref.as_deref());
        let Some(t) = self.hub.topic_index(&topic) else {
            self.metrics.add(Counter::CommandErrors, 1);
            self.send_plain(
                slot,
                phoenix::reply_error(jr, mr, &topic, Some("unmatched_topic"), "unmatched topic"),
            );
            return Outcome::Ok;
        };
        if !matches!(params, Value::Object(_) | Value::Null) {
            self.send_plain(
                slot,
                phoenix::reply_error(
                    jr,
                    mr,
                    &topic,
                    Some("invalid_params"),
                    "join params must be an object",
                ),
            );
            return Outcome::Ok;
        }
        let since = match params
            .get("since")
            .map(|v| v.as_str().map(str::parse::<Position>))
        {
            None => None,
            Some(Some(Ok(p))) => Some(p),
            Some(_) => {
                self.send_plain(
                    slot,
                    phoenix::reply_error(
                        jr,
                        mr,
                        &topic,
                        Some("invalid_params"),
                        "since must be \"epoch:offset\"",
                    ),
                );
                return Outcome::Ok;
            }
        };
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Outcome::Ok;
        };
        // A second join of the same topic replaces the first (as in Phoenix).
        if conn.subs.iter().any(|s| s.topic == t) {
            self.unsubscribe(slot, t);
        } else if conn.subs.len() >= self.cfg.limits.max_topics_per_connection {
            self.send_plain(
                slot,
                phoenix::reply_error(
                    jr,
                    mr,
                    &topic,
                    Some("too_many_topics"),
                    "topic limit reached",
                ),
            );
            return Outcome::Ok;
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Outcome::Ok;
        };
        let id = conn.id;
        let (cursor, cum, gap) = self.hub.start(t, since);
        conn.subs.push(Sub {
            topic: t,
            cursor,
            cum,
        });
        self.hub.topics[t].subscribers.push(slot);
        let mut resp = Vec::with_capacity(48);
        let _ = write!(resp, "{{\"position\":\"{}\"}}", self.hub.position());
        self.send_plain(slot, phoenix::reply_ok(jr, mr, &topic, &resp));
        if let Some(reason) = gap {
            self.metrics.add(Counter::Gaps, 1);
            let mut b = Vec::with_capacity(96);
            let _ = write!(
                b,
                "{{\"reason\":\"{}\",\"position\":\"{}\"}}",
                reason.as_str(),
                self.hub.position()
            );
            self.send_plain(slot, phoenix::frame(jr, None, &topic, "gap", &b));
        }
        if self.hub.topics[t].cfg.presence {
            let key = match params.get("user").and_then(Value::as_str) {
                Some(u) if !u.is_empty() && u.len() <= 128 => u.to_owned(),
                _ => format!("conn:{id}"),
            };
            self.presence_join(slot, t, id, key, jr);
        }
        self.mark_dirty(slot);
        Outcome::Ok
    }

    fn presence_join(&mut self, slot: usize, t: usize, id: u64, key: String, jr: Option<&str>) {
        let online_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.presence_seq += 1;
        let meta = PresenceMeta {
            key,
            phx_ref: format!("{:x}", self.presence_seq),
            conn: id,
            online_at,
        };
        let topic_name = self.hub.topics[t].cfg.name.clone();
        let list = &mut self.presence_mut(t);
        list.push(meta.clone());
        // presence_state to the joiner.
        let state = presence_map(list.iter());
        self.send_plain(
            slot,
            phoenix::frame(jr, None, &topic_name, "presence_state", state.as_bytes()),
        );
        // presence_diff to every member (the joiner included).
        let mut diff = String::from("{\"joins\":");
        diff.push_str(&presence_map(std::iter::once(&meta)));
        diff.push_str(",\"leaves\":{}}");
        self.broadcast_phx(
            t,
            phoenix::frame(None, None, &topic_name, "presence_diff", diff.as_bytes()),
        );
    }

    fn presence_leave(&mut self, t: usize, conn_id: u64) {
        if !self.hub.topics[t].cfg.presence {
            return;
        }
        let list = self.presence_mut(t);
        let gone: Vec<PresenceMeta> = list.iter().filter(|m| m.conn == conn_id).cloned().collect();
        if gone.is_empty() {
            return;
        }
        list.retain(|m| m.conn != conn_id);
        let topic_name = self.hub.topics[t].cfg.name.clone();
        let mut diff = String::from("{\"joins\":{},\"leaves\":");
        diff.push_str(&presence_map(gone.iter()));
        diff.push('}');
        self.broadcast_phx(
            t,
            phoenix::frame(None, None, &topic_name, "presence_diff", diff.as_bytes()),
        );
    }

    fn presence_mut(&mut self, t: usize) -> &mut Vec<PresenceMeta> {
        &mut self.hub.topics[t].presence
    }

    /// Sends one encoded Phoenix frame to every Phoenix member of a topic.
    fn broadcast_phx(&mut self, t: usize, text: String) {
        let text: tungstenite::Utf8Bytes = text.into();
        let members = self.hub.topics[t].subscribers.clone();
        for slot in members {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if !conn.is_phoenix() {
                continue;
            }
            let flow = match conn.ws_text(text.clone()) {
                Flow::Done => conn.flush(),
                f => f,
            };
            if flow == Flow::Dead {
                self.drop_conn(slot);
            }
            self.sync_interest(slot);
        }
    }
}

/// `{"key":{"metas":[{"phx_ref":…,"online_at":…},…]},…}` for these entries.
fn presence_map<'a>(metas: impl Iterator<Item = &'a PresenceMeta>) -> String {
    let mut grouped: Vec<(&str, Vec<&PresenceMeta>)> = Vec::new();
    for m in metas {
        match grouped.iter_mut().find(|(k, _)| *k == m.key) {
            Some((_, v)) => v.push(m),
            None => grouped.push((&m.key, vec![m])),
        }
    }
    let mut b = Vec::with_capacity(64);
    b.push(b'{');
    for (i, (key, metas)) in grouped.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        json_str(&mut b, key);
        b.extend_from_slice(b":{\"metas\":[");
        for (j, m) in metas.iter().enumerate() {
            if j > 0 {
                b.push(b',');
            }
            b.extend_from_slice(b"{\"phx_ref\":");
            json_str(&mut b, &m.phx_ref);
            let _ = write!(b, ",\"online_at\":{}}}", m.online_at);
        }
        b.extend_from_slice(b"]}");
    }
    b.push(b'}');
    String::from_utf8(b).unwrap_or_default()
}

fn peer_gone(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 512];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

fn ref_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn json_names(b: &mut Vec<u8>, names: &[String]) {
    b.push(b'[');
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        json_str(b, n);
    }
    b.push(b']');
}

fn gap_json(b: &mut Vec<u8>, topic: &str, reason: GapReason, epoch: u64, offset: u64, typed: bool) {
    b.push(b'{');
    if typed {
        b.extend_from_slice(b"\"type\":\"gap\",");
    }
    b.extend_from_slice(b"\"topic\":");
    json_str(b, topic);
    let _ = write!(
        b,
        ",\"reason\":\"{}\",\"position\":\"{epoch}:{offset}\"}}",
        reason.as_str()
    );
}

fn plain_error(msg_ref: Option<&str>, code: &str, reason: &str) -> String {
    let mut b = Vec::with_capacity(64 + reason.len());
    b.extend_from_slice(b"{\"type\":\"error\",");
    if let Some(r) = msg_ref {
        b.extend_from_slice(b"\"ref\":");
        json_str(&mut b, r);
        b.push(b',');
    }
    b.extend_from_slice(b"\"code\":");
    json_str(&mut b, code);
    b.extend_from_slice(b",\"reason\":");
    json_str(&mut b, reason);
    b.push(b'}');
    String::from_utf8(b).unwrap_or_default()
}

fn plain_reply(msg_ref: Option<&str>, result: Result<&[u8], (&str, &str)>) -> String {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(b"{\"type\":\"reply\",\"ref\":");
    match msg_ref {
        Some(r) => json_str(&mut b, r),
        None => b.extend_from_slice(b"null"),
    }
    match result {
        Ok(v) => {
            b.extend_from_slice(b",\"status\":\"ok\",\"response\":");
            b.extend_from_slice(v);
        }
        Err((code, reason)) => {
            b.extend_from_slice(b",\"status\":\"error\",\"response\":{\"code\":");
            json_str(&mut b, code);
            b.extend_from_slice(b",\"reason\":");
            json_str(&mut b, reason);
            b.push(b'}');
        }
    }
    b.push(b'}');
    String::from_utf8(b).unwrap_or_default()
}
