//! The Python module generator.

use core::fmt::Write;

use crate::flow::schema::model::{Property, Range, Schema};
use crate::flow::schema::EBB_NS;

/// Python's hard keywords (3.11): never valid identifiers.
const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// A valid Python identifier for `name`: ASCII letters, digits and `_`
/// are kept, every other character becomes `_`; an empty result becomes
/// `_`; a leading digit gets a `_` prefix; a keyword gets a `_` suffix
/// (PEP 8's convention, `class` → `class_`). Distinct names can map to the
/// same identifier (`a-b`, `a.b`); callers with untrusted names must check
/// for collisions.
pub fn python_ident(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// `lowerCamelCase` → `snake_case` (ASCII).
fn snake(camel: &str) -> String {
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            if !s.is_empty() {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Appends `s` as a Python double-quoted string literal.
fn py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The Python type of a range, and the runtime check code.
fn py_type(r: Range) -> &'static str {
    match r {
        Range::Boolean => "bool",
        Range::Long | Range::UnsignedLong => "int",
        Range::Double => "float",
        Range::HexBinary | Range::DateTime | Range::String => "str",
    }
}

const PRELUDE: &str = r#"
from dataclasses import dataclass
import math
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

_NONFINITE: Dict[str, float] = {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}


def _type_ok(value: Any, code: str) -> bool:
    if code == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if code == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if code == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


class _Model:
    """Shared behaviour of the generated dataclasses."""

    KIND: ClassVar[str] = ""
    # (attribute, JSON key, type code, required)
    _FIELDS: ClassVar[Tuple[Tuple[str, str, str, bool], ...]] = ()

    def __post_init__(self) -> None:
        for attr, _key, code, required in self._FIELDS:
            value = getattr(self, attr)
            if value is None:
                if required:
                    raise TypeError(f"{type(self).__name__}.{attr} is required")
                continue
            if not _type_ok(value, code):
                raise TypeError(
                    f"{type(self).__name__}.{attr}: expected {code}, got {type(value).__name__}"
                )
            if code == "float":
                setattr(self, attr, float(value))

    def to_dict(self) -> Dict[str, Any]:
        """The JSON instance (valid against the JSON Schema of the same version)."""
        out: Dict[str, Any] = {"kind": self.KIND}
        for attr, key, code, _required in self._FIELDS:
            value = getattr(self, attr)
            if value is None:
                continue
            if code == "float" and not math.isfinite(value):
                value = "NaN" if math.isnan(value) else ("INF" if value > 0 else "-INF")
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Any:
        """Builds an instance from its JSON form; raises ValueError or TypeError."""
        if data.get("kind") != cls.KIND:
            raise ValueError(f"expected kind {cls.KIND!r}, got {data.get('kind')!r}")
        known = {key for _attr, key, _code, _required in cls._FIELDS}
        extra = sorted(k for k in data if k != "kind" and k not in known)
        if extra:
            raise ValueError(f"unknown keys for {cls.KIND}: {extra}")
        kwargs: Dict[str, Any] = {}
        for attr, key, code, _required in cls._FIELDS:
            if key in data:
                value = data[key]
                if code == "float" and isinstance(value, str) and value in _NONFINITE:
                    value = _NONFINITE[value]
                kwargs[attr] = value
        return cls(**kwargs)
"#;

/// Generates the Python module for `schema`: `SCHEMA_VERSION`, one
/// `@dataclass` per class (required fields first, then `Optional[...] =
/// None` ones), `MODELS` (kind → class) and a module-level `from_dict`.
/// See the [typer docs](super) for the behaviour. Allocates the text.
pub fn python_module(schema: &Schema) -> String {
    let mut out = String::with_capacity(8 << 10);
    let v = schema.version();
    let _ = writeln!(
        out,
        "# Generated by ebbflow from schema version {v}. Do not edit.\n\"\"\"Typed models for ebbflow schema version {v} ({EBB_NS}).\n\nOne dataclass per class; fields that not every record carried are Optional.\n`to_dict`/`from_dict` convert to and from the JSON instances that the JSON\nSchema of the same version describes.\n\"\"\""
    );
    out.push_str(PRELUDE);
    let _ = writeln!(out, "\nSCHEMA_VERSION: int = {v}");
    let mut names: Vec<(String, String)> = Vec::new();
    for (kind, class) in schema.classes() {
        let cname = python_ident(kind.name());
        names.push((kind.name().to_owned(), cname.clone()));
        let props: Vec<Property> = class.properties().collect();
        let attrs: Vec<String> = props
            .iter()
            .map(|p| python_ident(&snake(p.key.local_name())))
            .collect();
        let _ = writeln!(out, "\n\n@dataclass\nclass {cname}(_Model):");
        let _ = writeln!(
            out,
            "    \"\"\"`ebb:{0}` ({EBB_NS}{0}).\"\"\"\n",
            kind.name()
        );
        out.push_str("    KIND: ClassVar[str] = ");
        py_str(kind.name(), &mut out);
        out.push_str("\n    _FIELDS: ClassVar[Tuple[Tuple[str, str, str, bool], ...]] = (\n");
        for (p, attr) in props.iter().zip(&attrs) {
            out.push_str("        (");
            py_str(attr, &mut out);
            out.push_str(", ");
            py_str(p.key.local_name(), &mut out);
            let _ = writeln!(
                out,
                ", \"{}\", {}),",
                py_type(p.range),
                if p.required { "True" } else { "False" }
            );
        }
        out.push_str("    )\n");
        for required in [true, false] {
            for (p, attr) in props.iter().zip(&attrs) {
                if p.required != required {
                    continue;
                }
                let t = py_type(p.range);
                if required {
                    let _ = writeln!(out, "    {attr}: {t}");
                } else {
                    let _ = writeln!(out, "    {attr}: Optional[{t}] = None");
                }
            }
        }
    }
    out.push_str("\n\nMODELS: Dict[str, Type[_Model]] = {\n");
    for (kind, cname) in &names {
        out.push_str("    ");
        py_str(kind, &mut out);
        let _ = writeln!(out, ": {cname},");
    }
    out.push_str(
        "}\n\n\ndef from_dict(data: Dict[str, Any]) -> Any:\n    \"\"\"Builds the model instance for a JSON instance of any class.\"\"\"\n    kind = data.get(\"kind\")\n    if kind not in MODELS:\n        raise ValueError(f\"unknown kind {kind!r}\")\n    return MODELS[kind].from_dict(data)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_escaped() {
        assert_eq!(python_ident("class"), "class_");
        assert_eq!(python_ident("None"), "None_");
        assert_eq!(python_ident("9lives"), "_9lives");
        assert_eq!(python_ident("a-b.c d"), "a_b_c_d");
        assert_eq!(python_ident(""), "_");
        assert_eq!(python_ident("é"), "_");
        assert_eq!(python_ident("restarts_total"), "restarts_total");
    }

    #[test]
    fn snake_case() {
        assert_eq!(snake("restartsTotal"), "restarts_total");
        assert_eq!(snake("resourceVersion"), "resource_version");
        assert_eq!(snake("name"), "name");
    }
}
