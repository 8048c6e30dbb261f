//! Replaying watch streams: from a file mapped with `memmap2`, and from any
//! reader such as stdin.
//!
//! Both accept a stream of **concatenated JSON values** — one watch event
//! per line (NDJSON) or pretty-printed multi-line events back to back, as
//! `kubectl get pods -A --watch --output-watch-events -o json` writes them.
//! [`split_value`] finds where each value ends (string- and escape-aware
//! bracket matching, no parsing); the [`WatchDecoder`] then decodes it.
//! Nothing is allocated per event: the file is mapped, and
//! [`StreamReader`] reuses one buffer allocated at construction.
//!
//! Resynchronisation after bad input: text that does not start with `{` or
//! `[` is one error up to the end of its line; a complete value longer
//! than [`DecoderConfig::max_object_bytes`](crate::sources::k8s::DecoderConfig)
//! is reported as [`DecodeError::TooLarge`] and skipped whole; a value
//! still open after that many bytes (unbalanced brackets) is reported as
//! `TooLarge` (its `len` is what was skipped) and skipped up to the next
//! newline after the limit; a value
//! cut off by the end of the input gets the decoder's error for it
//! (usually [`DecodeError::Truncated`]). The next value decodes normally.
//! Because values are found by bracket matching, a line with a missing
//! closing bracket swallows the lines after it up to that limit: for
//! strictly line-delimited input where that matters, decode lines with
//! [`WatchDecoder::decode_lines`] instead.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::sources::k8s::{DecodeError, Decoded, WatchDecoder};
use crate::sources::pace::{Pace, Pacer};

/// Where the next JSON value in a buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Only whitespace is left.
    End,
    /// A complete value (or a bad stretch of text) spans `start..end`.
    Value {
        /// Offset of its first byte.
        start: usize,
        /// Offset one past its last byte.
        end: usize,
    },
    /// Text that cannot start a JSON object or array spans `start..end`
    /// (to the end of its line); decoding it yields the precise error.
    Junk {
        /// Offset of its first byte.
        start: usize,
        /// Offset one past its last byte (the `\n` excluded).
        end: usize,
    },
    /// A value starts at `start` but does not end within the buffer.
    Incomplete {
        /// Offset of its first byte.
        start: usize,
    },
}

/// Finds the next JSON object or array in `buf` starting at `from`
/// (leading whitespace skipped). Brackets inside strings and escaped quotes
/// are handled; nothing is validated beyond that.
pub fn split_value(buf: &[u8], from: usize) -> Split {
    let mut i = from;
    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    if i == buf.len() {
        return Split::End;
    }
    let start = i;
    if !matches!(buf[i], b'{' | b'[') {
        let end = memchr_nl(buf, i).unwrap_or(buf.len());
        return Split::Junk { start, end };
    }
    let mut depth = 0u32;
    let mut in_str = false;
    while i < buf.len() {
        let b = buf[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Split::Value { start, end: i + 1 };
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    Split::Incomplete { start }
}

fn memchr_nl(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| from + p)
}

/// Offset and bytes of one value handed to a replay callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    /// Offset of the value in the whole input (file or stream).
    pub offset: u64,
    /// The value's bytes.
    pub bytes: &'a [u8],
}

/// Errors opening or reading an input.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened, inspected or mapped.
    #[error("cannot map {path}: {source}")]
    Map {
        /// The path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// Reading the stream failed.
    #[error("read failed after {offset} bytes: {source}")]
    Read {
        /// Bytes read successfully before the failure.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
}

/// Counts from one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Values (and junk stretches) handed to the callback.
    pub values: u64,
    /// How many of them failed to decode.
    pub errors: u64,
    /// Bytes of input consumed.
    pub bytes: u64,
}

/// A read-only memory map of a watch-stream file.
#[derive(Debug)]
pub struct MappedFile {
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps `path` read-only. An empty file maps to an empty slice.
    ///
    /// The file must not be truncated while mapped (reading a truncated
    /// page raises `SIGBUS`); appending is harmless but not seen.
    pub fn open(path: impl AsRef<Path>) -> Result<MappedFile, ReplayError> {
        let path = path.as_ref();
        let err = |source| ReplayError::Map {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len == 0 {
            return Ok(MappedFile { map: None });
        }
        // SAFETY: the map is read-only and private to this value; the
        // contract above (documented on `open`) is that the file is not
        // truncated while mapped, the one way a read through it could fault.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(err)?;
        Ok(MappedFile { map: Some(map) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Decodes every watch event in the file, in order, calling `f` with
    /// each value and its outcome, released at `pace` ([`Pace::Recorded`]
    /// reads each record's `source_ns`; failed values are released at
    /// once). Allocates nothing.
    pub fn replay<F>(&self, decoder: &mut WatchDecoder, pace: Pace, f: F) -> ReplaySummary
    where
        F: FnMut(Value<'_>, Result<Decoded, DecodeError>),
    {
        replay_bytes(self.bytes(), decoder, pace, f)
    }
}

/// Decodes every watch event in `bytes` (see [`MappedFile::replay`]).
pub fn replay_bytes<F>(
    bytes: &[u8],
    decoder: &mut WatchDecoder,
    pace: Pace,
    mut f: F,
) -> ReplaySummary
where
    F: FnMut(Value<'_>, Result<Decoded, DecodeError>),
{
    let mut pacer = Pacer::new(pace);
    let mut s = ReplaySummary::default();
    let limit = decoder.config().max_object_bytes;
    let mut pos = 0;
    loop {
        let (start, end, r) = match split_value(bytes, pos) {
            Split::End => break,
            Split::Value { start, end } if end - start > limit => {
                (start, end, Err(too_large(decoder, end - start, limit)))
            }
            Split::Value { start, end } | Split::Junk { start, end } => {
                (start, end, decoder.decode_event(&bytes[start..end]))
            }
            Split::Incomplete { start } if bytes.len() - start > limit => {
                let skip = memchr_nl(bytes, start + limit).unwrap_or(bytes.len());
                (start, skip, Err(too_large(decoder, skip - start, limit)))
            }
            Split::Incomplete { start } => {
                let end = bytes.len();
                (start, end, decoder.decode_event(&bytes[start..end]))
            }
        };
        s.values += 1;
        match &r {
            Ok(d) => pacer.wait(d.record().source_ns),
            Err(_) => s.errors += 1,
        }
        f(
            Value {
                offset: start as u64,
                bytes: &bytes[start..end],
            },
            r,
        );
        pos = end;
    }
    s.bytes = bytes.len() as u64;
    s
}

fn too_large(decoder: &mut WatchDecoder, len: usize, limit: usize) -> DecodeError {
    // Route the error through the decoder so that its counters see it.
    let e = DecodeError::TooLarge { len, limit };
    decoder.count_error(&e);
    e
}

/// Reads concatenated watch events from any [`Read`] (stdin, a pipe, a
/// socket) through one buffer allocated at construction.
#[derive(Debug)]
pub struct StreamReader {
    buf: Box<[u8]>,
    len: usize,
    consumed: u64,
}

impl StreamReader {
    /// Read size used on top of the largest object.
    pub const READ_CHUNK: usize = 64 * 1024;

    /// A reader whose buffer holds one object of `max_object_bytes` plus
    /// one read of [`READ_CHUNK`](Self::READ_CHUNK) bytes.
    pub fn new(max_object_bytes: usize) -> StreamReader {
        StreamReader {
            buf: vec![0u8; max_object_bytes + Self::READ_CHUNK].into_boxed_slice(),
            len: 0,
            consumed: 0,
        }
    }

    /// Reads `input` to its end, decoding each value as it completes and
    /// calling `f` with it (and pacing as [`MappedFile::replay`] does).
    /// Returns when the input ends; a value cut off by the end is reported
    /// as [`DecodeError::Truncated`] or the decoder's precise error.
    /// Interrupted reads are retried; other read errors end the replay.
    pub fn run<R, F>(
        &mut self,
        mut input: R,
        decoder: &mut WatchDecoder,
        pace: Pace,
        mut f: F,
    ) -> Result<ReplaySummary, ReplayError>
    where
        R: Read,
        F: FnMut(Value<'_>, Result<Decoded, DecodeError>),
    {
        let mut pacer = Pacer::new(pace);
        let mut s = ReplaySummary::default();
        let limit = decoder.config().max_object_bytes;
        // Set after TooLarge: discard input up to the next newline.
        let mut skipping = false;
        loop {
            if self.len == self.buf.len() {
                // Only possible while an oversize value is open: drop it.
                let e = too_large(decoder, self.len, limit);
                s.values += 1;
                s.errors += 1;
                f(
                    Value {
                        offset: self.consumed,
                        bytes: &self.buf[..self.len],
                    },
                    Err(e),
                );
                self.consumed += self.len as u64;
                self.len = 0;
                skipping = true;
            }
            let n = match input.read(&mut self.buf[self.len..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ReplayError::Read {
                        offset: self.consumed + self.len as u64,
                        source,
                    })
                }
            };
            let eof = n == 0;
            self.len += n;
            if skipping {
                match memchr_nl(&self.buf[..self.len], 0) {
                    Some(p) => {
                        self.shift(p + 1);
                        skipping = false;
                    }
                    None => {
                        self.consumed += self.len as u64;
                        self.len = 0;
                        if eof {
                            break;
                        }
                        continue;
                    }
                }
            }
            let mut pos = 0;
            loop {
                // `open`: a value still open after `limit` bytes, reported
                // up to the next newline after the limit (or the end of the
                // input).
                let mut open = false;
                let (start, end) = match split_value(&self.buf[..self.len], pos) {
                    Split::End => {
                        pos = self.len;
                        break;
                    }
                    Split::Value { start, end } => (start, end),
                    Split::Junk { start, end } if end < self.len || eof => (start, end),
                    Split::Incomplete { start } if self.len - start > limit => {
                        match memchr_nl(&self.buf[..self.len], start + limit) {
                            Some(nl) => {
                                open = true;
                                (start, nl)
                            }
                            // Wait for the newline (the buffer-full branch
                            // above reports lines longer than the buffer).
                            None if !eof => {
                                pos = start;
                                break;
                            }
                            None => {
                                open = true;
                                (start, self.len)
                            }
                        }
                    }
                    Split::Junk { start, .. } | Split::Incomplete { start } if !eof => {
                        pos = start;
                        break;
                    }
                    Split::Junk { start, end } => (start, end),
                    Split::Incomplete { start } => (start, self.len),
                };
                let r = if open || end - start > limit {
                    Err(too_large(decoder, end - start, limit))
                } else {
                    decoder.decode_event(&self.buf[start..end])
                };
                s.values += 1;
                match &r {
                    Ok(d) => pacer.wait(d.record().source_ns),
                    Err(_) => s.errors += 1,
                }
                f(
                    Value {
                        offset: self.consumed + start as u64,
                        bytes: &self.buf[start..end],
                    },
                    r,
                );
                pos = end;
            }
            self.shift(pos);
            if eof {
                break;
            }
        }
        s.bytes = self.consumed + self.len as u64;
        Ok(s)
    }

    fn shift(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
        self.consumed += n as u64;
    }
}

/// Reads concatenated watch events from `reader` to its end with a fresh
/// [`StreamReader`] (one buffer allocation) — e.g.
/// `replay_reader(std::io::stdin().lock(), …)` behind
/// `kubectl get pods -A --watch --output-watch-events -o json |`.
pub fn replay_reader<R, F>(
    reader: R,
    decoder: &mut WatchDecoder,
    pace: Pace,
    f: F,
) -> Result<ReplaySummary, ReplayError>
where
    R: Read,
    F: FnMut(Value<'_>, Result<Decoded, DecodeError>),
{
    let max = decoder.config().max_object_bytes;
    StreamReader::new(max).run(reader, decoder, pace, f)
}
