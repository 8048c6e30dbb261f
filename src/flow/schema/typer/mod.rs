//! Typed models generated from a schema version: a Python module of
//! annotated dataclasses ([`python_module`]), a JSON Schema (draft 2020-12)
//! document for instances ([`json_schema`]), and JSON instances that
//! validate against it ([`write_json_instance`]).
//!
//! Every generator here allocates (it builds a `String`); the stage calls
//! them when the schema version bumps, never per record.
//!
//! # Instance shape (shared by the three)
//!
//! One JSON object per resource: `"kind"` (the class name, a constant per
//! class) and one key per property, named by its lowerCamelCase
//! [`local_name`](super::PropertyKey::local_name). A property that every
//! record of the class carried is required; the others are optional and
//! simply absent (never `null`). Values follow the range: `xsd:long` and
//! `xsd:unsignedLong` as JSON integers, `xsd:double` as a JSON number or
//! one of the strings `"NaN"`, `"INF"`, `"-INF"` (JSON has no non-finite
//! numbers), `xsd:boolean` as `true`/`false`, `xsd:hexBinary` as 16
//! upper-case hex digits, `xsd:dateTime` as RFC 3339 UTC text, `xsd:string`
//! as a string (values of other types in a widened `String` range are
//! written in their lexical form). No other key is allowed.
//!
//! In Python each class is a `@dataclass` with snake_case attributes
//! ([`python_ident`] makes any name a valid, non-keyword identifier),
//! `Optional[...] = None` for optional properties, a `KIND` constant,
//! `to_dict()` / `from_dict()` converting to and from the JSON shape, and a
//! `__post_init__` that rejects values of the wrong type with `TypeError`.

mod json;
mod python;

pub use json::{json_schema, write_json_instance, JsonInstanceStats};
pub use python::{python_ident, python_module};
