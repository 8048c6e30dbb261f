//! The engines of reverse-flow stages 5–7: incremental schema inference,
//! Turtle serialisation and typed-model generation.
//!
//! * [`infer`]: [`SchemaInferer::observe`] folds each [`Record`] into a
//!   [`Schema`] (kind → `owl:Class`, field → `owl:DatatypeProperty` with an
//!   xsd range). The version bumps only when something new appears; the
//!   common no-change case is a few mask operations and never allocates.
//! * [`model`]: the [`Schema`] itself (fixed-size, heap-free, cheap to
//!   clone), its [`Range`] lattice and [`PropertyKey`]s.
//! * [`diff`]: what one schema version added or widened over another, for
//!   the dashboard.
//! * [`turtle`]: the schema, and a snapshot of instances, as W3C Turtle.
//! * [`typer`]: a Python module of annotated dataclasses, a JSON Schema
//!   (draft 2020-12) document, and JSON instances that validate against it.
//!
//! # Allocation
//!
//! [`SchemaInferer::new`], [`SchemaInferer::observe`] and cloning a
//! [`Schema`] never allocate. Everything that produces text — [`turtle`],
//! [`typer`] and [`Schema::diff`] — allocates (it grows a `String` or a
//! `Vec`); stages call it only when the version bumps or on request.
//!
//! See `docs/schema.md` for the vocabulary, the range lattice and the
//! naming rules.
//!
//! [`Record`]: crate::sources::record::Record

pub mod diff;
pub mod infer;
pub mod model;
pub mod turtle;
pub mod typer;

mod datetime;
mod value;

pub use diff::{SchemaDelta, SchemaDiff};
pub use infer::{SchemaChange, SchemaInferer};
pub use model::{ClassSchema, Header, Property, PropertyKey, Range, Schema, ValueType};

/// Namespace of classes and properties (`ebb:` in Turtle).
pub const EBB_NS: &str = "https://ebbflow.dev/schema#";
/// IRI of the ontology itself (the `owl:Ontology` carrying the version).
pub const ONTOLOGY_IRI: &str = "https://ebbflow.dev/schema";
/// Base of instance IRIs: `<base><Kind>/<namespace>/<name>`, each segment
/// percent-encoded.
pub const RESOURCE_BASE: &str = "https://ebbflow.dev/resource/";
/// Base of instance IRIs for records without a name (sensor readings) or
/// whose name does not resolve: `<base><Kind>/<16 hex digits of the key>`.
pub const KEY_BASE: &str = "https://ebbflow.dev/key/";
