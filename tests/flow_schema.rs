//! Schema inference over the scenario generators and hand-made records:
//! the version bumps exactly when something new appears, ranges widen
//! along the documented lattice, and `Schema::diff` reports exactly what
//! each change added.
//!
//! Run: `cargo test --test flow_schema`.

use ebbflow::flow::schema::{
    Header, PropertyKey, Range, Schema, SchemaChange, SchemaDelta, SchemaInferer,
};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Symbol;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

fn rec(kind: Kind, fields: &[(FieldId, FieldValue)]) -> Record {
    let mut r = Record::new(kind, Op::Modified);
    r.name = Symbol::from_id(3);
    for &(id, v) in fields {
        r.push(id, v);
    }
    r
}

/// The deltas a change should produce, from its masks alone.
fn expected_deltas(c: &SchemaChange, schema: &Schema, older: &Schema) -> Vec<SchemaDelta> {
    let class = schema.class(c.kind).unwrap();
    let mut out = Vec::new();
    if c.new_class {
        out.push(SchemaDelta::ClassAdded(c.kind));
    }
    for key in PropertyKey::all() {
        let bit = 1u64 << key.slot();
        let p = class.property(key);
        if c.added & bit != 0 {
            let p = p.unwrap();
            out.push(SchemaDelta::PropertyAdded {
                kind: c.kind,
                property: key,
                range: p.range,
                required: p.required,
            });
        }
        if c.widened & bit != 0 {
            out.push(SchemaDelta::RangeWidened {
                kind: c.kind,
                property: key,
                from: older.class(c.kind).unwrap().property(key).unwrap().range,
                to: p.unwrap().range,
            });
        }
        if c.now_optional & bit != 0 {
            out.push(SchemaDelta::BecameOptional {
                kind: c.kind,
                property: key,
            });
        }
    }
    out
}

/// Over each generator: every change bumps the version by one, its diff
/// against the previous version lists exactly what the change's masks say,
/// and replaying the same records changes nothing.
#[test]
fn generator_streams_bump_only_on_news_and_diffs_match_changes() {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let gens: [(&mut dyn Generator, &str, &[Kind]); 3] = [
        (
            &mut k8s,
            "k8s",
            &[
                Kind::Pod,
                Kind::Node,
                Kind::Deployment,
                Kind::Service,
                Kind::Event,
            ],
        ),
        (&mut trading, "trading", &[Kind::Tick]),
        (&mut city, "iot", &[Kind::Sensor]),
    ];
    for (g, label, kinds) in gens {
        let records: Vec<Record> = (0..30_000).map(|_| g.next_record()).collect();
        let mut inf = SchemaInferer::new();
        let mut prev = inf.schema().clone();
        let mut changes = 0;
        for r in &records {
            if let Some(c) = inf.observe(r) {
                changes += 1;
                assert_eq!(c.version, prev.version() + 1, "{label}");
                assert_eq!(c.version, inf.version(), "{label}");
                assert_eq!(c.kind, r.kind);
                let d = inf.schema().diff(&prev);
                assert_eq!(
                    d.deltas,
                    expected_deltas(&c, inf.schema(), &prev),
                    "{label}"
                );
                assert!(!d.is_empty());
                prev = inf.schema().clone();
            } else {
                assert_eq!(inf.schema(), &prev, "{label}: no change, same schema");
            }
        }
        assert_eq!(inf.version(), changes, "{label}");
        for &k in kinds {
            assert!(inf.schema().class(k).is_some(), "{label}: {k:?}");
        }
        let v = inf.version();
        for r in &records {
            assert_eq!(inf.observe(r), None, "{label}: replay brings nothing new");
        }
        assert_eq!(inf.version(), v);
        // A diff against the empty schema lists every class and property.
        let full = inf.schema().diff(&Schema::new());
        let props: usize = inf
            .schema()
            .classes()
            .map(|(_, c)| c.properties().count())
            .sum();
        assert_eq!(full.deltas.len(), inf.schema().classes().count() + props);
        assert_eq!((full.from_version, full.to_version), (0, v));
        // Reversed, nothing was gained.
        assert!(Schema::new().diff(inf.schema()).is_empty());
    }
}

#[test]
fn ranges_follow_value_types_and_hash_fields_are_hex() {
    let mut inf = SchemaInferer::new();
    let mut r = rec(
        Kind::Pod,
        &[
            (FieldId::RestartsTotal, FieldValue::I64(1)),
            (FieldId::SpecHash, FieldValue::I64(-5)),
            (FieldId::Ready, FieldValue::Bool(true)),
            (FieldId::Phase, FieldValue::Sym(Symbol::from_id(2))),
            (FieldId::Value, FieldValue::F64(0.5)),
        ],
    );
    r.resource_version = 9;
    r.source_ns = 1;
    inf.observe(&r);
    let class = inf.schema().class(Kind::Pod).unwrap();
    let range = |k| class.property(k).unwrap().range;
    assert_eq!(
        range(PropertyKey::Field(FieldId::RestartsTotal)),
        Range::Long
    );
    assert_eq!(
        range(PropertyKey::Field(FieldId::SpecHash)),
        Range::HexBinary
    );
    assert_eq!(range(PropertyKey::Field(FieldId::Ready)), Range::Boolean);
    assert_eq!(range(PropertyKey::Field(FieldId::Phase)), Range::String);
    assert_eq!(range(PropertyKey::Field(FieldId::Value)), Range::Double);
    assert_eq!(range(PropertyKey::Header(Header::Name)), Range::String);
    assert_eq!(
        range(PropertyKey::Header(Header::ResourceVersion)),
        Range::UnsignedLong
    );
    assert_eq!(
        range(PropertyKey::Header(Header::SourceTime)),
        Range::DateTime
    );
    // Namespace was empty: no such property.
    assert!(class
        .property(PropertyKey::Header(Header::Namespace))
        .is_none());
    assert!(class.properties().all(|p| p.required));
}

#[test]
fn widening_is_reported_with_old_and_new_range() {
    let mut inf = SchemaInferer::new();
    inf.observe(&rec(Kind::Tick, &[(FieldId::Price, FieldValue::I64(3))]));
    let v1 = inf.schema().clone();
    inf.observe(&rec(Kind::Tick, &[(FieldId::Price, FieldValue::F64(3.5))]));
    let v2 = inf.schema().clone();
    inf.observe(&rec(
        Kind::Tick,
        &[(FieldId::Price, FieldValue::Sym(Symbol::from_id(4)))],
    ));
    let v3 = inf.schema().clone();
    let price = PropertyKey::Field(FieldId::Price);
    assert_eq!(
        v2.diff(&v1).deltas,
        [SchemaDelta::RangeWidened {
            kind: Kind::Tick,
            property: price,
            from: Range::Long,
            to: Range::Double
        }]
    );
    assert_eq!(
        v3.diff(&v1).deltas,
        [SchemaDelta::RangeWidened {
            kind: Kind::Tick,
            property: price,
            from: Range::Long,
            to: Range::String
        }]
    );
    assert_eq!(v3.version(), 3);
    let text = v3.diff(&v1).to_string();
    assert_eq!(
        text,
        "schema v1 -> v3\n  ~ range Tick.price xsd:long -> xsd:string\n"
    );
}

#[test]
fn one_record_can_add_several_things_in_one_version() {
    let mut inf = SchemaInferer::new();
    inf.observe(&rec(
        Kind::Node,
        &[(FieldId::Ready, FieldValue::Bool(true))],
    ));
    let before = inf.schema().clone();
    let c = inf
        .observe(&rec(
            Kind::Node,
            &[
                (FieldId::Ready, FieldValue::I64(1)),
                (FieldId::Unschedulable, FieldValue::Bool(false)),
            ],
        ))
        .unwrap();
    // Ready: boolean ⊔ long = string; Unschedulable is new (optional).
    assert_eq!(c.version, 2);
    assert_eq!(c.widened, 1 << FieldId::Ready as u8);
    assert_eq!(c.added, 1 << FieldId::Unschedulable as u8);
    assert_eq!(
        SchemaChange::keys(c.added).collect::<Vec<_>>(),
        [PropertyKey::Field(FieldId::Unschedulable)]
    );
    let d = inf.schema().diff(&before);
    assert_eq!(d.deltas.len(), 2);
    assert_eq!(
        d.to_string(),
        "schema v1 -> v2\n  ~ range Node.ready xsd:boolean -> xsd:string\n  + property Node.unschedulable xsd:boolean\n"
    );
}
