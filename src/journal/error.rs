//! Errors: one enum for opening, appending, verifying and replaying, each variant naming
//! the segment and position it is about.

use std::path::PathBuf;

pub use super::format::HeaderProblem;

/// What is wrong with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// The length field is not the one entry length this format uses.
    #[error("bad length field {len}")]
    BadLength {
        /// The length found.
        len: u32,
    },
    /// The stored CRC32C does not match the entry's bytes (a flipped bit or a torn write).
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the entry.
        stored: u32,
        /// CRC of the bytes found.
        computed: u32,
    },
    /// The CRC is valid but the sequence is not the one this slot must hold (an entry
    /// left over from elsewhere).
    #[error("sequence {found} where {expected} was due")]
    SeqMismatch {
        /// The sequence this slot must hold.
        expected: u64,
        /// The sequence found.
        found: u64,
    },
    /// The CRC is valid but the payload is not a valid record (unknown kind or op).
    #[error("payload is not a valid record")]
    InvalidRecord,
    /// A sealed segment ends before it is full: its last entries are missing.
    #[error("sealed segment ends early")]
    UnexpectedEnd,
}

/// Why the journal could not be opened, appended to, verified or replayed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"create segment"`, `"flush"`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no journal and creating one was not asked for.
    #[error("{0}: no journal here")]
    NotFound(PathBuf),
    /// Another writer holds the journal's lock.
    #[error("{0}: journal is locked by another writer")]
    Locked(PathBuf),
    /// The identity file (`journal.id`) is damaged.
    #[error("{0}: identity file is damaged")]
    BadIdFile(PathBuf),
    /// A segment's header is damaged or not a segment header.
    #[error("{path}: bad segment header: {problem}")]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        problem: HeaderProblem,
    },
    /// A segment's header names another journal.
    #[error("{path}: segment of journal {found:#018x}, this journal is {expected:#018x}")]
    ForeignSegment {
        /// The segment file.
        path: PathBuf,
        /// This journal's id.
        expected: u64,
        /// The id in the segment.
        found: u64,
    },
    /// The header's index does not match the file name.
    #[error("{path}: header says segment {header_index}, the name says {name_index}")]
    MisnamedSegment {
        /// The segment file.
        path: PathBuf,
        /// Index in the name.
        name_index: u64,
        /// Index in the header.
        header_index: u64,
    },
    /// A segment is missing: the indices jump, or the last segment is sealed (a successor
    /// was created and is gone).
    #[error("segment {expected_index} is missing (next found: {found_index:?})")]
    MissingSegment {
        /// The index that should exist.
        expected_index: u64,
        /// The next index present, `None` if the missing one would be the last.
        found_index: Option<u64>,
    },
    /// A segment file is shorter than its header says.
    #[error("{path}: truncated segment: {actual_len} bytes, header says {expected_len}")]
    TruncatedSegment {
        /// The segment file.
        path: PathBuf,
        /// Length in the header.
        expected_len: u64,
        /// Length on disk.
        actual_len: u64,
    },
    /// A segment's first sequence does not continue its predecessor.
    #[error("segment {index}: first sequence {found}, expected {expected}")]
    SeqDiscontinuity {
        /// The segment's index.
        index: u64,
        /// First sequence expected from the previous segment.
        expected: u64,
        /// First sequence in the header.
        found: u64,
    },
    /// An entry in the middle of the journal is damaged (entries after it are intact, so
    /// this is not a torn tail; opening with [`TailRepair::TruncateAny`] drops it and
    /// everything after it).
    ///
    /// [`TailRepair::TruncateAny`]: super::TailRepair::TruncateAny
    #[error("segment {segment_index} offset {offset} (seq {seq}): {problem}")]
    Corrupt {
        /// The segment's index.
        segment_index: u64,
        /// Byte offset of the entry in the segment file.
        offset: u64,
        /// The sequence the entry should hold.
        seq: u64,
        /// What is wrong.
        problem: EntryProblem,
    },
    /// A replay asked for a sequence older than the oldest retained one.
    #[error("sequence {requested} is no longer retained (oldest: {first})")]
    NotRetained {
        /// The sequence asked for.
        requested: u64,
        /// The oldest sequence present.
        first: u64,
    },
    /// The configuration is unusable.
    #[error("bad configuration: {0}")]
    Config(&'static str),
    /// A replay into a pipeline stopped because the pipeline no longer accepts events.
    #[error("pipeline closed during replay at seq {seq}")]
    PipelineClosed {
        /// The sequence that was not accepted.
        seq: u64,
    },
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
