//! The JSON Schema generator and the JSON instance writer.

use serde_json::{json, Map, Value};

use crate::flow::schema::model::{Range, Schema};
use crate::flow::schema::value::{render, write_lexical, Lexical, Skip};
use crate::sources::intern::Resolver;
use crate::sources::record::Record;

/// The `pattern` of `xsd:dateTime` values as written by ebbflow.
const DATETIME_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z$";

fn range_schema(r: Range) -> Value {
    match r {
        Range::Boolean => json!({ "type": "boolean" }),
        Range::Long => json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }),
        Range::UnsignedLong => json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX }),
        Range::Double => json!({
            "anyOf": [ { "type": "number" }, { "enum": ["NaN", "INF", "-INF"] } ]
        }),
        Range::HexBinary => json!({ "type": "string", "pattern": "^[0-9A-F]{16}$" }),
        Range::DateTime => json!({
            "type": "string", "format": "date-time", "pattern": DATETIME_PATTERN
        }),
        Range::String => json!({ "type": "string" }),
    }
}

/// Generates the JSON Schema (draft 2020-12) document of instances of
/// `schema`: `oneOf` the classes, each in `$defs` with a `kind` constant,
/// its properties, `required` and `additionalProperties: false` (see the
/// [typer docs](super)). With no class, nothing validates (`"not": {}`).
/// The document carries the version in `$id` and in `"x-ebbflow-version"`.
/// Allocates the text.
pub fn json_schema(schema: &Schema) -> String {
    let v = schema.version();
    let mut defs = Map::new();
    let mut one_of = Vec::new();
    for (kind, class) in schema.classes() {
        let mut props = Map::new();
        props.insert("kind".into(), json!({ "const": kind.name() }));
        let mut required = vec![Value::from("kind")];
        for p in class.properties() {
            let mut s = range_schema(p.range);
            if let Value::Object(m) = &mut s {
                m.insert(
                    "description".into(),
                    Value::from(format!(
                        "ebb:{}.{} ({})",
                        kind.name(),
                        p.key.local_name(),
                        p.range
                    )),
                );
            }
            props.insert(p.key.local_name().into(), s);
            if p.required {
                required.push(Value::from(p.key.local_name()));
            }
        }
        defs.insert(
            kind.name().into(),
            json!({
                "title": kind.name(),
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": false,
            }),
        );
        one_of.push(json!({ "$ref": format!("#/$defs/{}", kind.name()) }));
    }
    let mut doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://ebbflow.dev/schema/v{v}/instance.json"),
        "title": format!("ebbflow instance, schema version {v}"),
        "x-ebbflow-version": v,
        "$defs": defs,
    });
    if let Value::Object(m) = &mut doc {
        if one_of.is_empty() {
            m.insert("not".into(), json!({}));
        } else {
            m.insert("oneOf".into(), Value::Array(one_of));
        }
    }
    // Serialising a `Value` with string keys cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// What [`write_json_instance`] left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonInstanceStats {
    /// Property values written.
    pub values: u64,
    /// Values left out because a symbol did not resolve.
    pub unresolved_values: u64,
    /// Values left out because the schema lacks the property or its range
    /// does not cover the value.
    pub not_in_schema: u64,
}

/// Appends `s` as a JSON string.
fn write_json_string(s: &str, out: &mut String) {
    use core::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                // Writing to a `String` cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `rec` as one JSON instance object of `schema` (see the
/// [typer docs](super)), resolving symbols through `resolver`. Values the
/// schema does not cover and symbols that do not resolve are left out and
/// counted — so the object validates against [`json_schema`] of the same
/// schema whenever the schema observed `rec` and every symbol resolved
/// (a required value that is left out makes it invalid, which is the
/// truth). Allocates only by growing `out`.
pub fn write_json_instance(
    schema: &Schema,
    rec: &Record,
    resolver: &Resolver,
    out: &mut String,
) -> JsonInstanceStats {
    let mut stats = JsonInstanceStats::default();
    out.push_str("{\"kind\":");
    write_json_string(rec.kind.name(), out);
    let m = crate::flow::schema::infer::shape(rec);
    let carried = m[0] | m[1] | m[2] | m[3];
    let covered = schema.class(rec.kind).map_or(0, |c| c.property_mask());
    stats.not_in_schema += u64::from((carried & !covered).count_ones());
    if let Some(class) = schema.class(rec.kind) {
        for p in class.properties() {
            match render(rec, p.key, p.range, resolver) {
                Ok(v) => {
                    out.push(',');
                    write_json_string(p.key.local_name(), out);
                    out.push(':');
                    match v.lex {
                        Lexical::Str(s) => write_json_string(s, out),
                        Lexical::Double(d) if !d.is_finite() => {
                            out.push('"');
                            write_lexical(v.lex, out);
                            out.push('"');
                        }
                        Lexical::Hex(_) | Lexical::DateTime(_) => {
                            out.push('"');
                            write_lexical(v.lex, out);
                            out.push('"');
                        }
                        lex if v.as_string => {
                            out.push('"');
                            write_lexical(lex, out);
                            out.push('"');
                        }
                        lex => write_lexical(lex, out),
                    }
                    stats.values += 1;
                }
                Err(Skip::Absent) => {}
                Err(Skip::Unresolved) => stats.unresolved_values += 1,
                Err(Skip::Mismatch) => stats.not_in_schema += 1,
            }
        }
    }
    out.push('}');
    stats
}
