//! The reverse flow served over the channels: notify's messages reach an in-process
//! subscriber through the broadcast thread, and a WebSocket client's commands enter the
//! flow and are answered — applied, or refused with a specific code.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use ebbflow::channels::{bus, Server, ServerConfig};
use ebbflow::engine::WaitStrategy;
use ebbflow::flow::assembly::{FlowConfig, ReverseFlow};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::topics;
use ebbflow::flow::serve::{flow_topics, CommandBridge};
use ebbflow::sources::intern::{known, Interner, InternerConfig};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use serde_json::Value;
use tungstenite::Message;

const BOUND: Duration = Duration::from_secs(10);
const DEFAULT_RULES: &str = include_str!("../examples/rules/default.rules");

fn pod(interner: &mut Interner, seq: u64, waiting: Option<&str>) -> Record {
    let mut r = Record::new(Kind::Pod, if seq == 1 { Op::Added } else { Op::Modified });
    r.key = 4242;
    r.seq = seq;
    r.namespace = interner.intern("shop");
    r.name = interner.intern("cart-0");
    r.push(FieldId::Phase, FieldValue::Sym(known::RUNNING));
    if let Some(w) = waiting {
        let w = interner.intern(w);
        r.push(FieldId::WaitingReason, FieldValue::Sym(w));
    }
    r
}

/// A channels server on loopback with the flow's topics (`history` messages each) and the
/// bus writer the flow publishes into, waking it.
fn serve(history: usize) -> (Server, ebbflow::channels::BusWriter) {
    let (mut writer, reader) = bus(1 << 20);
    let server = Server::start(
        ServerConfig::new(Some("127.0.0.1:0".parse().unwrap()), flow_topics(history)),
        reader,
    )
    .unwrap();
    writer.set_waker(server.waker());
    (server, writer)
}

/// A plain WebSocket client of `server` on the `commands` topic, reads bounded to 50 ms.
fn commands_client(server: &Server) -> tungstenite::WebSocket<TcpStream> {
    let addr = server.local_addr().unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    tungstenite::client(format!("ws://{addr}/ws?topics=commands"), stream)
        .unwrap()
        .0
}

/// A k8s flow configuration over `rules`, parking when idle.
fn k8s_config(rules: &str) -> FlowConfig {
    let mut cfg = FlowConfig::new("k8s", RuleSet::parse(rules).unwrap());
    cfg.wait = WaitStrategy::Park;
    cfg.store_capacity = 1 << 12;
    cfg.actor.capacity_log2 = 12;
    cfg
}

#[test]
fn alerts_reach_subscribers_and_websocket_commands_are_applied_or_refused() {
    let (mut server, writer) = serve(1024);
    server.track_bus_drops(&writer);
    let (commands, replier) = server.take_commands().unwrap();
    let mut bridge = CommandBridge::new(commands, replier);
    let mut sub = server
        .pubsub()
        .subscribe(&[topics::FEEDBACK, topics::COMMANDS], 1 << 16)
        .unwrap();

    let mut interner = Interner::new(InternerConfig::default());
    let cfg = k8s_config(DEFAULT_RULES);
    let mut flow = ReverseFlow::start(cfg, &mut interner, Box::new(writer)).unwrap();
    flow.push_record(pod(&mut interner, 1, None)).unwrap();
    flow.push_record(pod(&mut interner, 2, Some("CrashLoopBackOff")))
        .unwrap();
    flow.flush();

    // The alert arrives in-process through the broadcast thread.
    let mut alert: Option<Value> = None;
    let deadline = Instant::now() + BOUND;
    while alert.is_none() && Instant::now() < deadline {
        sub.read_timeout(64, Duration::from_millis(50), |d| {
            if d.topic == topics::FEEDBACK && d.event == "alert" {
                let v: Value = serde_json::from_slice(d.payload).unwrap();
                if v["rule_name"] == "pod_crashloop" {
                    alert = Some(v);
                }
            }
        });
    }
    let alert = alert.expect("the crash-loop alert was broadcast");
    assert_eq!(alert["name"], "cart-0");
    let key = alert["key"].as_str().unwrap().to_owned();

    // A WebSocket client acknowledges it, sends a command with a bad argument, and one
    // the bitactor refuses.
    let mut ws = commands_client(&server);
    let send = |ws: &mut tungstenite::WebSocket<TcpStream>,
                r: &str,
                event: &str,
                payload: String| {
        let msg = format!(
            r#"{{"type":"command","topic":"commands","event":"{event}","payload":{payload},"ref":"{r}"}}"#
        );
        ws.send(Message::text(msg)).unwrap();
    };
    send(
        &mut ws,
        "ack",
        "ack_alert",
        format!(r#"{{"rule":"pod_crashloop","key":"{key}"}}"#),
    );
    send(
        &mut ws,
        "bad",
        "set_threshold",
        r#"{"rule":"pod_restart_jump","value":"x"}"#.into(),
    );
    send(
        &mut ws,
        "gone",
        "ack_alert",
        r#"{"rule":"pod_crashloop","key":"00000000000000ff"}"#.into(),
    );
    let deadline = Instant::now() + BOUND;
    let mut replies = Vec::new();
    let mut applied: Option<Value> = None;
    while (replies.len() < 3 || applied.is_none()) && Instant::now() < deadline {
        bridge.pump(&mut flow);
        if let Ok(Message::Text(t)) = ws.read() {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "reply" {
                replies.push(v);
            } else if v["type"] == "message" && v["event"] == "applied" {
                applied = Some(v);
            }
        }
    }
    assert_eq!(replies.len(), 3, "every command answered: {replies:?}");
    let by_ref = |r: &str| replies.iter().find(|v| v["ref"] == r).unwrap().clone();
    assert_eq!(by_ref("ack")["status"], "ok");
    assert_eq!(by_ref("bad")["status"], "error");
    assert_eq!(by_ref("bad")["response"]["code"], "bad_argument");
    assert_eq!(by_ref("gone")["status"], "error");
    assert_eq!(by_ref("gone")["response"]["code"], "unknown_alert");
    assert_eq!(bridge.rejected(), 1);
    assert_eq!(bridge.submitted(), 2);
    // The acknowledgement's effect is broadcast to every subscriber of `commands`.
    let applied = applied.expect("the effect was broadcast");
    assert_eq!(applied["payload"]["key"], key.as_str());
    drop(ws);
    flow.finish().unwrap();
    server.shutdown().unwrap();
}

#[test]
fn a_client_behind_the_history_catches_up_from_the_journal() {
    use ebbflow::journal::{Durability, Journal, JournalConfig};
    let dir = std::env::temp_dir().join(format!("ebbflow-state-since-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut server, writer) = serve(16);
    let (commands, replier) = server.take_commands().unwrap();
    let mut interner = Interner::new(InternerConfig::default());
    let cfg = k8s_config(DEFAULT_RULES);
    let journal = Journal::open(
        &dir,
        JournalConfig {
            durability: Durability::EveryBatch,
            ..JournalConfig::default()
        },
    )
    .unwrap();
    let mut flow =
        ReverseFlow::start_journaled(cfg, &mut interner, Box::new(writer), Some(journal)).unwrap();
    let mut bridge = CommandBridge::new(commands, replier).with_journal(&dir, interner.resolver());
    for seq in 1..=50u64 {
        let mut r = Record::new(Kind::Pod, Op::Added);
        r.key = 1000 + seq;
        r.seq = seq;
        r.namespace = interner.intern("shop");
        r.name = interner.intern(&format!("pod-{seq}"));
        r.push(FieldId::Phase, FieldValue::Sym(known::RUNNING));
        flow.push_record(r).unwrap();
    }
    flow.flush();
    let deadline = Instant::now() + BOUND;
    while flow
        .journal_counters()
        .journaled
        .load(std::sync::atomic::Ordering::Relaxed)
        < 50
    {
        assert!(Instant::now() < deadline, "records not journaled in time");
        std::thread::sleep(Duration::from_millis(5));
    }
    let addr = server.local_addr().unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    let mut ask = |ws: &mut tungstenite::WebSocket<TcpStream>, r: &str, payload: &str| -> Value {
        let msg = format!(
            r#"{{"type":"command","topic":"state","event":"state_since","payload":{payload},"ref":"{r}"}}"#
        );
        ws.send(Message::text(msg)).unwrap();
        let deadline = Instant::now() + BOUND;
        loop {
            assert!(Instant::now() < deadline, "no reply to {r}");
            bridge.pump(&mut flow);
            if let Ok(Message::Text(t)) = ws.read() {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "reply" && v["ref"] == r {
                    return v;
                }
            }
        }
    };
    let first = ask(&mut ws, "a", r#"{"seq":20,"limit":10}"#);
    assert_eq!(first["status"], "ok");
    let seqs: Vec<u64> = first["response"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (21..=30).collect::<Vec<_>>());
    assert_eq!(first["response"]["complete"], false);
    assert_eq!(first["response"]["records"][0]["name"], "pod-21");
    assert_eq!(first["response"]["records"][0]["op"], "ADDED");
    let rest = ask(&mut ws, "b", r#"{"seq":30}"#);
    assert_eq!(rest["response"]["records"].as_array().unwrap().len(), 20);
    assert_eq!(rest["response"]["last_seq"], 50);
    assert_eq!(rest["response"]["complete"], true);
    let bad = ask(&mut ws, "c", r#"{"seq":"x"}"#);
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["response"]["code"], "bad_argument");
    drop(ws);
    flow.finish().unwrap();
    server.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two rules of our own, not the bundled defaults: what a dashboard must show.
const CUSTOM_RULES: &str = r#"
rule shop_crashloop
    kind      Pod
    namespace shop
    when      WaitingReason == "CrashLoopBackOff"
    severity  critical
    hint      "restart the cart"

rule big_move
    kind      Tick
    when      pct(Price) > 4.5
    when      Quantity outside [1, 5000]
    enabled   false
"#;

#[test]
fn the_rules_command_returns_the_loaded_catalogue_with_live_thresholds() {
    let (mut server, writer) = serve(1024);
    let (commands, replier) = server.take_commands().unwrap();
    let mut bridge = CommandBridge::new(commands, replier);
    let mut interner = Interner::new(InternerConfig::default());
    let cfg = k8s_config(CUSTOM_RULES);
    let mut flow = ReverseFlow::start(cfg, &mut interner, Box::new(writer)).unwrap();

    let mut ws = commands_client(&server);
    let mut ask = |ws: &mut tungstenite::WebSocket<TcpStream>,
                   r: &str,
                   event: &str,
                   payload: &str| {
        let msg = format!(
            r#"{{"type":"command","topic":"commands","event":"{event}","payload":{payload},"ref":"{r}"}}"#
        );
        ws.send(Message::text(msg)).unwrap();
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            bridge.pump(&mut flow);
            if let Ok(Message::Text(t)) = ws.read() {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "reply" && v["ref"] == r {
                    return v;
                }
            }
        }
        panic!("no reply to {r}");
    };
    let before = ask(&mut ws, "r1", "rules", "{}");
    assert_eq!(before["status"], "ok", "{before}");
    let rules = before["response"]["rules"].as_array().unwrap().clone();
    assert_eq!(rules.len(), 2);
    let shop = &rules[0];
    assert_eq!(shop["id"], 0);
    assert_eq!(shop["name"], "shop_crashloop");
    assert_eq!(shop["kinds"], serde_json::json!(["Pod"]));
    assert_eq!(shop["namespace"], "shop");
    assert_eq!(
        shop["when"],
        serde_json::json!([r#"WaitingReason == "CrashLoopBackOff""#])
    );
    assert_eq!(shop["severity"], "critical");
    assert_eq!(shop["hint"], "restart the cart");
    assert_eq!(
        shop["threshold"],
        Value::Null,
        "a string test has no threshold"
    );
    assert_eq!(shop["enabled"], true);
    let mv = &rules[1];
    assert_eq!(mv["namespace"], Value::Null);
    assert_eq!(
        mv["when"],
        serde_json::json!(["pct(Price) > 4.5", "Quantity outside [1, 5000]"])
    );
    assert_eq!(mv["severity"], "warning");
    assert_eq!(mv["threshold"], 4.5);
    assert_eq!(mv["enabled"], false);

    // A threshold change by command shows in the next catalogue; the definitions stay.
    let set = ask(
        &mut ws,
        "r2",
        "set_threshold",
        r#"{"rule":"big_move","value":7.25}"#,
    );
    assert_eq!(set["status"], "ok", "{set}");
    let after = ask(&mut ws, "r3", "rules", "{}");
    assert_eq!(after["response"]["rules"][1]["threshold"], 7.25);
    assert_eq!(after["response"]["rules"][1]["when"], mv["when"]);
    drop(ws);
    flow.finish().unwrap();
    server.shutdown().unwrap();
}
