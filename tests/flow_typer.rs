//! The typer's outputs work in the real tools: the generated Python module
//! imports in `python3`, its dataclasses construct from (and convert back
//! to) the JSON instances ebbflow writes, and the generated JSON Schema
//! (draft 2020-12) accepts those instances and rejects broken ones in the
//! `jsonschema` PyPI package (installed by `scripts/setup.d/python.sh`).
//!
//! Run: `bash scripts/setup.d/python.sh && cargo test --test flow_typer`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebbflow::flow::schema::typer::{json_schema, python_ident, python_module, write_json_instance};
use ebbflow::flow::schema::{Schema, SchemaInferer};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::{Interner, InternerConfig, Resolver, Symbol};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

/// The checks, run by `python3 check.py <dir>`. Prints `OK <valid>
/// <rejected>`; any failed check raises and exits non-zero.
const CHECK_PY: &str = r#"
import importlib.util, json, sys
import jsonschema

d = sys.argv[1]
case = json.load(open(f"{d}/case.json"))
spec = importlib.util.spec_from_file_location(case["module"], f"{d}/models.py")
mod = importlib.util.module_from_spec(spec)
sys.modules[case["module"]] = mod
spec.loader.exec_module(mod)
assert mod.SCHEMA_VERSION == case["version"], (mod.SCHEMA_VERSION, case["version"])

schema = json.load(open(f"{d}/schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
instances = [json.loads(l) for l in open(f"{d}/instances.jsonl")]

def same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

valid = 0
for inst in instances:
    v.validate(inst)
    m = mod.from_dict(inst)
    assert type(m).__name__ == inst["kind"] or type(m).KIND == inst["kind"]
    assert same(m.to_dict(), inst), (m.to_dict(), inst)
    valid += 1

rejected = 0
def reject(bad, exc, build):
    global rejected
    assert not v.is_valid(bad), ("schema accepted", bad)
    try:
        build(bad)
    except exc:
        rejected += 1
        return
    raise AssertionError(("model accepted", bad))

WRONG = {"int": "7", "float": "seven", "bool": 1, "str": 5}
for kind, cls in mod.MODELS.items():
    sample = next(i for i in instances if i["kind"] == kind)
    for attr, key, code, required in cls._FIELDS:
        if required:
            bad = dict(sample); bad.pop(key, None)
            reject(bad, TypeError, cls.from_dict)
        else:
            ok = dict(sample); ok.pop(key, None)
            v.validate(ok)
            assert key not in cls.from_dict(ok).to_dict()
            assert getattr(cls.from_dict(ok), attr) is None
        bad = dict(sample); bad[key] = WRONG[code]
        reject(bad, TypeError, cls.from_dict)
    bad = dict(sample); bad["noSuchKey"] = 1
    reject(bad, ValueError, cls.from_dict)
reject({"kind": "NoSuchKind"}, ValueError, mod.from_dict)
print(f"OK {valid} {rejected}")
"#;

/// A fresh scratch directory for one case.
fn scratch(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebbflow-typer-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn python(script: &Path, arg: &Path) -> String {
    let out = Command::new("python3")
        .arg(script)
        .arg(arg)
        .output()
        .expect("python3 must be installed (see scripts/setup.d/python.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python3 failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Writes the module, schema and instances of `records` and runs the
/// checks; asserts every instance passed and every broken variant was
/// rejected by both the validator and the model.
fn check_case(label: &str, schema: &Schema, records: &[Record], resolver: &Resolver) {
    let d = scratch(label);
    std::fs::write(d.join("models.py"), python_module(schema)).unwrap();
    std::fs::write(d.join("schema.json"), json_schema(schema)).unwrap();
    let mut lines = String::new();
    for r in records {
        let stats = write_json_instance(schema, r, resolver, &mut lines);
        assert_eq!(stats.unresolved_values, 0, "{label}: {r:?}");
        assert_eq!(stats.not_in_schema, 0, "{label}: {r:?}");
        lines.push('\n');
    }
    std::fs::write(d.join("instances.jsonl"), &lines).unwrap();
    let module = format!("ebb_models_{label}");
    let case = serde_json::json!({ "module": module, "version": schema.version() });
    std::fs::write(d.join("case.json"), case.to_string()).unwrap();
    std::fs::write(d.join("check.py"), CHECK_PY).unwrap();
    let out = python(&d.join("check.py"), &d);
    // Per class: one rejection per required property (dropped), one per
    // property (wrong type), one unknown key; plus one unknown kind.
    let expected_rejections: usize = schema
        .classes()
        .map(|(_, c)| c.properties().filter(|p| p.required).count() + c.properties().count() + 1)
        .sum::<usize>()
        + 1;
    assert_eq!(
        out.trim(),
        format!("OK {} {expected_rejections}", records.len()),
        "{label}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

fn observe_all(records: &[Record]) -> SchemaInferer {
    let mut inf = SchemaInferer::new();
    for r in records {
        inf.observe(r);
    }
    inf
}

fn sample<G: Generator>(g: &mut G, n: usize) -> Vec<Record> {
    (0..n)
        .map(|_| g.next_record())
        .filter(|r| r.op != Op::Bookmark)
        .collect()
}

#[test]
fn generator_models_import_construct_and_validate() {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let recs = sample(&mut k8s, 3000);
    let inf = observe_all(&recs);
    check_case("k8s", inf.schema(), &recs, &k8s.interner().resolver());

    let mut trading = TradingGenerator::new(TradingConfig::default());
    let recs = sample(&mut trading, 500);
    let inf = observe_all(&recs);
    check_case(
        "trading",
        inf.schema(),
        &recs,
        &trading.decoder().interner().resolver(),
    );

    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let recs = sample(&mut city, 500);
    let inf = observe_all(&recs);
    check_case(
        "iot",
        inf.schema(),
        &recs,
        &city.decoder().interner().resolver(),
    );
}

fn rec(kind: Kind, ns: Symbol, name: Symbol, fields: &[(FieldId, FieldValue)]) -> Record {
    let mut r = Record::new(kind, Op::Modified);
    r.namespace = ns;
    r.name = name;
    for &(id, v) in fields {
        r.push(id, v);
    }
    r
}

/// Nasty strings, non-finite doubles, a range widened from long to
/// double and one widened to string all survive the JSON and Python round
/// trip and validate.
#[test]
fn nasty_values_and_widened_ranges_round_trip() {
    let mut interner = Interner::new(InternerConfig::default());
    let ns = interner.intern("ns \"q\" \\ \n\t ünï 🦀");
    let names = ["a\"b", "c\\d", "e\nf", "\u{1}\u{7f}", "日本", ""];
    let syms: Vec<Symbol> = names.iter().map(|n| interner.intern(n)).collect();
    let mut records = Vec::new();
    for (i, &name) in syms.iter().enumerate() {
        let mut r = rec(
            Kind::Pod,
            ns,
            name,
            &[
                (FieldId::Phase, FieldValue::Sym(syms[(i + 1) % syms.len()])),
                (FieldId::RestartsTotal, FieldValue::I64(i64::MIN + i as i64)),
                (FieldId::SpecHash, FieldValue::I64(-1)),
            ],
        );
        r.resource_version = u64::MAX - i as u64;
        r.source_ns = i64::MIN + 1 + i as i64 * 1_000_000_007;
        records.push(r);
    }
    for v in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e-300,
        2.5,
    ] {
        records.push(rec(
            Kind::Sensor,
            Symbol::EMPTY,
            Symbol::EMPTY,
            &[(FieldId::Value, FieldValue::F64(v))],
        ));
    }
    // Price: long then double (→ double); Quantity: bool then double (→ string).
    records.push(rec(
        Kind::Tick,
        syms[4],
        syms[0],
        &[
            (FieldId::Price, FieldValue::I64(3)),
            (FieldId::Quantity, FieldValue::Bool(true)),
        ],
    ));
    records.push(rec(
        Kind::Tick,
        syms[4],
        syms[1],
        &[
            (FieldId::Price, FieldValue::F64(3.25)),
            (FieldId::Quantity, FieldValue::F64(f64::NAN)),
        ],
    ));
    let inf = observe_all(&records);
    check_case("nasty", inf.schema(), &records, &interner.resolver());
}

/// Each version gets its own module: a property that appears later is an
/// `Optional` field of the new module only, with the new version number.
#[test]
fn each_version_regenerates_the_module() {
    let mut interner = Interner::new(InternerConfig::default());
    let name = interner.intern("web-1");
    let mut inf = SchemaInferer::new();
    inf.observe(&rec(
        Kind::Pod,
        Symbol::EMPTY,
        name,
        &[(FieldId::Ready, FieldValue::Bool(true))],
    ));
    let v1 = python_module(inf.schema());
    let change = inf.observe(&rec(
        Kind::Pod,
        Symbol::EMPTY,
        name,
        &[
            (FieldId::Ready, FieldValue::Bool(false)),
            (FieldId::RestartsTotal, FieldValue::I64(2)),
        ],
    ));
    assert!(change.is_some());
    let v2 = python_module(inf.schema());
    let d = scratch("versions");
    std::fs::write(d.join("m1.py"), v1).unwrap();
    std::fs::write(d.join("m2.py"), v2).unwrap();
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
import dataclasses, typing, m1, m2
assert (m1.SCHEMA_VERSION, m2.SCHEMA_VERSION) == (1, 2)
f1 = {f.name: f for f in dataclasses.fields(m1.Pod)}
f2 = {f.name: f for f in dataclasses.fields(m2.Pod)}
assert "restarts_total" not in f1
assert f2["restarts_total"].type == typing.Optional[int]
assert f2["restarts_total"].default is None
assert f2["ready"].type == bool and f2["ready"].default is dataclasses.MISSING
p = m2.Pod(name="web-1", ready=True)
assert p.to_dict() == {"kind": "Pod", "name": "web-1", "ready": True}
print("OK")
"#;
    std::fs::write(d.join("check.py"), script).unwrap();
    assert_eq!(python(&d.join("check.py"), &d).trim(), "OK");
    let _ = std::fs::remove_dir_all(&d);
}

/// `python_ident` turns any name into an identifier Python accepts and
/// that is not a keyword.
#[test]
fn python_identifiers_are_valid_in_python() {
    let inputs = [
        "class",
        "def",
        "None",
        "True",
        "lambda",
        "await",
        "9lives",
        "0",
        "",
        "a-b",
        "with space",
        "ünï",
        "x.y",
        "_ok",
        "snake_case",
        "match",
        "__init__",
    ];
    let idents: Vec<String> = inputs.iter().map(|s| python_ident(s)).collect();
    let d = scratch("idents");
    std::fs::write(
        d.join("idents.json"),
        serde_json::to_string(&idents).unwrap(),
    )
    .unwrap();
    let script = r#"
import json, keyword, sys
idents = json.load(open(sys.argv[1] + "/idents.json"))
bad = [i for i in idents if not i.isidentifier() or keyword.iskeyword(i)]
assert not bad, bad
for i in idents:
    exec(f"{i} = 1")
print("OK", len(idents))
"#;
    std::fs::write(d.join("check.py"), script).unwrap();
    assert_eq!(
        python(&d.join("check.py"), &d).trim(),
        format!("OK {}", inputs.len())
    );
    let _ = std::fs::remove_dir_all(&d);
}
