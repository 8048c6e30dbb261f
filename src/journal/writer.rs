//! The writer: [`Journal`] opens (and recovers) a journal directory and appends records.
//!
//! Allocation: `open` allocates (paths, the segment list, directory listing). `append`,
//! `commit` and `sync` allocate nothing. Rotation allocates nothing either as long as
//! the segment list stays within its reserved capacity (1024 segments; beyond, the
//! `VecDeque` doubles once) — names and paths are built in reused buffers. Errors carry a
//! `PathBuf` and allocate when they happen.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memmap2::MmapMut;

use super::config::{Durability, JournalConfig, TailRepair};
use super::error::JournalError;
use super::event::{EventQueue, JournalEvent};
use super::format::{
    entry_crc, frame_word, record_bytes, slot_offset, SegmentHeader, ENTRY_HEADER_LEN, ENTRY_LEN,
};
use super::reader::JournalReader;
use super::recovery::{recover_tail, RecoveryReport};
use super::segment::{
    allocate, create_id, create_segment, list_segments, read_id, remove_temporaries, seal,
    PathSlot, SegmentInfo, ID_FILE,
};
use crate::sources::record::Record;

/// Segments the list holds before it has to grow (growing allocates).
const SEGMENT_LIST_CAPACITY: usize = 1024;

/// A cloneable view of a journal's acknowledged sequence, readable from any thread.
#[derive(Clone, Debug)]
pub struct AckHandle(Arc<AtomicU64>);

impl AckHandle {
    /// The highest sequence such that it and every sequence before it are accepted under
    /// the journal's [`Durability`]; 0 when nothing is.
    #[inline]
    pub fn acked(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The segment being written.
struct Active {
    file: File,
    map: MmapMut,
    info: SegmentInfo,
    /// Entries written into it.
    used: u64,
    /// Start of the bytes not yet flushed.
    dirty_from: usize,
    /// Page tables are populated (writable) up to here; see [`Journal::prefault`].
    populated_to: usize,
}

/// Bytes of page tables populated ahead of the writer at a time.
const PREFAULT_CHUNK: usize = 2 << 20;

/// An append-only journal of [`Record`]s in memory-mapped segment files.
///
/// One writer per directory (an exclusive lock on `journal.id` enforces it). Sequences
/// start at 1 and are dense; [`append`](Self::append) returns each entry's. An entry is
/// *accepted* once [`acked`](Self::acked) reaches it, which depends on the
/// [`Durability`] policy; call [`commit`](Self::commit) after each batch.
pub struct Journal {
    dir: PathBuf,
    config: JournalConfig,
    id: u64,
    _lock: File,
    /// Every segment, oldest first; the last is the active one.
    segments: VecDeque<SegmentInfo>,
    active: Active,
    next_seq: u64,
    acked: Arc<AtomicU64>,
    last_flush: Instant,
    last_age_check: Instant,
    total_bytes: u64,
    paths: PathSlot,
    tmp_paths: PathSlot,
    events: EventQueue,
    recovery: RecoveryReport,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("id", &format_args!("{:#018x}", self.id))
            .field("segments", &self.segments.len())
            .field("next_seq", &self.next_seq)
            .field("acked", &self.acked())
            .finish()
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn map_rw(file: &File, path: &Path) -> Result<MmapMut, JournalError> {
    // SAFETY: the journal's exclusive lock (held for the `Journal`'s life) keeps other
    // writers of this library out; the file is only changed through this mapping and by
    // `seal` (a `pwrite` to the header, which the mapping never reads back). Readers in
    // other processes only read. Changing segment files behind the lock is outside the
    // contract (documented in docs/journal.md).
    unsafe { MmapMut::map_mut(file) }.map_err(|e| JournalError::io("map segment", path, e))
}

impl Journal {
    /// Opens the journal in `dir`, creating it if `config.create` allows, and recovers
    /// it: checks every segment header and the chain of segments, scans the last segment
    /// and truncates a torn tail (see [`RecoveryReport`]). Appending continues after the
    /// last intact entry. Every recovered entry counts as acknowledged.
    pub fn open(dir: impl AsRef<Path>, config: JournalConfig) -> Result<Journal, JournalError> {
        config.validate().map_err(JournalError::Config)?;
        let dir = dir.as_ref().to_path_buf();
        let mut created = false;
        if !dir.is_dir() {
            if !config.create {
                return Err(JournalError::NotFound(dir));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| JournalError::io("create directory", &dir, e))?;
        }
        let id = match read_id(&dir)? {
            Some(id) => id,
            None if config.create => {
                created = true;
                create_id(&dir)?
            }
            None => return Err(JournalError::NotFound(dir)),
        };
        let id_path = dir.join(ID_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .open(&id_path)
            .map_err(|e| JournalError::io("open", &id_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Locked(dir)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(JournalError::io("lock", &id_path, e))
            }
        }
        let removed_temporaries = remove_temporaries(&dir)?;
        let listed = list_segments(&dir, id)?;
        let mut segments = VecDeque::with_capacity(SEGMENT_LIST_CAPACITY.max(listed.len() + 1));
        segments.extend(listed);
        let mut paths = PathSlot::new(&dir);
        let mut tmp_paths = PathSlot::new(&dir);
        let mut report = RecoveryReport {
            created,
            removed_temporaries,
            ..RecoveryReport::default()
        };
        let active = match segments.back().copied() {
            None => {
                let header = SegmentHeader {
                    journal_id: id,
                    index: 0,
                    first_seq: 1,
                    created_ns: now_ns(),
                    segment_len: config.segment_bytes as u32,
                };
                let file = create_segment(&mut paths, &mut tmp_paths, &dir, &header)?;
                let info = SegmentInfo {
                    header,
                    sealed: false,
                    file_len: header.segment_len as u64,
                };
                segments.push_back(info);
                let path = paths.segment(0, false).to_path_buf();
                paths.reset();
                let map = map_rw(&file, &path)?;
                Active {
                    file,
                    map,
                    info,
                    used: 0,
                    dirty_from: slot_offset(0),
                    populated_to: 0,
                }
            }
            Some(mut info) => {
                let path = paths.segment(info.index(), false).to_path_buf();
                paths.reset();
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| JournalError::io("open segment", &path, e))?;
                let want = info.header.segment_len as u64;
                if info.file_len < want {
                    if config.repair == TailRepair::TornOnly {
                        return Err(JournalError::TruncatedSegment {
                            path,
                            expected_len: want,
                            actual_len: info.file_len,
                        });
                    }
                    allocate(&file, want)
                        .map_err(|e| JournalError::io("re-extend segment", &path, e))?;
                    report.extended_from = Some(info.file_len);
                    info.file_len = want;
                    *segments.back_mut().expect("non-empty") = info;
                }
                let mut map = map_rw(&file, &path)?;
                let (used, dropped) = recover_tail(&mut map, &info, config.repair)?;
                report.dropped = dropped;
                report.tail_entries = used;
                Active {
                    file,
                    map,
                    info,
                    used,
                    dirty_from: slot_offset(used),
                    populated_to: slot_offset(used) & !(4095),
                }
            }
        };
        let next_seq = active.info.first_seq() + active.used;
        let first_seq = segments.front().map(|s| s.first_seq()).unwrap_or(1);
        let last_seq = next_seq - 1;
        report.segments = segments.len() as u64;
        report.first_seq = if last_seq >= first_seq { first_seq } else { 0 };
        report.last_seq = last_seq;
        let total_bytes = segments.iter().map(|s| s.file_len).sum();
        let mut events = EventQueue::new();
        events.push(JournalEvent::Recovered {
            segments: report.segments,
            first_seq: report.first_seq,
            last_seq,
            dropped_entries: report.dropped.map_or(0, |d| d.entries),
            dropped_bytes: report.dropped.map_or(0, |d| d.bytes),
            created,
        });
        let now = Instant::now();
        let mut journal = Journal {
            dir,
            config,
            id,
            _lock: lock,
            segments,
            active,
            next_seq,
            acked: Arc::new(AtomicU64::new(last_seq)),
            last_flush: now,
            last_age_check: now,
            total_bytes,
            paths,
            tmp_paths,
            events,
            recovery: report,
        };
        journal.apply_retention()?;
        Ok(journal)
    }

    /// What opening found and did.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The journal's id (in every segment header and in `journal.id`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// The sequence the next [`append`](Self::append) gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last sequence written (0 if none); not necessarily accepted yet.
    pub fn written_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The oldest sequence still retained.
    pub fn first_seq(&self) -> u64 {
        self.segments.front().map(|s| s.first_seq()).unwrap_or(1)
    }

    /// The acknowledged sequence: it and everything before it are accepted under the
    /// [`Durability`] policy. 0 when nothing is.
    #[inline]
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// A handle to read [`acked`](Self::acked) from other threads.
    pub fn ack_handle(&self) -> AckHandle {
        AckHandle(self.acked.clone())
    }

    /// The segments, oldest first (the last is being written).
    pub fn segments(&self) -> impl Iterator<Item = &SegmentInfo> {
        self.segments.iter()
    }

    /// A reader over what has been written so far (entries up to
    /// [`written_seq`](Self::written_seq)); use it to replay while the journal is live.
    pub fn reader(&self) -> Result<JournalReader, JournalError> {
        JournalReader::open_bounded(&self.dir, Some(self.next_seq))
    }

    /// Appends one record; returns its sequence. Rotates to a new segment when the
    /// active one is full. Allocates nothing (see the module docs for rotation).
    ///
    /// Under [`Durability::Os`] the entry is acknowledged on return; otherwise at the next
    /// [`commit`](Self::commit) that flushes.
    #[inline]
    pub fn append(&mut self, rec: &Record) -> Result<u64, JournalError> {
        if self.active.used == self.active.info.capacity() {
            self.rotate()?;
        }
        let seq = self.next_seq;
        let off = slot_offset(self.active.used);
        if off + ENTRY_LEN > self.active.populated_to {
            self.prefault();
        }
        let e = &mut self.active.map[off..off + ENTRY_LEN];
        e[8..ENTRY_HEADER_LEN].copy_from_slice(&seq.to_le_bytes());
        e[ENTRY_HEADER_LEN..].copy_from_slice(record_bytes(rec));
        let word = frame_word(entry_crc(&e[8..]));
        // The frame word (length and CRC) goes last, in one aligned 8-byte store: a
        // reader or a recovery after a process crash sees either no entry or all of it.
        let ptr = e.as_mut_ptr() as *mut u64;
        // SAFETY: `ptr` points into the writable mapping, 8-byte aligned (the mapping is
        // page aligned, the header and every entry are multiples of 8 bytes), valid for
        // 8 bytes; nothing in this process accesses those bytes non-atomically while the
        // reference lives (`e` is not used after this).
        unsafe { AtomicU64::from_ptr(ptr) }.store(word.to_le(), Ordering::Release);
        self.active.used += 1;
        self.next_seq = seq + 1;
        self.events.appended(seq);
        if self.config.durability == Durability::Os {
            self.acked.store(seq, Ordering::Release);
        }
        Ok(seq)
    }

    /// Appends a slice of records; returns the sequence of the last (or the current
    /// [`written_seq`](Self::written_seq) for an empty slice). Stops at the first error;
    /// the records before it are appended.
    pub fn append_batch(&mut self, recs: &[Record]) -> Result<u64, JournalError> {
        for r in recs {
            self.append(r)?;
        }
        Ok(self.written_seq())
    }

    /// Ends a batch: flushes as the [`Durability`] policy says and moves the acknowledged
    /// sequence; applies age retention at most once a second. Returns [`acked`](Self::acked).
    pub fn commit(&mut self) -> Result<u64, JournalError> {
        match self.config.durability {
            Durability::Os => {}
            Durability::EveryBatch => self.flush_active()?,
            Durability::Interval(d) => {
                if self.next_seq - 1 > self.acked() && self.last_flush.elapsed() >= d {
                    self.flush_active()?;
                }
            }
        }
        if self.config.retention.max_age.is_some()
            && self.last_age_check.elapsed() >= Duration::from_secs(1)
        {
            self.last_age_check = Instant::now();
            self.apply_retention()?;
        }
        Ok(self.acked())
    }

    /// Flushes everything written, whatever the policy, and acknowledges it.
    pub fn sync(&mut self) -> Result<u64, JournalError> {
        self.flush_active()?;
        Ok(self.acked())
    }

    /// Hands out the pending `journal` topic events: queued rotations, recoveries and
    /// removals in order, then one coalesced `Appended` for the entries since the last
    /// drain. Allocates nothing.
    pub fn drain_events(&mut self, f: impl FnMut(JournalEvent)) {
        let acked = self.acked();
        self.events.drain(acked, ENTRY_LEN as u64, f);
    }

    /// Populates the page tables of the next [`PREFAULT_CHUNK`] bytes of the active
    /// segment, writable, in one call (`MADV_POPULATE_WRITE`, Linux 5.14+), instead of
    /// taking one page fault per 4 KiB page while appending. Where the kernel refuses,
    /// appending simply takes the page faults.
    #[cold]
    fn prefault(&mut self) {
        let a = &mut self.active;
        let len = a.map.len();
        let from = a.populated_to;
        let n = PREFAULT_CHUNK.min(len - from.min(len));
        if n == 0
            || a.map
                .advise_range(memmap2::Advice::PopulateWrite, from, n)
                .is_err()
        {
            a.populated_to = len;
        } else {
            a.populated_to = from + n;
        }
    }

    fn flush_active(&mut self) -> Result<(), JournalError> {
        let end = slot_offset(self.active.used);
        if end > self.active.dirty_from {
            let from = self.active.dirty_from;
            if let Err(e) = self.active.map.flush_range(from, end - from) {
                let path = self
                    .paths
                    .segment(self.active.info.index(), false)
                    .to_path_buf();
                self.paths.reset();
                return Err(JournalError::io("flush", &path, e));
            }
            self.active.dirty_from = end;
        }
        self.last_flush = Instant::now();
        self.acked.store(self.next_seq - 1, Ordering::Release);
        Ok(())
    }

    /// Seals the full active segment and starts the next one.
    fn rotate(&mut self) -> Result<(), JournalError> {
        let durable = self.config.durability != Durability::Os;
        if durable {
            self.flush_active()?;
        }
        let old = self.active.info;
        let header = SegmentHeader {
            journal_id: self.id,
            index: old.index() + 1,
            first_seq: old.end_seq(),
            created_ns: now_ns(),
            segment_len: self.config.segment_bytes as u32,
        };
        let file = create_segment(&mut self.paths, &mut self.tmp_paths, &self.dir, &header)?;
        let path = self.paths.segment(header.index, false);
        let map = map_rw(&file, path);
        self.paths.reset();
        let map = map?;
        if let Err(e) = seal(&self.active.file).and_then(|()| {
            if durable {
                self.active.file.sync_data()
            } else {
                Ok(())
            }
        }) {
            let path = self.paths.segment(old.index(), false).to_path_buf();
            self.paths.reset();
            return Err(JournalError::io("seal segment", &path, e));
        }
        if let Some(s) = self.segments.back_mut() {
            s.sealed = true;
        }
        let info = SegmentInfo {
            header,
            sealed: false,
            file_len: header.segment_len as u64,
        };
        self.active = Active {
            file,
            map,
            info,
            used: 0,
            dirty_from: slot_offset(0),
            populated_to: 0,
        };
        self.segments.push_back(info);
        self.total_bytes += info.file_len;
        self.events.push(JournalEvent::Rotated {
            sealed_index: old.index(),
            new_index: header.index,
            first_seq: header.first_seq,
        });
        self.apply_retention()
    }

    /// Deletes old segments as the [`Retention`](super::Retention) settings say. Runs at
    /// every rotation and (for age) from `commit` at most once a second; call it to apply
    /// retention now.
    pub fn apply_retention(&mut self) -> Result<(), JournalError> {
        let r = self.config.retention;
        if r.max_bytes.is_none() && r.max_age.is_none() {
            return Ok(());
        }
        let now = now_ns();
        let mut removed = 0u64;
        let mut bytes = 0u64;
        while self.segments.len() > 1 {
            let over_size = r.max_bytes.is_some_and(|m| self.total_bytes > m);
            let too_old = r.max_age.is_some_and(|a| {
                self.segments[1].header.created_ns < now.saturating_sub(a.as_nanos() as i64)
            });
            if !(over_size || too_old) {
                break;
            }
            let oldest = self.segments[0];
            let path = self.paths.segment(oldest.index(), false);
            let res = std::fs::remove_file(path);
            if let Err(e) = res {
                if e.kind() != std::io::ErrorKind::NotFound {
                    let p = path.to_path_buf();
                    self.paths.reset();
                    return Err(JournalError::io("remove segment", &p, e));
                }
            }
            self.paths.reset();
            self.segments.pop_front();
            self.total_bytes -= oldest.file_len;
            removed += 1;
            bytes += oldest.file_len;
        }
        if removed > 0 {
            self.events.push(JournalEvent::Removed {
                segments: removed,
                bytes,
                first_seq: self.first_seq(),
            });
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// Flushes what was written unless the policy is [`Durability::Os`] (errors are
    /// ignored here; call [`sync`](Journal::sync) to see them).
    fn drop(&mut self) {
        if self.config.durability != Durability::Os {
            let _ = self.flush_active();
        }
    }
}
