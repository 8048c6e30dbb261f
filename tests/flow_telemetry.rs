//! The reverse flow's telemetry against a real OTLP/HTTP receiver
//! (`tests/peers/py/otlp_receiver.py`, decoding with the official `opentelemetry-proto`
//! classes; installed by `scripts/setup.d/telemetry.sh`). Loopback only, every wait bounded.
//!
//! * Trading ticks through the flow split over two pipeline threads, one record in 100
//!   sampled: each sampled trace decodes as root `reverse_flow` with the nine stages as
//!   children, in order, nested in the root, with scenario, pattern, kind and key; a budget
//!   breaker (end-to-end budget 1 ns) is exported once per breaker gap with notify's span
//!   only; the metrics carry the flow's own statistics and the tracing counters.
//! * Collector down at start, killed mid-run, restarted: every record still crosses the
//!   flow (counted at the first and last stage), trace drops are counted and exported as a
//!   metric once the collector is back, and export resumes after each outage.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebbflow::engine::{PipelineStats, WaitStrategy};
use ebbflow::flow::assembly::{
    FlowConfig, FlowPlacement, ReverseFlow, HOST_PLACEMENT_STAGES, STAGE_NAMES,
};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::Publish;
use ebbflow::flow::tracing::TraceOptions;
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::record::Record;
use ebbflow::telemetry::{Sampler, Telemetry, TelemetryConfig};
use serde_json::Value;

#[path = "support/otlp.rs"]
mod otlp;
use otlp::{
    assert_stage_spans, children, free_port, int, metric, point, roots, spans, OtlpReceiver,
};

const WAIT: Duration = Duration::from_secs(20);
const SCENARIO: &str = "financial_trading_platform";

fn counter(req: &Value, name: &str) -> Option<u64> {
    metric(req, name).map(|m| int(&m["points"][0]["value"]))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Counts published messages; never allocates.
struct CountingSink(Arc<AtomicU64>);
impl Publish for CountingSink {
    fn publish(&mut self, _topic: &str, _event: &str, _payload: &[u8]) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed);
        true
    }
}

fn config(placement: FlowPlacement) -> FlowConfig {
    let rules = RuleSet::parse(include_str!("../examples/rules/default.rules")).unwrap();
    let mut cfg = FlowConfig::new(SCENARIO, rules);
    cfg.placement = placement;
    cfg.wait = WaitStrategy::Park;
    cfg.store_capacity = 1 << 12;
    cfg.actor.capacity_log2 = 12;
    cfg
}

fn telemetry_config(port: u16, one_in: u32) -> TelemetryConfig {
    TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .service_name("ebbflow-flow-test")
        .sampler(Sampler::OneIn(one_in))
        .intervals(Duration::from_millis(20), Duration::from_millis(50))
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .request_timeout(Duration::from_millis(500))
}

fn records(n: usize) -> (Vec<Record>, TradingGenerator) {
    let mut g = TradingGenerator::new(TradingConfig::default());
    let recs = (0..n).map(|_| g.next_record()).collect();
    (recs, g)
}

/// Asserts the figures of one decoded metrics request against the flow's statistics.
fn assert_metrics_match(m: &Value, stats: &PipelineStats) {
    for name in ["ebbflow.stage.events_in", "ebbflow.stage.events_out"] {
        let metric = metric(m, name).unwrap_or_else(|| panic!("{name} missing"));
        for s in &stats.stages {
            let want = if name.ends_with("_in") {
                s.events_in
            } else {
                s.events_out
            };
            assert_eq!(
                int(&point(metric, "stage", &s.name)["value"]),
                want,
                "{name} {}",
                s.name
            );
        }
    }
    let lat = metric(m, "ebbflow.stage.latency").unwrap();
    assert_eq!(lat["type"], "summary");
    for s in &stats.stages {
        let p = point(lat, "stage", &s.name);
        assert_eq!(
            int(&p["count"]),
            s.latency.count,
            "latency count {}",
            s.name
        );
        let max = p["quantiles"]["1.0"].as_f64().unwrap();
        assert_eq!(max as u64, s.latency.max_ns, "latency max {}", s.name);
    }
    assert_eq!(
        counter(m, "ebbflow.flow.events"),
        Some(stats.stages[0].events_in)
    );
    assert_eq!(counter(m, "ebbflow.flow.drops"), Some(0));
    let overruns: u64 = stats.stages.iter().map(|s| s.over_budget).sum();
    assert_eq!(counter(m, "ebbflow.flow.overruns"), Some(overruns));
    assert!(counter(m, "ebbflow.flow.feedback_signals").is_some());
}

#[test]
fn sampled_events_become_nine_stage_span_trees_and_the_flow_s_metrics_decode() {
    const N: usize = 5_000;
    let port = free_port();
    let rx = OtlpReceiver::start(port, 0);
    let telemetry = Arc::new(Telemetry::start(telemetry_config(port, 100)).unwrap());
    let (recs, mut g) = records(N);
    let published = Arc::new(AtomicU64::new(0));
    let options = TraceOptions {
        e2e_budget: Some(Duration::from_nanos(1)),
        breaker_gap: Duration::from_secs(3600),
    };
    let mut flow = ReverseFlow::start_with_telemetry(
        config(FlowPlacement::Split),
        g.decoder_mut().interner_mut(),
        Box::new(CountingSink(published.clone())),
        None,
        telemetry.clone(),
        options,
    )
    .unwrap();
    let connections = Arc::new(AtomicU64::new(3));
    flow.add_metrics(move |m| {
        m.with_gauge(
            "ebbflow.channels.connections",
            connections.load(Ordering::Relaxed) as f64,
        )
    });
    for r in &recs {
        flow.push_record(*r).unwrap();
    }
    flow.flush();
    wait_for("every trace finished", || {
        let t = flow.tracing_stats();
        t.completed + t.stopped == 50
    });
    let tracing = flow.tracing_stats();
    let stats = flow.finish().unwrap();
    assert_eq!(stats.stages[0].events_in, N as u64);
    // One record in 100, the first included; 50 < 64 slots, so none waited for a slot.
    assert_eq!((tracing.sampled, tracing.slots_busy), (50, 0));
    assert_eq!(tracing.stopped, 0, "ticks all reach notify");
    // The end-to-end budget of 1 ns: every sampled trace broke it, and one unsampled
    // breaker was exported (the gap is an hour).
    assert_eq!(tracing.breakers, 1);
    assert_eq!(tracing.budget_exceeded, 51);

    let reqs = rx.collect(|got| {
        roots(got).len() >= 51
            && got
                .iter()
                .any(|r| counter(r, "ebbflow.flow.events") == Some(N as u64))
    });
    let all = spans(&reqs);
    let roots = roots(&reqs);
    assert_eq!(roots.len(), 51);
    let ids: HashSet<&str> = all.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "span ids are unique");
    let mut full = 0;
    let mut breakers = 0;
    for root in &roots {
        assert_eq!(root["parent_span_id"], "");
        let a = &root["attributes"];
        assert_eq!(a["ebbflow.scenario"], SCENARIO);
        assert_eq!(a["ebbflow.kind"], "Tick");
        assert_eq!(a["ebbflow.budget_exceeded"], true);
        let pattern = a["ebbflow.pattern"].as_str().unwrap();
        assert!(
            pattern == "analytics" || pattern == "feedback",
            "a tick maps to analytics or feedback, not {pattern}"
        );
        let key = a["ebbflow.key"].as_str().unwrap();
        assert!(
            key.contains('/') && !key.starts_with('/') && !key.ends_with('/'),
            "key is asset class/instrument: {key:?}"
        );
        let (rs, re) = (int(&root["start"]), int(&root["end"]));
        assert!(rs < re, "root start before end");
        let children = children(&all, root);
        let names: Vec<&str> = children
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        if names.len() == 1 {
            // The unsampled breaker: root from hand-over to notify's end, notify only.
            assert_eq!(names, ["notify"]);
            assert_eq!(int(&children[0]["end"]), re);
            breakers += 1;
            continue;
        }
        assert_eq!(names, STAGE_NAMES, "nine stage children in order");
        full += 1;
        let last_end = assert_stage_spans(root, &children);
        assert_eq!(last_end, re, "the root ends with notify's batch");
    }
    assert_eq!((full, breakers), (50, 1));

    // The final statistics, as metrics.
    let m = reqs
        .iter()
        .find(|r| counter(r, "ebbflow.flow.events") == Some(N as u64))
        .unwrap();
    assert_eq!(m["resource"]["service.name"], "ebbflow-flow-test");
    assert_metrics_match(m, &stats);
    assert_eq!(counter(m, "ebbflow.trace.sampled"), Some(50));
    assert_eq!(counter(m, "ebbflow.trace.completed"), Some(50));
    assert_eq!(counter(m, "ebbflow.trace.breakers"), Some(1));
    let conns = metric(m, "ebbflow.channels.connections").unwrap();
    assert_eq!(conns["type"], "gauge");
    assert_eq!(conns["points"][0]["value"].as_f64(), Some(3.0));
    assert!(published.load(Ordering::Relaxed) > 0);
    let t = Arc::try_unwrap(telemetry).ok().unwrap().shutdown();
    assert_eq!(t.traces_exported, 51);
    assert_eq!(t.spans_exported, 50 * 10 + 2);
    assert_eq!(t.traces_dropped(), 0);
}

/// Pushes `recs`, a tick every 500 records, and flushes.
fn push(flow: &mut ReverseFlow, recs: &[Record], now: &mut i64) {
    for (i, r) in recs.iter().enumerate() {
        flow.push_record(*r).unwrap();
        if i % 500 == 0 {
            *now += 1_000_000;
            flow.tick(*now).unwrap();
        }
    }
    flow.flush();
}

fn dropped_metric(req: &Value) -> u64 {
    let m = metric(req, "ebbflow.telemetry.traces_dropped").unwrap();
    ["queue", "pending", "rejected"]
        .iter()
        .map(|r| int(&point(m, "reason", r)["value"]))
        .sum()
}

#[test]
fn collector_down_killed_and_back_loses_no_event_counts_drops_and_resumes_export() {
    const PHASE: usize = 20_000;
    let port = free_port();
    let cfg = telemetry_config(port, 50).trace_queue(64).max_pending(16);
    let telemetry = Arc::new(Telemetry::start(cfg).unwrap());
    let (recs, mut g) = records(4 * PHASE);
    let options = TraceOptions {
        e2e_budget: Some(Duration::from_secs(3600)),
        ..TraceOptions::default()
    };
    let mut flow = ReverseFlow::start_with_telemetry(
        config(FlowPlacement::Fused),
        g.decoder_mut().interner_mut(),
        Box::new(CountingSink(Arc::new(AtomicU64::new(0)))),
        None,
        telemetry.clone(),
        options,
    )
    .unwrap();
    let mut now = 1_000_000_000_000i64;
    let mut ticks = 0u64;
    let mut pushed = 0u64;
    let mut phase = |flow: &mut ReverseFlow, k: usize| {
        push(flow, &recs[k * PHASE..(k + 1) * PHASE], &mut now);
        ticks += PHASE.div_ceil(500) as u64;
        pushed += PHASE as u64;
        (pushed, ticks)
    };

    // Down at start: traces pile up beyond max_pending and are dropped, counted.
    phase(&mut flow, 0);
    wait_for("failures and pending drops while down", || {
        let s = telemetry.stats();
        s.export_failures >= 2 && s.traces_dropped_pending > 0
    });
    let down_drops = telemetry.stats().traces_dropped();

    // Up: traces pushed now arrive, and the drops reach the collector as a metric.
    let rx = OtlpReceiver::start(port, 0);
    phase(&mut flow, 1);
    let _ = flow.stats(); // queues a metrics snapshot
    let reqs = rx.collect(|got| {
        !roots(got).is_empty()
            && got.iter().any(|r| {
                r["signal"] == "metrics"
                    && dropped_metric(r) >= down_drops
                    && counter(r, "ebbflow.flow.events").is_some()
            })
    });
    let m = reqs
        .iter()
        .find(|r| {
            r["signal"] == "metrics"
                && dropped_metric(r) >= down_drops
                && counter(r, "ebbflow.flow.events").is_some()
        })
        .unwrap();
    assert!(dropped_metric(m) > 0, "drops while down are exported");
    assert!(counter(m, "ebbflow.telemetry.export_failures").unwrap() >= 2);
    assert!(counter(m, "ebbflow.flow.events").unwrap() > 0);
    for root in roots(&reqs) {
        assert_eq!(root["attributes"]["ebbflow.budget_exceeded"], false);
    }

    // Killed mid-run: export fails again, the flow goes on.
    drop(rx);
    let failures = telemetry.stats().export_failures;
    let exported = telemetry.stats().traces_exported;
    phase(&mut flow, 2);
    wait_for("failures while the collector is gone", || {
        telemetry.stats().export_failures > failures
    });

    // Back again: export resumes (new traces and metrics arrive at the new receiver).
    let rx = OtlpReceiver::start(port, 0);
    let (pushed, ticks) = phase(&mut flow, 3);
    let stats = flow.finish().unwrap();
    let reqs = rx.collect(|got| {
        !roots(got).is_empty()
            && got
                .iter()
                .any(|r| counter(r, "ebbflow.flow.events") == Some(pushed + ticks))
    });
    assert!(
        telemetry.stats().traces_exported > exported,
        "export resumed"
    );
    let m = reqs
        .iter()
        .find(|r| counter(r, "ebbflow.flow.events") == Some(pushed + ticks))
        .unwrap();
    assert_metrics_match(m, &stats);

    // No event lost: every record and tick crossed all nine stages.
    assert_eq!(stats.stages[0].events_in, pushed + ticks);
    assert_eq!(stats.stages[8].events_in, pushed + ticks);
    let sampled = counter(m, "ebbflow.trace.sampled").unwrap();
    let busy = counter(m, "ebbflow.trace.slots_busy").unwrap();
    assert_eq!(sampled + busy, pushed / 50, "one record in 50 chosen");

    let t = Arc::try_unwrap(telemetry).ok().unwrap().shutdown();
    let completed = counter(m, "ebbflow.trace.completed").unwrap();
    assert_eq!(t.traces_submitted + t.traces_dropped_queue, completed);
    assert!(t.traces_dropped_pending > 0);
    // Every submitted trace was exported or dropped (counted); none is left behind.
    assert_eq!(
        t.traces_exported + t.traces_dropped_pending + t.traces_dropped_rejected,
        t.traces_submitted
    );
}

/// A traced record that a stage drops or holds is exported too: the root ends with that
/// stage's batch, the children are the stages it went through, and `ebbflow.stopped_at`
/// names the stage. Here every tick is pushed twice; resources drops the unchanged copy.
#[test]
fn traces_of_records_a_stage_drops_are_exported_up_to_that_stage() {
    // Resources on the pipeline thread, and on the host thread (the trace is marked
    // stopped there and exported by notify's thread).
    stopped_traces(FlowPlacement::Fused);
    stopped_traces(FlowPlacement::Host {
        stages: HOST_PLACEMENT_STAGES,
    });
}

fn stopped_traces(placement: FlowPlacement) {
    const N: usize = 40;
    let port = free_port();
    let rx = OtlpReceiver::start(port, 0);
    let telemetry = Arc::new(Telemetry::start(telemetry_config(port, 1)).unwrap());
    let (recs, mut g) = records(N);
    let mut flow = ReverseFlow::start_with_telemetry(
        config(placement.clone()),
        g.decoder_mut().interner_mut(),
        Box::new(CountingSink(Arc::new(AtomicU64::new(0)))),
        None,
        telemetry.clone(),
        TraceOptions::default(),
    )
    .unwrap();
    // One pair at a time, so that no more than a few of the 64 slots are ever in use. A
    // stopped trace is exported by notify's thread at its next batch: the next pair's
    // first copy, and a tick after the last pair.
    for (i, r) in recs.iter().enumerate() {
        flow.push_record(*r).unwrap();
        flow.push_record(*r).unwrap();
        flow.flush();
        wait_for("the first copy's trace to complete", || {
            flow.tracing_stats().completed == i as u64 + 1
        });
    }
    flow.tick(1).unwrap();
    wait_for("every trace exported", || {
        let t = flow.tracing_stats();
        t.completed + t.stopped == t.sampled
    });
    let tracing = flow.tracing_stats();
    flow.finish().unwrap();
    assert_eq!(tracing.sampled, 2 * N as u64);
    assert_eq!((tracing.completed, tracing.stopped), (N as u64, N as u64));

    let reqs = rx.collect(|got| roots(got).len() >= 2 * N);
    let all = spans(&reqs);
    let mut stopped = 0;
    for root in &roots(&reqs) {
        let children = children(&all, root);
        let names: Vec<&str> = children
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let last_end = assert_stage_spans(root, &children);
        let a = &root["attributes"];
        assert_eq!(a["ebbflow.kind"], "Tick");
        match a.get("ebbflow.stopped_at") {
            None => assert_eq!(names, STAGE_NAMES, "a completed trace has nine stages"),
            Some(at) => {
                assert_eq!(at, "resources", "{root}");
                assert_eq!(a["ebbflow.pattern"], "none");
                assert_eq!(names, ["journal", "reactor", "resources"]);
                let key = a["ebbflow.key"].as_str().unwrap();
                assert!(key.contains('/'), "key is asset class/instrument: {key:?}");
                assert_eq!(int(&root["end"]), last_end, "the root ends with resources");
                stopped += 1;
            }
        }
    }
    assert_eq!(stopped, N);
    let _ = Arc::try_unwrap(telemetry).ok().unwrap().shutdown();
}
