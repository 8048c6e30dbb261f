//! ebbflow: an embedded, low-latency streaming engine for the reverse flow.
//!
//! * [`engine`]: stages on pinned threads joined by SPSC rings, with budgets, placement,
//!   wait strategies, backpressure, statistics and shutdown.
//! * [`sources`]: fixed-size records and the decoders that produce them.
#![warn(missing_docs)]

pub mod channels;
pub mod engine;
pub mod flow;
pub mod journal;
pub mod sources;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
