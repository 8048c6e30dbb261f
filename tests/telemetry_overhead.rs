//! The recorder's hot-path cost per event (sampling 1 in 1000, three stages), next to
//! the cost of the clock reads it makes. A measurement, not a gate: ignored by default;
//! run with
//! `cargo test --release --test telemetry_overhead -- --ignored --nocapture`.
//! The bound asserted is loose (a loaded machine must not fail it); the printed figures
//! are what docs/telemetry.md records.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ebbflow::engine::Clock;
use ebbflow::telemetry::{Sampler, Telemetry, TelemetryConfig, TraceAttrs};

static STAGES: &[&str] = &["decode", "route", "publish"];
const EVENTS: u32 = 2_000_000;

fn best_of<F: FnMut()>(mut f: F) -> Duration {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn recorder_cost_per_event() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .sampler(Sampler::OneIn(1000));
    let telemetry = Telemetry::start(cfg).unwrap();
    let mut rec = telemetry.recorder(STAGES);
    let clock = *Clock::get();

    let recorded = best_of(|| {
        for _ in 0..EVENTS {
            rec.begin(TraceAttrs::default());
            for s in 0..STAGES.len() {
                rec.start(s);
                rec.end(s);
            }
            black_box(rec.finish());
        }
    });
    // The same eight clock reads, nothing else.
    let clock_only = best_of(|| {
        for _ in 0..EVENTS {
            for _ in 0..8 {
                black_box(clock.ticks());
            }
        }
    });
    let per = |d: Duration| d.as_nanos() as f64 / EVENTS as f64;
    println!(
        "recorder: {:.1} ns/event; its 8 clock reads alone: {:.1} ns/event; ratio {:.2}",
        per(recorded),
        per(clock_only),
        per(recorded) / per(clock_only)
    );
    assert!(per(recorded) < 2_000.0, "{} ns per event", per(recorded));
    let stats = telemetry.shutdown();
    assert!(stats.traces_submitted + stats.traces_dropped_queue >= (EVENTS / 1000) as u64);
}
