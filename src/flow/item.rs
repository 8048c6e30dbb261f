//! [`Item`]: the one fixed-size value that travels through every reverse-flow stage.
//!
//! The reverse flow is a linear chain (reactor → resources → distribution → bitactor →
//! schema → turtle → typer → notify), but several stages produce *side results* —
//! rule hits, step outcomes, schema bumps, command replies — that must reach notify in
//! order with the change that caused them. Instead of a sum type (whose tag would push a
//! 256-byte payload to 320 bytes) every stage passes the same 256-byte [`Item`] and fills
//! in its own part:
//!
//! | bytes | part | written by |
//! |---|---|---|
//! | 0..128 | [`Item::record`]: the subject (for a change: the state after it) | source |
//! | 128..192 | previous values of the record's fields, by field index | resources |
//! | 192..200 | [`Item::changed`]: which field ids are new or changed | resources |
//! | 200..208 | [`ItemHeader`]: what the item is, change kind, shard, schema version | all |
//! | 208..216 | [`RuleHits`]: up to [`MAX_HITS`] matched rules | bitactor |
//! | 216..224 | [`StepSummary`]: the reactor chain's outcome | reactor |
//! | 224..248 | [`Command`]: a client command or its reply | source / owning stage |
//! | 248..256 | [`TraceTag`]: trace slot and hand-over time (telemetry) | host / [`crate::flow::tracing`] |
//!
//! Nothing here owns heap memory; an `Item` is `Copy`.

use crate::sources::record::{FieldId, FieldValue, Record, MAX_FIELDS};

/// Size of an [`Item`] in bytes.
pub const ITEM_SIZE: usize = 256;

/// Rule hits one item can carry; more set [`RuleHits::overflowed`].
pub const MAX_HITS: usize = 3;

const _: () = assert!(core::mem::size_of::<Item>() == ITEM_SIZE);
const _: () = assert!(core::mem::align_of::<Item>() == 64);
const _: () = assert!(core::mem::size_of::<Command>() <= 24);
const _: () = assert!(core::mem::offset_of!(Item, trace) == 248);

/// What an [`Item`] carries.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum What {
    /// A record from a source (before resources) or a change (after resources).
    #[default]
    Record = 0,
    /// A record resources found identical to the stored state: it stops there.
    Unchanged = 1,
    /// A reactor step lifecycle event (retried, compensated, failed, …) for
    /// [`Item::record`]; see [`Item::steps`].
    Step = 2,
    /// A client command travelling to the stage that applies it ([`Item::command`]).
    Command = 3,
    /// The reply to a command, travelling to notify ([`Item::command`] holds it).
    Reply = 4,
    /// A periodic tick (no record): stages flush windows and coalesced topics.
    Tick = 5,
}

/// How resources classified a change.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ChangeKind {
    /// Not yet classified (before resources), or not a keyed object (bookmark, error).
    #[default]
    None = 0,
    /// The key was not in the store.
    Created = 1,
    /// The key was in the store and at least one field changed.
    Updated = 2,
    /// The object was deleted; `record` holds the last known state.
    Deleted = 3,
}

/// A set of [`FieldId`]s, one bit per discriminant.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldMask(pub u64);

impl FieldMask {
    /// The empty set.
    pub const EMPTY: FieldMask = FieldMask(0);

    /// The set with one field.
    #[inline]
    pub const fn of(id: FieldId) -> FieldMask {
        FieldMask(1u64 << (id as u8))
    }

    /// Whether `id` is in the set.
    #[inline]
    pub const fn contains(self, id: FieldId) -> bool {
        self.0 & (1u64 << (id as u8)) != 0
    }

    /// Adds `id`.
    #[inline]
    pub fn insert(&mut self, id: FieldId) {
        self.0 |= 1u64 << (id as u8);
    }

    /// Whether the set is empty.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ids in the set, in discriminant order.
    pub fn iter(self) -> impl Iterator<Item = FieldId> {
        (0u8..64)
            .filter(move |b| self.0 & (1u64 << b) != 0)
            .filter_map(FieldId::from_u8)
    }
}

impl core::fmt::Debug for FieldMask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The small header every stage reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ItemHeader {
    /// What the item carries.
    pub what: What,
    /// How resources classified the change.
    pub change: ChangeKind,
    /// Shard chosen by distribution (0 before it).
    pub shard: u8,
    /// Bit `i` set: field `i` of `record` had a value before the change
    /// (then [`Item::prev`] returns it).
    pub prev_present: u8,
    /// Schema version after the schema stage saw this item; it differs from the
    /// previous item's when this item made the schema grow.
    pub schema_version: u32,
}

/// Telemetry's tag on an item (see [`crate::flow::tracing`]): 8 bytes that were the
/// item's tail padding, so an [`Item`] stays 256 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TraceTag {
    /// 0: not traced. Otherwise the id of the trace slot following this item (slot index
    /// and generation); a copy whose id no longer matches its slot is ignored.
    pub id: u32,
    /// When the host handed the item to the pipeline: the low 32 bits of the clock's
    /// ticks shifted right by [`crate::flow::tracing::TAG_SHIFT`]; 0 with telemetry off.
    pub handed: u32,
}

/// Severity of a rule hit.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Severity {
    /// Informational.
    #[default]
    Info = 0,
    /// Needs attention.
    Warning = 1,
    /// Needs action now.
    Critical = 2,
}

impl Severity {
    /// Lower-case name, as in rules files and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Set in a [`RuleHits`] entry when the rule stopped matching for this object (the alert
/// cleared: a recovery), rather than started matching.
pub const CLEARED_BIT: u16 = 0x8000;

/// Rules matched by the bitactor for this item (its feedback signals).
///
/// An entry is a rule id; with [`CLEARED_BIT`] set it says the rule's alert for this
/// object cleared.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RuleHits {
    /// Rule ids (indices into the loaded rule table), `count` of them valid.
    pub rules: [u16; MAX_HITS],
    /// Number of valid entries in `rules`.
    pub count: u8,
    /// Hits beyond [`MAX_HITS`] (saturating); they are counted, not carried.
    pub overflowed: u8,
}

impl RuleHits {
    /// Records one hit.
    #[inline]
    pub fn push(&mut self, rule: u16) {
        if (self.count as usize) < MAX_HITS {
            self.rules[self.count as usize] = rule;
            self.count += 1;
        } else {
            self.overflowed = self.overflowed.saturating_add(1);
        }
    }

    /// The carried hits.
    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        &self.rules[..self.count as usize]
    }

    /// Whether no rule matched.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.count == 0 && self.overflowed == 0
    }
}

/// Lifecycle state of a reactor step, as published on `reactor:steps`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum StepState {
    /// The chain has not run (not routed through the reactor).
    #[default]
    NotRun = 0,
    /// A step started.
    Started = 1,
    /// A step (or, in a summary, the whole chain) completed.
    Completed = 2,
    /// A step failed and will be retried after a backoff.
    Retried = 3,
    /// A step's compensation ran after the chain finally failed.
    Compensated = 4,
    /// The chain finally failed (after its compensations).
    Failed = 5,
}

impl StepState {
    /// Lower-case name, as in messages.
    pub const fn name(self) -> &'static str {
        match self {
            StepState::NotRun => "not_run",
            StepState::Started => "started",
            StepState::Completed => "completed",
            StepState::Retried => "retried",
            StepState::Compensated => "compensated",
            StepState::Failed => "failed",
        }
    }
}

/// What the reactor did for this item: the chain, the step, its state, attempts and time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StepSummary {
    /// Step chain id (index into the reactor's chain table).
    pub chain: u8,
    /// Step index within the chain the state refers to (for a completed chain: the number
    /// of steps run).
    pub step: u8,
    /// The state.
    pub state: StepState,
    /// Attempts so far for this step (1 = first try).
    pub attempt: u8,
    /// Duration of the step (or of the whole chain for a completed summary) in ns,
    /// saturating at `u32::MAX`.
    pub duration_ns: u32,
}

/// A client command (on its way to the stage that applies it) or its reply.
///
/// `request` identifies the command end to end: the notify stage uses it to send the
/// reply to the client that sent the command.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Command {
    /// No command.
    #[default]
    None,
    /// Change a rule's threshold (bitactor).
    SetThreshold {
        /// Request id.
        request: u64,
        /// Rule id.
        rule: u16,
        /// The new threshold.
        value: f64,
    },
    /// Enable or disable a rule (bitactor).
    EnableRule {
        /// Request id.
        request: u64,
        /// Rule id.
        rule: u16,
        /// Whether the rule is on.
        enabled: bool,
    },
    /// Acknowledge the alert raised by `rule` for object `key` (notify).
    AckAlert {
        /// Request id.
        request: u64,
        /// Object key.
        key: u64,
        /// Rule id.
        rule: u16,
    },
    /// Publish a consistent snapshot of the resource state (resources).
    Snapshot {
        /// Request id.
        request: u64,
    },
    /// The reply to request `request`: `code` 0 is success, otherwise a
    /// [`ReplyCode`](crate::flow::ReplyCode) value; `detail` is command specific
    /// (e.g. the old threshold, the number of objects in a snapshot).
    Reply {
        /// Request id.
        request: u64,
        /// 0 = ok, otherwise an error code.
        code: u16,
        /// Command-specific detail.
        detail: f64,
    },
}

impl Command {
    /// The request id, if this is a command or a reply.
    pub const fn request(&self) -> Option<u64> {
        match *self {
            Command::None => None,
            Command::SetThreshold { request, .. }
            | Command::EnableRule { request, .. }
            | Command::AckAlert { request, .. }
            | Command::Snapshot { request }
            | Command::Reply { request, .. } => Some(request),
        }
    }
}

/// The value that flows through every reverse-flow stage. See the [module docs](self).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Item {
    /// The subject: the record from the source; after resources, the state after the
    /// change (for a delete: the last known state, with `op` Deleted).
    pub record: Record,
    prev_bits: [u64; MAX_FIELDS],
    /// Field ids that are new or changed (after resources; for `Created`, every field).
    pub changed: FieldMask,
    /// What the item is, plus per-stage annotations.
    pub header: ItemHeader,
    /// Rules matched by the bitactor.
    pub hits: RuleHits,
    /// The reactor's outcome for this item.
    pub steps: StepSummary,
    /// A command or reply (when `header.what` is `Command` or `Reply`).
    pub command: Command,
    /// Telemetry: the trace slot and hand-over time (zero when not traced).
    pub trace: TraceTag,
}

impl Item {
    /// An item carrying a record from a source.
    #[inline]
    pub const fn from_record(record: Record) -> Item {
        Item {
            record,
            prev_bits: [0; MAX_FIELDS],
            changed: FieldMask::EMPTY,
            header: ItemHeader {
                what: What::Record,
                change: ChangeKind::None,
                shard: 0,
                prev_present: 0,
                schema_version: 0,
            },
            hits: RuleHits {
                rules: [0; MAX_HITS],
                count: 0,
                overflowed: 0,
            },
            steps: StepSummary {
                chain: 0,
                step: 0,
                state: StepState::NotRun,
                attempt: 0,
                duration_ns: 0,
            },
            command: Command::None,
            trace: TraceTag { id: 0, handed: 0 },
        }
    }

    /// An item carrying a command (its record is empty).
    pub fn from_command(command: Command) -> Item {
        let mut item = Item::from_record(Record::new(
            crate::sources::record::Kind::Unknown,
            crate::sources::record::Op::Added,
        ));
        item.header.what = What::Command;
        item.command = command;
        item
    }

    /// A periodic tick item.
    pub fn tick(now_ns: i64) -> Item {
        let mut record = Record::new(
            crate::sources::record::Kind::Unknown,
            crate::sources::record::Op::Added,
        );
        record.ingest_ns = now_ns;
        let mut item = Item::from_record(record);
        item.header.what = What::Tick;
        item
    }

    /// The previous value of field `index` of [`record`](Self::record) (read with the
    /// current value's type), if it had one before the change.
    #[inline]
    pub fn prev_at(&self, index: usize) -> Option<FieldValue> {
        if index >= MAX_FIELDS || self.header.prev_present & (1 << index) == 0 {
            return None;
        }
        let current = self.record.field(index)?.value;
        Some(value_from_bits(current, self.prev_bits[index]))
    }

    /// The raw previous payload of every field slot (see
    /// [`Record::raw_value_words`]); slot `i` holds a previous value only where bit `i` of
    /// `header.prev_present` is set, in the current field's type.
    #[inline]
    pub const fn raw_prev_words(&self) -> &[u64; MAX_FIELDS] {
        &self.prev_bits
    }

    /// The previous value of field `id`, if the record has it and it had a value before.
    #[inline]
    pub fn prev(&self, id: FieldId) -> Option<FieldValue> {
        let index = self.record.fields().position(|f| f.id == id)?;
        self.prev_at(index)
    }

    /// Stores the previous value of field `index` as its raw 64-bit payload (of the same
    /// type as the current value).
    #[inline]
    pub fn set_prev_bits_at(&mut self, index: usize, bits: u64) {
        if index < MAX_FIELDS {
            self.prev_bits[index] = bits;
            self.header.prev_present |= 1 << index;
        }
    }

    /// Stores the previous value of field `index` (resources calls this).
    #[inline]
    pub fn set_prev_at(&mut self, index: usize, value: FieldValue) {
        self.set_prev_bits_at(index, value_bits(value));
    }
}

/// The 64-bit payload of a field value (the record's own encoding).
#[inline]
pub const fn value_bits(value: FieldValue) -> u64 {
    match value {
        FieldValue::I64(v) => v as u64,
        FieldValue::F64(v) => v.to_bits(),
        FieldValue::Bool(v) => v as u64,
        FieldValue::Sym(s) => s.id() as u64,
    }
}

/// A value of the same variant as `like`, from a 64-bit payload.
#[inline]
pub const fn value_from_bits(like: FieldValue, bits: u64) -> FieldValue {
    match like {
        FieldValue::I64(_) => FieldValue::I64(bits as i64),
        FieldValue::F64(_) => FieldValue::F64(f64::from_bits(bits)),
        FieldValue::Bool(_) => FieldValue::Bool(bits != 0),
        FieldValue::Sym(_) => FieldValue::Sym(crate::sources::intern::Symbol::from_id(bits as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::record::{Kind, Op};

    #[test]
    fn prev_values_read_back_with_the_current_type() {
        let mut r = Record::new(Kind::Pod, Op::Modified);
        r.push(FieldId::RestartsTotal, FieldValue::I64(7));
        r.push(FieldId::Ready, FieldValue::Bool(false));
        let mut item = Item::from_record(r);
        item.set_prev_at(0, FieldValue::I64(3));
        assert_eq!(item.prev(FieldId::RestartsTotal), Some(FieldValue::I64(3)));
        assert_eq!(item.prev(FieldId::Ready), None, "no previous value stored");
        item.set_prev_at(1, FieldValue::Bool(true));
        assert_eq!(item.prev(FieldId::Ready), Some(FieldValue::Bool(true)));
    }

    #[test]
    fn hits_past_capacity_are_counted_not_carried() {
        let mut h = RuleHits::default();
        for r in 0..5 {
            h.push(r);
        }
        assert_eq!(h.as_slice(), &[0, 1, 2]);
        assert_eq!(h.overflowed, 2);
    }
}
