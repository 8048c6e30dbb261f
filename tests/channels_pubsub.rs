//! In-process pub/sub: a host service subscribes to topics and reads from a ring, with no
//! socket anywhere; positions, resume, gaps and per-subscriber drops.

#[path = "peers/support.rs"]
mod support;

use std::time::Duration;

use ebbflow::channels::{
    bus, Counter, GapReason, Position, Server, ServerConfig, SubscribeError, TopicConfig,
};

fn socketless(history: usize) -> (Server, ebbflow::channels::BusWriter) {
    let mut cfg = ServerConfig::new(
        None,
        vec![
            TopicConfig::new("a", history),
            TopicConfig::new("b", history),
        ],
    );
    cfg.epoch = Some(9);
    let (mut w, r) = bus(64 * 1024);
    let s = Server::start(cfg, r).unwrap();
    w.set_waker(s.waker());
    (s, w)
}

fn collect(
    sub: &mut ebbflow::channels::Subscription,
    n: usize,
) -> Vec<(String, String, String, Position)> {
    let mut out = Vec::new();
    let end = std::time::Instant::now() + support::WAIT;
    while out.len() < n && std::time::Instant::now() < end {
        sub.read_timeout(64, Duration::from_millis(50), |d| {
            out.push((
                d.topic.to_owned(),
                d.event.to_owned(),
                String::from_utf8(d.payload.to_vec()).unwrap(),
                d.position,
            ))
        });
    }
    out
}

#[test]
fn a_subscriber_without_sockets_receives_its_topics_in_order_with_positions() {
    let (server, mut w) = socketless(16);
    assert_eq!(server.local_addr(), None);
    let ps = server.pubsub();
    let mut sub = ps.subscribe(&["a"], 4096).unwrap();
    assert_eq!(
        sub.start(),
        Position {
            epoch: 9,
            offset: 0
        }
    );
    for i in 0..5 {
        support::publish(&mut w, "a", "tick", &format!("{{\"i\":{i}}}"));
        support::publish(&mut w, "b", "other", "1");
    }
    let got = collect(&mut sub, 5);
    assert_eq!(got.len(), 5);
    for (i, (topic, event, payload, pos)) in got.iter().enumerate() {
        assert_eq!((topic.as_str(), event.as_str()), ("a", "tick"));
        assert_eq!(payload, &format!("{{\"i\":{i}}}"));
        // Hub-wide offsets: a and b alternate, so a's messages are 1, 3, 5, …
        assert_eq!(
            *pos,
            Position {
                epoch: 9,
                offset: 2 * i as u64 + 1
            }
        );
    }
    // Nothing from topic b arrived.
    assert_eq!(sub.read(10, |_| {}), 0);
    // The server may still be ingesting b's last message when a's are all read.
    support::eventually(Duration::from_secs(5), || {
        server.metrics().get(Counter::MessagesIn) == 10
    });
    assert_eq!(server.metrics().get(Counter::MessagesIn), 10);
}

#[test]
fn resume_replays_history_after_a_position_and_reports_gaps() {
    let (server, mut w) = socketless(3);
    let ps = server.pubsub();
    let mut probe = ps.subscribe(&["a", "b"], 4096).unwrap();
    for i in 1..=6 {
        support::publish(
            &mut w,
            if i % 2 == 0 { "b" } else { "a" },
            "e",
            &i.to_string(),
        );
    }
    assert_eq!(collect(&mut probe, 6).len(), 6);
    // From offset 2: a keeps 1,3,5 and b keeps 2,4,6 → everything after 2, in hub order.
    let mut sub = ps
        .subscribe_since(
            &["a", "b"],
            4096,
            Some(Position {
                epoch: 9,
                offset: 2,
            }),
        )
        .unwrap();
    assert!(sub.gaps().is_empty());
    let offsets: Vec<u64> = collect(&mut sub, 4).iter().map(|m| m.3.offset).collect();
    assert_eq!(offsets, [3, 4, 5, 6]);
    // Publish 4 more to a: a's history (3) no longer reaches back to offset 6.
    for i in 0..4 {
        support::publish(&mut w, "a", "e", &i.to_string());
    }
    assert_eq!(collect(&mut probe, 4).len(), 4);
    let old = Position {
        epoch: 9,
        offset: 6,
    };
    let gapped = ps.subscribe_since(&["a", "b"], 4096, Some(old)).unwrap();
    assert_eq!(gapped.gaps().len(), 1);
    assert_eq!(gapped.gaps()[0].topic, "a");
    assert_eq!(gapped.gaps()[0].reason, GapReason::HistoryEvicted);
    let other_epoch = ps
        .subscribe_since(
            &["b"],
            4096,
            Some(Position {
                epoch: 8,
                offset: 1,
            }),
        )
        .unwrap();
    assert_eq!(other_epoch.gaps()[0].reason, GapReason::EpochChanged);
    // The server counts after it acts: the client may see the effect first.
    support::eventually(std::time::Duration::from_secs(5), || {
        server.metrics().get(Counter::Gaps) >= 2
    });
    assert!(server.metrics().get(Counter::Gaps) >= 2);
}

#[test]
fn a_full_subscriber_ring_drops_for_that_subscriber_only_and_counts() {
    let (server, mut w) = socketless(64);
    let ps = server.pubsub();
    let mut small = ps.subscribe(&["a"], 128).unwrap();
    let mut big = ps.subscribe(&["a"], 64 * 1024).unwrap();
    for i in 0..20 {
        w.try_publish("a", "e", format!("{{\"n\":{i}}}").as_bytes())
            .unwrap();
    }
    w.flush();
    let got_big = collect(&mut big, 20);
    assert_eq!(got_big.len(), 20);
    let got_small = collect(&mut small, 1);
    // 128-byte ring, 26-byte records: it held 4, the other 16 were dropped and counted.
    assert_eq!(got_small.len() as u64 + small.dropped(), 20);
    assert!(small.dropped() >= 10);
    // The server counts after it acts: the subscriber may see the effect first.
    support::eventually(Duration::from_secs(5), || {
        server.metrics().get(Counter::InprocDrops) == small.dropped()
    });
    assert_eq!(server.metrics().get(Counter::InprocDrops), small.dropped());
    assert_eq!(big.dropped(), 0);
}

#[test]
fn unknown_topics_and_invalid_payloads_are_refused_and_counted() {
    let (server, mut w) = socketless(4);
    let ps = server.pubsub();
    assert_eq!(
        ps.subscribe(&["a", "nope"], 1024).err(),
        Some(SubscribeError::UnknownTopic("nope".into()))
    );
    let mut sub = ps.subscribe(&["a"], 1024).unwrap();
    support::publish(&mut w, "nope", "e", "{}");
    support::publish(&mut w, "a", "e", "{not json");
    support::publish(&mut w, "a", "e", "");
    support::publish(&mut w, "a", "e", "{\"ok\":true}");
    let got = collect(&mut sub, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, "{\"ok\":true}");
    let m = server.metrics();
    assert_eq!(m.get(Counter::UnknownTopic), 1);
    assert_eq!(m.get(Counter::InvalidPayload), 2);
    drop(sub);
    server.shutdown().unwrap();
}

#[test]
fn every_handle_can_move_to_the_thread_that_uses_it() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync + Clone>() {}
    send::<ebbflow::channels::BusWriter>();
    send::<ebbflow::channels::BusReader>();
    send::<Server>();
    send::<ebbflow::channels::Subscription>();
    send::<ebbflow::channels::CommandReceiver>();
    send::<ebbflow::channels::CommandReplier>();
    shared::<ebbflow::channels::PubSub>();
    // And a subscription really is read on another thread.
    let (server, mut w) = socketless(4);
    let mut sub = server.pubsub().subscribe(&["a"], 1024).unwrap();
    let reader = std::thread::spawn(move || collect(&mut sub, 1));
    support::publish(&mut w, "a", "e", "1");
    assert_eq!(reader.join().unwrap().len(), 1);
}
