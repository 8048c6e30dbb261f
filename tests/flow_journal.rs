//! event_sourcing_reverse: every input is journaled before processing, the `journal` topic
//! reports it, and replaying the journal into a fresh engine rebuilds exactly the live
//! run's resource state and schema version, for each scenario.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::{FlowConfig, ReverseFlow};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::{topics, MemoryPublisher, OwnedMessage};
use ebbflow::journal::{Durability, Journal, JournalConfig, JournalReader, ReplayFrom};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::Record;
use serde_json::Value;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!(
        "ebbflow-flow-journal-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    Dir(d)
}

fn config() -> FlowConfig {
    let rules = RuleSet::parse(include_str!("../examples/rules/default.rules")).unwrap();
    let mut c = FlowConfig::new("replay", rules);
    c.wait = WaitStrategy::Park;
    c.store_capacity = 1 << 14;
    c.actor.capacity_log2 = 14;
    c
}

/// Final state (object key → fields) and schema version of a run.
type Final = (BTreeMap<String, Value>, u32);

/// Pushes `records`, asks for a snapshot at the end, and returns the final state.
fn run(
    interner: &mut Interner,
    records: impl Iterator<Item = Record>,
    journal: Option<Journal>,
) -> (Final, Vec<OwnedMessage>) {
    let publisher = MemoryPublisher::new();
    let mut flow =
        ReverseFlow::start_journaled(config(), interner, Box::new(publisher.clone()), journal)
            .unwrap();
    for r in records {
        flow.push_record(r).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    flow.submit("snapshot", b"{}", move |o| tx.send(o).unwrap())
        .unwrap();
    let shared = flow.shared().clone();
    flow.finish().unwrap();
    rx.recv().unwrap();
    let version = shared.schema.lock().unwrap().version;
    let msgs = publisher.take();
    let mut state = BTreeMap::new();
    for m in msgs
        .iter()
        .filter(|m| m.topic == topics::STATE && m.event == "snapshot_chunk")
    {
        for o in m.payload["objects"].as_array().unwrap() {
            state.insert(o["key"].as_str().unwrap().to_owned(), o["fields"].clone());
        }
    }
    ((state, version), msgs)
}

fn replay_equals_live(name: &str, interner: &mut Interner, records: Vec<Record>) {
    let d = dir(name);
    let journal = Journal::open(
        &d.0,
        JournalConfig {
            durability: Durability::EveryBatch,
            ..JournalConfig::default()
        },
    )
    .unwrap();
    let (live, msgs) = run(interner, records.iter().copied(), Some(journal));
    assert!(!live.0.is_empty(), "{name}: the live run kept state");
    // The journal topic reported the opening and the appends.
    let journal_msgs: Vec<&OwnedMessage> =
        msgs.iter().filter(|m| m.topic == topics::JOURNAL).collect();
    assert!(
        journal_msgs.iter().any(|m| m.event == "recovered"),
        "{name}: open reported"
    );
    let appended: u64 = journal_msgs
        .iter()
        .filter(|m| m.event == "appended")
        .map(|m| m.payload["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(
        appended,
        records.len() as u64,
        "{name}: every record journaled and reported"
    );

    let reader = JournalReader::open(&d.0).unwrap();
    let replayed: Vec<Record> = reader
        .entries(ReplayFrom::Start)
        .unwrap()
        .map(|e| e.unwrap().1)
        .collect();
    assert_eq!(replayed.len(), records.len());
    let (again, _) = run(interner, replayed.into_iter(), None);
    assert_eq!(again.1, live.1, "{name}: same schema version");
    assert_eq!(
        again.0.len(),
        live.0.len(),
        "{name}: same number of objects"
    );
    assert!(
        again.0 == live.0,
        "{name}: replay rebuilt exactly the live state"
    );
}

#[test]
fn replaying_the_journal_rebuilds_the_live_state_k8s() {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 300,
        ..ClusterConfig::default()
    });
    let recs: Vec<Record> = (0..5000).map(|_| g.next_record()).collect();
    replay_equals_live("k8s", g.interner_mut(), recs);
}

#[test]
fn replaying_the_journal_rebuilds_the_live_state_trading() {
    let mut g = TradingGenerator::new(TradingConfig::default());
    let recs: Vec<Record> = (0..5000).map(|_| g.next_record()).collect();
    replay_equals_live("trading", g.decoder_mut().interner_mut(), recs);
}

#[test]
fn replaying_the_journal_rebuilds_the_live_state_iot() {
    let mut g = SmartCityGenerator::new(SmartCityConfig {
        devices: 2000,
        ..SmartCityConfig::default()
    });
    let recs: Vec<Record> = (0..5000).map(|_| g.next_record()).collect();
    replay_equals_live("iot", g.decoder_mut().interner_mut(), recs);
}
