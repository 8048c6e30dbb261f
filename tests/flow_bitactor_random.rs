//! The column-wise evaluator against the naive reference on random input: mixed kinds and
//! field layouts inside one chunk, duplicate and missing fields, NaN and zero values,
//! deletes, non-record items, batches of 1 to 200 items, on every vector instruction set
//! the CPU has; and `process` with random commands in the batch equals applying each
//! command by hand between `evaluate` calls (records before a command see the rules as
//! they were).

mod flow_bitactor_support;
use ebbflow::flow::bitactor::{ActorConfig, BitActor, RuleSet, Vectors};
use ebbflow::flow::{ChangeKind, Item, What};
use ebbflow::sources::intern::{Interner, Symbol};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use flow_bitactor_support::{FakeResources, Reference};

/// xorshift64: a fixed sequence, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const RULES: &str = r#"
rule a
    kind Tick
    when Price > 100
rule b
    kind Tick, Pod
    when pct(Price) > 5
rule c
    kind Pod
    when delta(RestartsTotal) >= 2
rule d
    kind Pod
    namespace ns1
    when WaitingReason == "Crash"
rule e
    kind Deployment, Pod, Tick
    when ReplicasDesired - ReplicasReady >= 1
rule f
    kind Pod, Node
    when Ready == false
rule g
    kind Tick
    when Quantity outside [10, 20]
    when Price < 150
rule h
    kind Node, Deployment
    when ReplicasReady != 3
rule i
    kind Tick
    when delta(Price) <= -1
rule j
    kind Pod, Tick
    when WaitingReason != "Crash"
    when Price >= 50
"#;

/// The fields the random records carry.
const FIELDS: [FieldId; 7] = [
    FieldId::Price,
    FieldId::Quantity,
    FieldId::RestartsTotal,
    FieldId::Ready,
    FieldId::WaitingReason,
    FieldId::ReplicasDesired,
    FieldId::ReplicasReady,
];

/// The rules, an interner holding their strings, and the symbols the records use:
/// `[Crash, Other, ns1, ns2]`.
fn setup() -> (RuleSet, Interner, [Symbol; 4]) {
    let rules = RuleSet::parse(RULES).unwrap_or_else(|e| panic!("{e}"));
    let mut interner = Interner::default();
    let syms = ["Crash", "Other", "ns1", "ns2"].map(|s| interner.intern(s));
    (rules, interner, syms)
}

/// A random value of `id`'s type; `odd` adds NaN and zero prices.
fn value(rng: &mut Rng, id: FieldId, syms: &[Symbol; 4], odd: bool) -> FieldValue {
    match id {
        FieldId::Price | FieldId::Quantity => {
            if odd && rng.below(15) == 0 {
                FieldValue::F64(f64::NAN)
            } else if odd && rng.below(15) == 0 {
                FieldValue::F64(0.0)
            } else {
                FieldValue::F64(rng.below(300) as f64 * 0.5 - 10.0)
            }
        }
        FieldId::Ready => FieldValue::Bool(rng.below(2) == 0),
        FieldId::WaitingReason => FieldValue::Sym(syms[rng.below(2) as usize]),
        _ => FieldValue::I64(rng.below(7) as i64 - 1),
    }
}

#[test]
fn random_chunks_of_mixed_kinds_and_layouts_agree_with_the_reference() {
    // Every instruction set this CPU has: the widest, then capped at AVX, SSE2, none.
    for vectors in [
        Vectors::Widest,
        Vectors::Avx,
        Vectors::Sse2,
        Vectors::Scalar,
    ] {
        agree_with_the_reference(vectors);
    }
}

#[test]
fn a_vector_cap_picks_at_most_that_instruction_set() {
    let (rules, interner, _) = setup();
    let actor = |vectors| {
        let config = ActorConfig {
            vectors,
            ..ActorConfig::default()
        };
        BitActor::compile_readonly(&rules, &interner, config).instruction_set()
    };
    assert_eq!(actor(Vectors::Scalar), "scalar");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            actor(Vectors::Sse2),
            "sse2",
            "SSE2 is part of every x86-64 CPU"
        );
        assert!(["sse2", "avx"].contains(&actor(Vectors::Avx)));
        assert!(["avx", "avx512"].contains(&actor(Vectors::Widest)));
    }
}

fn agree_with_the_reference(vectors: Vectors) {
    let (rules, interner, syms) = setup();
    let config = ActorConfig {
        vectors,
        ..ActorConfig::default()
    };
    let mut a = BitActor::compile_readonly(&rules, &interner, config);
    let mut res = FakeResources::default();
    let mut reference = Reference::default();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let kinds = [
        Kind::Tick,
        Kind::Pod,
        Kind::Node,
        Kind::Deployment,
        Kind::Service,
    ];
    let fields = FIELDS;
    let mut total = 0u64;
    for round in 0..1000 {
        let n = 1 + rng.below(200) as usize;
        // few layouts per round, sometimes many
        let mut batch: Vec<Item> = Vec::with_capacity(n);
        let kind_mode = rng.below(3);
        for _ in 0..n {
            let kind = if kind_mode == 0 {
                Kind::Tick
            } else {
                kinds[rng.below(kinds.len() as u64) as usize]
            };
            let op = if rng.below(20) == 0 {
                Op::Deleted
            } else {
                Op::Modified
            };
            let mut r = Record::new(kind, op);
            r.key = rng.below(12) + 1;
            r.namespace = syms[2 + rng.below(2) as usize];
            let nf = if kind_mode == 0 && rng.below(4) != 0 {
                3
            } else {
                rng.below(9) as usize
            };
            for j in 0..nf {
                let id = if kind_mode == 0 && nf == 3 {
                    [FieldId::Price, FieldId::Quantity, FieldId::ReplicasReady][j]
                } else {
                    fields[rng.below(fields.len() as u64) as usize]
                };
                let v = value(&mut rng, id, &syms, true);
                r.push(id, v);
            }
            let mut it = res.annotate(r);
            match rng.below(25) {
                0 => it.header.what = What::Unchanged,
                1 => it.header.what = What::Step,
                _ => {}
            }
            if rng.below(50) == 0 {
                it.header.change = ChangeKind::Deleted;
            }
            batch.push(it);
        }
        let before: Vec<Item> = batch.clone();
        a.evaluate(&mut batch);
        for (i, it) in batch.iter().enumerate() {
            if it.header.what != What::Record {
                assert_eq!(it.hits, before[i].hits, "non-record touched");
                continue;
            }
            total += 1;
            let want = reference.hits(&rules, it, &interner);
            assert_eq!(
                it.hits,
                want,
                "round {round} item {i} ({}): {:?} prev {:?}",
                a.instruction_set(),
                it.record,
                fields.iter().map(|&f| it.prev(f)).collect::<Vec<_>>()
            );
        }
    }
    assert!(total > 50_000, "only {total} record items were compared");
}

#[test]
fn commands_inside_a_batch_apply_where_they_stand() {
    use ebbflow::flow::Command;
    let (rules, interner, syms) = setup();
    let mut a = BitActor::compile_readonly(&rules, &interner, ActorConfig::default());
    let mut b = BitActor::compile_readonly(&rules, &interner, ActorConfig::default());
    let mut res = FakeResources::default();
    let mut rng = Rng(12345);
    for _ in 0..700 {
        let n = 1 + rng.below(200) as usize;
        let mut batch = Vec::new();
        for _ in 0..n {
            if rng.below(30) == 0 {
                let cmd = match rng.below(3) {
                    0 => Command::SetThreshold {
                        request: 1,
                        rule: [0u16, 1, 2, 6, 7, 8][rng.below(6) as usize],
                        value: rng.below(200) as f64 - 20.0,
                    },
                    1 => Command::EnableRule {
                        request: 2,
                        rule: rng.below(11) as u16,
                        enabled: rng.below(2) == 0,
                    },
                    _ => Command::AckAlert {
                        request: 3,
                        key: rng.below(12) + 1,
                        rule: rng.below(10) as u16,
                    },
                };
                batch.push(Item::from_command(cmd));
                continue;
            }
            let kind = [Kind::Tick, Kind::Pod, Kind::Node, Kind::Deployment][rng.below(4) as usize];
            let mut r = Record::new(kind, Op::Modified);
            r.key = rng.below(12) + 1;
            r.namespace = syms[2 + rng.below(2) as usize];
            for _ in 0..rng.below(6) {
                let id = FIELDS[rng.below(FIELDS.len() as u64) as usize];
                let v = value(&mut rng, id, &syms, false);
                r.push(id, v);
            }
            batch.push(res.annotate(r));
        }
        let mut split = batch.clone();
        a.process(&mut batch);
        for it in split.iter_mut() {
            if it.header.what == What::Command {
                b.apply_item(it);
            } else {
                b.evaluate(std::slice::from_mut(it));
            }
        }
        for (x, y) in batch.iter().zip(&split) {
            assert_eq!(x.hits, y.hits, "hits of {:?}", x.record);
            assert_eq!(x.header.what, y.header.what, "a command became its reply");
            assert_eq!(
                format!("{:?}", x.command),
                format!("{:?}", y.command),
                "same reply"
            );
        }
    }
    assert_eq!(a.stats(), b.stats());
}
