//! Scenario generators: determinism, shapes, rates on the virtual clock,
//! trouble frequencies, and the k8s JSON form through the watch decoder.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::{drive, Generator, Rng};
use ebbflow::sources::intern::known;
use ebbflow::sources::k8s::{Decoded, WatchDecoder};
use ebbflow::sources::pace::Pace;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use ebbflow::sources::ticks::DeviceType;

fn take<G: Generator>(g: &mut G, n: usize) -> Vec<Record> {
    (0..n).map(|_| g.next_record()).collect()
}

fn cluster(seed: u64) -> ClusterGenerator {
    ClusterGenerator::new(ClusterConfig {
        seed,
        ..ClusterConfig::default()
    })
    .with_clock(|| 0)
}

fn trading(seed: u64) -> TradingGenerator {
    TradingGenerator::new(TradingConfig {
        seed,
        ..TradingConfig::default()
    })
    .with_clock(|| 0)
}

fn city(seed: u64) -> SmartCityGenerator {
    SmartCityGenerator::new(SmartCityConfig {
        seed,
        ..SmartCityConfig::default()
    })
    .with_clock(|| 0)
}

#[test]
fn rng_is_the_reference_xoshiro256starstar() {
    // First outputs for seed 0 (state = four SplitMix64 outputs from 0),
    // computed independently with a Python transcription of the reference
    // C code (prng.di.unimi.it): a change to the generator is noticed.
    let mut r = Rng::new(0);
    let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
    assert_eq!(
        first,
        [
            0x99ec_5f36_cb75_f2b4,
            0xbf6e_1f78_4956_452a,
            0x1a5f_849d_4933_e6e0
        ]
    );
    let mut r = Rng::new(7);
    for _ in 0..10_000 {
        assert!(r.below(10) < 10);
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }
    let mut r = Rng::new(7);
    let hits = (0..100_000).filter(|_| r.chance(250_000)).count();
    assert!((24_000..26_000).contains(&hits), "{hits}");
}

#[test]
fn same_seed_same_sequence_different_seed_differs() {
    assert_eq!(take(&mut cluster(42), 3000), take(&mut cluster(42), 3000));
    assert_ne!(take(&mut cluster(42), 3000), take(&mut cluster(43), 3000));
    assert_eq!(take(&mut trading(42), 3000), take(&mut trading(42), 3000));
    assert_ne!(take(&mut trading(42), 3000), take(&mut trading(43), 3000));
    assert_eq!(take(&mut city(42), 3000), take(&mut city(42), 3000));
    assert_ne!(take(&mut city(42), 3000), take(&mut city(43), 3000));
}

#[test]
fn cluster_shape_rate_and_trouble() {
    let mut g = cluster(7);
    let start = g.config().start_ns;
    // Ten virtual minutes.
    // `all` ends with the first record at or after +10 min; `recs` stops
    // before it.
    let mut all = Vec::new();
    loop {
        let r = g.next_record();
        all.push(r);
        if r.source_ns >= start + 600_000_000_000 {
            break;
        }
    }
    let recs = &all[..all.len() - 1];
    let keys = |k: Kind| {
        recs.iter()
            .filter(|r| r.kind == k)
            .map(|r| r.key)
            .collect::<HashSet<_>>()
    };
    assert_eq!(keys(Kind::Node).len(), 50);
    assert_eq!(keys(Kind::Pod).len(), 2000);
    assert_eq!(keys(Kind::Deployment).len(), 80);
    assert_eq!(keys(Kind::Service).len(), 150);
    let namespaces: HashSet<_> = recs
        .iter()
        .filter(|r| r.kind == Kind::Pod)
        .map(|r| r.namespace)
        .collect();
    assert_eq!(namespaces.len(), 5);
    // 5000 changes per virtual minute, node status for 50 nodes every 5 s.
    let changes = recs.iter().filter(|r| r.kind != Kind::Node).count();
    assert_eq!(
        changes,
        10 * 5000 - 1,
        "the change at exactly +10 min is excluded"
    );
    assert_eq!(
        recs.iter().filter(|r| r.kind == Kind::Node).count(),
        120 * 50
    );
    // Resource versions strictly increase, seq is dense.
    assert!(recs
        .windows(2)
        .all(|w| w[1].resource_version == w[0].resource_version + 1));
    assert!(recs.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    // Trouble at the configured rates (20‰ of pod modifications crash
    // loop, 10‰ of node status is NotReady, 30‰ of updates edit the
    // spec), within 4 standard deviations of the binomial expectation;
    // and visible in the records.
    let s = *g.stats();
    let near = |hits: u64, n: u64, p: f64| {
        let mean = n as f64 * p;
        let sd = (mean * (1.0 - p)).sqrt();
        assert!(
            (hits as f64 - mean).abs() <= 4.0 * sd + 1.0,
            "{hits} of {n} at {p}: {s:?}"
        );
    };
    let modified = all
        .iter()
        .filter(|r| r.kind == Kind::Pod && r.op == Op::Modified)
        .count() as u64;
    near(s.crashloops, modified, 0.02);
    near(s.notready, s.node_status, 0.01);
    near(s.spec_edits, s.spec_candidates, 0.03);
    assert_eq!(
        s.node_status,
        all.iter().filter(|r| r.kind == Kind::Node).count() as u64
    );
    let notready = all
        .iter()
        .filter(|r| r.kind == Kind::Node && r.get(FieldId::Ready) == Some(FieldValue::Bool(false)))
        .count() as u64;
    assert_eq!(notready, s.notready);
    let crashing = all
        .iter()
        .filter(|r| {
            r.get(FieldId::WaitingReason) == Some(FieldValue::Sym(known::CRASH_LOOP_BACK_OFF))
        })
        .count();
    assert!(crashing as u64 >= s.crashloops, "{crashing} {s:?}");
    // Spec edits show as SpecHash changes of the same key.
    let mut last: HashMap<u64, i64> = HashMap::new();
    let mut changed = 0u64;
    for r in recs
        .iter()
        .filter(|r| matches!(r.kind, Kind::Pod | Kind::Deployment | Kind::Service))
    {
        let h = r
            .get(FieldId::SpecHash)
            .and_then(FieldValue::as_i64)
            .unwrap();
        if let Some(prev) = last.insert(r.key, h) {
            changed += u64::from(prev != h);
        }
    }
    assert!(changed > 0 && changed <= s.spec_edits, "{changed} {s:?}");
    let backoff_events = recs
        .iter()
        .filter(|r| {
            r.kind == Kind::Event
                && r.get(FieldId::EventType) == Some(FieldValue::Sym(known::WARNING))
        })
        .count();
    assert!(backoff_events > 0);
}

#[test]
fn cluster_json_lines_decode_to_the_same_records() {
    let mut g = cluster(11);
    let mut d = WatchDecoder::default();
    let mut line = Vec::with_capacity(4096);
    let mut spec_by_key: HashMap<u64, (i64, i64)> = HashMap::new();
    for _ in 0..4000 {
        let r = g.next_record();
        line.clear();
        g.write_watch_json(&r, &mut line).unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let got = match d.decode_event(&line) {
            Ok(Decoded::Change(x)) => x,
            other => panic!("{other:?} for {}", String::from_utf8_lossy(&line)),
        };
        assert_eq!(
            (got.kind, got.op, got.resource_version, got.key),
            (r.kind, r.op, r.resource_version, r.key)
        );
        assert_eq!(d.resolve(got.name), g.interner().resolve(r.name));
        // Label sets: canonical texts, written in reverse order in the JSON.
        if r.kind != Kind::Event {
            let text = r
                .get(FieldId::Labels)
                .and_then(FieldValue::as_sym)
                .and_then(|s| g.interner().resolve(s))
                .unwrap();
            let want_prefix = match r.kind {
                Kind::Node => "kubernetes.io/hostname=node-",
                Kind::Pod => "app=deploy-",
                Kind::Deployment => "app=deploy-",
                _ => "app=svc-",
            };
            assert!(text.starts_with(want_prefix), "{text}");
            if r.kind == Kind::Pod {
                assert!(text.contains(",pod-template-hash="), "{text}");
            }
        }
        assert_eq!(got.source_ns, r.source_ns);
        for f in r.fields() {
            // Labels are compared as text below (via the symbol mapping).
            assert_ne!(
                f.id,
                FieldId::LabelsHash,
                "the generator interns every label set"
            );
            if f.id == FieldId::SpecHash {
                continue;
            }
            let want = match f.value {
                FieldValue::Sym(s) => {
                    FieldValue::Sym(d.interner().get(g.interner().resolve(s).unwrap()).unwrap())
                }
                v => v,
            };
            assert_eq!(got.get(f.id), Some(want), "{:?} of {:?}", f.id, r.kind);
        }
        // The decoder's spec hash changes exactly when the generator's does.
        if let (Some(a), Some(b)) = (r.get(FieldId::SpecHash), got.get(FieldId::SpecHash)) {
            let (a, b) = (a.as_i64().unwrap(), b.as_i64().unwrap());
            if let Some((pa, pb)) = spec_by_key.insert(r.key, (a, b)) {
                assert_eq!(pa == a, pb == b);
            }
        }
    }
    assert_eq!(d.stats().errors.total(), 0);
}

#[test]
fn trading_shape_and_spikes() {
    let mut g = TradingGenerator::new(TradingConfig {
        seed: 5,
        spike_per_million: 2000,
        ..TradingConfig::default()
    });
    assert_eq!(g.instruments(), 168);
    let mut prev: HashMap<u64, f64> = HashMap::new();
    let mut jumps = 0u64;
    let mut classes = HashSet::new();
    let start = g.config().start_ns;
    let n = 200_000u64;
    for i in 0..n {
        let r = g.next_record();
        assert_eq!(r.kind, Kind::Tick);
        assert_eq!(r.source_ns, start + (i as i64 + 1) * 100);
        classes.insert(r.namespace);
        let p = r.get(FieldId::Price).and_then(FieldValue::as_f64).unwrap();
        assert!(p > 0.0);
        if let Some(q) = prev.insert(r.key, p) {
            jumps += u64::from((p / q - 1.0).abs() > 0.04);
        }
    }
    assert_eq!(prev.len(), 168);
    assert_eq!(classes.len(), 4);
    let s = *g.stats();
    assert!((320..480).contains(&s.spikes), "{s:?}");
    // Every spike is a visible jump, except one on an instrument's first tick.
    assert!(
        jumps <= s.spikes && jumps + 168 >= s.spikes,
        "{jumps} {s:?}"
    );
    let names: HashSet<_> = prev.keys().collect();
    assert_eq!(names.len(), 168);
    let r = g.next_record();
    assert!(matches!(g.decoder().resolve(r.name), Some(n) if !n.is_empty() && n.len() <= 8));
}

#[test]
fn smart_city_shape_and_outliers() {
    let mut g = city(9);
    let mut devices = HashSet::new();
    let mut edges = HashSet::new();
    let mut per_type = [0u32; 4];
    let mut outliers = 0u64;
    for _ in 0..100_000 {
        let r = g.next_record();
        assert_eq!((r.kind, r.op), (Kind::Sensor, Op::Modified));
        devices.insert(r.key);
        edges.insert(
            r.get(FieldId::EdgeNode)
                .and_then(FieldValue::as_i64)
                .unwrap(),
        );
        let t = DeviceType::ALL
            .into_iter()
            .find(|t| g.decoder().type_symbol(*t) == r.namespace)
            .unwrap();
        per_type[t as usize] += 1;
        let v = r.get(FieldId::Value).and_then(FieldValue::as_f64).unwrap();
        outliers += u64::from(SmartCityGenerator::is_outlier(t, v));
    }
    // One full cycle: every device exactly once.
    assert_eq!(devices.len(), 100_000);
    assert_eq!(edges.len(), 200);
    assert_eq!(per_type, [25_000; 4]);
    assert_eq!(outliers, g.stats().outliers);
    assert!((70..130).contains(&outliers), "{outliers}");
    assert!(
        g.decoder().interner().len() <= 64,
        "device ids are not interned"
    );
}

#[test]
fn drive_paces_generators() {
    let mut g = trading(1);
    let t = Instant::now();
    let mut n = 0;
    drive(&mut g, 30, Pace::Rate(1000.0), |_| n += 1);
    assert_eq!(n, 30);
    assert!(
        t.elapsed() >= Duration::from_millis(29),
        "{:?}",
        t.elapsed()
    );
    // The cluster's virtual clock runs a change every 12 ms; at 10× speed
    // 11 records (the first node sweep is at t = 0) take at least 1.2 ms.
    let mut g = ClusterGenerator::new(ClusterConfig {
        nodes: 1,
        ..ClusterConfig::default()
    });
    let t = Instant::now();
    drive(&mut g, 11, Pace::Recorded { speedup: 10.0 }, |_| {});
    assert!(
        t.elapsed() >= Duration::from_micros(1200),
        "{:?}",
        t.elapsed()
    );
    let mut g = city(1);
    let t = Instant::now();
    drive(&mut g, 10_000, Pace::FlatOut, |_| {});
    assert!(t.elapsed() < Duration::from_secs(5));
}
