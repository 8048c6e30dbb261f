//! Behaviour of the bitactor engine: each predicate type fires exactly when it should,
//! alerts are raised on rising edges and cleared on falling edges and deletes, commands
//! change thresholds (and bad commands change nothing), and the engine agrees with a naive
//! reference evaluator over the three generated scenarios.
//!
//! Run: `cargo test --test flow_bitactor`.

mod flow_bitactor_support;

use ebbflow::flow::bitactor::{ActorConfig, BitActor, CommandError, RuleCatalog, RuleSet};
use ebbflow::flow::{ChangeKind, Command, Item, ReplyCode, Severity, What, CLEARED_BIT};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator as _;
use ebbflow::sources::intern::{known, Interner, Symbol};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use flow_bitactor_support::{FakeResources, Reference, DEFAULT_RULES};

fn actor(text: &str) -> (BitActor, Interner, RuleSet) {
    let rules = RuleSet::parse(text).expect("rules parse");
    let mut interner = Interner::default();
    let a = BitActor::compile(&rules, &mut interner).expect("rules compile");
    (a, interner, rules)
}

fn record(kind: Kind, key: u64, fields: &[(FieldId, FieldValue)]) -> Record {
    let mut r = Record::new(kind, Op::Modified);
    r.key = key;
    for &(id, v) in fields {
        r.push(id, v);
    }
    r
}

fn item(kind: Kind, key: u64, fields: &[(FieldId, FieldValue)]) -> Item {
    let mut it = Item::from_record(record(kind, key, fields));
    it.header.change = ChangeKind::Updated;
    it
}

/// An item whose fields had the previous values `prev` (same order as `fields`).
fn item_prev(
    kind: Kind,
    key: u64,
    fields: &[(FieldId, FieldValue)],
    prev: &[Option<FieldValue>],
) -> Item {
    let mut it = item(kind, key, fields);
    for (i, p) in prev.iter().enumerate() {
        if let Some(v) = p {
            it.set_prev_at(i, *v);
        }
    }
    it
}

/// Evaluates one item and returns its hits.
fn eval(a: &mut BitActor, mut it: Item) -> Vec<u16> {
    let n = a.evaluate(std::slice::from_mut(&mut it));
    assert_eq!(n, it.hits.count as usize + it.hits.overflowed as usize);
    it.hits.as_slice().to_vec()
}

/// Whether a fresh object (new key each call) with these fields fires rule 0.
fn fires(a: &mut BitActor, key: &mut u64, it: impl FnOnce(u64) -> Item) -> bool {
    *key += 1;
    let hits = eval(a, it(*key));
    assert!(hits.iter().all(|&h| h == 0), "only rule 0 exists: {hits:?}");
    hits == [0]
}

const I: fn(i64) -> FieldValue = FieldValue::I64;
const F: fn(f64) -> FieldValue = FieldValue::F64;

#[test]
fn threshold_comparisons_fire_exactly_at_their_boundaries() {
    // (operator, values 4, 5, 6 expected)
    let cases = [
        (">", [false, false, true]),
        (">=", [false, true, true]),
        ("<", [true, false, false]),
        ("<=", [true, true, false]),
        ("==", [false, true, false]),
        ("!=", [true, false, true]),
    ];
    for (op, expect) in cases {
        let (mut a, _, _) = actor(&format!("rule r\nkind Event\nwhen Count {op} 5\n"));
        let mut key = 0;
        for (v, want) in [4, 5, 6].into_iter().zip(expect) {
            let got = fires(&mut a, &mut key, |k| {
                item(Kind::Event, k, &[(FieldId::Count, I(v))])
            });
            assert_eq!(got, want, "Count {op} 5 with Count = {v}");
        }
        // A record without the field never matches, not even `!=`.
        assert!(!fires(&mut a, &mut key, |k| {
            item(
                Kind::Event,
                k,
                &[(FieldId::Reason, FieldValue::Sym(known::EMPTY))],
            )
        }));
    }
}

#[test]
fn float_thresholds_are_exact_at_the_boundary() {
    let (mut a, _, _) = actor("rule r\nkind Sensor\nwhen Value > 55.4\n");
    let mut key = 0;
    let mut f = |v: f64| {
        fires(&mut a, &mut key, |k| {
            item(Kind::Sensor, k, &[(FieldId::Value, F(v))])
        })
    };
    assert!(!f(55.4));
    assert!(f(55.4f64.next_up()));
    assert!(!f(f64::NAN), "NaN never matches");
    assert!(f(f64::INFINITY));
}

#[test]
fn symbol_equality_matches_the_interned_string() {
    let (mut a, mut interner, _) = actor(
        "rule crash\nkind Pod\nwhen WaitingReason == \"CrashLoopBackOff\"\n\
         rule other\nkind Pod\nwhen Phase != \"Running\"\n",
    );
    let custom = interner.intern("SomethingElse");
    let pod = |k, reason: Symbol, phase: Symbol| {
        item(
            Kind::Pod,
            k,
            &[
                (FieldId::WaitingReason, FieldValue::Sym(reason)),
                (FieldId::Phase, FieldValue::Sym(phase)),
            ],
        )
    };
    assert_eq!(
        eval(&mut a, pod(1, known::CRASH_LOOP_BACK_OFF, known::RUNNING)),
        [0]
    );
    assert_eq!(
        eval(&mut a, pod(2, known::IMAGE_PULL_BACK_OFF, known::RUNNING)),
        [] as [u16; 0]
    );
    assert_eq!(eval(&mut a, pod(3, custom, known::FAILED)), [1]);
    // Other kinds never match, even with the same field.
    assert_eq!(
        eval(
            &mut a,
            item(
                Kind::Node,
                4,
                &[(
                    FieldId::WaitingReason,
                    FieldValue::Sym(known::CRASH_LOOP_BACK_OFF)
                )]
            )
        ),
        [] as [u16; 0]
    );
}

#[test]
fn boolean_state_matches_not_ready_on_every_listed_kind() {
    let (mut a, _, _) = actor("rule nr\nkind Node, Pod\nwhen Ready == false\nseverity critical\n");
    let b = |k, kind, v| item(kind, k, &[(FieldId::Ready, FieldValue::Bool(v))]);
    assert_eq!(eval(&mut a, b(1, Kind::Node, false)), [0]);
    assert_eq!(eval(&mut a, b(2, Kind::Pod, false)), [0]);
    assert_eq!(eval(&mut a, b(3, Kind::Node, true)), [] as [u16; 0]);
    assert_eq!(eval(&mut a, b(4, Kind::Deployment, false)), [] as [u16; 0]);
    assert_eq!(a.catalog().severity(0), Some(Severity::Critical));
}

#[test]
fn delta_fires_on_a_restart_jump_only_with_a_previous_value() {
    let (mut a, _, _) = actor("rule jump\nkind Pod\nwhen delta(RestartsTotal) >= 3\n");
    let mut key = 0;
    let mut f = |now: i64, before: Option<i64>| {
        fires(&mut a, &mut key, |k| {
            item_prev(
                Kind::Pod,
                k,
                &[(FieldId::RestartsTotal, I(now))],
                &[before.map(I)],
            )
        })
    };
    assert!(f(5, Some(2)));
    assert!(f(12, Some(2)));
    assert!(!f(4, Some(2)));
    assert!(!f(2, Some(5)), "a decrease is no jump");
    assert!(
        !f(9, None),
        "no previous value (a created object): no delta"
    );
}

#[test]
fn percent_move_fires_in_either_direction() {
    let (mut a, _, _) = actor("rule mv\nkind Tick\nwhen pct(Price) > 2\n");
    let mut key = 0;
    let mut f = |now: f64, before: Option<f64>| {
        fires(&mut a, &mut key, |k| {
            item_prev(Kind::Tick, k, &[(FieldId::Price, F(now))], &[before.map(F)])
        })
    };
    assert!(f(103.0, Some(100.0)));
    assert!(f(97.0, Some(100.0)));
    assert!(!f(101.5, Some(100.0)));
    assert!(!f(102.0, Some(100.0)), "exactly 2 % is not more than 2 %");
    assert!(!f(103.0, None));
    assert!(f(1.0, Some(0.0)), "a move from zero is infinite");
    assert!(!f(0.0, Some(0.0)), "0/0 is NaN: no match");
}

#[test]
fn difference_of_two_fields_detects_replica_shortfall() {
    let (mut a, _, _) =
        actor("rule short\nkind Deployment\nwhen ReplicasDesired - ReplicasReady >= 2\n");
    let mut key = 0;
    let mut f = |desired: i64, ready: Option<i64>| {
        fires(&mut a, &mut key, |k| {
            let mut fields = vec![(FieldId::ReplicasDesired, I(desired))];
            if let Some(r) = ready {
                fields.push((FieldId::ReplicasReady, I(r)));
            }
            item(Kind::Deployment, k, &fields)
        })
    };
    assert!(f(5, Some(3)));
    assert!(f(5, Some(0)));
    assert!(!f(5, Some(4)));
    assert!(!f(5, None), "both fields are needed");
}

#[test]
fn band_fires_outside_the_closed_interval() {
    let (mut a, _, _) = actor("rule band\nkind Sensor\nwhen Value outside [0, 120]\n");
    let mut key = 0;
    let mut f = |v: f64| {
        fires(&mut a, &mut key, |k| {
            item(Kind::Sensor, k, &[(FieldId::Value, F(v))])
        })
    };
    assert!(f(-0.5));
    assert!(!f(0.0));
    assert!(!f(60.0));
    assert!(!f(120.0));
    assert!(f(120.5));
    assert!(f(1200.0));
    assert!(!f(f64::NAN));
}

#[test]
fn conjunctions_and_namespace_filters_need_every_part() {
    let (mut a, mut interner, _) = actor(
        "rule r\nkind Sensor\nnamespace water\nwhen DeviceType == \"water\"\nwhen Value > 200\n",
    );
    let water = interner.intern("water");
    let traffic = interner.intern("traffic");
    let s = |k, ns: Symbol, ty: Symbol, v: f64| {
        let mut it = item(
            Kind::Sensor,
            k,
            &[
                (FieldId::DeviceType, FieldValue::Sym(ty)),
                (FieldId::Value, F(v)),
            ],
        );
        it.record.namespace = ns;
        it
    };
    assert_eq!(eval(&mut a, s(1, water, water, 250.0)), [0]);
    assert_eq!(eval(&mut a, s(2, water, water, 150.0)), [] as [u16; 0]);
    assert_eq!(eval(&mut a, s(3, water, traffic, 250.0)), [] as [u16; 0]);
    assert_eq!(eval(&mut a, s(4, traffic, water, 250.0)), [] as [u16; 0]);
}

fn crash_pod(key: u64, crashing: bool) -> Item {
    item(
        Kind::Pod,
        key,
        &[
            (FieldId::Phase, FieldValue::Sym(known::RUNNING)),
            (
                FieldId::WaitingReason,
                FieldValue::Sym(if crashing {
                    known::CRASH_LOOP_BACK_OFF
                } else {
                    known::EMPTY
                }),
            ),
        ],
    )
}

const CRASH: &str = "rule crash\nkind Pod\nwhen WaitingReason == \"CrashLoopBackOff\"\nseverity critical\nhint \"read the logs\"\n";

#[test]
fn a_crashlooping_pod_alerts_once_and_clears_once() {
    let (mut a, _, _) = actor(CRASH);
    assert_eq!(eval(&mut a, crash_pod(7, false)), [] as [u16; 0]);
    assert_eq!(eval(&mut a, crash_pod(7, true)), [0], "rising edge");
    assert_eq!(a.active(7), 1);
    for _ in 0..5 {
        assert_eq!(
            eval(&mut a, crash_pod(7, true)),
            [] as [u16; 0],
            "still active: no repeat"
        );
    }
    assert_eq!(
        eval(&mut a, crash_pod(7, false)),
        [CLEARED_BIT],
        "falling edge"
    );
    assert_eq!(a.active(7), 0);
    assert_eq!(a.stats().active_objects, 0);
    assert_eq!(
        eval(&mut a, crash_pod(7, true)),
        [0],
        "a new episode alerts again"
    );
    let c = a.catalog().counters(0).unwrap();
    assert_eq!((c.raised, c.cleared), (2, 1));
}

#[test]
fn a_delete_clears_every_active_alert_and_frees_the_entry() {
    let (mut a, _, _) = actor(&format!(
        "{CRASH}rule running\nkind Pod\nwhen Phase == \"Running\"\n"
    ));
    assert_eq!(eval(&mut a, crash_pod(9, true)), [0, 1]);
    let mut del = crash_pod(9, true);
    del.record.op = Op::Deleted;
    del.header.change = ChangeKind::Deleted;
    assert_eq!(eval(&mut a, del), [CLEARED_BIT, 1 | CLEARED_BIT]);
    assert_eq!(a.active(9), 0);
    assert_eq!(a.stats().active_objects, 0);
    // A delete of an object without alerts emits nothing.
    let mut del = crash_pod(10, true);
    del.header.change = ChangeKind::Deleted;
    assert_eq!(eval(&mut a, del), [] as [u16; 0]);
}

#[test]
fn items_that_are_not_records_pass_untouched() {
    let (mut a, _, _) = actor(CRASH);
    let mut batch = [
        Item::tick(5),
        Item::from_command(Command::Snapshot { request: 1 }),
        crash_pod(1, true),
    ];
    batch[0].hits.push(42);
    let before = [batch[0], batch[1]];
    assert_eq!(a.evaluate(&mut batch), 1);
    assert_eq!(batch[0].hits, before[0].hits);
    assert_eq!(batch[1].hits, before[1].hits);
    assert_eq!(batch[2].hits.as_slice(), [0]);
    assert_eq!(a.stats().items, 1);
}

#[test]
fn more_hits_than_an_item_carries_are_counted() {
    let text: String = (0..5)
        .map(|i| format!("rule r{i}\nkind Event\nwhen Count > {i}\n"))
        .collect();
    let (mut a, _, _) = actor(&text);
    let mut it = [item(Kind::Event, 1, &[(FieldId::Count, I(10))])];
    assert_eq!(a.evaluate(&mut it), 5);
    assert_eq!(it[0].hits.as_slice(), [0, 1, 2]);
    assert_eq!(it[0].hits.overflowed, 2);
    assert_eq!(a.active(1), 0b11111, "state keeps all five");
}

const COUNT5: &str = "rule busy\nkind Event\nwhen Count > 5\nseverity warning\n";

#[test]
fn a_threshold_change_by_command_changes_which_items_alert() {
    let (mut a, _, _) = actor(COUNT5);
    let ev = |k, v| item(Kind::Event, k, &[(FieldId::Count, I(v))]);
    assert_eq!(eval(&mut a, ev(1, 7)), [0]);
    let cmd = Command::SetThreshold {
        request: 1,
        rule: 0,
        value: 10.0,
    };
    assert_eq!(a.apply(&cmd), Ok(5.0), "returns the old threshold");
    assert_eq!(a.catalog().threshold(0), Some(10.0));
    assert_eq!(
        eval(&mut a, ev(1, 7)),
        [CLEARED_BIT],
        "7 no longer alerts: cleared"
    );
    assert_eq!(eval(&mut a, ev(2, 7)), [] as [u16; 0]);
    assert_eq!(eval(&mut a, ev(3, 11)), [0]);
    assert_eq!(
        a.apply(&Command::SetThreshold {
            request: 2,
            rule: 0,
            value: 1.0
        }),
        Ok(10.0)
    );
    assert_eq!(eval(&mut a, ev(2, 7)), [0]);
}

#[test]
fn band_threshold_moves_the_upper_bound() {
    let (mut a, _, _) = actor("rule b\nkind Sensor\nwhen Value outside [0, 120]\n");
    assert_eq!(a.catalog().threshold(0), Some(120.0));
    assert_eq!(
        a.apply(&Command::SetThreshold {
            request: 1,
            rule: 0,
            value: 200.0
        }),
        Ok(120.0)
    );
    assert_eq!(
        eval(&mut a, item(Kind::Sensor, 1, &[(FieldId::Value, F(150.0))])),
        [] as [u16; 0]
    );
    assert_eq!(
        eval(&mut a, item(Kind::Sensor, 2, &[(FieldId::Value, F(-1.0))])),
        [0]
    );
}

#[test]
fn bad_commands_are_refused_and_change_nothing() {
    let text = format!(
        "{COUNT5}rule b\nkind Sensor\nwhen Value outside [10, 20]\n\
         rule p\nkind Tick\nwhen pct(Price) > 2\n{CRASH}"
    );
    let (mut a, _, _) = actor(&text);
    let set = |rule, value| Command::SetThreshold {
        request: 9,
        rule,
        value,
    };
    let cases = [
        (set(0, f64::NAN), ReplyCode::BadArgument),
        (set(0, f64::INFINITY), ReplyCode::BadArgument),
        (set(0, 1e300), ReplyCode::BadArgument),
        (set(0, 5.5), ReplyCode::Ok),           // `>` accepts fractions
        (set(1, 5.0), ReplyCode::BadArgument),  // below the band's lower bound
        (set(2, -1.0), ReplyCode::BadArgument), // negative percent
        (set(3, 1.0), ReplyCode::BadArgument),  // string rule: no numeric threshold
        (set(4, 1.0), ReplyCode::UnknownRule),
        (
            Command::EnableRule {
                request: 9,
                rule: 64,
                enabled: false,
            },
            ReplyCode::UnknownRule,
        ),
        (
            Command::AckAlert {
                request: 9,
                key: 1,
                rule: 0,
            },
            ReplyCode::UnknownAlert,
        ),
        (
            Command::AckAlert {
                request: 9,
                key: 1,
                rule: 99,
            },
            ReplyCode::UnknownRule,
        ),
        (Command::Snapshot { request: 9 }, ReplyCode::UnknownCommand),
    ];
    for (cmd, want) in cases {
        let before: Vec<Option<f64>> = (0..4).map(|r| a.catalog().threshold(r)).collect();
        let got = a.apply(&cmd);
        assert_eq!(
            got.map_or_else(|e| e.code(), |_| ReplyCode::Ok),
            want,
            "{cmd:?}"
        );
        if want != ReplyCode::Ok {
            let after: Vec<Option<f64>> = (0..4).map(|r| a.catalog().threshold(r)).collect();
            assert_eq!(before, after, "{cmd:?} changed a threshold");
        }
    }
    // Behaviour after the refused commands: only the accepted 5.5 applies.
    assert_eq!(
        eval(&mut a, item(Kind::Event, 1, &[(FieldId::Count, I(6))])),
        [0]
    );
    assert_eq!(
        eval(&mut a, item(Kind::Event, 2, &[(FieldId::Count, I(5))])),
        [] as [u16; 0]
    );
    assert_eq!(
        eval(&mut a, item(Kind::Sensor, 3, &[(FieldId::Value, F(15.0))])),
        [] as [u16; 0]
    );
    assert_eq!(
        eval(&mut a, item(Kind::Sensor, 4, &[(FieldId::Value, F(25.0))])),
        [1]
    );
    assert_eq!(a.enabled_mask(), 0b1111);
}

#[test]
fn integer_equality_refuses_a_fractional_threshold() {
    let (mut a, _, _) = actor("rule z\nkind Deployment\nwhen ReplicasReady == 0\n");
    let got = a.apply(&Command::SetThreshold {
        request: 1,
        rule: 0,
        value: 0.5,
    });
    assert!(
        matches!(got, Err(CommandError::BadArgument { rule: 0, .. })),
        "{got:?}"
    );
    assert_eq!(a.catalog().threshold(0), Some(0.0));
}

#[test]
fn disabling_a_rule_stops_alerts_and_drops_its_state_silently() {
    let (mut a, _, _) = actor(CRASH);
    assert_eq!(eval(&mut a, crash_pod(1, true)), [0]);
    let off = Command::EnableRule {
        request: 1,
        rule: 0,
        enabled: false,
    };
    assert_eq!(a.apply(&off), Ok(1.0));
    assert_eq!(a.active(1), 0);
    assert_eq!(a.catalog().enabled(0), Some(false));
    assert_eq!(eval(&mut a, crash_pod(1, true)), [] as [u16; 0]);
    assert_eq!(
        eval(&mut a, crash_pod(1, false)),
        [] as [u16; 0],
        "no clear for a disabled rule"
    );
    assert_eq!(
        a.apply(&Command::EnableRule {
            request: 2,
            rule: 0,
            enabled: true
        }),
        Ok(0.0)
    );
    assert_eq!(eval(&mut a, crash_pod(1, true)), [0]);
}

#[test]
fn ack_marks_an_active_alert_until_it_clears() {
    let (mut a, _, _) = actor(CRASH);
    let ack = Command::AckAlert {
        request: 1,
        key: 5,
        rule: 0,
    };
    assert_eq!(
        a.apply(&ack),
        Err(CommandError::UnknownAlert { key: 5, rule: 0 })
    );
    eval(&mut a, crash_pod(5, true));
    assert_eq!(a.apply(&ack), Ok(1.0));
    assert_eq!(a.apply(&ack), Ok(0.0), "already acknowledged");
    assert_eq!(a.acknowledged(5), 1);
    eval(&mut a, crash_pod(5, false));
    assert_eq!(
        a.apply(&ack).map_err(|e| e.code()),
        Err(ReplyCode::UnknownAlert)
    );
}

#[test]
fn command_items_become_replies() {
    let (mut a, _, _) = actor(COUNT5);
    let mut it = Item::from_command(Command::SetThreshold {
        request: 77,
        rule: 0,
        value: 8.0,
    });
    assert!(a.apply_item(&mut it));
    assert_eq!(it.header.what, What::Reply);
    assert_eq!(
        it.command,
        Command::Reply {
            request: 77,
            code: 0,
            detail: 5.0
        }
    );
    let mut bad = Item::from_command(Command::SetThreshold {
        request: 78,
        rule: 3,
        value: 8.0,
    });
    assert!(a.apply_item(&mut bad));
    assert!(
        matches!(bad.command, Command::Reply { request: 78, code, .. } if code == ReplyCode::UnknownRule as u16)
    );
    let mut other = Item::from_command(Command::Snapshot { request: 79 });
    assert!(!a.apply_item(&mut other));
    assert_eq!(other.header.what, What::Command);
}

#[test]
fn a_full_table_counts_overflows_and_still_alerts() {
    let rules = RuleSet::parse(COUNT5).unwrap();
    let mut interner = Interner::default();
    let mut a = BitActor::compile_with(
        &rules,
        &mut interner,
        ActorConfig {
            capacity_log2: 4,
            ..ActorConfig::default()
        },
    )
    .unwrap();
    assert_eq!((a.table_capacity(), a.table_max_objects()), (16, 14));
    for k in 1..=20u64 {
        assert_eq!(
            eval(&mut a, item(Kind::Event, k, &[(FieldId::Count, I(9))])),
            [0]
        );
    }
    assert_eq!(a.stats().table_overflows, 6);
    assert_eq!(a.catalog().table_overflows(), 6);
    // An object without an entry alerts on every matching item (level-triggered).
    assert_eq!(
        eval(&mut a, item(Kind::Event, 20, &[(FieldId::Count, I(9))])),
        [0]
    );
    // Objects with an entry keep edge semantics.
    assert_eq!(
        eval(&mut a, item(Kind::Event, 1, &[(FieldId::Count, I(9))])),
        [] as [u16; 0]
    );
    // Freeing entries makes room again.
    for k in 1..=14u64 {
        assert_eq!(
            eval(&mut a, item(Kind::Event, k, &[(FieldId::Count, I(0))])),
            [CLEARED_BIT]
        );
    }
    assert_eq!(
        eval(&mut a, item(Kind::Event, 30, &[(FieldId::Count, I(9))])),
        [0]
    );
    assert_eq!(
        eval(&mut a, item(Kind::Event, 30, &[(FieldId::Count, I(9))])),
        [] as [u16; 0]
    );
}

#[test]
fn the_catalog_describes_rules_from_another_thread() {
    let (mut a, _, rules) = actor(DEFAULT_RULES);
    let cat: RuleCatalog = a.catalog().clone();
    let crash = rules.id_of("pod_crashloop").unwrap();
    let jump = rules.id_of("pod_restart_jump").unwrap();
    let short = rules.id_of("deployment_shortfall").unwrap();
    let mut pod = item_prev(
        Kind::Pod,
        1,
        &[
            (FieldId::RestartsTotal, I(9)),
            (
                FieldId::WaitingReason,
                FieldValue::Sym(known::CRASH_LOOP_BACK_OFF),
            ),
        ],
        &[Some(I(4)), None],
    );
    a.evaluate(std::slice::from_mut(&mut pod));
    assert_eq!(pod.hits.as_slice(), [crash, jump]);
    let dep = item(
        Kind::Deployment,
        2,
        &[
            (FieldId::ReplicasDesired, I(5)),
            (FieldId::ReplicasReady, I(2)),
        ],
    );
    a.apply(&Command::SetThreshold {
        request: 1,
        rule: jump,
        value: 4.0,
    })
    .unwrap();
    let t = std::thread::spawn(move || {
        (
            cat.name(crash | CLEARED_BIT).map(str::to_owned),
            cat.severity(crash),
            cat.hint(crash).map(|h| h.contains("kubectl logs")),
            cat.threshold(jump),
            cat.threshold(crash),
            cat.observed(jump, &pod),
            cat.observed(short, &dep),
            cat.observed(crash, &pod),
            cat.counters(crash).map(|c| c.raised),
            cat.name(200).map(str::to_owned),
        )
    })
    .join()
    .unwrap();
    assert_eq!(t.0.as_deref(), Some("pod_crashloop"));
    assert_eq!(t.1, Some(Severity::Critical));
    assert_eq!(t.2, Some(true));
    assert_eq!(t.3, Some(4.0), "mirrors the command");
    assert_eq!(t.4, None, "a string rule has no numeric threshold");
    assert_eq!(t.5, Some(5.0), "the restart delta");
    assert_eq!(t.6, Some(3.0), "the replica shortfall");
    assert_eq!(t.7, Some(f64::from(known::CRASH_LOOP_BACK_OFF.id())));
    assert_eq!(t.8, Some(1));
    assert_eq!(t.9, None);
}

/// Runs `recs` through the engine in batches of 64 (with previous values from a stand-in
/// resources stage) and checks every item's hits against the naive reference. Returns
/// (raised, cleared).
fn agree_with_reference(recs: &[Record], interner: &Interner, rules: &RuleSet) -> (u64, u64) {
    let mut a = BitActor::compile_readonly(rules, interner, ActorConfig::default());
    let mut res = FakeResources::default();
    let mut reference = Reference::default();
    let (mut raised, mut cleared) = (0, 0);
    for (c, chunk) in recs.chunks(64).enumerate() {
        let mut batch: Vec<Item> = chunk.iter().map(|r| res.annotate(*r)).collect();
        a.evaluate(&mut batch);
        for (i, it) in batch.iter().enumerate() {
            let want = reference.hits(rules, it, interner);
            assert_eq!(it.hits, want, "item {}: {:?}", c * 64 + i, it.record);
            for h in it.hits.as_slice() {
                if h & CLEARED_BIT == 0 {
                    raised += 1;
                } else {
                    cleared += 1;
                }
            }
        }
    }
    assert_eq!(a.stats().raised, raised);
    assert_eq!(a.stats().items, recs.len() as u64);
    (raised, cleared)
}

#[test]
fn engine_agrees_with_the_reference_on_the_k8s_scenario() {
    let rules = RuleSet::parse(DEFAULT_RULES).unwrap();
    let mut g = ClusterGenerator::new(ClusterConfig::default());
    let recs: Vec<Record> = (0..40_000).map(|_| g.next_record()).collect();
    let (raised, cleared) = agree_with_reference(&recs, g.interner(), &rules);
    let stats = g.stats();
    assert!(stats.crashloops > 0 && stats.notready > 0, "{stats:?}");
    assert!(
        raised > 0 && cleared > 0,
        "raised {raised}, cleared {cleared}"
    );
    // Alerting once per episode: a crash-looping pod updated again raises nothing new.
    let crash = rules.id_of("pod_crashloop").unwrap();
    let mut a = BitActor::compile_readonly(&rules, g.interner(), ActorConfig::default());
    let mut res = FakeResources::default();
    let mut items: Vec<Item> = recs.iter().map(|r| res.annotate(*r)).collect();
    let crash_updates = items
        .iter()
        .filter(|it| {
            it.record.get(FieldId::WaitingReason)
                == Some(FieldValue::Sym(known::CRASH_LOOP_BACK_OFF))
        })
        .count() as u64;
    a.evaluate(&mut items);
    let crash_raises = a.catalog().counters(crash).unwrap().raised;
    assert!(
        crash_raises > 0 && crash_raises < crash_updates,
        "{crash_raises} raises for {crash_updates} crash-looping updates"
    );
}

#[test]
fn engine_agrees_with_the_reference_on_the_trading_scenario() {
    let rules = RuleSet::parse(DEFAULT_RULES).unwrap();
    let cfg = TradingConfig {
        spike_per_million: 20_000,
        ..TradingConfig::default()
    };
    let mut g = TradingGenerator::new(cfg);
    let recs: Vec<Record> = (0..40_000).map(|_| g.next_record()).collect();
    let (raised, cleared) = agree_with_reference(&recs, g.decoder().interner(), &rules);
    assert!(
        raised > 100 && cleared > 100,
        "raised {raised}, cleared {cleared}"
    );
}

#[test]
fn engine_agrees_with_the_reference_on_the_iot_scenario() {
    let rules = RuleSet::parse(DEFAULT_RULES).unwrap();
    // 1,000 devices: each reports 40 times, so outliers clear on the next reading.
    let cfg = SmartCityConfig {
        devices: 1000,
        outlier_per_million: 20_000,
        ..SmartCityConfig::default()
    };
    let mut g = SmartCityGenerator::new(cfg);
    let recs: Vec<Record> = (0..40_000).map(|_| g.next_record()).collect();
    let (raised, cleared) = agree_with_reference(&recs, g.decoder().interner(), &rules);
    assert!(
        raised > 100 && cleared > 100,
        "raised {raised}, cleared {cleared}"
    );
}

#[test]
fn rules_guarded_by_a_string_equality_match_only_their_value_and_keep_their_thresholds() {
    // 18 rules guarded by DeviceType, one unguarded rule and one guarded by `!=`.
    let mut text: String = (0..18)
        .map(|i| format!("rule g{i}\nkind Sensor\nwhen DeviceType == \"t{i}\"\nwhen Value > 10\n"))
        .collect();
    text.push_str("rule any\nkind Sensor\nwhen Value > 100\n");
    text.push_str("rule not_t0\nkind Sensor\nwhen DeviceType != \"t0\"\nwhen Value > 50\n");
    let (mut a, mut interner, rules) = actor(&text);
    let any = rules.id_of("any").unwrap();
    let not_t0 = rules.id_of("not_t0").unwrap();
    let other = interner.intern("unguarded-type");
    let mut key = 0u64;
    let mut sensor = |a: &mut BitActor, ty: Symbol, v: f64| {
        key += 1;
        eval(
            a,
            item(
                Kind::Sensor,
                key,
                &[
                    (FieldId::DeviceType, FieldValue::Sym(ty)),
                    (FieldId::Value, F(v)),
                ],
            ),
        )
    };
    for i in 0..18u16 {
        let ty = interner.get(&format!("t{i}")).unwrap();
        assert_eq!(sensor(&mut a, ty, 5.0), [] as [u16; 0], "t{i} at 5");
        assert_eq!(sensor(&mut a, ty, 20.0), [i], "t{i} at 20");
        let mut want = vec![i, any];
        if i != 0 {
            want.push(not_t0);
        }
        assert_eq!(sensor(&mut a, ty, 200.0), want, "t{i} at 200");
    }
    assert_eq!(
        sensor(&mut a, other, 200.0),
        [any, not_t0],
        "a type without rules"
    );
    // A missing guard field: only rules that do not need it.
    let missing = eval(
        &mut a,
        item(Kind::Sensor, 1 << 40, &[(FieldId::Value, F(200.0))]),
    );
    assert_eq!(missing, [any]);
    // Thresholds of guarded rules change in whichever program holds them.
    for r in [3u16, 17] {
        assert_eq!(
            a.apply(&Command::SetThreshold {
                request: 1,
                rule: r,
                value: 30.0
            }),
            Ok(10.0)
        );
        let ty = interner.get(&format!("t{r}")).unwrap();
        assert_eq!(
            sensor(&mut a, ty, 20.0),
            [] as [u16; 0],
            "t{r} at 20 after the change"
        );
        assert_eq!(sensor(&mut a, ty, 40.0), [r], "t{r} at 40 after the change");
    }
}

#[test]
fn process_applies_commands_in_stream_order() {
    let (mut a, _, _) = actor(COUNT5);
    let ev = |k, v| item(Kind::Event, k, &[(FieldId::Count, I(v))]);
    let mut batch = [
        ev(1, 7),
        Item::from_command(Command::SetThreshold {
            request: 3,
            rule: 0,
            value: 10.0,
        }),
        ev(1, 7),
        ev(2, 7),
        Item::from_command(Command::Snapshot { request: 4 }),
        ev(3, 11),
    ];
    assert_eq!(a.process(&mut batch), 3);
    assert_eq!(batch[0].hits.as_slice(), [0], "before the change: 7 > 5");
    assert_eq!(
        batch[1].command,
        Command::Reply {
            request: 3,
            code: 0,
            detail: 5.0
        }
    );
    assert_eq!(
        batch[2].hits.as_slice(),
        [CLEARED_BIT],
        "after the change: 7 ≤ 10"
    );
    assert!(batch[3].hits.is_empty());
    assert_eq!(
        batch[4].header.what,
        What::Command,
        "not a bitactor command: untouched"
    );
    assert_eq!(batch[5].hits.as_slice(), [0]);
}
