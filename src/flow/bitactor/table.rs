//! The actor table: per-object alert state, preallocated, open addressing by record key.
//!
//! An entry exists only while its object has at least one active alert (an empty entry is
//! one whose `active` mask is zero), so the capacity bounds the number of objects *in
//! alert*, not the number of objects seen. Probing is linear; deletion shifts later
//! entries back (no tombstones), so a lookup stops at the first empty slot.
//!
//! An occupancy bitmap (one bit per slot, 16 KiB for 2^17 slots) answers "is this key
//! absent?" for the common object without alerts by reading one word that stays in cache,
//! without touching the 32-byte slot.
//!
//! Allocation: [`ActorTable::new`] allocates the slots and the bitmap; nothing else does.

/// Default log2 of the slot count: 2^17 = 131,072 slots (4 MiB of slots).
pub const DEFAULT_CAPACITY_LOG2: u8 = 17;

/// Largest accepted log2 of the slot count.
pub const MAX_CAPACITY_LOG2: u8 = 24;

/// Smallest accepted log2 of the slot count.
pub const MIN_CAPACITY_LOG2: u8 = 4;

/// One object's alert state.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// The object's key ([`Record::key`](crate::sources::record::Record::key)).
    pub key: u64,
    /// Rules currently active (alerting) for the object; 0 = empty slot.
    pub active: u64,
    /// Active rules whose alert was acknowledged.
    pub acked: u64,
    /// Sequence number of the record that raised the oldest active alert.
    pub since_seq: u64,
}

/// The table. See the [module docs](self).
#[derive(Debug)]
pub struct ActorTable {
    slots: Box<[Slot]>,
    occupied: Box<[u64]>,
    shift: u32,
    mask: usize,
    len: usize,
    max_len: usize,
}

impl ActorTable {
    /// A table of `2^capacity_log2` slots (clamped to
    /// [`MIN_CAPACITY_LOG2`]..=[`MAX_CAPACITY_LOG2`]) holding at most 7/8 of them.
    pub fn new(capacity_log2: u8) -> ActorTable {
        let bits = capacity_log2.clamp(MIN_CAPACITY_LOG2, MAX_CAPACITY_LOG2) as u32;
        let n = 1usize << bits;
        ActorTable {
            slots: vec![Slot::default(); n].into_boxed_slice(),
            occupied: vec![0u64; n.div_ceil(64)].into_boxed_slice(),
            shift: 64 - bits,
            mask: n - 1,
            len: 0,
            max_len: n - n / 8,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Most objects the table holds (7/8 of the slots); more count as overflows.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Objects with an active alert.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no object has an active alert.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline(always)]
    fn is_used(&self, i: usize) -> bool {
        self.occupied[i >> 6] & (1u64 << (i & 63)) != 0
    }

    #[inline(always)]
    fn set_used(&mut self, i: usize, used: bool) {
        let bit = 1u64 << (i & 63);
        if used {
            self.occupied[i >> 6] |= bit;
        } else {
            self.occupied[i >> 6] &= !bit;
        }
    }

    /// The slot index holding `key`, if any.
    #[inline]
    pub fn find(&self, key: u64) -> Option<usize> {
        let mut i = self.home(key);
        while self.is_used(i) {
            if self.slots[i].key == key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slot at `index` (from [`find`](Self::find) or [`insert`](Self::insert)).
    #[inline]
    pub fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    /// The slot at `index`, mutable. Setting `active` to 0 requires a
    /// [`remove`](Self::remove) right after.
    #[inline]
    pub fn slot_mut(&mut self, index: usize) -> &mut Slot {
        &mut self.slots[index]
    }

    /// Inserts `key` (which must be absent) with `active` (non-zero); `None` when the
    /// table is full.
    #[inline]
    pub fn insert(&mut self, key: u64, active: u64, seq: u64) -> Option<usize> {
        if self.len >= self.max_len {
            return None;
        }
        let mut i = self.home(key);
        while self.is_used(i) {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            key,
            active,
            acked: 0,
            since_seq: seq,
        };
        self.set_used(i, true);
        self.len += 1;
        Some(i)
    }

    /// Frees slot `index`, shifting later entries of its probe run back.
    pub fn remove(&mut self, index: usize) {
        let mut hole = index;
        let mut i = index;
        loop {
            i = (i + 1) & self.mask;
            if !self.is_used(i) {
                break;
            }
            let home = self.home(self.slots[i].key);
            // Move entry `i` into the hole when its home is not in (hole, i] cyclically.
            let dist_home = i.wrapping_sub(home) & self.mask;
            let dist_hole = i.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[i];
                hole = i;
            }
        }
        self.slots[hole] = Slot::default();
        self.set_used(hole, false);
        self.len -= 1;
    }

    /// Clears bits `mask` from every entry's `active` and `acked`, removing entries left
    /// without alerts. Returns the number of alerts dropped. O(capacity).
    pub fn clear_rules(&mut self, mask: u64) -> u64 {
        let mut dropped = 0u64;
        let mut i = 0;
        while i < self.slots.len() {
            if self.is_used(i) && self.slots[i].active & mask != 0 {
                dropped += u64::from((self.slots[i].active & mask).count_ones());
                self.slots[i].active &= !mask;
                self.slots[i].acked &= !mask;
                if self.slots[i].active == 0 {
                    self.remove(i);
                    // A shifted entry may now sit at `i`: look at it again.
                    continue;
                }
            }
            i += 1;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_keeps_probe_runs_reachable() {
        let mut t = ActorTable::new(4); // 16 slots, 14 max
        let keys: Vec<u64> = (1..=14).map(|k| k * 0x1234_5678_9abc).collect();
        for &k in &keys {
            assert!(t.insert(k, 1, 0).is_some());
        }
        assert!(t.insert(999, 1, 0).is_none(), "full at 7/8");
        for (n, &k) in keys.iter().enumerate() {
            if n % 3 == 0 {
                let i = t.find(k).unwrap();
                t.remove(i);
            }
        }
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(t.find(k).is_some(), n % 3 != 0, "key {n}");
        }
        assert_eq!(t.len(), 14 - 5);
    }

    #[test]
    fn clear_rules_drops_bits_and_empty_entries() {
        let mut t = ActorTable::new(4);
        for k in 1..=10u64 {
            t.insert(k, if k % 2 == 0 { 0b11 } else { 0b01 }, 0);
        }
        assert_eq!(t.clear_rules(0b01), 10);
        assert_eq!(t.len(), 5);
        for k in 1..=10u64 {
            assert_eq!(t.find(k).is_some(), k % 2 == 0);
        }
    }
}
