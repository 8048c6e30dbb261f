//! One client connection: its socket in each phase, subscriptions, and write primitives.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::metrics::Transport;

/// A subscription of a connection to one topic.
pub(crate) struct Sub {
    pub topic: usize,
    /// Last offset delivered (or considered seen).
    pub cursor: u64,
    /// The topic's cumulative bytes at `cursor`.
    pub cum: u64,
}

/// A command waiting for its reply.
pub(crate) struct Pending {
    pub seq: u64,
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
}

/// Where a WebSocket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsPhase {
    Open,
    /// Close frame queued; flushing it.
    Closing,
}

/// The socket, by phase.
pub(crate) enum Io {
    /// Reading the HTTP request head.
    Http { stream: TcpStream, buf: Vec<u8> },
    /// Writing a plain response, then draining.
    Respond {
        stream: TcpStream,
        out: Vec<u8>,
        pos: usize,
    },
    /// A WebSocket (plain or Phoenix).
    Ws {
        ws: Box<WebSocket<TcpStream>>,
        phase: WsPhase,
    },
    /// An SSE stream.
    Sse {
        stream: TcpStream,
        out: Vec<u8>,
        pos: usize,
    },
    /// Our side is shut for writing; reading until EOF (so the peer gets our last bytes,
    /// not a reset) or the deadline.
    Draining { stream: TcpStream },
    /// A WebSocket whose close frame is out and write side shut; draining like `Draining`.
    WsDraining { ws: Box<WebSocket<TcpStream>> },
    /// Placeholder while switching phases.
    Gone,
}

/// One connection.
pub(crate) struct Conn {
    pub id: u64,
    pub io: Io,
    pub transport: Transport,
    pub subs: Vec<Sub>,
    pub created: Instant,
    pub last_in: Instant,
    pub last_out: Instant,
    /// When the server last pinged (WebSocket).
    pub last_ping: Instant,
    pub deadline: Option<Instant>,
    pub dirty: bool,
    /// Socket would block: wait for writable before writing more.
    pub blocked: bool,
    /// The socket filled up since the connection was last fully caught up.
    pub stalled: bool,
    /// Whether the socket is registered for writable events (only while a write is
    /// pending, so ACKs on idle sockets do not wake the loop).
    pub write_interest: bool,
    pub tokens: f64,
    pub refill_at: Instant,
    pub violations: u32,
    pub pending: Vec<Pending>,
    pub next_seq: u64,
}

/// Result of one low-level I/O attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Everything written.
    Done,
    /// The socket is full; wait for writable.
    Blocked,
    /// The connection is dead.
    Dead,
}

impl Conn {
    pub fn new(id: u64, stream: TcpStream, now: Instant, burst: u32) -> Self {
        Conn {
            id,
            io: Io::Http {
                stream,
                buf: Vec::new(),
            },
            transport: Transport::Http,
            subs: Vec::new(),
            created: now,
            last_in: now,
            last_out: now,
            last_ping: now,
            deadline: None,
            dirty: false,
            blocked: false,
            stalled: false,
            write_interest: true,
            tokens: f64::from(burst),
            refill_at: now,
            violations: 0,
            pending: Vec::new(),
            next_seq: 0,
        }
    }

    pub fn is_phoenix(&self) -> bool {
        self.transport == Transport::Phoenix
    }

    /// Whether messages may be written (an open WebSocket or an SSE stream).
    pub fn is_open(&self) -> bool {
        matches!(
            self.io,
            Io::Ws {
                phase: WsPhase::Open,
                ..
            } | Io::Sse { .. }
        )
    }

    /// Whether writable events are needed: a write is pending, or the connection is not
    /// an open stream (HTTP, responding, closing).
    pub fn wants_write(&self) -> bool {
        self.blocked || !self.is_open()
    }

    /// The socket, whatever the phase.
    pub fn socket(&mut self) -> Option<&mut TcpStream> {
        match &mut self.io {
            Io::Http { stream, .. }
            | Io::Respond { stream, .. }
            | Io::Sse { stream, .. }
            | Io::Draining { stream } => Some(stream),
            Io::Ws { ws, .. } | Io::WsDraining { ws } => Some(ws.get_mut()),
            Io::Gone => None,
        }
    }

    /// Token bucket: takes one push token, refilling at `per_second` up to `burst`.
    pub fn take_token(&mut self, now: Instant, burst: u32, per_second: u32) -> bool {
        let dt = now.saturating_duration_since(self.refill_at).as_secs_f64();
        self.refill_at = now;
        self.tokens = (self.tokens + dt * f64::from(per_second)).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.violations = 0;
            true
        } else {
            self.violations += 1;
            false
        }
    }

    /// Queues a text frame on a WebSocket (no flush unless the buffer is large).
    pub fn ws_text(&mut self, text: tungstenite::Utf8Bytes) -> Flow {
        let Io::Ws {
            ws,
            phase: WsPhase::Open,
        } = &mut self.io
        else {
            return Flow::Dead;
        };
        match ws.write(Message::Text(text)) {
            Ok(()) => Flow::Done,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Flow::Blocked
            }
            Err(_) => Flow::Dead,
        }
    }

    /// Queues and flushes a text frame (for replies and control messages).
    pub fn send_text(&mut self, text: String) -> Flow {
        match self.ws_text(text.into()) {
            Flow::Done => self.flush(),
            other => other,
        }
    }

    /// Flushes whatever is buffered.
    pub fn flush(&mut self) -> Flow {
        let flow = match &mut self.io {
            Io::Ws { ws, phase } => match ws.flush() {
                Ok(()) => {
                    if *phase == WsPhase::Closing {
                        return self.start_draining();
                    }
                    Flow::Done
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    Flow::Blocked
                }
                Err(_) => Flow::Dead,
            },
            Io::Sse { stream, out, pos } | Io::Respond { stream, out, pos } => {
                match write_out(stream, out, pos) {
                    Flow::Done if matches!(self.io, Io::Respond { .. }) => {
                        return self.start_draining()
                    }
                    f => f,
                }
            }
            Io::Http { .. } | Io::Draining { .. } | Io::WsDraining { .. } => Flow::Done,
            Io::Gone => Flow::Dead,
        };
        self.blocked = flow == Flow::Blocked;
        if flow == Flow::Done {
            self.last_out = Instant::now();
        }
        flow
    }

    /// Starts a WebSocket close with `code` and `reason`; the connection drains afterwards.
    pub fn close_ws(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: Instant,
        linger: std::time::Duration,
    ) -> Flow {
        self.deadline = Some(now + linger);
        let Io::Ws { ws, phase } = &mut self.io else {
            return self.start_draining();
        };
        if *phase == WsPhase::Closing {
            return Flow::Done;
        }
        *phase = WsPhase::Closing;
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        match ws.close(Some(frame)) {
            Ok(()) => self.start_draining(),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Flow::Blocked
            }
            Err(_) => self.start_draining(),
        }
    }

    /// Shuts our write side and moves to draining.
    pub fn start_draining(&mut self) -> Flow {
        let io = std::mem::replace(&mut self.io, Io::Gone);
        let stream = match io {
            Io::Http { stream, .. }
            | Io::Respond { stream, .. }
            | Io::Sse { stream, .. }
            | Io::Draining { stream } => stream,
            Io::Ws { mut ws, .. } | Io::WsDraining { mut ws } => {
                let _ = ws.get_mut().shutdown(Shutdown::Write);
                self.io = Io::WsDraining { ws };
                self.subs.clear();
                return self.drain();
            }
            Io::Gone => return Flow::Dead,
        };
        let _ = stream.shutdown(Shutdown::Write);
        self.io = Io::Draining { stream };
        self.subs.clear();
        self.drain()
    }

    /// Reads and discards until EOF; `Dead` at EOF.
    pub fn drain(&mut self) -> Flow {
        let stream: &mut TcpStream = match &mut self.io {
            Io::Draining { stream } => stream,
            Io::WsDraining { ws } => ws.get_mut(),
            _ => return Flow::Done,
        };
        let mut sink = [0u8; 4096];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return Flow::Dead,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Done,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Flow::Dead,
            }
        }
    }

    /// Bytes queued on an SSE stream and not yet written.
    pub fn sse_queued(&self) -> usize {
        match &self.io {
            Io::Sse { out, pos, .. } => out.len() - pos,
            _ => 0,
        }
    }

    /// Appends raw SSE bytes.
    pub fn sse_push(&mut self, bytes: &[u8]) {
        if let Io::Sse { out, pos, .. } = &mut self.io {
            if *pos == out.len() {
                out.clear();
                *pos = 0;
            }
            out.extend_from_slice(bytes);
        }
    }
}

/// Writes `out[pos..]` until done or the socket blocks.
pub(crate) fn write_out(stream: &mut TcpStream, out: &mut Vec<u8>, pos: &mut usize) -> Flow {
    while *pos < out.len() {
        match stream.write(&out[*pos..]) {
            Ok(0) => return Flow::Dead,
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flow::Dead,
        }
    }
    out.clear();
    *pos = 0;
    Flow::Done
}
