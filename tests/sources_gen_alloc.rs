//! Zero allocations per event in steady state for the generators, the tick
//! and CSV decoders and the replay paths: a counting global allocator.
//!
//! Run: `cargo test --release --test sources_gen_alloc` (also passes in
//! debug, with smaller counts).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::io::Cursor;

use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::k8s::WatchDecoder;
use ebbflow::sources::pace::Pace;
use ebbflow::sources::replay::{replay_bytes, StreamReader};
use ebbflow::sources::ticks::TickDecoder;

/// Records per generator in the counted phase.
const N: u64 = if cfg!(debug_assertions) {
    50_000
} else {
    1_000_000
};

/// Runs `f` with allocation counting on for this thread; returns the count.
fn counted(f: impl FnOnce()) -> u64 {
    counting_alloc::on_this_thread(f).1
}

#[test]
fn steady_state_generation_and_decoding_allocate_nothing() {
    // The counter works: one Box is one allocation.
    assert_eq!(counted(|| drop(std::hint::black_box(Box::new(1u64)))), 1);

    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let mut decoder = WatchDecoder::default();
    let mut line = Vec::with_capacity(8192);
    let mut ticks = TickDecoder::default();
    let mut frames = Vec::new();
    let mut csv = Vec::new();
    // Warm-up: every instrument interned, buffers at full size.
    for _ in 0..20_000 {
        let t = trading.next_tick();
        frames.extend_from_slice(&t.to_frame());
        t.write_csv(&mut csv).unwrap();
        let r = city.next_reading();
        frames.extend_from_slice(&r.to_frame());
        r.write_csv(&mut csv).unwrap();
        std::hint::black_box(trading.next_record());
        std::hint::black_box(city.next_record());
    }
    let mut stream = Vec::new();
    for _ in 0..2_000 {
        let r = k8s.next_record();
        k8s.write_watch_json(&r, &mut stream).unwrap();
    }
    let mut reader = StreamReader::new(decoder.config().max_object_bytes);
    let mut sum = 0.0f64;
    let mut decoded = 0u64;

    let allocations = counted(|| {
        for _ in 0..N {
            let r = k8s.next_record();
            line.clear();
            k8s.write_watch_json(&r, &mut line).unwrap();
            decoded += u64::from(decoder.decode_event(&line).is_ok());
            sum += trading
                .next_record()
                .get(ebbflow::sources::record::FieldId::Price)
                .and_then(|v| v.as_f64())
                .unwrap();
            sum += city
                .next_record()
                .get(ebbflow::sources::record::FieldId::Value)
                .and_then(|v| v.as_f64())
                .unwrap();
        }
        ticks.decode_frames(&frames, |r| decoded += u64::from(r.is_ok()));
        ticks.decode_csv(&csv, |r| decoded += u64::from(r.is_ok()));
        replay_bytes(&stream, &mut decoder, Pace::FlatOut, |_, r| {
            decoded += u64::from(r.is_ok())
        });
        reader
            .run(
                Cursor::new(&stream[..]),
                &mut decoder,
                Pace::FlatOut,
                |_, r| decoded += u64::from(r.is_ok()),
            )
            .unwrap();
    });
    assert!(sum.is_finite());
    assert_eq!(decoded, N + 80_000 + 4_000);
    assert_eq!(allocations, 0);
}
