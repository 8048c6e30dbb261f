//! Recovery at open: scan the last segment's entries, truncate a torn or damaged tail,
//! and report exactly what was dropped.
//!
//! Rules (see `docs/journal.md`):
//! 1. Entries of the last segment are checked in slot order: frame length, CRC32C,
//!    sequence (must be the slot's), record validity. The first slot that fails, or the
//!    first empty slot, ends the intact part.
//! 2. Everything after the intact part must be empty (all-zero frame words). If it is,
//!    the journal simply ends there; if slots with data follow a failing slot, they are
//!    the damaged tail.
//! 3. The damaged tail is truncated (its slots zeroed and flushed) when nothing in it has
//!    a valid CRC (a torn write), or always under [`TailRepair::TruncateAny`]. Otherwise
//!    opening fails with [`JournalError::Corrupt`]: valid entries would be lost.
//! 4. Numbering continues at the first dropped slot's sequence.

use memmap2::MmapMut;

use super::config::TailRepair;
use super::error::{EntryProblem, JournalError};
use super::format::{check_entry, crc_valid, slot_offset, ENTRY_LEN};
use super::segment::SegmentInfo;

/// What was truncated from the tail at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DroppedTail {
    /// Index of the segment (always the last).
    pub segment_index: u64,
    /// Byte offset in the segment file where the truncation starts.
    pub offset: u64,
    /// The sequence the first dropped slot should have held; numbering continues here.
    pub first_seq: u64,
    /// Why the first dropped slot was refused ([`EntryProblem::UnexpectedEnd`] for an
    /// empty slot followed by data).
    pub problem: EntryProblem,
    /// Slots with data (a non-zero frame word) that were zeroed.
    pub entries: u64,
    /// Bytes zeroed (from `offset` to the end of the last slot with data).
    pub bytes: u64,
    /// Of the dropped slots, how many had a valid CRC (non-zero only under
    /// [`TailRepair::TruncateAny`]: entries lost beyond a damaged one).
    pub valid_crc_entries: u64,
}

/// What opening found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// The journal did not exist and was created.
    pub created: bool,
    /// Segments present after opening.
    pub segments: u64,
    /// Oldest retained sequence (0 if the journal is empty).
    pub first_seq: u64,
    /// Last intact sequence (0 if the journal is empty); appending continues after it.
    pub last_seq: u64,
    /// Entries found intact in the last segment.
    pub tail_entries: u64,
    /// Leftover temporary files of an interrupted rotation that were removed.
    pub removed_temporaries: u32,
    /// The last segment file was shorter than its header says and was re-extended (only
    /// under [`TailRepair::TruncateAny`]); its length before.
    pub extended_from: Option<u64>,
    /// What was truncated from the tail, if anything.
    pub dropped: Option<DroppedTail>,
}

/// Scans the last segment's mapping; returns the intact entry count and what was dropped.
/// Truncation zeroes the dropped slots in `map` and flushes them.
pub(crate) fn recover_tail(
    map: &mut MmapMut,
    info: &SegmentInfo,
    repair: TailRepair,
) -> Result<(u64, Option<DroppedTail>), JournalError> {
    let cap = info.capacity();
    let first = info.first_seq();
    let mut used = 0u64;
    let mut problem = None;
    while used < cap {
        let off = slot_offset(used);
        match check_entry(&map[off..off + ENTRY_LEN], first + used) {
            Ok(Some(_)) => used += 1,
            Ok(None) => break,
            Err(p) => {
                problem = Some(p);
                break;
            }
        }
    }
    // Slots after the intact part: the last one with data, and how many have a valid CRC.
    let mut last_data = None;
    let mut with_data = 0u64;
    let mut valid = 0u64;
    for slot in used..cap {
        let e = &map[slot_offset(slot)..slot_offset(slot) + ENTRY_LEN];
        if e[0..8] != [0u8; 8] {
            last_data = Some(slot);
            with_data += 1;
            valid += u64::from(crc_valid(e));
        }
    }
    let Some(last_data) = last_data else {
        return Ok((used, None));
    };
    let problem = problem.unwrap_or(EntryProblem::UnexpectedEnd);
    let offset = slot_offset(used);
    if valid > 0 && repair == TailRepair::TornOnly {
        return Err(JournalError::Corrupt {
            segment_index: info.index(),
            offset: offset as u64,
            seq: first + used,
            problem,
        });
    }
    let end = slot_offset(last_data + 1);
    map[offset..end].fill(0);
    map.flush_range(offset, end - offset)
        .map_err(|e| JournalError::io("flush truncation", std::path::Path::new(""), e))?;
    Ok((
        used,
        Some(DroppedTail {
            segment_index: info.index(),
            offset: offset as u64,
            first_seq: first + used,
            problem,
            entries: with_data,
            bytes: (end - offset) as u64,
            valid_crc_entries: valid,
        }),
    ))
}
