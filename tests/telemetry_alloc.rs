//! The hot-path side of telemetry allocates nothing: once a recorder exists, recording,
//! sampling, submitting and dropping on a full ring make no heap allocation (the exporter
//! thread, which does allocate, is not counted: it is not the hot path).

use std::time::Duration;

use ebbflow::telemetry::{Finished, Sampler, Telemetry, TelemetryConfig, TraceAttrs};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

static STAGES: &[&str] = &["decode", "route", "publish"];

fn event(rec: &mut ebbflow::telemetry::TraceRecorder, over: bool) -> Finished {
    rec.begin(TraceAttrs {
        scenario: "s",
        pattern: "p",
        kind: "k",
        ..TraceAttrs::default()
    });
    for s in 0..STAGES.len() {
        rec.start(s);
        rec.end(s);
    }
    if over {
        rec.mark_budget_exceeded();
    }
    rec.finish()
}

#[test]
fn recording_and_submitting_traces_does_not_allocate() {
    // The counter works on this thread.
    let (_, n) = counting_alloc::on_this_thread(|| drop(std::hint::black_box(Box::new(1u8))));
    assert_eq!(n, 1, "the counting allocator saw no allocation");

    // A port nobody listens on: the exporter keeps failing and backing off, which must
    // not reach the recording thread.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .sampler(Sampler::OneIn(10))
        .trace_queue(4)
        .intervals(Duration::from_millis(5), Duration::from_millis(20))
        .backoff(Duration::from_millis(5), Duration::from_millis(20));
    let telemetry = Telemetry::start(cfg).unwrap();
    let mut rec = telemetry.recorder(STAGES);
    for i in 0..1000 {
        event(&mut rec, i % 97 == 0);
    }

    let (outcomes, allocations) = counting_alloc::on_this_thread(|| {
        let mut seen = [0u64; 3];
        for i in 0..100_000u32 {
            let slot = match event(&mut rec, i % 997 == 0) {
                Finished::NotSampled => 0,
                Finished::Submitted => 1,
                Finished::Dropped => 2,
            };
            seen[slot] += 1;
        }
        seen
    });
    assert_eq!(allocations, 0, "the hot path allocated {allocations} times");
    // Every path ran: unsampled, submitted, and dropped (the exporter drains the ring of
    // 4 only every few ms); sampled + budget breakers = one in 10 plus extras.
    assert!(outcomes[0] > 80_000, "{outcomes:?}");
    assert!(outcomes[1] > 0 && outcomes[2] > 0, "{outcomes:?}");
    assert!(outcomes[1] + outcomes[2] >= 10_000, "{outcomes:?}");
    let stats = telemetry.shutdown();
    assert!(stats.traces_dropped_queue >= outcomes[2], "{stats:?}");
}
