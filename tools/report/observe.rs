//! The observed run of a scenario: the flow at a fixed offered rate, journaled, serving its
//! topics over the channels server on loopback to real clients of every transport, with
//! client commands, snapshots and a checker subscriber that reads every message.
//!
//! Order of events:
//! 1. the channels server starts on `127.0.0.1:0` with the flow's topics
//!    (`flow::serve::flow_topics`); the clients connect and subscribe, the checker (an
//!    in-process subscriber of every topic) too — before anything is published, so every
//!    message counts;
//! 2. the flow starts journaled (a fresh journal in a temporary directory), notify
//!    publishing through a [`TeeSink`] into the server's bus;
//! 3. the host offers records on a fixed schedule (record `i` is due at `t0 + i / rate`),
//!    stamps each with its *scheduled* time (engine clock ticks) and hands it on at once;
//!    notify's latency probe records `now − scheduled` per record (coordinated omission
//!    corrected: a late push counts in full). Ticks every 5 ms, statistics every 250 ms,
//!    client commands pumped every 5 ms;
//! 4. at 10 % a plain-WebSocket client sends two `set_threshold` commands (a bad value,
//!    then a good one); at 50 % (Kubernetes only) the host requests a snapshot; at the end
//!    a barrier snapshot and, once it is answered, the final snapshot;
//! 5. the flow drains; the clients get what is left; the journal is read back and replayed
//!    into a fresh flow whose final snapshot must equal the live one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ebbflow::channels::{bus, Counter, Server, ServerConfig};
use ebbflow::engine::{Clock, PipelineStats, WaitStrategy};
use ebbflow::flow::assembly::{FlowConfig, ReverseFlow};
use ebbflow::flow::notify::{topics, MemoryPublisher};
use ebbflow::flow::serve::{flow_topics, CommandBridge, DEFAULT_HISTORY};
use ebbflow::journal::{Durability, Journal, JournalConfig, JournalReader, ReplayFrom};
use ebbflow::sources::record::Record;
use hdrhistogram::Histogram;
use serde_json::Value;
use tungstenite::Message;

use crate::clients::{self, ClientEnv, ClientResult, Transport};
use crate::patterns::{Evidence, RunFacts};
use crate::progress::Progress;
use crate::scenario::{Scenario, Source};
use crate::sinks::{topic_index, Counts, PublishLog, TeeSink};
use crate::throughput::{STATS_EVERY, TICK_EVERY};
use crate::wallclock_ns;

/// Topics the socket clients (and the extra in-process clients) subscribe to: every topic
/// but the per-object ones (`k8s:events`, `state`), the schema and the journal.
pub const CLIENT_TOPICS: [&str; 8] = [
    topics::FEEDBACK,
    topics::RECOVERY,
    topics::REACTOR_STEPS,
    topics::COMMANDS,
    topics::DRIFT,
    topics::DASHBOARD,
    topics::ANALYTICS,
    topics::MONITORING,
];

/// Bytes of the bus from notify to the server (large enough for a snapshot burst).
const BUS_BYTES: usize = 32 << 20;
/// Messages the publish log can stamp.
const LOG_ENTRIES: usize = 1 << 21;

/// How the observed run is shaped.
#[derive(Debug, Clone)]
pub struct ObserveConfig {
    /// Records offered per second.
    pub rate: f64,
    /// Seconds of offered records.
    pub seconds: f64,
    /// Clients per socket transport (and in-process subscribers, the checker included).
    pub clients: usize,
    /// Generator seed.
    pub seed: u64,
    /// How idle pipeline threads wait.
    pub wait: WaitStrategy,
    /// Spin (true) or sleep (false) until a record is due.
    pub spin_pacing: bool,
    /// Analytics / monitoring / reactor summary window.
    pub window: Duration,
    /// Least time between dashboard updates.
    pub dashboard_interval: Duration,
    /// Transient reactor faults per million Kubernetes records.
    pub faults_per_million: u32,
}

/// One transport's measurements.
pub struct ChannelRow {
    /// The transport.
    pub transport: Transport,
    /// Clients started.
    pub clients: usize,
    /// Clients that connected and subscribed.
    pub subscribed: usize,
    /// Topics per client.
    pub topics: usize,
    /// Messages the clients should have received: the bus-accepted messages on their
    /// topics, per client, summed.
    pub expected: u64,
    /// Messages received and matched to their publish.
    pub deliveries: u64,
    /// Messages received that could not be matched.
    pub mismatched: u64,
    /// Messages the server wrote for this transport (its own counter).
    pub server_deliveries: u64,
    /// Publish → receive latency, ns.
    pub hist: Histogram<u64>,
    /// Errors and early closes, deduplicated.
    pub errors: Vec<String>,
}

/// Server-side counters of the run.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerCounters {
    /// Messages into the hub.
    pub messages_in: u64,
    /// Bus messages notify could not hand over (full or too large).
    pub bus_refused: u64,
    /// Slow-consumer closes.
    pub slow_closes: u64,
    /// Slow-consumer skips (coalescing topics).
    pub slow_skips: u64,
    /// Resume gaps.
    pub gaps: u64,
    /// Commands in from clients.
    pub commands_in: u64,
    /// Replies out to clients.
    pub replies_out: u64,
}

/// What an observed run measured.
pub struct Observed {
    /// Records pushed.
    pub records: u64,
    /// Seconds of offered records.
    pub push_seconds: f64,
    /// Seconds with ticks (pushing plus the drain), for the dashboard check.
    pub tick_seconds: f64,
    /// Records that were late by more than one period when pushed (the host could not
    /// keep the schedule).
    pub late: u64,
    /// End-to-end latency, source schedule → notify, ns.
    pub e2e: Histogram<u64>,
    /// Final statistics.
    pub stats: PipelineStats,
    /// Messages notify produced, per topic and event.
    pub counts: Arc<Counts>,
    /// What the checker saw.
    pub evidence: Evidence,
    /// Facts for the verdicts.
    pub facts: RunFacts,
    /// Per transport.
    pub channels: Vec<ChannelRow>,
    /// The server's counters.
    pub server: ServerCounters,
    /// Messages stamped in the publish log.
    pub published: usize,
    /// Messages the bus accepted after the publish log was full (not measurable).
    pub unstamped: u64,
}

/// Removes a directory when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the observed run of `scenario`.
pub fn run(
    scenario: Scenario,
    cfg: &ObserveConfig,
    progress: &mut Progress,
) -> Result<Observed, String> {
    let name = scenario.name();
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{name}: {what}: {e}");
    let mut source = scenario.source(cfg.seed);
    let flow_config = flow_config(scenario, cfg);
    let e2e_shared = flow_config
        .notify
        .latency_probe
        .clone()
        .expect("flow_config sets a probe");

    // 1. Server and clients.
    let dir =
        TempDir(std::env::temp_dir().join(format!("ebbflow-report-{}-{name}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let journal = Journal::open(
        &dir.0,
        JournalConfig {
            durability: Durability::Interval(Duration::from_millis(10)),
            ..JournalConfig::default()
        },
    )
    .map_err(|e| fail("journal", &e))?;
    let (mut writer, reader) = bus(BUS_BYTES);
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    let mut server = Server::start(
        ServerConfig::new(Some(bind), flow_topics(DEFAULT_HISTORY)),
        reader,
    )
    .map_err(|e| fail("channels server", &e))?;
    writer.set_waker(server.waker());
    server.track_bus_drops(&writer);
    let addr = server
        .local_addr()
        .ok_or_else(|| format!("{name}: the channels server has no address"))?;
    let (commands, replier) = server
        .take_commands()
        .ok_or_else(|| format!("{name}: the channels server gave no command rings"))?;
    let log = Arc::new(PublishLog::new(LOG_ENTRIES));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicUsize::new(0));
    let socket_received = Arc::new(AtomicU64::new(0));
    let env = ClientEnv {
        addr,
        topics: CLIENT_TOPICS.to_vec(),
        log: log.clone(),
        stop: stop.clone(),
        ready: ready.clone(),
        received: socket_received.clone(),
    };
    progress.line(&format!(
        "{name}: channels server on {addr}; connecting {} clients per transport",
        cfg.clients
    ));
    let mut socket_clients: Vec<JoinHandle<ClientResult>> = Vec::new();
    for t in [Transport::Phoenix, Transport::PlainWs, Transport::Sse] {
        for i in 0..cfg.clients {
            let env = env.clone();
            let f = match t {
                Transport::Phoenix => clients::phoenix,
                Transport::PlainWs => clients::plain_ws,
                _ => clients::sse,
            };
            socket_clients.push(
                std::thread::Builder::new()
                    .name(format!("report-{}-{i}", t.short()))
                    .spawn(move || f(env))
                    .map_err(|e| fail("client thread", &e))?,
            );
        }
    }
    // The checker: an in-process subscriber of every topic, reading in hub order.
    let pubsub = server.pubsub();
    let checker = clients::inproc(&pubsub, topics::ALL, log.clone())
        .map_err(|e| format!("{name}: checker: {e}"))?;
    let seen = Arc::new(AtomicU64::new(0));
    let checker_thread = {
        let stop = stop.clone();
        let seen = seen.clone();
        let rule = scenario.threshold_command().0;
        std::thread::Builder::new()
            .name("report-checker".into())
            .spawn(move || {
                // Keep the messages and judge them after the run, so parsing does not
                // compete with the flow and the clients for the CPUs while they are measured.
                let mut kept: Vec<(String, String, Vec<u8>)> = Vec::new();
                let r = checker.run(&stop, |t, e, p| {
                    kept.push((t.to_owned(), e.to_owned(), p.to_vec()));
                    seen.fetch_add(1, Ordering::Release);
                });
                let mut evidence = Evidence::new(rule);
                for (t, e, p) in &kept {
                    evidence.observe(t, e, p);
                }
                (r, evidence)
            })
            .map_err(|e| fail("checker thread", &e))?
    };
    let mut inproc_clients = Vec::new();
    for _ in 1..cfg.clients {
        let c = clients::inproc(&pubsub, &CLIENT_TOPICS, log.clone())
            .map_err(|e| format!("{name}: in-process client: {e}"))?;
        let stop = stop.clone();
        inproc_clients.push(std::thread::spawn(move || c.run(&stop, |_, _, _| {})));
    }
    // The commander: a plain WebSocket client that sends commands when told.
    let (trigger_tx, trigger_rx) = mpsc::channel::<()>();
    let commander = {
        let (rule, _, value) = scenario.threshold_command();
        let stop = stop.clone();
        let ready = ready.clone();
        std::thread::Builder::new()
            .name("report-commander".into())
            .spawn(move || commander(addr, rule, value, &trigger_rx, &stop, &ready))
            .map_err(|e| fail("commander thread", &e))?
    };
    let want_ready = 3 * cfg.clients + 1;
    let wait_until = Instant::now() + Duration::from_secs(15);
    while ready.load(Ordering::Acquire) < want_ready && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let connected = ready.load(Ordering::Acquire);
    if connected < want_ready {
        progress.line(&format!(
            "{name}: only {connected} of {want_ready} socket clients subscribed; going on"
        ));
    }

    // 2. The flow.
    let counts = Arc::new(Counts::default());
    let refused = Arc::new(AtomicU64::new(0));
    let sink = TeeSink {
        bus: writer,
        log: log.clone(),
        counts: counts.clone(),
        refused: refused.clone(),
    };
    let mut flow = ReverseFlow::start_journaled(
        flow_config.clone(),
        source.interner(),
        Box::new(sink),
        Some(journal),
    )
    .map_err(|e| fail("the flow does not start", &e))?;
    let mut bridge = CommandBridge::new(commands, replier);

    // 3. Offer records on a schedule.
    let clock = Clock::get();
    let period = clock.ticks_per_ns() * 1e9 / cfg.rate;
    let total = (cfg.rate * cfg.seconds).max(1.0) as u64;
    let started = Instant::now();
    let t0 = clock.ticks() as f64;
    let (mut last_tick, mut last_stats) = (started, started);
    let (mut records, mut late) = (0u64, 0u64);
    let mut triggered = false;
    let (snap_tx, snap_rx) = mpsc::channel::<bool>();
    let mut snapshots_asked = 0usize;
    while records < total {
        let due = (t0 + records as f64 * period) as u64;
        let now_ticks = clock.ticks();
        if now_ticks < due {
            if cfg.spin_pacing {
                std::hint::spin_loop();
            } else {
                // Sleep until it is due (the OS wakes the host a little late; the record
                // is stamped with its schedule, so that lateness is measured too).
                std::thread::sleep(Duration::from_nanos(clock.to_ns(due - now_ticks)));
            }
            continue;
        }
        // Every record due by now goes in one hand-over (at most a host batch): a host
        // that fell behind catches up without one wake-up of the pipeline per record.
        let mut batch = 0;
        loop {
            let due = (t0 + records as f64 * period) as u64;
            if records >= total || batch == flow_config.max_batch || due > now_ticks {
                break;
            }
            if now_ticks > due + period as u64 {
                late += 1;
            }
            let mut r: Record = source.next_record();
            r.ingest_ns = due as i64;
            if flow.push_record(r).is_err() {
                break;
            }
            records += 1;
            batch += 1;
        }
        flow.flush();
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK_EVERY {
            last_tick = now;
            let _ = flow.tick(wallclock_ns());
            bridge.pump(&mut flow);
        }
        if now.duration_since(last_stats) >= STATS_EVERY {
            last_stats = now;
            let _ = flow.stats();
        }
        if !triggered && records * 10 >= total {
            triggered = true;
            let _ = trigger_tx.send(());
        }
        if scenario.is_k8s() && snapshots_asked == 0 && records * 2 >= total {
            snapshots_asked += 1;
            let tx = snap_tx.clone();
            let _ = flow.submit("snapshot", b"{}", move |o| {
                let _ = tx.send(o.code == ebbflow::flow::ReplyCode::Ok);
            });
        }
        progress.update(|| {
            format!(
                "{name}: observed run {:.1}/{:.1} s, {records} records at {:.0}/s, {} messages published",
                started.elapsed().as_secs_f64(),
                cfg.seconds,
                cfg.rate,
                log.len()
            )
        });
    }
    let push_seconds = started.elapsed().as_secs_f64();
    if !triggered {
        let _ = trigger_tx.send(());
    }
    // Let records parked for a reactor retry finish (backoff of a millisecond or more)
    // before the final snapshot. Wall time is not enough: a descheduled pipeline thread
    // takes the queued ticks and a command in one batch and releases due retries only at
    // the end of it, after the command. So: 200 ms of ticks, then a barrier snapshot whose
    // batch runs after every retry is due, and only after its reply the final snapshot —
    // in a later batch, behind every released retry.
    let settle = Instant::now() + Duration::from_millis(200);
    while Instant::now() < settle {
        let _ = flow.tick(wallclock_ns());
        bridge.pump(&mut flow);
        std::thread::sleep(TICK_EVERY);
    }
    let mut snapshot_replies = 0usize;
    for barrier in [true, false] {
        snapshots_asked += 1;
        let tx = snap_tx.clone();
        let _ = flow.submit("snapshot", b"{}", move |o| {
            let _ = tx.send(o.code == ebbflow::flow::ReplyCode::Ok);
        });
        flow.flush();
        if barrier {
            let until = Instant::now() + Duration::from_secs(10);
            while snapshot_replies < snapshots_asked && Instant::now() < until {
                let _ = flow.tick(wallclock_ns());
                bridge.pump(&mut flow);
                while snap_rx.try_recv().is_ok() {
                    snapshot_replies += 1;
                }
                std::thread::sleep(TICK_EVERY);
            }
        }
    }

    // 4. Drain: keep ticking and pumping commands until the replies are in.
    let drain_until = Instant::now() + Duration::from_secs(10);
    let min_drain = Instant::now() + cfg.window;
    loop {
        let now = Instant::now();
        let _ = flow.tick(wallclock_ns());
        bridge.pump(&mut flow);
        let _ = flow.stats();
        while snap_rx.try_recv().is_ok() {
            snapshot_replies += 1;
        }
        let done = commander.is_finished() && snapshot_replies == snapshots_asked;
        if (done && now >= min_drain) || now >= drain_until {
            break;
        }
        std::thread::sleep(TICK_EVERY);
    }
    let tick_seconds = started.elapsed().as_secs_f64();
    let stats = flow.finish().map_err(|e| fail("the pipeline failed", &e))?;
    let e2e = e2e_shared.lock().unwrap_or_else(|p| p.into_inner()).clone();

    // 5. Let the clients receive what is left: the checker every published message, the
    //    socket clients every message on their topics (or give up after 5 s: what is
    //    missing then shows as less than 100 % delivered).
    let per_topic = published_per_topic(&log);
    let on_client_topics: u64 = CLIENT_TOPICS
        .iter()
        .map(|n| per_topic[topic_index(n)])
        .sum();
    let socket_expected = on_client_topics * socket_clients.len() as u64;
    let deliver_until = Instant::now() + Duration::from_secs(5);
    while ((seen.load(Ordering::Acquire) as usize) < log.len()
        || socket_received.load(Ordering::Acquire) < socket_expected)
        && Instant::now() < deliver_until
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let metrics = server.metrics();
    stop.store(true, Ordering::Release);
    let replies = commander.join().unwrap_or(None);
    let (checker_result, evidence) = checker_thread
        .join()
        .map_err(|_| format!("{name}: the checker panicked"))?;
    let mut results: Vec<ClientResult> = vec![checker_result];
    for h in socket_clients.into_iter().chain(inproc_clients) {
        if let Ok(r) = h.join() {
            results.push(r);
        }
    }
    let server_counters = ServerCounters {
        messages_in: metrics.get(Counter::MessagesIn),
        bus_refused: refused.load(Ordering::Relaxed),
        slow_closes: metrics.get(Counter::SlowConsumerCloses),
        slow_skips: metrics.get(Counter::SlowConsumerSkips),
        gaps: metrics.get(Counter::Gaps),
        commands_in: metrics.get(Counter::CommandsIn),
        replies_out: metrics.get(Counter::RepliesOut),
    };
    let channels = Transport::ALL
        .iter()
        .map(|&t| {
            let server_deliveries = metrics.get(match t {
                Transport::Phoenix => Counter::DeliveriesPhoenix,
                Transport::PlainWs => Counter::DeliveriesWs,
                Transport::Sse => Counter::DeliveriesSse,
                Transport::InProc => Counter::DeliveriesInproc,
            });
            channel_row(t, &results, &per_topic, server_deliveries)
        })
        .collect();
    let _ = server.shutdown();

    // 6. The journal, read back and replayed.
    progress.line(&format!("{name}: reading back and replaying the journal"));
    let (journal_entries, replayed) = read_journal(&dir.0)?;
    let replay = match evidence.snapshots().last() {
        Some(live) => Some(replay_matches(
            scenario,
            &flow_config,
            &mut source,
            replayed,
            live,
        )),
        None => Some(Err("no live final snapshot to compare with".to_owned())),
    };
    let facts = RunFacts {
        scenario,
        records,
        journal_entries: Some(journal_entries),
        replay,
        replies,
        seconds: tick_seconds,
        dashboard_interval_s: cfg.dashboard_interval.as_secs_f64(),
        faults_per_million: flow_config.transient_faults_per_million,
    };
    Ok(Observed {
        records,
        push_seconds,
        tick_seconds,
        late,
        e2e,
        stats,
        counts,
        evidence,
        facts,
        channels,
        server: server_counters,
        published: log.len(),
        unstamped: log.overflow(),
    })
}

/// The flow configuration of the observed run.
fn flow_config(scenario: Scenario, cfg: &ObserveConfig) -> FlowConfig {
    let mut c = scenario.config(cfg.wait);
    c.seed = cfg.seed;
    c.notify.window = cfg.window;
    c.notify.dashboard_interval = cfg.dashboard_interval;
    c.notify.latency_probe = Some(Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds"),
    )));
    if scenario.is_k8s() {
        c.transient_faults_per_million = cfg.faults_per_million;
    }
    c
}

/// Bus-accepted messages per topic index.
fn published_per_topic(log: &PublishLog) -> Vec<u64> {
    let mut per = vec![0u64; topics::ALL.len() + 1];
    for offset in 1..=log.len() as u64 {
        if let Some((_, t, _)) = log.at_offset(offset) {
            per[t.min(topics::ALL.len())] += 1;
        }
    }
    per
}

fn channel_row(
    t: Transport,
    results: &[ClientResult],
    per_topic: &[u64],
    server_deliveries: u64,
) -> ChannelRow {
    let mine: Vec<&ClientResult> = results.iter().filter(|r| r.transport == t).collect();
    let on_client_topics: u64 = CLIENT_TOPICS
        .iter()
        .map(|n| per_topic[topic_index(n)])
        .sum();
    let all: u64 = per_topic.iter().sum();
    let mut hist = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut errors: Vec<String> = Vec::new();
    let mut expected = 0;
    for (i, r) in mine.iter().enumerate() {
        let _ = hist.add(&r.hist);
        // The first in-process result is the checker, subscribed to every topic.
        expected += if t == Transport::InProc && i == 0 {
            all
        } else {
            on_client_topics
        };
        if let Some(e) = &r.error {
            if !errors.contains(e) {
                errors.push(e.clone());
            }
        }
    }
    ChannelRow {
        transport: t,
        clients: mine.len(),
        subscribed: mine.iter().filter(|r| r.subscribed).count(),
        topics: CLIENT_TOPICS.len(),
        expected,
        deliveries: mine.iter().map(|r| r.deliveries).sum(),
        mismatched: mine.iter().map(|r| r.mismatched).sum(),
        server_deliveries,
        hist,
        errors,
    }
}

/// The plain-WebSocket client that sends commands: connects (subscribed to `commands`),
/// waits for the trigger, sends `set_threshold` with a non-numeric value (ref `bad`) and
/// then with `value` (ref `good`), and returns both replies.
fn commander(
    addr: SocketAddr,
    rule: &str,
    value: f64,
    trigger: &mpsc::Receiver<()>,
    stop: &AtomicBool,
    ready: &AtomicUsize,
) -> Option<(Value, Value)> {
    let mut ws = clients::open_ws(addr, "/ws?topics=commands").ok()?;
    // Wait for the `subscribed` answer, then report ready.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match clients::ws_read(&mut ws) {
            Ok(Some(Message::Text(t))) if t.as_str().starts_with("{\"type\":\"subscribed\"") => {
                break
            }
            Ok(_) => {}
            Err(_) => return None,
        }
        if Instant::now() > until {
            return None;
        }
    }
    ready.fetch_add(1, Ordering::AcqRel);
    loop {
        match trigger.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::Acquire) => {}
            Err(_) => return None,
        }
    }
    let bad = format!(
        r#"{{"type":"command","topic":"commands","event":"set_threshold","payload":{{"rule":"{rule}","value":"high"}},"ref":"bad"}}"#
    );
    let good = format!(
        r#"{{"type":"command","topic":"commands","event":"set_threshold","payload":{{"rule":"{rule}","value":{value}}},"ref":"good"}}"#
    );
    ws.send(Message::text(bad)).ok()?;
    ws.send(Message::text(good)).ok()?;
    let (mut got_bad, mut got_good) = (None, None);
    let until = Instant::now() + Duration::from_secs(10);
    while (got_bad.is_none() || got_good.is_none()) && Instant::now() < until {
        match clients::ws_read(&mut ws) {
            Ok(Some(Message::Text(t))) => {
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    continue;
                };
                if v["type"] == "reply" {
                    match v["ref"].as_str() {
                        Some("bad") => got_bad = Some(v),
                        Some("good") => got_good = Some(v),
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = ws.close(None);
    Some((got_bad?, got_good?))
}

/// Entries in the journal and the records, in order.
fn read_journal(dir: &std::path::Path) -> Result<(u64, Vec<Record>), String> {
    let reader = JournalReader::open(dir).map_err(|e| format!("journal: {e}"))?;
    let mut records = Vec::new();
    for e in reader
        .entries(ReplayFrom::Start)
        .map_err(|e| format!("journal: {e}"))?
    {
        let (_, r) = e.map_err(|e| format!("journal entry: {e}"))?;
        records.push(r);
    }
    Ok((records.len() as u64, records))
}

/// Replays `records` into a fresh flow (same configuration, no probe, no journal), asks
/// for a snapshot at the end, and compares it with `live`: `Ok(objects)` when equal.
fn replay_matches(
    scenario: Scenario,
    config: &FlowConfig,
    source: &mut Source,
    records: Vec<Record>,
    live: &std::collections::BTreeMap<String, Value>,
) -> Result<usize, String> {
    let mut config = config.clone();
    config.notify.latency_probe = None;
    // Injected transient faults only delay records (they are retried); the state a replay
    // must rebuild does not depend on them.
    config.transient_faults_per_million = 0;
    let publisher = MemoryPublisher::new();
    let mut flow = ReverseFlow::start(config, source.interner(), Box::new(publisher.clone()))
        .map_err(|e| format!("{}: replay flow: {e}", scenario.name()))?;
    for mut r in records {
        r.ingest_ns = 0;
        flow.push_record(r)
            .map_err(|e| format!("replay push: {e}"))?;
    }
    let (tx, rx) = mpsc::channel();
    flow.submit("snapshot", b"{}", move |o| {
        let _ = tx.send(o);
    })
    .map_err(|e| format!("replay snapshot: {e}"))?;
    flow.finish().map_err(|e| format!("replay: {e}"))?;
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the replay's snapshot was not answered".to_owned())?;
    let mut state = std::collections::BTreeMap::new();
    for m in publisher
        .take()
        .into_iter()
        .filter(|m| m.topic == topics::STATE && m.event == "snapshot_chunk")
    {
        for o in m.payload["objects"].as_array().into_iter().flatten() {
            if let Some(k) = o["key"].as_str() {
                state.insert(k.to_owned(), o["fields"].clone());
            }
        }
    }
    if state == *live {
        Ok(state.len())
    } else {
        let differing: Vec<&String> = live
            .iter()
            .filter(|(k, v)| state.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .chain(state.keys().filter(|k| !live.contains_key(*k)))
            .collect();
        let first = differing.first().map_or(String::new(), |k| {
            format!(
                " (first: {k}: live {}, replayed {})",
                live.get(*k).map_or("absent".to_owned(), |v| v.to_string()),
                state.get(*k).map_or("absent".to_owned(), |v| v.to_string())
            )
        });
        Err(format!(
            "replayed state has {} objects, live {}; {} differ{first}",
            state.len(),
            live.len(),
            differing.len()
        ))
    }
}
