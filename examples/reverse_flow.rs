//! `cargo run --release --example reverse_flow -- [OPTIONS]`
//!
//! The reverse flow end to end: a source on the main thread (a seeded scenario generator,
//! a Kubernetes watch file, stdin, or an HTTP watch against `kubectl proxy`) feeds
//! [`ReverseFlow`] (reactor → resources → distribution → bitactor → schema → turtle →
//! typer → notify); a live view on stderr shows throughput, per-stage latency against
//! budget, rings, feedback alerts, the schema version and messages per topic; a summary
//! goes to stdout at the end. `--check-budgets` turns the per-stage p99s into an exit
//! status for CI. `--help` lists every option; `docs/reverse_flow.md` explains the output.
//!
//! Exit status: 0 done; 1 `--check-budgets` found a stage over budget; 2 bad arguments,
//! rules or configuration; 3 the input could not be read or the pipeline failed.
//!
//! Allocation: the hot path (generate or decode a record, push it; the sink counting a
//! message) allocates nothing in steady state. The live view and the summary format
//! strings (twice a second and once); a decode error is formatted when it is shown.

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/human.rs"]
mod human;
use human::{fmt_bytes, fmt_count, fmt_ns, fmt_rate};

use ebbflow::channels::{bus, Server, ServerConfig, StaticDir};
use ebbflow::engine::PipelineStats;
use ebbflow::flow::assembly::{
    FlowConfig, FlowPlacement, ReverseFlow, HOST_PLACEMENT_STAGES, MAX_SHARDS, STAGE_NAMES,
};
use ebbflow::flow::bitactor::{RuleCatalog, RuleSet};
use ebbflow::flow::commands::Outcome;
use ebbflow::flow::notify::{topics, Publish, Shared};
use ebbflow::flow::serve::{flow_topics, CommandBridge, DEFAULT_HISTORY};
use ebbflow::journal::{Durability, Journal, JournalConfig};
use ebbflow::sources::gen::iot::{SmartCityConfig, SmartCityGenerator};
use ebbflow::sources::gen::k8s::{ClusterConfig, ClusterGenerator};
use ebbflow::sources::gen::trading::{TradingConfig, TradingGenerator};
use ebbflow::sources::gen::Generator;
use ebbflow::sources::http_watch::{WatchClient, WatchConfig};
use ebbflow::sources::intern::Interner;
use ebbflow::sources::k8s::{DecodeError, Decoded, DecoderConfig, WatchDecoder};
use ebbflow::sources::pace::{Pace, Pacer};
use ebbflow::sources::record::{Op, Record};
use ebbflow::sources::replay::{replay_reader, split_value, MappedFile, Split, Value};
use ebbflow::telemetry::{Telemetry, TelemetryConfig};

/// The rules used without `--rules`.
/// Bytes of the ring from notify to the channels server (`--listen`).
const BUS_BYTES: usize = 8 << 20;
const DEFAULT_RULES: &str = include_str!("rules/default.rules");

const SCENARIOS: [&str; 3] = [
    "enterprise_k8s_cluster",
    "financial_trading_platform",
    "iot_smart_city_platform",
];

/// Time between two ticks pushed into the flow (windows and coalesced topics close on them).
const TICK_EVERY: Duration = Duration::from_millis(5);
/// Time between two redraws of the live view.
const RENDER_EVERY: Duration = Duration::from_millis(500);
/// Feedback alerts the live view keeps to show.
const RECENT_ALERTS: usize = 5;
/// Bytes kept of each recent alert's payload.
const ALERT_BYTES: usize = 768;
/// Records in flight from a reader thread (stdin, HTTP) to the main thread.
const CHANNEL_RECORDS: usize = 8192;

const HELP: &str = "\
reverse_flow — run ebbflow's reverse flow on a scenario or a Kubernetes watch input

USAGE:
    cargo run --release --example reverse_flow -- [OPTIONS]

SOURCE (one of):
    --scenario NAME       seeded generator (default: enterprise_k8s_cluster):
                            enterprise_k8s_cluster      pods, deployments, services, events, nodes
                            financial_trading_platform  forex/crypto/stock/bond ticks
                            iot_smart_city_platform     100,000 sensors of 4 types
    --input PATH|-|URL    a Kubernetes watch stream instead of a scenario:
                            PATH   a file of watch events (NDJSON or pretty-printed,
                                   as `kubectl get -w --output-watch-events -o json`
                                   writes), memory-mapped, replayed to its end; or one
                                   document (a *List, an array of objects, or one
                                   object, as `kubectl get -o json` writes), whose
                                   objects count as ADDED
                            -      stdin, read until it ends
                            http://HOST:PORT/PATH
                                   list + watch through `kubectl proxy`
                                   (e.g. http://127.0.0.1:8001/api/v1/pods),
                                   reconnecting on drops, re-listing on 410 Gone

PACING:
    --rate N              offer N events/s on a fixed schedule (default: flat out)
    --duration SECS       run time of a scenario (default 10); for stdin and HTTP inputs
                          the longest run (default: until the input ends / forever);
                          a file is always replayed to its end
    --seed N              seed of the scenario generator and of injected faults (default 1)

FLOW:
    --placement P         fused (default: all stages on one thread) | split (two
                          threads: journal..distribution, bitactor..notify) |
                          per-stage (one thread per stage, for >= 10 cores) |
                          host (journal, reactor and resources run on the source
                          thread inside its pushes, the rest on one pipeline thread:
                          faster on 2 cores when the source has time to spare,
                          as with k8s; slower when generating the input is the
                          bottleneck, as with ticks) | host:N (the first N stages)
    --shards N            bitactor shards, 1..=8 (default 1)
    --rules PATH          rules file (default: the embedded examples/rules/default.rules;
                          format in docs/rules.md); a bad file prints line and reason,
                          exit status 2
    --faults PER_MILLION  inject transient reactor faults (retried with backoff) in
                          PER_MILLION of Kubernetes records (default 0)
    --command EVENT[=JSON]
                          submit a client command at start, e.g.
                          --command 'set_threshold={\"rule\":\"price_move\",\"value\":3}'
                          (events: set_threshold, enable_rule, ack_alert, snapshot);
                          repeatable; a command with bad arguments: exit status 2

BUDGETS:
    --budget STAGE=MICROS override a stage's per-event latency budget (repeatable;
                          stages: journal reactor resources distribution bitactor
                          schema turtle typer notify; defaults 2 2 2 1 1 1 1 1 5 us)
    --check-budgets       after the run, exit with status 1 and a per-stage report when
                          any stage's p99 exceeds its budget (the table is printed
                          either way)

SERVING AND JOURNAL:
    --listen IP:PORT      also serve every topic over the notification channels
                          (Phoenix Channels V2, plain WebSocket, SSE, /metrics; see
                          docs/protocol.md); client commands enter the flow
    --journal DIR         append every input record to a journal in DIR first
                          (durability: flush every 10 ms; see docs/journal.md); with
                          --listen, clients can catch up with `state_since`
    --static DIR          with --listen, serve DIR for every other GET (the dashboard's
                          build, tools/dashboard/.output/public; docs/dashboard.md), so
                          one process serves the topics and the page
    --control FILE        test hook, checked every 50 ms: when FILE exists, run its lines
                          and delete it: `crashloop NAME` injects Pod dashboard-probe/NAME
                          in CrashLoopBackOff, `recover NAME` makes it ready again,
                          `disconnect` closes every client connection (1012) (scenarios)

TELEMETRY (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; docs/telemetry.md):
    OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT
                          export sampled traces (root `reverse_flow`, one span per
                          stage) and metrics (stage latency, events, drops, overruns,
                          feedback signals, connections) over OTLP/HTTP protobuf
    OTEL_SERVICE_NAME     service.name (default ebbflow)
    OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
                          traceidratio (default, ratio 0.001: one record in 1000),
                          always_on, always_off; budget breakers are traced anyway
    OTEL_METRIC_EXPORT_INTERVAL, OTEL_BSP_SCHEDULE_DELAY
                          milliseconds between metrics exports (default 10000) and
                          between trace exports (default 1000)
    OTEL_SDK_DISABLED=true
                          off; a bad value: exit status 2

OUTPUT:
    --quiet               no live view (the summary is still printed on stdout)
    --emit-watch N        write N enterprise_k8s_cluster records as watch-event JSON
                          lines to stdout and exit (input for --input, e.g.
                          `... --emit-watch 200000 > cluster.json` or piped into `--input -`)
    -h, --help            this text

The live view is redrawn twice a second on stderr (in place on a terminal, one plain
status line per redraw otherwise); the summary (events, events/s, per-stage table,
alerts per rule, messages per topic) goes to stdout.

EXIT STATUS:
    0 done   1 --check-budgets: a stage's p99 over budget   2 bad arguments, rules or
    configuration   3 input unreadable or pipeline failed
";

// ------------------------------------------------------------------------------ options

/// Why the command line was rejected (exit status 2).
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("unknown option `{0}` (see --help)")]
    Unknown(String),
    #[error("option `{0}` needs a value")]
    Missing(&'static str),
    #[error("option `{option}`: {reason}: `{value}`")]
    Bad {
        option: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("--scenario and --input exclude each other")]
    ScenarioAndInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Cluster,
    Trading,
    SmartCity,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Cluster => SCENARIOS[0],
            Scenario::Trading => SCENARIOS[1],
            Scenario::SmartCity => SCENARIOS[2],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum InputKind {
    File(String),
    Stdin,
    Http { addr: SocketAddr, path: String },
}

#[derive(Debug)]
struct Options {
    scenario: Scenario,
    input: Option<InputKind>,
    rate: Option<f64>,
    duration: Option<Duration>,
    seed: u64,
    placement: FlowPlacement,
    shards: usize,
    rules: Option<String>,
    faults: u32,
    commands: Vec<(String, String)>,
    budgets: Vec<(usize, Duration)>,
    check_budgets: bool,
    quiet: bool,
    emit_watch: Option<u64>,
    listen: Option<std::net::SocketAddr>,
    journal: Option<std::path::PathBuf>,
    static_dir: Option<std::path::PathBuf>,
    control: Option<std::path::PathBuf>,
    help: bool,
}

fn parse_num<T: std::str::FromStr>(option: &'static str, v: &str) -> Result<T, ArgError> {
    v.parse().map_err(|_| ArgError::Bad {
        option,
        value: v.to_string(),
        reason: "not a number",
    })
}

fn parse_http(url: &str) -> Result<InputKind, ArgError> {
    let bad = |reason| ArgError::Bad {
        option: "--input",
        value: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// is supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/api/v1/pods"),
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addr = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| bad("cannot resolve host:port"))?;
    Ok(InputKind::Http {
        addr,
        path: path.to_string(),
    })
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, ArgError> {
    let mut o = Options {
        scenario: Scenario::Cluster,
        input: None,
        rate: None,
        duration: None,
        seed: 1,
        placement: FlowPlacement::Fused,
        shards: 1,
        rules: None,
        faults: 0,
        commands: Vec::new(),
        budgets: Vec::new(),
        check_budgets: false,
        quiet: false,
        emit_watch: None,
        listen: None,
        journal: None,
        static_dir: None,
        control: None,
        help: false,
    };
    let mut scenario_given = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--opt=value` and `--opt value` both work.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |option: &'static str| -> Result<String, ArgError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or(ArgError::Missing(option)),
            }
        };
        match name.as_str() {
            "-h" | "--help" => o.help = true,
            "--quiet" | "-q" => o.quiet = true,
            "--check-budgets" => o.check_budgets = true,
            "--listen" => {
                let v = value("--listen")?;
                o.listen = Some(v.parse().map_err(|_| ArgError::Bad {
                    option: "--listen",
                    value: v.clone(),
                    reason: "not an IP:PORT address",
                })?);
            }
            "--journal" => o.journal = Some(value("--journal")?.into()),
            "--static" => o.static_dir = Some(value("--static")?.into()),
            "--control" => o.control = Some(value("--control")?.into()),
            "--scenario" => {
                let v = value("--scenario")?;
                o.scenario = match v.as_str() {
                    "enterprise_k8s_cluster" | "k8s" => Scenario::Cluster,
                    "financial_trading_platform" | "trading" => Scenario::Trading,
                    "iot_smart_city_platform" | "iot" => Scenario::SmartCity,
                    _ => {
                        return Err(ArgError::Bad {
                            option: "--scenario",
                            value: v,
                            reason: "unknown scenario",
                        })
                    }
                };
                scenario_given = true;
            }
            "--input" => {
                let v = value("--input")?;
                o.input = Some(if v == "-" {
                    InputKind::Stdin
                } else if v.starts_with("http://") || v.starts_with("https://") {
                    parse_http(&v)?
                } else {
                    InputKind::File(v)
                });
            }
            "--rate" => {
                let v = value("--rate")?;
                let r: f64 = parse_num("--rate", &v)?;
                if !(r.is_finite() && r > 0.0) {
                    return Err(ArgError::Bad {
                        option: "--rate",
                        value: v,
                        reason: "must be a positive number of events/s",
                    });
                }
                o.rate = Some(r);
            }
            "--duration" => {
                let v = value("--duration")?;
                let s: f64 = parse_num("--duration", &v)?;
                if !(s.is_finite() && s > 0.0 && s < 1e9) {
                    return Err(ArgError::Bad {
                        option: "--duration",
                        value: v,
                        reason: "must be a positive number of seconds",
                    });
                }
                o.duration = Some(Duration::from_secs_f64(s));
            }
            "--seed" => o.seed = parse_num("--seed", &value("--seed")?)?,
            "--placement" => {
                let v = value("--placement")?;
                o.placement =
                    match v.as_str() {
                        "fused" => FlowPlacement::Fused,
                        "split" => FlowPlacement::Split,
                        "per-stage" | "per_stage" => FlowPlacement::PerStage,
                        "host" => FlowPlacement::Host {
                            stages: HOST_PLACEMENT_STAGES,
                        },
                        other => match other.strip_prefix("host:").map(str::parse::<usize>) {
                            Some(Ok(stages)) if (1..STAGE_NAMES.len()).contains(&stages) => {
                                FlowPlacement::Host { stages }
                            }
                            _ => return Err(ArgError::Bad {
                                option: "--placement",
                                value: v,
                                reason:
                                    "expected fused, split, per-stage, host or host:N (N = 1..8)",
                            }),
                        },
                    };
            }
            "--shards" => {
                let v = value("--shards")?;
                let n: usize = parse_num("--shards", &v)?;
                if !(1..=MAX_SHARDS).contains(&n) {
                    return Err(ArgError::Bad {
                        option: "--shards",
                        value: v,
                        reason: "must be 1..=8",
                    });
                }
                o.shards = n;
            }
            "--rules" => o.rules = Some(value("--rules")?),
            "--faults" => {
                let v = value("--faults")?;
                let n: u32 = parse_num("--faults", &v)?;
                if n > 1_000_000 {
                    return Err(ArgError::Bad {
                        option: "--faults",
                        value: v,
                        reason: "at most 1000000 per million",
                    });
                }
                o.faults = n;
            }
            "--command" => {
                let v = value("--command")?;
                let (event, payload) = match v.split_once('=') {
                    Some((e, p)) => (e.to_string(), p.to_string()),
                    None => (v.clone(), "{}".to_string()),
                };
                o.commands.push((event, payload));
            }
            "--budget" => {
                let v = value("--budget")?;
                let bad = |reason| ArgError::Bad {
                    option: "--budget",
                    value: v.clone(),
                    reason,
                };
                let (stage, micros) = v
                    .split_once('=')
                    .ok_or_else(|| bad("expected STAGE=MICROS"))?;
                let i = STAGE_NAMES
                    .iter()
                    .position(|s| *s == stage)
                    .ok_or_else(|| bad("unknown stage"))?;
                let us: f64 = micros.parse().map_err(|_| bad("MICROS is not a number"))?;
                if !(us.is_finite() && us > 0.0 && us < 1e9) {
                    return Err(bad("MICROS must be positive"));
                }
                o.budgets
                    .push((i, Duration::from_nanos((us * 1000.0).round() as u64)));
            }
            "--emit-watch" => {
                o.emit_watch = Some(parse_num("--emit-watch", &value("--emit-watch")?)?)
            }
            _ => return Err(ArgError::Unknown(arg)),
        }
    }
    if scenario_given && o.input.is_some() {
        return Err(ArgError::ScenarioAndInput);
    }
    Ok(o)
}

// ------------------------------------------------------------------------------ the sink

/// One kept feedback alert (a fixed slot: copying into it never allocates).
struct AlertSlot {
    len: usize,
    full_len: usize,
    bytes: [u8; ALERT_BYTES],
}

/// What the counting sink shares with the live view.
struct SinkState {
    /// Messages per topic, in `topics::ALL` order, then one for any other topic.
    per_topic: [AtomicU64; topics::ALL.len() + 1],
    /// `feedback` messages by event: alert, cleared.
    feedback_alerts: AtomicU64,
    feedback_cleared: AtomicU64,
    /// Bytes of payload published.
    bytes: AtomicU64,
    /// The last few `feedback` alerts (ring; `next` is where the next one goes).
    recent: Mutex<(usize, u64, [AlertSlot; RECENT_ALERTS])>,
}

impl SinkState {
    fn new() -> SinkState {
        SinkState {
            per_topic: std::array::from_fn(|_| AtomicU64::new(0)),
            feedback_alerts: AtomicU64::new(0),
            feedback_cleared: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            recent: Mutex::new((
                0,
                0,
                std::array::from_fn(|_| AlertSlot {
                    len: 0,
                    full_len: 0,
                    bytes: [0; ALERT_BYTES],
                }),
            )),
        }
    }

    /// The kept alerts, oldest first, as text (allocates: for the view only).
    fn recent_alerts(&self) -> Vec<String> {
        let guard = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let (next, total, slots) = &*guard;
        let n = (*total).min(RECENT_ALERTS as u64) as usize;
        (0..n)
            .map(|k| &slots[(next + RECENT_ALERTS - n + k) % RECENT_ALERTS])
            .map(describe_alert)
            .collect()
    }
}

fn describe_alert(slot: &AlertSlot) -> String {
    if slot.len < slot.full_len {
        return format!("(alert of {} bytes, too long to show)", slot.full_len);
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&slot.bytes[..slot.len]) else {
        return "(unreadable alert)".to_string();
    };
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let num = |k: &str| match v[k].as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x}"),
        Some(x) => format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        None => "-".to_string(),
    };
    let (ns, name) = (s("namespace"), s("name"));
    let object = match (ns.is_empty(), name.is_empty()) {
        (_, true) => format!("{} {} key {}", s("kind"), ns, s("key")),
        (true, false) => format!("{} {}", s("kind"), name),
        (false, false) => format!("{} {}/{}", s("kind"), ns, name),
    };
    format!(
        "{:<8} {:<22} {} (observed {}, threshold {}, seq {})",
        s("severity"),
        s("rule_name"),
        object,
        num("observed"),
        num("threshold"),
        v["seq"].as_u64().unwrap_or(0)
    )
}

/// A [`Publish`] sink that counts messages per topic and keeps the last few feedback
/// alerts. Allocates nothing per message.
struct CountingSink {
    state: Arc<SinkState>,
    /// With `--listen`: the channels' bus, which every message also goes to.
    forward: Option<ebbflow::channels::BusWriter>,
}

impl Publish for CountingSink {
    fn flush(&mut self) {
        if let Some(f) = self.forward.as_mut() {
            f.flush();
        }
    }

    fn publish(&mut self, topic: &str, event: &str, payload: &[u8]) -> bool {
        let forwarded = self
            .forward
            .as_mut()
            .is_none_or(|f| f.try_publish(topic, event, payload).is_ok());
        let s = &self.state;
        let i = topics::ALL
            .iter()
            .position(|t| *t == topic)
            .unwrap_or(topics::ALL.len());
        s.per_topic[i].fetch_add(1, Ordering::Relaxed);
        s.bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
        if topic == topics::FEEDBACK {
            if event == "alert" {
                s.feedback_alerts.fetch_add(1, Ordering::Relaxed);
                // The view reads the ring twice a second; never wait for it here.
                if let Ok(mut g) = s.recent.try_lock() {
                    let (next, total, slots) = &mut *g;
                    let slot = &mut slots[*next];
                    let n = payload.len().min(ALERT_BYTES);
                    slot.bytes[..n].copy_from_slice(&payload[..n]);
                    slot.len = n;
                    slot.full_len = payload.len();
                    *next = (*next + 1) % RECENT_ALERTS;
                    *total += 1;
                }
            } else {
                s.feedback_cleared.fetch_add(1, Ordering::Relaxed);
            }
        }
        forwarded
    }
}

// ------------------------------------------------------------------------------ the run

/// Progress of a finite input.
#[derive(Debug, Default)]
struct Progress {
    /// Bytes consumed.
    bytes: u64,
    /// Total bytes, when known.
    total_bytes: Option<u64>,
    /// Lines consumed (file input).
    lines: u64,
    /// Total lines, when known.
    total_lines: Option<u64>,
    /// Watch values decoded (successes and errors).
    values: u64,
    /// Decode errors.
    errors: u64,
    /// Bookmarks seen (not pushed: they change nothing).
    bookmarks: u64,
    /// The latest decode error.
    last_error: Option<DecodeError>,
}

/// Counters a reader thread shares with the main thread.
#[derive(Default)]
struct ReaderShared {
    bytes: AtomicU64,
    values: AtomicU64,
    errors: AtomicU64,
    bookmarks: AtomicU64,
    last_error: Mutex<Option<DecodeError>>,
    /// Why the reader stopped, when not at the end of its input.
    failure: Mutex<Option<String>>,
}

/// Everything the main thread drives: the flow, its clocks, the view.
struct Run {
    flow: ReverseFlow,
    catalog: RuleCatalog,
    shared: Arc<Shared>,
    sink: Arc<SinkState>,
    title: String,
    started: Instant,
    deadline: Option<Instant>,
    last_tick: Instant,
    next_render: Instant,
    pushed: u64,
    pushed_at_render: u64,
    rendered_at: Instant,
    progress: Progress,
    view: View,
    failed: bool,
    /// With `--listen`: the channels server and the bridge for client commands.
    serving: Option<(ebbflow::channels::Server, CommandBridge)>,
    /// With `--control FILE`: the test hook (see [`Control`]).
    control: Option<Control>,
}

/// Wall-clock ns since the Unix epoch (the ticks' time base).
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Run {
    /// Pushes one record; `false` once the pipeline has stopped.
    #[inline]
    fn push(&mut self, r: Record) -> bool {
        if self.flow.push_record(r).is_err() {
            self.failed = true;
            return false;
        }
        self.pushed += 1;
        true
    }

    /// Ticks, flushes and redraws when due; `false` when the run should stop (deadline
    /// passed or pipeline failed).
    fn housekeeping(&mut self, now: Instant) -> bool {
        if now.duration_since(self.last_tick) >= TICK_EVERY {
            self.last_tick = now;
            if self.flow.tick(now_ns()).is_err() {
                self.failed = true;
            }
            if let Some((_, bridge)) = self.serving.as_mut() {
                bridge.pump(&mut self.flow);
            }
            self.flow.flush();
            if let Some(c) = self.control.as_mut() {
                c.poll(now, self.serving.as_ref().map(|(s, _)| s));
            }
        }
        if now >= self.next_render {
            self.next_render = now + RENDER_EVERY;
            self.render(now);
        }
        if self.failed || self.flow.failure().is_some() {
            self.failed = true;
            return false;
        }
        self.deadline.is_none_or(|d| now < d)
    }

    fn render(&mut self, now: Instant) {
        if self.view.quiet {
            // The stats snapshot feeds the `monitoring` topic (per-stage latency for the
            // dashboard) and queues telemetry metrics: take it even with no view to draw.
            let _ = self.flow.stats();
            return;
        }
        let stats = self.flow.stats();
        let dt = now.duration_since(self.rendered_at).as_secs_f64().max(1e-6);
        let rate = (self.pushed - self.pushed_at_render) as f64 / dt;
        self.pushed_at_render = self.pushed;
        self.rendered_at = now;
        let frame = Frame {
            title: &self.title,
            elapsed: now.duration_since(self.started),
            deadline: self.deadline.map(|d| d.duration_since(self.started)),
            pushed: self.pushed,
            rate,
            stats: &stats,
            catalog: &self.catalog,
            shared: &self.shared,
            sink: &self.sink,
            progress: &self.progress,
        };
        self.view.draw(&frame);
    }
}

/// Starts the flow: the one place that calls [`ReverseFlow::start_journaled`] (or, with
/// telemetry, [`ReverseFlow::start_with_telemetry`]).
fn start_flow(
    config: FlowConfig,
    interner: &mut Interner,
    sink: Box<dyn Publish>,
    journal: Option<Journal>,
    telemetry: Option<Arc<Telemetry>>,
) -> Result<ReverseFlow, ebbflow::flow::assembly::FlowError> {
    match telemetry {
        Some(t) => ReverseFlow::start_with_telemetry(
            config,
            interner,
            sink,
            journal,
            t,
            Default::default(),
        ),
        None => ReverseFlow::start_journaled(config, interner, sink, journal),
    }
}

/// Telemetry from the `OTEL_*` variables: `None` when no endpoint is set; a bad setting
/// or a failure to start the exporter is exit status 2.
fn telemetry_from_env() -> Result<Option<Arc<Telemetry>>, ExitCode> {
    let config = TelemetryConfig::from_env().map_err(|e| {
        eprintln!("error: telemetry: {e}");
        ExitCode::from(2)
    })?;
    let Some(endpoint) = config.endpoint.clone() else {
        return Ok(None);
    };
    let sampler = config.sampler;
    let telemetry = Telemetry::start(config).map_err(|e| {
        eprintln!("error: telemetry: {e}");
        ExitCode::from(2)
    })?;
    eprintln!(
        "telemetry: OTLP/HTTP to http://{}:{}{} (sampler {sampler:?}, budget breakers traced)",
        endpoint.host, endpoint.port, endpoint.base_path
    );
    Ok(Some(Arc::new(telemetry)))
}

/// Opens the `--journal` directory (durability: flush every 10 ms).
fn open_journal(dir: &std::path::Path) -> Result<Journal, ExitCode> {
    let config = JournalConfig {
        durability: Durability::Interval(Duration::from_millis(10)),
        ..JournalConfig::default()
    };
    Journal::open(dir, config).map_err(|e| {
        eprintln!("error: --journal {}: {e}", dir.display());
        ExitCode::from(2)
    })
}

/// The flow plus everything around it, or the exit status of a failure to build it.
fn build_run(
    opts: &Options,
    config: FlowConfig,
    interner: &mut Interner,
    title: String,
    replies: &SyncSender<(String, Outcome)>,
) -> Result<Run, ExitCode> {
    let sink = Arc::new(SinkState::new());
    let journal = match &opts.journal {
        Some(dir) => Some(open_journal(dir)?),
        None => None,
    };
    // With `--listen`, notify publishes into the channels' bus as well.
    let mut server = None;
    let forward = match opts.listen {
        Some(addr) => {
            let (mut writer, reader) = bus(BUS_BYTES);
            let mut config = ServerConfig::new(Some(addr), flow_topics(DEFAULT_HISTORY));
            if let Some(dir) = &opts.static_dir {
                match StaticDir::new(dir) {
                    Ok(d) => config.static_files = Some(d),
                    Err(e) => {
                        eprintln!("error: --static {}: {e}", dir.display());
                        return Err(ExitCode::from(2));
                    }
                }
            }
            let s = match Server::start(config, reader) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: --listen {addr}: {e}");
                    return Err(ExitCode::from(2));
                }
            };
            writer.set_waker(s.waker());
            s.track_bus_drops(&writer);
            server = Some(s);
            Some(writer)
        }
        None if opts.static_dir.is_some() => {
            eprintln!("error: --static needs --listen");
            return Err(ExitCode::from(2));
        }
        None => None,
    };
    let telemetry = telemetry_from_env()?;
    let mut flow = match start_flow(
        config,
        interner,
        Box::new(CountingSink {
            state: sink.clone(),
            forward,
        }),
        journal,
        telemetry,
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot start the flow: {e}");
            return Err(ExitCode::from(2));
        }
    };
    for (event, payload) in &opts.commands {
        let tx = replies.clone();
        let label = format!("{event} {payload}");
        if let Err(e) = flow.submit(event, payload.as_bytes(), move |o| {
            let _ = tx.try_send((label, o));
        }) {
            eprintln!("error: --command {event}={payload}: {e}");
            let _ = flow.finish();
            return Err(ExitCode::from(2));
        }
    }
    if let Some(s) = &server {
        // With telemetry, every stats snapshot also carries the server's connections.
        let m = s.metrics();
        flow.add_metrics(move |snap| {
            let open: i64 = ebbflow::channels::Transport::ALL
                .iter()
                .map(|t| m.connections(*t))
                .sum();
            snap.with_gauge("ebbflow.channels.connections", open as f64)
                .with_counter(
                    "ebbflow.channels.connections_accepted",
                    m.get(ebbflow::channels::Counter::Accepted),
                )
        });
    }
    let serving = match server {
        Some(mut s) => {
            let Some((commands, replier)) = s.take_commands() else {
                eprintln!("error: the channels server gave no command rings");
                return Err(ExitCode::from(3));
            };
            let mut bridge = CommandBridge::new(commands, replier);
            if let Some(dir) = &opts.journal {
                bridge = bridge.with_journal(dir, interner.resolver());
            }
            if let Some(addr) = s.local_addr() {
                eprintln!(
                    "serving on {addr}: Phoenix ws://{addr}/socket/websocket?vsn=2.0.0, \
                     WebSocket ws://{addr}/ws?topics=…, SSE http://{addr}/events?topics=…, \
                     http://{addr}/metrics"
                );
            }
            Some((s, bridge))
        }
        None => None,
    };
    let now = Instant::now();
    Ok(Run {
        serving,
        catalog: flow.rules().clone(),
        shared: flow.shared().clone(),
        flow,
        sink,
        title,
        started: now,
        deadline: None,
        last_tick: now,
        next_render: now + RENDER_EVERY,
        pushed: 0,
        pushed_at_render: 0,
        rendered_at: now,
        progress: Progress::default(),
        view: View::new(opts.quiet),
        failed: false,
        control: opts.control.clone().map(Control::new),
    })
}

/// A scenario generator and the interner its records' symbols come from.
trait ScenarioSource: Generator {
    fn symbols(&mut self) -> &mut Interner;
}

impl ScenarioSource for ClusterGenerator {
    fn symbols(&mut self) -> &mut Interner {
        self.interner_mut()
    }
}

impl ScenarioSource for TradingGenerator {
    fn symbols(&mut self) -> &mut Interner {
        self.decoder_mut().interner_mut()
    }
}

impl ScenarioSource for SmartCityGenerator {
    fn symbols(&mut self) -> &mut Interner {
        self.decoder_mut().interner_mut()
    }
}

/// Runs a scenario generator for `duration`.
fn run_scenario<G: ScenarioSource>(
    mut g: G,
    opts: &Options,
    config: FlowConfig,
    title: String,
    replies: &SyncSender<(String, Outcome)>,
    duration: Duration,
) -> Result<Run, ExitCode> {
    let mut run = build_run(opts, config, g.symbols(), title, replies)?;
    run.deadline = Some(run.started + duration);
    drive_generator(&mut run, &mut g, opts.rate);
    Ok(run)
}

/// Pushes generated records until the deadline.
fn drive_generator<G: ScenarioSource>(run: &mut Run, g: &mut G, rate: Option<f64>) {
    let mut pacer = Pacer::new(rate.map_or(Pace::FlatOut, Pace::Rate));
    // Flat out, look at the clock every 256 records; paced, at every record.
    let mask: u64 = if rate.is_some() { 0 } else { 255 };
    loop {
        let r = g.next_record();
        if rate.is_some() {
            pacer.wait(r.source_ns);
        }
        if !run.push(r) {
            return;
        }
        if run.pushed & mask == 0 && !run.housekeeping(Instant::now()) {
            return;
        }
        if let Some(pods) = run.control.as_mut().and_then(Control::take_pods) {
            for (name, crashloop) in pods {
                let probe = probe_pod(g.symbols(), &name, crashloop, r.seq);
                if !run.push(probe) {
                    return;
                }
            }
        }
    }
}

/// The `--control FILE` test hook: polled every 50 ms from the housekeeping; its
/// `crashloop`/`recover` lines become probe pods the generator loop pushes, `disconnect`
/// closes every client connection at once (`Server::disconnect_all`). Allocates per
/// command (the file's lines), never on the per-record path.
struct Control {
    path: std::path::PathBuf,
    next_poll: Instant,
    pods: Vec<(String, bool)>,
}

impl Control {
    fn new(path: std::path::PathBuf) -> Control {
        Control {
            path,
            next_poll: Instant::now(),
            pods: Vec::new(),
        }
    }

    /// Runs the file's commands when it exists (then deletes it).
    fn poll(&mut self, now: Instant, server: Option<&Server>) {
        if now < self.next_poll {
            return;
        }
        self.next_poll = now + Duration::from_millis(50);
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return;
        };
        let _ = std::fs::remove_file(&self.path);
        for line in text.lines() {
            match line.trim().split_once(' ') {
                Some(("crashloop", name)) => self.pods.push((name.trim().to_owned(), true)),
                Some(("recover", name)) => self.pods.push((name.trim().to_owned(), false)),
                _ if line.trim() == "disconnect" => {
                    if let Some(s) = server {
                        s.disconnect_all();
                    }
                }
                _ if line.trim().is_empty() => {}
                _ => eprintln!("--control: unknown command {line:?}"),
            }
            eprintln!("--control: {} at {} ms", line.trim(), now_ns() / 1_000_000);
        }
    }

    /// Probe pods waiting to be pushed: `(name, in CrashLoopBackOff)`.
    fn take_pods(&mut self) -> Option<Vec<(String, bool)>> {
        (!self.pods.is_empty()).then(|| std::mem::take(&mut self.pods))
    }
}

/// Pod `dashboard-probe/NAME`, in `CrashLoopBackOff` (not ready, 5 restarts) or ready,
/// with the fields the cluster generator gives its pods.
fn probe_pod(symbols: &mut Interner, name: &str, crashloop: bool, seq: u64) -> Record {
    use ebbflow::sources::intern::known;
    use ebbflow::sources::record::{FieldId, FieldValue, Kind};
    const NAMESPACE: &str = "dashboard-probe";
    let mut r = Record::new(Kind::Pod, Op::Modified);
    r.key = ebbflow::sources::hash::key_of(b"Pod", NAMESPACE.as_bytes(), name.as_bytes());
    r.namespace = symbols.intern(NAMESPACE);
    r.name = symbols.intern(name);
    r.seq = seq;
    r.source_ns = now_ns();
    r.ingest_ns = r.source_ns;
    r.resource_version = 1;
    r.push(FieldId::Phase, FieldValue::Sym(known::RUNNING));
    r.push(FieldId::Ready, FieldValue::Bool(!crashloop));
    r.push(FieldId::RestartsTotal, FieldValue::I64(5));
    r.push(FieldId::RestartsMax, FieldValue::I64(5));
    if crashloop {
        r.push(
            FieldId::WaitingReason,
            FieldValue::Sym(known::CRASH_LOOP_BACK_OFF),
        );
    }
    r
}

/// Handles one decoded watch value on the main thread (file input).
#[inline]
fn on_decoded(run: &mut Run, r: Result<Decoded, DecodeError>) {
    run.progress.values += 1;
    match r {
        Ok(Decoded::Change(rec)) | Ok(Decoded::Relist(rec)) | Ok(Decoded::Status(rec)) => {
            run.push(rec);
        }
        Ok(Decoded::Bookmark(_)) => run.progress.bookmarks += 1,
        Err(e) => {
            run.progress.errors += 1;
            run.progress.last_error = Some(e);
        }
    }
}

/// Whether `bytes` hold one document (a `*List`, an array of objects, or one bare object,
/// as `kubectl get -o json` writes) rather than a stream of watch events: the first value
/// is an array, or an object with a `kind` and no `type`. Parses the first value once.
fn is_document(bytes: &[u8]) -> bool {
    let Split::Value { start, end } = split_value(bytes, 0) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes[start..end]) {
        Ok(serde_json::Value::Array(_)) => true,
        Ok(serde_json::Value::Object(o)) => o.contains_key("kind") && !o.contains_key("type"),
        _ => false,
    }
}

/// Replays a memory-mapped file to its end (watch events), or decodes it whole (a list or
/// object document; its objects count as `ADDED`).
fn drive_file(run: &mut Run, file: &MappedFile, decoder: &mut WatchDecoder, pace: Pace) {
    let bytes = file.bytes();
    run.progress.total_bytes = Some(bytes.len() as u64);
    run.progress.total_lines = Some(count_lines(bytes));
    if is_document(bytes) {
        let r = decoder.decode_document(bytes, Op::Added, |r| on_decoded(run, r));
        if let Err(e) = r {
            run.progress.errors += 1;
            run.progress.last_error = Some(e);
        }
        run.progress.lines = run.progress.total_lines.unwrap_or(0);
        run.progress.bytes = bytes.len() as u64;
        run.housekeeping(Instant::now());
        return;
    }
    let mut counted_to = 0usize;
    file.replay(decoder, pace, |v: Value<'_>, r| {
        on_decoded(run, r);
        // Paced, look at the clock at every value; flat out, every 64.
        if pace != Pace::FlatOut || run.progress.values & 63 == 0 {
            let end = v.offset as usize + v.bytes.len();
            run.progress.lines += newlines(&bytes[counted_to..end]);
            counted_to = end;
            run.progress.bytes = end as u64;
            run.housekeeping(Instant::now());
        }
    });
    run.progress.lines = run.progress.total_lines.unwrap_or(0);
    run.progress.bytes = bytes.len() as u64;
}

/// `\n` bytes in `b`.
fn newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Lines in `b` (a last line without `\n` counts).
fn count_lines(b: &[u8]) -> u64 {
    newlines(b) + u64::from(b.last().is_some_and(|&c| c != b'\n'))
}

/// Reader-thread side of a decoded value: counts it, sends its record.
fn forward(
    tx: &SyncSender<Record>,
    shared: &ReaderShared,
    r: Result<Decoded, DecodeError>,
) -> ControlFlow<()> {
    shared.values.fetch_add(1, Ordering::Relaxed);
    match r {
        Ok(Decoded::Change(rec)) | Ok(Decoded::Relist(rec)) | Ok(Decoded::Status(rec)) => {
            if tx.send(rec).is_err() {
                return ControlFlow::Break(());
            }
        }
        Ok(Decoded::Bookmark(_)) => {
            shared.bookmarks.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    }
    ControlFlow::Continue(())
}

/// Feeds records from a reader thread until it ends or the deadline passes.
fn drive_channel(run: &mut Run, rx: &Receiver<Record>, reader: &ReaderShared) {
    loop {
        match rx.recv_timeout(TICK_EVERY) {
            Ok(r) => {
                if !run.push(r) {
                    break;
                }
                // Take what is waiting without looking at the clock for each.
                for _ in 0..1024 {
                    match rx.try_recv() {
                        Ok(r) => {
                            if !run.push(r) {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        reader.copy_to(&mut run.progress);
        if !run.housekeeping(Instant::now()) {
            break;
        }
    }
    reader.copy_to(&mut run.progress);
}

impl ReaderShared {
    /// Copies the reader thread's counters into `p`.
    fn copy_to(&self, p: &mut Progress) {
        p.bytes = self.bytes.load(Ordering::Relaxed);
        p.values = self.values.load(Ordering::Relaxed);
        p.errors = self.errors.load(Ordering::Relaxed);
        p.bookmarks = self.bookmarks.load(Ordering::Relaxed);
        p.last_error = *self.last_error.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// A reader that counts the bytes it hands on.
struct Counted<R> {
    inner: R,
    shared: Arc<ReaderShared>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Size of stdin when it is a regular file (`< file`), for progress.
fn stdin_size() -> Option<u64> {
    let m = std::fs::metadata("/dev/stdin").ok()?;
    m.is_file().then_some(m.len())
}

// ------------------------------------------------------------------------------ the view

struct View {
    quiet: bool,
    tty: bool,
    first: bool,
}

struct Frame<'a> {
    title: &'a str,
    elapsed: Duration,
    deadline: Option<Duration>,
    pushed: u64,
    rate: f64,
    stats: &'a PipelineStats,
    catalog: &'a RuleCatalog,
    shared: &'a Shared,
    sink: &'a SinkState,
    progress: &'a Progress,
}

impl View {
    fn new(quiet: bool) -> View {
        View {
            quiet,
            tty: std::io::stderr().is_terminal(),
            first: true,
        }
    }

    fn draw(&mut self, f: &Frame<'_>) {
        let mut out = String::with_capacity(4096);
        if self.tty {
            if self.first {
                out.push_str("\x1b[2J");
                self.first = false;
            }
            out.push_str("\x1b[H");
            for line in full_frame(f).lines() {
                out.push_str(line);
                out.push_str("\x1b[K\n");
            }
            out.push_str("\x1b[J");
        } else {
            out = status_line(f);
            out.push('\n');
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }
}

fn schema_line(shared: &Shared) -> String {
    let a = shared.schema.lock().unwrap_or_else(|p| p.into_inner());
    format!(
        "schema v{} ({} classes, {} properties)",
        a.version, a.classes, a.properties
    )
}

fn progress_line(p: &Progress) -> Option<String> {
    if p.values == 0 && p.bytes == 0 && p.total_bytes.is_none() {
        return None;
    }
    let mut s = match p.total_bytes {
        Some(t) if t > 0 => format!(
            "input: {} of {} ({:.1} %)",
            fmt_bytes(p.bytes),
            fmt_bytes(t),
            p.bytes as f64 * 100.0 / t as f64
        ),
        _ if p.bytes > 0 => format!("input: {}", fmt_bytes(p.bytes)),
        _ => "input:".to_string(),
    };
    if let Some(t) = p.total_lines {
        s.push_str(&format!(
            ", lines {} of {}",
            fmt_count(p.lines),
            fmt_count(t)
        ));
    }
    if s.len() > "input:".len() {
        s.push(',');
    }
    s.push_str(&format!(
        " values {}, decode errors {}, bookmarks {}",
        fmt_count(p.values),
        fmt_count(p.errors),
        fmt_count(p.bookmarks)
    ));
    if let Some(e) = p.last_error {
        s.push_str(&format!(" (last: {e})"));
    }
    Some(s)
}

fn stage_table(stats: &PipelineStats) -> String {
    let mut s = format!(
        "{:<13}{:>13}{:>13}{:>10}{:>10}{:>10}{:>10}{:>12}  {}\n",
        "stage", "events in", "events out", "p50", "p99", "p99.9", "budget", "over budget", ""
    );
    for st in &stats.stages {
        let budget = st.budget.as_nanos() as u64;
        let over = budget > 0 && st.latency.p99_ns > budget;
        s.push_str(&format!(
            "{:<13}{:>13}{:>13}{:>10}{:>10}{:>10}{:>10}{:>12}  {}\n",
            st.name,
            fmt_count(st.events_in),
            fmt_count(st.events_out),
            fmt_ns(st.latency.p50_ns),
            fmt_ns(st.latency.p99_ns),
            fmt_ns(st.latency.p999_ns),
            fmt_ns(budget),
            fmt_count(st.over_budget),
            if over { "p99 OVER BUDGET" } else { "ok" }
        ));
    }
    s
}

fn rings_line(stats: &PipelineStats, shared: &Shared) -> String {
    let mut s = String::from("rings:");
    for r in &stats.rings {
        s.push_str(&format!(
            " [{} {}/{} hw {}]",
            r.name, r.occupancy, r.capacity, r.high_water
        ));
    }
    s.push_str(&format!("  drops {}", stats.total_dropped()));
    s.push_str(&format!(
        "  reactor holds {}",
        fmt_count(shared.reactor_parked.load(Ordering::Relaxed))
    ));
    s
}

fn alerts_lines(catalog: &RuleCatalog) -> Vec<String> {
    (0..catalog.len() as u16)
        .filter_map(|i| {
            let c = catalog.counters(i)?;
            (c.raised + c.cleared > 0).then(|| {
                format!(
                    "  {:<24} {:<8} raised {:>9} cleared {:>9}",
                    catalog.name(i).unwrap_or("?"),
                    catalog.severity(i).map(|s| s.name()).unwrap_or("?"),
                    fmt_count(c.raised),
                    fmt_count(c.cleared)
                )
            })
        })
        .collect()
}

fn topics_line(sink: &SinkState) -> String {
    let mut s = String::from("messages:");
    let mut any = false;
    for (i, c) in sink.per_topic.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n == 0 {
            continue;
        }
        any = true;
        let name = topics::ALL.get(i).copied().unwrap_or("(other)");
        s.push_str(&format!(" {name} {}", fmt_count(n)));
    }
    if !any {
        s.push_str(" none yet");
    }
    s
}

/// The `feedback` messages the sink saw, by event.
fn feedback_messages(sink: &SinkState) -> String {
    format!(
        "messages: {} alert, {} cleared",
        fmt_count(sink.feedback_alerts.load(Ordering::Relaxed)),
        fmt_count(sink.feedback_cleared.load(Ordering::Relaxed))
    )
}

fn full_frame(f: &Frame<'_>) -> String {
    let mut s = String::with_capacity(4096);
    let time = match f.deadline {
        Some(d) => format!(
            "{:.1} s / {:.1} s",
            f.elapsed.as_secs_f64(),
            d.as_secs_f64()
        ),
        None => format!("{:.1} s", f.elapsed.as_secs_f64()),
    };
    let (first, rest) = f.title.split_once('\n').unwrap_or((f.title, ""));
    s.push_str(&format!("{first}   {time}\n{rest}\n"));
    s.push_str(&format!(
        "in: {} events, {} now, {} average   {}\n",
        fmt_count(f.pushed),
        fmt_rate(f.rate),
        fmt_rate(f.pushed as f64 / f.elapsed.as_secs_f64().max(1e-6)),
        schema_line(f.shared)
    ));
    if let Some(p) = progress_line(f.progress) {
        s.push_str(&p);
        s.push('\n');
    }
    s.push('\n');
    s.push_str(&stage_table(f.stats));
    s.push_str(&rings_line(f.stats, f.shared));
    s.push_str(&format!("\n\nfeedback ({}):\n", feedback_messages(f.sink)));
    let alerts = alerts_lines(f.catalog);
    if alerts.is_empty() {
        s.push_str("  no alert yet\n");
    }
    for a in alerts {
        s.push_str(&a);
        s.push('\n');
    }
    s.push_str(&topics_line(f.sink));
    s.push_str("\n\nlast alerts:\n");
    let recent = f.sink.recent_alerts();
    if recent.is_empty() {
        s.push_str("  none\n");
    }
    for a in recent.iter().rev() {
        s.push_str("  ");
        s.push_str(a);
        s.push('\n');
    }
    s
}

fn status_line(f: &Frame<'_>) -> String {
    let worst = f
        .stats
        .stages
        .iter()
        .max_by_key(|st| st.latency.p99_ns)
        .map(|st| format!("{} {}", st.name, fmt_ns(st.latency.p99_ns)))
        .unwrap_or_default();
    let over: Vec<&str> = f
        .stats
        .stages
        .iter()
        .filter(|st| st.latency.p99_ns > st.budget.as_nanos() as u64)
        .map(|st| st.name.as_str())
        .collect();
    let published: u64 = f
        .sink
        .per_topic
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum();
    let mut s = format!(
        "[{:>6.1}s] in {} ({}) | worst p99 {} | over budget: {} | alerts {} | {} | messages {}",
        f.elapsed.as_secs_f64(),
        fmt_count(f.pushed),
        fmt_rate(f.rate),
        worst,
        if over.is_empty() {
            "none".to_string()
        } else {
            over.join(",")
        },
        fmt_count(
            (0..f.catalog.len() as u16)
                .filter_map(|i| f.catalog.counters(i))
                .map(|c| c.raised)
                .sum()
        ),
        schema_line(f.shared),
        fmt_count(published),
    );
    if let Some(p) = f.progress.total_bytes.filter(|&t| t > 0) {
        s.push_str(&format!(
            " | {:.1} %",
            f.progress.bytes as f64 * 100.0 / p as f64
        ));
    }
    s
}

// ------------------------------------------------------------------------------ main

fn emit_watch(n: u64, seed: u64) -> ExitCode {
    let mut g = ClusterGenerator::new(ClusterConfig {
        seed,
        ..ClusterConfig::default()
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut line = Vec::with_capacity(4096);
    for _ in 0..n {
        let r = g.next_record();
        line.clear();
        if g.write_watch_json(&r, &mut line).is_err() || out.write_all(&line).is_err() {
            return ExitCode::from(3);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    if let Some(n) = opts.emit_watch {
        return emit_watch(n, opts.seed);
    }
    let rules_text = match &opts.rules {
        None => DEFAULT_RULES.to_string(),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read rules file {p}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let rules_name = opts
        .rules
        .as_deref()
        .unwrap_or("examples/rules/default.rules (embedded)");
    let rules = match RuleSet::parse(&rules_text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: rules file {rules_name}: {e}");
            return ExitCode::from(2);
        }
    };
    let scenario_name: &'static str = match &opts.input {
        None => opts.scenario.name(),
        Some(InputKind::File(_)) => "k8s_watch_file",
        Some(InputKind::Stdin) => "k8s_watch_stdin",
        Some(InputKind::Http { .. }) => "k8s_watch_http",
    };
    let mut config = FlowConfig::new(scenario_name, rules);
    config.placement = opts.placement.clone();
    config.shards = opts.shards;
    config.transient_faults_per_million = opts.faults;
    config.seed = opts.seed;
    for &(i, b) in &opts.budgets {
        config.budgets.0[i] = b;
    }
    let source = match &opts.input {
        None => format!("scenario {scenario_name}"),
        Some(InputKind::File(p)) => format!("file {p}"),
        Some(InputKind::Stdin) => "stdin".to_string(),
        Some(InputKind::Http { addr, path }) => format!("http://{addr}{path}"),
    };
    let placement = match opts.placement {
        FlowPlacement::Fused => "fused".to_string(),
        FlowPlacement::Split => "split".to_string(),
        FlowPlacement::PerStage => "per-stage".to_string(),
        FlowPlacement::Host { stages } => format!("host:{stages}"),
    };
    let title = format!(
        "ebbflow reverse_flow · {source}\nplacement {placement} · shards {} · rules {} ({} rules) · faults {}/M",
        opts.shards,
        rules_name,
        config.rules.len(),
        opts.faults
    );
    let pace = opts.rate.map_or(Pace::FlatOut, Pace::Rate);
    let (reply_tx, reply_rx) = mpsc::sync_channel::<(String, Outcome)>(64);
    let mut failure: Option<String> = None;

    let run = match &opts.input {
        None => {
            let duration = opts.duration.unwrap_or(Duration::from_secs(10));
            let seed = opts.seed;
            let r = match opts.scenario {
                Scenario::Cluster => run_scenario(
                    ClusterGenerator::new(ClusterConfig {
                        seed,
                        ..ClusterConfig::default()
                    }),
                    &opts,
                    config,
                    title,
                    &reply_tx,
                    duration,
                ),
                Scenario::Trading => run_scenario(
                    TradingGenerator::new(TradingConfig {
                        seed,
                        ..TradingConfig::default()
                    }),
                    &opts,
                    config,
                    title,
                    &reply_tx,
                    duration,
                ),
                Scenario::SmartCity => run_scenario(
                    SmartCityGenerator::new(SmartCityConfig {
                        seed,
                        ..SmartCityConfig::default()
                    }),
                    &opts,
                    config,
                    title,
                    &reply_tx,
                    duration,
                ),
            };
            match r {
                Ok(run) => run,
                Err(code) => return code,
            }
        }
        Some(InputKind::File(path)) => {
            let file = match MappedFile::open(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: --input: {e}");
                    return ExitCode::from(3);
                }
            };
            let mut decoder = WatchDecoder::new(DecoderConfig::default());
            let mut run = match build_run(&opts, config, decoder.interner_mut(), title, &reply_tx) {
                Ok(r) => r,
                Err(code) => return code,
            };
            drive_file(&mut run, &file, &mut decoder, pace);
            run
        }
        Some(InputKind::Stdin) | Some(InputKind::Http { .. }) => {
            let mut decoder = WatchDecoder::new(DecoderConfig::default());
            let mut run = match build_run(&opts, config, decoder.interner_mut(), title, &reply_tx) {
                Ok(r) => r,
                Err(code) => return code,
            };
            run.deadline = opts.duration.map(|d| run.started + d);
            let reader = Arc::new(ReaderShared::default());
            let (tx, rx) = mpsc::sync_channel::<Record>(CHANNEL_RECORDS);
            let shared = reader.clone();
            let input = opts.input.clone();
            if let Some(InputKind::Stdin) = input {
                run.progress.total_bytes = stdin_size();
            }
            // The reader thread decodes; it is not joined (a blocked read must not hold
            // up the summary), the process exits after it.
            let spawned = std::thread::Builder::new()
                .name("reverse-flow-reader".into())
                .spawn(move || match input {
                    Some(InputKind::Http { addr, path }) => {
                        let cfg = WatchConfig {
                            addr,
                            path,
                            ..WatchConfig::default()
                        };
                        let max = decoder.config().max_object_bytes;
                        let mut client = WatchClient::new(cfg, max);
                        if let Err(e) = client.run(&mut decoder, |_, r| forward(&tx, &shared, r)) {
                            *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(format!("http watch: {e}"));
                        }
                    }
                    _ => {
                        let stdin = Counted {
                            inner: std::io::stdin().lock(),
                            shared: shared.clone(),
                        };
                        let r = replay_reader(stdin, &mut decoder, pace, |_, r| {
                            let _ = forward(&tx, &shared, r);
                        });
                        if let Err(e) = r {
                            *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(format!("stdin: {e}"));
                        }
                    }
                });
            if let Err(e) = spawned {
                eprintln!("error: cannot start the reader thread: {e}");
                return ExitCode::from(3);
            }
            drive_channel(&mut run, &rx, &reader);
            failure = reader
                .failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let (None, Some(InputKind::Http { addr, path })) = (&failure, &opts.input) {
                if run.progress.values == 0 {
                    failure = Some(format!(
                        "nothing received from http://{addr}{path} (is `kubectl proxy` running there?)"
                    ));
                }
            }
            run
        }
    };
    finish(run, &opts, reply_rx, failure)
}

/// Drains the flow, prints the summary and turns the outcome into an exit status.
fn finish(
    mut run: Run,
    opts: &Options,
    replies: Receiver<(String, Outcome)>,
    input_failure: Option<String>,
) -> ExitCode {
    let now = Instant::now();
    run.render(now);
    let elapsed = now.duration_since(run.started);
    let Run {
        flow,
        catalog,
        shared,
        sink,
        pushed,
        progress,
        failed,
        title,
        ..
    } = run;
    let stats = match flow.finish() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the pipeline failed: {e}");
            return ExitCode::from(3);
        }
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = String::with_capacity(8192);
    out.push_str(&format!("\n== summary: {title}\n"));
    out.push_str(&format!(
        "events: {} in {:.2} s = {} ({})\n",
        fmt_count(pushed),
        secs,
        fmt_rate(pushed as f64 / secs),
        schema_line(&shared)
    ));
    if let Some(p) = progress_line(&progress) {
        out.push_str(&p);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&stage_table(&stats));
    out.push_str(&rings_line(&stats, &shared));
    out.push_str(&format!(
        "\n\nalerts per rule ({}):\n",
        feedback_messages(&sink)
    ));
    let alerts = alerts_lines(&catalog);
    if alerts.is_empty() {
        out.push_str("  none\n");
    }
    for a in alerts {
        out.push_str(&a);
        out.push('\n');
    }
    out.push_str("\nmessages per topic:\n");
    for (i, c) in sink.per_topic.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n > 0 {
            let name = topics::ALL.get(i).copied().unwrap_or("(other)");
            out.push_str(&format!("  {name:<14} {:>12}\n", fmt_count(n)));
        }
    }
    out.push_str(&format!(
        "  {:<14} {:>12}  ({} of payload)\n",
        "total",
        fmt_count(
            sink.per_topic
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum()
        ),
        fmt_bytes(sink.bytes.load(Ordering::Relaxed))
    ));
    let recent = sink.recent_alerts();
    if !recent.is_empty() {
        out.push_str("\nlast alerts:\n");
        for a in recent.iter().rev() {
            out.push_str(&format!("  {a}\n"));
        }
    }
    let answered: Vec<(String, Outcome)> = replies.try_iter().collect();
    if !opts.commands.is_empty() {
        out.push_str("\ncommands:\n");
        for (label, o) in &answered {
            out.push_str(&format!("  {label}: {:?} (detail {})\n", o.code, o.detail));
        }
        if answered.len() < opts.commands.len() {
            out.push_str(&format!(
                "  {} not answered\n",
                opts.commands.len() - answered.len()
            ));
        }
    }
    let mut code = ExitCode::SUCCESS;
    if let Some(f) = &input_failure {
        out.push_str(&format!("\ninput stopped: {f}\n"));
        code = ExitCode::from(3);
    }
    if failed {
        out.push_str("\nthe pipeline stopped early\n");
        code = ExitCode::from(3);
    }
    let over: Vec<_> = stats
        .stages
        .iter()
        .filter(|s| s.latency.p99_ns > s.budget.as_nanos() as u64)
        .collect();
    if opts.check_budgets {
        if over.is_empty() {
            out.push_str("\nbudget check: PASS (every stage's p99 within its budget)\n");
        } else {
            out.push_str(&format!(
                "\nbudget check: FAIL ({} of {} stages over budget)\n",
                over.len(),
                stats.stages.len()
            ));
            for s in &over {
                let budget = s.budget.as_nanos() as u64;
                out.push_str(&format!(
                    "  {}: p99 {} > budget {} ({:.1}x); p50 {}, max {}; {} of {} events over budget\n",
                    s.name,
                    fmt_ns(s.latency.p99_ns),
                    fmt_ns(budget),
                    s.latency.p99_ns as f64 / budget.max(1) as f64,
                    fmt_ns(s.latency.p50_ns),
                    fmt_ns(s.latency.max_ns),
                    fmt_count(s.over_budget),
                    fmt_count(s.events_in)
                ));
            }
            if code == ExitCode::SUCCESS {
                code = ExitCode::from(1);
            }
        }
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(out.as_bytes());
    let _ = lock.flush();
    code
}
