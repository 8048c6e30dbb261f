//! Reading a journal: listing, iterating entries from a sequence or a time, verifying.
//!
//! A reader never writes. It may read a journal a writer is appending to (in this process
//! through [`Journal::reader`](super::Journal::reader), or from another process): every
//! entry it yields passed its CRC, and an entry's frame word is stored last, so a reader
//! sees whole entries or none. A reader must not run while a writer *opens* the journal
//! in another process: repairing a truncated file under a live mapping is outside the
//! contract.
//!
//! Allocation: `open` allocates (directory listing, segment list); iterating allocates
//! nothing except an error's path when one occurs (segments are mapped one at a time;
//! paths are built in a reused buffer).

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::{EntryProblem, JournalError};
use super::format::{check_entry, slot_offset, ENTRY_LEN};
use super::segment::{list_segments, read_id, PathSlot, SegmentInfo};
use crate::sources::record::Record;

/// Where a replay or an iteration starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The oldest retained entry.
    Start,
    /// The entry with this journal sequence (an older one than retained is
    /// [`JournalError::NotRetained`]; one past the end yields nothing).
    Seq(u64),
    /// The first entry whose [`Record::ingest_ns`] is at or after this time (ns since the
    /// Unix epoch), and every entry after it. `ingest_ns` is used, not `source_ns`: it is
    /// set by this process when the record is decoded, so it follows append order and is
    /// never 0; `source_ns` is whatever the source claims and may be missing or out of
    /// order. Found by a linear scan from the oldest entry.
    IngestNs(i64),
}

/// A read-only view of a journal directory.
#[derive(Debug)]
pub struct JournalReader {
    dir: PathBuf,
    id: u64,
    segments: Vec<SegmentInfo>,
    /// One past the last sequence to read (`None`: until the data ends).
    limit: Option<u64>,
}

impl JournalReader {
    /// Opens the journal in `dir` for reading: reads its id and checks the chain of
    /// segment headers (the same checks as [`Journal::open`](super::Journal::open), none
    /// of its repairs).
    pub fn open(dir: impl AsRef<Path>) -> Result<JournalReader, JournalError> {
        Self::open_bounded(dir.as_ref(), None)
    }

    pub(crate) fn open_bounded(
        dir: &Path,
        limit: Option<u64>,
    ) -> Result<JournalReader, JournalError> {
        let id = read_id(dir)?.ok_or_else(|| JournalError::NotFound(dir.to_path_buf()))?;
        let segments = list_segments(dir, id)?;
        Ok(JournalReader {
            dir: dir.to_path_buf(),
            id,
            segments,
            limit,
        })
    }

    /// The journal's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// The oldest retained sequence (the first slot of the oldest segment).
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(1, |s| s.first_seq())
    }

    /// Iterates entries `(seq, record)` in order from `from`. Ends at the end of the data
    /// (the first empty slot of the last segment) or at the reader's bound; a damaged
    /// entry is yielded as [`JournalError::Corrupt`] and ends the iteration.
    pub fn entries(&self, from: ReplayFrom) -> Result<Entries<'_>, JournalError> {
        let (start, after_ns) = match from {
            ReplayFrom::Start => (self.first_seq(), None),
            ReplayFrom::Seq(s) => {
                if s < self.first_seq() {
                    return Err(JournalError::NotRetained {
                        requested: s,
                        first: self.first_seq(),
                    });
                }
                (s, None)
            }
            ReplayFrom::IngestNs(t) => (self.first_seq(), Some(t)),
        };
        let pos = self.segments.partition_point(|s| s.end_seq() <= start);
        Ok(Entries {
            reader: self,
            pos,
            map: None,
            next_seq: start,
            after_ns,
            done: false,
            paths: PathSlot::new(&self.dir),
            populated_to: 0,
        })
    }

    /// Reads every segment completely and reports what is intact and what is not: per
    /// segment, every slot of a sealed (non-last) segment must hold its entry; the last
    /// segment must hold intact entries up to its first empty slot and nothing after.
    pub fn verify(&self) -> VerifyReport {
        let mut report = VerifyReport {
            segments: self.segments.len() as u64,
            entries: 0,
            first_seq: 0,
            last_seq: 0,
            problems: Vec::new(),
        };
        let mut paths = PathSlot::new(&self.dir);
        for (i, info) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len();
            let map = match map_segment(&mut paths, info) {
                Ok(m) => m,
                Err(e) => {
                    report.problems.push(e);
                    continue;
                }
            };
            if (map.len() as u64) < info.header.segment_len as u64 {
                report.problems.push(JournalError::TruncatedSegment {
                    path: self
                        .dir
                        .join(super::format::segment_name(info.index(), &mut [0u8; 24])),
                    expected_len: info.header.segment_len as u64,
                    actual_len: map.len() as u64,
                });
            }
            let mut slot = 0u64;
            let mut ended = false;
            while slot < info.capacity() {
                let off = slot_offset(slot);
                if off + ENTRY_LEN > map.len() {
                    break;
                }
                let seq = info.first_seq() + slot;
                let e = &map[off..off + ENTRY_LEN];
                if ended {
                    if e[0..8] != [0u8; 8] {
                        report.problems.push(JournalError::Corrupt {
                            segment_index: info.index(),
                            offset: off as u64,
                            seq,
                            problem: EntryProblem::UnexpectedEnd,
                        });
                        break;
                    }
                    slot += 1;
                    continue;
                }
                match check_entry(e, seq) {
                    Ok(Some(_)) => {
                        if report.entries == 0 {
                            report.first_seq = seq;
                        }
                        report.entries += 1;
                        report.last_seq = seq;
                    }
                    Ok(None) if last => ended = true,
                    Ok(None) => {
                        report.problems.push(JournalError::Corrupt {
                            segment_index: info.index(),
                            offset: off as u64,
                            seq,
                            problem: EntryProblem::UnexpectedEnd,
                        });
                        break;
                    }
                    Err(problem) => {
                        report.problems.push(JournalError::Corrupt {
                            segment_index: info.index(),
                            offset: off as u64,
                            seq,
                            problem,
                        });
                        break;
                    }
                }
                slot += 1;
            }
        }
        report
    }
}

/// What [`JournalReader::verify`] found.
#[derive(Debug)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Intact entries.
    pub entries: u64,
    /// First intact sequence (0 if none).
    pub first_seq: u64,
    /// Last intact sequence (0 if none).
    pub last_seq: u64,
    /// Every problem found, at most one per segment (checking a segment stops at its
    /// first problem).
    pub problems: Vec<JournalError>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn map_segment(paths: &mut PathSlot, info: &SegmentInfo) -> Result<Mmap, JournalError> {
    let path = paths.segment(info.index(), false);
    let res = File::open(path)
        .and_then(|f| {
            // SAFETY: the map is only read. A writer appends into slots the reader has
            // not read yet (storing each frame word last) and never changes a written
            // entry; truncating a file under a live reader is outside the contract
            // (module docs).
            unsafe { Mmap::map(&f) }
        })
        .map_err(|e| JournalError::io("map segment", path, e));
    paths.reset();
    res
}

/// Entries of a journal in order; see [`JournalReader::entries`].
pub struct Entries<'a> {
    reader: &'a JournalReader,
    pos: usize,
    map: Option<Mmap>,
    next_seq: u64,
    after_ns: Option<i64>,
    done: bool,
    paths: PathSlot,
    /// Page tables of the current map are populated up to here.
    populated_to: usize,
}

/// Bytes of page tables populated ahead of the reader at a time.
const PREFAULT_CHUNK: usize = 2 << 20;

/// Populates the page tables of `map[from..from + PREFAULT_CHUNK]` in one call
/// (`MADV_POPULATE_READ`) instead of one page fault per 4 KiB page; returns the new
/// populated end (the map's end if the kernel refuses: then pages fault in one by one).
#[cold]
fn prefault(map: &Mmap, from: usize) -> usize {
    let n = PREFAULT_CHUNK.min(map.len().saturating_sub(from));
    if n == 0
        || map
            .advise_range(memmap2::Advice::PopulateRead, from, n)
            .is_err()
    {
        map.len()
    } else {
        from + n
    }
}

impl Entries<'_> {
    /// The sequence the next entry will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn fail(&mut self, e: JournalError) -> Option<Result<(u64, Record), JournalError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(u64, Record), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done || self.reader.limit.is_some_and(|l| self.next_seq >= l) {
                return None;
            }
            let segs = &self.reader.segments;
            let info = segs.get(self.pos).copied()?;
            if self.next_seq >= info.end_seq() {
                self.pos += 1;
                self.map = None;
                continue;
            }
            if self.map.is_none() {
                match map_segment(&mut self.paths, &info) {
                    Ok(m) => {
                        self.map = Some(m);
                        self.populated_to = 0;
                    }
                    Err(JournalError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        // Deleted by retention since the reader was opened.
                        return self.fail(JournalError::NotRetained {
                            requested: self.next_seq,
                            first: info.end_seq(),
                        });
                    }
                    Err(e) => return self.fail(e),
                }
            }
            let map = self.map.as_ref().expect("mapped above");
            let seq = self.next_seq;
            let off = slot_offset(seq - info.first_seq());
            let last = self.pos + 1 == segs.len();
            if off + ENTRY_LEN > map.len() {
                // A truncated last segment: the data ends here (verify reports it).
                return None;
            }
            if off + ENTRY_LEN > self.populated_to {
                self.populated_to = prefault(map, off & !4095);
            }
            match check_entry(&map[off..off + ENTRY_LEN], seq) {
                Ok(Some(rec)) => {
                    self.next_seq += 1;
                    if let Some(t) = self.after_ns {
                        if rec.ingest_ns < t {
                            continue;
                        }
                        self.after_ns = None;
                    }
                    return Some(Ok((seq, rec)));
                }
                Ok(None) if last => return None,
                Ok(None) => {
                    return self.fail(JournalError::Corrupt {
                        segment_index: info.index(),
                        offset: off as u64,
                        seq,
                        problem: EntryProblem::UnexpectedEnd,
                    })
                }
                Err(problem) => {
                    return self.fail(JournalError::Corrupt {
                        segment_index: info.index(),
                        offset: off as u64,
                        seq,
                        problem,
                    })
                }
            }
        }
    }
}
