//! The Turtle writers produce W3C Turtle that a real parser (`oxttl`) reads
//! into exactly the triples expected: the schema vocabulary, and instance
//! snapshots with nasty names (quotes, backslashes, newlines, slashes,
//! dot-segments, non-ASCII) and non-finite doubles.
//!
//! Expected triples are written as N-Triples by an independent path (every
//! non-alphanumeric character of a literal as a `\u` escape) and parsed
//! with oxttl's N-Triples parser, so both sides are compared as parsed RDF
//! terms, not as text.
//!
//! Run: `cargo test --test flow_turtle`.

use std::collections::HashSet;

use ebbflow::flow::schema::turtle::{write_instances, write_schema, write_string_literal};
use ebbflow::flow::schema::SchemaInferer;
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::{Generator, DEFAULT_START_NS};
use ebbflow::sources::intern::{Interner, InternerConfig, Symbol};
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};
use oxttl::{NTriplesParser, TurtleParser};

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const OWL: &str = "http://www.w3.org/2002/07/owl#";
const RDFS: &str = "http://www.w3.org/2000/01/rdf-schema#";
const XSD: &str = "http://www.w3.org/2001/XMLSchema#";
const EBB: &str = "https://ebbflow.dev/schema#";
const RES: &str = "https://ebbflow.dev/resource/";

/// Parses Turtle, failing the test on any syntax error; keeps duplicates.
fn parse_turtle(doc: &str) -> Vec<String> {
    TurtleParser::new()
        .for_slice(doc.as_bytes())
        .map(|t| match t {
            Ok(t) => t.to_string(),
            Err(e) => panic!("Turtle does not parse: {e}\n{doc}"),
        })
        .collect()
}

/// Parses expected N-Triples into the same canonical form.
fn parse_ntriples(lines: &[String]) -> HashSet<String> {
    let doc = lines.join("\n");
    NTriplesParser::new()
        .for_slice(doc.as_bytes())
        .map(|t| match t {
            Ok(t) => t.to_string(),
            Err(e) => panic!("expected N-Triples do not parse: {e}\n{doc}"),
        })
        .collect()
}

/// An N-Triples string literal with every character that is not an ASCII
/// letter or digit written as `\uXXXX` / `\UXXXXXXXX`.
fn nt_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            o.push(c);
        } else if (c as u32) <= 0xFFFF {
            o.push_str(&format!("\\u{:04X}", c as u32));
        } else {
            o.push_str(&format!("\\U{:08X}", c as u32));
        }
    }
    o.push('"');
    o
}

fn typed(lex: &str, xsd: &str) -> String {
    format!("\"{lex}\"^^<{XSD}{xsd}>")
}

fn triple(s: &str, p: &str, o: &str) -> String {
    format!("<{s}> <{p}> {o} .")
}

fn iri(s: &str) -> String {
    format!("<{s}>")
}

/// The expected vocabulary triples of one class property.
fn property(out: &mut Vec<String>, kind: &str, local: &str, range: &str, required: bool) {
    let generic = format!("{EBB}{local}");
    let p = format!("{EBB}{kind}.{local}");
    out.push(triple(
        &generic,
        RDF_TYPE,
        &iri(&format!("{OWL}DatatypeProperty")),
    ));
    out.push(triple(&generic, &format!("{RDFS}label"), &nt_str(local)));
    out.push(triple(
        &p,
        RDF_TYPE,
        &iri(&format!("{OWL}DatatypeProperty")),
    ));
    out.push(triple(&p, &format!("{RDFS}label"), &nt_str(local)));
    out.push(triple(
        &p,
        &format!("{RDFS}domain"),
        &iri(&format!("{EBB}{kind}")),
    ));
    out.push(triple(
        &p,
        &format!("{RDFS}range"),
        &iri(&format!("{XSD}{range}")),
    ));
    out.push(triple(&p, &format!("{RDFS}subPropertyOf"), &iri(&generic)));
    out.push(triple(
        &p,
        &format!("{EBB}required"),
        &typed(if required { "true" } else { "false" }, "boolean"),
    ));
}

fn class(out: &mut Vec<String>, kind: &str) {
    let c = format!("{EBB}{kind}");
    out.push(triple(&c, RDF_TYPE, &iri(&format!("{OWL}Class"))));
    out.push(triple(&c, &format!("{RDFS}label"), &nt_str(kind)));
}

fn header(out: &mut Vec<String>, version: u64) {
    let o = "https://ebbflow.dev/schema";
    out.push(triple(o, RDF_TYPE, &iri(&format!("{OWL}Ontology"))));
    out.push(triple(
        o,
        &format!("{OWL}versionInfo"),
        &typed(&version.to_string(), "integer"),
    ));
    let r = format!("{EBB}required");
    out.push(triple(
        &r,
        RDF_TYPE,
        &iri(&format!("{OWL}AnnotationProperty")),
    ));
    out.push(triple(
        &r,
        &format!("{RDFS}comment"),
        &nt_str("true when every record of the domain class carried the property"),
    ));
}

fn record(kind: Kind, ns: Symbol, name: Symbol, fields: &[(FieldId, FieldValue)]) -> Record {
    let mut r = Record::new(kind, Op::Modified);
    r.namespace = ns;
    r.name = name;
    r.key = 0x00ab_cdef_0123_4567;
    for &(id, v) in fields {
        r.push(id, v);
    }
    r
}

#[test]
fn schema_turtle_parses_to_exactly_the_expected_vocabulary() {
    let mut interner = Interner::new(InternerConfig::default());
    let pod = interner.intern("p");
    let mut inf = SchemaInferer::new();
    let ready = (FieldId::Ready, FieldValue::Bool(true));
    let restarts = (FieldId::RestartsTotal, FieldValue::I64(3));
    inf.observe(&record(Kind::Pod, Symbol::EMPTY, pod, &[ready, restarts]));
    inf.observe(&record(Kind::Pod, Symbol::EMPTY, pod, &[ready]));
    let value_i = (FieldId::Value, FieldValue::I64(1));
    let value_f = (FieldId::Value, FieldValue::F64(0.5));
    inf.observe(&record(
        Kind::Sensor,
        Symbol::EMPTY,
        Symbol::EMPTY,
        &[value_i],
    ));
    inf.observe(&record(
        Kind::Sensor,
        Symbol::EMPTY,
        Symbol::EMPTY,
        &[value_f],
    ));
    assert_eq!(inf.version(), 4, "new class, optional, new class, widened");

    let mut doc = String::new();
    write_schema(inf.schema(), &mut doc);
    let got: HashSet<String> = parse_turtle(&doc).into_iter().collect();

    let mut want = Vec::new();
    header(&mut want, 4);
    class(&mut want, "Pod");
    property(&mut want, "Pod", "name", "string", true);
    property(&mut want, "Pod", "ready", "boolean", true);
    property(&mut want, "Pod", "restartsTotal", "long", false);
    class(&mut want, "Sensor");
    property(&mut want, "Sensor", "value", "double", true);
    let want = parse_ntriples(&want);
    assert_eq!(
        got,
        want,
        "missing: {:#?}\nunexpected: {:#?}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>()
    );
}

/// Percent-decodes one IRI path segment.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn instance_snapshot_round_trips_nasty_strings_and_special_doubles() {
    let nasty_names = [
        "quote\"back\\slash",
        "new\nline\r\ttab",
        "a/b c%41",
        "..",
        ".",
        "ünïcødé-日本-🦀",
        "<>{}|^`",
        "ctl\u{1}\u{7f}",
    ];
    let mut interner = Interner::new(InternerConfig::default());
    let ns = interner.intern("team \"x\"/prod");
    let phase = interner.intern("Crash\"Loop\\\n");
    let resolver = interner.resolver();
    let mut records = Vec::new();
    for (i, n) in nasty_names.iter().enumerate() {
        let name = interner.intern(n);
        let mut r = record(
            Kind::Pod,
            ns,
            name,
            &[
                (FieldId::Phase, FieldValue::Sym(phase)),
                (FieldId::RestartsTotal, FieldValue::I64(-(i as i64) - 1)),
                (FieldId::Ready, FieldValue::Bool(i % 2 == 0)),
                (FieldId::SpecHash, FieldValue::I64(-2)),
            ],
        );
        r.resource_version = 1000 + i as u64;
        r.source_ns = DEFAULT_START_NS + 1_500_000_000;
        records.push(r);
    }
    let doubles = [0.1, -0.0, 1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    for (i, v) in doubles.iter().enumerate() {
        let mut r = record(
            Kind::Sensor,
            Symbol::EMPTY,
            Symbol::EMPTY,
            &[(FieldId::Value, FieldValue::F64(*v))],
        );
        r.key = i as u64 + 1;
        records.push(r);
    }
    let mut inf = SchemaInferer::new();
    for r in &records {
        inf.observe(r);
    }
    let mut doc = String::new();
    let stats = write_instances(inf.schema(), &records, &resolver, &mut doc);
    assert_eq!(stats.instances, records.len() as u64);
    assert_eq!(stats.unresolved_names + stats.unresolved_values, 0);
    assert_eq!(stats.not_in_schema, 0);
    let parsed = parse_turtle(&doc);
    assert_eq!(
        parsed.len() as u64,
        stats.instances + stats.values,
        "one rdf:type triple per instance plus one per value"
    );
    let got: HashSet<String> = parsed.into_iter().collect();

    let mut want = Vec::new();
    let ns_text = "team \"x\"/prod";
    for (i, n) in nasty_names.iter().enumerate() {
        let s = format!("{RES}Pod/team%20%22x%22%2Fprod/{}", expected_segment(n));
        let p = |l: &str| format!("{EBB}Pod.{l}");
        want.push(triple(&s, RDF_TYPE, &iri(&format!("{EBB}Pod"))));
        want.push(triple(&s, &p("namespace"), &nt_str(ns_text)));
        want.push(triple(&s, &p("name"), &nt_str(n)));
        want.push(triple(
            &s,
            &p("resourceVersion"),
            &typed(&(1000 + i).to_string(), "unsignedLong"),
        ));
        want.push(triple(
            &s,
            &p("sourceTime"),
            &typed("2026-01-01T00:00:01.5Z", "dateTime"),
        ));
        want.push(triple(&s, &p("phase"), &nt_str("Crash\"Loop\\\n")));
        want.push(triple(
            &s,
            &p("restartsTotal"),
            &typed(&format!("-{}", i + 1), "long"),
        ));
        want.push(triple(
            &s,
            &p("ready"),
            &typed(if i % 2 == 0 { "true" } else { "false" }, "boolean"),
        ));
        want.push(triple(
            &s,
            &p("specHash"),
            &typed("FFFFFFFFFFFFFFFE", "hexBinary"),
        ));
    }
    let lex = ["1e-1", "-0e0", "1e300", "NaN", "INF", "-INF"];
    for (i, l) in lex.iter().enumerate() {
        let s = format!("https://ebbflow.dev/key/Sensor/{:016X}", i + 1);
        want.push(triple(&s, RDF_TYPE, &iri(&format!("{EBB}Sensor"))));
        want.push(triple(
            &s,
            &format!("{EBB}Sensor.value"),
            &typed(l, "double"),
        ));
    }
    let want = parse_ntriples(&want);
    assert_eq!(
        got,
        want,
        "missing: {:#?}\nunexpected: {:#?}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>()
    );

    // Independently of the expected encoding: every Pod subject's last two
    // path segments percent-decode to the namespace and the name.
    let mut decoded = HashSet::new();
    for t in &got {
        if let Some(rest) = t.strip_prefix(&format!("<{RES}Pod/")) {
            let iri_part = &rest[..rest.find('>').unwrap()];
            let (ns_seg, name_seg) = iri_part.split_once('/').unwrap();
            assert!(!name_seg.contains('/'));
            assert_eq!(percent_decode(ns_seg), ns_text);
            decoded.insert(percent_decode(name_seg));
        }
    }
    let names: HashSet<String> = nasty_names.iter().map(|s| s.to_string()).collect();
    assert_eq!(decoded, names);
    // The non-finite lexical forms read back as the same doubles.
    for (l, v) in lex.iter().zip(doubles) {
        let back: f64 = l.parse().unwrap();
        assert!(back == v || (back.is_nan() && v.is_nan()), "{l}");
    }
}

/// The percent-encoding the writer promises: unreserved bytes kept, all
/// others `%XX`; a segment of only dots fully encoded.
fn expected_segment(s: &str) -> String {
    let all_dots = s.bytes().all(|b| b == b'.');
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_~".contains(&b) || (b == b'.' && !all_dots) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn string_literal_escapes_parse_back_to_the_original() {
    let samples = [
        "",
        "plain",
        "\"",
        "\\",
        "\\\"",
        "\n\r\t",
        "\u{0}\u{1f}\u{7f}",
        "🦀 ünï",
        "'single' \"\"\" triple",
    ];
    for s in samples {
        let mut doc = String::from("<urn:s> <urn:p> ");
        write_string_literal(s, &mut doc);
        doc.push_str(" .\n");
        let got: HashSet<String> = parse_turtle(&doc).into_iter().collect();
        let want = parse_ntriples(&[format!("<urn:s> <urn:p> {} .", nt_str(s))]);
        assert_eq!(got, want, "{s:?}");
    }
}

/// Schema and snapshot from each generator parse, and every value the
/// writer counted is a triple.
#[test]
fn generator_schemas_and_snapshots_parse() {
    let mut k8s = ClusterGenerator::new(ClusterConfig::default());
    let recs: Vec<Record> = (0..5_000).map(|_| k8s.next_record()).collect();
    check_snapshot(&recs, &k8s.interner().resolver(), "k8s");
    let mut trading = TradingGenerator::new(TradingConfig::default());
    let recs: Vec<Record> = (0..5_000).map(|_| trading.next_record()).collect();
    check_snapshot(&recs, &trading.decoder().interner().resolver(), "trading");
    let mut city = SmartCityGenerator::new(SmartCityConfig::default());
    let recs: Vec<Record> = (0..5_000).map(|_| city.next_record()).collect();
    check_snapshot(&recs, &city.decoder().interner().resolver(), "iot");
}

fn check_snapshot(recs: &[Record], resolver: &ebbflow::sources::intern::Resolver, label: &str) {
    let recs: Vec<Record> = recs
        .iter()
        .filter(|r| r.op != Op::Bookmark)
        .copied()
        .collect();
    let mut inf = SchemaInferer::new();
    for r in &recs {
        inf.observe(r);
    }
    let mut doc = String::new();
    write_schema(inf.schema(), &mut doc);
    let classes = parse_turtle(&doc)
        .iter()
        .filter(|t| {
            t.ends_with(&format!("<{OWL}Class> .")) || t.ends_with(&format!("<{OWL}Class>"))
        })
        .count();
    assert_eq!(classes, inf.schema().classes().count(), "{label}");
    assert!(classes > 0, "{label}");
    let mut doc = String::new();
    let stats = write_instances(inf.schema(), &recs, resolver, &mut doc);
    assert_eq!(stats.instances, recs.len() as u64, "{label}");
    assert_eq!(stats.not_in_schema, 0, "{label}");
    assert_eq!(stats.unresolved_values, 0, "{label}");
    let parsed = parse_turtle(&doc);
    assert_eq!(
        parsed.len() as u64,
        stats.instances + stats.values,
        "{label}: one triple per instance and per value"
    );
    assert!(
        stats.values > stats.instances,
        "{label}: records carry values"
    );
}
