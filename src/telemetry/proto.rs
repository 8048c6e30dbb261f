//! A minimal protobuf writer and the OTLP messages the exporter sends
//! (`ExportTraceServiceRequest`, `ExportMetricsServiceRequest`, OTLP v1). Field numbers
//! follow `opentelemetry/proto/{collector,trace,metrics,common,resource}/v1/*.proto`; the
//! tests decode the output with the official generated classes. Runs on the exporter
//! thread only and allocates the request buffer.

use crate::engine::clock::Clock;

use super::counters::TelemetryStats;
use super::metrics::MetricsSnapshot;
use super::trace::{child_span_id, TraceRecord};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, ((field << 3) | wire) as u64);
}

fn bytes_field(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(buf, field, LEN);
    varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn string_field(buf: &mut Vec<u8>, field: u32, s: &str) {
    bytes_field(buf, field, s.as_bytes());
}

fn fixed64_field(buf: &mut Vec<u8>, field: u32, v: u64) {
    key(buf, field, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn double_field(buf: &mut Vec<u8>, field: u32, v: f64) {
    fixed64_field(buf, field, v.to_bits());
}

fn varint_field(buf: &mut Vec<u8>, field: u32, v: u64) {
    key(buf, field, VARINT);
    varint(buf, v);
}

/// Writes a length-delimited sub-message whose body `f` writes.
fn message(buf: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    key(buf, field, LEN);
    let start = buf.len();
    f(buf);
    let len = buf.len() - start;
    let mut prefix = Vec::with_capacity(10);
    varint(&mut prefix, len as u64);
    buf.splice(start..start, prefix);
}

/// An attribute value.
enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
}

/// `KeyValue` (common.proto): key = 1, value = 2 (`AnyValue`: string = 1, bool = 2,
/// int = 3).
fn attribute(buf: &mut Vec<u8>, field: u32, k: &str, v: Value<'_>) {
    message(buf, field, |buf| {
        string_field(buf, 1, k);
        message(buf, 2, |buf| match v {
            Value::Str(s) => string_field(buf, 1, s),
            Value::Bool(b) => varint_field(buf, 2, b as u64),
            Value::Int(i) => varint_field(buf, 3, i as u64),
        });
    });
}

/// `Resource` (resource.proto): attributes = 1.
fn resource(buf: &mut Vec<u8>, field: u32, service: &str) {
    message(buf, field, |buf| {
        attribute(buf, 1, "service.name", Value::Str(service));
        attribute(buf, 1, "telemetry.sdk.name", Value::Str("ebbflow"));
        attribute(buf, 1, "telemetry.sdk.language", Value::Str("rust"));
    });
}

/// `InstrumentationScope` (common.proto): name = 1, version = 2.
fn scope(buf: &mut Vec<u8>, field: u32) {
    message(buf, field, |buf| {
        string_field(buf, 1, "ebbflow");
        string_field(buf, 2, env!("CARGO_PKG_VERSION"));
    });
}

/// Converts clock ticks to Unix nanoseconds: a wall-clock anchor taken once plus the
/// tick distance from the anchor's tick reading.
#[derive(Debug, Clone, Copy)]
pub struct TimeBase {
    clock: Clock,
    anchor_ticks: u64,
    anchor_unix_ns: u64,
}

impl TimeBase {
    /// Anchors now.
    pub fn now() -> TimeBase {
        let clock = *Clock::get();
        let anchor_ticks = clock.ticks();
        let anchor_unix_ns = unix_now_ns();
        TimeBase {
            clock,
            anchor_ticks,
            anchor_unix_ns,
        }
    }

    /// Unix nanoseconds of a tick reading (before or after the anchor).
    pub fn unix_ns(&self, ticks: u64) -> u64 {
        if ticks >= self.anchor_ticks {
            self.anchor_unix_ns + self.clock.to_ns(ticks - self.anchor_ticks)
        } else {
            self.anchor_unix_ns
                .saturating_sub(self.clock.to_ns(self.anchor_ticks - ticks))
        }
    }

    /// Unix nanoseconds of the anchor.
    pub fn anchor_unix_ns(&self) -> u64 {
        self.anchor_unix_ns
    }
}

/// The wall clock in Unix nanoseconds (0 before 1970).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Encodes an `ExportTraceServiceRequest` with one root span `reverse_flow` per record and
/// one child span per recorded stage. Returns the bytes and the number of spans.
pub fn encode_traces(service: &str, records: &[TraceRecord], time: &TimeBase) -> (Vec<u8>, u64) {
    let mut buf = Vec::with_capacity(256 + records.len() * 512);
    let mut spans = 0u64;
    // ExportTraceServiceRequest.resource_spans = 1
    message(&mut buf, 1, |buf| {
        resource(buf, 1, service); // ResourceSpans.resource = 1
        message(buf, 2, |buf| {
            // ResourceSpans.scope_spans = 2
            scope(buf, 1); // ScopeSpans.scope = 1
            for r in records {
                let trace_id = r.trace_id.to_be_bytes();
                root_span(buf, r, &trace_id, time);
                spans += 1;
                for (i, start, end) in r.stages() {
                    child_span(buf, r, &trace_id, i, time.unix_ns(start), time.unix_ns(end));
                    spans += 1;
                }
            }
        });
    });
    (buf, spans)
}

/// `Span` (trace.proto): trace_id = 1, span_id = 2, parent_span_id = 4, name = 5,
/// kind = 6 (INTERNAL = 1), start = 7, end = 8 (fixed64), attributes = 9.
fn root_span(buf: &mut Vec<u8>, r: &TraceRecord, trace_id: &[u8; 16], time: &TimeBase) {
    message(buf, 2, |buf| {
        bytes_field(buf, 1, trace_id);
        bytes_field(buf, 2, &r.span_id.to_be_bytes());
        string_field(buf, 5, "reverse_flow");
        varint_field(buf, 6, 1);
        let start = time.unix_ns(r.start);
        fixed64_field(buf, 7, start);
        fixed64_field(buf, 8, time.unix_ns(r.end).max(start));
        let a = &r.attrs;
        attribute(buf, 9, "ebbflow.scenario", Value::Str(a.scenario));
        attribute(buf, 9, "ebbflow.pattern", Value::Str(a.pattern));
        attribute(buf, 9, "ebbflow.kind", Value::Str(a.kind));
        attribute(buf, 9, "ebbflow.key", Value::Str(a.key.as_str()));
        attribute(
            buf,
            9,
            "ebbflow.budget_exceeded",
            Value::Bool(a.budget_exceeded),
        );
        if !a.stopped_at.is_empty() {
            attribute(buf, 9, "ebbflow.stopped_at", Value::Str(a.stopped_at));
        }
    });
}

fn child_span(
    buf: &mut Vec<u8>,
    r: &TraceRecord,
    trace_id: &[u8; 16],
    stage: usize,
    start: u64,
    end: u64,
) {
    message(buf, 2, |buf| {
        bytes_field(buf, 1, trace_id);
        bytes_field(buf, 2, &child_span_id(r.span_id, stage).to_be_bytes());
        bytes_field(buf, 4, &r.span_id.to_be_bytes());
        match r.stage_names.get(stage) {
            Some(name) => string_field(buf, 5, name),
            None => string_field(buf, 5, &format!("stage-{stage}")),
        }
        varint_field(buf, 6, 1);
        fixed64_field(buf, 7, start);
        fixed64_field(buf, 8, end.max(start));
        attribute(buf, 9, "ebbflow.stage.index", Value::Int(stage as i64));
    });
}

/// Times of every data point in one metrics request.
#[derive(Debug, Clone, Copy)]
struct Times {
    start: u64,
    now: u64,
}

/// `NumberDataPoint` (metrics.proto): start = 2, time = 3 (fixed64), as_double = 4,
/// as_int = 6 (sfixed64), attributes = 7.
fn number_point(buf: &mut Vec<u8>, t: Times, attr: Option<(&str, &str)>, v: Number) {
    message(buf, 1, |buf| {
        fixed64_field(buf, 2, t.start);
        fixed64_field(buf, 3, t.now);
        match v {
            Number::Int(i) => fixed64_field(buf, 6, i),
            Number::Double(d) => double_field(buf, 4, d),
        }
        if let Some((k, v)) = attr {
            attribute(buf, 7, k, Value::Str(v));
        }
    });
}

#[derive(Clone, Copy)]
enum Number {
    Int(u64),
    Double(f64),
}

/// `Metric`: name = 1, description = 2, unit = 3, gauge = 5, sum = 7, summary = 11.
/// A cumulative monotonic `Sum` (aggregation_temporality = 2, is_monotonic = 3).
fn sum_metric<'a>(
    buf: &mut Vec<u8>,
    t: Times,
    name: &str,
    desc: &str,
    unit: &str,
    points: impl Iterator<Item = (Option<(&'a str, &'a str)>, u64)>,
) {
    message(buf, 2, |buf| {
        string_field(buf, 1, name);
        string_field(buf, 2, desc);
        string_field(buf, 3, unit);
        message(buf, 7, |buf| {
            for (attr, v) in points {
                number_point(buf, t, attr, Number::Int(v));
            }
            varint_field(buf, 2, 2);
            varint_field(buf, 3, 1);
        });
    });
}

fn gauge_metric<'a>(
    buf: &mut Vec<u8>,
    t: Times,
    name: &str,
    desc: &str,
    unit: &str,
    points: impl Iterator<Item = (Option<(&'a str, &'a str)>, Number)>,
) {
    message(buf, 2, |buf| {
        string_field(buf, 1, name);
        string_field(buf, 2, desc);
        string_field(buf, 3, unit);
        message(buf, 5, |buf| {
            for (attr, v) in points {
                number_point(buf, t, attr, v);
            }
        });
    });
}

/// `Summary` of stage latencies: `SummaryDataPoint` start = 2, time = 3, count = 4
/// (fixed64), sum = 5 (double), quantile_values = 6 (`ValueAtQuantile` quantile = 1,
/// value = 2), attributes = 7.
fn latency_summary(buf: &mut Vec<u8>, t: Times, snap: &MetricsSnapshot) {
    message(buf, 2, |buf| {
        string_field(buf, 1, "ebbflow.stage.latency");
        string_field(
            buf,
            2,
            "Per-event stage service time (hdrhistogram snapshot).",
        );
        string_field(buf, 3, "ns");
        message(buf, 11, |buf| {
            for s in &snap.stages {
                let l = &s.latency;
                message(buf, 1, |buf| {
                    fixed64_field(buf, 2, t.start);
                    fixed64_field(buf, 3, t.now);
                    fixed64_field(buf, 4, l.count);
                    double_field(buf, 5, l.mean_ns * l.count as f64);
                    for (q, v) in [
                        (0.5, l.p50_ns),
                        (0.99, l.p99_ns),
                        (0.999, l.p999_ns),
                        (1.0, l.max_ns),
                    ] {
                        message(buf, 6, |buf| {
                            double_field(buf, 1, q);
                            double_field(buf, 2, v as f64);
                        });
                    }
                    attribute(buf, 7, "stage", Value::Str(&s.name));
                });
            }
        });
    });
}

/// Encodes an `ExportMetricsServiceRequest`: the snapshot's figures (if any) and the
/// telemetry pipeline's own counters. `start_ns` is the cumulative sums' start time.
pub fn encode_metrics(
    service: &str,
    snap: Option<&MetricsSnapshot>,
    own: &TelemetryStats,
    start_ns: u64,
    now_ns: u64,
) -> Vec<u8> {
    let t = Times {
        start: start_ns,
        now: now_ns,
    };
    let mut buf = Vec::with_capacity(4096);
    message(&mut buf, 1, |buf| {
        resource(buf, 1, service);
        message(buf, 2, |buf| {
            scope(buf, 1);
            if let Some(snap) = snap {
                snapshot_metrics(buf, t, snap);
            }
            own_metrics(buf, t, own);
        });
    });
    buf
}

fn snapshot_metrics(buf: &mut Vec<u8>, t: Times, snap: &MetricsSnapshot) {
    fn stage(s: &str) -> Option<(&'static str, &str)> {
        Some(("stage", s))
    }
    fn ring(s: &str) -> Option<(&'static str, &str)> {
        Some(("ring", s))
    }
    if !snap.stages.is_empty() {
        let st = &snap.stages;
        sum_metric(
            buf,
            t,
            "ebbflow.stage.events_in",
            "Events consumed.",
            "{event}",
            st.iter().map(|s| (stage(&s.name), s.events_in)),
        );
        sum_metric(
            buf,
            t,
            "ebbflow.stage.events_out",
            "Events emitted.",
            "{event}",
            st.iter().map(|s| (stage(&s.name), s.events_out)),
        );
        sum_metric(
            buf,
            t,
            "ebbflow.stage.over_budget",
            "Events over the stage budget.",
            "{event}",
            st.iter().map(|s| (stage(&s.name), s.over_budget)),
        );
        latency_summary(buf, t, snap);
    }
    if !snap.rings.is_empty() {
        let rs = &snap.rings;
        gauge_metric(
            buf,
            t,
            "ebbflow.ring.occupancy",
            "Events waiting in the ring.",
            "{event}",
            rs.iter().map(|r| (ring(&r.name), Number::Int(r.occupancy))),
        );
        gauge_metric(
            buf,
            t,
            "ebbflow.ring.high_water",
            "Most events ever waiting.",
            "{event}",
            rs.iter()
                .map(|r| (ring(&r.name), Number::Int(r.high_water))),
        );
        gauge_metric(
            buf,
            t,
            "ebbflow.ring.capacity",
            "Ring slots.",
            "{event}",
            rs.iter().map(|r| (ring(&r.name), Number::Int(r.capacity))),
        );
        sum_metric(
            buf,
            t,
            "ebbflow.ring.pushed",
            "Events written into the ring.",
            "{event}",
            rs.iter().map(|r| (ring(&r.name), r.pushed)),
        );
        sum_metric(
            buf,
            t,
            "ebbflow.ring.dropped",
            "Events dropped by backpressure.",
            "{event}",
            rs.iter().map(|r| (ring(&r.name), r.dropped)),
        );
    }
    for (name, v) in &snap.counters {
        sum_metric(buf, t, name, "", "", std::iter::once((None, *v)));
    }
    for (name, v) in &snap.gauges {
        gauge_metric(
            buf,
            t,
            name,
            "",
            "",
            std::iter::once((None, Number::Double(*v))),
        );
    }
}

fn own_metrics(buf: &mut Vec<u8>, t: Times, own: &TelemetryStats) {
    let reason = |r: &'static str| Some(("reason", r));
    sum_metric(
        buf,
        t,
        "ebbflow.telemetry.traces_dropped",
        "Trace records lost.",
        "{trace}",
        [
            (reason("queue"), own.traces_dropped_queue),
            (reason("pending"), own.traces_dropped_pending),
            (reason("rejected"), own.traces_dropped_rejected),
        ]
        .into_iter(),
    );
    sum_metric(
        buf,
        t,
        "ebbflow.telemetry.traces_exported",
        "Trace records exported.",
        "{trace}",
        std::iter::once((None, own.traces_exported)),
    );
    sum_metric(
        buf,
        t,
        "ebbflow.telemetry.metrics_dropped",
        "Metrics snapshots lost.",
        "{snapshot}",
        std::iter::once((None, own.metrics_dropped)),
    );
    sum_metric(
        buf,
        t,
        "ebbflow.telemetry.export_failures",
        "Failed export requests.",
        "{request}",
        std::iter::once((None, own.export_failures)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_encoding() {
        let mut b = Vec::new();
        varint(&mut b, 300);
        assert_eq!(b, [0xAC, 0x02]);
        b.clear();
        varint(&mut b, 0);
        assert_eq!(b, [0]);
        b.clear();
        varint(&mut b, u64::MAX);
        assert_eq!(b.len(), 10);
    }

    #[test]
    fn nested_messages_get_their_length_prefix() {
        let mut b = Vec::new();
        message(&mut b, 1, |b| string_field(b, 2, &"x".repeat(200)));
        // key 0x0A, length 203 (key 0x12 + 2-byte length 200 + 200 bytes) as a varint.
        assert_eq!(&b[..5], &[0x0A, 0xCB, 0x01, 0x12, 0xC8]);
        assert_eq!(b.len(), 3 + 203);
    }
}
