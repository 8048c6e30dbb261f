//! The reverse-flow record: the fixed-size unit every source produces and
//! every stage consumes.
//!
//! A [`Record`] is exactly [`RECORD_SIZE`] (128) bytes, `#[repr(C)]`,
//! 64-byte aligned (two cache lines), [`Copy`], and owns no heap memory:
//! strings travel as interned [`Symbol`]s (see [`crate::sources::intern`]).
//!
//! Layout (byte offsets):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | `key`: stable hash of kind/namespace/name ([`crate::sources::hash::key_of`]) |
//! | 8 | 8 | `seq`: sequence number assigned by the source |
//! | 16 | 8 | `source_ns`: when the source says it happened (ns since the Unix epoch) |
//! | 24 | 8 | `ingest_ns`: when the source decoded it (ns since the Unix epoch) |
//! | 32 | 8 | `resource_version`: Kubernetes resourceVersion, 0 if none or not numeric |
//! | 40 | 4 | `namespace` symbol |
//! | 44 | 4 | `name` symbol |
//! | 48 | 1 | `kind` ([`Kind`]) |
//! | 49 | 1 | `op` ([`Op`]) |
//! | 50 | 2 | `flags` ([`RecordFlags`]) |
//! | 52 | 1 | number of typed fields in use (≤ [`MAX_FIELDS`]) |
//! | 53 | 1 | number of fields dropped because the record was full (saturating) |
//! | 54 | 2 | reserved, zero |
//! | 56 | 8 | field slots: per field, id (low 6 bits) and value type (high 2 bits) |
//! | 64 | 64 | field values: 8 × 64-bit payloads |
//!
//! Typed fields: up to [`MAX_FIELDS`] `(FieldId, FieldValue)` pairs. Pushing
//! one more sets [`RecordFlags::FIELDS_TRUNCATED`], increments
//! [`Record::dropped_fields`] (saturating at 255) and leaves the stored
//! fields unchanged. The Kubernetes decoder pushes at most 8 fields for every
//! kind it knows (see `docs/sources.md`), so truncation there only follows
//! from a future change that adds fields.

use core::fmt;

use crate::sources::intern::Symbol;

/// Size of a [`Record`] in bytes.
pub const RECORD_SIZE: usize = 128;

/// Maximum number of typed fields in one [`Record`].
pub const MAX_FIELDS: usize = 8;

const _: () = assert!(core::mem::size_of::<Record>() == RECORD_SIZE);
const _: () = assert!(core::mem::align_of::<Record>() == 64);
const _: () = assert!(FieldId::ALL.len() <= 64, "field ids must fit in 6 bits");

/// What kind of thing a record describes.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// A kind the source does not model (custom resources, …).
    #[default]
    Unknown = 0,
    /// Kubernetes `Pod`.
    Pod = 1,
    /// Kubernetes `Node`.
    Node = 2,
    /// Kubernetes `Deployment` (`apps/v1`, or legacy `extensions/v1beta1`).
    Deployment = 3,
    /// Kubernetes `Service`.
    Service = 4,
    /// Kubernetes `ConfigMap`.
    ConfigMap = 5,
    /// Kubernetes `Event` (`v1` or `events.k8s.io/v1`).
    Event = 6,
    /// Kubernetes `Status` (the body of a watch `ERROR` or a failed request).
    Status = 7,
    /// A market-data tick (trading scenario).
    Tick = 8,
    /// A sensor reading (IoT scenario).
    Sensor = 9,
}

impl Kind {
    /// Number of variants; `kind as usize` is always below it.
    pub const COUNT: usize = 10;

    /// Every variant, indexed by its discriminant.
    pub const ALL: [Kind; Self::COUNT] = [
        Kind::Unknown,
        Kind::Pod,
        Kind::Node,
        Kind::Deployment,
        Kind::Service,
        Kind::ConfigMap,
        Kind::Event,
        Kind::Status,
        Kind::Tick,
        Kind::Sensor,
    ];

    /// The canonical name (the Kubernetes `kind` string for Kubernetes kinds).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Unknown => "Unknown",
            Kind::Pod => "Pod",
            Kind::Node => "Node",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::ConfigMap => "ConfigMap",
            Kind::Event => "Event",
            Kind::Status => "Status",
            Kind::Tick => "Tick",
            Kind::Sensor => "Sensor",
        }
    }

    /// The Kubernetes kind for a `kind` string, `Unknown` if not modelled.
    pub fn from_k8s(kind: &[u8]) -> Kind {
        match kind {
            b"Pod" => Kind::Pod,
            b"Node" => Kind::Node,
            b"Deployment" => Kind::Deployment,
            b"Service" => Kind::Service,
            b"ConfigMap" => Kind::ConfigMap,
            b"Event" => Kind::Event,
            b"Status" => Kind::Status,
            _ => Kind::Unknown,
        }
    }
}

/// What happened to the object.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Op {
    /// The object was created (watch `ADDED`, or an item of a list).
    #[default]
    Added = 0,
    /// The object changed (watch `MODIFIED`).
    Modified = 1,
    /// The object was removed (watch `DELETED`).
    Deleted = 2,
    /// A watch `BOOKMARK`: only the resource version is meaningful.
    Bookmark = 3,
    /// A watch `ERROR` (whatever its object), or a `Status` object whose
    /// `status` is not `"Success"`.
    Error = 4,
}

impl Op {
    /// The watch event type string (`"ADDED"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Op::Added => "ADDED",
            Op::Modified => "MODIFIED",
            Op::Deleted => "DELETED",
            Op::Bookmark => "BOOKMARK",
            Op::Error => "ERROR",
        }
    }
}

/// Bit flags carried by a record.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RecordFlags(pub u16);

impl RecordFlags {
    /// More fields were pushed than fit; see [`Record::dropped_fields`].
    pub const FIELDS_TRUNCATED: RecordFlags = RecordFlags(1 << 0);
    /// A string could not be interned (interner full); its symbol is
    /// [`Symbol::OVERFLOW`]. The key is still exact: it hashes the bytes.
    pub const SYMBOL_OVERFLOW: RecordFlags = RecordFlags(1 << 1);
    /// `metadata.resourceVersion` was present but not a decimal `u64`;
    /// `resource_version` is 0.
    pub const RESOURCE_VERSION_OPAQUE: RecordFlags = RecordFlags(1 << 2);
    /// The object carries `metadata.deletionTimestamp` (it is terminating).
    pub const DELETING: RecordFlags = RecordFlags(1 << 3);
    /// A `Ready` condition was present with a status other than
    /// `"True"`/`"False"` (for example `"Unknown"`); no `Ready` field is set.
    pub const READY_UNKNOWN: RecordFlags = RecordFlags(1 << 4);
    /// A BOOKMARK annotated `k8s.io/initial-events-end: "true"`: the
    /// initial list of a `sendInitialEvents` watch is complete.
    pub const INITIAL_EVENTS_END: RecordFlags = RecordFlags(1 << 5);
    /// `source_ns` was clamped: the timestamp is valid RFC 3339 but outside
    /// the range of `i64` nanoseconds (years 1677–2262).
    pub const SOURCE_TIME_CLAMPED: RecordFlags = RecordFlags(1 << 6);

    /// No flags.
    pub const EMPTY: RecordFlags = RecordFlags(0);

    /// Whether every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: RecordFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    #[inline]
    pub fn insert(&mut self, other: RecordFlags) {
        self.0 |= other.0;
    }
}

impl fmt::Debug for RecordFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(RecordFlags, &str); 7] = [
            (RecordFlags::FIELDS_TRUNCATED, "FIELDS_TRUNCATED"),
            (RecordFlags::SYMBOL_OVERFLOW, "SYMBOL_OVERFLOW"),
            (
                RecordFlags::RESOURCE_VERSION_OPAQUE,
                "RESOURCE_VERSION_OPAQUE",
            ),
            (RecordFlags::DELETING, "DELETING"),
            (RecordFlags::READY_UNKNOWN, "READY_UNKNOWN"),
            (RecordFlags::INITIAL_EVENTS_END, "INITIAL_EVENTS_END"),
            (RecordFlags::SOURCE_TIME_CLAMPED, "SOURCE_TIME_CLAMPED"),
        ];
        let mut list = f.debug_set();
        for (flag, name) in NAMES {
            if self.contains(flag) {
                list.entry(&format_args!("{name}"));
            }
        }
        list.finish()
    }
}

macro_rules! field_ids {
    ($( $(#[$doc:meta])* $name:ident = $v:literal, )*) => {
        /// Identifies a typed field. The discriminant fits in 6 bits.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum FieldId {
            $( $(#[$doc])* $name = $v, )*
        }

        impl FieldId {
            /// Every field id.
            pub const ALL: &'static [FieldId] = &[$(FieldId::$name,)*];

            /// The id for a raw discriminant.
            pub const fn from_u8(v: u8) -> Option<FieldId> {
                match v {
                    $( $v => Some(FieldId::$name), )*
                    _ => None,
                }
            }

            /// The field's name in `snake_case`-free form (the variant name).
            pub const fn name(self) -> &'static str {
                match self {
                    $( FieldId::$name => stringify!($name), )*
                }
            }
        }
    };
}

field_ids! {
    /// Pod `status.phase` (symbol; well-known ids in `intern::known`).
    Phase = 0,
    /// `Ready` condition of a Pod or Node (bool).
    Ready = 1,
    /// Sum of `restartCount` over all container statuses (i64).
    RestartsTotal = 2,
    /// Largest `restartCount` of any container (i64).
    RestartsMax = 3,
    /// The most severe container `state.waiting.reason` (symbol).
    WaitingReason = 4,
    /// Pod `spec.nodeName` (symbol).
    NodeName = 5,
    /// Whitespace-insensitive hash of the `spec` object (ConfigMap: of
    /// `data` and `binaryData`); u64 stored as i64 bits.
    SpecHash = 6,
    /// `metadata.labels` as an interned canonical text (symbol): pairs
    /// sorted by key, `key=value` joined with `,`; `Symbol::EMPTY` for no
    /// labels. See [`crate::sources::labels`].
    Labels = 7,
    /// Deployment `spec.replicas` (i64).
    ReplicasDesired = 8,
    /// Deployment `status.replicas` (i64).
    ReplicasCurrent = 9,
    /// Deployment `status.readyReplicas` (i64).
    ReplicasReady = 10,
    /// Deployment `status.availableReplicas` (i64).
    ReplicasAvailable = 11,
    /// Deployment `status.updatedReplicas` (i64).
    ReplicasUpdated = 12,
    /// Node `spec.unschedulable` (bool).
    Unschedulable = 13,
    /// Node pressure conditions whose status is `"True"`, as a bit set
    /// (`K8S_PRESSURE_*` constants in the k8s decoder) (i64).
    NodePressure = 14,
    /// Service `spec.type` (symbol).
    ServiceType = 15,
    /// ConfigMap `immutable` (bool).
    Immutable = 16,
    /// ConfigMap number of keys in `data` plus `binaryData` (i64).
    DataCount = 17,
    /// Event `reason`, or Status `reason` (symbol).
    Reason = 18,
    /// Event `type` (`Normal`/`Warning`) (symbol).
    EventType = 19,
    /// Kind of the Event's `regarding`/`involvedObject` (symbol).
    RegardingKind = 20,
    /// Name of the Event's `regarding`/`involvedObject` (symbol).
    RegardingName = 21,
    /// Key of the Event's `regarding`/`involvedObject`, computed like
    /// [`Record::key`] so it equals the key of that object's own records;
    /// u64 stored as i64 bits.
    RegardingKey = 22,
    /// Event occurrence count (i64).
    Count = 23,
    /// Status `code` (HTTP status) (i64).
    StatusCode = 24,
    /// The `kind` string of an object whose [`Kind`] is `Unknown` (symbol).
    KindName = 25,
    /// Order-insensitive hash of `metadata.labels`
    /// ([`crate::sources::labels::LabelSet::hash`]), carried *instead of*
    /// [`FieldId::Labels`] when the set has no canonical text (over
    /// [`crate::sources::labels::MAX_LABELS`] pairs or
    /// [`crate::sources::labels::MAX_LABELS_BYTES`] bytes, or `,`/`=` in a
    /// key or value) or the interner is full (then the record also has
    /// [`RecordFlags::SYMBOL_OVERFLOW`]); u64 stored as i64 bits. Compare it
    /// with a `Labels` symbol through
    /// [`crate::sources::labels::canonical_hash`] of the symbol's text.
    LabelsHash = 26,
    /// Trading: instrument (symbol).
    Instrument = 32,
    /// Trading: price (f64).
    Price = 33,
    /// Trading: quantity (f64).
    Quantity = 34,
    /// Trading: side, true = buy (bool).
    Side = 35,
    /// Trading: asset class (symbol: `forex`, `crypto`, `stock`, `bond`).
    AssetClass = 36,
    /// IoT: device type (symbol).
    DeviceType = 40,
    /// IoT: measured value (f64).
    Value = 41,
    /// IoT: device id (i64).
    DeviceId = 42,
    /// IoT: edge node the reading came through (i64).
    EdgeNode = 43,
}

/// The value of a typed field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue {
    /// A signed integer (also carries u64 hashes as their bit pattern).
    I64(i64),
    /// A floating-point number.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// An interned string.
    Sym(Symbol),
}

impl FieldValue {
    const TAG_I64: u8 = 0;
    const TAG_F64: u8 = 1;
    const TAG_BOOL: u8 = 2;
    const TAG_SYM: u8 = 3;

    #[inline]
    fn encode(self) -> (u8, u64) {
        match self {
            FieldValue::I64(v) => (Self::TAG_I64, v as u64),
            FieldValue::F64(v) => (Self::TAG_F64, v.to_bits()),
            FieldValue::Bool(v) => (Self::TAG_BOOL, u64::from(v)),
            FieldValue::Sym(s) => (Self::TAG_SYM, u64::from(s.id())),
        }
    }

    #[inline]
    fn decode(tag: u8, bits: u64) -> FieldValue {
        match tag {
            Self::TAG_I64 => FieldValue::I64(bits as i64),
            Self::TAG_F64 => FieldValue::F64(f64::from_bits(bits)),
            Self::TAG_BOOL => FieldValue::Bool(bits != 0),
            _ => FieldValue::Sym(Symbol::from_id(bits as u32)),
        }
    }

    /// The integer, if this is an `I64`.
    pub const fn as_i64(self) -> Option<i64> {
        match self {
            FieldValue::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The bit pattern of an `I64` read as `u64` (for hash fields).
    pub const fn as_u64_bits(self) -> Option<u64> {
        match self {
            FieldValue::I64(v) => Some(v as u64),
            _ => None,
        }
    }

    /// The float, if this is an `F64`.
    pub const fn as_f64(self) -> Option<f64> {
        match self {
            FieldValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The boolean, if this is a `Bool`.
    pub const fn as_bool(self) -> Option<bool> {
        match self {
            FieldValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The symbol, if this is a `Sym`.
    pub const fn as_sym(self) -> Option<Symbol> {
        match self {
            FieldValue::Sym(v) => Some(v),
            _ => None,
        }
    }
}

/// One typed field of a record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// Which field.
    pub id: FieldId,
    /// Its value.
    pub value: FieldValue,
}

/// The fixed-size reverse-flow record. See the [module docs](self) for the
/// byte layout.
#[repr(C, align(64))]
#[derive(Clone, Copy, PartialEq)]
pub struct Record {
    /// Stable hash of kind, namespace and name ([`crate::sources::hash::key_of`]).
    pub key: u64,
    /// Sequence number assigned by the source, dense in decode order.
    pub seq: u64,
    /// When the event happened according to the source, in ns since the
    /// Unix epoch; 0 when the source gives no time.
    pub source_ns: i64,
    /// When the source decoded the event, in ns since the Unix epoch.
    pub ingest_ns: i64,
    /// Numeric Kubernetes `resourceVersion` (0 if absent or opaque).
    pub resource_version: u64,
    /// Namespace (`Symbol::EMPTY` for cluster-scoped objects).
    pub namespace: Symbol,
    /// Object name (`Symbol::EMPTY` when the object has none, e.g. a bookmark).
    pub name: Symbol,
    /// What kind of thing this is.
    pub kind: Kind,
    /// What happened.
    pub op: Op,
    /// Flags.
    pub flags: RecordFlags,
    field_count: u8,
    dropped_fields: u8,
    _reserved: [u8; 2],
    field_slots: [u8; MAX_FIELDS],
    field_values: [u64; MAX_FIELDS],
}

impl Record {
    /// An empty record of `kind` and `op`: zero key, times and sequence,
    /// empty symbols, no flags, no fields.
    #[inline]
    pub const fn new(kind: Kind, op: Op) -> Record {
        Record {
            key: 0,
            seq: 0,
            source_ns: 0,
            ingest_ns: 0,
            resource_version: 0,
            namespace: Symbol::EMPTY,
            name: Symbol::EMPTY,
            kind,
            op,
            flags: RecordFlags::EMPTY,
            field_count: 0,
            dropped_fields: 0,
            _reserved: [0; 2],
            field_slots: [0; MAX_FIELDS],
            field_values: [0; MAX_FIELDS],
        }
    }

    /// Appends a field. Returns `false` — and sets
    /// [`RecordFlags::FIELDS_TRUNCATED`] and increments
    /// [`dropped_fields`](Self::dropped_fields) — when all
    /// [`MAX_FIELDS`] slots are taken. Pushing an id that is already present
    /// appends a second entry; [`get`](Self::get) returns the first.
    #[inline]
    pub fn push(&mut self, id: FieldId, value: FieldValue) -> bool {
        let n = self.field_count as usize;
        if n >= MAX_FIELDS {
            self.flags.insert(RecordFlags::FIELDS_TRUNCATED);
            self.dropped_fields = self.dropped_fields.saturating_add(1);
            return false;
        }
        let (tag, bits) = value.encode();
        self.field_slots[n] = (id as u8) | (tag << 6);
        self.field_values[n] = bits;
        self.field_count += 1;
        true
    }

    /// Number of fields stored.
    #[inline]
    pub const fn field_count(&self) -> usize {
        self.field_count as usize
    }

    /// The stored fields' raw slot bytes, in push order: the [`FieldId`] in the low 6 bits,
    /// the value type in the high 2 (0 = I64, 1 = F64, 2 = Bool, 3 = Sym). For stages that
    /// compare or classify fields without decoding them.
    #[inline]
    pub fn raw_slots(&self) -> &[u8] {
        &self.field_slots[..self.field_count as usize]
    }

    /// The eight raw slot bytes (see [`raw_slots`](Self::raw_slots)) as one little-endian
    /// word, slot `i` in byte `i`. Bytes at and past [`field_count`](Self::field_count) are
    /// not fields (zero in records built with [`push`](Self::push)). Two records with the
    /// same field count and the same word carry the same field ids and value types in the
    /// same order: one comparison instead of a loop.
    #[inline]
    pub const fn raw_slots_word(&self) -> u64 {
        u64::from_le_bytes(self.field_slots)
    }

    /// The stored fields' raw 64-bit payloads, in push order (see
    /// [`raw_slots`](Self::raw_slots)).
    #[inline]
    pub fn raw_values(&self) -> &[u64] {
        &self.field_values[..self.field_count as usize]
    }

    /// All [`MAX_FIELDS`] raw payload words; those at and past
    /// [`field_count`](Self::field_count) are not fields. For readers that find slots
    /// once per layout and index without a bounds check per field.
    #[inline]
    pub const fn raw_value_words(&self) -> &[u64; MAX_FIELDS] {
        &self.field_values
    }

    /// Number of fields that did not fit (saturates at 255).
    #[inline]
    pub const fn dropped_fields(&self) -> u8 {
        self.dropped_fields
    }

    /// The `i`-th stored field.
    #[inline]
    pub fn field(&self, i: usize) -> Option<Field> {
        if i >= self.field_count as usize {
            return None;
        }
        let slot = self.field_slots[i];
        // Only `push` writes slots, always from a valid `FieldId`.
        let id = FieldId::from_u8(slot & 0x3f)?;
        Some(Field {
            id,
            value: FieldValue::decode(slot >> 6, self.field_values[i]),
        })
    }

    /// The value of the first field with this id.
    #[inline]
    pub fn get(&self, id: FieldId) -> Option<FieldValue> {
        let n = self.field_count as usize;
        for i in 0..n {
            if self.field_slots[i] & 0x3f == id as u8 {
                let slot = self.field_slots[i];
                return Some(FieldValue::decode(slot >> 6, self.field_values[i]));
            }
        }
        None
    }

    /// The stored fields, in push order.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        (0..self.field_count as usize).filter_map(move |i| self.field(i))
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Fields<'a>(&'a Record);
        impl fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.fields().map(|fl| (fl.id, fl.value)))
                    .finish()
            }
        }
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("op", &self.op)
            .field("key", &format_args!("{:#018x}", self.key))
            .field("seq", &self.seq)
            .field("source_ns", &self.source_ns)
            .field("ingest_ns", &self.ingest_ns)
            .field("resource_version", &self.resource_version)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("flags", &self.flags)
            .field("dropped_fields", &self.dropped_fields)
            .field("fields", &Fields(self))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_offsets() {
        let r = Record::new(Kind::Pod, Op::Added);
        let base = &r as *const Record as usize;
        assert_eq!(&r.key as *const u64 as usize - base, 0);
        assert_eq!(&r.resource_version as *const u64 as usize - base, 32);
        assert_eq!(&r.namespace as *const Symbol as usize - base, 40);
        assert_eq!(&r.kind as *const Kind as usize - base, 48);
        assert_eq!(&r.flags as *const RecordFlags as usize - base, 50);
        assert_eq!(r.field_slots.as_ptr() as usize - base, 56);
        assert_eq!(r.field_values.as_ptr() as usize - base, 64);
    }

    #[test]
    fn push_and_get_every_value_type() {
        let mut r = Record::new(Kind::Sensor, Op::Added);
        assert!(r.push(FieldId::RestartsTotal, FieldValue::I64(-3)));
        assert!(r.push(FieldId::Value, FieldValue::F64(21.5)));
        assert!(r.push(FieldId::Ready, FieldValue::Bool(true)));
        assert!(r.push(FieldId::Phase, FieldValue::Sym(Symbol::from_id(7))));
        assert!(r.push(FieldId::SpecHash, FieldValue::I64(u64::MAX as i64)));
        assert_eq!(r.get(FieldId::RestartsTotal), Some(FieldValue::I64(-3)));
        assert_eq!(r.get(FieldId::Value), Some(FieldValue::F64(21.5)));
        assert_eq!(r.get(FieldId::Ready), Some(FieldValue::Bool(true)));
        assert_eq!(
            r.get(FieldId::Phase),
            Some(FieldValue::Sym(Symbol::from_id(7)))
        );
        assert_eq!(
            r.get(FieldId::SpecHash).and_then(FieldValue::as_u64_bits),
            Some(u64::MAX)
        );
        assert_eq!(r.get(FieldId::Count), None);
        assert_eq!(r.field_count(), 5);
        let ids: Vec<FieldId> = r.fields().map(|f| f.id).collect();
        assert_eq!(
            ids,
            [
                FieldId::RestartsTotal,
                FieldId::Value,
                FieldId::Ready,
                FieldId::Phase,
                FieldId::SpecHash
            ]
        );
    }

    #[test]
    fn overflow_sets_flag_and_counts() {
        let mut r = Record::new(Kind::Pod, Op::Modified);
        for i in 0..MAX_FIELDS {
            assert!(r.push(FieldId::Count, FieldValue::I64(i as i64)));
        }
        assert!(!r.flags.contains(RecordFlags::FIELDS_TRUNCATED));
        assert!(!r.push(FieldId::Ready, FieldValue::Bool(false)));
        assert!(!r.push(FieldId::Ready, FieldValue::Bool(false)));
        assert!(r.flags.contains(RecordFlags::FIELDS_TRUNCATED));
        assert_eq!(r.dropped_fields(), 2);
        assert_eq!(r.field_count(), MAX_FIELDS);
        assert_eq!(r.get(FieldId::Ready), None);
        assert_eq!(r.get(FieldId::Count), Some(FieldValue::I64(0)));
        for _ in 0..300 {
            r.push(FieldId::Ready, FieldValue::Bool(true));
        }
        assert_eq!(r.dropped_fields(), 255);
    }

    #[test]
    fn field_id_round_trip() {
        for &id in FieldId::ALL {
            assert!((id as u8) < 64);
            assert_eq!(FieldId::from_u8(id as u8), Some(id));
        }
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn raw_slots_word_holds_slot_i_in_byte_i() {
        let mut a = Record::new(Kind::Tick, Op::Added);
        assert_eq!(a.raw_slots_word(), 0);
        a.push(FieldId::Price, FieldValue::F64(1.0));
        a.push(FieldId::Instrument, FieldValue::Sym(Symbol::from_id(3)));
        let w = a.raw_slots_word();
        assert_eq!(w.to_le_bytes()[..2], *a.raw_slots());
        assert_eq!(w >> 16, 0, "no slot past the field count");
        // Same ids and types in the same order, other values: the same word.
        let mut b = Record::new(Kind::Tick, Op::Modified);
        b.push(FieldId::Price, FieldValue::F64(2.0));
        b.push(FieldId::Instrument, FieldValue::Sym(Symbol::from_id(4)));
        assert_eq!(b.raw_slots_word(), w);
        // Another type for the same id: another word.
        let mut c = Record::new(Kind::Tick, Op::Added);
        c.push(FieldId::Price, FieldValue::I64(2));
        c.push(FieldId::Instrument, FieldValue::Sym(Symbol::from_id(4)));
        assert_ne!(c.raw_slots_word(), w);
    }

    #[test]
    fn raw_slots_carry_the_id_and_the_documented_type_tag() {
        let mut r = Record::new(Kind::Tick, Op::Added);
        r.push(FieldId::Quantity, FieldValue::I64(-1));
        r.push(FieldId::Price, FieldValue::F64(1.5));
        r.push(FieldId::Side, FieldValue::Bool(true));
        r.push(FieldId::Instrument, FieldValue::Sym(Symbol::from_id(9)));
        let tags: Vec<(u8, u8)> = r.raw_slots().iter().map(|s| (s & 0x3f, s >> 6)).collect();
        assert_eq!(
            tags,
            vec![
                (FieldId::Quantity as u8, 0),
                (FieldId::Price as u8, 1),
                (FieldId::Side as u8, 2),
                (FieldId::Instrument as u8, 3)
            ]
        );
        assert_eq!(r.raw_values(), &[u64::MAX, 1.5f64.to_bits(), 1, 9]);
    }
}
