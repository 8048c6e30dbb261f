//! The journal: an append-only log of input [`Record`](crate::sources::record::Record)s
//! in memory-mapped segment files, for event sourcing, exact replay and crash safety.
//!
//! - [`Journal`] (`writer.rs`): open and recover, append, commit per the [`Durability`]
//!   policy, rotate segments, apply [`Retention`].
//! - [`JournalReader`] (`reader.rs`): iterate entries from a sequence or a time, verify.
//! - replay (`replay.rs`): paced replay to a callback or into a pipeline
//!   [`Input`](crate::engine::Input).
//! - [`JournalStage`] (`stage.rs`): a pipeline stage that journals every record first.
//! - [`JournalEvent`] (`event.rs`): the `journal` topic and its JSON form.
//! - `format.rs` (byte layout), `segment.rs` (files), `recovery.rs` (tail repair),
//!   `config.rs`, `error.rs`.
//!
//! Format, durability promises, recovery rules and the inspection tool
//! (`ebbflow-journal`) are described in `docs/journal.md`.
//!
//! ```
//! use ebbflow::journal::{Durability, Journal, JournalConfig, ReplayFrom};
//! use ebbflow::sources::record::{Kind, Op, Record};
//!
//! let dir = std::env::temp_dir().join(format!("ebbflow-journal-doc-{}", std::process::id()));
//! let config = JournalConfig { durability: Durability::EveryBatch, ..JournalConfig::default() };
//! let mut journal = Journal::open(&dir, config).unwrap();
//! let mut rec = Record::new(Kind::Pod, Op::Added);
//! rec.key = 7;
//! let seq = journal.append(&rec).unwrap();
//! assert_eq!(journal.acked(), 0); // written, not yet accepted
//! journal.commit().unwrap(); // msync: now durable and acknowledged
//! assert_eq!(journal.acked(), seq);
//! let reader = journal.reader().unwrap();
//! let back: Vec<_> = reader.entries(ReplayFrom::Seq(seq)).unwrap().map(Result::unwrap).collect();
//! assert_eq!(back, vec![(seq, rec)]);
//! drop(journal);
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod config;
mod error;
mod event;
pub mod format;
mod reader;
mod recovery;
mod replay;
mod segment;
mod stage;
mod writer;

pub use config::{Durability, JournalConfig, Retention, TailRepair};
pub use error::{EntryProblem, HeaderProblem, JournalError};
pub use event::{encode_json, JournalEvent, TOPIC};
pub use reader::{Entries, JournalReader, ReplayFrom, VerifyReport};
pub use recovery::{DroppedTail, RecoveryReport};
pub use replay::ReplayStats;
pub use segment::{list_segments, read_id, SegmentInfo, ID_FILE};
pub use stage::{JournalStage, JournalStageCounters, JournalStageHandle};
pub use writer::{AckHandle, Journal};
