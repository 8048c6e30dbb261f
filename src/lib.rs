//! ebbflow: an embedded, low-latency streaming engine for the reverse flow.
#![warn(missing_docs)]

pub mod engine;
