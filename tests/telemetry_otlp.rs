//! OTLP export against a real receiver: `tests/peers/py/otlp_receiver.py` decodes every
//! request with the official `opentelemetry-proto` classes and prints it as JSON.
//!
//! * A pipeline runs with sampled traces and a metrics snapshot: the decoded spans form
//!   the tree root `reverse_flow` → one child per stage, with ordered times, parent ids
//!   and attributes; the decoded metrics carry the pipeline's figures.
//! * The collector is down at start, then up (first answering 503), then gone, then back:
//!   the hot path never waits, drops are counted (oldest pending first) and exported as a
//!   metric, and export resumes each time.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Add, Rec, Twice};
use ebbflow::engine::{PipelineBuilder, PushError, Timing, WaitStrategy};
use ebbflow::telemetry::{
    Finished, InlineKey, MetricsSnapshot, Sampler, Telemetry, TelemetryConfig, TraceAttrs,
};
use serde_json::Value;

#[path = "support/otlp.rs"]
mod otlp;
use otlp::{
    assert_stage_spans, children, free_port, int, metric, point, roots, spans, OtlpReceiver,
};

const WAIT: Duration = Duration::from_secs(15);

static STAGES: &[&str] = &["ingest", "engine", "deliver"];

#[test]
fn a_pipeline_s_spans_and_metrics_decode_at_a_real_receiver() {
    let port = free_port();
    let rx = OtlpReceiver::start(port, 0);
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .service_name("ebbflow-test")
        .sampler(Sampler::OneIn(100))
        .intervals(Duration::from_millis(20), Duration::from_millis(200));
    let telemetry = Telemetry::start(cfg).unwrap();
    let mut recorder = telemetry.recorder(STAGES);

    let (pipeline, mut input, mut output) = PipelineBuilder::<Rec>::new()
        .stage("add", Add(1))
        .stage("twice", Twice)
        .wait(WaitStrategy::Park)
        .host_wait(WaitStrategy::Park)
        .timing(Timing::PerEvent)
        .build()
        .unwrap();
    let mut finished = Vec::new();
    let mut received = 0u64;
    for i in 0..1000u64 {
        let key = format!("key-{i}");
        recorder.begin(TraceAttrs {
            scenario: "market-data",
            pattern: "fanout",
            kind: "tick",
            key: InlineKey::new(&key),
            budget_exceeded: false,
            stopped_at: "",
        });
        recorder.start(0);
        let mut ev = Rec::new(i);
        while let Err(e) = input.try_push(ev) {
            assert!(matches!(e, PushError::Full(_)));
            ev = e.into_inner();
            std::thread::yield_now();
        }
        recorder.end(0);
        recorder.start(1);
        let mut got = 0;
        while got < 2 {
            output
                .recv_timeout(Duration::from_secs(5))
                .expect("pipeline output");
            got += 1;
        }
        recorder.end(1);
        recorder.start(2);
        received += std::hint::black_box(got);
        recorder.end(2);
        if i == 555 {
            recorder.mark_budget_exceeded();
        }
        finished.push(recorder.finish());
    }
    assert_eq!(received, 2000);
    let stats = pipeline.finish(&mut output, |_| {}).unwrap();
    // One in 100 sampled (events 0, 100, …, 900) plus the budget breaker 555.
    let submitted = finished
        .iter()
        .filter(|f| **f == Finished::Submitted)
        .count();
    assert_eq!(submitted, 11);
    assert!(telemetry.submit_metrics(
        MetricsSnapshot::from_stats(&stats).with_counter("ebbflow.flow.feedback_signals", 7)
    ));

    let reqs = rx.collect(|got| {
        roots(got).len() >= 11
            && got
                .iter()
                .any(|r| metric(r, "ebbflow.stage.events_in").is_some())
    });

    // Span tree: 11 roots, each with 3 children in stage order.
    let all = spans(&reqs);
    let roots = roots(&reqs);
    assert_eq!(roots.len(), 11);
    assert_eq!(all.len(), 11 * 4);
    let ids: HashSet<&str> = all.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "span ids are unique");
    let mut keys = Vec::new();
    for root in &roots {
        assert_eq!(root["parent_span_id"], "", "root has no parent");
        assert_eq!(root["kind"], 1, "SPAN_KIND_INTERNAL");
        assert_eq!(root["trace_id"].as_str().unwrap().len(), 32);
        let a = &root["attributes"];
        assert_eq!(a["ebbflow.scenario"], "market-data");
        assert_eq!(a["ebbflow.pattern"], "fanout");
        assert_eq!(a["ebbflow.kind"], "tick");
        let key = a["ebbflow.key"].as_str().unwrap().to_string();
        assert_eq!(a["ebbflow.budget_exceeded"], key == "key-555", "{key}");
        keys.push(key);
        let (rs, re) = (int(&root["start"]), int(&root["end"]));
        assert!(rs <= re);
        let children = children(&all, root);
        let names: Vec<&str> = children
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, STAGES);
        assert_stage_spans(root, &children);
    }
    keys.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("key-{}", i * 100)).collect();
    expected.push("key-555".into());
    expected.sort();
    assert_eq!(keys, expected);
    // Unix-nanosecond times near now (anchored wall clock + TSC delta).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let start = int(&roots[0]["start"]);
    assert!(
        start < now_ns && now_ns - start < 120_000_000_000,
        "{start} vs {now_ns}"
    );

    // Resource and metrics.
    let m = reqs
        .iter()
        .find(|r| metric(r, "ebbflow.stage.events_in").is_some())
        .unwrap();
    assert_eq!(m["resource"]["service.name"], "ebbflow-test");
    let events_in = metric(m, "ebbflow.stage.events_in").unwrap();
    assert_eq!(events_in["type"], "sum");
    assert_eq!(events_in["monotonic"], true);
    assert_eq!(int(&point(events_in, "stage", "add")["value"]), 1000);
    assert_eq!(int(&point(events_in, "stage", "twice")["value"]), 1000);
    let events_out = metric(m, "ebbflow.stage.events_out").unwrap();
    assert_eq!(int(&point(events_out, "stage", "twice")["value"]), 2000);
    let lat = metric(m, "ebbflow.stage.latency").unwrap();
    assert_eq!(lat["type"], "summary");
    let p = point(lat, "stage", "add");
    assert_eq!(int(&p["count"]), stats.stages[0].latency.count);
    let q = &p["quantiles"];
    let (p50, p99, max) = (
        q["0.5"].as_f64().unwrap(),
        q["0.99"].as_f64().unwrap(),
        q["1.0"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{q}");
    assert_eq!(max as u64, stats.stages[0].latency.max_ns);
    let pushed = metric(m, "ebbflow.ring.pushed").unwrap();
    assert_eq!(int(&point(pushed, "ring", "input")["value"]), 1000);
    let feedback = metric(m, "ebbflow.flow.feedback_signals").unwrap();
    assert_eq!(int(&feedback["points"][0]["value"]), 7);
    let dropped = metric(m, "ebbflow.telemetry.traces_dropped").unwrap();
    for reason in ["queue", "pending", "rejected"] {
        assert_eq!(int(&point(dropped, "reason", reason)["value"]), 0);
    }
    let final_stats = telemetry.shutdown();
    assert_eq!(final_stats.traces_exported, 11);
    assert_eq!(final_stats.spans_exported, 44);
    assert_eq!(final_stats.traces_dropped(), 0);
}

/// Submits traces keyed `k<from>`..`k<to - 1>`, one per millisecond; returns how long the
/// slowest `finish` took.
fn submit(rec: &mut ebbflow::telemetry::TraceRecorder, from: u32, to: u32) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in from..to {
        let key = format!("k{i:03}");
        let t = Instant::now();
        rec.begin(TraceAttrs {
            key: InlineKey::new(&key),
            ..TraceAttrs::default()
        });
        rec.start(0);
        rec.end(0);
        assert_eq!(rec.finish(), Finished::Submitted);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    slowest
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn root_keys(reqs: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = roots(reqs)
        .iter()
        .map(|r| r["attributes"]["ebbflow.key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

fn dropped_total(req: &Value) -> u64 {
    let m = metric(req, "ebbflow.telemetry.traces_dropped").unwrap();
    ["queue", "pending", "rejected"]
        .iter()
        .map(|r| int(&point(m, "reason", r)["value"]))
        .sum()
}

#[test]
fn collector_down_then_up_then_gone_then_back_resumes_export_and_counts_drops() {
    static ONE: &[&str] = &["work"];
    let port = free_port();
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .sampler(Sampler::All)
        .trace_queue(256) // larger than any burst here: every drop is a pending drop
        .max_pending(8)
        .intervals(Duration::from_millis(10), Duration::from_millis(50))
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .request_timeout(Duration::from_millis(500));
    let telemetry = Telemetry::start(cfg).unwrap();
    let mut rec = telemetry.recorder(ONE);

    // Down at start: 100 traces, only the newest 8 are kept; requests fail and back off.
    let slowest = submit(&mut rec, 0, 100);
    wait_for("failures and pending drops", || {
        let s = telemetry.stats();
        s.export_failures >= 3 && s.traces_dropped_pending == 92
    });
    // The hot path never waits for the exporter (generous bound for a loaded machine).
    assert!(
        slowest < Duration::from_millis(250),
        "finish took {slowest:?}"
    );

    // Up, refusing the first request with 503: the retry delivers k092..k099.
    let rx = OtlpReceiver::start(port, 1);
    let reqs =
        rx.collect(|got| root_keys(got).len() >= 8 && got.iter().any(|r| r["signal"] == "metrics"));
    assert_eq!(reqs[0]["signal"], "refused");
    let expected: Vec<String> = (92..100).map(|i| format!("k{i:03}")).collect();
    assert_eq!(root_keys(&reqs), expected, "oldest pending traces go first");
    wait_for("exported count", || telemetry.stats().traces_exported == 8);
    // The drops reach the collector as a metric.
    let later = rx.collect(|got| got.iter().any(|r| r["signal"] == "metrics"));
    let m = later.iter().find(|r| r["signal"] == "metrics").unwrap();
    assert_eq!(dropped_total(m), 92);
    let failures =
        int(&metric(m, "ebbflow.telemetry.export_failures").unwrap()["points"][0]["value"]);
    assert!(failures >= 4, "{failures} failures exported");
    drop(rx);

    // Gone mid-run: 20 more traces; 8 kept. Back again: they arrive.
    let before = telemetry.stats().export_failures;
    submit(&mut rec, 100, 120);
    wait_for("failures while gone", || {
        let s = telemetry.stats();
        s.export_failures > before && s.traces_dropped_pending == 92 + 12
    });
    let rx = OtlpReceiver::start(port, 0);
    let reqs = rx.collect(|got| root_keys(got).len() >= 8);
    let expected: Vec<String> = (112..120).map(|i| format!("k{i:03}")).collect();
    assert_eq!(root_keys(&reqs), expected);
    let stats = telemetry.shutdown();
    assert_eq!(stats.traces_submitted, 120);
    assert_eq!(stats.traces_exported, 16);
    assert_eq!(stats.traces_dropped(), 104);
}

#[test]
fn a_metrics_source_is_polled_every_metrics_interval() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let port = free_port();
    let rx = OtlpReceiver::start(port, 0);
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .intervals(Duration::from_millis(20), Duration::from_millis(30));
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let telemetry = Telemetry::start_with_metrics(
        cfg,
        Some(Box::new(move || {
            let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
            Some(MetricsSnapshot::default().with_counter("test.source_calls", n))
        })),
    )
    .unwrap();
    let reqs = rx.collect(|got| got.iter().filter(|r| r["signal"] == "metrics").count() >= 3);
    let values: Vec<u64> = reqs
        .iter()
        .filter(|r| r["signal"] == "metrics")
        .map(|r| int(&metric(r, "test.source_calls").unwrap()["points"][0]["value"]))
        .collect();
    // Each export calls the source once, in order.
    assert_eq!(values, (1..=values.len() as u64).collect::<Vec<_>>());
    drop(telemetry);
    assert!(calls.load(Ordering::Relaxed) >= values.len() as u64);
}
