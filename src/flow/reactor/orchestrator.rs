//! [`Reactor`]: routes records to chains, runs them, parks retries, releases them.

use crate::flow::reactor::park::ParkTable;
use crate::flow::reactor::router::Router;
use crate::flow::reactor::run::{failed_event, run, Chain, Env, Outcome, Progress};
use crate::flow::reactor::{
    ChainStats, FailReason, Failure, ReactorConfig, ReactorStats, TimeSource, Timing, TscTime,
};
use crate::flow::{Item, What};
use crate::sources::gen::Rng;
use crate::sources::record::Record;

/// The reactor engine. See the [module docs](super) for the contract.
///
/// Single-threaded: one stage owns it. Every call emits through `out`; the bounds on
/// what one call emits are [`MAX_OUTPUTS_PER_RUN`](super::MAX_OUTPUTS_PER_RUN) per run.
pub struct Reactor<T: TimeSource = TscTime> {
    chains: Vec<Chain>,
    router: Router,
    table: ParkTable,
    rng: Rng,
    time: T,
    timing: Timing,
    stats: ReactorStats,
    last_failure: Option<Failure>,
}

// A stage owns its reactor and moves to its thread: the reactor must be `Send`.
const _: fn() = || {
    fn send<R: Send + 'static>() {}
    send::<Reactor<TscTime>>();
    send::<Reactor<crate::flow::reactor::ManualTime>>();
};

impl Reactor<TscTime> {
    /// A reactor on the engine's clock: pass [`Clock::ticks`](crate::engine::clock::Clock::ticks)
    /// readings as `now`.
    pub fn new(config: ReactorConfig) -> Reactor<TscTime> {
        Reactor::with_time(config, TscTime::new())
    }
}

impl<T: TimeSource> core::fmt::Debug for Reactor<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reactor")
            .field(
                "chains",
                &self
                    .chains
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("parked", &self.table.len())
            .field("capacity", &self.table.capacity())
            .field("timing", &self.timing)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<T: TimeSource> Reactor<T> {
    /// A reactor reading time from `time`; `now` arguments are in its ticks.
    /// Allocates the chains and the retry table (the only allocations it makes).
    pub fn with_time(config: ReactorConfig, time: T) -> Reactor<T> {
        let chains = config
            .chains
            .into_iter()
            .map(|(c, policy)| Chain {
                name: c.name,
                steps: c.steps,
                policy,
                stats: ChainStats::default(),
            })
            .collect();
        Reactor {
            chains,
            router: config.router,
            table: ParkTable::new(config.capacity),
            rng: Rng::new(config.seed),
            time,
            timing: config.timing,
            stats: ReactorStats::default(),
            last_failure: None,
        }
    }

    /// Processes one item at time `now` (time source ticks).
    ///
    /// * Not a record (`header.what != What::Record`), or a kind no chain takes: emitted
    ///   untouched.
    /// * A record whose key has parked items: parked behind them (emits nothing), or,
    ///   when the table is full, failed at once ([`FailReason::QueueFull`]).
    /// * Otherwise its chain runs now: emits the item with a `Completed` summary, or a
    ///   `Retried` event (the item is parked until its retry is due), or `Compensated`
    ///   events and a `Failed` event.
    ///
    /// Emits at most [`MAX_OUTPUTS_PER_RUN`](super::MAX_OUTPUTS_PER_RUN) items.
    pub fn process(&mut self, mut item: Item, now: u64, out: &mut impl FnMut(Item)) {
        if self.process_in_place(&mut item, now, out) {
            out(item);
        }
    }

    /// [`process`](Self::process) where the item lies: returns `true` when the item goes
    /// on (its chain completed, or it passed through), changed in place, for the caller
    /// to hand on; `false` when the reactor took it (parked for a retry or behind its
    /// key's parked item, or failed). Only a taken item emits through `out` (its
    /// lifecycle events), so a caller that hands on kept items where they lie keeps the
    /// stream's order as long as it switches to `process` from the first taken one on.
    #[inline]
    pub fn process_in_place(
        &mut self,
        item: &mut Item,
        now: u64,
        out: &mut impl FnMut(Item),
    ) -> bool {
        if item.header.what != What::Record {
            self.stats.passed_through += 1;
            return true;
        }
        let Some(c) = self.router.route(&item.record) else {
            self.stats.passed_through += 1;
            return true;
        };
        let chain = &mut self.chains[c as usize];
        chain.stats.started += 1;
        let mut env = Env {
            rng: &mut self.rng,
            time: &self.time,
            timing: self.timing,
            stats: &mut self.stats,
            last_failure: &mut self.last_failure,
        };
        let mut progress = Progress::new(c);
        if !self.table.is_empty() && self.table.contains(item.record.key) {
            if self.table.park_follower(item, &progress) {
                env.stats.queued_behind += 1;
            } else {
                env.stats.overflows += 1;
                env.stats.failed_overflow += 1;
                failed_event(
                    chain,
                    env.reborrow(),
                    item,
                    &progress,
                    0,
                    FailReason::QueueFull,
                    out,
                );
            }
            self.note_parked();
            return false;
        }
        let can_park = !self.table.is_full();
        let outcome = run(chain, &mut env, item, &mut progress, now, can_park, out);
        match outcome {
            Outcome::Completed => true,
            Outcome::Retry { due } => {
                // `can_park` held, so a slot is free.
                let parked = self.table.park_head(item, &progress, due);
                debug_assert!(parked);
                self.note_parked();
                false
            }
            Outcome::Done => false,
        }
    }

    /// Runs the parked items whose retry is due at `now`: earliest due first; when an
    /// item finishes, the next item of its key runs right away. At most `max` runs (each
    /// emits at most [`MAX_OUTPUTS_PER_RUN`](super::MAX_OUTPUTS_PER_RUN) items); an item
    /// that became due but did not fit in `max` runs stays due for the next call.
    /// Returns the number of runs.
    pub fn poll(&mut self, now: u64, max: usize, out: &mut impl FnMut(Item)) -> usize {
        let mut runs = 0;
        while runs < max {
            let Some(mut slot) = self.table.pop_due(now) else {
                break;
            };
            loop {
                runs += 1;
                let (item, progress) = self.table.entry_mut(slot);
                let chain = &mut self.chains[progress.chain as usize];
                let mut env = Env {
                    rng: &mut self.rng,
                    time: &self.time,
                    timing: self.timing,
                    stats: &mut self.stats,
                    last_failure: &mut self.last_failure,
                };
                let outcome = run(chain, &mut env, item, progress, now, true, out);
                if let Outcome::Retry { due } = outcome {
                    self.table.schedule(slot, due);
                    break;
                }
                if let Outcome::Completed = outcome {
                    out(*item);
                }
                match self.table.finish_head(slot) {
                    None => break,
                    Some(next) => {
                        slot = next;
                        if runs >= max {
                            self.table.schedule(slot, now);
                            break;
                        }
                    }
                }
            }
        }
        self.stats.parked = self.table.len() as u64;
        runs
    }

    fn note_parked(&mut self) {
        let parked = self.table.len() as u64;
        self.stats.parked = parked;
        self.stats.parked_high_water = self.stats.parked_high_water.max(parked);
    }

    /// Items parked now (retrying, or waiting behind an item of their key).
    pub fn parked(&self) -> usize {
        self.table.len()
    }

    /// The retry table's capacity.
    pub fn retry_capacity(&self) -> usize {
        self.table.capacity()
    }

    /// The earliest time (ticks) at which [`poll`](Self::poll) has work, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.table.next_due()
    }

    /// Counters across chains.
    pub fn stats(&self) -> ReactorStats {
        self.stats
    }

    /// Counters of chain `chain`.
    pub fn chain_stats(&self, chain: u8) -> Option<ChainStats> {
        self.chains.get(chain as usize).map(|c| c.stats)
    }

    /// Number of chains (ids are `0..chains()`).
    pub fn chains(&self) -> usize {
        self.chains.len()
    }

    /// The name of chain `chain`.
    pub fn chain_name(&self, chain: u8) -> Option<&str> {
        self.chains.get(chain as usize).map(|c| c.name.as_str())
    }

    /// The number of steps of chain `chain`.
    pub fn chain_len(&self, chain: u8) -> Option<usize> {
        self.chains.get(chain as usize).map(|c| c.steps.len())
    }

    /// The name of step `step` of chain `chain`.
    pub fn step_name(&self, chain: u8, step: u8) -> Option<&'static str> {
        self.chains
            .get(chain as usize)?
            .steps
            .get(step as usize)
            .map(|s| s.name())
    }

    /// The chain `record` would run, if any.
    pub fn chain_for(&self, record: &Record) -> Option<u8> {
        self.router.route(record)
    }

    /// The most recent chain failure.
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure
    }

    /// The time source.
    pub fn time(&self) -> &T {
        &self.time
    }
}
