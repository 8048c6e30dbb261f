//! The reverse flow: the stages between a source and the notification channels.
//!
//! Every stage consumes and produces an [`Item`] (see [`item`]), so stages fuse or split
//! across threads by configuration without changing their types.

pub mod assembly;
pub mod bitactor;
pub mod commands;
pub mod distribution;
pub mod item;
pub mod journaling;
pub mod json;
pub mod notify;
pub mod reactor;
pub mod resources;
pub mod schema;
pub mod serve;
pub mod stages;
pub mod tracing;

pub use item::{
    ChangeKind, Command, FieldMask, Item, ItemHeader, RuleHits, Severity, StepState, StepSummary,
    TraceTag, What, CLEARED_BIT, ITEM_SIZE, MAX_HITS,
};

/// Error codes carried in a [`Command::Reply`].
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyCode {
    /// The command was applied.
    Ok = 0,
    /// The command names a rule that does not exist.
    UnknownRule = 1,
    /// The argument is outside what the rule accepts (NaN, infinite, out of range).
    BadArgument = 2,
    /// The command names an alert that is not active.
    UnknownAlert = 3,
    /// The command is not understood.
    UnknownCommand = 4,
}
