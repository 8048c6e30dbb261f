//! The rules file: the example file parses into the rules it documents, and every kind of
//! bad file is rejected with its line and a specific reason.
//!
//! Run: `cargo test --test flow_bitactor_rules`.

mod flow_bitactor_support;

use ebbflow::flow::bitactor::rules::{CmpOp, Literal, Source, Test};
use ebbflow::flow::bitactor::{BitActor, CompileError, RuleSet, RulesError, MAX_RULES};
use ebbflow::flow::Severity;
use ebbflow::sources::intern::{Interner, InternerConfig};
use ebbflow::sources::record::{FieldId, Kind};
use flow_bitactor_support::DEFAULT_RULES;

fn err(text: &str) -> RulesError {
    RuleSet::parse(text).expect_err("the file must be rejected")
}

#[test]
fn the_example_file_covers_the_three_scenarios() {
    let rules = RuleSet::parse(DEFAULT_RULES).unwrap();
    let kinds = rules.rules().iter().fold(0u16, |m, r| m | r.kinds);
    for k in [
        Kind::Pod,
        Kind::Node,
        Kind::Deployment,
        Kind::Tick,
        Kind::Sensor,
    ] {
        assert!(kinds & (1 << k as u16) != 0, "{k:?} has no rule");
    }
    let crash = &rules.rules()[rules.id_of("pod_crashloop").unwrap() as usize];
    assert_eq!(crash.severity, Severity::Critical);
    assert!(crash.hint.contains("kubectl logs --previous"));
    assert_eq!(
        crash.preds[0].test,
        Test::Cmp(CmpOp::Eq, Literal::Str("CrashLoopBackOff".into()))
    );
    let short = &rules.rules()[rules.id_of("deployment_shortfall").unwrap() as usize];
    assert_eq!(
        short.preds[0].source,
        Source::Diff(FieldId::ReplicasDesired, FieldId::ReplicasReady)
    );
    let band = &rules.rules()[rules.id_of("water_bounds").unwrap() as usize];
    assert_eq!(band.preds[1].test, Test::Outside(0.0, 200.0));
    let payments = &rules.rules()[rules.id_of("payments_pod_crashloop").unwrap() as usize];
    assert_eq!(payments.namespace.as_deref(), Some("payments"));
    let mut interner = Interner::default();
    let a = BitActor::compile(&rules, &mut interner).unwrap();
    assert_eq!(a.catalog().len(), rules.len());
    assert!(
        interner.get("payments").is_some(),
        "strings are interned at load time"
    );
}

#[test]
fn syntax_errors_give_line_and_reason() {
    let cases: [(&str, u32); 9] = [
        ("rule\n", 1),
        ("kind Pod\n", 1),
        ("rule a\nkind Pod\nwhen Count > \n", 3),
        ("rule a\nkind Pod\n\nwhen Count >> 3\n", 4),
        ("rule a\nkind Pod\nwhen Count > 3 4\n", 3),
        ("rule a\nkind Pod\nwhen Count > 3\nhint \"unterminated\n", 4),
        ("rule a\nkind Pod\nwhen Count > 3\nbogus 1\n", 4),
        ("rule a\nkind Pod\nwhen Value outside [1 2]\n", 3),
        ("rule a\nkind Pod, \nwhen Count > 1\n", 2),
    ];
    for (text, line) in cases {
        let e = err(text);
        assert!(matches!(e, RulesError::Syntax { .. }), "{text:?}: {e:?}");
        assert_eq!(e.line(), line, "{text:?}: {e}");
        assert!(e
            .to_string()
            .starts_with(&format!("line {line}: syntax error: ")));
    }
}

#[test]
fn unknown_names_are_reported_with_their_line() {
    let e = err("# c\nrule a\nkind Pod\nwhen Restarts > 3\n");
    assert_eq!(
        e,
        RulesError::UnknownField {
            line: 4,
            name: "Restarts".into()
        }
    );
    assert_eq!(e.to_string(), "line 4: unknown field `Restarts`");
    let e = err("rule a\nkind Pods\nwhen Count > 3\n");
    assert_eq!(
        e,
        RulesError::UnknownKind {
            line: 2,
            name: "Pods".into()
        }
    );
    let e = err("rule a\nkind Pod\nwhen delta(Nope) > 3\n");
    assert_eq!(
        e,
        RulesError::UnknownField {
            line: 3,
            name: "Nope".into()
        }
    );
    let e = err("rule a\nkind Pod\nwhen Count > 3\nseverity urgent\n");
    assert_eq!(
        e,
        RulesError::UnknownSeverity {
            line: 4,
            name: "urgent".into()
        }
    );
}

#[test]
fn impossible_thresholds_are_rejected() {
    let cases = [
        (
            "rule a\nkind Sensor\nwhen Value outside [10, 5]\n",
            "band lower bound above upper bound",
        ),
        (
            "rule a\nkind Sensor\nwhen Value > NaN\n",
            "thresholds must be finite numbers (no NaN or infinity)",
        ),
        (
            "rule a\nkind Sensor\nwhen Value < inf\n",
            "thresholds must be finite numbers (no NaN or infinity)",
        ),
        (
            "rule a\nkind Sensor\nwhen Value > 1e400\n",
            "thresholds must be finite numbers (no NaN or infinity)",
        ),
        (
            "rule a\nkind Sensor\nwhen Value > 1e17\n",
            "threshold magnitude above 2^53",
        ),
        (
            "rule a\nkind Tick\nwhen pct(Price) > -1\n",
            "a percent move is never negative",
        ),
        (
            "rule a\nkind Pod\nwhen RestartsTotal == 2.5\n",
            "an integer value never equals a fraction",
        ),
    ];
    for (text, reason) in cases {
        let e = err(text);
        assert_eq!(
            e,
            RulesError::ImpossibleThreshold { line: 3, reason },
            "{text:?}"
        );
    }
}

#[test]
fn tests_that_do_not_fit_the_field_type_are_rejected() {
    let cases = [
        "rule a\nkind Pod\nwhen Phase > 3\n",
        "rule a\nkind Pod\nwhen Phase > \"Failed\"\n",
        "rule a\nkind Pod\nwhen Ready == 1\n",
        "rule a\nkind Pod\nwhen RestartsTotal == \"x\"\n",
        "rule a\nkind Pod\nwhen SpecHash == 3\n",
        "rule a\nkind Pod\nwhen delta(Phase) > 3\n",
        "rule a\nkind Pod\nwhen Phase - RestartsTotal > 3\n",
        "rule a\nkind Pod\nwhen Ready outside [0, 1]\n",
    ];
    for text in cases {
        let e = err(text);
        assert!(
            matches!(e, RulesError::TypeMismatch { line: 3, .. }),
            "{text:?}: {e:?}"
        );
    }
}

#[test]
fn structural_errors_are_rejected() {
    let e = err("rule a\nkind Pod\nwhen Count > 1\nrule a\nkind Pod\nwhen Count > 2\n");
    assert_eq!(
        e,
        RulesError::DuplicateName {
            line: 4,
            name: "a".into(),
            first: 1
        }
    );
    let e = err("rule a\nkind Pod\nkind Node\nwhen Count > 1\n");
    assert_eq!(
        e,
        RulesError::DuplicateDirective {
            line: 3,
            directive: "kind"
        }
    );
    let e = err("rule a\nwhen Count > 1\nrule b\nkind Pod\nwhen Count > 1\n");
    assert_eq!(
        e,
        RulesError::Incomplete {
            line: 1,
            name: "a".into(),
            missing: "kind"
        }
    );
    let e = err("rule a\nkind Pod\n");
    assert_eq!(
        e,
        RulesError::Incomplete {
            line: 1,
            name: "a".into(),
            missing: "when"
        }
    );
    let five: String = "rule a\nkind Pod\n".to_owned() + &"when Count > 1\n".repeat(5);
    assert_eq!(
        err(&five),
        RulesError::TooManyPredicates { line: 7, max: 4 }
    );
}

#[test]
fn more_than_64_rules_are_rejected_at_the_first_extra_rule() {
    let rule = |i: usize| format!("rule r{i}\nkind Event\nwhen Count > {i}\n");
    let ok: String = (0..MAX_RULES).map(rule).collect();
    assert_eq!(RuleSet::parse(&ok).unwrap().len(), 64);
    let too_many = ok + &rule(64);
    assert_eq!(
        err(&too_many),
        RulesError::TooManyRules {
            line: 64 * 3 + 1,
            max: 64
        }
    );
}

#[test]
fn comments_blank_lines_and_defaults() {
    let rules = RuleSet::parse(
        "# header\n\n  rule a   # trailing\n\tkind Pod,Node\n  when Count>=2\n\nenabled false\n",
    )
    .unwrap();
    let r = &rules.rules()[0];
    assert_eq!(r.kinds, (1 << Kind::Pod as u16) | (1 << Kind::Node as u16));
    assert_eq!(r.severity, Severity::Warning);
    assert_eq!(r.hint, "");
    assert!(!r.enabled);
    assert_eq!(r.preds[0].test, Test::Cmp(CmpOp::Ge, Literal::Num(2.0)));
    assert!(RuleSet::parse("").unwrap().is_empty());
}

#[test]
fn a_full_interner_fails_compilation_with_the_rule_and_string() {
    let rules = RuleSet::parse("rule a\nkind Pod\nnamespace brand-new\nwhen Count > 1\n");
    // `brand-new` lexes as `brand - new`: the namespace must be quoted.
    assert!(matches!(rules, Err(RulesError::Syntax { line: 3, .. })));
    let rules =
        RuleSet::parse("rule a\nkind Pod\nnamespace \"brand-new\"\nwhen Count > 1\n").unwrap();
    let mut full = Interner::new(InternerConfig {
        max_entries: 0,
        max_bytes: 0,
    });
    let e = BitActor::compile(&rules, &mut full).unwrap_err();
    assert_eq!(
        e,
        CompileError::InternerFull {
            rule: "a".into(),
            text: "brand-new".into()
        }
    );
}

/// `PredDef::to_text` writes each predicate back in the rules language: a file rebuilt
/// from the texts parses to the same predicates (every source form and test kind).
#[test]
fn predicates_written_back_as_text_parse_to_the_same_predicates() {
    let text = r#"
rule all_forms
    kind Pod, Node
    when Ready == false
    when delta(RestartsTotal) >= 3
    when ReplicasDesired - ReplicasReady > 0
    when WaitingReason != "CrashLoopBackOff"
rule band
    kind Tick
    when pct(Price) > 4.5
    when Quantity outside [1, 5000.5]
"#
    .to_string()
        + DEFAULT_RULES;
    let set = RuleSet::parse(&text).unwrap();
    let mut rebuilt = String::new();
    for r in set.rules() {
        rebuilt.push_str(&format!("rule {}\n", r.name));
        rebuilt.push_str(&format!(
            "    kind {}\n",
            r.kind_names().collect::<Vec<_>>().join(", ")
        ));
        if let Some(ns) = &r.namespace {
            rebuilt.push_str(&format!("    namespace {ns:?}\n"));
        }
        for p in &r.preds {
            rebuilt.push_str(&format!("    when {}\n", p.to_text()));
        }
    }
    let again = RuleSet::parse(&rebuilt).unwrap_or_else(|e| panic!("{e}\n{rebuilt}"));
    assert_eq!(again.len(), set.len());
    for (a, b) in set.rules().iter().zip(again.rules()) {
        assert_eq!(a.kinds, b.kinds, "{}", a.name);
        assert_eq!(a.namespace, b.namespace, "{}", a.name);
        let strip = |r: &ebbflow::flow::bitactor::rules::RuleDef| {
            r.preds
                .iter()
                .map(|p| (p.source, p.test.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(a), strip(b), "{}", a.name);
    }
    assert_eq!(
        set.rules()[0].preds[2].to_text(),
        "ReplicasDesired - ReplicasReady > 0"
    );
    assert_eq!(
        set.rules()[1].preds[1].to_text(),
        "Quantity outside [1, 5000.5]"
    );
}
