//! A validating, non-allocating JSON scanner over `&[u8]`.
//!
//! The scanner never builds a tree. Callers walk objects key by key
//! ([`Scanner::next_key`]) and either read a scalar they need or skip the
//! value ([`Scanner::skip_value`]). Skipping still validates the full JSON
//! grammar (RFC 8259): string escapes, UTF-8 inside strings, numbers,
//! literals, nesting depth. Strings are returned as byte spans into the
//! input ([`Str`]); unescaping happens only on demand ([`unescape`]).
//!
//! In *line mode* a `\n` byte ends the input: it is not whitespace, so a
//! value that would continue past it reports [`DecodeError::Truncated`] at
//! the newline. That lets the line driver parse straight out of a large
//! buffer without searching for the newline first.
//!
//! While *hashing* ([`Scanner::start_hash`]), every byte the scanner passes
//! except inter-token whitespace is fed to a [`WordHasher`], giving a
//! whitespace-insensitive fingerprint of the value in one pass.

use crate::sources::hash::WordHasher;
use crate::sources::k8s::error::{DecodeError, JsonType};

type Result<T> = core::result::Result<T, DecodeError>;

/// A string's content span (between the quotes) in the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Str {
    /// Offset of the first content byte.
    pub start: u32,
    /// Offset of the closing quote.
    pub end: u32,
    /// Whether the raw content contains `\` escapes.
    pub escaped: bool,
}

impl Str {
    /// The raw (still escaped) content bytes.
    #[inline]
    pub fn raw<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }

    /// Offset of the opening quote (for error messages).
    #[inline]
    pub fn offset(&self) -> usize {
        self.start as usize - 1
    }
}

/// A scalar read, or why it could not be read as the requested type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Got<T> {
    /// The value was `null` (treated as absent).
    Null,
    /// The value.
    Val(T),
    /// The value had another type; it has been skipped.
    Wrong { found: JsonType, offset: usize },
    /// An integer that does not fit; it has been skipped.
    OutOfRange { offset: usize },
}

/// Longest object key compared after unescaping; every key the decoder
/// looks for is shorter (the longest is 26 bytes). Kept small: a `Key` is
/// returned by value for every key of every object.
const KEY_BUF: usize = 32;

/// An object key.
pub(crate) enum Key<'a> {
    /// Unescaped key: a slice of the input.
    Raw(&'a [u8]),
    /// A key with escapes (raw content), unescaped into a small buffer.
    Unescaped(&'a [u8], [u8; KEY_BUF], u8),
    /// A key with escapes (raw content) longer than `KEY_BUF` bytes after
    /// unescaping: it cannot equal any key the decoder looks for.
    Long(&'a [u8]),
}

impl<'a> Key<'a> {
    /// The key's bytes after unescaping (`Long` keys yield a byte string
    /// that no JSON key equals).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Key::Raw(b) => b,
            Key::Unescaped(_, buf, n) => &buf[..*n as usize],
            Key::Long(_) => b"\xff",
        }
    }

    /// The key's content as written in the input (escapes included).
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        match *self {
            Key::Raw(b) | Key::Unescaped(b, ..) | Key::Long(b) => b,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bytes of `w` that are `"`, `\`, control (< 0x20) or non-ASCII (≥ 0x80),
/// flagged in their high bit. Exact for the lowest flagged byte.
#[inline(always)]
fn special_bytes(w: u64) -> u64 {
    let quote = w ^ (ONES * b'"' as u64);
    let bslash = w ^ (ONES * b'\\' as u64);
    let q = quote.wrapping_sub(ONES) & !quote;
    let b = bslash.wrapping_sub(ONES) & !bslash;
    let ctl = w.wrapping_sub(ONES * 0x20) & !w;
    (q | b | ctl | w) & HIGHS
}

#[inline(always)]
fn is_ws(b: u8, line_mode: bool) -> bool {
    matches!(b, b' ' | b'\t' | b'\r') || (b == b'\n' && !line_mode)
}

/// The JSON scanner. See the [module docs](self).
pub(crate) struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
    max_depth: u32,
    line_mode: bool,
    hashing: bool,
    hash: WordHasher,
    hash_from: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner over `buf` starting at `pos`.
    pub fn new(buf: &'a [u8], pos: usize, max_depth: u32, line_mode: bool) -> Self {
        Scanner {
            buf,
            pos,
            depth: 0,
            max_depth,
            line_mode,
            hashing: false,
            hash: WordHasher::new(),
            hash_from: 0,
        }
    }

    /// The input.
    #[inline]
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// Current offset.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated {
            offset: self.buf.len(),
        }
    }

    /// An error for an unexpected byte at `offset`; in line mode a newline
    /// there means the line ended early.
    #[cold]
    fn unexpected(&self, offset: usize, expected: &'static str) -> DecodeError {
        match self.buf.get(offset) {
            None => DecodeError::Truncated { offset },
            Some(b'\n') if self.line_mode => DecodeError::Truncated { offset },
            Some(_) => DecodeError::Syntax { offset, expected },
        }
    }

    /// Skips whitespace.
    #[inline(always)]
    pub fn ws(&mut self) {
        if let Some(&b) = self.buf.get(self.pos) {
            if b > b' ' {
                return;
            }
            self.ws_slow();
        }
    }

    #[inline(never)]
    fn ws_slow(&mut self) {
        let start = self.pos;
        while let Some(&b) = self.buf.get(self.pos) {
            if !is_ws(b, self.line_mode) {
                break;
            }
            self.pos += 1;
        }
        if self.hashing && self.pos != start {
            self.hash.write(&self.buf[self.hash_from..start]);
            self.hash_from = self.pos;
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline(always)]
    pub fn peek(&mut self) -> Result<u8> {
        self.ws();
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.truncated()),
        }
    }

    /// Current nesting depth.
    #[inline]
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Abandons a value that was partly walked: rescans it from `start`
    /// (where it began, at nesting depth `depth`) and leaves the scanner
    /// just after it at that depth, with no hash in progress.
    pub fn skip_from(&mut self, start: usize, depth: u32) -> Result<()> {
        let mut again = Scanner::new(self.buf, start, self.max_depth, self.line_mode);
        again.depth = depth;
        again.skip_value()?;
        self.pos = again.pos;
        self.depth = depth;
        self.hashing = false;
        Ok(())
    }

    /// Starts a whitespace-insensitive hash at the next token.
    pub fn start_hash(&mut self) {
        self.ws();
        self.hashing = true;
        self.hash = WordHasher::new();
        self.hash_from = self.pos;
    }

    /// Ends the hash started by [`start_hash`](Self::start_hash) at the
    /// current position and returns it.
    pub fn finish_hash(&mut self) -> u64 {
        self.hash.write(&self.buf[self.hash_from..self.pos]);
        self.hashing = false;
        self.hash.finish()
    }

    #[inline]
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(DecodeError::TooDeep {
                offset: self.pos,
                limit: self.max_depth,
            });
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads a string at the current position (which must be `"`).
    #[inline]
    pub fn string(&mut self) -> Result<Str> {
        debug_assert_eq!(self.buf.get(self.pos), Some(&b'"'));
        let start = self.pos + 1;
        self.pos = start;
        let escaped = self.string_body()?;
        Ok(Str {
            start: start as u32,
            end: (self.pos - 1) as u32,
            escaped,
        })
    }

    /// Scans string content up to and including the closing quote.
    /// Returns whether it contained escapes.
    #[inline]
    fn string_body(&mut self) -> Result<bool> {
        let buf = self.buf;
        let mut escaped = false;
        loop {
            // Word-at-a-time fast path over plain ASCII.
            while self.pos + 8 <= buf.len() {
                let mut w = [0u8; 8];
                w.copy_from_slice(&buf[self.pos..self.pos + 8]);
                let m = special_bytes(u64::from_le_bytes(w));
                if m == 0 {
                    self.pos += 8;
                } else {
                    self.pos += (m.trailing_zeros() / 8) as usize;
                    break;
                }
            }
            let Some(&b) = buf.get(self.pos) else {
                return Err(self.truncated());
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x00..=0x1f => {
                    return Err(self.unexpected(
                        self.pos,
                        "a string character (control bytes must be escaped)",
                    ));
                }
                0x80..=0xff => self.utf8_char()?,
                _ => self.pos += 1,
            }
        }
    }

    /// Validates one escape sequence at `pos` (a backslash).
    fn escape(&mut self) -> Result<()> {
        let at = self.pos;
        let Some(&e) = self.buf.get(at + 1) else {
            return Err(self.truncated());
        };
        match e {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.pos += 2;
                Ok(())
            }
            b'u' => {
                let cu = self.hex4(at + 2, at)?;
                self.pos = at + 6;
                match cu {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by `\u` + low surrogate.
                        match (self.buf.get(self.pos), self.buf.get(self.pos + 1)) {
                            (Some(b'\\'), Some(b'u')) => {
                                let lo = self.hex4(self.pos + 2, at)?;
                                if !(0xDC00..=0xDFFF).contains(&lo) {
                                    return Err(DecodeError::InvalidEscape { offset: at });
                                }
                                self.pos += 6;
                                Ok(())
                            }
                            (None, _) | (Some(b'\\'), None) => Err(self.truncated()),
                            (Some(b'\n'), _) if self.line_mode => {
                                Err(DecodeError::Truncated { offset: self.pos })
                            }
                            _ => Err(DecodeError::InvalidEscape { offset: at }),
                        }
                    }
                    0xDC00..=0xDFFF => Err(DecodeError::InvalidEscape { offset: at }),
                    _ => Ok(()),
                }
            }
            b'\n' if self.line_mode => Err(DecodeError::Truncated { offset: at + 1 }),
            _ => Err(DecodeError::InvalidEscape { offset: at }),
        }
    }

    /// Four hex digits at `at`; errors refer to the escape at `esc`.
    fn hex4(&self, at: usize, esc: usize) -> Result<u32> {
        let mut v = 0u32;
        for i in 0..4 {
            let Some(&c) = self.buf.get(at + i) else {
                return Err(self.truncated());
            };
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                b'\n' if self.line_mode => return Err(DecodeError::Truncated { offset: at + i }),
                _ => return Err(DecodeError::InvalidEscape { offset: esc }),
            };
            v = v << 4 | u32::from(d);
        }
        Ok(v)
    }

    /// Validates one multi-byte UTF-8 character at `pos` (Unicode 15,
    /// table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
    fn utf8_char(&mut self) -> Result<()> {
        let at = self.pos;
        let b0 = self.buf[at];
        let (len, lo, hi) = match b0 {
            0xC2..=0xDF => (2, 0x80, 0xBF),
            0xE0 => (3, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
            0xED => (3, 0x80, 0x9F),
            0xF0 => (4, 0x90, 0xBF),
            0xF1..=0xF3 => (4, 0x80, 0xBF),
            0xF4 => (4, 0x80, 0x8F),
            _ => return Err(DecodeError::InvalidUtf8 { offset: at }),
        };
        for i in 1..len {
            let Some(&b) = self.buf.get(at + i) else {
                return Err(self.truncated());
            };
            let (l, h) = if i == 1 { (lo, hi) } else { (0x80, 0xBF) };
            if !(l..=h).contains(&b) {
                if b == b'\n' && self.line_mode {
                    return Err(DecodeError::Truncated { offset: at + i });
                }
                return Err(DecodeError::InvalidUtf8 { offset: at });
            }
        }
        self.pos += len;
        Ok(())
    }

    fn literal(&mut self, lit: &'static [u8]) -> Result<()> {
        for (i, &c) in lit.iter().enumerate() {
            match self.buf.get(self.pos + i) {
                Some(&b) if b == c => {}
                Some(_) => {
                    return Err(self.unexpected(self.pos + i, "a JSON literal (true/false/null)"))
                }
                None => return Err(self.truncated()),
            }
        }
        self.pos += lit.len();
        Ok(())
    }

    /// Scans a number. Returns `(is_integer, negative, magnitude)` where
    /// `magnitude` is `None` if the integer part overflowed `u64`.
    #[inline]
    fn number(&mut self) -> Result<(bool, bool, Option<u64>)> {
        let buf = self.buf;
        let neg = buf.get(self.pos) == Some(&b'-');
        if neg {
            self.pos += 1;
        }
        let mut mag: Option<u64> = Some(0);
        match buf.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(&c @ b'0'..=b'9') = buf.get(self.pos) {
                    mag = mag
                        .and_then(|m| m.checked_mul(10))
                        .and_then(|m| m.checked_add(u64::from(c - b'0')));
                    self.pos += 1;
                }
            }
            Some(_) => return Err(self.unexpected(self.pos, "a digit")),
            None => return Err(self.truncated()),
        }
        let mut int = true;
        if buf.get(self.pos) == Some(&b'.') {
            int = false;
            self.pos += 1;
            self.digits()?;
        }
        if matches!(buf.get(self.pos), Some(b'e' | b'E')) {
            int = false;
            self.pos += 1;
            if matches!(buf.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok((int, neg, mag))
    }

    fn digits(&mut self) -> Result<()> {
        match self.buf.get(self.pos) {
            Some(b'0'..=b'9') => {}
            Some(_) => return Err(self.unexpected(self.pos, "a digit")),
            None => return Err(self.truncated()),
        }
        while let Some(b'0'..=b'9') = self.buf.get(self.pos) {
            self.pos += 1;
        }
        Ok(())
    }

    /// Skips one complete JSON value, validating it.
    pub fn skip_value(&mut self) -> Result<()> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string_body().map(|_| ())
            }
            b'{' => self.skip_object(),
            b'[' => self.skip_array(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => Err(self.unexpected(self.pos, "a JSON value")),
        }
    }

    fn skip_object(&mut self) -> Result<()> {
        self.enter()?;
        let mut b = self.peek()?;
        if b == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if b != b'"' {
                return Err(self.unexpected(self.pos, "an object key"));
            }
            self.pos += 1;
            self.string_body()?;
            if self.peek()? != b':' {
                return Err(self.unexpected(self.pos, "':'"));
            }
            self.pos += 1;
            self.skip_value()?;
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    b = self.peek()?;
                }
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected(self.pos, "',' or '}'")),
            }
        }
    }

    fn skip_array(&mut self) -> Result<()> {
        self.enter()?;
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.skip_value()?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected(self.pos, "',' or ']'")),
            }
        }
    }

    /// The type of the next value, without consuming it.
    pub fn peek_type(&mut self) -> Result<JsonType> {
        Ok(match self.peek()? {
            b'"' => JsonType::String,
            b'{' => JsonType::Object,
            b'[' => JsonType::Array,
            b't' | b'f' => JsonType::Bool,
            b'n' => JsonType::Null,
            b'-' | b'0'..=b'9' => {
                let save = self.pos;
                let r = self.number();
                self.pos = save;
                match r? {
                    (true, ..) => JsonType::Integer,
                    _ => JsonType::Float,
                }
            }
            _ => return Err(self.unexpected(self.pos, "a JSON value")),
        })
    }

    /// Skips a value of the wrong type and reports what it was.
    #[cold]
    fn wrong<T>(&mut self) -> Result<Got<T>> {
        let found = self.peek_type()?;
        let offset = self.pos;
        self.skip_value()?;
        Ok(Got::Wrong { found, offset })
    }

    /// Reads `null` or a string.
    #[inline]
    pub fn string_val(&mut self) -> Result<Got<Str>> {
        match self.peek()? {
            b'"' => Ok(Got::Val(self.string()?)),
            b'n' => self.literal(b"null").map(|_| Got::Null),
            _ => self.wrong(),
        }
    }

    /// Reads `null` or an integer that fits in `i64`.
    #[inline]
    pub fn int_val(&mut self) -> Result<Got<i64>> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => {
                let offset = self.pos;
                match self.number()? {
                    (false, ..) => Ok(Got::Wrong {
                        found: JsonType::Float,
                        offset,
                    }),
                    (true, _, None) => Ok(Got::OutOfRange { offset }),
                    (true, false, Some(m)) => Ok(i64::try_from(m)
                        .map(Got::Val)
                        .unwrap_or(Got::OutOfRange { offset })),
                    (true, true, Some(m)) => Ok(if m <= i64::MAX as u64 + 1 {
                        Got::Val((m as i64).wrapping_neg())
                    } else {
                        Got::OutOfRange { offset }
                    }),
                }
            }
            b'n' => self.literal(b"null").map(|_| Got::Null),
            _ => self.wrong(),
        }
    }

    /// Reads `null` or a boolean.
    #[inline]
    pub fn bool_val(&mut self) -> Result<Got<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|_| Got::Val(true)),
            b'f' => self.literal(b"false").map(|_| Got::Val(false)),
            b'n' => self.literal(b"null").map(|_| Got::Null),
            _ => self.wrong(),
        }
    }

    /// Enters an object: `Val(())` after consuming `{`, `Null` after
    /// consuming `null`, `Wrong` after skipping another value.
    #[inline]
    pub fn object_start(&mut self) -> Result<Got<()>> {
        self.container_start(b'{')
    }

    /// Enters an array, like [`object_start`](Self::object_start).
    #[inline]
    pub fn array_start(&mut self) -> Result<Got<()>> {
        self.container_start(b'[')
    }

    #[inline]
    fn container_start(&mut self, open: u8) -> Result<Got<()>> {
        match self.peek()? {
            b if b == open => self.enter().map(|_| Got::Val(())),
            b'n' => self.literal(b"null").map(|_| Got::Null),
            _ => self.wrong(),
        }
    }

    /// The next key of the object being walked (consuming the `:` after
    /// it), or `None` after consuming the closing `}`. `first` must be
    /// `true` for the first call on an object and is cleared.
    #[inline(always)]
    pub fn next_key(&mut self, first: &mut bool) -> Result<Option<Key<'a>>> {
        let mut b = self.peek()?;
        if *first {
            *first = false;
            if b == b'}' {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
        } else {
            match b {
                b',' => {
                    self.pos += 1;
                    b = self.peek()?;
                }
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(None);
                }
                _ => return Err(self.unexpected(self.pos, "',' or '}'")),
            }
        }
        if b != b'"' {
            return Err(self.unexpected(self.pos, "an object key"));
        }
        let s = self.string()?;
        if self.peek()? != b':' {
            return Err(self.unexpected(self.pos, "':'"));
        }
        self.pos += 1;
        let raw = s.raw(self.buf);
        if !s.escaped {
            return Ok(Some(Key::Raw(raw)));
        }
        Ok(Some(unescaped_key(raw)))
    }

    /// Whether the array being walked has another element (consuming the
    /// `,` before it), or `false` after consuming the closing `]`.
    #[inline]
    pub fn next_elem(&mut self, first: &mut bool) -> Result<bool> {
        let b = self.peek()?;
        if *first {
            *first = false;
            if b == b']' {
                self.pos += 1;
                self.depth -= 1;
                return Ok(false);
            }
            return Ok(true);
        }
        match b {
            b',' => {
                self.pos += 1;
                Ok(true)
            }
            b']' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(self.unexpected(self.pos, "',' or ']'")),
        }
    }

    /// After the top-level value: only whitespace may follow (in line
    /// mode: up to the newline, which is consumed). Returns the offset just
    /// past the consumed input.
    pub fn finish(&mut self) -> Result<usize> {
        self.ws();
        match self.buf.get(self.pos) {
            None => Ok(self.pos),
            Some(b'\n') if self.line_mode => Ok(self.pos + 1),
            Some(_) => Err(DecodeError::TrailingData { offset: self.pos }),
        }
    }
}

/// A key with escapes (rare): unescaped into the key's own buffer.
#[cold]
#[inline(never)]
fn unescaped_key(raw: &[u8]) -> Key<'_> {
    let mut out = [0u8; KEY_BUF];
    match unescape(raw, &mut out) {
        Some(n) => Key::Unescaped(raw, out, n as u8),
        None => Key::Long(raw),
    }
}

/// Unescapes validated JSON string content into `out`. Returns the length,
/// or `None` if it does not fit (or the input is not valid escaped content).
pub(crate) fn unescape(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut n = 0usize;
    let mut i = 0usize;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            *out.get_mut(n)? = b;
            n += 1;
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1)?;
        let c = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(raw.get(i + 2..i + 6)?)?;
                i += 6;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    if raw.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(raw.get(i + 2..i + 6)?)?;
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)?)
                } else {
                    hi
                };
                let ch = char::from_u32(cp)?;
                let len = ch.len_utf8();
                ch.encode_utf8(out.get_mut(n..n + len)?);
                n += len;
                continue;
            }
            _ => return None,
        };
        *out.get_mut(n)? = c;
        n += 1;
        i += 2;
    }
    Some(n)
}

fn hex4(h: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in h {
        v = v << 4 | (c as char).to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(s: &str) -> Result<usize> {
        let mut sc = Scanner::new(s.as_bytes(), 0, 64, false);
        sc.skip_value()?;
        sc.finish()
    }

    #[test]
    fn skips_valid_json() {
        for s in [
            r#"{}"#,
            r#"[]"#,
            r#"{"a":[1,-2.5e+3,true,false,null,"x\"y\\z\u00e9\ud83d\ude00"],"b":{"c":{}}}"#,
            " { \"a\" : 1 } \n",
            "\"héllo wörld, ünïcödé 😀\"",
            "-0",
            "0.5E-7",
        ] {
            assert_eq!(skip(s), Ok(s.len()), "{s}");
        }
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(matches!(
            skip("{\"a\":1"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(skip("{\"a\" 1}"), Err(DecodeError::Syntax { .. })));
        assert!(matches!(skip("[01]"), Err(DecodeError::Syntax { .. })));
        assert!(matches!(skip("[1.]"), Err(DecodeError::Syntax { .. })));
        assert!(matches!(
            skip("\"\\x\""),
            Err(DecodeError::InvalidEscape { offset: 1 })
        ));
        assert!(matches!(
            skip("\"\\ud800\""),
            Err(DecodeError::InvalidEscape { offset: 1 })
        ));
        assert!(matches!(
            skip("\"\\udc00\""),
            Err(DecodeError::InvalidEscape { offset: 1 })
        ));
        assert!(matches!(
            skip("\"a\tb\""),
            Err(DecodeError::Syntax { offset: 2, .. })
        ));
        assert!(matches!(skip("[tru]"), Err(DecodeError::Syntax { .. })));
        assert!(matches!(
            skip("{} x"),
            Err(DecodeError::TrailingData { offset: 3 })
        ));
        let bad_utf8 = [b'"', b'a', 0xC3, 0x28, b'"'];
        let mut sc = Scanner::new(&bad_utf8, 0, 64, false);
        assert_eq!(sc.skip_value(), Err(DecodeError::InvalidUtf8 { offset: 2 }));
        let overlong = [b'"', 0xC0, 0xAF, b'"'];
        let mut sc = Scanner::new(&overlong, 0, 64, false);
        assert_eq!(sc.skip_value(), Err(DecodeError::InvalidUtf8 { offset: 1 }));
        let surrogate = [b'"', 0xED, 0xA0, 0x80, b'"'];
        let mut sc = Scanner::new(&surrogate, 0, 64, false);
        assert_eq!(sc.skip_value(), Err(DecodeError::InvalidUtf8 { offset: 1 }));
    }

    #[test]
    fn depth_limit() {
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert_eq!(skip(&ok), Ok(128));
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(
            skip(&deep),
            Err(DecodeError::TooDeep {
                offset: 64,
                limit: 64
            })
        );
    }

    #[test]
    fn line_mode_newline_truncates() {
        let s = b"{\"a\":\n{\"b\":1}";
        let mut sc = Scanner::new(s, 0, 64, true);
        assert_eq!(sc.skip_value(), Err(DecodeError::Truncated { offset: 5 }));
        let s = b"{\"a\":\"x\ny\"}";
        let mut sc = Scanner::new(s, 0, 64, true);
        assert_eq!(sc.skip_value(), Err(DecodeError::Truncated { offset: 7 }));
        let s = b"{\"a\":1} \r\nnext";
        let mut sc = Scanner::new(s, 0, 64, true);
        sc.skip_value().unwrap();
        assert_eq!(sc.finish(), Ok(10));
    }

    #[test]
    fn hash_ignores_inter_token_whitespace_only() {
        let h = |s: &str| {
            let mut sc = Scanner::new(s.as_bytes(), 0, 64, false);
            sc.start_hash();
            sc.skip_value().unwrap();
            sc.finish_hash()
        };
        let compact = r#"{"a":[1,2],"b":"x y"}"#;
        let pretty = "{\n  \"a\": [ 1, 2 ],\r\n\t\"b\" : \"x y\"\n}";
        assert_eq!(h(compact), h(pretty));
        assert_ne!(h(compact), h(r#"{"a":[1,2],"b":"xy"}"#));
        assert_ne!(h(compact), h(r#"{"b":"x y","a":[1,2]}"#));
    }

    #[test]
    fn unescapes() {
        let mut out = [0u8; 32];
        let n = unescape(br#"a\"b\\c\/\n\u00e9\ud83d\ude00"#, &mut out).unwrap();
        assert_eq!(&out[..n], "a\"b\\c/\né😀".as_bytes());
        assert_eq!(unescape(b"abcdef", &mut [0u8; 3]), None);
    }

    #[test]
    fn int_values() {
        let read = |s: &str| Scanner::new(s.as_bytes(), 0, 8, false).int_val().unwrap();
        assert_eq!(read("42"), Got::Val(42));
        assert_eq!(read("-9223372036854775808"), Got::Val(i64::MIN));
        assert_eq!(read("9223372036854775808"), Got::OutOfRange { offset: 0 });
        assert_eq!(
            read("99999999999999999999999"),
            Got::OutOfRange { offset: 0 }
        );
        assert_eq!(
            read("1.5"),
            Got::Wrong {
                found: JsonType::Float,
                offset: 0
            }
        );
        assert_eq!(
            read("\"3\""),
            Got::Wrong {
                found: JsonType::String,
                offset: 0
            }
        );
        assert_eq!(read("null"), Got::Null);
    }
}
