//! The retry table: a preallocated slab of parked items, a per-key FIFO through it, and
//! a min-heap of due times for the items at the head of their key.
//!
//! * Capacity `n` (items parked at once, heads and followers together) is fixed at
//!   construction: `n` slots, a free list of `n`, a key index of the next power of two
//!   ≥ 2n (linear probing, backward-shift deletion: no tombstones to age) and a heap of
//!   `n` (each slot is in the heap at most once). Nothing here allocates afterwards.
//! * Per key, parked items form a singly linked list in arrival order; only the head
//!   is in the heap. When the head finishes, the next item becomes head.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::flow::reactor::run::{empty_item, Progress};
use crate::flow::Item;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Entry {
    item: Item,
    progress: Progress,
    next: u32,
}

// The memory figure in docs/reactor.md (320 bytes per slot) relies on this.
const _: () = assert!(core::mem::size_of::<Entry>() == 320);

/// See the [module docs](self).
pub(crate) struct ParkTable {
    entries: Vec<Entry>,
    free: Vec<u32>,
    index: KeyIndex,
    due: BinaryHeap<Reverse<(u64, u64, u32)>>,
    order: u64,
}

impl ParkTable {
    /// A table for `capacity` items (≥ 1). Allocates everything it will use.
    pub(crate) fn new(capacity: usize) -> ParkTable {
        let empty = Entry {
            item: empty_item(),
            progress: Progress::new(0),
            next: NONE,
        };
        ParkTable {
            entries: vec![empty; capacity],
            free: (0..capacity as u32).rev().collect(),
            index: KeyIndex::new(capacity),
            due: BinaryHeap::with_capacity(capacity),
            order: 0,
        }
    }

    /// Items parked.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Whether nothing is parked.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.free.len() == self.entries.len()
    }

    /// Whether no slot is free.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Slots in all.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Whether items of `key` are parked.
    #[inline]
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.index.find(key).is_some()
    }

    /// The earliest due time of a head.
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.due.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Parks a copy of `item` and its `progress` as the head of its key (no item of
    /// the key may be parked), due at `due`. Returns `false` (parking nothing) when the
    /// table is full.
    pub(crate) fn park_head(&mut self, item: &Item, progress: &Progress, due: u64) -> bool {
        let Some(slot) = self.free.pop() else {
            return false;
        };
        let key = item.record.key;
        self.entries[slot as usize] = Entry {
            item: *item,
            progress: *progress,
            next: NONE,
        };
        self.index.insert(key, slot, slot);
        self.schedule(slot, due);
        true
    }

    /// Parks a copy of `item` (not started: `progress`) behind the items of its key
    /// (some must be parked). Returns `false` (parking nothing) when the table is full
    /// or the key has nothing parked.
    pub(crate) fn park_follower(&mut self, item: &Item, progress: &Progress) -> bool {
        let key = item.record.key;
        let Some(pos) = self.index.find(key) else {
            return false;
        };
        let Some(slot) = self.free.pop() else {
            return false;
        };
        self.entries[slot as usize] = Entry {
            item: *item,
            progress: *progress,
            next: NONE,
        };
        let tail = self.index.tails[pos];
        self.entries[tail as usize].next = slot;
        self.index.tails[pos] = slot;
        true
    }

    /// (Re)schedules head `slot` at `due`.
    #[inline]
    pub(crate) fn schedule(&mut self, slot: u32, due: u64) {
        self.order += 1;
        self.due.push(Reverse((due, self.order, slot)));
    }

    /// Takes the earliest head due at or before `now` off the heap.
    #[inline]
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<u32> {
        match self.due.peek() {
            Some(Reverse((due, _, _))) if *due <= now => self.due.pop().map(|Reverse(e)| e.2),
            _ => None,
        }
    }

    /// The parked item in `slot` and its progress.
    #[inline]
    pub(crate) fn entry_mut(&mut self, slot: u32) -> (&mut Item, &mut Progress) {
        let e = &mut self.entries[slot as usize];
        (&mut e.item, &mut e.progress)
    }

    /// Frees head `slot` (its chain finished). Returns the next item of the key, which
    /// is now its head (not scheduled), or `None` when the key has nothing parked left.
    pub(crate) fn finish_head(&mut self, slot: u32) -> Option<u32> {
        let (key, next) = {
            let e = &self.entries[slot as usize];
            (e.item.record.key, e.next)
        };
        self.free.push(slot);
        let pos = self.index.find(key)?;
        if next == NONE {
            self.index.remove(pos);
            None
        } else {
            self.index.heads[pos] = next;
            Some(next)
        }
    }
}

/// Open-addressing map from key to (head slot, tail slot).
struct KeyIndex {
    keys: Vec<u64>,
    heads: Vec<u32>,
    tails: Vec<u32>,
    mask: usize,
    shift: u32,
}

impl KeyIndex {
    fn new(capacity: usize) -> KeyIndex {
        let size = (capacity * 2).next_power_of_two().max(2);
        KeyIndex {
            keys: vec![0; size],
            heads: vec![NONE; size],
            tails: vec![NONE; size],
            mask: size - 1,
            shift: 64 - size.trailing_zeros(),
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: keys are hashes already, but tests and sources use small
        // or zero keys too.
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        let mut i = self.home(key);
        loop {
            if self.heads[i] == NONE {
                return None;
            }
            if self.keys[i] == key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    fn insert(&mut self, key: u64, head: u32, tail: u32) {
        let mut i = self.home(key);
        while self.heads[i] != NONE {
            i = (i + 1) & self.mask;
        }
        self.keys[i] = key;
        self.heads[i] = head;
        self.tails[i] = tail;
    }

    fn remove(&mut self, pos: usize) {
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & self.mask;
            if self.heads[j] == NONE {
                break;
            }
            let home = self.home(self.keys[j]);
            // The entry at `j` may move into the hole unless its home lies cyclically
            // in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.keys[hole] = self.keys[j];
                self.heads[hole] = self.heads[j];
                self.tails[hole] = self.tails[j];
                hole = j;
            }
        }
        self.heads[hole] = NONE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_index_matches_a_hash_map_under_random_inserts_and_removals() {
        use crate::sources::gen::Rng;
        use std::collections::HashMap;
        let mut ix = KeyIndex::new(64); // 128 buckets, up to 64 keys: long probe runs
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut rng = Rng::new(9);
        for step in 0..20_000u32 {
            // Few distinct keys so inserts and removals hit the same runs.
            let key = rng.below(200);
            match ix.find(key) {
                Some(pos) => {
                    assert_eq!(Some(&ix.heads[pos]), model.get(&key), "step {step}");
                    ix.remove(pos);
                    model.remove(&key);
                }
                None => {
                    assert!(!model.contains_key(&key), "key {key} lost at step {step}");
                    if model.len() < 64 {
                        ix.insert(key, step, step);
                        model.insert(key, step);
                    }
                }
            }
        }
        for (k, v) in &model {
            let pos = ix.find(*k).expect("present");
            assert_eq!(ix.heads[pos], *v);
        }
    }
}
