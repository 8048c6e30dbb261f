//! Feeding a warm reverse flow in the zero-allocation tests.
#![allow(dead_code)]

use ebbflow::flow::assembly::ReverseFlow;
use ebbflow::sources::record::Record;

/// Pushes `recs`, with a tick after every 5,000th (1 ms of virtual time from `now`, so
/// windows and dashboards close), then flushes.
pub fn feed(flow: &mut ReverseFlow, recs: &[Record], now: &mut i64) {
    for (i, r) in recs.iter().enumerate() {
        flow.push_record(*r).unwrap();
        if i % 5_000 == 0 {
            *now += 1_000_000;
            flow.tick(*now).unwrap();
        }
    }
    flow.flush();
}
