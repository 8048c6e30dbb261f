//! Zero allocations per event with the reverse flow's telemetry on: once warm, 1,000,000
//! trading ticks cross the flow (fused, split over two pipeline threads, and with the
//! first three stages on the host thread) with one
//! record in 100 sampled, budget breakers looked for in every notify batch (one exported
//! per millisecond at most), traces finished and handed to the exporter's ring, and the
//! exporter thread draining that ring — without one heap allocation on any thread.
//!
//! The exporter is configured not to send during the measurement (hour-long intervals,
//! `max_pending` below the batch size, no collector listening): encoding and HTTP allocate
//! on the exporter thread by design (`docs/telemetry.md`), so they stay outside the count.

use std::sync::Arc;
use std::time::Duration;

use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::{FlowConfig, FlowPlacement, ReverseFlow, HOST_PLACEMENT_STAGES};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::Publish;
use ebbflow::flow::tracing::TraceOptions;
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::record::Record;
use ebbflow::telemetry::{Sampler, Telemetry, TelemetryConfig};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/feed.rs"]
mod feed;
use feed::feed;

const EVENTS: usize = 1_000_000;
const WARM_UP: usize = 200_000;

struct NullSink;
impl Publish for NullSink {
    fn publish(&mut self, _topic: &str, _event: &str, _payload: &[u8]) -> bool {
        true
    }
}

fn measure(placement: FlowPlacement) -> (u64, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again: nothing listens
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .sampler(Sampler::OneIn(100))
        .max_pending(64)
        .intervals(Duration::from_secs(3600), Duration::from_secs(3600));
    let telemetry = Arc::new(Telemetry::start(cfg).unwrap());
    let mut g = TradingGenerator::new(TradingConfig::default());
    let recs: Vec<Record> = (0..WARM_UP + EVENTS).map(|_| g.next_record()).collect();
    let rules = RuleSet::parse(include_str!("../examples/rules/default.rules")).unwrap();
    let mut flow_cfg = FlowConfig::new("financial_trading_platform", rules);
    flow_cfg.placement = placement;
    flow_cfg.wait = WaitStrategy::SpinYield;
    flow_cfg.store_capacity = 1 << 14;
    flow_cfg.actor.capacity_log2 = 14;
    flow_cfg.notify.window = Duration::from_millis(20);
    flow_cfg.notify.dashboard_interval = Duration::from_millis(5);
    let options = TraceOptions {
        breaker_gap: Duration::from_millis(1),
        ..TraceOptions::default()
    };
    let mut flow = ReverseFlow::start_with_telemetry(
        flow_cfg,
        g.decoder_mut().interner_mut(),
        Box::new(NullSink),
        None,
        telemetry.clone(),
        options,
    )
    .unwrap();
    let mut now = 1_000_000_000_000i64;
    feed(&mut flow, &recs[..WARM_UP], &mut now);
    std::thread::sleep(Duration::from_millis(200));
    let before = flow.tracing_stats().completed;
    let ((), allocations) = counting_alloc::in_process(|| {
        feed(&mut flow, &recs[WARM_UP..], &mut now);
        std::thread::sleep(Duration::from_millis(300));
    });
    let traced = flow.tracing_stats().completed - before;
    let stats = flow.finish().unwrap();
    assert_eq!(
        stats.stages[8].events_in as usize,
        recs.len() + recs.len() / 5_000
    );
    assert!(telemetry.stats().traces_submitted > 0);
    (allocations, traced)
}

/// One test, the three placements in turn (the third runs the first three stages on the
/// host thread): the counter sees the whole process.
#[test]
fn a_million_ticks_with_traces_and_breakers_cross_the_flow_without_allocating() {
    let host = FlowPlacement::Host {
        stages: HOST_PLACEMENT_STAGES,
    };
    for placement in [FlowPlacement::Fused, FlowPlacement::Split, host] {
        let (allocations, traced) = measure(placement.clone());
        assert!(
            traced >= (EVENTS / 100 / 2) as u64,
            "{placement:?}: {traced} traces finished while counting"
        );
        assert_eq!(
            allocations, 0,
            "{placement:?}: {allocations} allocations over {EVENTS} ticks"
        );
    }
}
