//! The three scenarios, as the `reverse_flow` example runs them: the seeded generators of
//! `ebbflow::sources::gen` with their default configuration, and the default rules.

use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::FlowConfig;
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::Record;

/// The rules every scenario runs with (the example's default rules).
pub const RULES: &str = include_str!("../../examples/rules/default.rules");

/// One of the three scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `enterprise_k8s_cluster`.
    Cluster,
    /// `financial_trading_platform`.
    Trading,
    /// `iot_smart_city_platform`.
    SmartCity,
}

impl Scenario {
    /// All three, in report order.
    pub const ALL: [Scenario; 3] = [Scenario::Cluster, Scenario::Trading, Scenario::SmartCity];

    /// The scenario's name, as `reverse_flow --scenario` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cluster => "enterprise_k8s_cluster",
            Scenario::Trading => "financial_trading_platform",
            Scenario::SmartCity => "iot_smart_city_platform",
        }
    }

    /// Whether the scenario produces Kubernetes objects.
    pub fn is_k8s(self) -> bool {
        self == Scenario::Cluster
    }

    /// The rule whose threshold the bidirectional check changes, its threshold in the
    /// default rules and the value sent.
    pub fn threshold_command(self) -> (&'static str, f64, f64) {
        match self {
            Scenario::Cluster => ("pod_restart_jump", 3.0, 1.0),
            Scenario::Trading => ("price_move", 2.0, 3.0),
            Scenario::SmartCity => ("air_quality_unhealthy", 55.4, 60.0),
        }
    }

    /// A fresh generator for the scenario, seeded.
    pub fn source(self, seed: u64) -> Source {
        match self {
            Scenario::Cluster => Source::Cluster(Box::new(ClusterGenerator::new(ClusterConfig {
                seed,
                ..ClusterConfig::default()
            }))),
            Scenario::Trading => Source::Trading(Box::new(TradingGenerator::new(TradingConfig {
                seed,
                ..TradingConfig::default()
            }))),
            Scenario::SmartCity => {
                Source::SmartCity(Box::new(SmartCityGenerator::new(SmartCityConfig {
                    seed,
                    ..SmartCityConfig::default()
                })))
            }
        }
    }

    /// The flow configuration the report runs the scenario with: the defaults of
    /// [`FlowConfig::new`] (fused placement, default budgets, ring and store sizes) and
    /// the given wait strategy.
    pub fn config(self, wait: WaitStrategy) -> FlowConfig {
        let rules = RuleSet::parse(RULES).expect("the embedded default rules parse");
        let mut c = FlowConfig::new(self.name(), rules);
        c.wait = wait;
        c
    }
}

/// A scenario's generator.
pub enum Source {
    /// Pods, deployments, services, events, node status.
    Cluster(Box<ClusterGenerator>),
    /// Forex, crypto, stock and bond ticks.
    Trading(Box<TradingGenerator>),
    /// Sensor readings of 100,000 devices.
    SmartCity(Box<SmartCityGenerator>),
}

impl Source {
    /// The next record.
    #[inline]
    pub fn next_record(&mut self) -> Record {
        match self {
            Source::Cluster(g) => g.next_record(),
            Source::Trading(g) => g.next_record(),
            Source::SmartCity(g) => g.next_record(),
        }
    }

    /// The interner the records' symbols come from.
    pub fn interner(&mut self) -> &mut Interner {
        match self {
            Source::Cluster(g) => g.interner_mut(),
            Source::Trading(g) => g.decoder_mut().interner_mut(),
            Source::SmartCity(g) => g.decoder_mut().interner_mut(),
        }
    }
}
