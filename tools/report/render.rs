//! The Markdown report and the SVG plot, from the measurements. Every figure printed here
//! comes from a run's statistics, histograms, counters or checks; the text around them is
//! fixed.

use std::fmt::Write;

use ebbflow::engine::PipelineStats;
use ebbflow::flow::assembly::STAGE_NAMES;
use hdrhistogram::Histogram;

use crate::clients::Transport;
use crate::machine::Machine;
use crate::observe::CLIENT_TOPICS;
use crate::patterns::{Verdict, PATTERNS};
use crate::svg::{percentile_plot, Series, PERCENTILES};
use crate::{Plan, ScenarioReport};

/// What the report is made of.
pub struct Doc<'a> {
    /// The machine.
    pub machine: &'a Machine,
    /// How the runs were shaped.
    pub plan: &'a Plan,
    /// The command that made the report.
    pub command: &'a str,
    /// File name of the SVG plot (beside the report).
    pub svg_name: &'a str,
    /// Per scenario.
    pub scenarios: &'a [ScenarioReport],
}

#[path = "../../examples/support/human.rs"]
mod human;
pub use human::{fmt_count, fmt_ns, fmt_rate};

fn short(s: crate::scenario::Scenario) -> &'static str {
    match s {
        crate::scenario::Scenario::Cluster => "k8s",
        crate::scenario::Scenario::Trading => "trading",
        crate::scenario::Scenario::SmartCity => "iot",
    }
}

fn pct(h: &Histogram<u64>, p: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(p / 100.0)
    }
}

/// `|` would end a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "/").replace('\n', " ")
}

fn verdict_cells(v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Pass(t) => ("pass", cell(t)),
        Verdict::Fail(t) => ("FAIL", cell(t)),
        Verdict::NotApplicable(t) => ("n/a", cell(t)),
    }
}

fn wait_name(w: ebbflow::engine::WaitStrategy) -> &'static str {
    match w {
        ebbflow::engine::WaitStrategy::BusySpin => "busy-spin",
        ebbflow::engine::WaitStrategy::SpinYield => "spin-yield",
        ebbflow::engine::WaitStrategy::Park => "park",
    }
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or_else(
        || "unreadable".to_owned(),
        |[a, b, c]| format!("{a:.2} / {b:.2} / {c:.2}"),
    )
}

/// The whole Markdown document.
pub fn markdown(d: &Doc<'_>) -> String {
    let mut s = String::new();
    header(&mut s, d);
    summary(&mut s, d);
    method(&mut s, d);
    machine(&mut s, d);
    architecture(&mut s, d);
    pattern_overview(&mut s, d);
    patterns(&mut s, d);
    stages(&mut s, d);
    reactor(&mut s, d);
    channels(&mut s, d);
    latency(&mut s, d);
    limits(&mut s, d);
    s
}

fn header(s: &mut String, d: &Doc<'_>) {
    let m = d.machine;
    let _ = writeln!(s, "# ebbflow reverse flow report\n");
    let _ = writeln!(
        s,
        "Generated {} UTC by `{}` ({} build) in {:.1} s. Every figure below was measured in \
         that run, on the machine described under [Machine](#machine); none is a constant \
         or a random value. How each section was measured is stated in the section; the \
         method is explained in [`docs/reporting.md`](reporting.md).\n",
        m.started_utc,
        d.command,
        if cfg!(debug_assertions) {
            "debug, unoptimised"
        } else {
            "release"
        },
        m.wall_s
    );
    if d.plan.quick {
        let _ = writeln!(
            s,
            "> **Quick mode** (`--quick`): runs of a fraction of a second, for tests. The \
             figures are real but too short to stand for the engine's performance.\n"
        );
    }
}

fn summary(s: &mut String, d: &Doc<'_>) {
    let (mut pass, mut na, mut fail) = (0, 0, 0);
    for v in d.scenarios.iter().flat_map(|r| &r.verdicts) {
        match v {
            Verdict::Pass(_) => pass += 1,
            Verdict::NotApplicable(_) => na += 1,
            Verdict::Fail(_) => fail += 1,
        }
    }
    let checks = d.scenarios.len() * PATTERNS.len();
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(
        s,
        "- **Pattern checks**: {checks} ({} patterns × {} scenarios): **{pass} pass**, {na} n/a \
         (the pattern does not apply to the scenario; the reason is given), **{fail} fail**.",
        PATTERNS.len(),
        d.scenarios.len()
    );
    let records: u64 = d.scenarios.iter().map(|r| r.flat.records).sum();
    let observed: u64 = d.scenarios.iter().map(|r| r.observed.records).sum();
    let deliveries: u64 = d
        .scenarios
        .iter()
        .flat_map(|r| &r.observed.channels)
        .map(|c| c.deliveries)
        .sum();
    let _ = writeln!(
        s,
        "- **Records processed**: {} in the flat-out runs, {} in the observed runs; \
         **{}** client deliveries measured over 4 transports.",
        fmt_count(records),
        fmt_count(observed),
        fmt_count(deliveries)
    );
    let _ = writeln!(
        s,
        "- **Load average** (1 / 5 / 15 min) {} at the start, {} at the end, on {} logical CPUs: \
         the figures were measured while the machine was {}.\n",
        load(d.machine.load_start),
        load(d.machine.load_end),
        d.machine.cpus,
        match d.machine.load_start {
            Some([l, _, _]) if l >= d.machine.cpus as f64 => "busy with other work (load ≥ CPUs)",
            Some(_) => "not saturated at the start",
            None => "in an unknown state",
        }
    );
    let _ = writeln!(
        s,
        "| scenario | flat-out records | records/s | messages | msg/s | observed records | offered | e2e p50 | e2e p99 | e2e p99.9 | pass | n/a | fail |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in d.scenarios {
        let f = &r.flat;
        let o = &r.observed;
        let count = |k: fn(&Verdict) -> bool| r.verdicts.iter().filter(|v| k(v)).count();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario.name(),
            fmt_count(f.records),
            fmt_rate(f.records as f64 / f.push_seconds),
            fmt_count(f.counts.total()),
            fmt_rate(f.counts.total() as f64 / f.seconds),
            fmt_count(o.records),
            fmt_rate(d.plan.observe.rate),
            fmt_ns(pct(&o.e2e, 50.0)),
            fmt_ns(pct(&o.e2e, 99.0)),
            fmt_ns(pct(&o.e2e, 99.9)),
            count(|v| matches!(v, Verdict::Pass(_))),
            count(|v| matches!(v, Verdict::NotApplicable(_))),
            count(|v| matches!(v, Verdict::Fail(_))),
        );
    }
    let _ = writeln!(
        s,
        "\n*How measured:* records/s = records pushed ÷ seconds pushing in the flat-out run; \
         messages = every message notify published in it (counted by the sink); e2e = \
         schedule → notify latency of the observed run (see [End-to-end latency](#end-to-end-latency)).\n"
    );
}

fn method(s: &mut String, d: &Doc<'_>) {
    let p = d.plan;
    let o = &p.observe;
    let _ = writeln!(s, "## Method\n");
    let _ = writeln!(
        s,
        "Each scenario is the seeded generator `reverse_flow --scenario NAME` uses (seed {}), \
         run through the real `ReverseFlow` (journal → reactor → resources → distribution → \
         bitactor → schema → turtle → typer → notify) with the example's default rules \
         (`examples/rules/default.rules`), fused placement and default budgets. Two runs per \
         scenario:\n",
        o.seed
    );
    let _ = writeln!(
        s,
        "1. **Flat-out run** ({:.1} s, pipeline threads {}): the host pushes records as fast as \
         the lossless input ring takes them, a tick every 5 ms and a statistics snapshot every \
         250 ms (as `reverse_flow` does); a counting sink counts every message per topic and \
         event. Gives throughput, per-stage latency (the flow's own per-stage HDR histograms, \
         batch timing: each event of a batch is charged the batch's mean) and messages per \
         pattern.",
        p.flat_seconds,
        wait_name(p.flat_wait)
    );
    let _ = writeln!(
        s,
        "2. **Observed run** ({:.1} s at {} records/s offered on a fixed schedule, pipeline \
         threads {}, pacer {}): the flow is journaled (a fresh journal, flushed every 10 ms) \
         and serves its topics through the channels server on `127.0.0.1` to {} client(s) per \
         transport (Phoenix Channels V2 and plain WebSocket over tungstenite, SSE over a \
         `TcpStream`, in-process pub/sub) plus a checker — an in-process subscriber of every \
         topic that reads every message in hub order and collects the evidence of each \
         pattern. Windows of {} ms, dashboard interval {} ms; {} transient reactor faults per \
         million Kubernetes records are injected so retries happen. At 10 % a WebSocket \
         client sends `set_threshold` twice (a bad value, then a good one); at 50 % \
         (Kubernetes) the host requests a snapshot, and at the end a barrier snapshot and, once it \
         is answered, the final one (so that no retried record is still parked). After the run the journal \
         is read back and replayed into a fresh flow.",
        o.seconds,
        fmt_count(o.rate as u64),
        wait_name(o.wait),
        if o.spin_pacing {
            "spinning"
        } else {
            "sleeping"
        },
        o.clients,
        o.window.as_millis(),
        o.dashboard_interval.as_millis(),
        fmt_count(u64::from(o.faults_per_million))
    );
    let _ = writeln!(s, "\nWaiting mode: {}.", p.mode);
    let _ = writeln!(
        s,
        "\nThe host, the pipeline thread, the channels server, the clients and the checker all \
         run in this one process on the machine below; the figures include their competition \
         for its CPUs.\n"
    );
}

fn machine(s: &mut String, d: &Doc<'_>) {
    let m = d.machine;
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "| what | value |\n|---|---|");
    let _ = writeln!(s, "| CPU | {} |", cell(&m.cpu_model));
    let _ = writeln!(s, "| logical CPUs | {} |", m.cpus);
    if let Some(kib) = m.mem_kib {
        let _ = writeln!(s, "| memory | {:.1} GiB |", kib as f64 / 1_048_576.0);
    }
    let _ = writeln!(s, "| kernel | {} |", cell(&m.kernel));
    let _ = writeln!(s, "| compiler | {} |", cell(&m.rustc));
    let _ = writeln!(
        s,
        "| commit | {} |",
        m.commit.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        s,
        "| clock | {} |",
        if m.tsc {
            "invariant TSC (engine `Clock`)"
        } else {
            "monotonic clock (no invariant TSC)"
        }
    );
    let _ = writeln!(s, "| started | {} UTC |", m.started_utc);
    let _ = writeln!(
        s,
        "| load average at start (1/5/15 min) | {} |",
        load(m.load_start)
    );
    let _ = writeln!(
        s,
        "| load average at end (1/5/15 min) | {} |",
        load(m.load_end)
    );
    let _ = writeln!(s, "| wall time of the report | {:.1} s |", m.wall_s);
    let _ = writeln!(
        s,
        "\n*How measured:* `/proc/cpuinfo`, `available_parallelism`, `/proc/meminfo`, \
         `/proc/sys/kernel/osrelease`, `rustc --version`, `git rev-parse --short HEAD`, \
         `/proc/loadavg` read when the report starts and ends.\n"
    );
}

fn stage_p99(stats: &PipelineStats, stage: &str) -> Option<u64> {
    stats
        .stages
        .iter()
        .find(|s| s.name == stage)
        .map(|s| s.latency.p99_ns)
}

/// One `"<scenario> <value>"` label per scenario, in order (for diagram nodes).
fn per_scenario(d: &Doc<'_>, value: impl Fn(&ScenarioReport) -> String) -> Vec<String> {
    d.scenarios
        .iter()
        .map(|r| format!("{} {}", short(r.scenario), value(r)))
        .collect()
}

/// Deliveries measured on transport `t`, all scenarios together.
fn received(d: &Doc<'_>, t: Transport) -> u64 {
    d.scenarios
        .iter()
        .flat_map(|r| &r.observed.channels)
        .filter(|c| c.transport == t)
        .map(|c| c.deliveries)
        .sum()
}

fn architecture(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## Reverse flow architecture\n");
    let _ = writeln!(
        s,
        "The stage chain with each stage's measured p99 per event in the flat-out run of each \
         scenario, and the source's measured rate.\n"
    );
    let _ = writeln!(s, "```mermaid\ngraph LR");
    let rates = per_scenario(d, |r| fmt_rate(r.flat.records as f64 / r.flat.push_seconds));
    let _ = writeln!(
        s,
        "    SOURCE[\"source (host thread)<br/>{}\"]",
        rates.join("<br/>")
    );
    for name in STAGE_NAMES {
        let p99 = per_scenario(d, |r| {
            stage_p99(&r.flat.stats, name).map_or("?".to_owned(), fmt_ns)
        });
        let _ = writeln!(
            s,
            "    {}[\"{name}<br/>p99 {}\"]",
            name.to_uppercase(),
            p99.join("<br/>")
        );
    }
    let mut prev = "SOURCE".to_owned();
    for name in STAGE_NAMES {
        let id = name.to_uppercase();
        let _ = writeln!(s, "    {prev} --> {id}");
        prev = id;
    }
    let messages = per_scenario(d, |r| {
        fmt_rate(r.flat.counts.total() as f64 / r.flat.seconds)
    });
    let _ = writeln!(
        s,
        "    {prev} --> TOPICS[\"12 topics<br/>{}\"]",
        messages.join("<br/>")
    );
    let _ = writeln!(
        s,
        "    style SOURCE fill:#326ce5,color:#fff\n    style TOPICS fill:#42b883,color:#fff\n```\n"
    );
    let _ = writeln!(
        s,
        "*How measured:* p99 from each stage's HDR histogram in the flow's final \
         `PipelineStats` (flat-out run); source rate = records ÷ seconds pushing; topic rate = \
         messages published ÷ run seconds.\n"
    );
}

fn pattern_overview(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## Patterns across scenarios\n");
    let _ = writeln!(
        s,
        "| pattern | pass | n/a | fail | messages (flat-out, all scenarios) | msg/s (flat-out) | messages (observed, all scenarios) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    let seconds: f64 = d.scenarios.iter().map(|r| r.flat.seconds).sum();
    for (i, (pattern, topics)) in PATTERNS.iter().enumerate() {
        let verdicts: Vec<&Verdict> = d.scenarios.iter().map(|r| &r.verdicts[i]).collect();
        let n = |k: fn(&Verdict) -> bool| verdicts.iter().filter(|v| k(v)).count();
        let flat: u64 = d
            .scenarios
            .iter()
            .flat_map(|r| topics.iter().map(|t| r.flat.counts.topic(t)))
            .sum();
        let observed: u64 = d
            .scenarios
            .iter()
            .flat_map(|r| topics.iter().map(|t| r.observed.counts.topic(t)))
            .sum();
        let _ = writeln!(
            s,
            "| {pattern} | {} | {} | {} | {} | {} | {} |",
            n(|v| matches!(v, Verdict::Pass(_))),
            n(|v| matches!(v, Verdict::NotApplicable(_))),
            n(|v| matches!(v, Verdict::Fail(_))),
            fmt_count(flat),
            fmt_rate(flat as f64 / seconds.max(1e-9)),
            fmt_count(observed)
        );
    }
    let _ = writeln!(
        s,
        "\n*How measured:* the verdicts and message counts of the next section, summed over the \
         scenarios; msg/s = messages ÷ the flat-out runs' seconds together.\n"
    );
}

fn patterns(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## Per-pattern results\n");
    let _ = writeln!(
        s,
        "| scenario | pattern | topic(s) | messages (flat-out) | msg/s (flat-out) | messages (observed) | result | evidence (observed run) |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---|---|");
    for r in d.scenarios {
        for ((pattern, topics), v) in PATTERNS.iter().zip(&r.verdicts) {
            let flat: u64 = topics.iter().map(|t| r.flat.counts.topic(t)).sum();
            let observed: u64 = topics.iter().map(|t| r.observed.counts.topic(t)).sum();
            let (result, evidence) = verdict_cells(v);
            let _ = writeln!(
                s,
                "| {} | {pattern} | {} | {} | {} | {} | {result} | {evidence} |",
                r.scenario.name(),
                topics
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                fmt_count(flat),
                fmt_rate(flat as f64 / r.flat.seconds),
                fmt_count(observed)
            );
        }
    }
    let _ = writeln!(
        s,
        "\n*How measured:* messages = messages notify published on the pattern's topics (flat-out \
         run: no journal and no commands, so `journal` and `commands` carry nothing there). \
         The result is derived from the observed run: the checker subscriber reads every \
         message and the verdict applies checks like those of `tests/flow_patterns.rs` — \
         k8s_feedback: a crash-looping pod's `pod_crashloop` alert and a `kubectl` recovery \
         hint for the same key; reactor_notifications: window summaries with finished = \
         completed + failed and durations, injected faults retried and reported on both \
         `reactor:steps` and `recovery`; bidirectional_channels: the WebSocket client's bad \
         command answered `bad_argument`, the good one answered with the previous threshold, \
         `applied` broadcast, later alerts of that rule carrying the new threshold; \
         event_sourcing_reverse: `journal` appends = records pushed = entries read back, and a \
         replay into a fresh flow rebuilds the live final snapshot exactly; \
         realtime_monitoring_reverse: stats with the nine stages in order and ordered \
         percentiles; failure_recovery_reverse: a non-empty recovery hint per alert; \
         state_sync_reverse: first snapshot + ordered deltas == second snapshot; \
         performance_analytics_reverse: windows with rates and top keys sorted; \
         config_drift_reverse: drift events with baseline ≠ observed; live_dashboard_reverse: \
         at most one update per interval, totals never decreasing.\n"
    );
}

fn stages(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## Per-stage latency\n");
    let _ = writeln!(
        s,
        "| scenario | stage | events in | events out | p50 | p99 | p99.9 | max | budget | over budget |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in d.scenarios {
        for st in &r.flat.stats.stages {
            let l = &st.latency;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.scenario.name(),
                st.name,
                fmt_count(st.events_in),
                fmt_count(st.events_out),
                fmt_ns(l.p50_ns),
                fmt_ns(l.p99_ns),
                fmt_ns(l.p999_ns),
                fmt_ns(l.max_ns),
                fmt_ns(st.budget.as_nanos() as u64),
                fmt_count(st.over_budget)
            );
        }
    }
    let _ = writeln!(
        s,
        "\n*How measured:* the flat-out run's final `PipelineStats`: per stage, items in and out \
         (records, ticks and the items stages emit; `resources` stops unchanged objects, \
         `notify` hands messages to the sink and emits no item), and the per-event service \
         time from the stage's HDR histogram (batch timing), against its budget. The engine \
         records these on the pipeline thread without locks; the report only reads them.\n"
    );
    for r in d.scenarios {
        let rings: Vec<String> = r
            .flat
            .stats
            .rings
            .iter()
            .map(|g| {
                format!(
                    "`{}` high water {} of {}, dropped {}",
                    g.name,
                    fmt_count(g.high_water),
                    fmt_count(g.capacity as u64),
                    fmt_count(g.dropped_newest + g.dropped_oldest)
                )
            })
            .collect();
        let _ = writeln!(s, "- {} rings: {}", r.scenario.name(), rings.join("; "));
    }
    let _ = writeln!(s);
}

fn reactor(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## Reactor steps\n");
    let _ = writeln!(
        s,
        "| scenario | window summaries | chains completed | mean chain duration | steps retried | compensated | chains failed | faults injected per million |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in d.scenarios {
        let (summaries, completed, mean, retried, compensated, failed) =
            r.observed.evidence.reactor();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario.name(),
            fmt_count(summaries),
            fmt_count(completed),
            fmt_ns(mean.round() as u64),
            fmt_count(retried),
            fmt_count(compensated),
            fmt_count(failed),
            fmt_count(u64::from(r.observed.facts.faults_per_million))
        );
    }
    let _ = writeln!(
        s,
        "\n*How measured:* from the observed run's `reactor:steps` messages as the checker \
         received them: the per-window `summary` messages (chains completed and their mean \
         duration, measured by the reactor per step with the engine clock; the mean here is \
         weighted by chains) and the `retried`, `compensated` and `failed` lifecycle events. \
         Faults are injected into the Kubernetes chain only.\n"
    );
}

fn channels(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## Notification channels\n");
    let _ = writeln!(
        s,
        "| scenario | transport | clients (subscribed) | expected | received | delivered | server writes | p50 | p99 | p99.9 | max | notes |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in d.scenarios {
        for c in &r.observed.channels {
            let mut notes = Vec::new();
            if c.mismatched > 0 {
                notes.push(format!("{} unmatched", c.mismatched));
            }
            notes.extend(c.errors.iter().cloned());
            let _ = writeln!(
                s,
                "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.scenario.name(),
                c.transport.label(),
                c.clients,
                c.subscribed,
                fmt_count(c.expected),
                fmt_count(c.deliveries),
                if c.expected == 0 {
                    "–".to_owned()
                } else {
                    format!("{:.1} %", c.deliveries as f64 * 100.0 / c.expected as f64)
                },
                fmt_count(c.server_deliveries),
                fmt_ns(pct(&c.hist, 50.0)),
                fmt_ns(pct(&c.hist, 99.0)),
                fmt_ns(pct(&c.hist, 99.9)),
                fmt_ns(if c.hist.is_empty() { 0 } else { c.hist.max() }),
                cell(&notes.join("; "))
            );
        }
    }
    let _ = writeln!(
        s,
        "\n*How measured:* during each observed run, {} client(s) per transport subscribed to \
         {} topics ({}) before the flow started; the first in-process subscriber is the \
         checker, subscribed to all 12 topics. notify's sink stamps every message the bus \
         accepts with the engine clock (the n-th accepted message is hub offset n) and a \
         payload hash; a client turns each received message back into its publish stamp — by \
         the `epoch:offset` id (WebSocket, SSE, in-process) or, for Phoenix broadcasts, which \
         carry none, by the next message of that topic with the same payload hash — and \
         records publish → receive in an HDR histogram. *expected* = messages published on \
         the client's topics × clients; *received* = messages matched; *server writes* = the \
         server's own delivery counter for the transport (for plain WebSocket it may include \
         messages to the command client, which is subscribed to `commands`). Coalescing topics (`dashboard`, \
         `monitoring`, `analytics`) may legitimately skip to the latest message for a lagging \
         client.\n",
        d.plan.observe.clients,
        CLIENT_TOPICS.len(),
        CLIENT_TOPICS
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for r in d.scenarios {
        let v = &r.observed.server;
        let _ = writeln!(
            s,
            "- {}: hub took {} messages ({} stamped, {} not stamped; {} refused by a full bus); slow-consumer closes {}, skips {}; resume gaps {}; client commands in {}, replies out {}.",
            r.scenario.name(),
            fmt_count(v.messages_in),
            fmt_count(r.observed.published as u64),
            fmt_count(r.observed.unstamped),
            fmt_count(v.bus_refused),
            v.slow_closes,
            v.slow_skips,
            v.gaps,
            v.commands_in,
            v.replies_out
        );
    }
    // Fan-out diagram.
    let _ = writeln!(s, "\n```mermaid\ngraph LR");
    let published = per_scenario(d, |r| fmt_count(r.observed.published as u64));
    let _ = writeln!(
        s,
        "    NOTIFY[\"notify<br/>messages: {}\"] --> BUS[\"bus ring\"] --> HUB[\"hub (mio thread)<br/>history, epoch:offset\"]",
        published.join(", ")
    );
    for t in Transport::ALL {
        let p99: Vec<String> = d
            .scenarios
            .iter()
            .filter_map(|r| {
                r.observed
                    .channels
                    .iter()
                    .find(|c| c.transport == t)
                    .map(|c| (r, c))
            })
            .map(|(r, c)| format!("{} {}", short(r.scenario), fmt_ns(pct(&c.hist, 99.0))))
            .collect();
        let id = t.short().replace([' ', '-'], "");
        let _ = writeln!(
            s,
            "    HUB -->|\"p99 {}\"| {id}[\"{}<br/>{} received\"]",
            p99.join(" · "),
            t.short(),
            fmt_count(received(d, t))
        );
    }
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "```mermaid\npie title Measured deliveries per transport (all scenarios)"
    );
    for t in Transport::ALL {
        let _ = writeln!(s, "    \"{}\" : {}", t.short(), received(d, t));
    }
    let _ = writeln!(s, "```\n");
}

fn latency(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## End-to-end latency\n");
    let _ = writeln!(s, "![latency percentiles]({})\n", d.svg_name);
    let mut head = String::from("| scenario | samples |");
    let mut rule = String::from("|---|---:|");
    for p in PERCENTILES {
        let _ = write!(head, " p{p} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head} max | late pushes |\n{rule}---:|---:|");
    for r in d.scenarios {
        let h = &r.observed.e2e;
        let _ = write!(s, "| {} | {} |", r.scenario.name(), fmt_count(h.len()));
        for p in PERCENTILES {
            let _ = write!(s, " {} |", fmt_ns(pct(h, p)));
        }
        let _ = writeln!(
            s,
            " {} | {} |",
            fmt_ns(if h.is_empty() { 0 } else { h.max() }),
            fmt_count(r.observed.late)
        );
    }
    let _ = writeln!(
        s,
        "\n*How measured:* in the observed run, record `i` is due at `t0 + i / rate`; the host \
         waits for that moment, stamps the record with the *scheduled* time (engine clock \
         ticks) and hands it to the flow at once (with every other record already due, in \
         one hand-over, when it is behind); notify's latency probe records `now − \
         scheduled` for every record that reaches it (records `resources` stops as unchanged \
         never reach notify and are not counted). A push that is late — the host was \
         descheduled, the ring was full — counts in full (coordinated omission corrected); \
         *late pushes* counts records pushed more than one period after their schedule. The \
         plot shows the same percentiles.\n"
    );
}

fn limits(s: &mut String, d: &Doc<'_>) {
    let _ = writeln!(s, "## What this report does not show\n");
    let _ = writeln!(
        s,
        "- Client counts are small ({} per transport): this is a functional fan-out with \
         latency, not a connection-scale test (`ebbflow-loadgen` does that, see \
         `docs/protocol.md`).\n- One machine, one process: clients compete with the flow and \
         the server for the same CPUs, and other work on the machine (load average above) \
         shows up in every tail.\n- Per-stage latencies are batch-averaged per event (engine \
         `Timing::PerBatch`); a single slow event inside a fast batch is not visible.\n- The \
         original report's remaining sections (browser compatibility, compliance, business \
         impact, resource costs) are not reproduced: nothing here measures them.",
        d.plan.observe.clients
    );
}

/// The SVG plot of the observed runs' end-to-end percentiles.
pub fn latency_svg(reports: &[ScenarioReport]) -> String {
    let series: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            name: r.scenario.name().to_owned(),
            points: if r.observed.e2e.is_empty() {
                Vec::new()
            } else {
                PERCENTILES
                    .iter()
                    .map(|&p| (p, pct(&r.observed.e2e, p)))
                    .collect()
            },
        })
        .collect();
    percentile_plot(
        "End-to-end latency, source schedule → notify (observed runs)",
        "latency (log scale)",
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_with_units_and_separators() {
        assert_eq!(fmt_ns(999), "999 ns");
        assert_eq!(fmt_ns(1_500), "1.5 µs");
        assert_eq!(fmt_ns(2_345_000), "2.35 ms");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_count(12), "12");
        assert_eq!(fmt_rate(2_500_000.0), "2.50 M/s");
    }
}
