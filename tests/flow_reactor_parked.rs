//! The records the reactor holds (parked for a retry, or queued behind a parked record of
//! their key) are visible to the host: `ReverseFlow::reactor_parked`, the
//! `ebbflow.flow.reactor_parked` gauge and `parked` in the `reactor:steps` summary. With
//! nothing more arriving the retries still run once their backoff has passed (the stage's
//! idle turns) and the count drains to 0, which is what a host waits for before a snapshot
//! with nothing held back.
//! Checked with the stages on a pipeline thread and with the reactor on the host thread.
//!
//! Run: `cargo test --test flow_reactor_parked`.

use std::time::{Duration, Instant};

use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::{FlowConfig, FlowPlacement, ReverseFlow, HOST_PLACEMENT_STAGES};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::{topics, MemoryPublisher};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::Generator;

const RULES: &str = include_str!("../examples/rules/default.rules");

fn check(placement: FlowPlacement) {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 200,
        ..ClusterConfig::default()
    });
    let mut cfg = FlowConfig::new("k8s", RuleSet::parse(RULES).unwrap());
    cfg.placement = placement.clone();
    cfg.wait = WaitStrategy::Park;
    cfg.store_capacity = 1 << 14;
    cfg.actor.capacity_log2 = 14;
    // One attempt in five fails transiently: retries wait 1–100 ms (the default backoff).
    cfg.transient_faults_per_million = 200_000;
    cfg.notify.window = Duration::from_millis(20);
    let publisher = MemoryPublisher::new();
    let mut flow = ReverseFlow::start(cfg, g.interner_mut(), Box::new(publisher.clone())).unwrap();
    // 2,000 records in chunks, a tick (20 ms of virtual time, closing a window) after each:
    // records park for their retries while later ones arrive.
    let mut now = 1_000_000_000_000i64;
    let (mut most, mut gauge_most) = (0u64, 0.0f64);
    for _ in 0..20 {
        for _ in 0..100 {
            flow.push_record(g.next_record()).unwrap();
        }
        now += 20_000_000;
        flow.tick(now).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        most = most.max(flow.reactor_parked());
        let stats = flow.stats();
        let gauge = flow
            .metrics(&stats)
            .gauges
            .iter()
            .find(|(name, _)| name == "ebbflow.flow.reactor_parked")
            .map(|(_, v)| *v)
            .expect("the gauge is in every metrics snapshot");
        gauge_most = gauge_most.max(gauge);
    }
    assert!(
        most > 0,
        "{placement:?}: no record held after 20 % transient faults"
    );
    assert!(
        gauge_most > 0.0,
        "{placement:?}: the gauge never showed them"
    );

    // Nothing else arrives: the retries still run when their backoff has passed (idle
    // turns of the reactor's thread; on the host, at each flush).
    let deadline = Instant::now() + Duration::from_secs(20);
    while flow.reactor_parked() > 0 && Instant::now() < deadline {
        flow.flush();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        flow.reactor_parked(),
        0,
        "{placement:?}: retries did not run while no record arrived"
    );
    // One more window, closed with nothing held.
    now += 20_000_000;
    flow.tick(now).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    flow.finish().unwrap();

    let summaries: Vec<u64> = publisher
        .take()
        .into_iter()
        .filter(|m| m.topic == topics::REACTOR_STEPS && m.event == "summary")
        .map(|m| {
            m.payload["parked"]
                .as_u64()
                .expect("summary carries parked")
        })
        .collect();
    assert!(
        summaries.iter().any(|&p| p > 0),
        "{placement:?}: no summary saw held records: {summaries:?}"
    );
    assert_eq!(summaries.last(), Some(&0), "{placement:?}: {summaries:?}");
}

#[test]
fn held_records_are_counted_while_they_wait_and_drain_to_zero_when_nothing_arrives() {
    check(FlowPlacement::Fused);
    check(FlowPlacement::Host {
        stages: HOST_PLACEMENT_STAGES,
    });
}
