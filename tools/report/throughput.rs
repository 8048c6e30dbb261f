//! The flat-out run of a scenario: the generator pushes records as fast as the flow takes
//! them (the input ring is lossless: the host waits while it is full) for a fixed time,
//! with ticks every 5 ms and statistics every 250 ms, as `reverse_flow` does. Messages
//! are counted per topic and event by a [`CountingSink`]; per-stage figures come from the
//! flow's final [`PipelineStats`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebbflow::engine::{PipelineStats, WaitStrategy};
use ebbflow::flow::assembly::ReverseFlow;

use crate::progress::Progress;
use crate::scenario::Scenario;
use crate::sinks::{CountingSink, Counts};
use crate::wallclock_ns;

/// Time between two ticks pushed into the flow.
pub const TICK_EVERY: Duration = Duration::from_millis(5);
/// Time between two statistics snapshots (what the `monitoring` topic publishes).
pub const STATS_EVERY: Duration = Duration::from_millis(250);

/// What a flat-out run measured.
pub struct Throughput {
    /// Records pushed.
    pub records: u64,
    /// Seconds from the first push to the end of the drain (`finish`).
    pub seconds: f64,
    /// Seconds spent pushing (the deadline).
    pub push_seconds: f64,
    /// Final statistics, after the drain.
    pub stats: PipelineStats,
    /// Messages per topic and event.
    pub counts: Arc<Counts>,
}

/// Runs `scenario` flat out for `seconds`.
pub fn run(
    scenario: Scenario,
    seconds: f64,
    seed: u64,
    wait: WaitStrategy,
    progress: &mut Progress,
) -> Result<Throughput, String> {
    let mut source = scenario.source(seed);
    let counts = Arc::new(Counts::default());
    let config = scenario.config(wait);
    let mut flow = ReverseFlow::start(
        config,
        source.interner(),
        Box::new(CountingSink(counts.clone())),
    )
    .map_err(|e| format!("{}: the flow does not start: {e}", scenario.name()))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let (mut last_tick, mut last_stats) = (started, started);
    let mut records = 0u64;
    'run: loop {
        for _ in 0..256 {
            if flow.push_record(source.next_record()).is_err() {
                break 'run;
            }
            records += 1;
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK_EVERY {
            last_tick = now;
            if flow.tick(wallclock_ns()).is_err() {
                break;
            }
        }
        if now.duration_since(last_stats) >= STATS_EVERY {
            last_stats = now;
            let _ = flow.stats();
        }
        progress.update(|| {
            format!(
                "{}: flat out {:.1}/{:.1} s, {records} records",
                scenario.name(),
                now.duration_since(started).as_secs_f64(),
                seconds
            )
        });
        if now >= deadline {
            break;
        }
    }
    let push_seconds = started.elapsed().as_secs_f64();
    if let Some(e) = flow.failure() {
        return Err(format!("{}: the pipeline failed: {e}", scenario.name()));
    }
    let stats = flow
        .finish()
        .map_err(|e| format!("{}: the pipeline failed: {e}", scenario.name()))?;
    Ok(Throughput {
        records,
        seconds: started.elapsed().as_secs_f64(),
        push_seconds,
        stats,
        counts,
    })
}
