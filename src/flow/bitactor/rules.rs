//! The rules file: its syntax tree ([`RuleSet`], [`RuleDef`], [`PredDef`]) and its parser.
//!
//! The format is documented in `docs/rules.md`. In short, a file is a sequence of rule
//! blocks; a block starts with `rule NAME` and holds one directive per line:
//!
//! ```text
//! # comment
//! rule pod_crashloop
//!     kind      Pod                      # one or more kinds
//!     namespace payments                 # optional
//!     when      WaitingReason == "CrashLoopBackOff"
//!     when      Ready == false           # several `when` lines: all must hold
//!     severity  critical                 # info | warning | critical (default warning)
//!     hint      "kubectl logs --previous; check the last deploy"
//! ```
//!
//! Parsing allocates (names, hints and strings are owned); it runs once, before the
//! pipeline starts, or when an operator reloads a file.

use thiserror::Error;

use crate::flow::item::Severity;
use crate::sources::record::{FieldId, Kind};

/// Most rules one [`RuleSet`] may hold: a rule is one bit of a `u64` mask.
pub const MAX_RULES: usize = 64;

/// Most `when` predicates one rule may hold.
pub const MAX_PREDICATES: usize = 4;

/// Largest magnitude a constant may have: every integer up to it is exact in an `f64`.
pub const MAX_CONSTANT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Most bytes of a hint.
pub const MAX_HINT: usize = 512;

/// The value type of a field, as rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A signed integer (counts, replicas, ids).
    Int,
    /// A float (prices, quantities, sensor values).
    Float,
    /// A boolean.
    Bool,
    /// An interned string.
    Sym,
    /// A 64-bit hash: rules cannot compare it.
    Hash,
}

impl FieldType {
    /// Whether numeric comparisons apply.
    pub const fn is_numeric(self) -> bool {
        matches!(self, FieldType::Int | FieldType::Float)
    }
}

/// The value type of `id`.
pub const fn field_type(id: FieldId) -> FieldType {
    use FieldId::*;
    match id {
        Phase | WaitingReason | NodeName | Labels | ServiceType | Reason | EventType
        | RegardingKind | RegardingName | KindName | Instrument | AssetClass | DeviceType => {
            FieldType::Sym
        }
        Ready | Unschedulable | Immutable | Side => FieldType::Bool,
        Price | Quantity | Value => FieldType::Float,
        SpecHash | RegardingKey | LabelsHash => FieldType::Hash,
        RestartsTotal | RestartsMax | ReplicasDesired | ReplicasCurrent | ReplicasReady
        | ReplicasAvailable | ReplicasUpdated | NodePressure | DataCount | Count | StatusCode
        | DeviceId | EdgeNode => FieldType::Int,
    }
}

/// What a predicate measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The field's current value.
    Value(FieldId),
    /// `delta(F)`: current minus previous value (needs a previous value).
    Delta(FieldId),
    /// `pct(F)`: `|current − previous| / |previous| × 100`, the size of the move in
    /// percent, either direction (needs a previous value).
    Pct(FieldId),
    /// `A - B`: the difference of two fields of the same record.
    Diff(FieldId, FieldId),
}

impl Source {
    /// The field whose value the predicate looks at first.
    pub const fn field(self) -> FieldId {
        match self {
            Source::Value(f) | Source::Delta(f) | Source::Pct(f) | Source::Diff(f, _) => f,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The operator as written.
    pub const fn text(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

/// The constant side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A finite number.
    Num(f64),
    /// A string (compared as an interned symbol).
    Str(String),
    /// `true` or `false`.
    Bool(bool),
}

/// What a predicate tests about its [`Source`].
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// `source OP literal`.
    Cmp(CmpOp, Literal),
    /// `source outside [lo, hi]`: below `lo` or above `hi` (a band break).
    Outside(f64, f64),
}

/// One `when` line.
#[derive(Clone, Debug, PartialEq)]
pub struct PredDef {
    /// Line number (1-based).
    pub line: u32,
    /// What is measured.
    pub source: Source,
    /// How it is tested.
    pub test: Test,
}

impl PredDef {
    /// Whether the predicate has a numeric threshold (a number or a band), i.e. can be
    /// changed by `SetThreshold`.
    pub fn is_numeric(&self) -> bool {
        matches!(self.test, Test::Outside(..) | Test::Cmp(_, Literal::Num(_)))
    }
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleDef {
    /// Unique name.
    pub name: String,
    /// Line of its `rule` line.
    pub line: u32,
    /// Kinds it applies to: bit `k` for `Kind` discriminant `k`.
    pub kinds: u16,
    /// Namespace filter.
    pub namespace: Option<String>,
    /// Predicates; all must hold.
    pub preds: Vec<PredDef>,
    /// Severity of its hits.
    pub severity: Severity,
    /// Recovery hint.
    pub hint: String,
    /// Whether it starts enabled.
    pub enabled: bool,
}

impl RuleDef {
    /// The predicate whose constant `SetThreshold` changes: the first one with a numeric
    /// threshold, if any.
    pub fn threshold_pred(&self) -> Option<usize> {
        self.preds.iter().position(PredDef::is_numeric)
    }

    /// The predicate whose value [`observed`](crate::flow::bitactor::RuleCatalog::observed)
    /// reports: the threshold predicate, else the first.
    pub fn primary_pred(&self) -> usize {
        self.threshold_pred().unwrap_or(0)
    }

    /// The kinds the rule applies to, in [`Kind::ALL`] order.
    pub fn kind_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        Kind::ALL
            .iter()
            .filter(|k| self.kinds >> (**k as u16) & 1 != 0)
            .map(|k| k.name())
    }
}

impl PredDef {
    /// The predicate in the rules language, as a `when` line would read: `Ready == false`,
    /// `pct(Price) > 4.5`, `Value outside [-20, 60]` (thresholds as they were parsed).
    pub fn to_text(&self) -> String {
        let source = match self.source {
            Source::Value(f) => f.name().to_string(),
            Source::Delta(f) => format!("delta({})", f.name()),
            Source::Pct(f) => format!("pct({})", f.name()),
            Source::Diff(a, b) => format!("{} - {}", a.name(), b.name()),
        };
        match &self.test {
            Test::Cmp(op, Literal::Num(x)) => format!("{source} {} {x}", op.text()),
            Test::Cmp(op, Literal::Str(x)) => format!("{source} {} {x:?}", op.text()),
            Test::Cmp(op, Literal::Bool(x)) => format!("{source} {} {x}", op.text()),
            Test::Outside(lo, hi) => format!("{source} outside [{lo}, {hi}]"),
        }
    }
}

/// A parsed rules file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSet {
    rules: Vec<RuleDef>,
}

/// Why a rules file was rejected. Every variant carries the 1-based line.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum RulesError {
    /// The line does not follow the grammar.
    #[error("line {line}: syntax error: {reason}")]
    Syntax {
        /// Line.
        line: u32,
        /// What was expected.
        reason: &'static str,
    },
    /// A field name that is not a [`FieldId`].
    #[error("line {line}: unknown field `{name}`")]
    UnknownField {
        /// Line.
        line: u32,
        /// The name as written.
        name: String,
    },
    /// A kind name that is not a [`Kind`].
    #[error("line {line}: unknown kind `{name}`")]
    UnknownKind {
        /// Line.
        line: u32,
        /// The name as written.
        name: String,
    },
    /// A severity other than `info`, `warning`, `critical`.
    #[error("line {line}: unknown severity `{name}` (info, warning or critical)")]
    UnknownSeverity {
        /// Line.
        line: u32,
        /// The name as written.
        name: String,
    },
    /// The test does not fit the field's type (a string against a number, a hash, …).
    #[error("line {line}: field `{field}` is {found}: {reason}")]
    TypeMismatch {
        /// Line.
        line: u32,
        /// The field.
        field: &'static str,
        /// Its type, in words.
        found: &'static str,
        /// What is not allowed.
        reason: &'static str,
    },
    /// A threshold no value can meet or that is not a finite number in range.
    #[error("line {line}: impossible threshold: {reason}")]
    ImpossibleThreshold {
        /// Line.
        line: u32,
        /// Why.
        reason: &'static str,
    },
    /// Two rules with one name.
    #[error("line {line}: duplicate rule name `{name}` (first on line {first})")]
    DuplicateName {
        /// Line of the second.
        line: u32,
        /// The name.
        name: String,
        /// Line of the first.
        first: u32,
    },
    /// A directive given twice in one rule (`kind`, `namespace`, `severity`, `hint`, `enabled`).
    #[error("line {line}: `{directive}` given twice in one rule")]
    DuplicateDirective {
        /// Line.
        line: u32,
        /// The directive.
        directive: &'static str,
    },
    /// A rule without a `kind` or `when` line.
    #[error("line {line}: rule `{name}` has no `{missing}` line")]
    Incomplete {
        /// Line of the `rule` line.
        line: u32,
        /// The rule.
        name: String,
        /// The missing directive.
        missing: &'static str,
    },
    /// More than [`MAX_RULES`] rules.
    #[error("line {line}: too many rules (at most {max})")]
    TooManyRules {
        /// Line of the first rule past the cap.
        line: u32,
        /// The cap.
        max: usize,
    },
    /// More than [`MAX_PREDICATES`] `when` lines in one rule.
    #[error("line {line}: too many `when` lines in one rule (at most {max})")]
    TooManyPredicates {
        /// Line.
        line: u32,
        /// The cap.
        max: usize,
    },
}

impl RulesError {
    /// The 1-based line the error refers to.
    pub fn line(&self) -> u32 {
        match *self {
            RulesError::Syntax { line, .. }
            | RulesError::UnknownField { line, .. }
            | RulesError::UnknownKind { line, .. }
            | RulesError::UnknownSeverity { line, .. }
            | RulesError::TypeMismatch { line, .. }
            | RulesError::ImpossibleThreshold { line, .. }
            | RulesError::DuplicateName { line, .. }
            | RulesError::DuplicateDirective { line, .. }
            | RulesError::Incomplete { line, .. }
            | RulesError::TooManyRules { line, .. }
            | RulesError::TooManyPredicates { line, .. } => line,
        }
    }
}

impl RuleSet {
    /// Parses a rules file (see `docs/rules.md`).
    pub fn parse(text: &str) -> Result<RuleSet, RulesError> {
        let mut rules: Vec<RuleDef> = Vec::new();
        let mut current: Option<Pending> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let toks = lex(raw, line)?;
            let Some(first) = toks.first() else { continue };
            let Tok::Ident(directive) = first else {
                return Err(syntax(line, "a line starts with a directive"));
            };
            let rest = &toks[1..];
            if directive == "rule" {
                if let Some(p) = current.take() {
                    rules.push(p.finish()?);
                }
                let name = match rest {
                    [Tok::Ident(n)] => n.clone(),
                    _ => return Err(syntax(line, "expected `rule NAME`")),
                };
                if let Some(prev) = rules.iter().find(|r| r.name == name) {
                    return Err(RulesError::DuplicateName {
                        line,
                        name,
                        first: prev.line,
                    });
                }
                if rules.len() >= MAX_RULES {
                    return Err(RulesError::TooManyRules {
                        line,
                        max: MAX_RULES,
                    });
                }
                current = Some(Pending::new(name, line));
                continue;
            }
            let Some(p) = current.as_mut() else {
                return Err(syntax(line, "expected `rule NAME` before directives"));
            };
            p.directive(directive, rest, line)?;
        }
        if let Some(p) = current.take() {
            rules.push(p.finish()?);
        }
        Ok(RuleSet { rules })
    }

    /// The rules, in file order; a rule's index is its id.
    pub fn rules(&self) -> &[RuleDef] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The id of the rule called `name`.
    pub fn id_of(&self, name: &str) -> Option<u16> {
        self.rules
            .iter()
            .position(|r| r.name == name)
            .map(|i| i as u16)
    }
}

fn syntax(line: u32, reason: &'static str) -> RulesError {
    RulesError::Syntax { line, reason }
}

/// A rule being parsed.
struct Pending {
    name: String,
    line: u32,
    kinds: Option<u16>,
    namespace: Option<String>,
    preds: Vec<PredDef>,
    severity: Option<Severity>,
    hint: Option<String>,
    enabled: Option<bool>,
}

impl Pending {
    fn new(name: String, line: u32) -> Pending {
        Pending {
            name,
            line,
            kinds: None,
            namespace: None,
            preds: Vec::new(),
            severity: None,
            hint: None,
            enabled: None,
        }
    }

    fn directive(&mut self, directive: &str, rest: &[Tok], line: u32) -> Result<(), RulesError> {
        let twice = |d: &'static str| RulesError::DuplicateDirective { line, directive: d };
        match directive {
            "kind" => {
                if self.kinds.is_some() {
                    return Err(twice("kind"));
                }
                let mut mask = 0u16;
                let mut expect_name = true;
                for t in rest {
                    match (t, expect_name) {
                        (Tok::Ident(n), true) => {
                            let k = Kind::ALL
                                .iter()
                                .find(|k| k.name() == n && **k != Kind::Unknown)
                                .ok_or_else(|| RulesError::UnknownKind {
                                    line,
                                    name: n.clone(),
                                })?;
                            mask |= 1 << (*k as u16);
                            expect_name = false;
                        }
                        (Tok::Comma, false) => expect_name = true,
                        _ => return Err(syntax(line, "expected `kind KIND[, KIND…]`")),
                    }
                }
                if mask == 0 || expect_name {
                    return Err(syntax(line, "expected `kind KIND[, KIND…]`"));
                }
                self.kinds = Some(mask);
            }
            "namespace" => {
                if self.namespace.is_some() {
                    return Err(twice("namespace"));
                }
                match rest {
                    [Tok::Ident(n)] | [Tok::Str(n)] => self.namespace = Some(n.clone()),
                    _ => return Err(syntax(line, "expected `namespace NAME`")),
                }
            }
            "severity" => {
                if self.severity.is_some() {
                    return Err(twice("severity"));
                }
                let [Tok::Ident(n)] = rest else {
                    return Err(syntax(line, "expected `severity info|warning|critical`"));
                };
                self.severity = Some(match n.as_str() {
                    "info" => Severity::Info,
                    "warning" => Severity::Warning,
                    "critical" => Severity::Critical,
                    _ => {
                        return Err(RulesError::UnknownSeverity {
                            line,
                            name: n.clone(),
                        })
                    }
                });
            }
            "hint" => {
                if self.hint.is_some() {
                    return Err(twice("hint"));
                }
                let [Tok::Str(h)] = rest else {
                    return Err(syntax(line, "expected `hint \"TEXT\"`"));
                };
                if h.len() > MAX_HINT {
                    return Err(syntax(line, "hint longer than 512 bytes"));
                }
                self.hint = Some(h.clone());
            }
            "enabled" => {
                if self.enabled.is_some() {
                    return Err(twice("enabled"));
                }
                self.enabled = Some(match rest {
                    [Tok::Ident(b)] if b == "true" => true,
                    [Tok::Ident(b)] if b == "false" => false,
                    _ => return Err(syntax(line, "expected `enabled true|false`")),
                });
            }
            "when" => {
                if self.preds.len() >= MAX_PREDICATES {
                    return Err(RulesError::TooManyPredicates {
                        line,
                        max: MAX_PREDICATES,
                    });
                }
                let p = parse_pred(rest, line)?;
                self.preds.push(p);
            }
            _ => {
                return Err(syntax(
                    line,
                    "unknown directive (rule, kind, namespace, when, severity, hint, enabled)",
                ))
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<RuleDef, RulesError> {
        let Some(kinds) = self.kinds else {
            return Err(RulesError::Incomplete {
                line: self.line,
                name: self.name,
                missing: "kind",
            });
        };
        if self.preds.is_empty() {
            return Err(RulesError::Incomplete {
                line: self.line,
                name: self.name,
                missing: "when",
            });
        }
        Ok(RuleDef {
            name: self.name,
            line: self.line,
            kinds,
            namespace: self.namespace,
            preds: self.preds,
            severity: self.severity.unwrap_or(Severity::Warning),
            hint: self.hint.unwrap_or_default(),
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

fn field_of(name: &str, line: u32) -> Result<FieldId, RulesError> {
    FieldId::ALL
        .iter()
        .copied()
        .find(|f| f.name() == name)
        .ok_or_else(|| RulesError::UnknownField {
            line,
            name: name.to_owned(),
        })
}

const fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Int => "an integer",
        FieldType::Float => "a float",
        FieldType::Bool => "a boolean",
        FieldType::Sym => "a string",
        FieldType::Hash => "a hash",
    }
}

fn mismatch(line: u32, f: FieldId, reason: &'static str) -> RulesError {
    RulesError::TypeMismatch {
        line,
        field: f.name(),
        found: type_name(field_type(f)),
        reason,
    }
}

fn numeric_field(line: u32, f: FieldId, what: &'static str) -> Result<(), RulesError> {
    if field_type(f).is_numeric() {
        Ok(())
    } else {
        Err(mismatch(line, f, what))
    }
}

fn parse_pred(toks: &[Tok], line: u32) -> Result<PredDef, RulesError> {
    // source
    let (source, rest) = match toks {
        [Tok::Ident(func), Tok::LParen, Tok::Ident(f), Tok::RParen, rest @ ..]
            if func == "delta" || func == "pct" =>
        {
            let f = field_of(f, line)?;
            numeric_field(line, f, "delta() and pct() need a numeric field")?;
            let s = if func == "delta" {
                Source::Delta(f)
            } else {
                Source::Pct(f)
            };
            (s, rest)
        }
        [Tok::Ident(func), Tok::LParen, ..] => {
            let _ = func;
            return Err(syntax(line, "expected `delta(FIELD)` or `pct(FIELD)`"));
        }
        [Tok::Ident(a), Tok::Minus, Tok::Ident(b), rest @ ..] => {
            let (a, b) = (field_of(a, line)?, field_of(b, line)?);
            numeric_field(line, a, "a difference needs numeric fields")?;
            numeric_field(line, b, "a difference needs numeric fields")?;
            (Source::Diff(a, b), rest)
        }
        [Tok::Ident(a), rest @ ..] => (Source::Value(field_of(a, line)?), rest),
        _ => return Err(syntax(line, "expected `when FIELD OP VALUE`")),
    };
    let f = source.field();
    let ty = match source {
        Source::Value(f) => field_type(f),
        _ => FieldType::Float,
    };
    if ty == FieldType::Hash {
        return Err(mismatch(line, f, "hash fields cannot be compared"));
    }
    let test = match rest {
        [Tok::Ident(kw), Tok::LBracket, lo @ .., Tok::RBracket] if kw == "outside" => {
            if !ty.is_numeric() {
                return Err(mismatch(line, f, "`outside` needs a numeric field"));
            }
            let (lo, hi) = match lo {
                [a, Tok::Comma, b] => (number(a, line)?, number(b, line)?),
                _ => return Err(syntax(line, "expected `outside [LO, HI]`")),
            };
            if lo > hi {
                return Err(RulesError::ImpossibleThreshold {
                    line,
                    reason: "band lower bound above upper bound",
                });
            }
            Test::Outside(lo, hi)
        }
        [Tok::Op(op), lit] => {
            let lit = match lit {
                Tok::Str(s) => Literal::Str(s.clone()),
                Tok::Ident(b) if b == "true" => Literal::Bool(true),
                Tok::Ident(b) if b == "false" => Literal::Bool(false),
                other => Literal::Num(number(other, line)?),
            };
            check_cmp(line, source, ty, *op, &lit)?;
            Test::Cmp(*op, lit)
        }
        _ => {
            return Err(syntax(
                line,
                "expected `OP VALUE` or `outside [LO, HI]` after the field",
            ))
        }
    };
    Ok(PredDef { line, source, test })
}

fn check_cmp(
    line: u32,
    source: Source,
    ty: FieldType,
    op: CmpOp,
    lit: &Literal,
) -> Result<(), RulesError> {
    let f = source.field();
    let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
    match (ty, lit) {
        (FieldType::Sym, Literal::Str(_)) | (FieldType::Bool, Literal::Bool(_)) if equality => {
            Ok(())
        }
        (FieldType::Sym, Literal::Str(_)) | (FieldType::Bool, Literal::Bool(_)) => Err(mismatch(
            line,
            f,
            "only == and != compare strings and booleans",
        )),
        (FieldType::Sym, _) => Err(mismatch(line, f, "compare it with a \"string\"")),
        (FieldType::Bool, _) => Err(mismatch(line, f, "compare it with true or false")),
        (_, Literal::Num(c)) => {
            if matches!(source, Source::Pct(_)) && *c < 0.0 {
                return Err(RulesError::ImpossibleThreshold {
                    line,
                    reason: "a percent move is never negative",
                });
            }
            let int_valued = match source {
                Source::Value(f) | Source::Delta(f) => field_type(f) == FieldType::Int,
                Source::Diff(a, b) => {
                    field_type(a) == FieldType::Int && field_type(b) == FieldType::Int
                }
                Source::Pct(_) => false,
            };
            if equality && int_valued && c.fract() != 0.0 {
                return Err(RulesError::ImpossibleThreshold {
                    line,
                    reason: "an integer value never equals a fraction",
                });
            }
            Ok(())
        }
        (_, _) => Err(mismatch(line, f, "compare it with a number")),
    }
}

fn number(t: &Tok, line: u32) -> Result<f64, RulesError> {
    match t {
        Tok::Num(v) => check_constant(*v, line),
        Tok::Ident(s)
            if s.eq_ignore_ascii_case("nan")
                || s.eq_ignore_ascii_case("inf")
                || s.eq_ignore_ascii_case("infinity") =>
        {
            Err(RulesError::ImpossibleThreshold {
                line,
                reason: "thresholds must be finite numbers (no NaN or infinity)",
            })
        }
        _ => Err(syntax(line, "expected a number")),
    }
}

/// Checks a constant: finite and at most [`MAX_CONSTANT`] in magnitude.
pub(crate) fn check_constant(v: f64, line: u32) -> Result<f64, RulesError> {
    if !v.is_finite() {
        return Err(RulesError::ImpossibleThreshold {
            line,
            reason: "thresholds must be finite numbers (no NaN or infinity)",
        });
    }
    if v.abs() > MAX_CONSTANT {
        return Err(RulesError::ImpossibleThreshold {
            line,
            reason: "threshold magnitude above 2^53",
        });
    }
    Ok(v)
}

/// A token of a rules line.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Minus,
}

fn lex(line_text: &str, line: u32) -> Result<Vec<Tok>, RulesError> {
    let b = line_text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => break,
            b'(' | b')' | b'[' | b']' | b',' => {
                out.push(match c {
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b'[' => Tok::LBracket,
                    b']' => Tok::RBracket,
                    _ => Tok::Comma,
                });
                i += 1;
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                let start = i;
                let mut closed = false;
                let mut seg = start;
                while i < b.len() {
                    match b[i] {
                        b'"' => {
                            s.push_str(&line_text[seg..i]);
                            closed = true;
                            i += 1;
                            break;
                        }
                        b'\\' if i + 1 < b.len() && (b[i + 1] == b'"' || b[i + 1] == b'\\') => {
                            s.push_str(&line_text[seg..i]);
                            s.push(b[i + 1] as char);
                            i += 2;
                            seg = i;
                        }
                        _ => i += 1,
                    }
                }
                if !closed {
                    return Err(syntax(line, "unterminated string"));
                }
                out.push(Tok::Str(s));
            }
            b'>' | b'<' | b'=' | b'!' => {
                let two = b.get(i + 1) == Some(&b'=');
                let op = match (c, two) {
                    (b'>', true) => CmpOp::Ge,
                    (b'>', false) => CmpOp::Gt,
                    (b'<', true) => CmpOp::Le,
                    (b'<', false) => CmpOp::Lt,
                    (b'=', true) => CmpOp::Eq,
                    (b'!', true) => CmpOp::Ne,
                    _ => return Err(syntax(line, "unknown operator (> >= < <= == !=)")),
                };
                out.push(Tok::Op(op));
                i += if two { 2 } else { 1 };
            }
            b'-' | b'+' | b'.' | b'0'..=b'9' => {
                // A minus followed by a letter is the difference operator.
                if c == b'-' && !matches!(b.get(i + 1), Some(b'0'..=b'9' | b'.')) {
                    out.push(Tok::Minus);
                    i += 1;
                    continue;
                }
                // A minus after an identifier or `)` is a binary minus as well.
                if c == b'-' && matches!(out.last(), Some(Tok::Ident(_) | Tok::RParen)) {
                    out.push(Tok::Minus);
                    i += 1;
                    continue;
                }
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_digit()
                        || b[i] == b'.'
                        || b[i] == b'_'
                        || b[i] == b'e'
                        || b[i] == b'E'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let text: String = line_text[start..i].chars().filter(|&c| c != '_').collect();
                let v: f64 = text.parse().map_err(|_| syntax(line, "malformed number"))?;
                out.push(Tok::Num(v));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'%'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(line_text[start..i].to_owned()));
            }
            _ => return Err(syntax(line, "unexpected character")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_difference_and_negative_numbers() {
        let t = lex("when ReplicasDesired - ReplicasReady >= -2.5e1", 1).unwrap();
        assert_eq!(t[2], Tok::Minus);
        assert_eq!(t[5], Tok::Num(-25.0));
    }

    #[test]
    fn strings_take_escapes() {
        let t = lex(r#"hint "say \"hi\" \\ ok" # c"#, 1).unwrap();
        assert_eq!(t[1], Tok::Str(r#"say "hi" \ ok"#.to_owned()));
    }
}
