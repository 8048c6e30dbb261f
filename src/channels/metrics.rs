//! Counters and gauges of the broadcast server, rendered as Prometheus text.
//!
//! The server thread updates them with relaxed atomic adds (deliveries once per write
//! pass, not per message); any thread may read them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident => $metric:literal, $help:literal;)*) => {
        /// A counter of the broadcast server (`ebbflow_channels_*_total`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Counter { $($name,)* }
        impl Counter {
            /// Every counter.
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];
            /// Prometheus name.
            pub fn name(self) -> &'static str { match self { $(Counter::$name => $metric,)* } }
            /// Prometheus help text.
            pub fn help(self) -> &'static str { match self { $(Counter::$name => $help,)* } }
        }
    };
}

counters! {
    MessagesIn => "ebbflow_channels_messages_in_total", "Messages accepted from the bus into the hub.";
    DeliveriesPhoenix => "ebbflow_channels_deliveries_phoenix_total", "Messages written to Phoenix sockets.";
    DeliveriesWs => "ebbflow_channels_deliveries_ws_total", "Messages written to plain WebSockets.";
    DeliveriesSse => "ebbflow_channels_deliveries_sse_total", "Messages written to SSE streams.";
    DeliveriesInproc => "ebbflow_channels_deliveries_inproc_total", "Messages copied into in-process subscription rings.";
    InprocDrops => "ebbflow_channels_inproc_drops_total", "Messages not copied because an in-process subscription ring was full.";
    UnknownTopic => "ebbflow_channels_unknown_topic_messages_total", "Bus messages for undeclared topics (dropped).";
    InvalidPayload => "ebbflow_channels_invalid_payload_total", "Bus messages whose payload is not one JSON value (dropped).";
    SlowConsumerCloses => "ebbflow_channels_slow_consumer_closes_total", "Connections closed for lagging beyond max_outbound_bytes.";
    SlowConsumerSkips => "ebbflow_channels_slow_consumer_skips_total", "Times a lagging subscriber skipped to the latest message of a coalescing topic.";
    Gaps => "ebbflow_channels_gaps_total", "Resume requests that could not be served from history.";
    Accepted => "ebbflow_channels_connections_accepted_total", "TCP connections accepted.";
    Rejected => "ebbflow_channels_rejected_connections_total", "TCP connections closed on accept (max_connections).";
    HandshakeTimeouts => "ebbflow_channels_handshake_timeouts_total", "Connections closed for not completing their HTTP request in time.";
    IdleTimeouts => "ebbflow_channels_idle_timeouts_total", "WebSockets closed for silence.";
    HttpErrors => "ebbflow_channels_http_errors_total", "HTTP requests answered with a 4xx status.";
    ProtocolCloses => "ebbflow_channels_protocol_closes_total", "WebSockets closed for a protocol violation (1002, 1003, 1007, 1008, 1009).";
    CommandsIn => "ebbflow_channels_commands_in_total", "Client commands handed to the pipeline.";
    CommandsRateLimited => "ebbflow_channels_commands_rate_limited_total", "Client commands refused by the per-connection rate limit.";
    CommandsRingFull => "ebbflow_channels_commands_ring_full_total", "Client commands refused because the command ring was full.";
    CommandErrors => "ebbflow_channels_command_errors_total", "Pushes answered with an error (unmatched topic, unknown event, bad payload).";
    RepliesOut => "ebbflow_channels_replies_out_total", "Replies from the pipeline written to their sender.";
}

/// A gauge: open connections by transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Reading the HTTP request (not yet upgraded).
    Http,
    /// Phoenix Channels V2 WebSocket.
    Phoenix,
    /// Plain WebSocket.
    Ws,
    /// Server-Sent Events.
    Sse,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 4] = [
        Transport::Http,
        Transport::Phoenix,
        Transport::Ws,
        Transport::Sse,
    ];
    /// The `transport` label.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Phoenix => "phoenix",
            Transport::Ws => "ws",
            Transport::Sse => "sse",
        }
    }
}

/// The server's counters and gauges.
#[derive(Debug)]
pub struct Metrics {
    counters: Vec<AtomicU64>,
    connections: [AtomicI64; 4],
    /// Messages the bus writer refused (shared with it).
    pub(crate) bus_dropped: std::sync::Mutex<Option<std::sync::Arc<AtomicU64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            counters: Counter::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            connections: Default::default(),
            bus_dropped: std::sync::Mutex::new(None),
        }
    }
}

impl Metrics {
    /// Adds `n` to a counter.
    pub(crate) fn add(&self, c: Counter, n: u64) {
        if n > 0 {
            self.counters[c as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize].load(Ordering::Relaxed)
    }

    /// Open connections of one transport.
    pub fn connections(&self, t: Transport) -> i64 {
        self.connections[t as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn conn_delta(&self, t: Transport, d: i64) {
        self.connections[t as usize].fetch_add(d, Ordering::Relaxed);
    }

    /// Renders Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP ebbflow_channels_connections Open connections by transport."
        );
        let _ = writeln!(out, "# TYPE ebbflow_channels_connections gauge");
        for t in Transport::ALL {
            let _ = writeln!(
                out,
                "ebbflow_channels_connections{{transport=\"{}\"}} {}",
                t.label(),
                self.connections(t)
            );
        }
        for &c in Counter::ALL {
            let _ = writeln!(out, "# HELP {} {}", c.name(), c.help());
            let _ = writeln!(out, "# TYPE {} counter", c.name());
            let _ = writeln!(out, "{} {}", c.name(), self.get(c));
        }
        let bus = self
            .bus_dropped
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|a| a.load(Ordering::Relaxed)));
        if let Some(kb) = resident_kb() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes."
            );
            let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
            let _ = writeln!(out, "process_resident_memory_bytes {}", kb * 1024);
        }
        if let Some(n) = bus {
            let _ = writeln!(out, "# HELP ebbflow_channels_bus_dropped_total Messages the bus writer refused (ring full or too large).");
            let _ = writeln!(out, "# TYPE ebbflow_channels_bus_dropped_total counter");
            let _ = writeln!(out, "ebbflow_channels_bus_dropped_total {n}");
        }
    }
}

/// The process's resident set in KiB (`VmRSS` of `/proc/self/status`; Linux only).
fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
