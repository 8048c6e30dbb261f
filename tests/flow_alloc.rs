//! Zero allocations per event on the reverse flow's hot path: once warm (the schema no
//! longer changing), 1,000,000 trading ticks and 1,000,000 Kubernetes changes cross all
//! nine stages — messages encoded and published included — without one heap allocation
//! on any thread, with the stages on a pipeline thread (`Fused`) and with the first three
//! on the host thread (`Host`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::{FlowConfig, FlowPlacement, ReverseFlow, HOST_PLACEMENT_STAGES};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::Publish;
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::Record;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/feed.rs"]
mod feed;
use feed::feed;

const EVENTS: usize = 1_000_000;
const WARM_UP: usize = 200_000;

/// A sink that counts messages and bytes (the bus to the broadcast thread does not
/// allocate either; this keeps the test about the stages).
struct CountingSink(Arc<AtomicU64>);
impl Publish for CountingSink {
    fn publish(&mut self, _topic: &str, _event: &str, payload: &[u8]) -> bool {
        assert!(payload.first() == Some(&b'{') && payload.last() == Some(&b'}'));
        self.0.fetch_add(1, Ordering::Relaxed);
        true
    }
}

fn measure(
    scenario: &'static str,
    placement: FlowPlacement,
    interner: &mut Interner,
    records: &[Record],
) -> (u64, u64) {
    let rules = RuleSet::parse(include_str!("../examples/rules/default.rules")).unwrap();
    let mut cfg = FlowConfig::new(scenario, rules);
    cfg.placement = placement;
    cfg.wait = WaitStrategy::SpinYield;
    cfg.store_capacity = 1 << 14;
    cfg.actor.capacity_log2 = 14;
    cfg.notify.window = Duration::from_millis(20);
    cfg.notify.dashboard_interval = Duration::from_millis(5);
    let published = Arc::new(AtomicU64::new(0));
    let mut flow =
        ReverseFlow::start(cfg, interner, Box::new(CountingSink(published.clone()))).unwrap();
    let mut now = 1_000_000_000_000i64;
    feed(&mut flow, &records[..WARM_UP], &mut now);
    std::thread::sleep(Duration::from_millis(200));
    let before = published.load(Ordering::Relaxed);
    let ((), allocations) = counting_alloc::in_process(|| {
        feed(&mut flow, &records[WARM_UP..], &mut now);
        // Let the pipeline drain while still counting.
        std::thread::sleep(Duration::from_millis(300));
    });
    let during = published.load(Ordering::Relaxed) - before;
    let stats = flow.finish().unwrap();
    assert_eq!(
        stats.stages[0].events_in as usize,
        records.len() + records.len() / 5_000
    );
    (allocations, during)
}

/// One test, both scenarios in turn: the counter sees the whole process, so nothing else
/// may run (or allocate) while a scenario is measured.
#[test]
fn a_million_ticks_and_a_million_k8s_changes_cross_the_warm_flow_without_allocating() {
    let host = FlowPlacement::Host {
        stages: HOST_PLACEMENT_STAGES,
    };
    for placement in [FlowPlacement::Fused, host] {
        let (allocations, published) = {
            let mut g = TradingGenerator::new(TradingConfig::default());
            let recs: Vec<Record> = (0..WARM_UP + EVENTS).map(|_| g.next_record()).collect();
            measure(
                "financial_trading_platform",
                placement.clone(),
                g.decoder_mut().interner_mut(),
                &recs,
            )
        };
        assert!(
            published > 100,
            "{placement:?}: messages were published while counting ({published})"
        );
        assert_eq!(
            allocations, 0,
            "{placement:?}: {allocations} allocations over {EVENTS} ticks"
        );

        let (allocations, published) = {
            let mut g = ClusterGenerator::new(ClusterConfig::default());
            let recs: Vec<Record> = (0..WARM_UP + EVENTS).map(|_| g.next_record()).collect();
            measure(
                "enterprise_k8s_cluster",
                placement.clone(),
                g.interner_mut(),
                &recs,
            )
        };
        assert!(
            published > 100_000,
            "{placement:?}: changes were published while counting ({published})"
        );
        assert_eq!(
            allocations, 0,
            "{placement:?}: {allocations} allocations over {EVENTS} k8s records"
        );
    }
}
