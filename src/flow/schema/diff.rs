//! What a schema version added over an older one, for the dashboard.
//!
//! Schemas only grow (classes and properties are never removed, ranges only
//! widen, required properties only become optional), so a diff is a list of
//! additions. [`Schema::diff`] allocates its `Vec`; it runs on a version
//! bump or on request, never per record.

use core::fmt;

use crate::sources::record::Kind;

use super::model::{PropertyKey, Range, Schema};

/// One difference between two schema versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemaDelta {
    /// A class appeared.
    ClassAdded(Kind),
    /// A property appeared.
    PropertyAdded {
        /// Its class.
        kind: Kind,
        /// Which property.
        property: PropertyKey,
        /// Its range.
        range: Range,
        /// Whether it is required in the newer version.
        required: bool,
    },
    /// A property's range widened.
    RangeWidened {
        /// Its class.
        kind: Kind,
        /// Which property.
        property: PropertyKey,
        /// The older range.
        from: Range,
        /// The newer range.
        to: Range,
    },
    /// A property that was required became optional.
    BecameOptional {
        /// Its class.
        kind: Kind,
        /// Which property.
        property: PropertyKey,
    },
}

impl fmt::Display for SchemaDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SchemaDelta::ClassAdded(k) => write!(f, "+ class {}", k.name()),
            SchemaDelta::PropertyAdded {
                kind,
                property,
                range,
                required,
            } => write!(
                f,
                "+ property {}.{property} {range}{}",
                kind.name(),
                if required { " (required)" } else { "" }
            ),
            SchemaDelta::RangeWidened {
                kind,
                property,
                from,
                to,
            } => write!(f, "~ range {}.{property} {from} -> {to}", kind.name()),
            SchemaDelta::BecameOptional { kind, property } => {
                write!(f, "~ optional {}.{property}", kind.name())
            }
        }
    }
}

/// The differences between two schema versions, in class order, each
/// class's entries in property order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SchemaDiff {
    /// The older version.
    pub from_version: u64,
    /// The newer version.
    pub to_version: u64,
    /// What changed.
    pub deltas: Vec<SchemaDelta>,
}

impl SchemaDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }
}

impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schema v{} -> v{}", self.from_version, self.to_version)?;
        for d in &self.deltas {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

impl Schema {
    /// What `self` has that `older` lacks: new classes, new properties,
    /// widened ranges, properties that became optional. Pass the previous
    /// version kept by cloning. If `older` is not actually older, the
    /// result still lists only what `self` gained (nothing `self` lost).
    /// Allocates the list.
    pub fn diff(&self, older: &Schema) -> SchemaDiff {
        let mut deltas = Vec::new();
        for (kind, new) in self.classes() {
            let old = older.class(kind);
            if old.is_none() {
                deltas.push(SchemaDelta::ClassAdded(kind));
            }
            for p in new.properties() {
                match old.and_then(|c| c.property(p.key)) {
                    None => deltas.push(SchemaDelta::PropertyAdded {
                        kind,
                        property: p.key,
                        range: p.range,
                        required: p.required,
                    }),
                    Some(o) => {
                        if o.range != p.range && o.range.join(p.range) == p.range {
                            deltas.push(SchemaDelta::RangeWidened {
                                kind,
                                property: p.key,
                                from: o.range,
                                to: p.range,
                            });
                        }
                        if o.required && !p.required {
                            deltas.push(SchemaDelta::BecameOptional {
                                kind,
                                property: p.key,
                            });
                        }
                    }
                }
            }
        }
        SchemaDiff {
            from_version: older.version(),
            to_version: self.version(),
            deltas,
        }
    }
}
