//! The bitactor engine: rules compiled to bitmasks, evaluated branch-light over batches of
//! [`Item`](crate::flow::Item)s, with per-object alert state in a fixed actor table.
//!
//! * [`rules`]: the rules file format (documented in `docs/rules.md`) and its parser,
//!   [`RuleSet::parse`], with line-numbered [`RulesError`]s.
//! * [`BitActor::compile`] turns a [`RuleSet`] into predicates over columns of values
//!   (strings become symbols of the source thread's interner) plus an actor table.
//! * [`BitActor::evaluate`] runs a batch, 64 items at a time (a *chunk*), one kind at a
//!   time: the kind's `What::Record` items write the values its rules read into one column
//!   per value, packed from row 0; each predicate then tests the packed rows of its column
//!   with vector compares into a 64-bit mask (`column`: AVX-512, AVX, SSE2 or scalar,
//!   whichever the CPU has), with no branch per item; a rule's rows are the AND of its
//!   predicates' masks (the rest of a rule is skipped once no row is left), mapped back to
//!   the items. Each item's rule mask is compared with the object's active alerts in the
//!   actor table, and the rising edges (raised alerts) and falling edges (cleared alerts,
//!   [`CLEARED_BIT`](crate::flow::CLEARED_BIT) set) are written into `item.hits`. A
//!   CrashLoopBackOff pod therefore alerts once, and once more (cleared) when it recovers
//!   or is deleted.
//! * [`BitActor::apply`] applies `SetThreshold`, `EnableRule` and `AckAlert` commands;
//!   a refused command changes nothing. [`BitActor::process`] does both for a batch, in
//!   stream order.
//! * [`RuleCatalog`] describes rule ids to other threads (name, severity, hint, live
//!   threshold, counters, the observed value).
//!
//! # Allocation
//!
//! Parsing and compiling allocate; [`BitActor::evaluate`], [`BitActor::process`],
//! [`BitActor::apply`] and every [`RuleCatalog`] read never do (proven by
//! `tests/flow_bitactor_alloc.rs`).
//!
//! # Actor table
//!
//! 2^17 slots by default ([`ActorConfig::capacity_log2`]); an entry exists only while its
//! object has an active alert, and at most 7/8 of the slots are used. An object that finds
//! the table full is evaluated without state: its matches are emitted on every matching
//! item (level-triggered) and each such item counts in
//! [`ActorStats::table_overflows`] / [`RuleCatalog::table_overflows`]. Missing an alert is
//! worse than repeating one.

pub mod catalog;
pub(crate) mod column;
pub mod engine;
mod program;
pub mod rules;
pub mod table;

pub use catalog::{RuleCatalog, RuleCounters};
pub use engine::{ActorConfig, ActorStats, BitActor, CommandError, CompileError, Vectors};
pub use rules::{RuleSet, RulesError, MAX_PREDICATES, MAX_RULES};
