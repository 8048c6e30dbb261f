//! [`WatchDecoder`]: Kubernetes watch events and objects → [`Record`]s.

use crate::sources::hash::{Fnv1a, KEY_SEPARATOR};
use crate::sources::intern::{Interner, InternerConfig, Resolver, Symbol};
use crate::sources::k8s::error::{DecodeError, DecodeStats, JsonType};
use crate::sources::k8s::extract::{self, text_eq, Extracted, LabelScratch, Ready};
use crate::sources::k8s::scan::{unescape, Got, Scanner, Str};
use crate::sources::k8s::time::parse_rfc3339;
use crate::sources::record::{FieldId, FieldValue, Kind, Op, Record, RecordFlags};
use crate::sources::wallclock::IngestClock;

type Result<T> = core::result::Result<T, DecodeError>;

/// Default [`DecoderConfig::max_depth`].
pub const DEFAULT_MAX_DEPTH: u32 = 64;
/// Default [`DecoderConfig::max_object_bytes`]: 1.5 MiB, etcd's default
/// request size limit, so no object a real API server stores is refused.
pub const DEFAULT_MAX_OBJECT_BYTES: usize = 3 << 19;
/// Default [`DecoderConfig::max_string_bytes`].
pub const DEFAULT_MAX_STRING_BYTES: usize = 1024;
/// Longest `resourceVersion` kept as the resume point.
pub const MAX_RESUME_VERSION_BYTES: usize = 64;

/// What to do with objects of a kind the decoder does not model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownKinds {
    /// Fail with [`DecodeError::UnknownKind`] (counted).
    #[default]
    Reject,
    /// Produce a record of [`Kind::Unknown`] with a [`FieldId::KindName`]
    /// field, a spec hash and the labels (for custom resources).
    Accept,
}

/// Limits and policies of a [`WatchDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Deepest nesting of objects/arrays accepted; deeper input fails with
    /// [`DecodeError::TooDeep`]. The deepest fixture (a full Deployment) is
    /// 14 levels.
    pub max_depth: u32,
    /// Largest input accepted per event, object or document (for lines:
    /// per line, without its line ending); larger input fails with
    /// [`DecodeError::TooLarge`]. Clamped to `u32::MAX`.
    pub max_object_bytes: usize,
    /// Longest string the decoder interns (names, namespaces, reasons, …),
    /// after unescaping; longer ones fail with [`DecodeError::StringTooLong`].
    /// Kubernetes itself limits names to 253 bytes.
    pub max_string_bytes: usize,
    /// Policy for kinds other than Pod, Node, Deployment, Service,
    /// ConfigMap, Event and Status.
    pub unknown_kinds: UnknownKinds,
    /// Capacity of the decoder's interner.
    pub interner: InternerConfig,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_string_bytes: DEFAULT_MAX_STRING_BYTES,
            unknown_kinds: UnknownKinds::Reject,
            interner: InternerConfig::default(),
        }
    }
}

/// The outcome of decoding one watch event or object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoded {
    /// ADDED / MODIFIED / DELETED, or an object or list item.
    Change(Record),
    /// BOOKMARK: the record carries the new resource version (and
    /// [`RecordFlags::INITIAL_EVENTS_END`] when so annotated); the decoder's
    /// [`resume_version`](WatchDecoder::resume_version) has advanced.
    Bookmark(Record),
    /// ERROR (or a `Status` object) with code 410 Gone: the watch's
    /// resource version is too old; the caller must list again and restart
    /// the watch from the list's resource version.
    Relist(Record),
    /// Any other ERROR event or `Status` object; the record carries
    /// [`FieldId::StatusCode`] and [`FieldId::Reason`] when present. Its op
    /// is [`Op::Error`], except for a `Status` with `status: "Success"`
    /// that did not come in an `ERROR` event (e.g. a DELETE response):
    /// that keeps the op it was decoded with.
    Status(Record),
}

impl Decoded {
    /// The record.
    pub fn record(&self) -> &Record {
        match self {
            Decoded::Change(r) | Decoded::Bookmark(r) | Decoded::Relist(r) | Decoded::Status(r) => {
                r
            }
        }
    }
}

/// One input line handed to the [`WatchDecoder::decode_lines`] callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number within this call.
    pub number: u64,
    /// Offset of the line's first byte in the input.
    pub offset: usize,
    /// The line, without its `\n` (a `\r` before it is included).
    pub bytes: &'a [u8],
}

/// Summary of [`WatchDecoder::decode_document`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocumentSummary {
    /// Objects handed to the callback (successes and failures).
    pub objects: usize,
    /// How many of them failed.
    pub errors: usize,
}

/// Decodes Kubernetes watch streams and objects into [`Record`]s without
/// building a DOM or allocating per event.
///
/// One decoder owns one [`Interner`] (it is its only writer); give
/// [`resolver`](Self::resolver)s to other threads to turn symbols back into
/// strings. Every decode call updates [`stats`](Self::stats). A failed
/// input never affects the next one.
pub struct WatchDecoder {
    config: DecoderConfig,
    interner: Interner,
    stats: DecodeStats,
    next_seq: u64,
    clock: IngestClock,
    resume: [u8; MAX_RESUME_VERSION_BYTES],
    resume_len: Option<u8>,
    scratch: Box<[u8]>,
    /// Where the walk collects `metadata.labels`.
    labels: LabelScratch,
}

impl Default for WatchDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl core::fmt::Debug for WatchDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WatchDecoder")
            .field("config", &self.config)
            .field("interner", &self.interner)
            .field("stats", &self.stats)
            .field("next_seq", &self.next_seq)
            .field("resume_version", &self.resume_version())
            .finish()
    }
}

impl WatchDecoder {
    /// A decoder with the given limits. Allocates the interner, a
    /// `max_string_bytes` scratch buffer, `2 × max_string_bytes` for label
    /// strings and a [`LabelSet`](crate::sources::labels::LabelSet);
    /// nothing after that.
    pub fn new(mut config: DecoderConfig) -> WatchDecoder {
        config.max_object_bytes = config.max_object_bytes.min(u32::MAX as usize);
        WatchDecoder {
            interner: Interner::new(config.interner),
            stats: DecodeStats::default(),
            next_seq: 0,
            clock: IngestClock::wall(),
            resume: [0; MAX_RESUME_VERSION_BYTES],
            resume_len: None,
            scratch: vec![0u8; config.max_string_bytes].into_boxed_slice(),
            labels: LabelScratch::new(config.max_string_bytes),
            config,
        }
    }

    /// Replaces the ingest clock (default: wall time in ns since the Unix
    /// epoch, read as `SystemTime` at most every 50 ms and extrapolated
    /// with the engine's TSC clock in between: see
    /// [`wallclock`](crate::sources::wallclock)), e.g. with a fixed or test
    /// clock.
    pub fn with_clock(mut self, clock: fn() -> i64) -> WatchDecoder {
        self.clock = IngestClock::custom(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Counters since construction.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// The interner the decoder writes.
    pub fn interner(&self) -> &Interner {
        &self.interner
    }

    /// The interner, to add strings before decoding starts (rule strings, for example).
    pub fn interner_mut(&mut self) -> &mut Interner {
        &mut self.interner
    }

    /// A lock-free reader of the decoder's interner for another thread.
    pub fn resolver(&self) -> Resolver {
        self.interner.resolver()
    }

    /// Resolves a symbol on the decoder's thread.
    pub fn resolve(&self, sym: Symbol) -> Option<&str> {
        self.interner.resolve(sym)
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The `resourceVersion` to resume a watch from: that of the last
    /// decoded change, bookmark or list (as written, up to
    /// [`MAX_RESUME_VERSION_BYTES`] bytes; longer versions are not kept).
    pub fn resume_version(&self) -> Option<&str> {
        let n = self.resume_len? as usize;
        core::str::from_utf8(&self.resume[..n]).ok()
    }

    /// Counts an error found outside the decoder (for example by a framing
    /// layer that refused an oversize value) in [`stats`](Self::stats).
    pub fn count_error(&mut self, e: &DecodeError) {
        self.stats.errors.count(e);
    }

    /// Forgets the resume point (after a re-list was started).
    pub fn clear_resume_version(&mut self) {
        self.resume_len = None;
    }

    // ---------------------------------------------------------------------
    // Entry points
    // ---------------------------------------------------------------------

    /// Decodes one watch event `{"type": …, "object": {…}}`. The input is
    /// one JSON value; any whitespace (also newlines) is allowed around and
    /// inside it, so pretty-printed events decode too.
    pub fn decode_event(&mut self, input: &[u8]) -> Result<Decoded> {
        let mut x = Extracted::default();
        let r = self
            .walk_whole(input, true, &mut x)
            .and_then(|()| self.build_event(input, &x));
        self.account(&r);
        r
    }

    /// Decodes one bare object (as returned by a GET, or as stored in the
    /// object fixtures) and reports it with operation `op`. `Status`
    /// objects become [`Decoded::Relist`] (code 410) or [`Decoded::Status`]
    /// with [`Op::Error`] (with `op` if their `status` is `"Success"`).
    pub fn decode_object(&mut self, input: &[u8], op: Op) -> Result<Decoded> {
        let mut x = Extracted::default();
        let r = self
            .walk_whole(input, false, &mut x)
            .and_then(|()| self.build(input, op, x.kind, &x));
        self.account(&r);
        r
    }

    /// Decodes newline-delimited watch events (`\n` or `\r\n`), calling
    /// `f` once per non-empty line, in order. Whitespace-only lines are
    /// skipped and counted in [`DecodeStats::empty_lines`]. A bad line is
    /// reported to `f` and decoding continues with the next line. The last
    /// line needs no terminating newline. Returns the number of lines seen.
    pub fn decode_lines<F>(&mut self, input: &[u8], f: F) -> u64
    where
        F: FnMut(Line<'_>, Result<Decoded>),
    {
        self.lines(input, false, f).1
    }

    /// Like [`decode_lines`](Self::decode_lines) for a buffer that may end
    /// in the middle of a line (a read from a pipe or a chunked HTTP body):
    /// decodes only lines terminated by `\n` and returns the number of
    /// bytes consumed; keep `input[consumed..]` and prepend it to the next
    /// read.
    pub fn decode_complete_lines<F>(&mut self, input: &[u8], f: F) -> usize
    where
        F: FnMut(Line<'_>, Result<Decoded>),
    {
        self.lines(input, true, f).0
    }

    /// Decodes a whole document: a `*List` object (`{"kind": "PodList",
    /// "items": […]}`; items without `kind` take the list's kind minus
    /// `List`), a JSON array of objects, or a single object. Each object is
    /// reported to `f` with operation `op`. A list's
    /// `metadata.resourceVersion` becomes the resume point.
    ///
    /// Errors that make the document unreadable (JSON syntax, truncation,
    /// size, depth) are returned and nothing is reported; an item whose
    /// content is bad (wrong field types, unknown kind, …) is reported to
    /// `f` as an error and the other items are still decoded.
    pub fn decode_document<F>(&mut self, input: &[u8], op: Op, mut f: F) -> Result<DocumentSummary>
    where
        F: FnMut(Result<Decoded>),
    {
        let r = self.document(input, op, &mut f);
        if let Err(e) = &r {
            self.stats.errors.count(e);
        }
        r
    }

    // ---------------------------------------------------------------------
    // Drivers
    // ---------------------------------------------------------------------

    /// Checks the size, finds the top-level object and walks it (as an
    /// envelope when `envelope`), leaving the fields in `x`.
    fn walk_whole(&mut self, input: &[u8], envelope: bool, x: &mut Extracted) -> Result<()> {
        let mut sc = Scanner::new(input, 0, self.config.max_depth, false);
        let first = match sc.peek() {
            Ok(b) => b,
            Err(_) => return Err(DecodeError::Empty),
        };
        if input.len() > self.config.max_object_bytes {
            return Err(DecodeError::TooLarge {
                len: input.len(),
                limit: self.config.max_object_bytes,
            });
        }
        self.walk_top(&mut sc, first, envelope, x)?;
        sc.finish()?;
        Ok(())
    }

    /// Walks the top-level value at the scanner (first byte `first`).
    fn walk_top(
        &mut self,
        sc: &mut Scanner<'_>,
        first: u8,
        envelope: bool,
        x: &mut Extracted,
    ) -> Result<()> {
        let offset = sc.pos();
        match first {
            b'{' => {}
            b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => {
                return Err(not_an_object(sc, first))
            }
            byte => return Err(DecodeError::NotJson { offset, byte }),
        }
        // Enter the object: object_start cannot fail on `{` except for depth.
        sc.object_start()?;
        if envelope {
            extract::envelope(sc, x, &mut self.labels)
        } else {
            extract::object_body(sc, x, &mut self.labels)
        }
    }

    fn build_event(&mut self, buf: &[u8], x: &Extracted) -> Result<Decoded> {
        let t = x
            .event_type
            .ok_or(DecodeError::MissingField { field: "type" })?;
        let op = if text_eq(buf, t, b"ADDED") {
            Op::Added
        } else if text_eq(buf, t, b"MODIFIED") {
            Op::Modified
        } else if text_eq(buf, t, b"DELETED") {
            Op::Deleted
        } else if text_eq(buf, t, b"BOOKMARK") {
            Op::Bookmark
        } else if text_eq(buf, t, b"ERROR") {
            Op::Error
        } else {
            return Err(DecodeError::UnknownEventType { offset: t.offset() });
        };
        if !x.object_seen {
            return Err(DecodeError::MissingField { field: "object" });
        }
        self.build(buf, op, x.kind, x)
    }

    /// Decodes the line starting at `start`. Returns the outcome and the
    /// start of the next line.
    fn line_at(&mut self, input: &[u8], start: usize) -> (Result<Decoded>, usize) {
        let limit = self.config.max_object_bytes;
        let cap = input.len().min(start.saturating_add(limit));
        let capped = &input[..cap];
        let mut sc = Scanner::new(capped, start, self.config.max_depth, true);
        let mut x = Extracted::default();
        let walked = match sc.peek() {
            Ok(first) => self
                .walk_top(&mut sc, first, true, &mut x)
                .and_then(|()| sc.finish()),
            Err(e) => Err(e),
        };
        match walked {
            Ok(mut end) => {
                // `end == cap` after the line's newline was consumed (it
                // was the last byte under the cap) means the line is
                // complete: only a line cut by the cap needs this check.
                if end == cap && cap < input.len() && input[cap - 1] != b'\n' {
                    // The value ended exactly at the size cap: only
                    // whitespace may remain on this line.
                    let mut p = cap;
                    while p < input.len() && matches!(input[p], b' ' | b'\t' | b'\r') {
                        p += 1;
                    }
                    match input.get(p) {
                        None => end = p,
                        Some(b'\n') => end = p + 1,
                        Some(_) => {
                            let next = next_line(input, p);
                            let len = line_len(input, start, next);
                            return (Err(DecodeError::TooLarge { len, limit }), next);
                        }
                    }
                }
                let r = self.build_event(capped, &x).map_err(|e| e.rebased(start));
                (r, end)
            }
            Err(e) => {
                // In line mode the scanner never moves past the line's
                // newline, so the next line starts after the first newline
                // at or after where it stopped.
                let next = next_line(input, sc.pos());
                let e = match e {
                    DecodeError::Truncated { offset }
                        if offset == cap && cap < input.len() && input[cap] != b'\n' =>
                    {
                        DecodeError::TooLarge {
                            len: line_len(input, start, next),
                            limit,
                        }
                    }
                    e => e.rebased(start),
                };
                (Err(e), next)
            }
        }
    }

    fn lines<F>(&mut self, input: &[u8], only_complete: bool, mut f: F) -> (usize, u64)
    where
        F: FnMut(Line<'_>, Result<Decoded>),
    {
        let mut pos = 0usize;
        let mut number = 0u64;
        while pos < input.len() {
            // Empty / whitespace-only line?
            let mut p = pos;
            while p < input.len() && matches!(input[p], b' ' | b'\t' | b'\r') {
                p += 1;
            }
            if p == input.len() && only_complete {
                break;
            }
            if p == input.len() || input[p] == b'\n' {
                number += 1;
                self.stats.lines += 1;
                self.stats.empty_lines += 1;
                pos = p + 1;
                continue;
            }
            let (r, next) = self.line_at(input, pos);
            let terminated = next > 0 && input[next - 1] == b'\n';
            if only_complete && !terminated {
                break;
            }
            number += 1;
            self.stats.lines += 1;
            self.account(&r);
            let end = if terminated { next - 1 } else { next };
            f(
                Line {
                    number,
                    offset: pos,
                    bytes: &input[pos..end],
                },
                r,
            );
            pos = next;
        }
        (pos.min(input.len()), number)
    }

    fn document<F>(&mut self, input: &[u8], op: Op, f: &mut F) -> Result<DocumentSummary>
    where
        F: FnMut(Result<Decoded>),
    {
        let mut sc = Scanner::new(input, 0, self.config.max_depth, false);
        let first = sc.peek().map_err(|_| DecodeError::Empty)?;
        if input.len() > self.config.max_object_bytes {
            return Err(DecodeError::TooLarge {
                len: input.len(),
                limit: self.config.max_object_bytes,
            });
        }
        let is_array = match first {
            b'[' => true,
            b'{' => false,
            b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => {
                return Err(not_an_object(&mut sc, first))
            }
            byte => {
                return Err(DecodeError::NotJson {
                    offset: sc.pos(),
                    byte,
                })
            }
        };
        // Validate the whole document first, so that syntax errors are
        // reported before any item is.
        {
            let mut check = Scanner::new(input, 0, self.config.max_depth, false);
            check.skip_value()?;
            check.finish()?;
        }
        let mut summary = DocumentSummary::default();
        if is_array {
            sc.array_start()?;
            let mut more = true;
            while sc.next_elem(&mut more)? {
                self.document_item(&mut sc, input, op, None, f, &mut summary)?;
            }
        } else {
            // Pass 1: the list's kind, resourceVersion and items position.
            let top = sc.pos();
            sc.object_start()?;
            let mut list_kind: Option<Str> = None;
            let mut list_rv: Option<Str> = None;
            let mut items_at: Option<usize> = None;
            let mut k = true;
            while let Some(key) = sc.next_key(&mut k)? {
                match key.bytes() {
                    b"kind" => {
                        if let Got::Val(s) = sc.string_val()? {
                            list_kind = Some(s);
                        }
                    }
                    b"items" => {
                        sc.ws();
                        items_at = Some(sc.pos());
                        sc.skip_value()?;
                    }
                    b"metadata" => list_rv = list_resource_version(&mut sc)?,
                    _ => sc.skip_value()?,
                }
            }
            let Some(items_at) = items_at else {
                // Not a list: a single object.
                let mut one = Scanner::new(input, top, self.config.max_depth, false);
                self.document_item(&mut one, input, op, None, f, &mut summary)?;
                return Ok(summary);
            };
            // Items take the list kind minus "List" when they have none.
            let item_kind = list_kind.and_then(|s| {
                let raw = s.raw(input);
                (!s.escaped && raw.len() > 4 && raw.ends_with(b"List")).then_some(Str {
                    start: s.start,
                    end: s.end - 4,
                    escaped: false,
                })
            });
            let mut items = Scanner::new(input, items_at, self.config.max_depth, false);
            match items.array_start()? {
                Got::Val(()) => {
                    let mut more = true;
                    while items.next_elem(&mut more)? {
                        self.document_item(&mut items, input, op, item_kind, f, &mut summary)?;
                    }
                }
                Got::Null => {}
                Got::Wrong { found, offset } => {
                    return Err(DecodeError::WrongType {
                        field: "items",
                        offset,
                        expected: JsonType::Array,
                        found,
                    })
                }
                Got::OutOfRange { offset } => {
                    return Err(DecodeError::WrongType {
                        field: "items",
                        offset,
                        expected: JsonType::Array,
                        found: JsonType::Integer,
                    })
                }
            }
            if let Some(rv) = list_rv {
                self.set_resume(input, rv);
            }
        }
        Ok(summary)
    }

    /// Decodes the object at the scanner as one document item.
    fn document_item<F>(
        &mut self,
        sc: &mut Scanner<'_>,
        input: &[u8],
        op: Op,
        default_kind: Option<Str>,
        f: &mut F,
        summary: &mut DocumentSummary,
    ) -> Result<()>
    where
        F: FnMut(Result<Decoded>),
    {
        let offset = sc.pos();
        let depth = sc.depth();
        let r = match sc.object_start()? {
            Got::Val(()) => {
                let mut x = Extracted::default();
                match extract::object_body(sc, &mut x, &mut self.labels) {
                    Ok(()) => self.build(input, op, x.kind.or(default_kind), &x),
                    Err(e) => {
                        // The document is valid JSON (checked first), so
                        // this is the item's content (e.g. a wrong type in
                        // `metadata`): report it as the item's error and
                        // go on after the item.
                        sc.skip_from(offset, depth)?;
                        Err(e)
                    }
                }
            }
            Got::Null => Err(DecodeError::NotAnObject {
                offset,
                found: JsonType::Null,
            }),
            Got::Wrong { found, offset } => Err(DecodeError::NotAnObject { offset, found }),
            Got::OutOfRange { offset } => Err(DecodeError::NotAnObject {
                offset,
                found: JsonType::Integer,
            }),
        };
        self.account(&r);
        summary.objects += 1;
        summary.errors += usize::from(r.is_err());
        f(r);
        Ok(())
    }

    // ---------------------------------------------------------------------
    // Record building
    // ---------------------------------------------------------------------

    fn set_resume(&mut self, buf: &[u8], rv: Str) {
        let raw = rv.raw(buf);
        if !rv.escaped && raw.len() <= MAX_RESUME_VERSION_BYTES {
            self.resume[..raw.len()].copy_from_slice(raw);
            self.resume_len = Some(raw.len() as u8);
        }
    }

    /// Builds the outcome from `x`. `kind` is the object's kind span
    /// (or, for a list item without one, the list's item kind).
    fn build(&mut self, buf: &[u8], op: Op, kind: Option<Str>, x: &Extracted) -> Result<Decoded> {
        let kind_span = kind.ok_or(DecodeError::MissingField { field: "kind" })?;
        let mut kind_buf = [0u8; 128];
        let kind_bytes = text(buf, kind_span, &mut kind_buf, "kind")?;
        let kind = Kind::from_k8s(kind_bytes);

        if op == Op::Error || kind == Kind::Status {
            return self.build_status(buf, op, kind, kind_bytes, x);
        }
        if kind == Kind::Unknown && self.config.unknown_kinds == UnknownKinds::Reject {
            return Err(DecodeError::UnknownKind {
                offset: kind_span.offset(),
            });
        }
        if let Some(e) = x.deferred(kind) {
            return Err(e);
        }

        let mut rec = Record::new(kind, op);
        let mut key = Fnv1a::new();
        key.write(kind_bytes);
        key.write_u8(KEY_SEPARATOR);
        rec.namespace = self.intern(
            buf,
            x.namespace,
            "metadata.namespace",
            &mut rec,
            Some(&mut key),
        )?;
        key.write_u8(KEY_SEPARATOR);
        rec.name = self.intern(buf, x.name, "metadata.name", &mut rec, Some(&mut key))?;
        rec.key = key.finish();
        if let Some(rv) = x.resource_version {
            match parse_u64(rv.raw(buf)) {
                Some(v) if !rv.escaped => rec.resource_version = v,
                _ => rec.flags.insert(RecordFlags::RESOURCE_VERSION_OPAQUE),
            }
        }
        if x.deleting {
            rec.flags.insert(RecordFlags::DELETING);
        }

        if op == Op::Bookmark {
            if x.initial_events_end {
                rec.flags.insert(RecordFlags::INITIAL_EVENTS_END);
            }
            self.finish_record(&mut rec);
            if let Some(rv) = x.resource_version {
                self.set_resume(buf, rv);
            }
            return Ok(Decoded::Bookmark(rec));
        }

        self.source_time(buf, kind, x, &mut rec)?;
        match kind {
            Kind::Pod => self.pod_fields(buf, x, &mut rec)?,
            Kind::Node => {
                node_fields(x, &mut rec);
                self.push_hashes(x, x.spec_hash, &mut rec);
            }
            Kind::Deployment => {
                deployment_fields(x, &mut rec);
                self.push_hashes(x, x.spec_hash, &mut rec);
            }
            Kind::Service => {
                if x.service_type.is_some() {
                    let t = self.intern(buf, x.service_type, "spec.type", &mut rec, None)?;
                    rec.push(FieldId::ServiceType, FieldValue::Sym(t));
                }
                self.push_hashes(x, x.spec_hash, &mut rec);
            }
            Kind::ConfigMap => {
                rec.push(
                    FieldId::Immutable,
                    FieldValue::Bool(x.immutable.unwrap_or(false)),
                );
                rec.push(FieldId::DataCount, FieldValue::I64(x.data_count));
                let data = match (x.data_hash, x.binary_data_hash) {
                    (None, None) => None,
                    (d, b) => Some(crate::sources::hash::fmix64(
                        d.unwrap_or(0) ^ b.unwrap_or(0).rotate_left(32),
                    )),
                };
                self.push_hashes(x, data, &mut rec);
            }
            Kind::Event => self.event_fields(buf, x, &mut rec)?,
            Kind::Unknown | Kind::Status | Kind::Tick | Kind::Sensor => {
                let name = self.intern_bytes(kind_bytes, kind_span, "kind", &mut rec)?;
                rec.push(FieldId::KindName, FieldValue::Sym(name));
                self.push_hashes(x, x.spec_hash, &mut rec);
            }
        }
        self.finish_record(&mut rec);
        if let Some(rv) = x.resource_version {
            self.set_resume(buf, rv);
        }
        Ok(Decoded::Change(rec))
    }

    /// A watch `ERROR` event (whatever its object) or a `Status` object.
    ///
    /// The record's op is [`Op::Error`] except for a `Status` whose
    /// `status` is `"Success"` outside an `ERROR` event (the body of a
    /// successful DELETE, or a list item): that is not an error and keeps
    /// the caller's op. An `ERROR` event stays `Op::Error` even with a
    /// `Success` body. Only an error (not a success) with code 410 is a
    /// [`Decoded::Relist`].
    fn build_status(
        &mut self,
        buf: &[u8],
        op: Op,
        kind: Kind,
        kind_bytes: &[u8],
        x: &Extracted,
    ) -> Result<Decoded> {
        if let Some(e) = x.deferred(Kind::Status) {
            return Err(e);
        }
        let success = op != Op::Error
            && kind == Kind::Status
            && x.status_text.is_some_and(|t| text_eq(buf, t, b"Success"));
        let mut rec = Record::new(kind, if success { op } else { Op::Error });
        rec.key = crate::sources::hash::key_of(kind_bytes, b"", b"");
        if let Some(code) = x.code {
            rec.push(FieldId::StatusCode, FieldValue::I64(code));
        }
        if x.reason.is_some() {
            let r = self.intern(buf, x.reason, "reason", &mut rec, None)?;
            rec.push(FieldId::Reason, FieldValue::Sym(r));
        }
        self.finish_record(&mut rec);
        Ok(if x.code == Some(410) && !success {
            Decoded::Relist(rec)
        } else {
            Decoded::Status(rec)
        })
    }

    fn source_time(
        &mut self,
        buf: &[u8],
        kind: Kind,
        x: &Extracted,
        rec: &mut Record,
    ) -> Result<()> {
        let chosen = if kind == Kind::Event {
            [
                (x.series_last, "series.lastObservedTime"),
                (x.last_timestamp, "lastTimestamp"),
                (x.event_time, "eventTime"),
                (x.first_timestamp, "firstTimestamp"),
                (x.creation, "metadata.creationTimestamp"),
            ]
            .into_iter()
            .find_map(|(s, f)| s.map(|s| (s, f)))
        } else if let Some(t) = x.last_write {
            rec.source_ns = t.ns;
            if t.clamped {
                rec.flags.insert(RecordFlags::SOURCE_TIME_CLAMPED);
            }
            return Ok(());
        } else {
            x.creation.map(|s| (s, "metadata.creationTimestamp"))
        };
        if let Some((s, field)) = chosen {
            let t = (!s.escaped)
                .then(|| parse_rfc3339(s.raw(buf)))
                .flatten()
                .ok_or(DecodeError::BadTimestamp {
                    field,
                    offset: s.offset(),
                })?;
            rec.source_ns = t.ns;
            if t.clamped {
                rec.flags.insert(RecordFlags::SOURCE_TIME_CLAMPED);
            }
        }
        Ok(())
    }

    fn pod_fields(&mut self, buf: &[u8], x: &Extracted, rec: &mut Record) -> Result<()> {
        if x.phase.is_some() {
            let p = self.intern(buf, x.phase, "status.phase", rec, None)?;
            rec.push(FieldId::Phase, FieldValue::Sym(p));
        }
        push_ready(x, rec);
        rec.push(FieldId::RestartsTotal, FieldValue::I64(x.restarts_total));
        rec.push(FieldId::RestartsMax, FieldValue::I64(x.restarts_max));
        if x.waiting.is_some() {
            let w = self.intern(
                buf,
                x.waiting,
                "status.containerStatuses[].state.waiting.reason",
                rec,
                None,
            )?;
            rec.push(FieldId::WaitingReason, FieldValue::Sym(w));
        }
        if x.node_name.is_some() {
            let n = self.intern(buf, x.node_name, "spec.nodeName", rec, None)?;
            rec.push(FieldId::NodeName, FieldValue::Sym(n));
        }
        self.push_hashes(x, x.spec_hash, rec);
        Ok(())
    }

    fn event_fields(&mut self, buf: &[u8], x: &Extracted, rec: &mut Record) -> Result<()> {
        if x.reason.is_some() {
            let r = self.intern(buf, x.reason, "reason", rec, None)?;
            rec.push(FieldId::Reason, FieldValue::Sym(r));
        }
        if x.type_field.is_some() {
            let t = self.intern(buf, x.type_field, "type", rec, None)?;
            rec.push(FieldId::EventType, FieldValue::Sym(t));
        }
        if x.regarding_kind.is_some() || x.regarding_name.is_some() {
            let mut key = Fnv1a::new();
            let k = self.intern(buf, x.regarding_kind, "regarding.kind", rec, Some(&mut key))?;
            key.write_u8(KEY_SEPARATOR);
            let mut ns_buf = [0u8; 256];
            let ns = match x.regarding_namespace {
                Some(s) => text(buf, s, &mut ns_buf, "regarding.namespace")?,
                None => &[],
            };
            key.write(ns);
            key.write_u8(KEY_SEPARATOR);
            let n = self.intern(buf, x.regarding_name, "regarding.name", rec, Some(&mut key))?;
            rec.push(FieldId::RegardingKind, FieldValue::Sym(k));
            rec.push(FieldId::RegardingName, FieldValue::Sym(n));
            rec.push(FieldId::RegardingKey, FieldValue::I64(key.finish() as i64));
        }
        // An Event object stands for at least one occurrence.
        rec.push(FieldId::Count, FieldValue::I64(x.count.unwrap_or(1)));
        Ok(())
    }

    /// Pushes `SpecHash` (if any) and the labels: `Labels` (the interned
    /// canonical text), or `LabelsHash` when the set has no canonical
    /// text or the interner is full (see [`crate::sources::labels`]).
    fn push_hashes(&mut self, x: &Extracted, spec: Option<u64>, rec: &mut Record) {
        if let Some(h) = spec {
            rec.push(FieldId::SpecHash, FieldValue::I64(h as i64));
        }
        if !x.labels_seen {
            rec.push(FieldId::Labels, FieldValue::Sym(Symbol::EMPTY));
            return;
        }
        let interned = match self.labels.set.canonical() {
            Some(text) => {
                let sym = self.interner.intern(text);
                if sym.is_overflow() {
                    rec.flags.insert(RecordFlags::SYMBOL_OVERFLOW);
                    self.stats.symbol_overflows += 1;
                    None
                } else {
                    Some(sym)
                }
            }
            None => None,
        };
        match interned {
            Some(sym) => {
                rec.push(FieldId::Labels, FieldValue::Sym(sym));
            }
            None => {
                self.stats.labels_hashed += 1;
                let h = self.labels.set.hash();
                rec.push(FieldId::LabelsHash, FieldValue::I64(h as i64));
            }
        }
    }

    fn finish_record(&mut self, rec: &mut Record) {
        rec.seq = self.next_seq;
        self.next_seq += 1;
        rec.ingest_ns = self.clock.now();
    }

    /// Interns the string `s` (empty if `None`), feeding its unescaped
    /// bytes to `key` if given.
    fn intern(
        &mut self,
        buf: &[u8],
        s: Option<Str>,
        field: &'static str,
        rec: &mut Record,
        key: Option<&mut Fnv1a>,
    ) -> Result<Symbol> {
        let Some(s) = s else {
            return Ok(Symbol::EMPTY);
        };
        let limit = self.config.max_string_bytes;
        let raw = s.raw(buf);
        let bytes: &[u8] = if !s.escaped {
            if raw.len() > limit {
                return Err(DecodeError::StringTooLong {
                    field,
                    offset: s.offset(),
                    limit,
                });
            }
            raw
        } else {
            let n = unescape(raw, &mut self.scratch).ok_or(DecodeError::StringTooLong {
                field,
                offset: s.offset(),
                limit,
            })?;
            &self.scratch[..n]
        };
        if let Some(k) = key {
            k.write(bytes);
        }
        let text = core::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
            offset: s.start as usize + e.valid_up_to(),
        })?;
        let sym = self.interner.intern(text);
        if sym.is_overflow() {
            rec.flags.insert(RecordFlags::SYMBOL_OVERFLOW);
            self.stats.symbol_overflows += 1;
        }
        Ok(sym)
    }

    fn intern_bytes(
        &mut self,
        bytes: &[u8],
        span: Str,
        field: &'static str,
        rec: &mut Record,
    ) -> Result<Symbol> {
        let text = core::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
            offset: span.start as usize + e.valid_up_to(),
        })?;
        if text.len() > self.config.max_string_bytes {
            return Err(DecodeError::StringTooLong {
                field,
                offset: span.offset(),
                limit: self.config.max_string_bytes,
            });
        }
        let sym = self.interner.intern(text);
        if sym.is_overflow() {
            rec.flags.insert(RecordFlags::SYMBOL_OVERFLOW);
            self.stats.symbol_overflows += 1;
        }
        Ok(sym)
    }

    fn account(&mut self, r: &Result<Decoded>) {
        match r {
            Ok(d) => {
                let rec = d.record();
                self.stats.by_kind[rec.kind as usize] += 1;
                match d {
                    Decoded::Change(_) => match rec.op {
                        Op::Added => self.stats.added += 1,
                        Op::Modified => self.stats.modified += 1,
                        Op::Deleted => self.stats.deleted += 1,
                        Op::Bookmark | Op::Error => {}
                    },
                    Decoded::Bookmark(_) => self.stats.bookmarks += 1,
                    Decoded::Relist(_) => self.stats.relists += 1,
                    Decoded::Status(_) => self.stats.statuses += 1,
                }
                if rec.flags.contains(RecordFlags::FIELDS_TRUNCATED) {
                    self.stats.fields_truncated += 1;
                }
                if rec.flags.contains(RecordFlags::SOURCE_TIME_CLAMPED) {
                    self.stats.source_time_clamped += 1;
                }
            }
            Err(e) => self.stats.errors.count(e),
        }
    }
}

/// The unescaped text of `s`: the input slice, or unescaped into `tmp`.
fn text<'b>(buf: &'b [u8], s: Str, tmp: &'b mut [u8], field: &'static str) -> Result<&'b [u8]> {
    let raw = s.raw(buf);
    if !s.escaped {
        return Ok(raw);
    }
    let limit = tmp.len();
    let n = unescape(raw, tmp).ok_or(DecodeError::StringTooLong {
        field,
        offset: s.offset(),
        limit,
    })?;
    Ok(&tmp[..n])
}

fn push_ready(x: &Extracted, rec: &mut Record) {
    match x.ready {
        Ready::Absent => {}
        Ready::True => {
            rec.push(FieldId::Ready, FieldValue::Bool(true));
        }
        Ready::False => {
            rec.push(FieldId::Ready, FieldValue::Bool(false));
        }
        Ready::Other => rec.flags.insert(RecordFlags::READY_UNKNOWN),
    }
}

fn node_fields(x: &Extracted, rec: &mut Record) {
    push_ready(x, rec);
    rec.push(FieldId::NodePressure, FieldValue::I64(x.pressure));
    rec.push(
        FieldId::Unschedulable,
        FieldValue::Bool(x.unschedulable.unwrap_or(false)),
    );
}

fn deployment_fields(x: &Extracted, rec: &mut Record) {
    if let Some(d) = x.spec_replicas {
        rec.push(FieldId::ReplicasDesired, FieldValue::I64(d));
    }
    // Status counters are `omitempty` in the API: absent means 0.
    rec.push(
        FieldId::ReplicasCurrent,
        FieldValue::I64(x.status_replicas.unwrap_or(0)),
    );
    rec.push(
        FieldId::ReplicasReady,
        FieldValue::I64(x.ready_replicas.unwrap_or(0)),
    );
    rec.push(
        FieldId::ReplicasAvailable,
        FieldValue::I64(x.available_replicas.unwrap_or(0)),
    );
    rec.push(
        FieldId::ReplicasUpdated,
        FieldValue::I64(x.updated_replicas.unwrap_or(0)),
    );
}

/// The error for a top-level value that starts like JSON but is not an
/// object: [`DecodeError::NotAnObject`] if it is valid JSON; for text that
/// merely starts with `t`/`f`/`n` (`"not json"`), [`DecodeError::NotJson`];
/// otherwise the JSON error (truncated array, …).
fn not_an_object(sc: &mut Scanner<'_>, first: u8) -> DecodeError {
    let offset = sc.pos();
    let found = match sc.peek_type() {
        Ok(t) => t,
        Err(e) => return e,
    };
    match sc.skip_value() {
        Ok(()) => DecodeError::NotAnObject { offset, found },
        Err(_) if matches!(first, b't' | b'f' | b'n') => DecodeError::NotJson {
            offset,
            byte: first,
        },
        Err(e) => e,
    }
}

/// `metadata.resourceVersion` of a list, if it is a string.
fn list_resource_version(sc: &mut Scanner<'_>) -> Result<Option<Str>> {
    if !matches!(sc.object_start()?, Got::Val(())) {
        return Ok(None);
    }
    let mut rv = None;
    let mut first = true;
    while let Some(key) = sc.next_key(&mut first)? {
        if key.bytes() == b"resourceVersion" {
            if let Got::Val(s) = sc.string_val()? {
                rv = Some(s);
            }
        } else {
            sc.skip_value()?;
        }
    }
    Ok(rv)
}

/// A decimal `u64` with no sign, no leading `+`, at least one digit.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Start of the line after the one containing `at`.
fn next_line(input: &[u8], at: usize) -> usize {
    match input[at.min(input.len())..]
        .iter()
        .position(|&b| b == b'\n')
    {
        Some(i) => at + i + 1,
        None => input.len(),
    }
}

/// Length of the line from `start` to `next` without its line ending.
fn line_len(input: &[u8], start: usize, next: usize) -> usize {
    let mut end = next;
    if end > start && input.get(end - 1) == Some(&b'\n') {
        end -= 1;
    }
    end - start
}
