//! Decode errors and the decoder's counters.

use core::fmt;

use crate::sources::record::Kind;

/// The JSON type of a value, as reported in [`DecodeError::WrongType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number without fraction or exponent.
    Integer,
    /// A number with a fraction or an exponent.
    Float,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::Null => "null",
            JsonType::Bool => "a boolean",
            JsonType::Integer => "an integer",
            JsonType::Float => "a non-integer number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        })
    }
}

/// Why one input (a line, an object, a list item) could not be decoded.
///
/// Offsets are byte offsets into the input handed to the decode call (for
/// [`WatchDecoder::decode_lines`](super::WatchDecoder::decode_lines): into
/// the line). Decoding of the next line is never affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input holds only whitespace.
    #[error("empty input")]
    Empty,
    /// The input is longer than the configured object size limit.
    #[error("input of {len} bytes exceeds the {limit}-byte object limit")]
    TooLarge {
        /// Length of the offending input (the whole line for line input).
        len: usize,
        /// The configured limit ([`DecoderConfig::max_object_bytes`](super::DecoderConfig::max_object_bytes)).
        limit: usize,
    },
    /// The first non-whitespace byte cannot start a JSON value: not JSON at all.
    #[error("not JSON: byte {byte:#04x} at offset {offset} cannot start a JSON value")]
    NotJson {
        /// Offset of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The input (or the line) ended inside a JSON value.
    #[error("truncated JSON: input ends at offset {offset} inside a value")]
    Truncated {
        /// Where the input ended.
        offset: usize,
    },
    /// Malformed JSON after a valid start.
    #[error("JSON syntax error at offset {offset}: expected {expected}")]
    Syntax {
        /// Offset of the unexpected byte.
        offset: usize,
        /// What the grammar allowed there.
        expected: &'static str,
    },
    /// A bad `\` escape in a string, or a lone UTF-16 surrogate in `\u` escapes.
    #[error("invalid escape sequence at offset {offset}")]
    InvalidEscape {
        /// Offset of the backslash.
        offset: usize,
    },
    /// A string contains bytes that are not valid UTF-8.
    #[error("invalid UTF-8 in a string at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Objects/arrays nested deeper than the limit.
    #[error("nesting deeper than {limit} levels at offset {offset}")]
    TooDeep {
        /// Offset of the opening bracket past the limit.
        offset: usize,
        /// The configured limit ([`DecoderConfig::max_depth`](super::DecoderConfig::max_depth)).
        limit: u32,
    },
    /// Non-whitespace bytes follow the JSON value on the same line / input.
    #[error("unexpected data after the JSON value at offset {offset}")]
    TrailingData {
        /// Offset of the first extra byte.
        offset: usize,
    },
    /// Valid JSON, but not an object (a list entry point also accepts an array).
    #[error("the JSON value at offset {offset} is {found}, expected an object")]
    NotAnObject {
        /// Offset of the value.
        offset: usize,
        /// What it is.
        found: JsonType,
    },
    /// A required field is absent (or `null`).
    #[error("missing field `{field}`")]
    MissingField {
        /// Dotted path of the field.
        field: &'static str,
    },
    /// A field the decoder reads has the wrong JSON type.
    #[error("field `{field}` at offset {offset} is {found}, expected {expected}")]
    WrongType {
        /// Dotted path of the field.
        field: &'static str,
        /// Offset of the value.
        offset: usize,
        /// The type the decoder needs.
        expected: JsonType,
        /// The type found.
        found: JsonType,
    },
    /// An integer field does not fit in an `i64` (a resourceVersion: in a `u64`).
    #[error("integer field `{field}` at offset {offset} is out of range")]
    NumberOutOfRange {
        /// Dotted path of the field.
        field: &'static str,
        /// Offset of the value.
        offset: usize,
    },
    /// A timestamp field is not RFC 3339.
    #[error("field `{field}` at offset {offset} is not an RFC 3339 timestamp")]
    BadTimestamp {
        /// Dotted path of the field.
        field: &'static str,
        /// Offset of the string.
        offset: usize,
    },
    /// The watch event `type` is not ADDED/MODIFIED/DELETED/BOOKMARK/ERROR.
    #[error("unknown watch event type at offset {offset}")]
    UnknownEventType {
        /// Offset of the type string.
        offset: usize,
    },
    /// The object's kind is not one the decoder models and the decoder is
    /// configured with [`UnknownKinds::Reject`](super::UnknownKinds::Reject).
    #[error("unknown kind at offset {offset}")]
    UnknownKind {
        /// Offset of the kind string.
        offset: usize,
    },
    /// A string the decoder interns is longer than the configured limit.
    #[error("string field `{field}` at offset {offset} is longer than {limit} bytes")]
    StringTooLong {
        /// Dotted path of the field.
        field: &'static str,
        /// Offset of the string.
        offset: usize,
        /// The configured limit ([`DecoderConfig::max_string_bytes`](super::DecoderConfig::max_string_bytes)).
        limit: usize,
    },
}

impl DecodeError {
    /// The offset the error refers to, if it has one.
    pub fn offset(&self) -> Option<usize> {
        // The variants that carry an offset are listed once, in `offset_mut`.
        let mut copy = *self;
        copy.offset_mut().copied()
    }

    /// The byte offset inside the error, for the variants that have one.
    fn offset_mut(&mut self) -> Option<&mut usize> {
        match self {
            DecodeError::Empty
            | DecodeError::TooLarge { .. }
            | DecodeError::MissingField { .. } => None,
            DecodeError::NotJson { offset, .. }
            | DecodeError::Truncated { offset }
            | DecodeError::Syntax { offset, .. }
            | DecodeError::InvalidEscape { offset }
            | DecodeError::InvalidUtf8 { offset }
            | DecodeError::TooDeep { offset, .. }
            | DecodeError::TrailingData { offset }
            | DecodeError::NotAnObject { offset, .. }
            | DecodeError::WrongType { offset, .. }
            | DecodeError::NumberOutOfRange { offset, .. }
            | DecodeError::BadTimestamp { offset, .. }
            | DecodeError::UnknownEventType { offset }
            | DecodeError::UnknownKind { offset }
            | DecodeError::StringTooLong { offset, .. } => Some(offset),
        }
    }

    /// Makes the error's offset relative to `start` (the start of a line
    /// inside a larger buffer).
    pub(crate) fn rebased(mut self, start: usize) -> DecodeError {
        if let Some(offset) = self.offset_mut() {
            *offset = offset.saturating_sub(start);
        }
        self
    }
}

/// One counter per [`DecodeError`] variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// [`DecodeError::Empty`].
    pub empty: u64,
    /// [`DecodeError::TooLarge`].
    pub too_large: u64,
    /// [`DecodeError::NotJson`].
    pub not_json: u64,
    /// [`DecodeError::Truncated`].
    pub truncated: u64,
    /// [`DecodeError::Syntax`].
    pub syntax: u64,
    /// [`DecodeError::InvalidEscape`].
    pub invalid_escape: u64,
    /// [`DecodeError::InvalidUtf8`].
    pub invalid_utf8: u64,
    /// [`DecodeError::TooDeep`].
    pub too_deep: u64,
    /// [`DecodeError::TrailingData`].
    pub trailing_data: u64,
    /// [`DecodeError::NotAnObject`].
    pub not_an_object: u64,
    /// [`DecodeError::MissingField`].
    pub missing_field: u64,
    /// [`DecodeError::WrongType`].
    pub wrong_type: u64,
    /// [`DecodeError::NumberOutOfRange`].
    pub number_out_of_range: u64,
    /// [`DecodeError::BadTimestamp`].
    pub bad_timestamp: u64,
    /// [`DecodeError::UnknownEventType`].
    pub unknown_event_type: u64,
    /// [`DecodeError::UnknownKind`].
    pub unknown_kind: u64,
    /// [`DecodeError::StringTooLong`].
    pub string_too_long: u64,
}

impl ErrorCounts {
    /// Counts one error.
    pub fn count(&mut self, e: &DecodeError) {
        let c = match e {
            DecodeError::Empty => &mut self.empty,
            DecodeError::TooLarge { .. } => &mut self.too_large,
            DecodeError::NotJson { .. } => &mut self.not_json,
            DecodeError::Truncated { .. } => &mut self.truncated,
            DecodeError::Syntax { .. } => &mut self.syntax,
            DecodeError::InvalidEscape { .. } => &mut self.invalid_escape,
            DecodeError::InvalidUtf8 { .. } => &mut self.invalid_utf8,
            DecodeError::TooDeep { .. } => &mut self.too_deep,
            DecodeError::TrailingData { .. } => &mut self.trailing_data,
            DecodeError::NotAnObject { .. } => &mut self.not_an_object,
            DecodeError::MissingField { .. } => &mut self.missing_field,
            DecodeError::WrongType { .. } => &mut self.wrong_type,
            DecodeError::NumberOutOfRange { .. } => &mut self.number_out_of_range,
            DecodeError::BadTimestamp { .. } => &mut self.bad_timestamp,
            DecodeError::UnknownEventType { .. } => &mut self.unknown_event_type,
            DecodeError::UnknownKind { .. } => &mut self.unknown_kind,
            DecodeError::StringTooLong { .. } => &mut self.string_too_long,
        };
        *c += 1;
    }

    /// Sum of all error counters.
    pub fn total(&self) -> u64 {
        self.empty
            + self.too_large
            + self.not_json
            + self.truncated
            + self.syntax
            + self.invalid_escape
            + self.invalid_utf8
            + self.too_deep
            + self.trailing_data
            + self.not_an_object
            + self.missing_field
            + self.wrong_type
            + self.number_out_of_range
            + self.bad_timestamp
            + self.unknown_event_type
            + self.unknown_kind
            + self.string_too_long
    }
}

/// Counters kept by a [`WatchDecoder`](super::WatchDecoder) across all its
/// decode calls. Plain integers: read them on the decoder's thread, or copy
/// the struct out and publish it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Lines seen by the line drivers (empty lines included).
    pub lines: u64,
    /// Lines that held only whitespace (skipped, not errors).
    pub empty_lines: u64,
    /// Records produced with [`Op::Added`](crate::sources::record::Op::Added).
    pub added: u64,
    /// Records produced with [`Op::Modified`](crate::sources::record::Op::Modified).
    pub modified: u64,
    /// Records produced with [`Op::Deleted`](crate::sources::record::Op::Deleted).
    pub deleted: u64,
    /// BOOKMARK events decoded.
    pub bookmarks: u64,
    /// Re-list signals ([`Decoded::Relist`](super::Decoded::Relist)).
    pub relists: u64,
    /// Other ERROR events / Status objects ([`Decoded::Status`](super::Decoded::Status)).
    pub statuses: u64,
    /// Decoded outcomes per record kind, indexed by `Kind as usize`.
    pub by_kind: [u64; Kind::COUNT],
    /// Records whose fields did not all fit.
    pub fields_truncated: u64,
    /// Strings that could not be interned (interner full).
    pub symbol_overflows: u64,
    /// Records that carry `LabelsHash` instead of a `Labels` symbol (the
    /// set has no canonical text, or the interner was full: then
    /// `symbol_overflows` counts it too).
    pub labels_hashed: u64,
    /// Records whose `source_ns` was clamped to the `i64` range.
    pub source_time_clamped: u64,
    /// Errors, per variant.
    pub errors: ErrorCounts,
}

impl DecodeStats {
    /// Number of successfully decoded outcomes of every kind.
    pub fn decoded(&self) -> u64 {
        self.by_kind.iter().sum()
    }
}
