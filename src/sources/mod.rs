//! Sources: decoders that turn input bytes into fixed-size records.
//!
//! - [`record`]: the fixed-size [`Record`](record::Record) every stage consumes.
//! - [`intern`]: the bounded string interner behind the records' symbols.
//! - [`hash`]: the stable hashes used for keys and content fingerprints.
//! - [`k8s`]: Kubernetes watch-stream and object decoding.
//! - [`replay`]: watch streams from a memory-mapped file or a reader (stdin).
//! - [`http_watch`]: an HTTP/1.1 watch client for `kubectl proxy`.
//! - [`pace`]: flat-out, fixed-rate or recorded-rate pacing.
//! - [`ticks`]: binary frames and CSV for trading ticks and sensor readings.
//! - [`gen`]: seeded deterministic scenario generators.
//! - [`wallclock`]: the cheap per-record wall clock for `ingest_ns`.
//! - [`labels`]: canonical label sets (interned) and their hash.

pub mod gen;
pub mod hash;
pub mod http_watch;
pub mod intern;
pub mod k8s;
pub mod labels;
pub mod pace;
pub mod record;
pub mod replay;
pub mod ticks;
pub mod wallclock;
