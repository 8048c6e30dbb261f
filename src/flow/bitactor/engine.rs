//! [`BitActor`]: evaluates compiled rules over batches of items, tracks per-object alert
//! state, and applies rule commands.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use thiserror::Error;

use crate::flow::bitactor::catalog::{as_f64, RuleCatalog, RuleInfo, Shared};
use crate::flow::bitactor::program::{self, shape_bounds, Mode, Pred, Program, Shape};
use crate::flow::bitactor::rules::{CmpOp, RuleSet, MAX_CONSTANT, MAX_RULES};
use crate::flow::bitactor::table::{ActorTable, DEFAULT_CAPACITY_LOG2};
use crate::flow::item::{ChangeKind, Command, Item, RuleHits, What, CLEARED_BIT};
use crate::flow::ReplyCode;
use crate::sources::intern::Interner;
use crate::sources::record::{Kind, Op, Record, MAX_FIELDS};

/// Construction options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActorConfig {
    /// log2 of the actor table's slot count (default 17: 131,072 slots, of which 7/8 =
    /// 114,688 objects may be in alert at once).
    pub capacity_log2: u8,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            capacity_log2: DEFAULT_CAPACITY_LOG2,
        }
    }
}

/// Why a rule set could not be compiled.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CompileError {
    /// A string of the rule could not be interned (the interner is full).
    #[error("rule `{rule}`: cannot intern \"{text}\": interner full")]
    InternerFull {
        /// The rule.
        rule: String,
        /// The string.
        text: String,
    },
}

/// Why a command was refused; nothing changed.
#[derive(Clone, Copy, Debug, Error, PartialEq)]
pub enum CommandError {
    /// No rule has this id.
    #[error("unknown rule {0}")]
    UnknownRule(u16),
    /// The argument is not acceptable for this rule.
    #[error("rule {rule}: bad argument: {reason}")]
    BadArgument {
        /// The rule.
        rule: u16,
        /// Why.
        reason: &'static str,
    },
    /// The rule is not alerting for this object.
    #[error("no active alert of rule {rule} for object {key:#x}")]
    UnknownAlert {
        /// The object key.
        key: u64,
        /// The rule.
        rule: u16,
    },
    /// Not a bitactor command.
    #[error("not a bitactor command")]
    UnknownCommand,
}

impl CommandError {
    /// The reply code for this error.
    pub const fn code(&self) -> ReplyCode {
        match self {
            CommandError::UnknownRule(_) => ReplyCode::UnknownRule,
            CommandError::BadArgument { .. } => ReplyCode::BadArgument,
            CommandError::UnknownAlert { .. } => ReplyCode::UnknownAlert,
            CommandError::UnknownCommand => ReplyCode::UnknownCommand,
        }
    }
}

/// Counters of a [`BitActor`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActorStats {
    /// Record items evaluated.
    pub items: u64,
    /// Alerts raised (hits without [`CLEARED_BIT`]).
    pub raised: u64,
    /// Alerts cleared (hits with [`CLEARED_BIT`]).
    pub cleared: u64,
    /// Items whose object found the table full (matches emitted level-triggered).
    pub table_overflows: u64,
    /// Objects currently in alert (table entries).
    pub active_objects: u64,
}

/// The rule engine. See the [module docs](super).
#[derive(Debug)]
pub struct BitActor {
    program: Program,
    enabled: u64,
    table: ActorTable,
    catalog: RuleCatalog,
    rules: usize,
    raised: [u64; MAX_RULES],
    cleared: [u64; MAX_RULES],
    stats: ActorStats,
    /// Per-field scratch values, indexed by field id (kept between items; only bits set
    /// in the item's presence masks are read).
    cur: [f64; 64],
    /// Previous values, then (during one item) deltas.
    prev: [f64; 64],
    /// Percent moves.
    pct: [f64; 64],
    /// Per kind: which fields of the last record layout seen the kind's rules read.
    plans: [Plan; Kind::COUNT],
}

/// Which fields of one record layout (field ids and types in slot order) a kind's rules
/// read: records of one kind nearly always share a layout, so the walk over every field
/// that finds them is done once per layout change, not once per item.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// [`Record::raw_slots_word`] of the layout.
    word: u64,
    /// Its field count; [`Plan::NONE`] when no layout was seen yet.
    count: u8,
    /// Entries used in `pos`.
    len: u8,
    /// Positions of the fields in the kind's `need_cur`, in descending order (so that
    /// with a duplicated id the first field wins, as in `Record::get`).
    pos: [u8; MAX_FIELDS],
    /// Fields the kind reads that the layout lacks (they read as NaN).
    missing: u64,
}

impl Plan {
    /// `count` of a plan not built yet (a record has at most `MAX_FIELDS`).
    const NONE: u8 = u8::MAX;

    const EMPTY: Plan = Plan {
        word: 0,
        count: Plan::NONE,
        len: 0,
        pos: [0; MAX_FIELDS],
        missing: 0,
    };

    /// The plan for `rec`'s layout, given the fields `need` the kind reads.
    fn build(rec: &Record, need: u64) -> Plan {
        let slots = rec.raw_slots();
        let mut plan = Plan {
            word: rec.raw_slots_word(),
            count: slots.len() as u8,
            ..Plan::EMPTY
        };
        let mut seen = 0u64;
        for i in (0..slots.len().min(MAX_FIELDS)).rev() {
            let id = slots[i] & 63;
            if need >> id & 1 != 0 {
                plan.pos[plan.len as usize] = i as u8;
                plan.len += 1;
                seen |= 1u64 << id;
            }
        }
        plan.missing = need & !seen;
        plan
    }

    /// Whether this plan was built for `rec`'s layout.
    #[inline(always)]
    fn fits(&self, rec: &Record) -> bool {
        self.word == rec.raw_slots_word() && usize::from(self.count) == rec.field_count()
    }
}

impl BitActor {
    /// Compiles `rules`, interning their strings in `interner` (the source thread's), with
    /// the default [`ActorConfig`].
    pub fn compile(rules: &RuleSet, interner: &mut Interner) -> Result<BitActor, CompileError> {
        BitActor::compile_with(rules, interner, ActorConfig::default())
    }

    /// Compiles `rules`, interning their strings in `interner`.
    pub fn compile_with(
        rules: &RuleSet,
        interner: &mut Interner,
        config: ActorConfig,
    ) -> Result<BitActor, CompileError> {
        let mut resolve = |s: &str| {
            let sym = interner.intern(s);
            if sym.is_overflow() {
                Err(())
            } else {
                Ok(f64::from(sym.id()))
            }
        };
        BitActor::build(rules, &mut resolve, config)
    }

    /// Compiles `rules` against an interner that is only read: a string the interner does
    /// not hold cannot occur in any record, so `== "it"` never holds and `!= "it"` always
    /// does. For tests and tools that read records produced elsewhere.
    pub fn compile_readonly(rules: &RuleSet, interner: &Interner, config: ActorConfig) -> BitActor {
        let mut resolve = |s: &str| Ok(interner.get(s).map_or(-1.0, |sym| f64::from(sym.id())));
        match BitActor::build(rules, &mut resolve, config) {
            Ok(a) => a,
            // `resolve` never fails.
            Err(_) => unreachable!("read-only resolution cannot fail"),
        }
    }

    fn build(
        rules: &RuleSet,
        resolve: &mut program::Resolve<'_>,
        config: ActorConfig,
    ) -> Result<BitActor, CompileError> {
        let program =
            program::compile(rules, resolve).map_err(|(r, text)| CompileError::InternerFull {
                rule: rules.rules()[r].name.clone(),
                text,
            })?;
        let mut enabled = 0u64;
        let infos = rules
            .rules()
            .iter()
            .enumerate()
            .map(|(r, def)| {
                if def.enabled {
                    enabled |= 1 << r;
                }
                let threshold = program.thresholds[r]
                    .as_ref()
                    .map_or(f64::NAN, |t| t.current);
                RuleInfo {
                    name: def.name.clone(),
                    severity: def.severity,
                    hint: def.hint.clone(),
                    source: def.preds[def.primary_pred()].source,
                    threshold: AtomicU64::new(threshold.to_bits()),
                    enabled: AtomicBool::new(def.enabled),
                    raised: AtomicU64::new(0),
                    cleared: AtomicU64::new(0),
                }
            })
            .collect();
        Ok(BitActor {
            program,
            enabled,
            table: ActorTable::new(config.capacity_log2),
            catalog: RuleCatalog {
                shared: Arc::new(Shared {
                    rules: infos,
                    overflows: AtomicU64::new(0),
                    items: AtomicU64::new(0),
                }),
            },
            rules: rules.len(),
            raised: [0; MAX_RULES],
            cleared: [0; MAX_RULES],
            stats: ActorStats::default(),
            cur: [0.0; 64],
            prev: [0.0; 64],
            pct: [0.0; 64],
            plans: [Plan::EMPTY; Kind::COUNT],
        })
    }

    /// The catalog (clone it for other threads).
    pub fn catalog(&self) -> &RuleCatalog {
        &self.catalog
    }

    /// Counters.
    pub fn stats(&self) -> ActorStats {
        ActorStats {
            active_objects: self.table.len() as u64,
            ..self.stats
        }
    }

    /// Slots of the actor table.
    pub fn table_capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Most objects that can be in alert at once (7/8 of the slots).
    pub fn table_max_objects(&self) -> usize {
        self.table.max_len()
    }

    /// Rules currently alerting for object `key` (bit `r` = rule `r`).
    pub fn active(&self, key: u64) -> u64 {
        self.table
            .find(key)
            .map_or(0, |i| self.table.slot(i).active)
    }

    /// Acknowledged alerts of object `key`.
    pub fn acknowledged(&self, key: u64) -> u64 {
        self.table.find(key).map_or(0, |i| self.table.slot(i).acked)
    }

    /// Bit mask of enabled rules.
    pub fn enabled_mask(&self) -> u64 {
        self.enabled
    }

    /// Evaluates every `What::Record` item of the batch: overwrites its `hits` with the
    /// alerts it raised (rule id) and cleared (rule id | [`CLEARED_BIT`]) — raises first,
    /// each in ascending rule id. Other items are left untouched. Returns the number of
    /// hits produced (those past [`MAX_HITS`](crate::flow::MAX_HITS) included).
    ///
    /// Never allocates.
    pub fn evaluate(&mut self, items: &mut [Item]) -> usize {
        self.run_batch(items, false)
    }

    /// Evaluates the batch and applies its bitactor commands in stream order: the record
    /// items before a command see the rules as they were, those after it see the change.
    /// Command items become their replies (see [`apply_item`](Self::apply_item)); other
    /// items pass untouched. Returns the number of hits. Never allocates.
    pub fn process(&mut self, items: &mut [Item]) -> usize {
        self.run_batch(items, true)
    }

    /// One pass over the batch: evaluates record items and, with `commands`, applies
    /// command items where they stand; then publishes the counters once.
    #[inline]
    fn run_batch(&mut self, items: &mut [Item], commands: bool) -> usize {
        let mut hits = 0usize;
        let mut records = 0u64;
        for item in items.iter_mut() {
            match item.header.what {
                What::Record => {
                    records += 1;
                    hits += self.evaluate_one(item);
                }
                What::Command if commands => {
                    self.apply_item(item);
                }
                _ => {}
            }
        }
        self.stats.items += records;
        self.catalog
            .shared
            .items
            .store(self.stats.items, Ordering::Relaxed);
        if hits != 0 {
            self.publish_counters();
        }
        hits
    }

    fn publish_counters(&self) {
        for r in 0..self.rules {
            let info = &self.catalog.shared.rules[r];
            info.raised.store(self.raised[r], Ordering::Relaxed);
            info.cleared.store(self.cleared[r], Ordering::Relaxed);
        }
        self.catalog
            .shared
            .overflows
            .store(self.stats.table_overflows, Ordering::Relaxed);
    }

    /// The rules of `item`'s kind that hold for it (before edge detection).
    #[inline]
    fn matches(&mut self, item: &Item) -> u64 {
        let rec = &item.record;
        let kd = &self.program.kinds[rec.kind as usize];
        if kd.rules & self.enabled == 0 {
            return 0;
        }
        let (need_cur, need_prev) = (kd.need_cur, kd.need_prev);
        let k = rec.kind as usize;
        if !self.plans[k].fits(rec) {
            self.plans[k] = Plan::build(rec, need_cur);
        }
        let plan = &self.plans[k];
        // Missing values read as NaN (see `program`): the fields this kind reads that the
        // record lacks (every other one is written below), and every previous value.
        let mut need = plan.missing;
        while need != 0 {
            self.cur[need.trailing_zeros() as usize] = f64::NAN;
            need &= need - 1;
        }
        let mut need = need_prev;
        while need != 0 {
            self.prev[need.trailing_zeros() as usize] = f64::NAN;
            need &= need - 1;
        }
        let (slots, bits) = (rec.raw_slots(), rec.raw_values());
        let present = u32::from(item.header.prev_present);
        // Only the fields this kind reads (every field a predicate, the guard or a previous
        // value needs is in `need_cur`), found by the plan. Raw slots: id in the low 6
        // bits, type tag in the high 2 — nothing to decode.
        for &i in &plan.pos[..usize::from(plan.len).min(MAX_FIELDS)] {
            let i = usize::from(i);
            let (Some(&slot), Some(&raw)) = (slots.get(i), bits.get(i)) else {
                continue;
            };
            let id = slot & 63;
            self.cur[id as usize] = raw_as_f64(slot >> 6, raw);
            if present >> i & 1 != 0 && need_prev >> id & 1 != 0 {
                if let Some(v) = item.prev_at(i) {
                    self.prev[id as usize] = as_f64(v);
                }
            }
        }
        if need_prev != 0 {
            // Each field's delta and percent move once per item, however many rules read them.
            let mut need = need_prev;
            while need != 0 {
                let b = need.trailing_zeros() as usize;
                let (c, pv) = (self.cur[b], self.prev[b]);
                self.prev[b] = c - pv;
                self.pct[b] = ((c - pv) / pv.abs()).abs() * 100.0;
                need &= need - 1;
            }
        }
        // Guarded rules: the guard field's value picks the program.
        let slot = match kd.guard {
            Some(g) => {
                let x = self.cur[g as usize & 63];
                kd.branches
                    .iter()
                    .find(|b| b.0 == x)
                    .map_or(kd.default, |b| b.1)
            }
            None => kd.default,
        };
        let prog = &self.program.progs[slot];
        let applicable = prog.rules & self.enabled;
        if applicable == 0 {
            return 0;
        }
        let cur = &self.cur;
        let delta_of = &self.prev;
        let pct_of = &self.pct;
        let ns = f64::from(rec.namespace.id());
        let p = &prog.preds;
        let e = &prog.ends;
        let group = |g: usize| &p[if g == 0 { 0 } else { e[g - 1] }..e[g]];
        let value = |q: &Pred| cur[q.a as usize & 63];
        let delta = |q: &Pred| delta_of[q.a as usize & 63];
        let pct = |q: &Pred| pct_of[q.a as usize & 63];
        let diff = |q: &Pred| cur[q.a as usize & 63] - cur[q.b as usize & 63];
        let space = |_: &Pred| ns;
        let v = Mode::Value as usize * 2;
        let d = Mode::Delta as usize * 2;
        let c = Mode::Pct as usize * 2;
        let f = Mode::Diff as usize * 2;
        let s = Mode::Namespace as usize * 2;
        // Only the groups this program has (most are empty): one predictable test each
        // (measured: fewer instructions than a loop over the set bits with a jump table).
        let has = |g: usize| prog.groups >> g & 1 != 0;
        let mut fail = 0u64;
        if has(v) {
            fail |= inside(group(v), value);
        }
        if has(v + 1) {
            fail |= outside(group(v + 1), value);
        }
        if has(d) {
            fail |= inside(group(d), delta);
        }
        if has(d + 1) {
            fail |= outside(group(d + 1), delta);
        }
        if has(c) {
            fail |= inside(group(c), pct);
        }
        if has(c + 1) {
            fail |= outside(group(c + 1), pct);
        }
        if has(f) {
            fail |= inside(group(f), diff);
        }
        if has(f + 1) {
            fail |= outside(group(f + 1), diff);
        }
        if has(s) {
            fail |= inside(group(s), space);
        }
        applicable & !fail
    }

    #[inline(always)]
    fn evaluate_one(&mut self, item: &mut Item) -> usize {
        item.hits = RuleHits::default();
        let deleted = item.header.change == ChangeKind::Deleted || item.record.op == Op::Deleted;
        let m = if deleted { 0 } else { self.matches(item) };
        let key = item.record.key;
        let found = if self.table.is_empty() {
            None
        } else {
            self.table.find(key)
        };
        let old = found.map_or(0, |i| self.table.slot(i).active);
        let rising = m & !old;
        let falling = old & !m;
        if rising | falling == 0 {
            return 0;
        }
        match found {
            Some(i) => {
                if m == 0 {
                    self.table.remove(i);
                } else {
                    let s = self.table.slot_mut(i);
                    s.active = m;
                    s.acked &= m;
                }
            }
            None => {
                if self.table.insert(key, m, item.record.seq).is_none() {
                    self.stats.table_overflows += 1;
                }
            }
        }
        let mut bits = rising;
        while bits != 0 {
            let r = bits.trailing_zeros() as usize;
            item.hits.push(r as u16);
            self.raised[r] += 1;
            bits &= bits - 1;
        }
        let mut bits = falling;
        while bits != 0 {
            let r = bits.trailing_zeros() as usize;
            item.hits.push(r as u16 | CLEARED_BIT);
            self.cleared[r] += 1;
            bits &= bits - 1;
        }
        let (up, down) = (rising.count_ones() as u64, falling.count_ones() as u64);
        self.stats.raised += up;
        self.stats.cleared += down;
        (up + down) as usize
    }

    /// Applies a rule command. Returns the command's detail:
    ///
    /// * `SetThreshold`: the previous threshold. The threshold is the constant of the
    ///   rule's first numeric predicate (for `outside [lo, hi]`: `hi`). Refused with
    ///   `BadArgument` when the value is NaN, infinite, above 2^53 in magnitude, negative
    ///   for `pct()`, below `lo` for a band, a fraction for `==`/`!=` on integers, or the
    ///   rule has no numeric predicate.
    /// * `EnableRule`: 1.0 if the rule was enabled before, else 0.0. Disabling drops the
    ///   rule's active alerts without emitting cleared hits (it walks the whole table).
    /// * `AckAlert`: 1.0 when the alert is newly acknowledged, 0.0 when it already was.
    ///   The acknowledgement lasts until the alert clears.
    ///
    /// A refused command changes nothing. Never allocates.
    pub fn apply(&mut self, cmd: &Command) -> Result<f64, CommandError> {
        match *cmd {
            Command::SetThreshold { rule, value, .. } => self.set_threshold(rule, value),
            Command::EnableRule { rule, enabled, .. } => {
                self.check_rule(rule)?;
                let bit = 1u64 << rule;
                let was = self.enabled & bit != 0;
                if enabled {
                    self.enabled |= bit;
                } else {
                    self.enabled &= !bit;
                    if was {
                        self.table.clear_rules(bit);
                    }
                }
                self.catalog.shared.rules[usize::from(rule)]
                    .enabled
                    .store(enabled, Ordering::Relaxed);
                Ok(if was { 1.0 } else { 0.0 })
            }
            Command::AckAlert { key, rule, .. } => {
                self.check_rule(rule)?;
                let bit = 1u64 << rule;
                let i = self
                    .table
                    .find(key)
                    .filter(|&i| self.table.slot(i).active & bit != 0)
                    .ok_or(CommandError::UnknownAlert { key, rule })?;
                let s = self.table.slot_mut(i);
                let newly = s.acked & bit == 0;
                s.acked |= bit;
                Ok(if newly { 1.0 } else { 0.0 })
            }
            _ => Err(CommandError::UnknownCommand),
        }
    }

    /// Applies the command carried by a `What::Command` item and turns the item into its
    /// `What::Reply` (code 0 and the detail, or the error code and NaN). Returns `false`
    /// and leaves the item alone when it is not a bitactor command.
    pub fn apply_item(&mut self, item: &mut Item) -> bool {
        if item.header.what != What::Command
            || !matches!(
                item.command,
                Command::SetThreshold { .. }
                    | Command::EnableRule { .. }
                    | Command::AckAlert { .. }
            )
        {
            return false;
        }
        let request = item.command.request().unwrap_or(0);
        let (code, detail) = match self.apply(&item.command) {
            Ok(d) => (ReplyCode::Ok as u16, d),
            Err(e) => (e.code() as u16, f64::NAN),
        };
        item.command = Command::Reply {
            request,
            code,
            detail,
        };
        item.header.what = What::Reply;
        true
    }

    fn check_rule(&self, rule: u16) -> Result<(), CommandError> {
        if usize::from(rule) < self.rules {
            Ok(())
        } else {
            Err(CommandError::UnknownRule(rule))
        }
    }

    fn set_threshold(&mut self, rule: u16, value: f64) -> Result<f64, CommandError> {
        self.check_rule(rule)?;
        let bad = |reason| CommandError::BadArgument { rule, reason };
        let spec = self.program.thresholds[usize::from(rule)]
            .as_mut()
            .ok_or(bad("the rule has no numeric threshold"))?;
        if !value.is_finite() {
            return Err(bad("NaN or infinite"));
        }
        if value.abs() > MAX_CONSTANT {
            return Err(bad("magnitude above 2^53"));
        }
        if spec.pct && value < 0.0 {
            return Err(bad("a percent move is never negative"));
        }
        if let Shape::Band { lo } = spec.shape {
            if value < lo {
                return Err(bad("band upper bound below its lower bound"));
            }
        }
        if let Shape::Cmp(op) = spec.shape {
            if spec.int_valued && matches!(op, CmpOp::Eq | CmpOp::Ne) && value.fract() != 0.0 {
                return Err(bad("an integer value never equals a fraction"));
            }
        }
        let (lo, hi, neg) = shape_bounds(spec.shape, value);
        // The group (inside/outside) of a predicate never changes with its threshold.
        debug_assert_eq!(
            neg,
            matches!(spec.shape, Shape::Band { .. } | Shape::Cmp(CmpOp::Ne))
        );
        for &(k, i) in &spec.locs {
            let p = &mut self.program.progs[k].preds[i];
            p.lo = lo;
            p.hi = hi;
        }
        let old = spec.current;
        spec.current = value;
        self.catalog.shared.rules[usize::from(rule)]
            .threshold
            .store(value.to_bits(), Ordering::Relaxed);
        Ok(old)
    }
}

/// Fail bits of predicates that hold when `lo ≤ x ≤ hi` (false for NaN).
#[inline(always)]
fn inside(preds: &[Pred], x: impl Fn(&Pred) -> f64) -> u64 {
    let mut fail = 0u64;
    for q in preds {
        let v = x(q);
        let ok = (v >= q.lo) & (v <= q.hi);
        // A shift rather than a select: LLVM keeps this branch-free.
        fail |= u64::from(!ok) << q.rule;
    }
    fail
}

/// Fail bits of predicates that hold when `x < lo ∨ x > hi` (false for NaN).
#[inline(always)]
fn outside(preds: &[Pred], x: impl Fn(&Pred) -> f64) -> u64 {
    let mut fail = 0u64;
    for q in preds {
        let v = x(q);
        let ok = (v < q.lo) | (v > q.hi);
        fail |= u64::from(!ok) << q.rule;
    }
    fail
}

/// A raw field payload (type tag as in [`Record::raw_slots`]) as the `f64` rules compare.
#[inline(always)]
fn raw_as_f64(tag: u8, bits: u64) -> f64 {
    match tag {
        0 => bits as i64 as f64,
        1 => f64::from_bits(bits),
        // Booleans are 0/1; symbols compare by id.
        _ => bits as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::record::{FieldId, FieldValue};

    fn tick(fields: &[(FieldId, f64)]) -> Item {
        let mut r = Record::new(Kind::Tick, Op::Modified);
        r.key = 42;
        for &(id, v) in fields {
            r.push(id, FieldValue::F64(v));
        }
        Item::from_record(r)
    }

    /// Hits of `fields` evaluated as the next item of one object.
    fn hits(actor: &mut BitActor, fields: &[(FieldId, f64)]) -> Vec<u16> {
        let mut items = [tick(fields)];
        actor.evaluate(&mut items);
        items[0].hits.as_slice().to_vec()
    }

    #[test]
    fn a_changed_field_layout_reads_the_fields_where_they_now_are() {
        let rules = RuleSet::parse("rule high\n kind Tick\n when Price > 100\n").unwrap();
        let mut actor = BitActor::compile(&rules, &mut Interner::default()).unwrap();
        let (price, qty) = (FieldId::Price, FieldId::Quantity);
        let cleared = CLEARED_BIT;
        assert_eq!(hits(&mut actor, &[(price, 150.0)]), [0]);
        assert_eq!(hits(&mut actor, &[(price, 150.0)]), [] as [u16; 0]);
        // The same layout again, with a value that no longer matches.
        assert_eq!(hits(&mut actor, &[(price, 50.0)]), [cleared]);
        // Price moves to another slot: its value is read there.
        assert_eq!(hits(&mut actor, &[(qty, 1.0), (price, 150.0)]), [0]);
        // Price missing: it reads as NaN (not as the last layout's value): no match.
        assert_eq!(hits(&mut actor, &[(qty, 150.0)]), [cleared]);
        assert_eq!(hits(&mut actor, &[(qty, 1.0), (price, 150.0)]), [0]);
        // A duplicated id: the first field wins, as in `Record::get`.
        assert_eq!(
            hits(&mut actor, &[(price, 50.0), (price, 150.0)]),
            [cleared]
        );
        assert_eq!(hits(&mut actor, &[(price, 150.0), (price, 50.0)]), [0]);
        assert_eq!(hits(&mut actor, &[]), [cleared]);
    }
}
