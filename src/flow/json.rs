//! A small allocation-free JSON writer for notification payloads.
//!
//! Payloads are written into a caller-owned `Vec<u8>` whose capacity was reserved up
//! front; as long as a message fits, writing never allocates. Strings are escaped per
//! RFC 8259 (quotes, backslashes and control characters; everything else is copied as
//! UTF-8). Non-finite floats, which JSON cannot express, are written as `null`.

use std::io::Write as _;

use crate::sources::intern::{Resolver, Symbol};
use crate::sources::record::FieldValue;

/// Appends `s` as a JSON string literal.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `"key":`.
#[inline]
pub fn key(out: &mut Vec<u8>, k: &str) {
    string(out, k);
    out.push(b':');
}

/// Appends an unsigned integer.
#[inline]
pub fn uint(out: &mut Vec<u8>, v: u64) {
    let _ = write!(out, "{v}");
}

/// Appends a signed integer.
#[inline]
pub fn int(out: &mut Vec<u8>, v: i64) {
    let _ = write!(out, "{v}");
}

/// Appends a float (`null` when not finite).
#[inline]
pub fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends a boolean.
#[inline]
pub fn boolean(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends a 64-bit value as a 16-digit hex string (keys and hashes: JSON numbers lose
/// precision above 2^53).
#[inline]
pub fn hex(out: &mut Vec<u8>, v: u64) {
    let _ = write!(out, "\"{v:016x}\"");
}

/// Appends a symbol's text, or `null` when it cannot be resolved (overflow).
#[inline]
pub fn symbol(out: &mut Vec<u8>, resolver: &Resolver, s: Symbol) {
    match resolver.resolve(s) {
        Some(text) => string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends a field value.
pub fn value(out: &mut Vec<u8>, resolver: &Resolver, v: FieldValue) {
    match v {
        FieldValue::I64(i) => int(out, i),
        FieldValue::F64(f) => float(out, f),
        FieldValue::Bool(b) => boolean(out, b),
        FieldValue::Sym(s) => symbol(out, resolver, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_requires_and_keeps_unicode() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn non_finite_floats_are_null() {
        let mut out = Vec::new();
        float(&mut out, f64::NAN);
        out.push(b',');
        float(&mut out, 1.5);
        assert_eq!(out, b"null,1.5");
    }
}
