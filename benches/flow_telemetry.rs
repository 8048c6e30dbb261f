//! The reverse flow's throughput with telemetry off and on, in the same run (BRIEF §7:
//! sampling 1/1000 plus metrics ≥ 97% of off).
//!
//! ```text
//! cargo bench --bench flow_telemetry -- --warm-up-time 1
//! python3 tools/criterion_medians.py flow_telemetry off --throughput 1048576
//! FLOW_TELEMETRY_PAIRS=20 cargo bench --bench flow_telemetry   # pairs only, no criterion
//! ```
//!
//! After the criterion group the bench runs `FLOW_TELEMETRY_PAIRS` (default 10) *pairs*:
//! `off` and `sampled_1in1000_no_collector` back to back, the order alternating, and prints
//! each variant's median and the median of the per-pair throughput ratios. On a shared,
//! loaded machine the pairs are the better estimate: both runs of a pair see the same load.
//! With `FLOW_TELEMETRY_PAIRS` set explicitly the criterion group is skipped.
//!
//! `FLOW_TELEMETRY_CALLGRIND=1 cargo bench --bench flow_telemetry` counts instructions
//! instead (load-independent): the nine stages on one thread
//! ([`InlinePipeline`](ebbflow::engine::InlinePipeline)), trading ticks handed over 64 at a
//! time, once with the wrappers off (as `ReverseFlow::start` builds them) and once with
//! tracing on ([`FlowTracing`]: one record in 1000 sampled, hand-over stamps, breakers
//! looked for), each run under `valgrind --tool=callgrind` with collection only inside the
//! measured window; prints instructions per event and the ratio.
//!
//! 2^20 pre-generated trading ticks pushed by the host (pinned to the first allowed core)
//! through all nine stages fused on one pipeline thread (pinned to the last, busy-spin), as
//! in `benches/flow.rs`; timed from the first push to the drained finish. Variants:
//!
//! * `off` — `ReverseFlow::start`: no telemetry (the wrappers cost one branch per batch).
//! * `sampled_1in1000_no_collector` — `start_with_telemetry`, sampler one in 1000, budget
//!   breakers on (default options), one `stats()` snapshot queued as metrics mid-run and
//!   the final one at finish; the endpoint is a loopback port where nothing listens
//!   (exports fail fast, retried with backoff, traces pile up and are dropped, counted).
//! * `sampled_1in1000_loopback_sink` — the same with a trivial collector on loopback that
//!   reads each request and answers `200` (so the exporter encodes and sends every batch;
//!   the sink's thread runs on the same two cores).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;

use ebbflow::engine::{InlinePipeline, Pinning, Timing, WaitStrategy};
use ebbflow::flow::assembly::{flow_chain, FlowConfig, ReverseFlow};
use ebbflow::flow::bitactor::RuleSet;
use ebbflow::flow::notify::Publish;
use ebbflow::flow::tracing::{FlowTracing, TraceOptions};
use ebbflow::flow::Item;
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::intern::Interner;
use ebbflow::sources::record::Record;
use ebbflow::telemetry::{Sampler, Telemetry, TelemetryConfig};

const RULES: &str = include_str!("../examples/rules/default.rules");
const N: usize = 1 << 20;

/// Counts bytes; never allocates.
struct NullSink(u64);
impl Publish for NullSink {
    fn publish(&mut self, _t: &str, _e: &str, payload: &[u8]) -> bool {
        self.0 += payload.len() as u64;
        true
    }
}

fn flow_config(pipeline_core: usize) -> FlowConfig {
    let mut cfg = FlowConfig::new(
        "financial_trading_platform",
        RuleSet::parse(RULES).expect("default rules"),
    );
    cfg.pinning = Pinning::Cores(vec![pipeline_core]);
    cfg.wait = WaitStrategy::BusySpin;
    cfg.store_capacity = 1 << 12;
    cfg.actor.capacity_log2 = 12;
    cfg.reactor_timing = ebbflow::flow::reactor::Timing::Off;
    cfg
}

/// A collector that answers 200 to every request (reads headers and body, replies, closes).
struct LoopbackSink {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackSink {
    fn start() -> LoopbackSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            while !done.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut got = 0;
                // Headers, then Content-Length bytes of body.
                let need = loop {
                    match s.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => got += n,
                    }
                    if let Some(end) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break Some(end + 4 + len);
                    }
                };
                if let Some(need) = need {
                    while got < need.min(buf.len()) {
                        match s.read(&mut buf[got..]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n,
                        }
                    }
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
        LoopbackSink {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn telemetry(port: u16) -> Arc<Telemetry> {
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .sampler(Sampler::OneIn(1000));
    Arc::new(Telemetry::start(cfg).unwrap())
}

/// Pushes every record and returns when the pipeline has drained. With telemetry, one
/// statistics snapshot is queued as metrics half-way (and the final one at finish).
fn run(
    cfg: FlowConfig,
    g: &mut TradingGenerator,
    recs: &[Record],
    tel: Option<&Arc<Telemetry>>,
) -> Duration {
    run_stats(cfg, g, recs, tel).0
}

/// [`run`], also returning the sum over the nine stages of their median per-event service
/// time (ns, batch-averaged, as the engine measures it around each stage — the wrappers
/// included): the pipeline thread's work per event, which a preemption inflates only in
/// the tail, so it is steadier than wall-clock time on a loaded machine.
fn run_stats(
    cfg: FlowConfig,
    g: &mut TradingGenerator,
    recs: &[Record],
    tel: Option<&Arc<Telemetry>>,
) -> (Duration, f64) {
    let interner = g.decoder_mut().interner_mut();
    let mut flow = match tel {
        None => ReverseFlow::start(cfg, interner, Box::new(NullSink(0))).unwrap(),
        Some(t) => ReverseFlow::start_with_telemetry(
            cfg,
            interner,
            Box::new(NullSink(0)),
            None,
            t.clone(),
            TraceOptions::default(),
        )
        .unwrap(),
    };
    let t = Instant::now();
    let half = recs.len() / 2;
    for r in &recs[..half] {
        flow.push_record(*r).unwrap();
    }
    if tel.is_some() {
        let _ = flow.stats();
    }
    for r in &recs[half..] {
        flow.push_record(*r).unwrap();
    }
    let stats = flow.finish().unwrap();
    let elapsed = t.elapsed();
    let work: u64 = stats.stages.iter().map(|s| s.latency.p50_ns).sum();
    (elapsed, work as f64)
}

/// A loopback port nothing listens on (bound, then closed again): exports fail fast.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The generator and its first [`N`] trading ticks.
fn ticks() -> (TradingGenerator, Vec<Record>) {
    let mut g = TradingGenerator::new(TradingConfig::default());
    let recs = (0..N).map(|_| g.next_record()).collect();
    (g, recs)
}

fn throughput(c: &mut Criterion) {
    let (host, peer) = support::cores();
    support::pin(host);
    let (mut g, recs) = ticks();
    let closed_port = closed_port();
    let no_collector = telemetry(closed_port);
    let sink = LoopbackSink::start();
    let with_sink = telemetry(sink.port);

    let mut group = c.benchmark_group("flow_telemetry");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let variants: [(&str, Option<&Arc<Telemetry>>); 3] = [
        ("off", None),
        ("sampled_1in1000_no_collector", Some(&no_collector)),
        ("sampled_1in1000_loopback_sink", Some(&with_sink)),
    ];
    for (name, tel) in variants {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run(flow_config(peer), &mut g, &recs, tel))
                    .sum()
            })
        });
    }
    group.finish();
    for (name, t) in [
        ("no_collector", &no_collector),
        ("loopback_sink", &with_sink),
    ] {
        let s = t.stats();
        eprintln!(
            "{name}: traces submitted {}, exported {}, dropped {} (queue {}, pending {}), export failures {}",
            s.traces_submitted,
            s.traces_exported,
            s.traces_dropped(),
            s.traces_dropped_queue,
            s.traces_dropped_pending,
            s.export_failures
        );
    }
}

/// Alternating off/on runs; prints medians and the median per-pair ratio.
fn pairs(n: usize) {
    let (host, peer) = support::cores();
    support::pin(host);
    let (mut g, recs) = ticks();
    let closed_port = closed_port();
    let tel = telemetry(closed_port);
    // Warm-up, once each.
    run(flow_config(peer), &mut g, &recs, None);
    run(flow_config(peer), &mut g, &recs, Some(&tel));
    let (mut off, mut on, mut ratios, mut work_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut off_work, mut on_work) = (Vec::new(), Vec::new());
    for i in 0..n {
        let ((a, wa), (b, wb)) = if i % 2 == 0 {
            let a = run_stats(flow_config(peer), &mut g, &recs, None);
            (a, run_stats(flow_config(peer), &mut g, &recs, Some(&tel)))
        } else {
            let b = run_stats(flow_config(peer), &mut g, &recs, Some(&tel));
            (run_stats(flow_config(peer), &mut g, &recs, None), b)
        };
        let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
        eprintln!(
            "pair {i}: off {:.1} ms, on {:.1} ms, on/off throughput {:.3}; \
             stage p50 sum off {wa} ns, on {wb} ns",
            a * 1e3,
            b * 1e3,
            a / b
        );
        off.push(a);
        on.push(b);
        ratios.push(a / b);
        off_work.push(wa);
        on_work.push(wb);
        work_ratios.push(wa / wb);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mo, mn, mr) = (median(&mut off), median(&mut on), median(&mut ratios));
    println!(
        "flow_telemetry pairs ({n}): off median {:.1} ms ({:.2} M events/s), \
         sampled 1/1000 + metrics median {:.1} ms ({:.2} M events/s), \
         median per-pair throughput ratio on/off {:.3}",
        mo * 1e3,
        N as f64 / mo / 1e6,
        mn * 1e3,
        N as f64 / mn / 1e6,
        mr
    );
    println!(
        "  pipeline work per event (sum of stage p50s): off median {:.0} ns, on median {:.0} ns, \
         median per-pair ratio off/on {:.3}",
        median(&mut off_work),
        median(&mut on_work),
        median(&mut work_ratios)
    );
    let s = tel.stats();
    println!(
        "  traces submitted {}, dropped {} (no collector: pending drops), export failures {}; \
         exporter threads' CPU time {:.1} ms",
        s.traces_submitted,
        s.traces_dropped(),
        s.export_failures,
        exporter_cpu_ms()
    );
}

/// CPU time (user + system) of this process's `ebbflow-otlp` threads, from /proc.
fn exporter_cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let tick_ms = 10.0; // USER_HZ = 100 on Linux
    let mut total = 0.0;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != "ebbflow-otlp" {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the ")" of the command: state is field 3; utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        total += (num(11) + num(12)) * tick_ms;
    }
    total
}

/// The nine flow stages on this thread, wrapped as `ReverseFlow` wraps them: tracing off,
/// or on through `tracing` (the last stage finishing into `telemetry`'s ring).
fn inline_flow(
    interner: &mut Interner,
    tracing: Option<(&FlowTracing, &Telemetry)>,
) -> InlinePipeline<Item, Item> {
    let mut cfg = FlowConfig::new("financial_trading_platform", RuleSet::parse(RULES).unwrap());
    cfg.store_capacity = 1 << 14;
    cfg.actor.capacity_log2 = 14;
    cfg.reactor_timing = ebbflow::flow::reactor::Timing::Off;
    cfg.timing = Timing::PerBatch;
    let traced = tracing.map(|(t, tel)| (t, tel, TraceOptions::default()));
    flow_chain(&cfg, interner, Box::new(NullSink(0)), None, traced)
        .unwrap()
        .builder
        .build_inline()
        .unwrap()
}

/// Hands `items` over 64 at a time, as the host does (with tracing: sampling and stamps).
fn push_inline(
    flow: &mut InlinePipeline<Item, Item>,
    tracing: &mut Option<FlowTracing>,
    buf: &mut Vec<Item>,
    items: &[Item],
) -> u64 {
    let mut out = 0u64;
    for chunk in items.chunks(64) {
        buf.clear();
        buf.extend_from_slice(chunk);
        if let Some(t) = tracing.as_mut() {
            t.hand_over(buf);
        }
        flow.process(buf, |o| out += o.len() as u64).unwrap();
    }
    out
}

/// Everything between entering and leaving this function is counted.
#[inline(never)]
fn measured(run: &mut dyn FnMut()) {
    run();
}

/// Child of the callgrind mode: builds the inline flow (`on`: with tracing), warms it up,
/// runs the window inside [`measured`], prints the window's events and traces.
fn count_child(on: bool) {
    const HALF: usize = 1 << 16;
    let mut g = TradingGenerator::new(TradingConfig::default());
    let items: Vec<Item> = (0..2 * HALF)
        .map(|_| Item::from_record(g.next_record()))
        .collect();
    let closed_port = closed_port();
    let cfg = TelemetryConfig::builder(&format!("http://127.0.0.1:{closed_port}"))
        .unwrap()
        .sampler(Sampler::OneIn(1000))
        .intervals(Duration::from_secs(3600), Duration::from_secs(3600));
    let telemetry = Telemetry::start(cfg).unwrap();
    let mut tracing = on.then(|| FlowTracing::new(1000));
    let mut flow = inline_flow(
        g.decoder_mut().interner_mut(),
        tracing.as_ref().map(|t| (t, &telemetry)),
    );
    let mut buf = Vec::with_capacity(64);
    push_inline(&mut flow, &mut tracing, &mut buf, &items[..HALF]);
    let before = tracing.as_ref().map_or(0, |t| t.stats().completed);
    measured(&mut || {
        std::hint::black_box(push_inline(
            &mut flow,
            &mut tracing,
            &mut buf,
            &items[HALF..],
        ));
    });
    let traced = tracing.as_ref().map_or(0, |t| t.stats().completed) - before;
    println!("events {HALF} traced {traced}");
}

/// Runs both children under callgrind and prints instructions per event.
fn count_parent() {
    let exe = std::env::current_exe().unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flow_telemetry");
    std::fs::create_dir_all(&dir).unwrap();
    let mut per = Vec::new();
    for mode in ["off", "on"] {
        let out = dir.join(format!("callgrind.{mode}.out"));
        let run = std::process::Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg("--collect-atstart=no")
            .arg("--toggle-collect=flow_telemetry::measured")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&exe)
            .arg("--count")
            .arg(mode)
            .env(
                "GLIBC_TUNABLES",
                "glibc.cpu.x86_rep_movsb_threshold=1073741824",
            )
            .env_remove("FLOW_TELEMETRY_CALLGRIND")
            .output()
            .expect("valgrind runs");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let stdout = String::from_utf8_lossy(&run.stdout);
        let line = stdout.lines().find(|l| l.starts_with("events")).unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        let events: f64 = f[1].parse().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let total: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        println!(
            "{mode}: {:.1} instructions per event ({} events, {} traces finished)",
            total / events,
            events,
            f[3]
        );
        per.push(total / events);
    }
    println!(
        "on/off instructions per event: {:.4} (throughput at equal IPC: {:.4} of off)",
        per[1] / per[0],
        per[0] / per[1]
    );
}

criterion_group!(benches, throughput);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--count") {
        count_child(args.get(i + 1).map(String::as_str) == Some("on"));
        return;
    }
    if std::env::var_os("FLOW_TELEMETRY_CALLGRIND").is_some() {
        count_parent();
        return;
    }
    let explicit = std::env::var("FLOW_TELEMETRY_PAIRS").ok();
    let n = explicit
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    if explicit.is_none() {
        benches();
    }
    // Without `--bench` (`cargo test --all-targets`) criterion runs each variant once as a
    // smoke test; the pairs are skipped.
    if n > 0 && args.iter().any(|a| a == "--bench") {
        pairs(n);
    }
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
