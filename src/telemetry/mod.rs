//! Telemetry: sampled per-event traces and periodic metrics, exported over OTLP/HTTP
//! (protobuf) by a side thread.
//!
//! * [`TraceRecorder`] fills a fixed-size [`TraceRecord`] per event on the hot path (clock
//!   reads only) and hands sampled or budget-breaking ones to a bounded ring; a full ring
//!   drops and counts. No lock, no allocation, no blocking.
//! * [`Telemetry`] owns the exporter thread: it builds the span tree (root `reverse_flow`,
//!   one child per stage), batches, encodes protobuf, POSTs to
//!   `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces` and `/v1/metrics`, and retries with a capped
//!   exponential backoff while the collector is down.
//! * [`MetricsSnapshot`] carries a pipeline's [`PipelineStats`](crate::engine::PipelineStats)
//!   figures as OTLP sums, gauges and summaries.
//!
//! Configuration comes from the standard `OTEL_*` variables ([`TelemetryConfig::from_env`]);
//! telemetry is off unless an endpoint is given. See `docs/telemetry.md`.

mod config;
mod counters;
mod exporter;
mod http;
mod metrics;
mod proto;
mod trace;

pub use config::{ConfigError, Endpoint, Sampler, TelemetryConfig};
pub use counters::TelemetryStats;
pub use exporter::{MetricsSource, StartError, Telemetry};
pub use http::ExportError;
pub use metrics::{MetricsSnapshot, RingMetrics, StageMetrics};
pub use proto::{encode_metrics, encode_traces, TimeBase};
pub use trace::{
    child_span_id, Finished, IdGen, InlineKey, TraceAttrs, TraceRecord, TraceRecorder, TraceSink,
    MAX_KEY, MAX_STAGES,
};
