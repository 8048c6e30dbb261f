//! Notification channels: how messages reach people and services.
//!
//! ```text
//! notify stage ──BusWriter──▶ [bus ring] ──▶ broadcast thread (mio) ──▶ Phoenix V2 / WebSocket / SSE clients
//!                                                 │  topic hub: history, (epoch, offset)
//!                                                 ├──▶ in-process subscriptions (rings)
//! pipeline ◀──CommandReceiver── [command ring] ◀──┤  client commands
//! pipeline ──CommandReplier──▶ [reply ring] ─────▶┘  replies to their sender
//! ```
//!
//! * [`bus()`]: the ring from the pipeline to the broadcast thread ([`BusWriter`], [`BusReader`]).
//! * [`Server`]: the `mio` thread owning every socket; configured by [`ServerConfig`].
//! * [`PubSub`] / [`Subscription`]: in-process subscribers, no sockets.
//! * [`CommandReceiver`] / [`CommandReplier`]: client commands and their replies.
//! * [`Metrics`]: counters and gauges, also served at `GET /metrics`.
//! * [`StaticDir`]: a directory served over plain `GET` (the dashboard's static build).
//!
//! The wire protocols (endpoints, messages, errors, close codes) are in `docs/protocol.md`.
//!
//! ```
//! use ebbflow::channels::{bus, Server, ServerConfig, TopicConfig};
//! use std::time::Duration;
//!
//! // `bind: Some("127.0.0.1:0".parse()?)` would also serve WebSocket, Phoenix and SSE.
//! let config = ServerConfig::new(None, vec![TopicConfig::new("alerts", 64)]);
//! let (mut writer, reader) = bus(1 << 16);
//! let server = Server::start(config, reader)?;
//! writer.set_waker(server.waker());
//!
//! let mut sub = server.pubsub().subscribe(&["alerts"], 1 << 16)?;
//! writer.try_publish("alerts", "fired", br#"{"pod":"web-1"}"#)?;
//! writer.flush();
//!
//! let mut got = Vec::new();
//! sub.read_timeout(16, Duration::from_secs(5), |m| got.push((m.event.to_owned(), m.position.offset)));
//! assert_eq!(got, [("fired".to_owned(), 1)]);
//! server.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bus;
mod command;
mod config;
mod conn;
mod http;
mod hub;
mod metrics;
mod phoenix;
mod pubsub;
mod server;
pub mod static_files;

pub use bus::{bus, BusError, BusMessage, BusReader, BusWriter};
pub use command::{CommandReceiver, CommandReplier, InboundCommand, Origin, ReplyError, ReplyFull};
pub use config::{ConfigError, Limits, MetricsHook, ServerConfig, Timeouts, TopicConfig};
pub use hub::{GapReason, Position, PositionParseError};
pub use metrics::{Counter, Metrics, Transport};
pub use pubsub::{Delivery, Gap, PubSub, SubscribeError, Subscription};
pub use server::{Server, ShutdownError};
pub use static_files::{StaticDir, StaticError};
