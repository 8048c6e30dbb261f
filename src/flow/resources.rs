//! The resources stage: keyed state with field-level diffs ("selective updates").
//!
//! The store maps an object's key ([`Record::key`], a stable hash of kind, namespace and
//! name) to its current record. Each incoming record is compared field by field with the
//! stored one:
//!
//! * a new key is a [`ChangeKind::Created`] change carrying every field;
//! * a known key with at least one field added, changed or removed is an
//!   [`ChangeKind::Updated`] change: [`Item::changed`] names the fields and
//!   [`Item::prev`] gives their previous values;
//! * a known key whose fields are all equal is *unchanged*: it stops here and is counted
//!   ([`ResourceCounters::unchanged`]). A `resourceVersion` bump alone is not a change;
//! * a delete removes the key and goes on as [`ChangeKind::Deleted`] with the last known
//!   state (so later stages can clear alerts and publish the removal);
//! * bookmarks, errors, commands and ticks pass through untouched.
//!
//! # Storage and its limits
//!
//! An open-addressing table with linear probing and backward-shift deletion (no
//! tombstones), allocated once at construction: `capacity` slots (a power of two), of
//! which at most 7/8 are used. When it is that full a record with a *new* key still
//! goes on as `Created` but is not stored, and [`ResourceCounters::store_full`] counts it;
//! later records for that key are again reported as `Created`. Nothing is dropped.
//!
//! # Snapshots
//!
//! A [`Command::Snapshot`] is applied in stream order: the stage copies every stored
//! record into the shared [`SnapshotSlot`] (whose buffer was allocated with the table's
//! capacity, so the copy does not allocate) and emits the reply. Every change before the
//! command is in the snapshot and every change after it follows it in the stream, which is
//! what a client needs to rebuild the state without gaps or duplicates. The copy is a
//! `memcpy` of the live records (about 2 ms per 100,000 objects); the flow pauses for that
//! long, it never stops.

use std::sync::{Arc, Mutex};

use crate::engine::{Emitter, InPlace, Stage};
use crate::flow::item::{ChangeKind, Command, FieldMask, Item, What};
use crate::flow::ReplyCode;
use crate::sources::record::{Op, Record, MAX_FIELDS};

/// Default number of slots in the store (2^18: 229,376 objects at 7/8 load).
pub const DEFAULT_CAPACITY: usize = 1 << 18;

/// Counters kept by the resources stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceCounters {
    /// Records for keys not yet stored.
    pub created: u64,
    /// Records that changed at least one field.
    pub updated: u64,
    /// Deletes (of stored or unknown keys).
    pub deleted: u64,
    /// Records identical to the stored state (not passed on).
    pub unchanged: u64,
    /// New keys that were passed on but not stored because the table was full.
    pub store_full: u64,
    /// Snapshots taken.
    pub snapshots: u64,
}

/// A consistent copy of the store, taken in stream order by [`Command::Snapshot`].
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The request that asked for it.
    pub request: u64,
    /// Sequence number of the last record applied before the snapshot.
    pub last_seq: u64,
    /// Every stored object, in table order.
    pub records: Vec<Record>,
}

/// Where the resources stage leaves snapshots for whoever publishes them.
///
/// The resources stage writes it on the command path only; readers take the lock when a
/// snapshot reply passes them.
#[derive(Debug, Default)]
pub struct SnapshotSlot {
    inner: Mutex<Snapshot>,
}

impl SnapshotSlot {
    /// A slot whose buffer holds `capacity` records without growing.
    pub fn with_capacity(capacity: usize) -> Arc<SnapshotSlot> {
        Arc::new(SnapshotSlot {
            inner: Mutex::new(Snapshot {
                request: 0,
                last_seq: 0,
                records: Vec::with_capacity(capacity),
            }),
        })
    }

    /// Runs `f` on the latest snapshot.
    pub fn with<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }
}

/// The keyed state store behind the resources stage.
pub struct ResourceStore {
    keys: Vec<u64>,
    records: Vec<Record>,
    mask: usize,
    len: usize,
    max_len: usize,
    counters: ResourceCounters,
    last_seq: u64,
}

/// Keys are hashes already; 0 marks an empty slot, so key 0 is stored as this.
const ZERO_KEY: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn stored_key(key: u64) -> u64 {
    if key == 0 {
        ZERO_KEY
    } else {
        key
    }
}

impl ResourceStore {
    /// A store with `capacity` slots (rounded up to a power of two, at least 16).
    pub fn new(capacity: usize) -> ResourceStore {
        let cap = capacity.max(16).next_power_of_two();
        ResourceStore {
            keys: vec![0; cap],
            records: vec![Record::new(Default::default(), Op::Added); cap],
            mask: cap - 1,
            len: 0,
            max_len: cap - cap / 8,
            counters: ResourceCounters::default(),
            last_seq: 0,
        }
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    /// The counters so far.
    pub fn counters(&self) -> ResourceCounters {
        self.counters
    }

    /// The stored state of `key`.
    pub fn get(&self, key: u64) -> Option<&Record> {
        self.find(stored_key(key)).map(|i| &self.records[i])
    }

    /// Every stored object, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.keys
            .iter()
            .zip(&self.records)
            .filter(|(k, _)| **k != 0)
            .map(|(_, r)| r)
    }

    #[inline]
    fn find(&self, k: u64) -> Option<usize> {
        let mut i = (k as usize) & self.mask;
        loop {
            let at = self.keys[i];
            if at == k {
                return Some(i);
            }
            if at == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Applies one record item: fills in the change classification, the changed mask and
    /// the previous values. Returns `false` when the record is unchanged (it should stop).
    #[inline]
    pub fn apply(&mut self, item: &mut Item) -> bool {
        // Read the record where it lies: copying all 128 bytes out of the item first would
        // cost more than the diff itself.
        let seq = item.record.seq;
        self.last_seq = seq;
        match item.record.op {
            Op::Bookmark | Op::Error => true,
            Op::Deleted => {
                self.counters.deleted += 1;
                item.header.change = ChangeKind::Deleted;
                let k = stored_key(item.record.key);
                if let Some(i) = self.find(k) {
                    let rec = &item.record;
                    let mut last = self.records[i];
                    last.op = Op::Deleted;
                    last.seq = seq;
                    last.source_ns = rec.source_ns;
                    last.ingest_ns = rec.ingest_ns;
                    if rec.resource_version != 0 {
                        last.resource_version = rec.resource_version;
                    }
                    self.remove_at(i);
                    item.record = last;
                }
                item.changed = mask_of(&item.record);
                true
            }
            Op::Added | Op::Modified => {
                let k = stored_key(item.record.key);
                let mut i = (k as usize) & self.mask;
                loop {
                    let at = self.keys[i];
                    if at == k {
                        return self.diff_into(i, item);
                    }
                    if at == 0 {
                        break;
                    }
                    i = (i + 1) & self.mask;
                }
                self.counters.created += 1;
                item.header.change = ChangeKind::Created;
                item.changed = mask_of(&item.record);
                if self.len < self.max_len {
                    self.keys[i] = k;
                    self.records[i] = item.record;
                    self.len += 1;
                } else {
                    self.counters.store_full += 1;
                }
                true
            }
        }
    }

    #[inline]
    fn diff_into(&mut self, slot: usize, item: &mut Item) -> bool {
        let old = &self.records[slot];
        let new = &item.record;
        // Compare raw (slot byte, payload) pairs: a slot byte holds the field id and its
        // value type, so equal pairs mean equal typed values, with nothing decoded.
        if old.field_count() == new.field_count() && old.raw_slots_word() == new.raw_slots_word() {
            // The common case: the same fields in the same order (records of one kind push
            // their fields in one order). Field `i`'s previous value is old field `i`, and
            // only payloads can differ; no field appeared or disappeared.
            let (slots, old_values) = (new.raw_slots(), old.raw_values());
            let new_values = new.raw_values();
            let mut changed = 0u64;
            for i in 0..slots.len().min(new_values.len()).min(old_values.len()) {
                changed |= u64::from(old_values[i] != new_values[i]) << (slots[i] & 0x3f);
            }
            if changed == 0 && old.flags == new.flags {
                self.counters.unchanged += 1;
                return false;
            }
            // `0..MAX_FIELDS` tells the compiler every index is in range.
            for (i, &v) in (0..MAX_FIELDS).zip(old_values) {
                item.set_prev_bits_at(i, v);
            }
            return self.store_update(slot, item, changed);
        }
        let (old_slots, old_values) = (old.raw_slots(), old.raw_values());
        let (new_slots, new_values) = (new.raw_slots(), new.raw_values());
        let mut changed = 0u64;
        let mut old_ids = 0u64;
        let mut new_ids = 0u64;
        for &s in old_slots {
            old_ids |= 1u64 << (s & 0x3f);
        }
        let mut prev_at = [usize::MAX; MAX_FIELDS];
        for (i, (&s, &v)) in new_slots.iter().zip(new_values).enumerate() {
            let id = s & 0x3f;
            new_ids |= 1u64 << id;
            // Same position first (records of one kind push fields in one order).
            let j = if old_slots.get(i).is_some_and(|&o| o & 0x3f == id) {
                Some(i)
            } else {
                old_slots.iter().position(|&o| o & 0x3f == id)
            };
            match j {
                Some(j) => {
                    if old_slots[j] != s || old_values[j] != v {
                        changed |= 1u64 << id;
                    }
                    if old_slots[j] == s {
                        prev_at[i] = j;
                    }
                }
                None => changed |= 1u64 << id,
            }
        }
        // Fields that disappeared are changes too.
        changed |= old_ids & !new_ids;
        if changed == 0 && old.flags == new.flags {
            self.counters.unchanged += 1;
            return false;
        }
        for (i, &j) in prev_at.iter().enumerate() {
            if j != usize::MAX {
                item.set_prev_bits_at(i, old_values[j]);
            }
        }
        self.store_update(slot, item, changed)
    }

    /// Marks `item` as an update of the object in `slot` and stores its record there.
    #[inline]
    fn store_update(&mut self, slot: usize, item: &mut Item, changed: u64) -> bool {
        item.changed = FieldMask(changed);
        item.header.change = ChangeKind::Updated;
        self.records[slot] = item.record;
        self.counters.updated += 1;
        true
    }

    fn remove_at(&mut self, mut hole: usize) {
        self.keys[hole] = 0;
        self.len -= 1;
        // Backward-shift deletion: move later members of the probe run into the hole.
        let mut i = (hole + 1) & self.mask;
        while self.keys[i] != 0 {
            let home = (self.keys[i] as usize) & self.mask;
            // The entry at `i` may move to `hole` if its home is not in (hole, i].
            let dist_hole = hole.wrapping_sub(home) & self.mask;
            let dist_i = i.wrapping_sub(home) & self.mask;
            if dist_hole < dist_i {
                self.keys[hole] = self.keys[i];
                self.records[hole] = self.records[i];
                self.keys[i] = 0;
                hole = i;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Copies the store into `snapshot` (whose buffer should hold `capacity()` records).
    pub fn snapshot_into(&mut self, request: u64, snapshot: &mut Snapshot) {
        self.counters.snapshots += 1;
        snapshot.request = request;
        snapshot.last_seq = self.last_seq;
        snapshot.records.clear();
        for (k, r) in self.keys.iter().zip(&self.records) {
            if *k != 0 {
                snapshot.records.push(*r);
            }
        }
    }
}

#[inline]
fn mask_of(rec: &Record) -> FieldMask {
    FieldMask(
        rec.raw_slots()
            .iter()
            .fold(0, |m, &s| m | 1u64 << (s & 0x3f)),
    )
}

/// The resources stage: a [`ResourceStore`] plus the snapshot command.
pub struct ResourcesStage {
    store: ResourceStore,
    snapshots: Arc<SnapshotSlot>,
}

impl ResourcesStage {
    /// A stage with a store of `capacity` slots, writing snapshots to `snapshots`.
    pub fn new(capacity: usize, snapshots: Arc<SnapshotSlot>) -> ResourcesStage {
        ResourcesStage {
            store: ResourceStore::new(capacity),
            snapshots,
        }
    }

    /// The store (for tests and for replay comparisons once the pipeline is finished).
    pub fn store(&self) -> &ResourceStore {
        &self.store
    }
}

impl ResourcesStage {
    /// Applies `item` to the store; false if it changes nothing and goes no further.
    /// A snapshot command becomes its reply.
    #[inline]
    fn apply(&mut self, item: &mut Item) -> bool {
        match item.header.what {
            What::Record => self.store.apply(item),
            What::Command => {
                if let Command::Snapshot { request } = item.command {
                    self.snapshot(request, item);
                }
                true
            }
            _ => true,
        }
    }

    /// Takes the snapshot `request` asks for and turns `item` into its reply (rare: kept
    /// out of the per-item path).
    #[cold]
    #[inline(never)]
    fn snapshot(&mut self, request: u64, item: &mut Item) {
        let count = {
            let mut snap = self
                .snapshots
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            self.store.snapshot_into(request, &mut snap);
            snap.records.len()
        };
        item.header.what = What::Reply;
        item.command = Command::Reply {
            request,
            code: ReplyCode::Ok as u16,
            detail: count as f64,
        };
    }
}

impl Stage for ResourcesStage {
    type In = Item;
    type Out = Item;
    const IN_PLACE: bool = true;

    #[inline]
    fn process(&mut self, mut item: Item, out: &mut Emitter<Item>) {
        if self.apply(&mut item) {
            out.emit(item);
        }
    }

    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        batch.retain_mut(|item| self.apply(item));
        true
    }
}
