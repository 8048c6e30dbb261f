//! The inferred schema: classes, properties, ranges.
//!
//! A [`Schema`] is a fixed-size value (one [`ClassSchema`] per [`Kind`], one
//! range slot per possible property): it owns no heap memory, so cloning it
//! to keep the previous version is a `memcpy` of under 1 KiB.
//!
//! # Properties
//!
//! A property is identified by a [`PropertyKey`]: a typed record field
//! ([`FieldId`]) or one of four [`Header`] values every record carries
//! (namespace, name, resource version, source time). Each occupies one of 64
//! *slots*: a field uses its id (< 56), a header value uses 60–63. Header
//! values are inferred like fields — a header property exists for a class
//! only if some record of that kind carried it (a non-empty namespace, a
//! non-empty name, a non-zero resource version or source time).
//!
//! # The range lattice
//!
//! ```text
//!              String
//!        /    /     \      \
//!  Boolean  Double  HexBinary  (UnsignedLong, DateTime: header only, fixed)
//!             |
//!           Long
//! ```
//!
//! [`Range::join`] is the least upper bound: equal ranges stay, `Long ⊔
//! Double = Double`, every other pair is `String` (the lexical form of any
//! value is a valid `xsd:string`). Ranges only move up, so the schema is
//! monotone: a later version accepts every instance an earlier one did.
//!
//! Value types map to ranges as follows: `I64` → `Long` (but `HexBinary` for
//! the hash-like fields [`FieldId::SpecHash`], [`FieldId::LabelsHash`] and
//! [`FieldId::RegardingKey`], whose i64 carries a u64 bit pattern that is
//! an identity, not a quantity: 16 upper-case hex digits), `F64` → `Double`,
//! `Bool` → `Boolean`, `Sym` → `String`.

use core::fmt;

use crate::sources::record::{FieldId, FieldValue, Kind};

const _: () = {
    let mut i = 0;
    while i < FieldId::ALL.len() {
        assert!(
            (FieldId::ALL[i] as u8) < Header::FIRST_SLOT,
            "field ids must stay below the header slots"
        );
        i += 1;
    }
};

/// The type of a stored field value (the record's 2-bit tag).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// [`FieldValue::I64`].
    I64 = 0,
    /// [`FieldValue::F64`].
    F64 = 1,
    /// [`FieldValue::Bool`].
    Bool = 2,
    /// [`FieldValue::Sym`].
    Sym = 3,
}

impl ValueType {
    /// Every value type, indexed by its discriminant.
    pub const ALL: [ValueType; 4] = [
        ValueType::I64,
        ValueType::F64,
        ValueType::Bool,
        ValueType::Sym,
    ];

    /// The type of `v`.
    #[inline]
    pub const fn of(v: FieldValue) -> ValueType {
        match v {
            FieldValue::I64(_) => ValueType::I64,
            FieldValue::F64(_) => ValueType::F64,
            FieldValue::Bool(_) => ValueType::Bool,
            FieldValue::Sym(_) => ValueType::Sym,
        }
    }
}

/// A header value every record carries (not a typed field).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    /// `Record::namespace` (present when not empty). Range `String`.
    Namespace = 60,
    /// `Record::name` (present when not empty). Range `String`.
    Name = 61,
    /// `Record::resource_version` (present when not 0). Range `UnsignedLong`.
    ResourceVersion = 62,
    /// `Record::source_ns` (present when not 0). Range `DateTime`.
    SourceTime = 63,
}

impl Header {
    /// The lowest header slot.
    pub const FIRST_SLOT: u8 = 60;
    /// Every header value, in output order.
    pub const ALL: [Header; 4] = [
        Header::Namespace,
        Header::Name,
        Header::ResourceVersion,
        Header::SourceTime,
    ];

    /// Its fixed range.
    pub const fn range(self) -> Range {
        match self {
            Header::Namespace | Header::Name => Range::String,
            Header::ResourceVersion => Range::UnsignedLong,
            Header::SourceTime => Range::DateTime,
        }
    }
}

/// Identifies a property of a class: a typed field or a header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropertyKey {
    /// A typed record field.
    Field(FieldId),
    /// A header value.
    Header(Header),
}

impl PropertyKey {
    /// Every property in output order: header values first, then fields by
    /// id.
    pub fn all() -> impl Iterator<Item = PropertyKey> {
        Header::ALL
            .into_iter()
            .map(PropertyKey::Header)
            .chain(FieldId::ALL.iter().map(|&f| PropertyKey::Field(f)))
    }

    /// The slot (0–63) in the schema's masks.
    #[inline]
    pub const fn slot(self) -> u8 {
        match self {
            PropertyKey::Field(f) => f as u8,
            PropertyKey::Header(h) => h as u8,
        }
    }

    /// The key of a slot, if it names one.
    pub const fn from_slot(slot: u8) -> Option<PropertyKey> {
        match slot {
            60 => Some(PropertyKey::Header(Header::Namespace)),
            61 => Some(PropertyKey::Header(Header::Name)),
            62 => Some(PropertyKey::Header(Header::ResourceVersion)),
            63 => Some(PropertyKey::Header(Header::SourceTime)),
            s => match FieldId::from_u8(s) {
                Some(f) => Some(PropertyKey::Field(f)),
                None => None,
            },
        }
    }

    /// The name used in IRIs and JSON keys: lowerCamelCase
    /// (`restartsTotal`, `resourceVersion`). ASCII letters and digits only.
    pub fn local_name(self) -> &'static str {
        match self {
            PropertyKey::Header(Header::Namespace) => "namespace",
            PropertyKey::Header(Header::Name) => "name",
            PropertyKey::Header(Header::ResourceVersion) => "resourceVersion",
            PropertyKey::Header(Header::SourceTime) => "sourceTime",
            PropertyKey::Field(f) => camel(f),
        }
    }

    /// The range a value of type `ty` of this property has on its own
    /// (before joining with what was seen before).
    #[inline]
    pub const fn range_of(self, ty: ValueType) -> Range {
        match self {
            PropertyKey::Header(h) => h.range(),
            PropertyKey::Field(f) => match ty {
                ValueType::I64 => {
                    if is_hash_field(f) {
                        Range::HexBinary
                    } else {
                        Range::Long
                    }
                }
                ValueType::F64 => Range::Double,
                ValueType::Bool => Range::Boolean,
                ValueType::Sym => Range::String,
            },
        }
    }
}

impl fmt::Display for PropertyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.local_name())
    }
}

/// Whether a field's i64 is a u64 hash (identity) rather than a quantity.
pub const fn is_hash_field(f: FieldId) -> bool {
    matches!(
        f,
        FieldId::SpecHash | FieldId::LabelsHash | FieldId::RegardingKey
    )
}

/// Longest field name the lowerCamelCase table holds.
const MAX_NAME: usize = 32;

/// lowerCamelCase names of the field ids, indexed by id: the bytes of
/// [`FieldId::name`] (UpperCamelCase ASCII) with the first one lowered,
/// built at compile time, and their lengths.
static CAMEL: ([[u8; MAX_NAME]; 64], [u8; 64]) = camel_table();

const fn camel_table() -> ([[u8; MAX_NAME]; 64], [u8; 64]) {
    let mut t = [[0u8; MAX_NAME]; 64];
    let mut lens = [0u8; 64];
    let mut i = 0;
    while i < FieldId::ALL.len() {
        let id = FieldId::ALL[i];
        let name = id.name().as_bytes();
        assert!(name.len() <= MAX_NAME, "field name too long");
        let mut j = 0;
        while j < name.len() {
            assert!(name[j].is_ascii_alphanumeric(), "field names are ASCII");
            t[id as usize][j] = if j == 0 {
                name[j].to_ascii_lowercase()
            } else {
                name[j]
            };
            j += 1;
        }
        lens[id as usize] = name.len() as u8;
        i += 1;
    }
    (t, lens)
}

/// The lowerCamelCase name of a field.
fn camel(f: FieldId) -> &'static str {
    let bytes = &CAMEL.0[f as usize][..usize::from(CAMEL.1[f as usize])];
    // ASCII by construction (checked in `camel_table`).
    core::str::from_utf8(bytes).unwrap_or("field")
}

/// The xsd datatype of a property's values. See the [module docs](self)
/// for the lattice.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Range {
    /// `xsd:boolean`.
    Boolean,
    /// `xsd:long` (64-bit signed).
    #[default]
    Long,
    /// `xsd:unsignedLong` (header resource version only).
    UnsignedLong,
    /// `xsd:double`.
    Double,
    /// `xsd:hexBinary`: 16 upper-case hex digits of a u64 hash.
    HexBinary,
    /// `xsd:dateTime` in UTC (header source time only).
    DateTime,
    /// `xsd:string`: the top of the lattice.
    String,
}

impl Range {
    /// The local name in the xsd namespace (`long`, `double`, …).
    pub const fn xsd_name(self) -> &'static str {
        match self {
            Range::Boolean => "boolean",
            Range::Long => "long",
            Range::UnsignedLong => "unsignedLong",
            Range::Double => "double",
            Range::HexBinary => "hexBinary",
            Range::DateTime => "dateTime",
            Range::String => "string",
        }
    }

    /// The least upper bound of two ranges.
    #[inline]
    pub const fn join(self, other: Range) -> Range {
        match (self, other) {
            (a, b) if a as u8 == b as u8 => a,
            (Range::Long, Range::Double) | (Range::Double, Range::Long) => Range::Double,
            _ => Range::String,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xsd:{}", self.xsd_name())
    }
}

/// One property of a class, as the schema knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Property {
    /// Which property.
    pub key: PropertyKey,
    /// Its current range.
    pub range: Range,
    /// Whether every record of the class seen so far carried it.
    pub required: bool,
}

/// What the schema knows about one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassSchema {
    pub(crate) present: bool,
    pub(crate) props: u64,
    pub(crate) required: u64,
    pub(crate) ranges: [Range; 64],
}

impl ClassSchema {
    const EMPTY: ClassSchema = ClassSchema {
        present: false,
        props: 0,
        required: 0,
        ranges: [Range::Long; 64],
    };

    /// Whether a record of this kind has been seen.
    pub const fn is_present(&self) -> bool {
        self.present
    }

    /// Bit `slot` set for every property of the class.
    pub const fn property_mask(&self) -> u64 {
        self.props
    }

    /// The property `key`, if the class has it.
    pub fn property(&self, key: PropertyKey) -> Option<Property> {
        let bit = 1u64 << key.slot();
        (self.props & bit != 0).then(|| Property {
            key,
            range: self.ranges[key.slot() as usize],
            required: self.required & bit != 0,
        })
    }

    /// The properties, header values first, then fields by id.
    pub fn properties(&self) -> impl Iterator<Item = Property> + '_ {
        PropertyKey::all().filter_map(|k| self.property(k))
    }
}

/// An inferred schema version. Heap-free; clone it to keep an old version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub(crate) version: u64,
    pub(crate) classes: [ClassSchema; Kind::COUNT],
}

impl Default for Schema {
    fn default() -> Self {
        Schema::new()
    }
}

impl Schema {
    /// The empty schema, version 0.
    pub const fn new() -> Schema {
        Schema {
            version: 0,
            classes: [ClassSchema::EMPTY; Kind::COUNT],
        }
    }

    /// The version: 0 when empty, +1 per change.
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The class of `kind`, if a record of that kind has been seen.
    pub fn class(&self, kind: Kind) -> Option<&ClassSchema> {
        let c = &self.classes[kind as usize];
        c.present.then_some(c)
    }

    /// The classes present, in [`Kind`] order.
    pub fn classes(&self) -> impl Iterator<Item = (Kind, &ClassSchema)> + '_ {
        Kind::ALL
            .into_iter()
            .zip(self.classes.iter())
            .filter(|(_, c)| c.present)
    }

    /// Whether no class has been seen.
    pub fn is_empty(&self) -> bool {
        self.classes.iter().all(|c| !c.present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_names_match_field_names() {
        for &f in FieldId::ALL {
            let camel = PropertyKey::Field(f).local_name();
            let name = f.name();
            assert_eq!(camel[..1], name[..1].to_ascii_lowercase());
            assert_eq!(camel[1..], name[1..]);
        }
    }

    #[test]
    fn slots_round_trip() {
        for k in PropertyKey::all() {
            assert_eq!(PropertyKey::from_slot(k.slot()), Some(k));
        }
        assert_eq!(PropertyKey::from_slot(50), None);
    }

    #[test]
    fn join_is_a_lattice() {
        use Range::*;
        let all = [
            Boolean,
            Long,
            UnsignedLong,
            Double,
            HexBinary,
            DateTime,
            String,
        ];
        for a in all {
            assert_eq!(a.join(a), a);
            assert_eq!(a.join(String), String);
            for b in all {
                assert_eq!(a.join(b), b.join(a), "commutative");
                for c in all {
                    assert_eq!(a.join(b).join(c), a.join(b.join(c)), "associative");
                }
            }
        }
        assert_eq!(Long.join(Double), Double);
        assert_eq!(Boolean.join(Long), String);
        assert_eq!(HexBinary.join(Long), String);
    }
}
