//! [`BitActor`]: evaluates compiled rules over batches of items, tracks per-object alert
//! state, and applies rule commands.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use thiserror::Error;

use crate::flow::bitactor::catalog::{RuleCatalog, RuleInfo, Shared};
use crate::flow::bitactor::column::{Column, Isa, WIDTH};
use crate::flow::bitactor::program::{self, shape_bounds, Program, Shape, SourceKey};
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
    /// The widest vector instructions the predicate tests may use (default: the widest
    /// the CPU has). Every choice gives the same results; a narrower one is for
    /// comparing them, or for a process that must not use AVX-512.
    pub vectors: Vectors,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            capacity_log2: DEFAULT_CAPACITY_LOG2,
            vectors: Vectors::Widest,
        }
    }
}

/// A cap on the vector instructions of the predicate tests: the actor uses the widest
/// instruction set the CPU has, up to the cap (see [`BitActor::instruction_set`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vectors {
    /// The widest the CPU has: AVX-512, AVX or SSE2 on x86-64.
    #[default]
    Widest,
    /// At most AVX (4 values per compare).
    Avx,
    /// At most SSE2 (2 values per compare).
    Sse2,
    /// None: a scalar loop.
    Scalar,
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
    /// The instruction set of the column tests.
    isa: Isa,
    /// One column per value the rules read ([`Program::sources`]): the values of the
    /// items of the kind being evaluated in the current chunk, packed from row 0 (scratch).
    cols: Vec<Column>,
    /// Per kind: how the kind's values are read from the last record layout seen.
    plans: [Plan; Kind::COUNT],
}

/// How one of a kind's values ([`KindSources::sources`](program::KindSources)) is read
/// from a record of one layout: which slot, of which type.
#[derive(Clone, Copy, Debug)]
struct SourceOp {
    code: u8,
    /// Slot of the (first) field.
    a: u8,
    /// Slot of the second field of a difference.
    b: u8,
    /// Type tags of the two slots (as in [`Record::raw_slots`]).
    a_tag: u8,
    b_tag: u8,
}

impl SourceOp {
    /// The field is missing from the layout: the value is NaN.
    const MISSING: u8 = 0;
    const VALUE: u8 = 1;
    const DELTA: u8 = 2;
    const PCT: u8 = 3;
    const DIFF: u8 = 4;
    const NAMESPACE: u8 = 5;

    /// A value whose field the layout lacks.
    const NAN: SourceOp = SourceOp {
        code: SourceOp::MISSING,
        a: 0,
        b: 0,
        a_tag: 0,
        b_tag: 0,
    };

    /// How `key` reads a record whose raw slots are `slots`.
    fn new(key: SourceKey, slots: &[u8]) -> SourceOp {
        // The first field with the id wins, as in `Record::get`.
        let at = |f: u8| slots.iter().position(|&s| s & 63 == f);
        let tag = |i: usize| slots[i] >> 6;
        let one = |code: u8, f: u8| match at(f) {
            Some(i) => SourceOp {
                code,
                a: i as u8,
                a_tag: tag(i),
                ..SourceOp::NAN
            },
            None => SourceOp::NAN,
        };
        match key {
            SourceKey::Value(f) => one(SourceOp::VALUE, f),
            SourceKey::Delta(f) => one(SourceOp::DELTA, f),
            SourceKey::Pct(f) => one(SourceOp::PCT, f),
            SourceKey::Diff(x, y) => match (at(x), at(y)) {
                (Some(i), Some(j)) => SourceOp {
                    code: SourceOp::DIFF,
                    a: i as u8,
                    b: j as u8,
                    a_tag: tag(i),
                    b_tag: tag(j),
                },
                _ => SourceOp::NAN,
            },
            SourceKey::Namespace => SourceOp {
                code: SourceOp::NAMESPACE,
                ..SourceOp::NAN
            },
        }
    }
}

/// How a kind's values are read from one record layout (field ids and types in slot
/// order): records of one kind nearly always share a layout, so finding the fields is done
/// once per layout change, not once per item.
#[derive(Clone, Debug)]
struct Plan {
    /// [`Record::raw_slots_word`] of the layout.
    word: u64,
    /// Its field count; [`Plan::NONE`] when no layout was seen yet.
    count: u8,
    /// One per value of the kind (allocated at compile time, rewritten in place).
    ops: Vec<SourceOp>,
}

impl Plan {
    /// `count` of a plan not built yet (a record has at most `MAX_FIELDS`).
    const NONE: u8 = u8::MAX;

    fn new(values: usize) -> Plan {
        Plan {
            word: 0,
            count: Plan::NONE,
            ops: vec![SourceOp::NAN; values],
        }
    }

    /// Rebuilds the plan for `rec`'s layout; `kind` lists the kind's values as indices
    /// into `sources`. Never allocates.
    fn rebuild(&mut self, rec: &Record, kind: &[u16], sources: &[SourceKey]) {
        let slots = rec.raw_slots();
        self.word = rec.raw_slots_word();
        self.count = slots.len() as u8;
        for (op, &s) in self.ops.iter_mut().zip(kind) {
            *op = sources
                .get(usize::from(s))
                .map_or(SourceOp::NAN, |&key| SourceOp::new(key, slots));
        }
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
            isa: Isa::detect(match config.vectors {
                Vectors::Widest => usize::MAX,
                Vectors::Avx => 4,
                Vectors::Sse2 => 2,
                Vectors::Scalar => 1,
            }),
            cols: vec![Column::NAN; program.sources.len()],
            plans: std::array::from_fn(|k| Plan::new(program.kinds[k].sources.len())),
            program,
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

    /// The vector instruction set the predicate tests run on (`avx512`, `avx`, `sse2` or
    /// `scalar`): the widest the CPU has, up to [`ActorConfig::vectors`], detected once per
    /// actor.
    pub fn instruction_set(&self) -> &'static str {
        self.isa.name()
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

    /// Evaluates the batch's records, and with `commands` applies its command items where
    /// they stand (the records between two commands are evaluated together); then
    /// publishes the counters once.
    #[inline]
    fn run_batch(&mut self, items: &mut [Item], commands: bool) -> usize {
        let mut hits = 0usize;
        let mut records = 0u64;
        let mut rest = items;
        while !rest.is_empty() {
            let end = if commands {
                rest.iter()
                    .position(|it| it.header.what == What::Command)
                    .unwrap_or(rest.len())
            } else {
                rest.len()
            };
            let (run, after) = rest.split_at_mut(end);
            for chunk in run.chunks_mut(WIDTH) {
                let (h, n) = self.evaluate_chunk(chunk);
                hits += h;
                records += n;
            }
            rest = match after.split_first_mut() {
                Some((command, after)) => {
                    self.apply_item(command);
                    after
                }
                None => &mut [],
            };
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

    /// Evaluates up to [`WIDTH`] items column-wise, one kind at a time: the kind's items
    /// write the values its rules read into the columns, packed at the front (the `j`-th
    /// item of the kind at row `j`); every predicate of the kind's rules tests the packed
    /// rows at once; a rule's packed mask is the AND of its predicates', spread back to
    /// the items' positions. Returns (hits, records).
    #[inline]
    fn evaluate_chunk(&mut self, chunk: &mut [Item]) -> (usize, u64) {
        debug_assert!(chunk.len() <= WIDTH);
        // Items per kind that have enabled rules to evaluate.
        let mut of_kind = [0u64; Kind::COUNT];
        let mut kinds = 0u32;
        let mut records = 0u64;
        for (i, item) in chunk.iter_mut().enumerate() {
            if item.header.what != What::Record {
                continue;
            }
            records += 1;
            item.hits = RuleHits::default();
            let rec = &item.record;
            if item.header.change == ChangeKind::Deleted || rec.op == Op::Deleted {
                continue;
            }
            let k = rec.kind as usize % Kind::COUNT;
            if self.program.kinds[k].rules & self.enabled != 0 {
                of_kind[k] |= 1u64 << i;
                kinds |= 1 << k;
            }
        }
        // The matching rules of each item.
        let mut matched = [0u64; WIDTH];
        while kinds != 0 {
            let k = kinds.trailing_zeros() as usize;
            kinds &= kinds - 1;
            self.evaluate_kind(k, of_kind[k], chunk, &mut matched);
        }
        let mut hits = 0;
        for (item, &m) in chunk.iter_mut().zip(&matched) {
            if item.header.what == What::Record {
                hits += self.edges(item, m);
            }
        }
        (hits, records)
    }

    /// Evaluates the rules of kind `k` for its items `items` (bit `i`: `chunk[i]`) and ORs
    /// each item's matching rules into `matched`.
    #[inline]
    fn evaluate_kind(&mut self, k: usize, items: u64, chunk: &[Item], matched: &mut [u64; WIDTH]) {
        let ks = &self.program.kinds[k];
        let plan = &mut self.plans[k];
        let n = chunk.len().min(WIDTH);
        let whole = n > 0 && items == u64::MAX >> (WIDTH - n);
        if whole && chunk.iter().all(|it| plan.fits(&it.record)) {
            // The common case: every item of the chunk, one layout.
            read_values(&mut self.cols, &ks.sources, plan, chunk, &IN_ORDER[..n], 0);
            self.match_rules(k, &IN_ORDER[..n], matched);
            return;
        }
        // The kind's items in order (row `j` is item `at[j]`), read packed, in runs of
        // items of one layout.
        let mut at = [0u8; WIDTH];
        let (mut len, mut run) = (0usize, 0usize);
        let mut bits = items;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let Some(item) = chunk.get(i) else {
                continue;
            };
            if !plan.fits(&item.record) {
                // A new layout: the run before it is read with the plan it fits.
                if run < len {
                    read_values(&mut self.cols, &ks.sources, plan, chunk, &at[run..len], run);
                    run = len;
                }
                plan.rebuild(&item.record, &ks.sources, &self.program.sources);
            }
            at[len % WIDTH] = i as u8;
            len += 1;
        }
        if run < len {
            read_values(&mut self.cols, &ks.sources, plan, chunk, &at[run..len], run);
        }
        self.match_rules(k, &at[..len.min(WIDTH)], matched);
    }

    /// With the values of kind `k`'s items in the first rows of the columns (row `j` is
    /// item `at[j]`): ORs each item's matching rules into `matched`.
    #[inline]
    fn match_rules(&self, k: usize, at: &[u8], matched: &mut [u64; WIDTH]) {
        let ks = &self.program.kinds[k];
        let len = at.len();
        let all = if len >= WIDTH {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        // Each rule from all the kind's rows, narrowed predicate by predicate; a rule whose
        // predicate failed for every row skips the rest.
        let mut rules = ks.rules & self.enabled;
        while rules != 0 {
            let r = rules.trailing_zeros() as usize;
            rules &= rules - 1;
            let range = self.program.rule_preds.get(r).cloned().unwrap_or_default();
            let mut hold = all;
            for p in self.program.preds.get(range).unwrap_or_default() {
                if let Some(col) = self.cols.get(usize::from(p.source)) {
                    hold &= self.isa.pass_mask(col, p.lo, p.hi, p.outside, len);
                }
                if hold == 0 {
                    break;
                }
            }
            if at.len() == WIDTH || at.last().is_some_and(|&i| usize::from(i) + 1 == len) {
                // Row `j` is item `j` (the kind's items are the chunk's first `len`).
                while hold != 0 {
                    matched[hold.trailing_zeros() as usize % WIDTH] |= 1u64 << r;
                    hold &= hold - 1;
                }
                continue;
            }
            while hold != 0 {
                let j = hold.trailing_zeros() as usize;
                if let Some(&i) = at.get(j) {
                    matched[usize::from(i) % WIDTH] |= 1u64 << r;
                }
                hold &= hold - 1;
            }
        }
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

    /// Compares the rules `m` that hold for `item` with its object's active alerts,
    /// updates the table and writes the edges into `item.hits`. Returns the hit count.
    #[inline(always)]
    fn edges(&mut self, item: &mut Item, m: u64) -> usize {
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
        // The test (inside/outside) of a predicate never changes with its threshold.
        debug_assert_eq!(
            neg,
            matches!(spec.shape, Shape::Band { .. } | Shape::Cmp(CmpOp::Ne))
        );
        if let Some(p) = self.program.preds.get_mut(spec.pred) {
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

/// Writes the values `sources` (a kind's, read as `plan` says) of the items `at` (indices
/// into `chunk`) into their columns, packed from row `row` on: one loop per value, with the
/// way it is read decided once.
#[inline]
fn read_values(
    cols: &mut [Column],
    sources: &[u16],
    plan: &Plan,
    chunk: &[Item],
    at: &[u8],
    row: usize,
) {
    for (&s, &op) in sources.iter().zip(&plan.ops) {
        let Some(col) = cols.get_mut(usize::from(s)) else {
            continue;
        };
        let (a, b) = (
            usize::from(op.a) % MAX_FIELDS,
            usize::from(op.b) % MAX_FIELDS,
        );
        let cur = |it: &Item, slot: usize, tag: u8| {
            payload_as_f64(it.record.raw_value_words()[slot], tag)
        };
        // A previous value is decoded in the current field's type, as `Item::prev_at`.
        let prev = |it: &Item| {
            if u32::from(it.header.prev_present) >> a & 1 != 0 {
                payload_as_f64(it.raw_prev_words()[a], op.a_tag)
            } else {
                f64::NAN
            }
        };
        match op.code {
            SourceOp::VALUE if op.a_tag == TAG_F64 => fill(col, row, chunk, at, |it| {
                f64::from_bits(it.record.raw_value_words()[a])
            }),
            SourceOp::VALUE => fill(col, row, chunk, at, |it| cur(it, a, op.a_tag)),
            SourceOp::DELTA => fill(col, row, chunk, at, |it| cur(it, a, op.a_tag) - prev(it)),
            SourceOp::PCT => fill(col, row, chunk, at, |it| {
                let p = prev(it);
                ((cur(it, a, op.a_tag) - p) / p.abs()).abs() * 100.0
            }),
            SourceOp::DIFF => fill(col, row, chunk, at, |it| {
                cur(it, a, op.a_tag) - cur(it, b, op.b_tag)
            }),
            SourceOp::NAMESPACE => fill(col, row, chunk, at, |it| {
                f64::from(it.record.namespace.id())
            }),
            _ => fill(col, row, chunk, at, |_| f64::NAN),
        }
    }
}

/// `at` for a whole chunk: row `j` is item `j`.
const IN_ORDER: [u8; WIDTH] = {
    let mut at = [0u8; WIDTH];
    let mut j = 0;
    while j < WIDTH {
        at[j] = j as u8;
        j += 1;
    }
    at
};

/// `col[row + j] = value(chunk[at[j]])` for every `j`.
#[inline(always)]
fn fill(col: &mut Column, row: usize, chunk: &[Item], at: &[u8], value: impl Fn(&Item) -> f64) {
    let rows = col.0.get_mut(row..).unwrap_or_default();
    if row == 0 && at.len() == chunk.len() {
        // Every item of the chunk, in order (the common case: one kind per stream).
        for (x, it) in rows.iter_mut().zip(chunk) {
            *x = value(it);
        }
        return;
    }
    for (x, &i) in rows.iter_mut().zip(at) {
        if let Some(it) = chunk.get(usize::from(i)) {
            *x = value(it);
        }
    }
}

/// The type tag of an `f64` slot (see [`Record::raw_slots`]).
const TAG_F64: u8 = 1;

/// A raw field payload with type tag `tag` (0 integer, 1 float, 2 boolean, 3 symbol) as
/// the `f64` rules compare, decoded as `value_from_bits` does: booleans are 0/1 (any
/// non-zero payload is true), symbols compare by their 32-bit id.
#[inline(always)]
fn payload_as_f64(bits: u64, tag: u8) -> f64 {
    match tag {
        0 => bits as i64 as f64,
        TAG_F64 => f64::from_bits(bits),
        2 => f64::from(u8::from(bits != 0)),
        _ => f64::from(bits as u32),
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
