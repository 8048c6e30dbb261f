//! Incremental schema inference.
//!
//! [`SchemaInferer::observe`] folds one record into the schema and reports
//! a [`SchemaChange`] only when something new appears:
//!
//! * a **new class** (the first record of a kind);
//! * a **new property** (a field or header value not seen on that kind);
//! * a **widened range** (a value type whose range joined with the current
//!   one gives a larger range, e.g. `Long` then `Double` → `Double`);
//! * a property that **became optional** (a record of the kind lacks a
//!   property every earlier record carried: the JSON Schema's `required`
//!   list and the Python `Optional`s change, so this is a new version too).
//!
//! A value type that is already covered by the range (say `Long` after the
//! range widened to `Double`) is remembered without a version bump.
//!
//! # The no-change check
//!
//! Per kind the inferer keeps four 64-bit masks — bit `slot` of mask `t`
//! set once property `slot` was seen with value type `t` — and the mask of
//! required properties. A record is reduced to the same four masks (one
//! pass over its ≤ 8 fields plus four header tests); it brings nothing new
//! iff `shape & !seen == 0` for all four and `required & !present == 0`.
//! That is a few dozen instructions, one cache line of state per kind, no
//! branches per field beyond the loop, and no allocation.
//!
//! Most records repeat their kind's layout (the same field ids and types in
//! the same slots, the same header values present), so each kind also keeps
//! the last layout that passed the check — its raw slot word, field count
//! and header bits — and a record with that layout is answered by two
//! comparisons, without building its masks: `seen` only grows and `required`
//! only shrinks, so a layout that brought nothing new never will.
//!
//! BOOKMARK records are ignored: they carry only a resource version, not an
//! object.

use crate::sources::intern::Symbol;
use crate::sources::record::{Kind, Op, Record};

use super::model::{Header, PropertyKey, Schema, ValueType};

/// What one record added to the schema. `Copy`, no heap: the masks hold
/// bit `slot` (see [`PropertyKey::slot`]) for each property concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaChange {
    /// The schema version this change produced.
    pub version: u64,
    /// The kind whose class changed.
    pub kind: Kind,
    /// The class is new.
    pub new_class: bool,
    /// Properties added.
    pub added: u64,
    /// Properties whose range widened (never overlaps `added`).
    pub widened: u64,
    /// Properties that were required and became optional.
    pub now_optional: u64,
}

impl SchemaChange {
    /// The properties in `mask` (one of the masks above).
    pub fn keys(mask: u64) -> impl Iterator<Item = PropertyKey> {
        (0..64u8)
            .filter(move |s| mask & (1u64 << s) != 0)
            .filter_map(PropertyKey::from_slot)
    }
}

/// Hot per-kind state: exactly what the no-change check reads.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct KindState {
    /// Per value type, the slots seen with that type.
    seen: [u64; 4],
    /// Slots carried by every record of the kind so far.
    required: u64,
    /// The last layout that brought nothing new: its [`Record::raw_slots_word`].
    known_word: u64,
    /// …and its [`layout_tag`]; [`KindState::NO_LAYOUT`] before the first record.
    known_tag: u16,
    /// A record of this kind was seen.
    present: bool,
}

impl KindState {
    /// A `known_tag` no record has (a field count is at most 8).
    const NO_LAYOUT: u16 = u16::MAX;

    const EMPTY: KindState = KindState {
        seen: [0; 4],
        required: 0,
        known_word: 0,
        known_tag: KindState::NO_LAYOUT,
        present: false,
    };
}

/// The parts of a record's shape that its slot word does not hold: the field count (bits
/// 8..) and which header values it carries (bits 0..4).
#[inline]
fn layout_tag(rec: &Record) -> u16 {
    let headers = u16::from(rec.namespace != Symbol::EMPTY)
        | u16::from(rec.name != Symbol::EMPTY) << 1
        | u16::from(rec.resource_version != 0) << 2
        | u16::from(rec.source_ns != 0) << 3;
    (rec.field_count() as u16) << 8 | headers
}

/// Folds records into a [`Schema`]; see the [module docs](self).
///
/// Single-threaded (`&mut self`): one per schema stage. Construction and
/// `observe` never allocate.
#[derive(Clone, Debug)]
pub struct SchemaInferer {
    hot: [KindState; Kind::COUNT],
    schema: Schema,
    observed: u64,
}

impl Default for SchemaInferer {
    fn default() -> Self {
        SchemaInferer::new()
    }
}

/// The record's shape: per value type, the slots it carries.
#[inline]
pub(crate) fn shape(rec: &Record) -> [u64; 4] {
    let mut m = [0u64; 4];
    // A raw slot byte is the field id (low 6 bits) and the value type (high 2 bits, in
    // `ValueType` order): no decoding needed.
    for &slot in rec.raw_slots() {
        m[(slot >> 6) as usize] |= 1u64 << (slot & 0x3f);
    }
    let sym = ValueType::Sym as usize;
    let int = ValueType::I64 as usize;
    m[sym] |= u64::from(rec.namespace != Symbol::EMPTY) << (Header::Namespace as u8);
    m[sym] |= u64::from(rec.name != Symbol::EMPTY) << (Header::Name as u8);
    m[int] |= u64::from(rec.resource_version != 0) << (Header::ResourceVersion as u8);
    m[int] |= u64::from(rec.source_ns != 0) << (Header::SourceTime as u8);
    m
}

impl SchemaInferer {
    /// An inferer holding the empty schema (version 0).
    pub const fn new() -> SchemaInferer {
        SchemaInferer {
            hot: [KindState::EMPTY; Kind::COUNT],
            schema: Schema::new(),
            observed: 0,
        }
    }

    /// Folds `rec` into the schema. Returns `Some` — and bumps the version
    /// — only when the record brought something new; see the
    /// [module docs](self). Never allocates.
    #[inline]
    pub fn observe(&mut self, rec: &Record) -> Option<SchemaChange> {
        if rec.op == Op::Bookmark {
            return None;
        }
        self.observed += 1;
        // Records of a kind nearly always repeat a layout (the same fields, types and
        // header values): one that repeats the last layout found to bring nothing new
        // brings nothing new now either (`seen` only grows, `required` only shrinks).
        let (word, tag) = (rec.raw_slots_word(), layout_tag(rec));
        let st = &mut self.hot[rec.kind as usize];
        if st.known_word == word && st.known_tag == tag {
            return None;
        }
        let m = shape(rec);
        let present = m[0] | m[1] | m[2] | m[3];
        let new = (m[0] & !st.seen[0])
            | (m[1] & !st.seen[1])
            | (m[2] & !st.seen[2])
            | (m[3] & !st.seen[3]);
        let lost = st.required & !present;
        if st.present & ((new | lost) == 0) {
            (st.known_word, st.known_tag) = (word, tag);
            return None;
        }
        let change = self.learn(rec.kind, m);
        // `learn` added this shape to `seen` and cut `required` to it.
        let st = &mut self.hot[rec.kind as usize];
        (st.known_word, st.known_tag) = (word, tag);
        change
    }

    #[cold]
    #[inline(never)]
    fn learn(&mut self, kind: Kind, m: [u64; 4]) -> Option<SchemaChange> {
        let st = &mut self.hot[kind as usize];
        let class = &mut self.schema.classes[kind as usize];
        let present = m[0] | m[1] | m[2] | m[3];
        let mut change = SchemaChange {
            version: 0,
            kind,
            new_class: false,
            added: 0,
            widened: 0,
            now_optional: 0,
        };
        if st.present {
            change.now_optional = st.required & !present;
            st.required &= present;
        } else {
            st.present = true;
            st.required = present;
            class.present = true;
            change.new_class = true;
        }
        class.required = st.required;
        for (t, ty) in ValueType::ALL.into_iter().enumerate() {
            let mut fresh = m[t] & !st.seen[t];
            st.seen[t] |= m[t];
            while fresh != 0 {
                let slot = fresh.trailing_zeros() as u8;
                fresh &= fresh - 1;
                let Some(key) = PropertyKey::from_slot(slot) else {
                    continue;
                };
                let bit = 1u64 << slot;
                let r = key.range_of(ty);
                if class.props & bit == 0 {
                    class.props |= bit;
                    class.ranges[slot as usize] = r;
                    change.added |= bit;
                } else {
                    let cur = class.ranges[slot as usize];
                    let j = cur.join(r);
                    if j != cur {
                        class.ranges[slot as usize] = j;
                        change.widened |= bit;
                    }
                }
            }
        }
        change.widened &= !change.added;
        if !change.new_class && (change.added | change.widened | change.now_optional) == 0 {
            return None;
        }
        self.schema.version += 1;
        change.version = self.schema.version;
        Some(change)
    }

    /// The current schema version (0 before the first record).
    #[inline]
    pub const fn version(&self) -> u64 {
        self.schema.version
    }

    /// The current schema.
    #[inline]
    pub const fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Records observed (bookmarks excluded).
    #[inline]
    pub const fn observed(&self) -> u64 {
        self.observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::schema::model::Range;
    use crate::sources::record::{FieldId, FieldValue};

    fn rec(kind: Kind, fields: &[(FieldId, FieldValue)]) -> Record {
        let mut r = Record::new(kind, Op::Modified);
        r.name = Symbol::from_id(30);
        for &(id, v) in fields {
            r.push(id, v);
        }
        r
    }

    #[test]
    fn version_bumps_only_on_new_things() {
        let mut inf = SchemaInferer::new();
        let a = rec(Kind::Pod, &[(FieldId::RestartsTotal, FieldValue::I64(1))]);
        let c = inf.observe(&a).expect("new class");
        assert!(c.new_class);
        assert_eq!(c.version, 1);
        assert_eq!(
            c.added,
            (1 << FieldId::RestartsTotal as u8) | (1 << Header::Name as u8)
        );
        assert_eq!(inf.observe(&a), None);
        let b = rec(Kind::Pod, &[(FieldId::RestartsTotal, FieldValue::I64(9))]);
        assert_eq!(inf.observe(&b), None);
        assert_eq!(inf.version(), 1);
    }

    #[test]
    fn widening_then_covered_type_is_silent() {
        let mut inf = SchemaInferer::new();
        inf.observe(&rec(Kind::Sensor, &[(FieldId::Value, FieldValue::I64(1))]));
        let w = inf
            .observe(&rec(
                Kind::Sensor,
                &[(FieldId::Value, FieldValue::F64(1.5))],
            ))
            .expect("widened");
        assert_eq!(w.widened, 1 << FieldId::Value as u8);
        assert_eq!(w.added, 0);
        let class = inf.schema().class(Kind::Sensor).unwrap();
        assert_eq!(
            class
                .property(PropertyKey::Field(FieldId::Value))
                .unwrap()
                .range,
            Range::Double
        );
        let s = inf
            .observe(&rec(
                Kind::Sensor,
                &[(FieldId::Value, FieldValue::Bool(true))],
            ))
            .expect("widened to string");
        assert_eq!(s.widened, 1 << FieldId::Value as u8);
        let v = inf.version();
        // Long and Double are covered by String now: remembered, no bump.
        assert_eq!(
            inf.observe(&rec(Kind::Sensor, &[(FieldId::Value, FieldValue::I64(2))])),
            None
        );
        assert_eq!(inf.version(), v);
    }

    #[test]
    fn a_repeated_layout_is_checked_again_when_its_header_values_differ() {
        let mut inf = SchemaInferer::new();
        let fields = [(FieldId::Price, FieldValue::F64(1.0))];
        let mut a = rec(Kind::Tick, &fields);
        a.name = Symbol::EMPTY;
        assert!(inf.observe(&a).is_some(), "new class");
        assert_eq!(inf.observe(&a), None);
        // The same fields, now with a namespace: a new header property.
        a.namespace = Symbol::from_id(40);
        let c = inf.observe(&a).expect("namespace is new");
        assert_eq!(c.added, 1 << Header::Namespace as u8);
        // Same slots and types, but the field count differs: checked, not assumed.
        let mut b = rec(Kind::Tick, &[]);
        b.name = Symbol::EMPTY;
        b.namespace = Symbol::from_id(40);
        let c = inf.observe(&b).expect("price became optional");
        assert_eq!(c.now_optional, 1 << FieldId::Price as u8);
        assert_eq!(inf.observe(&a), None);
        assert_eq!(inf.observe(&b), None);
        // Same id, another value type: a widening, even right after a known layout.
        let mut w = rec(
            Kind::Tick,
            &[(FieldId::Price, FieldValue::Sym(Symbol::from_id(3)))],
        );
        w.name = Symbol::EMPTY;
        w.namespace = Symbol::from_id(40);
        let c = inf.observe(&w).expect("widened");
        assert_eq!(c.widened, 1 << FieldId::Price as u8);
        assert_eq!(inf.version(), 4);
        assert_eq!(inf.observed(), 7);
    }

    #[test]
    fn missing_required_property_makes_it_optional_once() {
        let mut inf = SchemaInferer::new();
        inf.observe(&rec(
            Kind::Pod,
            &[
                (FieldId::Ready, FieldValue::Bool(true)),
                (FieldId::RestartsTotal, FieldValue::I64(0)),
            ],
        ));
        let c = inf
            .observe(&rec(
                Kind::Pod,
                &[(FieldId::Ready, FieldValue::Bool(false))],
            ))
            .expect("restartsTotal became optional");
        assert_eq!(c.now_optional, 1 << FieldId::RestartsTotal as u8);
        let p = inf
            .schema()
            .class(Kind::Pod)
            .unwrap()
            .property(PropertyKey::Field(FieldId::RestartsTotal))
            .unwrap();
        assert!(!p.required);
        assert_eq!(
            inf.observe(&rec(Kind::Pod, &[(FieldId::Ready, FieldValue::Bool(true))])),
            None
        );
    }

    #[test]
    fn property_added_later_is_optional_and_bookmarks_are_ignored() {
        let mut inf = SchemaInferer::new();
        inf.observe(&rec(Kind::Node, &[]));
        let c = inf
            .observe(&rec(
                Kind::Node,
                &[(FieldId::Unschedulable, FieldValue::Bool(true))],
            ))
            .unwrap();
        assert_eq!(c.added, 1 << FieldId::Unschedulable as u8);
        let p = inf
            .schema()
            .class(Kind::Node)
            .unwrap()
            .property(PropertyKey::Field(FieldId::Unschedulable))
            .unwrap();
        assert!(!p.required);
        let mut bm = Record::new(Kind::Deployment, Op::Bookmark);
        bm.resource_version = 7;
        assert_eq!(inf.observe(&bm), None);
        assert!(inf.schema().class(Kind::Deployment).is_none());
    }
}
