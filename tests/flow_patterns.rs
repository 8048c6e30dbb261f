//! The ten reverse-flow patterns, end to end: each test drives a scenario through the whole
//! chain (reactor → resources → distribution → bitactor → schema → turtle → typer → notify)
//! and asserts the messages on the pattern's topic.

use std::sync::mpsc;
use std::time::Duration;

use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::{FlowConfig, ReverseFlow, STAGE_NAMES};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::{topics, MemoryPublisher, OwnedMessage};
use ebbflow::flow::ReplyCode;
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::{known, Interner, InternerConfig};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

const RULES: &str = include_str!("../examples/rules/default.rules");

fn config(scenario: &'static str) -> FlowConfig {
    let mut c = FlowConfig::new(
        scenario,
        RuleSet::parse(RULES).expect("default rules parse"),
    );
    c.wait = WaitStrategy::Park;
    c.store_capacity = 1 << 14;
    c.actor.capacity_log2 = 14;
    c
}

fn on(msgs: &[OwnedMessage], topic: &str) -> Vec<OwnedMessage> {
    msgs.iter().filter(|m| m.topic == topic).cloned().collect()
}

fn events(msgs: &[OwnedMessage], topic: &str, event: &str) -> Vec<OwnedMessage> {
    msgs.iter()
        .filter(|m| m.topic == topic && m.event == event)
        .cloned()
        .collect()
}

fn pod(
    interner: &mut Interner,
    name: &str,
    seq: u64,
    op: Op,
    waiting: Option<&str>,
    restarts: i64,
) -> Record {
    let ns = interner.intern("shop");
    let n = interner.intern(name);
    let mut r = Record::new(Kind::Pod, op);
    r.key = ebbflow::sources::hash::key_of(b"Pod", b"shop", name.as_bytes());
    r.seq = seq;
    r.namespace = ns;
    r.name = n;
    r.resource_version = 100 + seq;
    r.push(FieldId::Phase, FieldValue::Sym(known::RUNNING));
    r.push(FieldId::Ready, FieldValue::Bool(waiting.is_none()));
    r.push(FieldId::RestartsTotal, FieldValue::I64(restarts));
    if let Some(w) = waiting {
        let w = interner.intern(w);
        r.push(FieldId::WaitingReason, FieldValue::Sym(w));
    }
    r
}

/// Runs `records` through a fresh flow and returns every message.
fn run(cfg: FlowConfig, interner: &mut Interner, records: &[Record]) -> Vec<OwnedMessage> {
    let publisher = MemoryPublisher::new();
    let mut flow =
        ReverseFlow::start(cfg, interner, Box::new(publisher.clone())).expect("flow starts");
    for r in records {
        flow.push_record(*r).expect("accepted");
    }
    flow.finish().expect("clean finish");
    publisher.take()
}

#[test]
fn k8s_feedback_a_crashlooping_pod_alerts_once_with_a_recovery_hint_and_clears() {
    let mut i = Interner::new(InternerConfig::default());
    let recs = vec![
        pod(&mut i, "cart-1", 1, Op::Added, None, 0),
        pod(
            &mut i,
            "cart-1",
            2,
            Op::Modified,
            Some("CrashLoopBackOff"),
            1,
        ),
        pod(
            &mut i,
            "cart-1",
            3,
            Op::Modified,
            Some("CrashLoopBackOff"),
            2,
        ),
        pod(&mut i, "cart-1", 4, Op::Modified, None, 2),
    ];
    let msgs = run(config("k8s"), &mut i, &recs);
    let changes = on(&msgs, topics::K8S_EVENTS);
    assert_eq!(changes.len(), 4, "every change is published");
    let alerts = events(&msgs, topics::FEEDBACK, "alert");
    let crash: Vec<_> = alerts
        .iter()
        .filter(|m| m.payload["rule_name"] == "pod_crashloop")
        .collect();
    assert_eq!(
        crash.len(),
        1,
        "edge-triggered: one alert while it keeps crashing: {alerts:#?}"
    );
    assert_eq!(crash[0].payload["name"], "cart-1");
    assert_eq!(crash[0].payload["severity"], "critical");
    assert_eq!(crash[0].payload["seq"], 2);
    let hints = events(&msgs, topics::RECOVERY, "hint");
    let hint = hints
        .iter()
        .find(|m| m.payload["rule_name"] == "pod_crashloop")
        .expect("a recovery hint");
    assert!(hint.payload["hint"]
        .as_str()
        .unwrap()
        .contains("kubectl logs"));
    let cleared = events(&msgs, topics::FEEDBACK, "cleared");
    assert!(
        cleared
            .iter()
            .any(|m| m.payload["rule_name"] == "pod_crashloop" && m.payload["seq"] == 4),
        "recovering clears the alert: {cleared:#?}"
    );
    assert!(events(&msgs, topics::RECOVERY, "recovered")
        .iter()
        .any(|m| m.payload["seq"] == 4));
}

#[test]
fn failure_recovery_a_not_ready_node_and_a_410_get_recovery_messages() {
    let mut i = Interner::new(InternerConfig::default());
    let name = i.intern("node-7");
    let node = |seq: u64, ready: bool| {
        let mut r = Record::new(Kind::Node, if seq == 1 { Op::Added } else { Op::Modified });
        r.key = 77;
        r.seq = seq;
        r.name = name;
        r.push(FieldId::Ready, FieldValue::Bool(ready));
        r
    };
    let mut gone = Record::new(Kind::Status, Op::Error);
    gone.seq = 3;
    gone.push(FieldId::StatusCode, FieldValue::I64(410));
    let msgs = run(
        config("k8s"),
        &mut i,
        &[node(1, true), node(2, false), gone],
    );
    let hints = events(&msgs, topics::RECOVERY, "hint");
    assert!(
        hints
            .iter()
            .any(|m| m.payload["rule_name"] == "node_not_ready" && m.payload["name"] == "node-7"),
        "{hints:#?}"
    );
    let relist = events(&msgs, topics::RECOVERY, "relist");
    assert_eq!(relist.len(), 1);
    assert_eq!(relist[0].payload["seq"], 3);
}

#[test]
fn reactor_notifications_injected_faults_are_retried_compensated_and_reported() {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 200,
        ..ClusterConfig::default()
    });
    let recs: Vec<Record> = (0..3000).map(|_| g.next_record()).collect();
    let mut cfg = config("k8s");
    cfg.transient_faults_per_million = 20_000;
    cfg.permanent_faults_per_million = 2_000;
    let msgs = run(cfg, g.interner_mut(), &recs);
    let retried = events(&msgs, topics::REACTOR_STEPS, "retried");
    let failed = events(&msgs, topics::REACTOR_STEPS, "failed");
    assert!(
        !retried.is_empty(),
        "2% transient faults over 3000 records must retry"
    );
    assert!(
        !failed.is_empty(),
        "0.2% permanent faults over 3000 records must fail a chain"
    );
    for m in &retried {
        assert!(m.payload["attempt"].as_u64().unwrap() >= 1);
        assert!(m.payload["name"].is_string());
    }
    // The engine's own recovery is visible on the recovery topic too.
    assert_eq!(
        events(&msgs, topics::RECOVERY, "retried").len(),
        retried.len()
    );
    // Every record either completed (and was diffed) or failed: nothing vanished.
    let published_changes = on(&msgs, topics::K8S_EVENTS).len();
    assert!(published_changes > 0);
}

#[test]
fn bidirectional_a_threshold_command_changes_which_ticks_alert_and_is_answered() {
    let mut g = TradingGenerator::new(TradingConfig {
        spike_per_million: 0,
        volatility: 0.03,
        ..TradingConfig::default()
    });
    let recs: Vec<Record> = (0..4000).map(|_| g.next_record()).collect();
    let interner = g.decoder_mut().interner_mut();
    let publisher = MemoryPublisher::new();
    let mut flow =
        ReverseFlow::start(config("trading"), interner, Box::new(publisher.clone())).unwrap();
    for r in &recs[..2000] {
        flow.push_record(*r).unwrap();
    }
    // Bad arguments are rejected before they enter the pipeline.
    assert!(flow
        .submit(
            "set_threshold",
            br#"{"rule":"price_move","value":"high"}"#,
            |_| {}
        )
        .is_err());
    assert!(flow
        .submit(
            "set_threshold",
            br#"{"rule":"no_such_rule","value":1}"#,
            |_| {}
        )
        .is_err());
    let (tx, rx) = mpsc::channel();
    flow.submit(
        "set_threshold",
        br#"{"rule":"price_move","value":50}"#,
        move |o| {
            tx.send(o).unwrap();
        },
    )
    .unwrap();
    for r in &recs[2000..] {
        flow.push_record(*r).unwrap();
    }
    flow.finish().unwrap();
    let outcome = rx.recv_timeout(Duration::from_secs(5)).expect("a reply");
    assert_eq!(outcome.code, ReplyCode::Ok);
    assert_eq!(
        outcome.detail, 2.0,
        "the reply carries the previous threshold"
    );
    let msgs = publisher.take();
    let applied = events(&msgs, topics::COMMANDS, "applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["value"], 50.0);
    let seq_of_change = |m: &OwnedMessage| m.payload["seq"].as_u64().unwrap();
    let moves: Vec<u64> = events(&msgs, topics::FEEDBACK, "alert")
        .iter()
        .filter(|m| m.payload["rule_name"] == "price_move")
        .map(seq_of_change)
        .collect();
    let boundary = recs[1999].seq;
    assert!(
        moves.iter().any(|&s| s <= boundary),
        "3% steps break a 2% band before the change"
    );
    assert!(
        moves.iter().all(|&s| s <= boundary),
        "no 50% move exists, so nothing alerts after the change: {moves:?}"
    );
}

#[test]
fn realtime_monitoring_analytics_and_dashboard_publish_on_ticks() {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 200,
        ..ClusterConfig::default()
    });
    let mut cfg = config("k8s");
    cfg.notify.window = Duration::from_millis(100);
    cfg.notify.dashboard_interval = Duration::from_millis(50);
    let publisher = MemoryPublisher::new();
    let mut flow = ReverseFlow::start(cfg, g.interner_mut(), Box::new(publisher.clone())).unwrap();
    // 1 s of virtual time in 10 ms ticks, 20 records per tick.
    let t0 = 1_000_000_000_000i64;
    for step in 0..=100i64 {
        for _ in 0..20 {
            flow.push_record(g.next_record()).unwrap();
        }
        if step % 10 == 0 {
            let _ = flow.stats(); // stores the snapshot the monitoring topic publishes
        }
        flow.tick(t0 + step * 10_000_000).unwrap();
        flow.flush();
        std::thread::sleep(Duration::from_millis(1));
    }
    flow.finish().unwrap();
    let msgs = publisher.take();
    let dash = events(&msgs, topics::DASHBOARD, "update");
    assert!(
        (18..=21).contains(&dash.len()),
        "1 s at one update per 50 ms: about 20 updates, coalesced, got {}",
        dash.len()
    );
    let changes = on(&msgs, topics::K8S_EVENTS).len() as u64;
    let totals: Vec<u64> = dash
        .iter()
        .map(|d| d.payload["events_total"].as_u64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "totals only grow");
    assert!(
        *totals.last().unwrap() > changes / 2 && *totals.last().unwrap() <= changes,
        "the dashboard counts the changes it saw: {totals:?} vs {changes}"
    );
    let windows = events(&msgs, topics::ANALYTICS, "window");
    assert!((9..=10).contains(&windows.len()), "{}", windows.len());
    let w = &windows[3].payload;
    assert!(w["per_kind"]["Pod"].as_f64().unwrap() > 0.0);
    assert!(w["per_namespace"].as_object().unwrap().len() >= 2);
    let top = w["top_keys"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 10);
    let counts: Vec<u64> = top
        .iter()
        .map(|t| t["count_at_least"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|p| p[0] >= p[1]),
        "top keys sorted: {counts:?}"
    );
    let summaries = events(&msgs, topics::REACTOR_STEPS, "summary");
    assert_eq!(
        summaries.len(),
        windows.len(),
        "one reactor summary per window"
    );
    let s = &summaries[3].payload;
    assert!(s["completed"].as_u64().unwrap() > 0);
    assert_eq!(
        s["finished"],
        s["completed"].as_u64().unwrap() + s["failed"].as_u64().unwrap()
    );
    assert!(
        s["mean_duration_ns"].as_f64().unwrap() > 0.0,
        "per-step timing is on by default"
    );
    let mon = events(&msgs, topics::MONITORING, "stats");
    assert!(!mon.is_empty());
    let stages: Vec<&str> = mon[0].payload["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, STAGE_NAMES);
}

#[test]
fn config_drift_generated_spec_edits_become_drift_events() {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 100,
        spec_edit_per_million: 100_000,
        ..ClusterConfig::default()
    });
    let recs: Vec<Record> = (0..3000).map(|_| g.next_record()).collect();
    let msgs = run(config("k8s"), g.interner_mut(), &recs);
    let drift = events(&msgs, topics::DRIFT, "drift");
    assert!(
        drift.len() > 10,
        "10% spec edits must drift: {}",
        drift.len()
    );
    for d in &drift {
        assert_ne!(d.payload["baseline"], d.payload["observed"]);
    }
}

#[test]
fn schema_grows_once_per_new_shape_and_publishes_turtle_and_models() {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 100,
        ..ClusterConfig::default()
    });
    let recs: Vec<Record> = (0..2000).map(|_| g.next_record()).collect();
    let msgs = run(config("k8s"), g.interner_mut(), &recs);
    let versions = events(&msgs, topics::SCHEMA, "version");
    assert!(!versions.is_empty());
    let nums: Vec<u64> = versions
        .iter()
        .map(|m| m.payload["version"].as_u64().unwrap())
        .collect();
    assert!(
        nums.windows(2).all(|w| w[0] < w[1]),
        "versions only grow: {nums:?}"
    );
    assert!(
        nums.len() < 40,
        "the schema settles: {} bumps for 2000 records",
        nums.len()
    );
    let last = &versions.last().unwrap().payload;
    assert!(last["turtle"].as_str().unwrap().contains("owl:Class"));
    assert!(last["python"].as_str().unwrap().contains("@dataclass"));
    assert!(last["json_schema"].as_str().unwrap().contains("2020-12"));
}

#[test]
fn state_sync_a_snapshot_requested_by_a_client_plus_later_deltas_equals_the_final_state() {
    use std::collections::BTreeMap;
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 150,
        ..ClusterConfig::default()
    });
    let recs: Vec<Record> = (0..4000).map(|_| g.next_record()).collect();
    let publisher = MemoryPublisher::new();
    let mut flow =
        ReverseFlow::start(config("k8s"), g.interner_mut(), Box::new(publisher.clone())).unwrap();
    let (tx, rx) = mpsc::channel();
    for (i, r) in recs.iter().enumerate() {
        if i == 2000 || i == recs.len() - 1 {
            let tx = tx.clone();
            flow.submit("snapshot", b"{}", move |o| tx.send(o).unwrap())
                .unwrap();
        }
        flow.push_record(*r).unwrap();
    }
    flow.finish().unwrap();
    let replies: Vec<_> = rx.try_iter().collect();
    assert_eq!(replies.len(), 2, "each snapshot request is answered");
    assert!(replies
        .iter()
        .all(|o| o.code == ReplyCode::Ok && o.detail > 100.0));
    let msgs = publisher.take();
    let mut snaps: Vec<BTreeMap<String, serde_json::Value>> = Vec::new();
    let mut cur = BTreeMap::new();
    let mut deltas = Vec::new();
    for m in on(&msgs, topics::STATE) {
        match m.event.as_str() {
            "snapshot_begin" => cur.clear(),
            "snapshot_chunk" => {
                for o in m.payload["objects"].as_array().unwrap() {
                    cur.insert(o["key"].as_str().unwrap().to_owned(), o["fields"].clone());
                }
            }
            "snapshot_end" => snaps.push(std::mem::take(&mut cur)),
            "delta" if snaps.len() == 1 => deltas.push(m),
            _ => {}
        }
    }
    assert_eq!(snaps.len(), 2);
    let mut rebuilt = snaps[0].clone();
    for d in &deltas {
        let o = &d.payload["object"];
        let key = o["key"].as_str().unwrap().to_owned();
        if d.payload["change"] == "deleted" {
            rebuilt.remove(&key);
        } else {
            rebuilt.insert(key, o["fields"].clone());
        }
    }
    assert!(rebuilt == snaps[1], "snapshot + deltas == final state");
    // The same snapshots as Turtle instances parse in a real Turtle parser, one typed
    // instance per object.
    let instances: Vec<&OwnedMessage> = msgs
        .iter()
        .filter(|m| m.topic == topics::SCHEMA && m.event == "instances")
        .collect();
    assert!(!instances.is_empty());
    let mut typed = 0usize;
    for m in instances
        .iter()
        .filter(|m| m.payload["request"] == instances[0].payload["request"])
    {
        let text = m.payload["turtle"].as_str().unwrap();
        for t in oxttl::TurtleParser::new().for_slice(text.as_bytes()) {
            let t = t.expect("valid Turtle");
            if t.predicate.as_str() == "http://www.w3.org/1999/02/22-rdf-syntax-ns#type" {
                typed += 1;
            }
        }
    }
    assert_eq!(
        typed,
        snaps[0].len(),
        "one rdf:type per object in the first snapshot"
    );
}

#[test]
fn bidirectional_a_command_the_stage_refuses_gets_an_error_reply_and_changes_nothing() {
    let mut i = Interner::new(InternerConfig::default());
    let recs = vec![
        pod(&mut i, "api-1", 1, Op::Added, None, 0),
        pod(
            &mut i,
            "api-1",
            2,
            Op::Modified,
            Some("CrashLoopBackOff"),
            1,
        ),
    ];
    let publisher = MemoryPublisher::new();
    let mut flow = ReverseFlow::start(config("k8s"), &mut i, Box::new(publisher.clone())).unwrap();
    for r in &recs {
        flow.push_record(*r).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    // No alert is active for this key: refused by the bitactor, in stream order.
    let t = tx.clone();
    flow.submit(
        "ack_alert",
        br#"{"rule":"pod_crashloop","key":"00000000000000aa"}"#,
        move |o| t.send(o).unwrap(),
    )
    .unwrap();
    // The crash-looping pod's alert is active: acknowledged.
    let key = format!("{:016x}", recs[1].key);
    let payload = format!(r#"{{"rule":"pod_crashloop","key":"{key}"}}"#);
    flow.submit("ack_alert", payload.as_bytes(), move |o| {
        tx.send(o).unwrap()
    })
    .unwrap();
    flow.finish().unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first.code, ReplyCode::UnknownAlert);
    assert_eq!(second.code, ReplyCode::Ok);
    let msgs = publisher.take();
    assert_eq!(events(&msgs, topics::COMMANDS, "rejected").len(), 1);
    let applied = events(&msgs, topics::COMMANDS, "applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["key"], key.as_str());
}

#[test]
fn reactor_records_waiting_for_a_retry_at_shutdown_are_not_lost() {
    let mut g = ClusterGenerator::new(ClusterConfig {
        pods: 50,
        ..ClusterConfig::default()
    });
    let recs: Vec<Record> = (0..300).map(|_| g.next_record()).collect();
    let mut cfg = config("k8s");
    // Every k8s step fails transiently: every record parks for a retry with a 1 ms+ backoff,
    // and the input closes long before the last attempts are due.
    cfg.transient_faults_per_million = 1_000_000;
    let msgs = run(cfg, g.interner_mut(), &recs);
    let failed = events(&msgs, topics::REACTOR_STEPS, "failed");
    let failed_seqs: std::collections::BTreeSet<u64> = failed
        .iter()
        .map(|m| m.payload["seq"].as_u64().unwrap())
        .collect();
    let pushed: std::collections::BTreeSet<u64> = recs.iter().map(|r| r.seq).collect();
    assert_eq!(
        failed_seqs, pushed,
        "each record's chain ran to its end and was reported"
    );
}
