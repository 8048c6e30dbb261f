//! Segment files on disk: the identity file, listing and checking the chain of segments,
//! and creating a new segment.
//!
//! May allocate: listing (directory entries, the segment list) at open; creating a
//! segment allocates nothing (names are formatted into stack buffers, paths into a
//! reused `PathBuf`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::JournalError;
use super::format::{
    decode_id, encode_id, parse_segment_name, segment_name, SegmentHeader, HEADER_LEN,
};

/// Name of the identity file in a journal directory.
pub const ID_FILE: &str = "journal.id";

/// What a segment's header and file say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The decoded header.
    pub header: SegmentHeader,
    /// Whether its successor exists (seal word set).
    pub sealed: bool,
    /// Length of the file on disk.
    pub file_len: u64,
}

impl SegmentInfo {
    /// Position in the journal.
    pub fn index(&self) -> u64 {
        self.header.index
    }
    /// Sequence of the first slot.
    pub fn first_seq(&self) -> u64 {
        self.header.first_seq
    }
    /// Entries the segment holds when full.
    pub fn capacity(&self) -> u64 {
        self.header.capacity()
    }
    /// One past the last sequence the segment can hold.
    pub fn end_seq(&self) -> u64 {
        self.header.first_seq + self.header.capacity()
    }
}

/// A path buffer reused for segment file names (no allocation once sized).
#[derive(Debug)]
pub(crate) struct PathSlot {
    buf: PathBuf,
}

impl PathSlot {
    pub(crate) fn new(dir: &Path) -> PathSlot {
        let mut buf = PathBuf::with_capacity(dir.as_os_str().len() + 64);
        buf.push(dir);
        PathSlot { buf }
    }

    /// The path of segment `index` (with `.tmp` appended when `tmp`).
    pub(crate) fn segment(&mut self, index: u64, tmp: bool) -> &Path {
        let mut name = [0u8; 24];
        let name = segment_name(index, &mut name);
        self.buf.push(name);
        if tmp {
            let mut os = std::mem::take(&mut self.buf).into_os_string();
            os.push(".tmp");
            self.buf = PathBuf::from(os);
        }
        &self.buf
    }

    /// Back to the directory.
    pub(crate) fn reset(&mut self) {
        self.buf.pop();
    }
}

/// Reads the journal id, `None` when the directory has no identity file.
pub fn read_id(dir: &Path) -> Result<Option<u64>, JournalError> {
    let path = dir.join(ID_FILE);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io("open", &path, e)),
    };
    let mut b = Vec::new();
    f.read_to_end(&mut b)
        .map_err(|e| JournalError::io("read", &path, e))?;
    decode_id(&b).map(Some).ok_or(JournalError::BadIdFile(path))
}

/// Creates the identity file atomically (temporary file, fsync, rename, fsync of the
/// directory); returns the new random id.
pub(crate) fn create_id(dir: &Path) -> Result<u64, JournalError> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    let id = h.finish() | 1;
    let tmp = dir.join("journal.id.tmp");
    let path = dir.join(ID_FILE);
    let mut f = File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
    f.write_all(&encode_id(id))
        .and_then(|()| f.sync_all())
        .map_err(|e| JournalError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &path, e))?;
    sync_dir(dir)?;
    Ok(id)
}

/// Makes a directory's entries (creations, renames, deletions) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("sync directory", dir, e))
}

/// Lists the segments of journal `journal_id` in `dir`, oldest first, checking each
/// header and the chain: indices without gaps, each first sequence continuing the
/// previous segment, the same journal id everywhere, no sealed last segment, no sealed
/// segment shorter than its header says. A last segment shorter than its header says is
/// returned as found (its `file_len` tells); the caller decides.
pub fn list_segments(dir: &Path, journal_id: u64) -> Result<Vec<SegmentInfo>, JournalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| JournalError::io("read directory", dir, e))?;
    let mut names: Vec<(u64, PathBuf)> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| JournalError::io("read directory", dir, e))?;
        let name = entry.file_name();
        if let Some(index) = name.to_str().and_then(parse_segment_name) {
            names.push((index, entry.path()));
        }
    }
    names.sort_unstable_by_key(|(i, _)| *i);
    let mut out: Vec<SegmentInfo> = Vec::with_capacity(names.len().max(64));
    for (pos, (index, path)) in names.iter().enumerate() {
        let f = File::open(path).map_err(|e| JournalError::io("open segment", path, e))?;
        let file_len = f
            .metadata()
            .map_err(|e| JournalError::io("stat segment", path, e))?
            .len();
        let mut hb = [0u8; HEADER_LEN];
        let got = read_up_to(&f, &mut hb).map_err(|e| JournalError::io("read segment", path, e))?;
        let (header, sealed) =
            SegmentHeader::decode(&hb[..got]).map_err(|problem| JournalError::BadHeader {
                path: path.clone(),
                problem,
            })?;
        if header.journal_id != journal_id {
            return Err(JournalError::ForeignSegment {
                path: path.clone(),
                expected: journal_id,
                found: header.journal_id,
            });
        }
        if header.index != *index {
            return Err(JournalError::MisnamedSegment {
                path: path.clone(),
                name_index: *index,
                header_index: header.index,
            });
        }
        let last = pos + 1 == names.len();
        if !last && file_len < header.segment_len as u64 {
            return Err(JournalError::TruncatedSegment {
                path: path.clone(),
                expected_len: header.segment_len as u64,
                actual_len: file_len,
            });
        }
        if let Some(prev) = out.last() {
            if header.index != prev.index() + 1 {
                return Err(JournalError::MissingSegment {
                    expected_index: prev.index() + 1,
                    found_index: Some(header.index),
                });
            }
            if header.first_seq != prev.end_seq() {
                return Err(JournalError::SeqDiscontinuity {
                    index: header.index,
                    expected: prev.end_seq(),
                    found: header.first_seq,
                });
            }
        }
        out.push(SegmentInfo {
            header,
            sealed,
            file_len,
        });
    }
    if let Some(last) = out.last() {
        if last.sealed {
            return Err(JournalError::MissingSegment {
                expected_index: last.index() + 1,
                found_index: None,
            });
        }
    }
    Ok(out)
}

fn read_up_to(f: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Creates segment `header.index` complete on disk before its name appears: a temporary
/// file with every block allocated (so writes through the mapping cannot hit a full disk,
/// which would be `SIGBUS`), the header written and fsynced, then renamed into place and
/// the directory fsynced. Returns the open file. Allocates nothing: both paths are built
/// in reused buffers.
pub(crate) fn create_segment(
    paths: &mut PathSlot,
    tmp_paths: &mut PathSlot,
    dir: &Path,
    header: &SegmentHeader,
) -> Result<File, JournalError> {
    let tmp = tmp_paths.segment(header.index, true);
    let fin = paths.segment(header.index, false);
    let result = (|| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(|e| JournalError::io("create segment", tmp, e))?;
        allocate(&f, header.segment_len as u64)
            .map_err(|e| JournalError::io("allocate segment", tmp, e))?;
        f.write_all_at(&header.encode(), 0)
            .and_then(|()| f.sync_all())
            .map_err(|e| JournalError::io("write segment header", tmp, e))?;
        std::fs::rename(tmp, fin).map_err(|e| JournalError::io("rename segment", fin, e))?;
        sync_dir(dir)?;
        Ok(f)
    })();
    tmp_paths.reset();
    paths.reset();
    result
}

/// Allocates every block of the file's first `len` bytes (and sets its length).
pub(crate) fn allocate(f: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `f` is an open file descriptor for the duration of the call; the call reads
    // no memory of ours.
    let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: fall back to a sparse length.
        libc::EOPNOTSUPP | libc::EINVAL => f.set_len(len),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

/// Writes the seal word into an existing segment (its successor now exists).
pub(crate) fn seal(f: &File) -> std::io::Result<()> {
    f.write_all_at(
        &super::format::SEAL_MAGIC.to_le_bytes(),
        super::format::SEAL_OFFSET as u64,
    )
}

/// Removes leftover temporary segment files of an interrupted rotation.
pub(crate) fn remove_temporaries(dir: &Path) -> Result<u32, JournalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| JournalError::io("read directory", dir, e))?;
    let mut removed = 0;
    for entry in rd {
        let entry = entry.map_err(|e| JournalError::io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = name.strip_suffix(".tmp") {
            if parse_segment_name(base).is_some() {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(|e| JournalError::io("remove", &p, e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
