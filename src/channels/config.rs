//! Server configuration: address, topics, limits, timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::static_files::StaticDir;

/// One topic the hub serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name as clients write it (`k8s:events`, `dashboard`, `room:lobby`).
    pub name: String,
    /// Messages kept for resume (at least 1).
    pub history: usize,
    /// Latest-wins: a slow client skips to the latest message instead of being closed, and
    /// a new subscriber first receives the latest message (a snapshot).
    pub coalesce: bool,
    /// Command event names clients may push on this topic (empty: none).
    pub commands: Vec<String>,
    /// Whether Phoenix joins on this topic are tracked as presence.
    pub presence: bool,
}

impl TopicConfig {
    /// A topic with `history` messages kept, no coalescing, no commands, no presence.
    pub fn new(name: impl Into<String>, history: usize) -> Self {
        Self {
            name: name.into(),
            history: history.max(1),
            coalesce: false,
            commands: Vec::new(),
            presence: false,
        }
    }

    /// Makes the topic latest-wins.
    pub fn coalescing(mut self) -> Self {
        self.coalesce = true;
        self
    }

    /// Accepts these command event names from clients.
    pub fn with_commands<I, S>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.commands = events.into_iter().map(Into::into).collect();
        self
    }

    /// Tracks presence of Phoenix joins.
    pub fn with_presence(mut self) -> Self {
        self.presence = true;
        self
    }
}

/// Limits that protect the server from slow, greedy or hostile clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most client connections at once (HTTP, WebSocket, SSE together); more are closed
    /// on accept and counted (`ebbflow_channels_rejected_connections_total`).
    pub max_connections: usize,
    /// Largest HTTP request head in bytes (431 when larger).
    pub max_request_bytes: usize,
    /// Largest incoming WebSocket message and frame in bytes (close 1009 when larger).
    pub max_message_bytes: usize,
    /// Outbound bytes a client may lag behind its topics before the slow-consumer policy
    /// applies (skip to latest on coalescing topics, close otherwise).
    pub max_outbound_bytes: usize,
    /// Bytes handed to one socket per write pass (writes are batched up to this).
    pub write_batch_bytes: usize,
    /// Commands a connection may push in a burst (token bucket size).
    pub push_burst: u32,
    /// Commands a connection may push per second, sustained (bucket refill).
    pub push_per_second: u32,
    /// Rate-limited pushes in a row after which the connection is closed with 1008.
    pub flood_close_after: u32,
    /// Topics one connection may subscribe to.
    pub max_topics_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_request_bytes: 8 * 1024,
            max_message_bytes: 64 * 1024,
            max_outbound_bytes: 1 << 20,
            write_batch_bytes: 64 * 1024,
            push_burst: 50,
            push_per_second: 100,
            flood_close_after: 500,
            max_topics_per_connection: 64,
        }
    }
}

/// Timers of the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection must finish its HTTP request within this (else it is closed; this is
    /// what clears half-open connections).
    pub handshake: Duration,
    /// A WebSocket that sends nothing (no frame, no pong) for this long is closed (1001).
    pub idle: Duration,
    /// The server pings plain and Phoenix WebSockets this often.
    pub ping: Duration,
    /// SSE streams get a comment line (`: hb`) this often.
    pub sse_heartbeat: Duration,
    /// How long a closing connection may take to finish its close handshake.
    pub close_linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            ping: Duration::from_secs(25),
            sse_heartbeat: Duration::from_secs(15),
            close_linger: Duration::from_secs(2),
        }
    }
}

/// Appends text (for example per-stage latency quantiles) to `GET /metrics`.
pub type MetricsHook = Arc<dyn Fn(&mut String) + Send + Sync>;

/// Everything [`crate::channels::Server::start`] needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port); `None` runs the hub with
    /// in-process subscribers only, without sockets.
    pub bind: Option<SocketAddr>,
    /// The topics served; messages for other topics are dropped and counted.
    pub topics: Vec<TopicConfig>,
    /// Limits per connection.
    pub limits: Limits,
    /// Timers.
    pub timeouts: Timeouts,
    /// Capacity of the command ring (client commands waiting for the pipeline).
    pub command_capacity: usize,
    /// Capacity of the reply ring (pipeline replies waiting for the server).
    pub reply_capacity: usize,
    /// Resume epoch; `None` takes the start time in milliseconds (a restarted server has a
    /// new epoch, so old positions are reported as gaps).
    pub epoch: Option<u64>,
    /// Extra text appended to `GET /metrics`.
    pub metrics_hook: Option<MetricsHook>,
    /// A directory served for every `GET` no other endpoint takes (the dashboard's static
    /// build; see [`StaticDir`]); `None`: such requests get `404`.
    pub static_files: Option<StaticDir>,
}

impl ServerConfig {
    /// A config listening on `bind` with these topics and default limits and timers.
    pub fn new(bind: Option<SocketAddr>, topics: Vec<TopicConfig>) -> Self {
        Self {
            bind,
            topics,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            command_capacity: 4096,
            reply_capacity: 4096,
            epoch: None,
            metrics_hook: None,
            static_files: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("topics", &self.topics)
            .field("limits", &self.limits)
            .field("timeouts", &self.timeouts)
            .field("command_capacity", &self.command_capacity)
            .field("reply_capacity", &self.reply_capacity)
            .field("epoch", &self.epoch)
            .field("metrics_hook", &self.metrics_hook.is_some())
            .field("static_files", &self.static_files)
            .finish()
    }
}

/// A configuration the server refuses to start with.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// Two topics have the same name.
    #[error("topic {0:?} is declared twice")]
    DuplicateTopic(String),
    /// A topic name is empty, longer than 255 bytes, or holds a comma or control character.
    #[error(
        "topic name {0:?} is invalid (empty, over 255 bytes, or has ',' or a control character)"
    )]
    BadTopicName(String),
    /// The reserved Phoenix topic was declared.
    #[error("topic \"phoenix\" is reserved for Phoenix heartbeats")]
    ReservedTopic,
    /// Binding or setting up the event loop failed.
    #[error("cannot start the server: {0}")]
    Io(#[from] std::io::Error),
}

impl ServerConfig {
    /// Checks the topics; collects the first problem.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for t in &self.topics {
            if t.name == "phoenix" {
                return Err(ConfigError::ReservedTopic);
            }
            if t.name.is_empty()
                || t.name.len() > 255
                || t.name.chars().any(|c| c == ',' || c.is_control())
            {
                return Err(ConfigError::BadTopicName(t.name.clone()));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(ConfigError::DuplicateTopic(t.name.clone()));
            }
        }
        Ok(())
    }
}
