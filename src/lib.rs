//! ebbflow: an embedded, low-latency streaming engine for the reverse flow.
//!
//! * [`engine`]: stages on pinned threads joined by SPSC rings, with budgets, placement,
//!   wait strategies, backpressure, statistics and shutdown.
//! * [`sources`]: fixed-size records and the decoders that produce them.
//! * [`flow`]: the reverse-flow stages and their assembly; [`journal`]: the event journal;
//!   [`channels`]: notification channels; [`telemetry`]: OpenTelemetry export.
#![warn(missing_docs)]

pub mod channels;
pub mod engine;
pub mod flow;
pub mod journal;
pub mod sources;
pub mod telemetry;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
