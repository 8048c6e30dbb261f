//! The on-disk format: segment headers, entry framing, and a record's bytes.
//!
//! Everything is little-endian. See `docs/journal.md` for the byte tables; the constants
//! below are the single source of truth for them.

use crate::sources::record::{Kind, Record, MAX_FIELDS, RECORD_SIZE};

use super::error::EntryProblem;

/// Bytes at the start of every segment file (`EBBJRNL` + format version 1).
pub const SEGMENT_MAGIC: [u8; 8] = *b"EBBJRNL\x01";
/// Bytes at the start of the journal's identity file (`journal.id`).
pub const ID_MAGIC: [u8; 8] = *b"EBBJID\x00\x01";
/// Format version written into every segment header.
pub const FORMAT_VERSION: u16 = 1;
/// Size of a segment header; the first entry starts here.
pub const HEADER_LEN: usize = 64;
/// Size of an entry's frame before its payload: length, CRC32C, sequence.
pub const ENTRY_HEADER_LEN: usize = 16;
/// Payload length of every entry: one [`Record`].
pub const PAYLOAD_LEN: usize = RECORD_SIZE;
/// Size of one entry on disk (frame plus payload, a multiple of 8).
pub const ENTRY_LEN: usize = ENTRY_HEADER_LEN + PAYLOAD_LEN;
/// The value of a segment's seal word once a successor segment exists.
pub const SEAL_MAGIC: u64 = u64::from_le_bytes(*b"SEALED\x00\x01");
/// Size of the identity file.
pub const ID_FILE_LEN: usize = 24;
/// Offset of the seal word in the segment header.
pub const SEAL_OFFSET: usize = 56;

const _: () = assert!(ENTRY_LEN.is_multiple_of(8) && HEADER_LEN.is_multiple_of(8));
const _: () = assert!(core::mem::size_of::<Record>() == PAYLOAD_LEN);

/// A segment header, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The journal this segment belongs to.
    pub journal_id: u64,
    /// Position of the segment in the journal: 0, 1, 2, … without gaps.
    pub index: u64,
    /// Sequence number of the segment's first entry slot.
    pub first_seq: u64,
    /// Wall-clock time the segment was created, ns since the Unix epoch.
    pub created_ns: i64,
    /// Length of the segment file in bytes (header included).
    pub segment_len: u32,
}

/// Why a segment header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    /// The file is shorter than a header.
    #[error("shorter than a segment header")]
    TooShort,
    /// The magic bytes are wrong: not a segment file.
    #[error("bad magic bytes")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported format version {0}")]
    Version(u16),
    /// The header's own CRC does not match.
    #[error("header CRC mismatch")]
    Crc,
    /// Header length or entry size differ from this build's.
    #[error("header length {header_len} or entry size {entry_len} not supported")]
    Geometry {
        /// Header length found.
        header_len: u16,
        /// Entry size found.
        entry_len: u32,
    },
    /// The segment length cannot hold a single entry.
    #[error("segment length {0} cannot hold an entry")]
    SegmentLen(u32),
}

impl SegmentHeader {
    /// Entries a segment of this length holds.
    pub fn capacity(&self) -> u64 {
        capacity_of(self.segment_len as u64)
    }

    /// Encodes the header (seal word zero: not sealed).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.journal_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.index.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ns.to_le_bytes());
        b[48..52].copy_from_slice(&self.segment_len.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header; also returns whether the segment is sealed.
    pub fn decode(b: &[u8]) -> Result<(SegmentHeader, bool), HeaderProblem> {
        if b.len() < HEADER_LEN {
            return Err(HeaderProblem::TooShort);
        }
        if b[0..7] != SEGMENT_MAGIC[..7] {
            return Err(HeaderProblem::BadMagic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION || b[7] != SEGMENT_MAGIC[7] {
            return Err(HeaderProblem::Version(version));
        }
        let stored = u32::from_le_bytes(b[52..56].try_into().expect("4 bytes"));
        if crc32c::crc32c(&b[0..52]) != stored {
            return Err(HeaderProblem::Crc);
        }
        let header_len = u16::from_le_bytes([b[10], b[11]]);
        let entry_len = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
        if header_len as usize != HEADER_LEN || entry_len as usize != ENTRY_LEN {
            return Err(HeaderProblem::Geometry {
                header_len,
                entry_len,
            });
        }
        let le64 = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let h = SegmentHeader {
            journal_id: le64(16),
            index: le64(24),
            first_seq: le64(32),
            created_ns: le64(40) as i64,
            segment_len: u32::from_le_bytes(b[48..52].try_into().expect("4 bytes")),
        };
        if h.capacity() == 0 {
            return Err(HeaderProblem::SegmentLen(h.segment_len));
        }
        Ok((h, le64(SEAL_OFFSET) == SEAL_MAGIC))
    }
}

/// Entries a segment of `segment_len` bytes holds.
pub const fn capacity_of(segment_len: u64) -> u64 {
    if segment_len < (HEADER_LEN + ENTRY_LEN) as u64 {
        0
    } else {
        (segment_len - HEADER_LEN as u64) / ENTRY_LEN as u64
    }
}

/// Byte offset of entry slot `slot` in a segment.
#[inline]
pub const fn slot_offset(slot: u64) -> usize {
    HEADER_LEN + slot as usize * ENTRY_LEN
}

/// CRC32C of the length field (`PAYLOAD_LEN` as 4 little-endian bytes), the constant
/// start of every entry's CRC (checked by a unit test).
const LEN_FIELD_CRC: u32 = 0x1ac7_82f8;

/// The CRC32C an entry carries: over its length field, its sequence and its payload.
#[inline]
pub fn entry_crc(seq_and_payload: &[u8]) -> u32 {
    crc32c::crc32c_append(LEN_FIELD_CRC, seq_and_payload)
}

/// The first 8 bytes of an entry as one little-endian word: length (low half) and CRC
/// (high half). Zero means "no entry here".
#[inline]
pub fn frame_word(crc: u32) -> u64 {
    PAYLOAD_LEN as u64 | (u64::from(crc) << 32)
}

/// The 128 bytes of a record, in its in-memory layout (see `docs/sources.md`).
#[inline]
pub fn record_bytes(rec: &Record) -> &[u8; PAYLOAD_LEN] {
    // SAFETY: `Record` is `#[repr(C)]`, exactly `PAYLOAD_LEN` bytes (asserted above), and
    // its fields tile those bytes without padding (offsets in `sources::record`, checked by
    // its `layout_offsets` test), so every byte is initialised; the reference lives as
    // long as `rec`.
    unsafe { &*(rec as *const Record as *const [u8; PAYLOAD_LEN]) }
}

const KIND_OFFSET: usize = 48;
const OP_OFFSET: usize = 49;
const FIELD_COUNT_OFFSET: usize = 52;
/// Largest `Op` discriminant (`Op::Error`).
const OP_MAX: u8 = 4;

/// Rebuilds a record from its 128 bytes, refusing byte patterns that are not a valid
/// [`Record`] (unknown kind or op, more fields than slots).
pub fn record_from_bytes(b: &[u8]) -> Result<Record, EntryProblem> {
    if b.len() != PAYLOAD_LEN {
        return Err(EntryProblem::BadLength {
            len: b.len() as u32,
        });
    }
    if b[KIND_OFFSET] as usize >= Kind::COUNT
        || b[OP_OFFSET] > OP_MAX
        || b[FIELD_COUNT_OFFSET] as usize > MAX_FIELDS
    {
        return Err(EntryProblem::InvalidRecord);
    }
    // SAFETY: `b` holds `PAYLOAD_LEN` = size_of::<Record>() bytes (checked above); the read
    // is unaligned-safe. Every field of `Record` is an integer, an array of integers, or a
    // newtype over one (valid for any bits) except `kind` and `op`, whose bytes were
    // checked to be valid discriminants, and the field count, which `Record` indexes with
    // and which was checked to be at most `MAX_FIELDS`.
    Ok(unsafe { core::ptr::read_unaligned(b.as_ptr() as *const Record) })
}

/// Checks one entry at the start of `e` (at least [`ENTRY_LEN`] bytes) against the
/// sequence it must carry. `Ok(None)`: the slot is empty (never written).
pub fn check_entry(e: &[u8], expected_seq: u64) -> Result<Option<Record>, EntryProblem> {
    let word = u64::from_le_bytes(e[0..8].try_into().expect("8 bytes"));
    if word == 0 {
        return Ok(None);
    }
    let len = word as u32;
    if len as usize != PAYLOAD_LEN {
        return Err(EntryProblem::BadLength { len });
    }
    let stored = (word >> 32) as u32;
    let computed = entry_crc(&e[8..ENTRY_LEN]);
    if stored != computed {
        return Err(EntryProblem::CrcMismatch { stored, computed });
    }
    let seq = u64::from_le_bytes(e[8..16].try_into().expect("8 bytes"));
    if seq != expected_seq {
        return Err(EntryProblem::SeqMismatch {
            expected: expected_seq,
            found: seq,
        });
    }
    record_from_bytes(&e[ENTRY_HEADER_LEN..ENTRY_LEN]).map(Some)
}

/// Whether the slot at the start of `e` holds an entry whose CRC is valid (any sequence).
pub fn crc_valid(e: &[u8]) -> bool {
    let word = u64::from_le_bytes(e[0..8].try_into().expect("8 bytes"));
    word != 0
        && word as u32 as usize == PAYLOAD_LEN
        && (word >> 32) as u32 == entry_crc(&e[8..ENTRY_LEN])
}

/// Encodes the identity file.
pub fn encode_id(journal_id: u64) -> [u8; ID_FILE_LEN] {
    let mut b = [0u8; ID_FILE_LEN];
    b[0..8].copy_from_slice(&ID_MAGIC);
    b[8..16].copy_from_slice(&journal_id.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes the identity file; `None` if it is not one.
pub fn decode_id(b: &[u8]) -> Option<u64> {
    if b.len() != ID_FILE_LEN || b[0..8] != ID_MAGIC {
        return None;
    }
    let stored = u32::from_le_bytes(b[16..20].try_into().ok()?);
    if crc32c::crc32c(&b[0..16]) != stored {
        return None;
    }
    Some(u64::from_le_bytes(b[8..16].try_into().ok()?))
}

/// Formats a segment file name, `seg-<index:016x>.ebj`, into `buf`; returns the name.
pub fn segment_name(index: u64, buf: &mut [u8; 24]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf[0..4].copy_from_slice(b"seg-");
    for i in 0..16 {
        buf[4 + i] = HEX[((index >> (60 - 4 * i)) & 0xf) as usize];
    }
    buf[20..24].copy_from_slice(b".ebj");
    core::str::from_utf8(&buf[..]).expect("ascii")
}

/// Parses a segment file name back into its index.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".ebj")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::record::{FieldId, FieldValue, Op};

    #[test]
    fn header_round_trip_and_crc() {
        let h = SegmentHeader {
            journal_id: 0xdead_beef,
            index: 3,
            first_seq: 1000,
            created_ns: 123,
            segment_len: 1 << 20,
        };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok((h, false)));
        b[SEAL_OFFSET..].copy_from_slice(&SEAL_MAGIC.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&b), Ok((h, true)));
        b[30] ^= 1;
        assert_eq!(SegmentHeader::decode(&b), Err(HeaderProblem::Crc));
        b[0] = b'X';
        assert_eq!(SegmentHeader::decode(&b), Err(HeaderProblem::BadMagic));
    }

    #[test]
    fn record_bytes_round_trip_and_invalid_bytes_refused() {
        let mut r = Record::new(Kind::Sensor, Op::Modified);
        r.key = 42;
        r.ingest_ns = -5;
        r.push(FieldId::Value, FieldValue::F64(1.5));
        let b = *record_bytes(&r);
        assert_eq!(record_from_bytes(&b), Ok(r));
        let mut bad = b;
        bad[KIND_OFFSET] = Kind::COUNT as u8;
        assert_eq!(record_from_bytes(&bad), Err(EntryProblem::InvalidRecord));
        let mut bad = b;
        bad[OP_OFFSET] = OP_MAX + 1;
        assert_eq!(record_from_bytes(&bad), Err(EntryProblem::InvalidRecord));
        let mut bad = b;
        bad[FIELD_COUNT_OFFSET] = MAX_FIELDS as u8 + 1;
        assert_eq!(record_from_bytes(&bad), Err(EntryProblem::InvalidRecord));
    }

    #[test]
    fn entry_crc_covers_length_field_then_seq_and_payload() {
        let len = (PAYLOAD_LEN as u32).to_le_bytes();
        assert_eq!(crc32c::crc32c(&len), LEN_FIELD_CRC);
        let body = [7u8; ENTRY_LEN - 8];
        let mut all = len.to_vec();
        all.extend_from_slice(&body);
        assert_eq!(entry_crc(&body), crc32c::crc32c(&all));
    }

    #[test]
    fn names_round_trip() {
        let mut buf = [0u8; 24];
        assert_eq!(segment_name(0x1f, &mut buf), "seg-000000000000001f.ebj");
        assert_eq!(parse_segment_name("seg-000000000000001f.ebj"), Some(0x1f));
        assert_eq!(parse_segment_name("seg-1f.ebj"), None);
        assert_eq!(decode_id(&encode_id(77)), Some(77));
        let mut b = encode_id(77);
        b[9] ^= 4;
        assert_eq!(decode_id(&b), None);
    }
}
