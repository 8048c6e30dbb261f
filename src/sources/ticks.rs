//! Trading ticks and IoT sensor readings: a fixed-size little-endian
//! binary frame and a CSV form, both decoded into [`Record`]s of
//! [`Kind::Tick`] / [`Kind::Sensor`] without allocating per event.
//!
//! # Binary frame (40 bytes, little-endian)
//!
//! | offset | size | tick (type 1) | sensor reading (type 2) |
//! |---|---|---|---|
//! | 0 | 1 | magic `0xEB` | magic `0xEB` |
//! | 1 | 1 | frame type `1` | frame type `2` |
//! | 2 | 1 | asset class: 0 forex, 1 crypto, 2 stock, 3 bond | device type: 0 traffic, 1 air_quality, 2 energy, 3 water |
//! | 3 | 1 | side: 0 sell, 1 buy | reserved, 0 |
//! | 4 | 4 | reserved, 0 | device id (`u32`) |
//! | 8 | 8 | event time, ns since the Unix epoch (`i64`) | same |
//! | 16 | 8 | price (`f64`, finite, > 0) | value (`f64`, finite) |
//! | 24 | 8 | quantity (`f64`, finite, > 0) | edge node (`u32`) then 4 reserved zero bytes |
//! | 32 | 8 | instrument: 1–8 bytes of `A-Z a-z 0-9 . / - _`, NUL-padded | reserved, 0 |
//!
//! # CSV (one record per line, `\n` or `\r\n`; `#` starts a comment line)
//!
//! ```text
//! T,<time_ns>,<asset_class>,<instrument>,<price>,<quantity>,<B|S>
//! S,<time_ns>,<device_type>,<device_id>,<edge_node>,<value>
//! ```
//!
//! Class and type names are those of [`AssetClass::name`] and
//! [`DeviceType::name`]. No quoting (no field needs it).
//!
//! # Records
//!
//! Ticks: `op = Modified`, namespace = asset class, name = instrument,
//! key = `key_of("Tick", class, instrument)`, fields `Instrument`,
//! `AssetClass` (symbols), `Price`, `Quantity` (f64), `Side` (bool, buy).
//! Readings: `op = Modified`, namespace = device type, name empty (device
//! ids are not interned: 100,000 of them would crowd the interner), key =
//! `key_of("Sensor", type, decimal device id)`, fields `DeviceType`
//! (symbol), `DeviceId`, `EdgeNode` (i64), `Value` (f64).
//!
//! A bad frame or line is reported with a specific error and skipped;
//! decoding continues with the next frame (frames are fixed-size, so
//! there is nothing to resynchronise) or line.

use std::io::{self, Write};

use crate::sources::hash::key_of;
use crate::sources::intern::{Interner, InternerConfig, Symbol};
use crate::sources::record::{FieldId, FieldValue, Kind, Op, Record, RecordFlags};
use crate::sources::wallclock::IngestClock;

/// Size of one binary frame.
pub const FRAME_SIZE: usize = 40;
/// First byte of every frame.
pub const FRAME_MAGIC: u8 = 0xEB;
/// Frame type of a tick.
pub const FRAME_TICK: u8 = 1;
/// Frame type of a sensor reading.
pub const FRAME_SENSOR: u8 = 2;
/// Longest instrument name.
pub const MAX_INSTRUMENT: usize = 8;

/// Market of an instrument.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssetClass {
    /// Currency pairs.
    Forex = 0,
    /// Crypto currencies.
    Crypto = 1,
    /// Equities.
    Stock = 2,
    /// Bonds.
    Bond = 3,
}

impl AssetClass {
    /// Every class, by discriminant.
    pub const ALL: [AssetClass; 4] = [Self::Forex, Self::Crypto, Self::Stock, Self::Bond];

    /// Lower-case name (`forex`, `crypto`, `stock`, `bond`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Forex => "forex",
            Self::Crypto => "crypto",
            Self::Stock => "stock",
            Self::Bond => "bond",
        }
    }

    /// The class for a name.
    pub fn from_name(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().as_bytes() == s)
    }
}

/// Kind of IoT device.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// Traffic counters (vehicles per minute).
    Traffic = 0,
    /// Air-quality sensors (PM2.5, µg/m³).
    AirQuality = 1,
    /// Energy meters (kW).
    Energy = 2,
    /// Water meters (litres per minute).
    Water = 3,
}

impl DeviceType {
    /// Every type, by discriminant.
    pub const ALL: [DeviceType; 4] = [Self::Traffic, Self::AirQuality, Self::Energy, Self::Water];

    /// Lower-case name (`traffic`, `air_quality`, `energy`, `water`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Traffic => "traffic",
            Self::AirQuality => "air_quality",
            Self::Energy => "energy",
            Self::Water => "water",
        }
    }

    /// The type for a name.
    pub fn from_name(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().as_bytes() == s)
    }
}

/// One market-data tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// Event time, ns since the Unix epoch.
    pub time_ns: i64,
    /// Market.
    pub class: AssetClass,
    /// Instrument name, NUL-padded (see [`instrument`](Self::instrument)).
    pub instrument: [u8; MAX_INSTRUMENT],
    /// Price.
    pub price: f64,
    /// Quantity.
    pub quantity: f64,
    /// Buy (true) or sell.
    pub buy: bool,
}

impl Tick {
    /// Pads `name` (1–8 bytes) into the fixed instrument field; `None` if
    /// it is empty, too long or has a byte outside `A-Z a-z 0-9 . / - _`.
    pub fn instrument_from(name: &str) -> Option<[u8; MAX_INSTRUMENT]> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > MAX_INSTRUMENT || !b.iter().all(|&c| instrument_byte(c)) {
            return None;
        }
        let mut out = [0u8; MAX_INSTRUMENT];
        out[..b.len()].copy_from_slice(b);
        Some(out)
    }

    /// The instrument name without padding.
    pub fn instrument(&self) -> &[u8] {
        let n = self
            .instrument
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_INSTRUMENT);
        &self.instrument[..n]
    }

    /// The binary frame.
    pub fn to_frame(&self) -> [u8; FRAME_SIZE] {
        let mut f = [0u8; FRAME_SIZE];
        f[0] = FRAME_MAGIC;
        f[1] = FRAME_TICK;
        f[2] = self.class as u8;
        f[3] = u8::from(self.buy);
        f[8..16].copy_from_slice(&self.time_ns.to_le_bytes());
        f[16..24].copy_from_slice(&self.price.to_le_bytes());
        f[24..32].copy_from_slice(&self.quantity.to_le_bytes());
        f[32..40].copy_from_slice(&self.instrument);
        f
    }

    /// Writes the CSV line (with `\n`).
    pub fn write_csv<W: Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"T,")?;
        write!(w, "{},{},", self.time_ns, self.class.name())?;
        w.write_all(self.instrument())?;
        writeln!(
            w,
            ",{},{},{}",
            self.price,
            self.quantity,
            if self.buy { 'B' } else { 'S' }
        )
    }
}

/// One sensor reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// Event time, ns since the Unix epoch.
    pub time_ns: i64,
    /// Device type.
    pub device_type: DeviceType,
    /// Device id.
    pub device_id: u32,
    /// Edge node the reading came through.
    pub edge_node: u32,
    /// Measured value.
    pub value: f64,
}

impl Reading {
    /// The binary frame.
    pub fn to_frame(&self) -> [u8; FRAME_SIZE] {
        let mut f = [0u8; FRAME_SIZE];
        f[0] = FRAME_MAGIC;
        f[1] = FRAME_SENSOR;
        f[2] = self.device_type as u8;
        f[4..8].copy_from_slice(&self.device_id.to_le_bytes());
        f[8..16].copy_from_slice(&self.time_ns.to_le_bytes());
        f[16..24].copy_from_slice(&self.value.to_le_bytes());
        f[24..28].copy_from_slice(&self.edge_node.to_le_bytes());
        f
    }

    /// Writes the CSV line (with `\n`).
    pub fn write_csv<W: Write>(&self, w: &mut W) -> io::Result<()> {
        writeln!(
            w,
            "S,{},{},{},{},{}",
            self.time_ns,
            self.device_type.name(),
            self.device_id,
            self.edge_node,
            self.value
        )
    }
}

fn instrument_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'-' | b'_')
}

/// A bad binary frame. `offset` is the frame's offset in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The input ends with `len` bytes, fewer than a frame.
    #[error("truncated frame at {offset}: {len} of {FRAME_SIZE} bytes")]
    Truncated {
        /// Offset of the partial frame.
        offset: usize,
        /// Bytes present.
        len: usize,
    },
    /// The first byte is not [`FRAME_MAGIC`].
    #[error("bad magic 0x{byte:02x} at {offset}")]
    BadMagic {
        /// Frame offset.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// The frame type is neither [`FRAME_TICK`] nor [`FRAME_SENSOR`].
    #[error("unknown frame type {frame_type} at {offset}")]
    UnknownFrameType {
        /// Frame offset.
        offset: usize,
        /// The type byte.
        frame_type: u8,
    },
    /// Asset class or device type byte above 3.
    #[error("unknown class/type {value} at {offset}")]
    UnknownClass {
        /// Frame offset.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// Side byte other than 0 or 1.
    #[error("bad side {value} at {offset}")]
    BadSide {
        /// Frame offset.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A reserved byte is not zero.
    #[error("reserved byte {index} not zero in frame at {offset}")]
    ReservedNotZero {
        /// Frame offset.
        offset: usize,
        /// Index of the byte within the frame.
        index: usize,
    },
    /// Empty instrument, a byte outside the allowed set, or a non-NUL after
    /// the padding started.
    #[error("bad instrument name in frame at {offset}")]
    BadInstrument {
        /// Frame offset.
        offset: usize,
    },
    /// A float that is NaN or infinite.
    #[error("{field} not finite in frame at {offset}")]
    NonFinite {
        /// Frame offset.
        offset: usize,
        /// `price`, `quantity` or `value`.
        field: &'static str,
    },
    /// A price or quantity ≤ 0.
    #[error("{field} not positive in frame at {offset}")]
    NonPositive {
        /// Frame offset.
        offset: usize,
        /// `price` or `quantity`.
        field: &'static str,
    },
}

/// A bad CSV line. `line` is 1-based within the call, `column` 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// The first column is neither `T` nor `S`.
    #[error("line {line}: unknown record type")]
    UnknownRecordType {
        /// Line number.
        line: u64,
    },
    /// Wrong number of columns.
    #[error("line {line}: {found} columns, expected {expected}")]
    FieldCount {
        /// Line number.
        line: u64,
        /// Columns for this record type.
        expected: usize,
        /// Columns found.
        found: usize,
    },
    /// Not a decimal integer in range.
    #[error("line {line} column {column}: bad integer")]
    BadInteger {
        /// Line number.
        line: u64,
        /// Column.
        column: usize,
    },
    /// Not a decimal number.
    #[error("line {line} column {column}: bad number")]
    BadNumber {
        /// Line number.
        line: u64,
        /// Column.
        column: usize,
    },
    /// NaN or infinite.
    #[error("line {line} column {column}: not finite")]
    NonFinite {
        /// Line number.
        line: u64,
        /// Column.
        column: usize,
    },
    /// A price or quantity ≤ 0.
    #[error("line {line} column {column}: not positive")]
    NonPositive {
        /// Line number.
        line: u64,
        /// Column.
        column: usize,
    },
    /// Unknown asset class or device type name.
    #[error("line {line} column {column}: unknown class/type")]
    UnknownClass {
        /// Line number.
        line: u64,
        /// Column.
        column: usize,
    },
    /// Instrument empty, longer than 8 bytes or with a byte outside the set.
    #[error("line {line}: bad instrument")]
    BadInstrument {
        /// Line number.
        line: u64,
    },
    /// Side other than `B` or `S`.
    #[error("line {line}: side must be B or S")]
    BadSide {
        /// Line number.
        line: u64,
    },
}

/// Counters of a [`TickDecoder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Tick records produced.
    pub ticks: u64,
    /// Reading records produced.
    pub readings: u64,
    /// Bad frames.
    pub frame_errors: u64,
    /// Bad CSV lines.
    pub csv_errors: u64,
    /// Records whose instrument could not be interned (interner full).
    pub symbol_overflows: u64,
}

/// Builds tick and reading records from frames, CSV or values.
#[derive(Debug)]
pub struct TickDecoder {
    interner: Interner,
    classes: [Symbol; 4],
    types: [Symbol; 4],
    next_seq: u64,
    clock: IngestClock,
    stats: TickStats,
}

impl Default for TickDecoder {
    fn default() -> Self {
        Self::new(InternerConfig::default())
    }
}

impl TickDecoder {
    /// A decoder with its own interner (class and type names interned up
    /// front; instruments as first seen).
    pub fn new(interner: InternerConfig) -> TickDecoder {
        let mut interner = Interner::new(interner);
        let classes = AssetClass::ALL.map(|c| interner.intern(c.name()));
        let types = DeviceType::ALL.map(|t| interner.intern(t.name()));
        TickDecoder {
            interner,
            classes,
            types,
            next_seq: 0,
            clock: IngestClock::wall(),
            stats: TickStats::default(),
        }
    }

    /// Replaces the ingest clock (default: wall time from a `SystemTime`
    /// anchor extrapolated with the TSC, see
    /// [`wallclock`](crate::sources::wallclock)); `clock` is then called
    /// once per record.
    pub fn with_clock(mut self, clock: fn() -> i64) -> TickDecoder {
        self.clock = IngestClock::custom(clock);
        self
    }

    /// The interner.
    pub fn interner(&self) -> &Interner {
        &self.interner
    }

    /// The interner, to add strings before the pipeline starts (rule strings, for
    /// example). The decoder's symbols stay valid.
    pub fn interner_mut(&mut self) -> &mut Interner {
        &mut self.interner
    }

    /// Resolves a symbol.
    pub fn resolve(&self, s: Symbol) -> Option<&str> {
        self.interner.resolve(s)
    }

    /// Counters.
    pub fn stats(&self) -> &TickStats {
        &self.stats
    }

    /// The symbol of an asset class name.
    pub fn class_symbol(&self, c: AssetClass) -> Symbol {
        self.classes[c as usize]
    }

    /// The symbol of a device type name.
    pub fn type_symbol(&self, t: DeviceType) -> Symbol {
        self.types[t as usize]
    }

    /// The record of a tick.
    pub fn tick_record(&mut self, t: &Tick) -> Record {
        let name = t.instrument();
        let mut rec = Record::new(Kind::Tick, Op::Modified);
        // Instrument bytes are ASCII (checked on every path in), so this
        // conversion only fails for a hand-built `Tick`.
        let sym = match core::str::from_utf8(name) {
            Ok(s) => self.interner.intern(s),
            Err(_) => Symbol::OVERFLOW,
        };
        if sym.is_overflow() {
            rec.flags.insert(RecordFlags::SYMBOL_OVERFLOW);
            self.stats.symbol_overflows += 1;
        }
        let class = self.classes[t.class as usize];
        rec.key = key_of(b"Tick", t.class.name().as_bytes(), name);
        rec.namespace = class;
        rec.name = sym;
        rec.source_ns = t.time_ns;
        rec.push(FieldId::Instrument, FieldValue::Sym(sym));
        rec.push(FieldId::AssetClass, FieldValue::Sym(class));
        rec.push(FieldId::Price, FieldValue::F64(t.price));
        rec.push(FieldId::Quantity, FieldValue::F64(t.quantity));
        rec.push(FieldId::Side, FieldValue::Bool(t.buy));
        self.stats.ticks += 1;
        self.stamp(rec)
    }

    /// The record of a sensor reading.
    pub fn reading_record(&mut self, r: &Reading) -> Record {
        let mut rec = Record::new(Kind::Sensor, Op::Modified);
        let mut digits = [0u8; 10];
        let id = decimal(r.device_id, &mut digits);
        let ty = self.types[r.device_type as usize];
        rec.key = key_of(b"Sensor", r.device_type.name().as_bytes(), id);
        rec.namespace = ty;
        rec.source_ns = r.time_ns;
        rec.push(FieldId::DeviceType, FieldValue::Sym(ty));
        rec.push(FieldId::DeviceId, FieldValue::I64(i64::from(r.device_id)));
        rec.push(FieldId::EdgeNode, FieldValue::I64(i64::from(r.edge_node)));
        rec.push(FieldId::Value, FieldValue::F64(r.value));
        self.stats.readings += 1;
        self.stamp(rec)
    }

    fn stamp(&mut self, mut rec: Record) -> Record {
        rec.seq = self.next_seq;
        self.next_seq += 1;
        rec.ingest_ns = self.clock.now();
        rec
    }

    /// Decodes one 40-byte frame found at `offset`.
    pub fn decode_frame(
        &mut self,
        f: &[u8; FRAME_SIZE],
        offset: usize,
    ) -> Result<Record, FrameError> {
        let r = parse_frame(f, offset);
        match r {
            Ok(Parsed::Tick(t)) => Ok(self.tick_record(&t)),
            Ok(Parsed::Reading(x)) => Ok(self.reading_record(&x)),
            Err(e) => {
                self.stats.frame_errors += 1;
                Err(e)
            }
        }
    }

    /// Decodes every frame in `bytes`, calling `f` with each outcome in
    /// order; a trailing partial frame is reported as
    /// [`FrameError::Truncated`]. Returns the number of frames (and
    /// partial frames) reported.
    pub fn decode_frames<F>(&mut self, bytes: &[u8], mut f: F) -> usize
    where
        F: FnMut(Result<Record, FrameError>),
    {
        let used = self.decode_complete_frames(bytes, &mut f);
        let mut n = used / FRAME_SIZE;
        if used < bytes.len() {
            self.stats.frame_errors += 1;
            f(Err(FrameError::Truncated {
                offset: used,
                len: bytes.len() - used,
            }));
            n += 1;
        }
        n
    }

    /// Decodes the whole frames in `bytes` (a read from a stream) and
    /// returns the bytes consumed; keep the rest for the next read.
    pub fn decode_complete_frames<F>(&mut self, bytes: &[u8], mut f: F) -> usize
    where
        F: FnMut(Result<Record, FrameError>),
    {
        let mut off = 0;
        for chunk in bytes.chunks_exact(FRAME_SIZE) {
            let frame: &[u8; FRAME_SIZE] =
                chunk.try_into().expect("chunks_exact yields FRAME_SIZE");
            f(self.decode_frame(frame, off));
            off += FRAME_SIZE;
        }
        off
    }

    /// Decodes CSV lines (see the [module docs](self)), calling `f` with
    /// each line's outcome; blank and `#` lines are skipped. The last line
    /// needs no newline. Returns the number of records and errors reported.
    pub fn decode_csv<F>(&mut self, bytes: &[u8], mut f: F) -> u64
    where
        F: FnMut(Result<Record, CsvError>),
    {
        let mut reported = 0;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
                continue;
            }
            let r = match parse_csv(line, i as u64 + 1) {
                Ok(Parsed::Tick(t)) => Ok(self.tick_record(&t)),
                Ok(Parsed::Reading(x)) => Ok(self.reading_record(&x)),
                Err(e) => {
                    self.stats.csv_errors += 1;
                    Err(e)
                }
            };
            reported += 1;
            f(r);
        }
        reported
    }
}

/// A parsed frame or line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Parsed {
    /// A tick.
    Tick(Tick),
    /// A sensor reading.
    Reading(Reading),
}

fn le_u32(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]])
}

fn le_u64(f: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&f[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Parses and validates one frame found at `offset` (no record built).
pub fn parse_frame(f: &[u8; FRAME_SIZE], offset: usize) -> Result<Parsed, FrameError> {
    if f[0] != FRAME_MAGIC {
        return Err(FrameError::BadMagic { offset, byte: f[0] });
    }
    let class = f[2];
    if class > 3 {
        return Err(FrameError::UnknownClass {
            offset,
            value: class,
        });
    }
    let time_ns = le_u64(f, 8) as i64;
    let x = f64::from_bits(le_u64(f, 16));
    let zero = |range: core::ops::Range<usize>| {
        range.clone().find(|&i| f[i] != 0).map_or(Ok(()), |index| {
            Err(FrameError::ReservedNotZero { offset, index })
        })
    };
    match f[1] {
        FRAME_TICK => {
            if f[3] > 1 {
                return Err(FrameError::BadSide {
                    offset,
                    value: f[3],
                });
            }
            zero(4..8)?;
            let quantity = f64::from_bits(le_u64(f, 24));
            check_pos(x, "price", offset)?;
            check_pos(quantity, "quantity", offset)?;
            let mut instrument = [0u8; MAX_INSTRUMENT];
            instrument.copy_from_slice(&f[32..40]);
            let n = instrument
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(MAX_INSTRUMENT);
            if n == 0
                || !instrument[..n].iter().all(|&c| instrument_byte(c))
                || instrument[n..].iter().any(|&b| b != 0)
            {
                return Err(FrameError::BadInstrument { offset });
            }
            Ok(Parsed::Tick(Tick {
                time_ns,
                class: AssetClass::ALL[class as usize],
                instrument,
                price: x,
                quantity,
                buy: f[3] == 1,
            }))
        }
        FRAME_SENSOR => {
            if f[3] != 0 {
                return Err(FrameError::ReservedNotZero { offset, index: 3 });
            }
            zero(28..40)?;
            if !x.is_finite() {
                return Err(FrameError::NonFinite {
                    offset,
                    field: "value",
                });
            }
            Ok(Parsed::Reading(Reading {
                time_ns,
                device_type: DeviceType::ALL[class as usize],
                device_id: le_u32(f, 4),
                edge_node: le_u32(f, 24),
                value: x,
            }))
        }
        t => Err(FrameError::UnknownFrameType {
            offset,
            frame_type: t,
        }),
    }
}

fn check_pos(v: f64, field: &'static str, offset: usize) -> Result<(), FrameError> {
    if !v.is_finite() {
        Err(FrameError::NonFinite { offset, field })
    } else if v <= 0.0 {
        Err(FrameError::NonPositive { offset, field })
    } else {
        Ok(())
    }
}

/// Parses one CSV line (without its line ending); `line` numbers errors.
pub fn parse_csv(text: &[u8], line: u64) -> Result<Parsed, CsvError> {
    let mut cols = [&[][..]; 8];
    let mut n = 0;
    for c in text.split(|&b| b == b',') {
        if n < cols.len() {
            cols[n] = c;
        }
        n += 1;
    }
    let int = |i: usize| -> Result<i64, CsvError> {
        core::str::from_utf8(cols[i])
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or(CsvError::BadInteger {
                line,
                column: i + 1,
            })
    };
    let num = |i: usize| -> Result<f64, CsvError> {
        let v = core::str::from_utf8(cols[i])
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or(CsvError::BadNumber {
                line,
                column: i + 1,
            })?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(CsvError::NonFinite {
                line,
                column: i + 1,
            })
        }
    };
    let pos = |i: usize| -> Result<f64, CsvError> {
        let v = num(i)?;
        if v > 0.0 {
            Ok(v)
        } else {
            Err(CsvError::NonPositive {
                line,
                column: i + 1,
            })
        }
    };
    let u32_col = |i: usize| -> Result<u32, CsvError> {
        u32::try_from(int(i)?).map_err(|_| CsvError::BadInteger {
            line,
            column: i + 1,
        })
    };
    match cols[0] {
        b"T" => {
            if n != 7 {
                return Err(CsvError::FieldCount {
                    line,
                    expected: 7,
                    found: n,
                });
            }
            let time_ns = int(1)?;
            let class =
                AssetClass::from_name(cols[2]).ok_or(CsvError::UnknownClass { line, column: 3 })?;
            let instrument = core::str::from_utf8(cols[3])
                .ok()
                .and_then(Tick::instrument_from)
                .ok_or(CsvError::BadInstrument { line })?;
            let price = pos(4)?;
            let quantity = pos(5)?;
            let buy = match cols[6] {
                b"B" => true,
                b"S" => false,
                _ => return Err(CsvError::BadSide { line }),
            };
            Ok(Parsed::Tick(Tick {
                time_ns,
                class,
                instrument,
                price,
                quantity,
                buy,
            }))
        }
        b"S" => {
            if n != 6 {
                return Err(CsvError::FieldCount {
                    line,
                    expected: 6,
                    found: n,
                });
            }
            let time_ns = int(1)?;
            let device_type =
                DeviceType::from_name(cols[2]).ok_or(CsvError::UnknownClass { line, column: 3 })?;
            Ok(Parsed::Reading(Reading {
                time_ns,
                device_type,
                device_id: u32_col(3)?,
                edge_node: u32_col(4)?,
                value: num(5)?,
            }))
        }
        _ => Err(CsvError::UnknownRecordType { line }),
    }
}

/// Writes `v` in decimal into `buf`, returning the digits.
fn decimal(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}
