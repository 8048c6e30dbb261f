//! Resources and notify together: selective updates, the k8s:events messages, drift, and
//! state sync (a snapshot plus the deltas after it equals the final state).

use std::collections::BTreeMap;
use std::sync::Arc;

use ebbflow::engine::{PipelineBuilder, Placement, WaitStrategy};
use ebbflow::flow::commands::CommandDesk;
use ebbflow::flow::notify::{
    topics, MemoryPublisher, NotifyConfig, NotifyStage, OwnedMessage, Shared,
};
use ebbflow::flow::resources::{ResourcesStage, SnapshotSlot};
use ebbflow::flow::{Command, Item};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::{Interner, InternerConfig};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use serde_json::Value;

/// Runs `items` through resources → notify on one parked thread and returns the messages.
fn run(
    items: Vec<Item>,
    resolver: ebbflow::sources::intern::Resolver,
    desk: Arc<CommandDesk>,
) -> Vec<OwnedMessage> {
    let publisher = MemoryPublisher::new();
    let snapshots = SnapshotSlot::with_capacity(1 << 14);
    let notify = NotifyStage::new(
        Box::new(publisher.clone()),
        resolver,
        None,
        snapshots.clone(),
        Arc::new(Shared::default()),
        desk,
        NotifyConfig::default(),
    );
    let (pipeline, mut input, mut output) = PipelineBuilder::<Item>::new()
        .stage("resources", ResourcesStage::new(1 << 14, snapshots))
        .stage("notify", notify)
        .placement(Placement::Fused)
        .wait(WaitStrategy::Park)
        .build()
        .expect("valid pipeline");
    for item in items {
        input.push(item).expect("pipeline accepts");
    }
    pipeline.finish(&mut output, |_| {}).expect("clean finish");
    publisher.take()
}

fn generated(n: usize) -> (Vec<Record>, ebbflow::sources::intern::Resolver) {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 300,
        ..ClusterConfig::default()
    });
    let recs = (0..n).map(|_| g.next_record()).collect();
    (recs, g.interner().resolver())
}

#[test]
fn a_record_equal_to_the_stored_state_does_not_go_on() {
    let mut interner = Interner::new(InternerConfig::default());
    let ns = interner.intern("default");
    let name = interner.intern("web-1");
    let mut r = Record::new(Kind::Pod, Op::Added);
    r.key = 42;
    r.namespace = ns;
    r.name = name;
    r.push(FieldId::RestartsTotal, FieldValue::I64(1));
    let mut same = r;
    same.op = Op::Modified;
    same.resource_version = 99; // a resourceVersion bump alone is not a change
    let mut bumped = Record::new(Kind::Pod, Op::Modified);
    bumped.key = 42;
    bumped.namespace = ns;
    bumped.name = name;
    bumped.push(FieldId::RestartsTotal, FieldValue::I64(2));
    let msgs = run(
        vec![
            Item::from_record(r),
            Item::from_record(same),
            Item::from_record(bumped),
        ],
        interner.resolver(),
        Arc::new(CommandDesk::new()),
    );
    let changes: Vec<&OwnedMessage> = msgs
        .iter()
        .filter(|m| m.topic == topics::K8S_EVENTS)
        .collect();
    assert_eq!(changes.len(), 2, "created + one real update: {changes:#?}");
    assert_eq!(changes[0].payload["change"], "created");
    assert_eq!(changes[1].payload["change"], "updated");
    assert_eq!(
        changes[1].payload["changed"],
        serde_json::json!(["RestartsTotal"])
    );
    assert_eq!(changes[1].payload["prev"]["RestartsTotal"], 1);
    assert_eq!(changes[1].payload["object"]["fields"]["RestartsTotal"], 2);
    assert_eq!(changes[1].payload["object"]["name"], "web-1");
    assert_eq!(changes[1].payload["object"]["namespace"], "default");
}

/// Applies `state` deltas (in order) to a map keyed by object key.
fn apply_delta(state: &mut BTreeMap<String, Value>, m: &OwnedMessage) {
    let obj = &m.payload["object"];
    let key = obj["key"].as_str().unwrap().to_owned();
    match m.payload["change"].as_str().unwrap() {
        "deleted" => {
            state.remove(&key);
        }
        _ => {
            state.insert(key, obj["fields"].clone());
        }
    }
}

#[test]
fn snapshot_plus_later_deltas_equals_the_final_state() {
    let (recs, resolver) = generated(6000);
    let desk = Arc::new(CommandDesk::new());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut items: Vec<Item> = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        if i == 3000 {
            let tx = tx.clone();
            let cmd = desk.submit(Command::Snapshot { request: 0 }, move |o| {
                tx.send(o).unwrap();
            });
            items.push(Item::from_command(cmd));
        }
        items.push(Item::from_record(*r));
    }
    let tx2 = tx.clone();
    let last = desk.submit(Command::Snapshot { request: 0 }, move |o| {
        tx2.send(o).unwrap();
    });
    items.push(Item::from_command(last));
    let msgs = run(items, resolver, desk.clone());
    let first_reply = rx.recv().unwrap();
    let last_reply = rx.recv().unwrap();
    assert!(first_reply.detail > 0.0 && last_reply.detail > 0.0);
    assert_eq!(desk.pending(), 0, "both snapshot requests were answered");

    let state_msgs: Vec<&OwnedMessage> = msgs.iter().filter(|m| m.topic == topics::STATE).collect();
    // Split into: snapshot 1, deltas, snapshot 2.
    let mut snapshots: Vec<BTreeMap<String, Value>> = Vec::new();
    let mut deltas_after_first: Vec<&OwnedMessage> = Vec::new();
    let mut current: Option<BTreeMap<String, Value>> = None;
    for m in &state_msgs {
        match m.event.as_str() {
            "snapshot_begin" => current = Some(BTreeMap::new()),
            "snapshot_chunk" => {
                let cur = current.as_mut().expect("chunk inside a snapshot");
                for o in m.payload["objects"].as_array().unwrap() {
                    cur.insert(o["key"].as_str().unwrap().to_owned(), o["fields"].clone());
                }
            }
            "snapshot_end" => snapshots.push(current.take().unwrap()),
            "delta" if snapshots.len() == 1 => deltas_after_first.push(m),
            _ => {}
        }
    }
    assert_eq!(snapshots.len(), 2);
    assert!(
        deltas_after_first.len() > 100,
        "the second half produced changes"
    );
    let mut rebuilt = snapshots[0].clone();
    let mut last_seq = 0;
    for d in &deltas_after_first {
        let seq = d.payload["object"]["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "deltas are ordered by sequence");
        last_seq = seq;
        apply_delta(&mut rebuilt, d);
    }
    assert_eq!(rebuilt.len(), snapshots[1].len());
    assert!(rebuilt == snapshots[1], "snapshot + deltas == final state");
}

#[test]
fn a_spec_edit_is_drift_and_going_back_is_a_correction() {
    let mut interner = Interner::new(InternerConfig::default());
    let ns = interner.intern("prod");
    let name = interner.intern("api");
    let dep = |rv: u64, spec: u64, ready: i64| {
        let mut r = Record::new(
            Kind::Deployment,
            if rv == 1 { Op::Added } else { Op::Modified },
        );
        r.key = 7;
        r.seq = rv;
        r.namespace = ns;
        r.name = name;
        r.resource_version = rv;
        r.push(FieldId::SpecHash, FieldValue::I64(spec as i64));
        r.push(FieldId::ReplicasReady, FieldValue::I64(ready));
        Item::from_record(r)
    };
    let msgs = run(
        vec![
            dep(1, 0xaaaa, 3),
            dep(2, 0xaaaa, 2),
            dep(3, 0xbbbb, 2),
            dep(4, 0xbbbb, 1), // drifted, spec unchanged: no new drift event
            dep(5, 0xcccc, 1),
            dep(6, 0xaaaa, 3),
        ],
        interner.resolver(),
        Arc::new(CommandDesk::new()),
    );
    let drift: Vec<(&str, &str, u64)> = msgs
        .iter()
        .filter(|m| m.topic == topics::DRIFT)
        .map(|m| {
            (
                m.event.as_str(),
                m.payload["observed"].as_str().unwrap(),
                m.payload["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        drift,
        vec![
            ("drift", "000000000000bbbb", 3),
            ("drift", "000000000000cccc", 5),
            ("corrected", "000000000000aaaa", 6),
        ]
    );
    let baseline = msgs.iter().find(|m| m.topic == topics::DRIFT).unwrap();
    assert_eq!(baseline.payload["baseline"], "000000000000aaaa");
    assert_eq!(baseline.payload["name"], "api");
}

#[test]
fn deletes_remove_state_and_are_published_with_the_last_known_fields() {
    let mut interner = Interner::new(InternerConfig::default());
    let name = interner.intern("gone");
    let mut add = Record::new(Kind::ConfigMap, Op::Added);
    add.key = 5;
    add.name = name;
    add.push(FieldId::DataCount, FieldValue::I64(3));
    let mut del = Record::new(Kind::ConfigMap, Op::Deleted);
    del.key = 5;
    del.name = name;
    let msgs = run(
        vec![
            Item::from_record(add),
            Item::from_record(del),
            Item::from_record(add),
        ],
        interner.resolver(),
        Arc::new(CommandDesk::new()),
    );
    let changes: Vec<(&str, Value)> = msgs
        .iter()
        .filter(|m| m.topic == topics::K8S_EVENTS)
        .map(|m| {
            (
                m.payload["change"].as_str().unwrap(),
                m.payload["object"]["fields"]["DataCount"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("created", 3.into()),
            ("deleted", 3.into()),
            ("created", 3.into())
        ],
        "after a delete the same object is new again"
    );
}
