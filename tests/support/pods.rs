//! Pod items for the reactor tests: key, sequence, a name derived from the key, and one
//! field that changes with the sequence.
#![allow(dead_code)]

use ebbflow::flow::Item;
use ebbflow::sources::intern::Symbol;
use ebbflow::sources::record::{FieldId, FieldValue, Kind, Op, Record};

/// A modified Pod `key` at sequence `seq` (restarts = `seq`).
pub fn pod(key: u64, seq: u64) -> Item {
    let mut r = Record::new(Kind::Pod, Op::Modified);
    r.key = key;
    r.seq = seq;
    r.name = Symbol::from_id(1000 + key as u32);
    r.namespace = Symbol::from_id(7);
    r.push(FieldId::RestartsTotal, FieldValue::I64(seq as i64));
    Item::from_record(r)
}
