//! The value of one property of one record, as the schema's range says it
//! must be written. Shared by the Turtle and JSON instance writers so both
//! agree with the schema they are written against.

use crate::sources::intern::Resolver;
use crate::sources::record::{FieldValue, Record};

use super::model::{Header, PropertyKey, Range};

/// A value in the lexical space of a range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Lexical<'a> {
    Bool(bool),
    Long(i64),
    UnsignedLong(u64),
    Double(f64),
    /// A u64 written as 16 upper-case hex digits.
    Hex(u64),
    /// Nanoseconds since the Unix epoch, written as RFC 3339 UTC.
    DateTime(i64),
    Str(&'a str),
}

/// Why a value was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The record does not carry the property.
    Absent,
    /// A symbol that the resolver cannot resolve (interner overflow, or a
    /// resolver from another interner).
    Unresolved,
    /// The value's type is not in the range (the schema did not observe
    /// this record).
    Mismatch,
}

/// A rendered value: its lexical form, and whether the range is
/// `xsd:string` while the value is not a string (then the lexical form is
/// written as a string).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rendered<'a> {
    pub lex: Lexical<'a>,
    pub as_string: bool,
}

/// The value of `key` in `rec`, rendered for `range`.
pub(crate) fn render<'a>(
    rec: &Record,
    key: PropertyKey,
    range: Range,
    resolver: &'a Resolver,
) -> Result<Rendered<'a>, Skip> {
    let value = match key {
        PropertyKey::Header(Header::Namespace) => {
            (rec.namespace.id() != 0).then_some(FieldValue::Sym(rec.namespace))
        }
        PropertyKey::Header(Header::Name) => {
            (rec.name.id() != 0).then_some(FieldValue::Sym(rec.name))
        }
        PropertyKey::Header(Header::ResourceVersion) => {
            return match rec.resource_version {
                0 => Err(Skip::Absent),
                v => Ok(Rendered {
                    lex: Lexical::UnsignedLong(v),
                    as_string: range == Range::String,
                }),
            }
        }
        PropertyKey::Header(Header::SourceTime) => {
            return match rec.source_ns {
                0 => Err(Skip::Absent),
                v => Ok(Rendered {
                    lex: Lexical::DateTime(v),
                    as_string: range == Range::String,
                }),
            }
        }
        PropertyKey::Field(f) => rec.get(f),
    };
    let value = value.ok_or(Skip::Absent)?;
    let lex = match (range, value) {
        (_, FieldValue::Sym(s)) => Lexical::Str(resolver.resolve(s).ok_or(Skip::Unresolved)?),
        (Range::Boolean | Range::String, FieldValue::Bool(b)) => Lexical::Bool(b),
        (Range::HexBinary, FieldValue::I64(v)) => Lexical::Hex(v as u64),
        (Range::Long | Range::String, FieldValue::I64(v)) => Lexical::Long(v),
        (Range::Double, FieldValue::I64(v)) => Lexical::Double(v as f64),
        (Range::Double | Range::String, FieldValue::F64(v)) => Lexical::Double(v),
        _ => return Err(Skip::Mismatch),
    };
    if matches!(lex, Lexical::Str(_)) && range != Range::String {
        return Err(Skip::Mismatch);
    }
    Ok(Rendered {
        lex,
        as_string: range == Range::String && !matches!(lex, Lexical::Str(_)),
    })
}

/// Appends the lexical form (without quotes) of a non-string value.
/// NaN and infinities use the xsd forms `NaN`, `INF`, `-INF`; other doubles
/// use Rust's shortest round-trip form in scientific notation (`1.5e0`),
/// valid in both xsd:double and JSON.
pub(crate) fn write_lexical(lex: Lexical<'_>, out: &mut String) {
    use core::fmt::Write;
    // Writing to a `String` cannot fail.
    let _ = match lex {
        Lexical::Bool(b) => write!(out, "{b}"),
        Lexical::Long(v) => write!(out, "{v}"),
        Lexical::UnsignedLong(v) => write!(out, "{v}"),
        Lexical::Double(v) => {
            write_double(v, out);
            Ok(())
        }
        Lexical::Hex(v) => write!(out, "{v:016X}"),
        Lexical::DateTime(ns) => {
            super::datetime::write_rfc3339(ns, out);
            Ok(())
        }
        Lexical::Str(s) => {
            out.push_str(s);
            Ok(())
        }
    };
}

/// Appends an xsd:double lexical form.
pub(crate) fn write_double(v: f64, out: &mut String) {
    use core::fmt::Write;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "INF" } else { "-INF" });
    } else {
        let _ = write!(out, "{v:e}");
    }
}

/// Appends `Kind/ns/name`-style IRI segment text: every byte outside the
/// unreserved set `A-Z a-z 0-9 - . _ ~` is percent-encoded (so `/`, `%`,
/// spaces, quotes, controls and non-ASCII UTF-8 bytes are), and a segment
/// made only of dots (`.`, `..`) is encoded entirely so that no IRI
/// resolver treats it as a dot-segment.
pub(crate) fn write_segment(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let all_dots = !s.is_empty() && s.bytes().all(|b| b == b'.');
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'~')
            || (b == b'.' && !all_dots);
        if plain {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}
