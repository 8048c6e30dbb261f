//! `iot_smart_city_platform`: readings from 100,000 devices of 4 types
//! behind 200 edge nodes, with occasional outliers.
//!
//! Devices report in a seeded permutation order: every device reports
//! exactly once in each run of `devices` consecutive readings (a full
//! cycle of `i ↦ (a·i + c) mod devices` with `gcd(a, devices) = 1`), as
//! scheduled sensors do. Device `d` has type `d mod 4` and sits behind
//! edge node `d mod edge_nodes`.

use crate::sources::gen::{Generator, Rng, DEFAULT_START_NS};
use crate::sources::intern::InternerConfig;
use crate::sources::record::Record;
use crate::sources::ticks::{DeviceType, Reading, TickDecoder};

/// Shape and trouble of the IoT scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmartCityConfig {
    /// Seed.
    pub seed: u64,
    /// Number of devices (> 0).
    pub devices: u32,
    /// Number of edge nodes (> 0).
    pub edge_nodes: u32,
    /// Virtual time between readings (200 ns = the scenario's 5 M/s).
    pub interval_ns: i64,
    /// Readings per million that are outliers.
    pub outlier_per_million: u32,
    /// Virtual clock start, ns since the Unix epoch.
    pub start_ns: i64,
}

impl Default for SmartCityConfig {
    fn default() -> Self {
        SmartCityConfig {
            seed: 1,
            devices: 100_000,
            edge_nodes: 200,
            interval_ns: 200,
            outlier_per_million: 1000,
            start_ns: DEFAULT_START_NS,
        }
    }
}

/// Counters of a [`SmartCityGenerator`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmartCityStats {
    /// Readings generated.
    pub readings: u64,
    /// Of which outliers.
    pub outliers: u64,
}

/// Normal range `[low, high)` of each device type's value; outliers are
/// `high × 10` or `−high` (see [`SmartCityGenerator::is_outlier`]).
pub const RANGES: [(f64, f64); 4] = [
    (0.0, 120.0), // traffic: vehicles/min
    (2.0, 80.0),  // air quality: PM2.5 µg/m³
    (0.0, 50.0),  // energy: kW
    (0.0, 200.0), // water: l/min
];

/// The IoT generator. See the [module docs](self).
#[derive(Debug)]
pub struct SmartCityGenerator {
    cfg: SmartCityConfig,
    rng: Rng,
    a: u64,
    c: u64,
    i: u64,
    decoder: TickDecoder,
    now_ns: i64,
    stats: SmartCityStats,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl SmartCityGenerator {
    /// A generator.
    pub fn new(mut cfg: SmartCityConfig) -> SmartCityGenerator {
        cfg.devices = cfg.devices.max(1);
        cfg.edge_nodes = cfg.edge_nodes.max(1);
        let mut rng = Rng::new(cfg.seed);
        let n = u64::from(cfg.devices);
        let mut a = rng.below(n) | 1;
        while gcd(a, n) != 1 {
            a += 1;
        }
        let c = rng.below(n);
        SmartCityGenerator {
            decoder: TickDecoder::new(InternerConfig {
                max_entries: 64,
                max_bytes: 4096,
            }),
            rng,
            a: a % n.max(2),
            c,
            i: 0,
            now_ns: cfg.start_ns,
            stats: SmartCityStats::default(),
            cfg,
        }
    }

    /// Replaces the ingest clock of the records.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.decoder = self.decoder.with_clock(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SmartCityConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &SmartCityStats {
        &self.stats
    }

    /// The decoder holding the interner the records' symbols refer to.
    pub fn decoder(&self) -> &TickDecoder {
        &self.decoder
    }

    /// The decoder, mutably (to add strings to its interner before the pipeline starts).
    pub fn decoder_mut(&mut self) -> &mut TickDecoder {
        &mut self.decoder
    }

    /// Whether `value` is outside the normal range of `t`.
    pub fn is_outlier(t: DeviceType, value: f64) -> bool {
        let (lo, hi) = RANGES[t as usize];
        !(lo..hi).contains(&value)
    }

    /// The next reading as a value (for frames or CSV).
    pub fn next_reading(&mut self) -> Reading {
        let n = u64::from(self.cfg.devices);
        let device = ((self.a.wrapping_mul(self.i % n) + self.c) % n) as u32;
        self.i += 1;
        let ty = DeviceType::ALL[device as usize % 4];
        let (lo, hi) = RANGES[ty as usize];
        let outlier = self.rng.chance(self.cfg.outlier_per_million);
        let u = self.rng.unit();
        let value = if outlier {
            self.stats.outliers += 1;
            if u < 0.5 {
                hi * 10.0
            } else {
                -hi
            }
        } else {
            lo + u * (hi - lo)
        };
        self.now_ns += self.cfg.interval_ns;
        self.stats.readings += 1;
        Reading {
            time_ns: self.now_ns,
            device_type: ty,
            device_id: device,
            edge_node: device % self.cfg.edge_nodes,
            value,
        }
    }
}

impl Generator for SmartCityGenerator {
    fn next_record(&mut self) -> Record {
        let r = self.next_reading();
        self.decoder.reading_record(&r)
    }
}
