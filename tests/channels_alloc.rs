//! Allocation budget of the bus: it never allocates in steady state (see
//! `channels_fanout_alloc.rs` for the broadcast thread's fan-out).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use std::time::Duration;

use ebbflow::channels::bus;

#[test]
fn the_bus_moves_a_hundred_thousand_messages_without_allocating() {
    let (mut w, mut r) = bus(64 * 1024);
    let payload = br#"{"kind":"Pod","ns":"default","name":"web-1","phase":"Running"}"#;
    let mut seen = 0u64;
    let mut bytes = 0usize;
    // Warm up, then count.
    for _ in 0..1000 {
        w.try_publish("k8s:events", "MODIFIED", payload).unwrap();
        r.read(16, |m| bytes += m.payload.len());
    }
    let ((), allocations) = counting_alloc::on_this_thread(|| {
        for i in 0..100_000u64 {
            while w.try_publish("k8s:events", "MODIFIED", payload).is_err() {
                r.read(usize::MAX, |_| {});
            }
            if i % 64 == 0 {
                w.flush();
            }
            seen += r.read(usize::MAX, |m| {
                bytes += m.payload.len() + m.topic.len() + m.event.len();
            }) as u64;
        }
    });
    assert_eq!(allocations, 0);
    assert_eq!(seen, 100_000);
    assert!(bytes > 100_000 * payload.len());
    assert_eq!(w.dropped(), 0);
}

#[test]
fn the_bus_keeps_order_across_threads() {
    let (mut w, mut r) = bus(4096);
    let producer = std::thread::spawn(move || {
        let mut i = 0u64;
        while i < 200_000 {
            let p = i.to_string();
            if w.try_publish("t", "e", p.as_bytes()).is_ok() {
                i += 1;
            } else {
                std::thread::yield_now();
            }
        }
        w.flush();
        w.dropped()
    });
    let mut next = 0u64;
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while next < 200_000 && std::time::Instant::now() < end {
        let n = r.read(256, |m| {
            assert_eq!(
                std::str::from_utf8(m.payload)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
                next
            );
            next += 1;
        });
        if n == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(next, 200_000);
    // Refused attempts were retried, so none were lost; they are still counted.
    let _refusals = producer.join().unwrap();
}
