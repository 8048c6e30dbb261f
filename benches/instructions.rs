//! Instruction counts per event, measured with `valgrind --tool=callgrind`: the CI gate on
//! the hot paths' cost.
//!
//! ```text
//! cargo bench --bench instructions                 # measure and check against the baseline
//! cargo bench --bench instructions -- --bless      # measure and rewrite the baseline
//! cargo bench --bench instructions -- flow_trading # only workloads whose name contains this
//! ```
//!
//! Wall time on a shared 2-vCPU VM moves by 1.5× between runs; instruction counts do not:
//! callgrind counts the same total for the same binary and input whatever else the machine
//! is doing. Every workload runs on one thread (the flow's stages through
//! [`InlinePipeline`](ebbflow::engine::InlinePipeline)), so no spinning peer thread adds
//! instructions that depend on scheduling. For each workload this binary re-runs itself
//! under callgrind with collection switched on only inside [`measured`], after a warm-up,
//! and divides by the events the window processed. Peers (a `serde_json` decode, a
//! `BufWriter` append, a pass-through chain) run in the same way, so ratios come from the
//! same run.
//!
//! The baseline (`benches/instructions.baseline`) holds instructions per event; a
//! workload of ours (not a peer) more than [`TOLERANCE`] above its baseline fails the run. The tolerance is wide
//! because libc picks its `memcpy` variant by CPU, so a CI machine of another family may
//! count somewhat differently for the same code (the child runs with `rep movsb` turned
//! off through `GLIBC_TUNABLES`, which removes the largest such difference: callgrind
//! counts a `rep movsb` once per byte). Without
//! `--bench` (as `cargo test --all-targets` runs it) each workload runs natively once, as
//! a smoke test of the workloads themselves.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use ebbflow::engine::{Emitter, InPlace, InlinePipeline, PipelineBuilder, Stage, Timing};
use ebbflow::flow::assembly::{flow_chain, FlowConfig};
use ebbflow::flow::bitactor::{ActorConfig, BitActor, RuleSet};
use ebbflow::flow::notify::Publish;
use ebbflow::flow::Item;
use ebbflow::journal::format::record_bytes;
use ebbflow::journal::{Durability, Journal, JournalConfig};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::k8s::WatchDecoder;
use ebbflow::sources::record::{Kind, Record};

#[path = "support/rulesets.rs"]
mod rulesets;
use rulesets::{items_with_prev, same_kind_rules, spread_rules, Naive, BATCH};

/// How far above its baseline a workload may count before the run fails.
const TOLERANCE: f64 = 0.25;
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/instructions.baseline");
const RULES: &str = include_str!("../examples/rules/default.rules");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/k8s/");

/// A workload: built and warmed up outside the window; `run` processes `events` events
/// inside it.
struct Workload {
    name: &'static str,
    events: u64,
    run: Box<dyn FnMut()>,
}

/// Everything between entering and leaving this function is counted (callgrind
/// `--toggle-collect`); nothing else is.
#[inline(never)]
fn measured(run: &mut dyn FnMut()) {
    run();
}

/// Counts messages; never allocates.
struct NullSink(u64);
impl Publish for NullSink {
    fn publish(&mut self, _topic: &str, _event: &str, payload: &[u8]) -> bool {
        self.0 += payload.len() as u64;
        true
    }
}

/// The nine reverse-flow stages, as `ReverseFlow::start` chains them, on this thread.
fn inline_flow(scenario: &'static str, interner: &mut Interner) -> InlinePipeline<Item, Item> {
    let mut cfg = FlowConfig::new(scenario, RuleSet::parse(RULES).unwrap());
    cfg.store_capacity = 1 << 14;
    cfg.actor.capacity_log2 = 14;
    cfg.reactor_timing = ebbflow::flow::reactor::Timing::Off;
    flow_chain(&cfg, interner, Box::new(NullSink(0)), None, None)
        .unwrap()
        .builder
        .build_inline()
        .unwrap()
}

/// Runs the records through `flow` in host-sized batches; returns how many came out.
fn push(flow: &mut InlinePipeline<Item, Item>, items: &[Item]) -> u64 {
    let mut out = 0u64;
    for chunk in items.chunks(64) {
        flow.process(chunk, |o| out += o.len() as u64).unwrap();
    }
    out
}

/// The nine stages on `records`: the first half warms up, the second is the window.
fn flow_workload(
    scenario: &'static str,
    records: Vec<Record>,
    interner: &mut Interner,
) -> (u64, Box<dyn FnMut()>) {
    let (warm, window) = records.split_at(records.len() / 2);
    let warm: Vec<Item> = warm.iter().map(|r| Item::from_record(*r)).collect();
    let window: Vec<Item> = window.iter().map(|r| Item::from_record(*r)).collect();
    let mut flow = inline_flow(scenario, interner);
    push(&mut flow, &warm);
    (
        window.len() as u64,
        Box::new(move || {
            black_box(push(&mut flow, &window));
        }),
    )
}

/// Passes items on unchanged: the engine's own cost per stage.
struct Pass;
impl Stage for Pass {
    type In = Item;
    type Out = Item;
    #[inline]
    fn process(&mut self, i: Item, out: &mut Emitter<Item>) {
        out.emit(i);
    }
}

/// Passes items on where they lie (`Stage::IN_PLACE`).
struct PassInPlace;
impl Stage for PassInPlace {
    type In = Item;
    type Out = Item;
    const IN_PLACE: bool = true;
    #[inline]
    fn process(&mut self, i: Item, out: &mut Emitter<Item>) {
        out.emit(i);
    }
    #[inline]
    fn process_in_place(
        &mut self,
        _batch: &mut InPlace<'_, Item>,
        _out: &mut Emitter<Item>,
    ) -> bool {
        true
    }
}

/// Nine copies of one stage, inline, timed per batch.
fn nine_stages<S: Stage<In = Item, Out = Item>>(
    make: impl Fn() -> S,
) -> InlinePipeline<Item, Item> {
    const NAMES: [&str; 9] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"];
    let b = PipelineBuilder::<Item>::new().stage(NAMES[0], make());
    let b = b.stage(NAMES[1], make()).stage(NAMES[2], make());
    let b = b.stage(NAMES[3], make()).stage(NAMES[4], make());
    let b = b.stage(NAMES[5], make()).stage(NAMES[6], make());
    let b = b.stage(NAMES[7], make()).stage(NAMES[8], make());
    b.timing(Timing::PerBatch).build_inline().unwrap()
}

fn trading_records(n: usize) -> (Vec<Record>, TradingGenerator) {
    let mut g = TradingGenerator::new(TradingConfig::default());
    ((0..n).map(|_| g.next_record()).collect(), g)
}

fn k8s_records(n: usize) -> (Vec<Record>, ClusterGenerator) {
    let mut g = ClusterGenerator::new(ClusterConfig::default());
    ((0..n).map(|_| g.next_record()).collect(), g)
}

/// The apiserver's NDJSON watch body from a k8s-openapi replay file, repeated.
fn watch_body(repeat: usize) -> (String, u64) {
    let text = std::fs::read_to_string(format!(
        "{FIXTURES}k8s-openapi__v1-36__watch_event-watch_pods.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let body = v[0]["response_body"].as_str().unwrap().repeat(repeat);
    let n = body.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    (body, n)
}

/// Every workload: its name and what it measures (a peer's starts with "peer:").
const WORKLOADS: [(&str, &str); 12] = [
    ("flow_trading", "9 flow stages, trading ticks (inline)"),
    ("flow_k8s", "9 flow stages, k8s changes (inline)"),
    (
        "engine_9_pass",
        "9 pass-through stages, 256-byte items (inline)",
    ),
    (
        "engine_9_pass_in_place",
        "the same 9 stages working in place (inline)",
    ),
    (
        "bitactor_trading",
        "bitactor alone, 64 rules (spread over kinds), ticks in batches of 64",
    ),
    (
        "bitactor_trading_naive",
        "peer: a per-rule evaluator with branches and a HashMap, same rules and ticks",
    ),
    (
        "bitactor_trading_same_kind",
        "bitactor alone, all 64 rules on ticks, batches of 64",
    ),
    (
        "bitactor_k8s",
        "bitactor alone, 64 rules (spread over kinds), k8s changes in batches of 64",
    ),
    ("k8s_decode", "apiserver watch lines → records"),
    (
        "k8s_decode_serde_json",
        "peer: the same lines → serde_json::Value",
    ),
    ("journal_append", "journal append, Os durability (mmap)"),
    (
        "journal_append_bufwriter",
        "peer: the same records, length + bytes into a BufWriter<File>",
    ),
];

/// The bitactor over `items` in batches of [`BATCH`], warmed up with one pass.
fn bitactor_workload(
    rules: &RuleSet,
    interner: &Interner,
    mut items: Vec<Item>,
) -> (u64, Box<dyn FnMut()>) {
    let events = items.len() as u64;
    let mut actor = BitActor::compile_readonly(rules, interner, ActorConfig::default());
    let mut run = move || {
        for batch in items.chunks_mut(BATCH) {
            black_box(actor.evaluate(batch));
        }
    };
    run();
    (events, Box::new(run))
}

/// The naive peer over the same items and batches, warmed up with one pass.
fn naive_workload(
    rules: &RuleSet,
    interner: &Interner,
    mut items: Vec<Item>,
) -> (u64, Box<dyn FnMut()>) {
    let events = items.len() as u64;
    let mut naive = Naive::new(rules, interner);
    let mut run = move || {
        for batch in items.chunks_mut(BATCH) {
            black_box(naive.evaluate(batch));
        }
    };
    run();
    (events, Box::new(run))
}

/// Builds and warms up the one workload `name` (`quick`: small, for the smoke run).
fn workload(name: &str, quick: bool) -> Workload {
    let &(name, _) = WORKLOADS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("known workload");
    let n = if quick { 4_096 } else { 131_072 };
    let trading_items = || -> Vec<Item> {
        trading_records(n)
            .0
            .iter()
            .map(|r| Item::from_record(*r))
            .collect()
    };
    let (events, run): (u64, Box<dyn FnMut()>) = match name {
        "flow_trading" => {
            let (recs, mut g) = trading_records(2 * n);
            let interner = g.decoder_mut().interner_mut();
            flow_workload("financial_trading_platform", recs, interner)
        }
        "flow_k8s" => {
            let (recs, mut g) = k8s_records(2 * n);
            flow_workload("enterprise_k8s_cluster", recs, g.interner_mut())
        }
        "bitactor_trading" | "bitactor_trading_naive" | "bitactor_trading_same_kind" => {
            let mut g = TradingGenerator::new(TradingConfig::default());
            let items = items_with_prev(&mut g, n);
            let rules = if name == "bitactor_trading_same_kind" {
                same_kind_rules(Kind::Tick)
            } else {
                spread_rules()
            };
            let rules = RuleSet::parse(&rules).unwrap();
            if name == "bitactor_trading_naive" {
                naive_workload(&rules, g.decoder().interner(), items)
            } else {
                bitactor_workload(&rules, g.decoder().interner(), items)
            }
        }
        "bitactor_k8s" => {
            let mut g = ClusterGenerator::new(ClusterConfig::default());
            let items = items_with_prev(&mut g, n);
            let rules = RuleSet::parse(&spread_rules()).unwrap();
            bitactor_workload(&rules, g.interner(), items)
        }
        "engine_9_pass" | "engine_9_pass_in_place" => {
            let items = trading_items();
            let mut chain = if name == "engine_9_pass" {
                nine_stages(|| Pass)
            } else {
                nine_stages(|| PassInPlace)
            };
            push(&mut chain, &items);
            (
                n as u64,
                Box::new(move || {
                    black_box(push(&mut chain, &items));
                }),
            )
        }
        "k8s_decode" => {
            let (body, lines) = watch_body(if quick { 2 } else { 40 });
            let mut decoder = WatchDecoder::default();
            let mut run = move || {
                decoder.decode_lines(body.as_bytes(), |_, r| {
                    black_box(r.ok());
                });
            };
            run();
            (lines, Box::new(run))
        }
        "k8s_decode_serde_json" => {
            let (body, lines) = watch_body(if quick { 2 } else { 40 });
            let run = move || {
                for line in body.lines().filter(|l| !l.trim().is_empty()) {
                    black_box(serde_json::from_str::<serde_json::Value>(line).unwrap());
                }
            };
            run(); // warm-up, as the decoder gets (the allocator's arenas grown)
            (lines, Box::new(run))
        }
        "journal_append" => {
            let dir = journal_dir();
            let _ = std::fs::remove_dir_all(&dir);
            let config = JournalConfig {
                durability: Durability::Os,
                ..JournalConfig::default()
            };
            let mut journal = Journal::open(&dir, config).unwrap();
            let recs = trading_records(n).0;
            // Warm-up: the same records once (segments mapped and faulted in).
            for r in &recs {
                journal.append(r).unwrap();
            }
            let run = move || {
                for r in &recs {
                    black_box(journal.append(r).unwrap());
                }
            };
            (n as u64, Box::new(run))
        }
        _ => {
            let dir = journal_dir();
            std::fs::create_dir_all(&dir).unwrap();
            let recs = trading_records(n).0;
            let file = std::fs::File::create(dir.join("bufwriter.bin")).unwrap();
            let mut file = std::io::BufWriter::new(file);
            let run = move || {
                for r in &recs {
                    let bytes = record_bytes(r);
                    file.write_all(&(bytes.len() as u32).to_le_bytes()).unwrap();
                    file.write_all(bytes).unwrap();
                }
                file.flush().unwrap();
            };
            (n as u64, Box::new(run))
        }
    };
    Workload { name, events, run }
}

/// Where the journal workloads write (removed when the run ends).
fn journal_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ebbflow-instr-journal-{}", std::process::id()))
}

fn read_baseline() -> Vec<(String, f64)> {
    std::fs::read_to_string(BASELINE)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

/// Runs one workload under callgrind; returns the instructions counted inside the window
/// and the events the window processed.
fn count(exe: &Path, name: &str, out_dir: &Path) -> Result<(u64, u64), String> {
    let out = out_dir.join(format!("callgrind.{name}.out"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg("--toggle-collect=instructions::measured")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .arg("--workload")
        .arg(name)
        // libc's memcpy uses `rep movsb` above a CPU-dependent size, and callgrind counts
        // one instruction per byte moved that way: keep it off so that counts depend on
        // the code, not on which CPU family ran it.
        .env(
            "GLIBC_TUNABLES",
            "glibc.cpu.x86_rep_movsb_threshold=1073741824",
        )
        .output()
        .map_err(|e| format!("cannot start valgrind: {e} (install the `valgrind` package)"))?;
    if !status.status.success() {
        return Err(format!(
            "{name}: callgrind run failed: {}",
            String::from_utf8_lossy(&status.stderr)
        ));
    }
    let events = String::from_utf8_lossy(&status.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{name}: the child did not say how many events it ran"))?;
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{name}: {e}"))?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{name}: no totals in {}", out.display()))?;
    Ok((total, events))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--workload") {
        // Child: build this one workload, then run it inside the window.
        let mut w = workload(&args[i + 1], false);
        measured(&mut w.run);
        println!("{} {}", w.name, w.events);
        drop(w);
        let _ = std::fs::remove_dir_all(journal_dir());
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    if !bench {
        // `cargo test --all-targets`: each workload once, natively, small.
        for (name, _) in WORKLOADS {
            let mut w = workload(name, true);
            assert!(w.events > 0, "{}: no events", w.name);
            (w.run)();
            println!("{}: ran {} events", w.name, w.events);
        }
        let _ = std::fs::remove_dir_all(journal_dir());
        return;
    }
    let bless = args.iter().any(|a| a == "--bless");
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let exe = std::env::current_exe().unwrap();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("instructions");
    std::fs::create_dir_all(&out_dir).unwrap();
    let baseline = read_baseline();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (name, what) in WORKLOADS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let (total, events) = match count(&exe, name, &out_dir) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let per = total as f64 / events as f64;
        let base = baseline.iter().find(|(n, _)| n == name).map(|(_, b)| *b);
        // Peers are measured for the ratios, not gated: their code is not ours.
        let peer = what.starts_with("peer:");
        let verdict = match base {
            Some(b) if per > b * (1.0 + TOLERANCE) && !peer => {
                failed.push(name);
                format!("REGRESSED: {:+.1}% over {b:.0}", (per / b - 1.0) * 100.0)
            }
            Some(b) => format!("ok ({:+.1}% vs {b:.0})", (per / b - 1.0) * 100.0),
            None => "no baseline".to_string(),
        };
        println!("{name:<26} {per:>10.1} instructions/event  {verdict}  — {what}");
        results.push((name, per));
    }
    let ratio = |a: &str, b: &str| {
        let get = |n: &str| results.iter().find(|(x, _)| *x == n).map(|(_, v)| *v);
        Some((get(a)?, get(b)?))
    };
    if let Some((a, b)) = ratio("k8s_decode", "k8s_decode_serde_json") {
        println!("k8s decode: serde_json ÷ ebbflow = {:.2}×", b / a);
    }
    if let Some((a, b)) = ratio("journal_append", "journal_append_bufwriter") {
        println!("journal append: BufWriter ÷ journal = {:.2}×", b / a);
    }
    if let Some((a, b)) = ratio("bitactor_trading", "bitactor_trading_naive") {
        println!("bitactor: naive ÷ ebbflow = {:.2}×", b / a);
    }
    if let Some((a, b)) = ratio("flow_trading", "engine_9_pass") {
        println!("flow trading ÷ 9 pass stages = {:.2}×", a / b);
    }
    if bless {
        let mut text = String::from(
            "# Instructions per event (callgrind), written by\n\
             # `cargo bench --bench instructions -- --bless`. A workload more than 25% above\n\
             # its line fails `cargo bench --bench instructions`.\n",
        );
        // Workloads this run measured get their new count; the others (left out by a
        // name filter) keep their line.
        let mut lines: Vec<(String, f64)> = baseline;
        for (name, per) in &results {
            match lines.iter_mut().find(|(n, _)| n == name) {
                Some(line) => line.1 = *per,
                None => lines.push((name.to_string(), *per)),
            }
        }
        for (name, per) in &lines {
            text.push_str(&format!("{name} {per:.0}\n"));
        }
        std::fs::write(BASELINE, text).unwrap();
        println!("baseline written to {BASELINE}");
    } else if !failed.is_empty() {
        eprintln!("instruction count regressions: {failed:?}");
        std::process::exit(1);
    }
}
