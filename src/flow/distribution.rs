//! The distribution stage: partitions changes by key across shards.
//!
//! [`Distribution`] stamps each item with its shard, `hash(key) mod N`, in
//! [`ItemHeader::shard`](crate::flow::ItemHeader::shard). [`Sharded`] then holds N
//! instances of a downstream stage and hands each item to the instance of its shard, so
//! every key always reaches the same instance (which may keep per-key state, like the
//! bitactor's actor table) and per-key order is the arrival order. Items without a key
//! (commands, ticks, replies) go to every shard: a rule change must reach every
//! instance, and so must a periodic flush.
//!
//! Shards run on the thread of the stage they wrap (in-process sharding). With `N = 1`
//! the wrapper is one direct call: it costs what the wrapped stage costs, and fusing it
//! costs no ring hop at all.

use crate::engine::{Emitter, InPlace, Stage};
use crate::flow::item::{Item, What};

/// Most shards a [`Sharded`] stage may hold (the shard id is a `u8`).
pub const MAX_SHARDS: usize = 256;

/// The shard of a key among `shards` (a multiplicative hash, so that keys that are
/// themselves hashes and keys that are small integers both spread evenly).
#[inline]
pub fn shard_of(key: u64, shards: usize) -> usize {
    let mixed = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((u128::from(mixed >> 32) * shards as u128) >> 32) as usize
}

/// Stamps each keyed item with its shard.
#[derive(Debug, Clone, Copy)]
pub struct Distribution {
    shards: usize,
}

impl Distribution {
    /// Distribution over `shards` shards (1 to [`MAX_SHARDS`]).
    ///
    /// # Panics
    /// If `shards` is 0 or above [`MAX_SHARDS`] (a configuration error).
    pub fn new(shards: usize) -> Distribution {
        assert!(
            (1..=MAX_SHARDS).contains(&shards),
            "shards must be in 1..={MAX_SHARDS}, got {shards}"
        );
        Distribution { shards }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }
}

impl Distribution {
    #[inline(always)]
    fn assign(&self, item: &mut Item) {
        if matches!(item.header.what, What::Record | What::Step) {
            item.header.shard = shard_of(item.record.key, self.shards) as u8;
        }
    }
}

impl Stage for Distribution {
    type In = Item;
    type Out = Item;
    const IN_PLACE: bool = true;

    #[inline]
    fn process(&mut self, mut item: Item, out: &mut Emitter<Item>) {
        self.assign(&mut item);
        out.emit(item);
    }

    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        batch.as_mut_slice().iter_mut().for_each(|i| self.assign(i));
        true
    }
}

/// N instances of a stage (N at most `MAX`), each receiving the items of its shard.
///
/// Items without a key (commands, ticks) reach every instance, in shard order; only
/// shard 0's outputs for them are kept (every instance applies a rule change, one reply
/// goes on). `end_of_batch` outputs of every shard are kept, which is why the wrapper's
/// fan-out is `MAX` times the wrapped stage's.
pub struct Sharded<S: Stage, const MAX: usize = 8> {
    shards: Vec<S>,
    discard: Emitter<S::Out>,
}

impl<S: Stage, const MAX: usize> Sharded<S, MAX> {
    /// Wraps `shards` (one instance per shard, in shard order).
    ///
    /// # Panics
    /// If there are no shards or more than `MAX` (at most [`MAX_SHARDS`]).
    pub fn new(shards: Vec<S>) -> Sharded<S, MAX> {
        assert!(
            (1..=MAX.min(MAX_SHARDS)).contains(&shards.len()),
            "a sharded stage needs 1..={} instances",
            MAX.min(MAX_SHARDS)
        );
        Sharded {
            shards,
            discard: Emitter::with_capacity(S::MAX_FANOUT),
        }
    }

    /// The instances.
    pub fn shards(&self) -> &[S] {
        &self.shards
    }

    /// The instances, mutably.
    pub fn shards_mut(&mut self) -> &mut [S] {
        &mut self.shards
    }
}

impl<S: Stage<In = Item, Out = Item>, const MAX: usize> Stage for Sharded<S, MAX> {
    type In = Item;
    type Out = Item;
    const MAX_FANOUT: usize = S::MAX_FANOUT * MAX;
    const IN_PLACE: bool = S::IN_PLACE;

    /// One shard works in place if its stage does; several take the copying path (items
    /// without a key reach every shard, and only shard 0's outputs are kept).
    #[inline]
    fn process_in_place(
        &mut self,
        batch: &mut InPlace<'_, Item>,
        after: &mut Emitter<Item>,
    ) -> bool {
        self.shards.len() == 1 && self.shards[0].process_in_place(batch, after)
    }

    #[inline]
    fn process(&mut self, item: Item, out: &mut Emitter<Item>) {
        if self.shards.len() == 1 {
            return self.shards[0].process(item, out);
        }
        match item.header.what {
            What::Record | What::Step => {
                let s = (item.header.shard as usize).min(self.shards.len() - 1);
                self.shards[s].process(item, out);
            }
            _ => {
                let (first, rest) = self.shards.split_at_mut(1);
                first[0].process(item, out);
                for s in rest {
                    s.process(item, &mut self.discard);
                    self.discard.clear();
                }
            }
        }
    }

    #[inline]
    fn end_of_batch(&mut self, out: &mut Emitter<Item>) {
        for s in &mut self.shards {
            s.end_of_batch(out);
        }
    }

    fn on_idle(&mut self, out: &mut Emitter<Item>) {
        for s in &mut self.shards {
            s.on_idle(out);
        }
    }
}
