//! `financial_trading_platform`: ticks for forex, crypto, stock and bond
//! instruments, a random walk per instrument with occasional price spikes.

use crate::sources::gen::{Generator, Rng, DEFAULT_START_NS};
use crate::sources::intern::InternerConfig;
use crate::sources::record::Record;
use crate::sources::ticks::{AssetClass, Tick, TickDecoder, MAX_INSTRUMENT};

/// Shape and trouble of the trading scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradingConfig {
    /// Seed.
    pub seed: u64,
    /// Instruments per class: forex, crypto, stock, bond (each ≤ 1000).
    pub instruments: [u32; 4],
    /// Virtual time between ticks (100 ns = the scenario's 10 M ticks/s).
    pub tick_interval_ns: i64,
    /// Ticks per million that are a price spike.
    pub spike_per_million: u32,
    /// Relative size of a spike (0.05 = the price jumps 5 % up or down).
    pub spike_size: f64,
    /// Relative size of an ordinary step (uniform in ±`volatility`).
    pub volatility: f64,
    /// Virtual clock start, ns since the Unix epoch.
    pub start_ns: i64,
}

impl Default for TradingConfig {
    fn default() -> Self {
        TradingConfig {
            seed: 1,
            instruments: [28, 20, 100, 20],
            tick_interval_ns: 100,
            spike_per_million: 200,
            spike_size: 0.05,
            volatility: 0.0005,
            start_ns: DEFAULT_START_NS,
        }
    }
}

/// Counters of a [`TradingGenerator`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TradingStats {
    /// Ticks generated.
    pub ticks: u64,
    /// Of which price spikes.
    pub spikes: u64,
}

#[derive(Clone, Copy, Debug)]
struct Instrument {
    class: AssetClass,
    name: [u8; MAX_INSTRUMENT],
    price: f64,
}

const CURRENCIES: [&str; 8] = ["EUR", "USD", "JPY", "GBP", "CHF", "AUD", "CAD", "NZD"];
const COINS: [&str; 10] = [
    "BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "AVAX", "LINK",
];

/// The trading generator. See the [module docs](self).
#[derive(Debug)]
pub struct TradingGenerator {
    cfg: TradingConfig,
    rng: Rng,
    instruments: Vec<Instrument>,
    decoder: TickDecoder,
    now_ns: i64,
    stats: TradingStats,
}

fn name_of(class: AssetClass, i: u32) -> [u8; MAX_INSTRUMENT] {
    let mut out = [0u8; MAX_INSTRUMENT];
    let mut put = |parts: &[&[u8]]| {
        let mut n = 0;
        for p in parts {
            for &b in *p {
                if n < MAX_INSTRUMENT {
                    out[n] = b;
                    n += 1;
                }
            }
        }
    };
    let d = [
        b'0' + (i / 100 % 10) as u8,
        b'0' + (i / 10 % 10) as u8,
        b'0' + (i % 10) as u8,
    ];
    match class {
        AssetClass::Forex => {
            // Ordered pairs of distinct currencies: 56 names, then numbered.
            let (a, b) = ((i / 7) as usize, (i % 7) as usize);
            if a < CURRENCIES.len() {
                let b = if b >= a { b + 1 } else { b };
                put(&[CURRENCIES[a].as_bytes(), CURRENCIES[b].as_bytes()]);
            } else {
                put(&[b"FX", &d]);
            }
        }
        AssetClass::Crypto => {
            let coin = COINS[i as usize % COINS.len()].as_bytes();
            let quote: &[u8] = match i as usize / COINS.len() {
                0 => b"USD",
                1 => b"EUR",
                _ => b"",
            };
            if quote.is_empty() {
                put(&[b"CR", &d]);
            } else {
                put(&[coin, b"/", quote]);
            }
        }
        AssetClass::Stock => put(&[b"STK", &d]),
        AssetClass::Bond => put(&[b"BND", &d]),
    }
    out
}

impl TradingGenerator {
    /// A generator (allocates its instrument table and interner here).
    pub fn new(cfg: TradingConfig) -> TradingGenerator {
        let mut rng = Rng::new(cfg.seed);
        let mut instruments = Vec::new();
        for class in AssetClass::ALL {
            let count = cfg.instruments[class as usize].min(1000);
            for i in 0..count {
                let base = match class {
                    AssetClass::Forex => 0.5 + rng.unit() * 1.5,
                    AssetClass::Crypto => 1.0 + rng.unit() * 60_000.0,
                    AssetClass::Stock => 5.0 + rng.unit() * 500.0,
                    AssetClass::Bond => 90.0 + rng.unit() * 20.0,
                };
                instruments.push(Instrument {
                    class,
                    name: name_of(class, i),
                    price: base,
                });
            }
        }
        TradingGenerator {
            decoder: TickDecoder::new(InternerConfig::default()),
            rng,
            instruments,
            now_ns: cfg.start_ns,
            stats: TradingStats::default(),
            cfg,
        }
    }

    /// Replaces the ingest clock of the records.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.decoder = self.decoder.with_clock(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TradingConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &TradingStats {
        &self.stats
    }

    /// The tick decoder holding the interner the records' symbols refer to.
    pub fn decoder(&self) -> &TickDecoder {
        &self.decoder
    }

    /// The decoder, mutably (to add strings to its interner before the pipeline starts).
    pub fn decoder_mut(&mut self) -> &mut TickDecoder {
        &mut self.decoder
    }

    /// Number of instruments.
    pub fn instruments(&self) -> usize {
        self.instruments.len()
    }

    /// The next tick as a value (for frames or CSV).
    pub fn next_tick(&mut self) -> Tick {
        let n = self.instruments.len() as u64;
        let idx = self.rng.below(n.max(1)) as usize;
        let spike = self.rng.chance(self.cfg.spike_per_million);
        let up = self.rng.next_u64() & 1 == 1;
        let step = (self.rng.unit() * 2.0 - 1.0) * self.cfg.volatility;
        let qty_raw = self.rng.below(1000) + 1;
        let buy = self.rng.next_u64() & 1 == 1;
        let inst = &mut self.instruments[idx];
        let factor = if spike {
            self.stats.spikes += 1;
            if up {
                1.0 + self.cfg.spike_size
            } else {
                1.0 / (1.0 + self.cfg.spike_size)
            }
        } else {
            1.0 + step
        };
        inst.price *= factor;
        let quantity = match inst.class {
            AssetClass::Forex => qty_raw as f64 * 1000.0,
            AssetClass::Crypto => qty_raw as f64 / 100.0,
            AssetClass::Stock | AssetClass::Bond => qty_raw as f64,
        };
        self.now_ns += self.cfg.tick_interval_ns;
        self.stats.ticks += 1;
        Tick {
            time_ns: self.now_ns,
            class: inst.class,
            instrument: inst.name,
            price: inst.price,
            quantity,
            buy,
        }
    }
}

impl Generator for TradingGenerator {
    fn next_record(&mut self) -> Record {
        let t = self.next_tick();
        self.decoder.tick_record(&t)
    }
}
