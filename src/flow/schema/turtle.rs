//! W3C Turtle (RDF 1.1) output: the schema, and a snapshot of instances.
//!
//! Both writers append a complete, self-contained document (prefixes
//! included) to a `String` and allocate only by growing it; the stage calls
//! [`write_schema`] when the version bumps and [`write_instances`] on
//! request, never per record.
//!
//! # Vocabulary
//!
//! ```turtle
//! @prefix owl: <http://www.w3.org/2002/07/owl#> .
//! @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
//! @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
//! @prefix ebb: <https://ebbflow.dev/schema#> .
//!
//! <https://ebbflow.dev/schema> a owl:Ontology ; owl:versionInfo 3 .
//! ebb:required a owl:AnnotationProperty .
//! ebb:Pod a owl:Class ; rdfs:label "Pod" .
//! ebb:restartsTotal a owl:DatatypeProperty ; rdfs:label "restartsTotal" .
//! ebb:Pod.restartsTotal a owl:DatatypeProperty ;
//!     rdfs:label "restartsTotal" ;
//!     rdfs:domain ebb:Pod ;
//!     rdfs:range xsd:long ;
//!     rdfs:subPropertyOf ebb:restartsTotal ;
//!     ebb:required true .
//! ```
//!
//! One property per (class, field), `ebb:<Class>.<field>`, so each has a
//! single `rdfs:domain` (several domains on one property would mean their
//! *intersection*) and its own range; the class-free `ebb:<field>` super
//! property lets a query match a field across classes.
//!
//! Instances are `<https://ebbflow.dev/resource/<Kind>/<ns>/<name>>`, each
//! segment percent-encoded (empty namespace for cluster-scoped objects);
//! records without a resolvable name use
//! `<https://ebbflow.dev/key/<Kind>/<16 hex digits of the key>>`. Literals
//! are typed by the property's range (booleans as `true`/`false`, other
//! non-strings as `"lexical"^^xsd:type`; doubles `NaN`, `INF`, `-INF`
//! where not finite) and escaped per the Turtle grammar.

use crate::sources::intern::Resolver;
use crate::sources::record::{Kind, Record};

use super::model::{PropertyKey, Range, Schema};
use super::value::{render, write_lexical, write_segment, Lexical, Skip};
use super::{EBB_NS, KEY_BASE, ONTOLOGY_IRI, RESOURCE_BASE};

/// What [`write_instances`] wrote and left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceStats {
    /// Instances written (one per record).
    pub instances: u64,
    /// Property values written (the `rdf:type` triple not included).
    pub values: u64,
    /// Instances named by key because the name did not resolve.
    pub unresolved_names: u64,
    /// Values left out because a symbol did not resolve.
    pub unresolved_values: u64,
    /// Values left out because the schema lacks the property or its range
    /// does not cover the value (the schema did not observe the record).
    pub not_in_schema: u64,
}

/// Appends the `@prefix` lines.
pub fn write_prefixes(out: &mut String) {
    out.push_str("@prefix owl: <http://www.w3.org/2002/07/owl#> .\n");
    out.push_str("@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n");
    out.push_str("@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n");
    out.push_str("@prefix ebb: <");
    out.push_str(EBB_NS);
    out.push_str("> .\n\n");
}

/// Appends the property's prefixed name: `ebb:<Kind>.<local>`.
fn write_property_name(kind: Kind, key: PropertyKey, out: &mut String) {
    out.push_str("ebb:");
    out.push_str(kind.name());
    out.push('.');
    out.push_str(key.local_name());
}

/// Appends `schema` as a complete Turtle document (see the
/// [module docs](self)). Allocates only by growing `out`.
pub fn write_schema(schema: &Schema, out: &mut String) {
    use core::fmt::Write;
    write_prefixes(out);
    // Writing to a `String` cannot fail.
    let _ = writeln!(
        out,
        "<{ONTOLOGY_IRI}> a owl:Ontology ;\n    owl:versionInfo {} .\n",
        schema.version()
    );
    out.push_str(
        "ebb:required a owl:AnnotationProperty ;\n    rdfs:comment \"true when every record of the domain class carried the property\" .\n\n",
    );
    let mut generic_done = 0u64;
    for (kind, class) in schema.classes() {
        let _ = writeln!(
            out,
            "ebb:{0} a owl:Class ;\n    rdfs:label \"{0}\" .\n",
            kind.name()
        );
        for p in class.properties() {
            let bit = 1u64 << p.key.slot();
            let local = p.key.local_name();
            if generic_done & bit == 0 {
                generic_done |= bit;
                let _ = writeln!(
                    out,
                    "ebb:{local} a owl:DatatypeProperty ;\n    rdfs:label \"{local}\" .\n"
                );
            }
            write_property_name(kind, p.key, out);
            let _ = writeln!(
                out,
                " a owl:DatatypeProperty ;\n    rdfs:label \"{local}\" ;\n    rdfs:domain ebb:{} ;\n    rdfs:range xsd:{} ;\n    rdfs:subPropertyOf ebb:{local} ;\n    ebb:required {} .\n",
                kind.name(),
                p.range.xsd_name(),
                p.required
            );
        }
    }
}

/// Appends `s` as a Turtle `"…"` string literal: `"`, `\`, LF, CR and TAB
/// use their ECHAR escapes, other control characters `\uXXXX`; everything
/// else (all of Unicode) is written as is.
pub fn write_string_literal(s: &str, out: &mut String) {
    use core::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                // Writing to a `String` cannot fail.
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the instance IRI of `rec` in angle brackets; returns `false`
/// when the namespace or name did not resolve and the key form was used.
pub fn write_instance_iri(rec: &Record, resolver: &Resolver, out: &mut String) -> bool {
    use core::fmt::Write;
    let ns = resolver.resolve(rec.namespace);
    let name = resolver.resolve(rec.name);
    out.push('<');
    let resolved = match (ns, name) {
        (Some(ns), Some(name)) if !name.is_empty() => {
            out.push_str(RESOURCE_BASE);
            out.push_str(rec.kind.name());
            out.push('/');
            write_segment(ns, out);
            out.push('/');
            write_segment(name, out);
            true
        }
        _ => {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "{KEY_BASE}{}/{:016X}", rec.kind.name(), rec.key);
            // An empty name is a nameless record, not a failure.
            rec.name.id() == 0 && ns.is_some()
        }
    };
    out.push('>');
    resolved
}

/// Appends a Turtle document describing `records` (the current state: one
/// instance per record) as instances of `schema`'s classes, resolving
/// symbols through `resolver`. Values the schema does not cover, and
/// symbols that do not resolve, are left out and counted. Allocates only
/// by growing `out`.
pub fn write_instances<'r, I>(
    schema: &Schema,
    records: I,
    resolver: &Resolver,
    out: &mut String,
) -> InstanceStats
where
    I: IntoIterator<Item = &'r Record>,
{
    let mut stats = InstanceStats::default();
    write_prefixes(out);
    for rec in records {
        stats.instances += 1;
        if !write_instance_iri(rec, resolver, out) {
            stats.unresolved_names += 1;
        }
        out.push_str(" a ebb:");
        out.push_str(rec.kind.name());
        let m = super::infer::shape(rec);
        let carried = m[0] | m[1] | m[2] | m[3];
        let Some(class) = schema.class(rec.kind) else {
            stats.not_in_schema += u64::from(carried.count_ones());
            out.push_str(" .\n");
            continue;
        };
        stats.not_in_schema += u64::from((carried & !class.property_mask()).count_ones());
        for p in class.properties() {
            match render(rec, p.key, p.range, resolver) {
                Ok(v) => {
                    out.push_str(" ;\n    ");
                    write_property_name(rec.kind, p.key, out);
                    out.push(' ');
                    write_value(v.lex, v.as_string, p.range, out);
                    stats.values += 1;
                }
                Err(Skip::Absent) => {}
                Err(Skip::Unresolved) => stats.unresolved_values += 1,
                Err(Skip::Mismatch) => stats.not_in_schema += 1,
            }
        }
        out.push_str(" .\n");
    }
    stats
}

/// Appends one literal.
fn write_value(lex: Lexical<'_>, as_string: bool, range: Range, out: &mut String) {
    match lex {
        Lexical::Str(s) => write_string_literal(s, out),
        Lexical::Bool(b) if !as_string => out.push_str(if b { "true" } else { "false" }),
        _ => {
            out.push('"');
            write_lexical(lex, out);
            out.push('"');
            if !as_string {
                out.push_str("^^xsd:");
                out.push_str(range.xsd_name());
            }
        }
    }
}
