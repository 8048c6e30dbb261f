//! The ten reverse-flow patterns: which topics they use, the evidence an observed run
//! collects from every message on them (read by a real in-process subscriber), and the
//! verdict derived from it — the same kind of checks as `tests/flow_patterns.rs`.

use std::collections::{BTreeMap, BTreeSet};

use ebbflow::flow::assembly::STAGE_NAMES;
use ebbflow::flow::notify::topics;
use serde_json::Value;

use crate::scenario::Scenario;

/// The ten patterns, in the original report's order, with their topics.
pub const PATTERNS: [(&str, &[&str]); 10] = [
    ("k8s_feedback", &[topics::K8S_EVENTS, topics::FEEDBACK]),
    ("reactor_notifications", &[topics::REACTOR_STEPS]),
    ("bidirectional_channels", &[topics::COMMANDS]),
    ("event_sourcing_reverse", &[topics::JOURNAL]),
    ("realtime_monitoring_reverse", &[topics::MONITORING]),
    ("failure_recovery_reverse", &[topics::RECOVERY]),
    ("state_sync_reverse", &[topics::STATE]),
    ("performance_analytics_reverse", &[topics::ANALYTICS]),
    ("config_drift_reverse", &[topics::DRIFT]),
    ("live_dashboard_reverse", &[topics::DASHBOARD]),
];

/// A pattern's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The behaviour was observed; the text says what was seen.
    Pass(String),
    /// The behaviour was expected and not observed, or contradicted.
    Fail(String),
    /// The pattern does not apply to the scenario; the text says why.
    NotApplicable(String),
}

/// Everything the checker subscriber saw in an observed run.
#[derive(Default)]
pub struct Evidence {
    /// Messages per (topic, event).
    pub counts: BTreeMap<(String, String), u64>,
    /// Messages that were not valid JSON.
    pub bad_json: u64,
    // k8s_feedback
    crashloop_alert_keys: BTreeSet<String>,
    crashloop_hint_keys: BTreeSet<String>,
    alerts_by_rule: BTreeMap<String, u64>,
    // reactor_notifications
    summaries: u64,
    summaries_inconsistent: u64,
    summaries_with_duration: u64,
    completed: u64,
    /// Σ mean chain duration × chains completed over the summaries, ns.
    duration_weighted_ns: f64,
    // bidirectional: the applied set_threshold, and alerts of its rule after it
    applied: Vec<Value>,
    rejected: u64,
    watched_rule: String,
    alerts_after_apply: u64,
    alerts_after_apply_wrong_threshold: u64,
    // event sourcing
    journal_appended: u64,
    journal_recovered: u64,
    // monitoring
    monitoring: u64,
    monitoring_bad: Vec<String>,
    // recovery
    hints: u64,
    hints_empty: u64,
    // state sync
    snapshots: Vec<BTreeMap<String, Value>>,
    snapshot_cur: BTreeMap<String, Value>,
    deltas_after_first: Vec<(String, bool, Value)>,
    deltas: u64,
    // analytics
    windows: u64,
    windows_bad: Vec<String>,
    // drift
    drifts: u64,
    drift_same: u64,
    // dashboard
    dashboards: u64,
    dashboard_totals: Vec<u64>,
}

impl Evidence {
    /// Evidence for a run whose bidirectional check changes `rule`'s threshold.
    pub fn new(rule: &str) -> Evidence {
        Evidence {
            watched_rule: rule.to_owned(),
            ..Evidence::default()
        }
    }

    /// Takes one message (in hub order).
    pub fn observe(&mut self, topic: &str, event: &str, payload: &[u8]) {
        *self
            .counts
            .entry((topic.to_owned(), event.to_owned()))
            .or_default() += 1;
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            self.bad_json += 1;
            return;
        };
        match (topic, event) {
            (topics::FEEDBACK, "alert") => {
                let rule = v["rule_name"].as_str().unwrap_or("?").to_owned();
                if rule == "pod_crashloop" {
                    if let Some(k) = v["key"].as_str() {
                        self.crashloop_alert_keys.insert(k.to_owned());
                    }
                }
                if !self.applied.is_empty() && rule == self.watched_rule {
                    self.alerts_after_apply += 1;
                    let want = self.applied[0]["value"].as_f64();
                    if v["threshold"].as_f64() != want {
                        self.alerts_after_apply_wrong_threshold += 1;
                    }
                }
                *self.alerts_by_rule.entry(rule).or_default() += 1;
            }
            (topics::RECOVERY, "hint") => {
                self.hints += 1;
                let hint = v["hint"].as_str().unwrap_or("");
                if hint.is_empty() {
                    self.hints_empty += 1;
                }
                if v["rule_name"] == "pod_crashloop" && hint.contains("kubectl") {
                    if let Some(k) = v["key"].as_str() {
                        self.crashloop_hint_keys.insert(k.to_owned());
                    }
                }
            }
            (topics::REACTOR_STEPS, "summary") => {
                self.summaries += 1;
                let (f, c, x) = (
                    v["finished"].as_u64(),
                    v["completed"].as_u64(),
                    v["failed"].as_u64(),
                );
                match (f, c, x) {
                    (Some(f), Some(c), Some(x)) if f == c + x => self.completed += c,
                    _ => self.summaries_inconsistent += 1,
                }
                if let Some(d) = v["mean_duration_ns"].as_f64().filter(|d| *d > 0.0) {
                    self.summaries_with_duration += 1;
                    self.duration_weighted_ns += d * c.unwrap_or(0) as f64;
                }
            }
            (topics::COMMANDS, "applied") if v["command"] == "set_threshold" => {
                self.applied.push(v);
            }
            (topics::COMMANDS, "rejected") => self.rejected += 1,
            (topics::JOURNAL, "appended") => {
                self.journal_appended += v["entries"].as_u64().unwrap_or(0);
            }
            (topics::JOURNAL, "recovered") => self.journal_recovered += 1,
            (topics::MONITORING, "stats") => {
                self.monitoring += 1;
                if let Err(e) = check_monitoring(&v) {
                    self.monitoring_bad.push(e);
                }
            }
            (topics::STATE, "snapshot_begin") => self.snapshot_cur.clear(),
            (topics::STATE, "snapshot_chunk") => {
                for o in v["objects"].as_array().into_iter().flatten() {
                    if let Some(k) = o["key"].as_str() {
                        self.snapshot_cur.insert(k.to_owned(), o["fields"].clone());
                    }
                }
            }
            (topics::STATE, "snapshot_end") => {
                self.snapshots.push(std::mem::take(&mut self.snapshot_cur));
            }
            (topics::STATE, "delta") => {
                self.deltas += 1;
                if self.snapshots.len() == 1 {
                    let o = &v["object"];
                    let key = o["key"].as_str().unwrap_or("").to_owned();
                    let deleted = v["change"] == "deleted";
                    self.deltas_after_first
                        .push((key, deleted, o["fields"].clone()));
                }
            }
            (topics::ANALYTICS, "window") => {
                self.windows += 1;
                if let Err(e) = check_window(&v) {
                    self.windows_bad.push(e);
                }
            }
            (topics::DRIFT, "drift") => {
                self.drifts += 1;
                if v["baseline"] == v["observed"] {
                    self.drift_same += 1;
                }
            }
            (topics::DASHBOARD, "update") => {
                self.dashboards += 1;
                if let Some(t) = v["events_total"].as_u64() {
                    self.dashboard_totals.push(t);
                }
            }
            _ => {}
        }
    }

    /// Messages seen on `topic`.
    pub fn on_topic(&self, topic: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((t, _), _)| t == topic)
            .map(|(_, n)| n)
            .sum()
    }

    /// Messages seen with `topic` and `event`.
    pub fn on(&self, topic: &str, event: &str) -> u64 {
        self.counts
            .get(&(topic.to_owned(), event.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Reactor figures from the window summaries and lifecycle events: (summaries, chains
    /// completed, mean chain duration in ns weighted by chains, retried, compensated,
    /// failed).
    pub fn reactor(&self) -> (u64, u64, f64, u64, u64, u64) {
        let mean = if self.completed > 0 {
            self.duration_weighted_ns / self.completed as f64
        } else {
            0.0
        };
        (
            self.summaries,
            self.completed,
            mean,
            self.on(topics::REACTOR_STEPS, "retried"),
            self.on(topics::REACTOR_STEPS, "compensated"),
            self.on(topics::REACTOR_STEPS, "failed"),
        )
    }

    /// The snapshots seen, in order (key → fields).
    pub fn snapshots(&self) -> &[BTreeMap<String, Value>] {
        &self.snapshots
    }
}

fn check_monitoring(v: &Value) -> Result<(), String> {
    let stages = v["stages"].as_array().ok_or("no stages")?;
    let names: Vec<&str> = stages.iter().filter_map(|s| s["name"].as_str()).collect();
    if names != STAGE_NAMES {
        return Err(format!("stages {names:?}"));
    }
    for s in stages {
        let p = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
        if !(p("p50_ns") <= p("p99_ns")
            && p("p99_ns") <= p("p999_ns")
            && p("p999_ns") <= p("max_ns"))
        {
            return Err(format!("{}: percentiles out of order", s["name"]));
        }
    }
    Ok(())
}

fn check_window(v: &Value) -> Result<(), String> {
    if !v["events_per_s"].as_f64().is_some_and(|r| r >= 0.0) {
        return Err("events_per_s missing".to_owned());
    }
    let counts: Vec<u64> = v["top_keys"]
        .as_array()
        .ok_or("top_keys missing")?
        .iter()
        .map(|t| t["count_at_least"].as_u64().unwrap_or(0))
        .collect();
    if !counts.windows(2).all(|w| w[0] >= w[1]) {
        return Err(format!("top keys not sorted: {counts:?}"));
    }
    Ok(())
}

/// Results of the observed run that do not come from messages.
pub struct RunFacts {
    /// The scenario.
    pub scenario: Scenario,
    /// Records pushed in the observed run.
    pub records: u64,
    /// Entries the journal holds after the run (read back with `JournalReader`).
    pub journal_entries: Option<u64>,
    /// Replay of the journal into a fresh flow rebuilt the live final snapshot:
    /// `Some(Ok(objects))` or `Some(Err(why))`; `None` if not attempted.
    pub replay: Option<Result<usize, String>>,
    /// The plain-WebSocket client's replies: (bad command, good command).
    pub replies: Option<(Value, Value)>,
    /// Seconds the observed run pushed records.
    pub seconds: f64,
    /// The dashboard interval of the run, seconds.
    pub dashboard_interval_s: f64,
    /// Transient reactor faults injected per million Kubernetes records.
    pub faults_per_million: u32,
}

/// The verdict of `pattern` from the evidence and facts of one observed run.
pub fn verdict(pattern: &str, e: &Evidence, f: &RunFacts) -> Verdict {
    use Verdict::{Fail, NotApplicable as Na, Pass};
    let k8s = f.scenario.is_k8s();
    match pattern {
        "k8s_feedback" => {
            if !k8s {
                return Na(format!(
                    "no Kubernetes objects in {}; its rule alerts are checked under failure_recovery_reverse",
                    f.scenario.name()
                ));
            }
            let changes = e.on(topics::K8S_EVENTS, "change");
            let both: Vec<_> = e
                .crashloop_alert_keys
                .intersection(&e.crashloop_hint_keys)
                .collect();
            if changes == 0 {
                Fail("no k8s:events change messages".into())
            } else if both.is_empty() {
                Fail(format!(
                    "{} pod_crashloop alerts, none with a `kubectl` recovery hint for the same pod",
                    e.crashloop_alert_keys.len()
                ))
            } else {
                Pass(format!(
                    "{changes} changes; {} crash-looping pods alerted (critical) with a `kubectl logs` recovery hint; {} alerts cleared",
                    both.len(),
                    e.on(topics::FEEDBACK, "cleared")
                ))
            }
        }
        "reactor_notifications" => {
            if e.summaries == 0 {
                return Fail("no reactor:steps summary".into());
            }
            if e.summaries_inconsistent > 0 {
                return Fail(format!(
                    "{} of {} summaries with finished != completed + failed",
                    e.summaries_inconsistent, e.summaries
                ));
            }
            if e.summaries_with_duration == 0 {
                return Fail("no summary carries a chain duration".into());
            }
            let retried = e.on(topics::REACTOR_STEPS, "retried");
            if f.faults_per_million > 0 {
                let on_recovery = e.on(topics::RECOVERY, "retried");
                if retried == 0 {
                    return Fail(format!(
                        "{} faults per million injected, no step retried",
                        f.faults_per_million
                    ));
                }
                if on_recovery != retried {
                    return Fail(format!(
                        "{retried} retried on reactor:steps but {on_recovery} on recovery"
                    ));
                }
            }
            Pass(format!(
                "{} window summaries (finished = completed + failed, {} chains completed, with durations); {retried} steps retried, {} compensated, {} failed",
                e.summaries,
                e.completed,
                e.on(topics::REACTOR_STEPS, "compensated"),
                e.on(topics::REACTOR_STEPS, "failed")
            ))
        }
        "bidirectional_channels" => {
            let (rule, old, new) = f.scenario.threshold_command();
            let Some((bad, good)) = &f.replies else {
                return Fail("the WebSocket client got no replies to its commands".into());
            };
            if bad["status"] != "error" || bad["response"]["code"] != "bad_argument" {
                return Fail(format!("a non-numeric threshold was answered {bad}"));
            }
            if good["status"] != "ok" || good["response"]["detail"].as_f64() != Some(old) {
                return Fail(format!(
                    "set_threshold {rule}={new} was answered {good}, expected ok with the previous threshold {old}"
                ));
            }
            let Some(applied) = e.applied.first() else {
                return Fail("no commands/applied message reached the subscriber".into());
            };
            if applied["value"].as_f64() != Some(new) {
                return Fail(format!("applied {applied}"));
            }
            if e.alerts_after_apply_wrong_threshold > 0 {
                return Fail(format!(
                    "{} of {} later {rule} alerts still carry another threshold",
                    e.alerts_after_apply_wrong_threshold, e.alerts_after_apply
                ));
            }
            let later = if e.alerts_after_apply == 0 {
                format!("no later {rule} alert in the run to compare")
            } else {
                format!(
                    "all {} later {rule} alerts carry threshold {new}",
                    e.alerts_after_apply
                )
            };
            Pass(format!(
                "over WebSocket: a bad value answered `bad_argument`; set_threshold {rule} {old} → {new} answered ok (previous {old}); `applied` broadcast to subscribers; {later}"
            ))
        }
        "event_sourcing_reverse" => {
            if e.journal_recovered == 0 {
                return Fail("the journal's open was not reported".into());
            }
            if e.journal_appended != f.records {
                return Fail(format!(
                    "journal topic reported {} appended entries for {} records",
                    e.journal_appended, f.records
                ));
            }
            if f.journal_entries != Some(f.records) {
                return Fail(format!(
                    "the journal holds {:?} entries for {} records",
                    f.journal_entries, f.records
                ));
            }
            match &f.replay {
                Some(Ok(objects)) => Pass(format!(
                    "{} records journaled before processing and reported on `journal`; replaying the journal into a fresh flow rebuilt the live final state exactly ({objects} objects)",
                    f.records
                )),
                Some(Err(why)) => Fail(format!("replay: {why}")),
                None => Fail("replay not attempted".into()),
            }
        }
        "realtime_monitoring_reverse" => {
            if e.monitoring == 0 {
                Fail("no monitoring stats".into())
            } else if let Some(bad) = e.monitoring_bad.first() {
                Fail(format!(
                    "{} bad stats messages: {bad}",
                    e.monitoring_bad.len()
                ))
            } else {
                Pass(format!(
                    "{} stats messages, each with the 9 stages in order and p50 ≤ p99 ≤ p99.9 ≤ max",
                    e.monitoring
                ))
            }
        }
        "failure_recovery_reverse" => {
            let alerts: u64 = e.alerts_by_rule.values().sum();
            if alerts == 0 {
                return Na(format!(
                    "no rule fired in this run of {} (no failure to recover from)",
                    f.scenario.name()
                ));
            }
            if e.hints == 0 {
                return Fail(format!("{alerts} alerts, no recovery hint"));
            }
            if e.hints_empty > 0 {
                return Fail(format!("{} hints without text", e.hints_empty));
            }
            let rules: Vec<String> = e
                .alerts_by_rule
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            Pass(format!(
                "{} recovery hints for {alerts} alerts ({}); {} recovered; {} reactor retries reported",
                e.hints,
                rules.join(", "),
                e.on(topics::RECOVERY, "recovered"),
                e.on(topics::RECOVERY, "retried")
            ))
        }
        "state_sync_reverse" => {
            if !k8s {
                return Na(format!(
                    "state deltas are published for Kubernetes objects only; {} records feed analytics and dashboard",
                    f.scenario.name()
                ));
            }
            if e.snapshots.len() < 2 {
                return Fail(format!("{} snapshots seen, 2 requested", e.snapshots.len()));
            }
            let mut rebuilt = e.snapshots[0].clone();
            for (key, deleted, fields) in &e.deltas_after_first {
                if *deleted {
                    rebuilt.remove(key);
                } else {
                    rebuilt.insert(key.clone(), fields.clone());
                }
            }
            if rebuilt == e.snapshots[1] {
                Pass(format!(
                    "snapshot of {} objects + {} ordered deltas == the second snapshot ({} objects)",
                    e.snapshots[0].len(),
                    e.deltas_after_first.len(),
                    e.snapshots[1].len()
                ))
            } else {
                let differ = e.snapshots[1]
                    .iter()
                    .filter(|(k, v)| rebuilt.get(*k) != Some(*v))
                    .count();
                Fail(format!(
                    "snapshot + deltas differs from the second snapshot in {differ} objects"
                ))
            }
        }
        "performance_analytics_reverse" => {
            if e.windows == 0 {
                Fail("no analytics window".into())
            } else if let Some(bad) = e.windows_bad.first() {
                Fail(format!("{} bad windows: {bad}", e.windows_bad.len()))
            } else {
                Pass(format!(
                    "{} windows with rates per kind/namespace/group and top keys sorted by count",
                    e.windows
                ))
            }
        }
        "config_drift_reverse" => {
            if !k8s {
                return Na(format!(
                    "no declared spec in {}: ticks and sensor readings carry no spec hash",
                    f.scenario.name()
                ));
            }
            if e.drifts == 0 {
                Fail("no drift events though the generator edits specs".into())
            } else if e.drift_same > 0 {
                Fail(format!("{} drifts with baseline == observed", e.drift_same))
            } else {
                Pass(format!(
                    "{} drift events (baseline ≠ observed spec hash), {} corrected",
                    e.drifts,
                    e.on(topics::DRIFT, "corrected")
                ))
            }
        }
        "live_dashboard_reverse" => {
            // Coalesced: at most one update per interval (+1 for the first, +1 for the
            // final tick after the run).
            let most = (f.seconds / f.dashboard_interval_s).ceil() as u64 + 2;
            if e.dashboards == 0 {
                Fail("no dashboard update".into())
            } else if e.dashboards > most {
                Fail(format!(
                    "{} updates in {:.1} s exceed one per {:.0} ms",
                    e.dashboards,
                    f.seconds,
                    f.dashboard_interval_s * 1e3
                ))
            } else if !e.dashboard_totals.windows(2).all(|w| w[0] <= w[1]) {
                Fail("events_total went backwards".into())
            } else {
                Pass(format!(
                    "{} coalesced updates in {:.1} s (at most one per {:.0} ms), totals never decrease",
                    e.dashboards,
                    f.seconds,
                    f.dashboard_interval_s * 1e3
                ))
            }
        }
        other => Fail(format!("unknown pattern {other}")),
    }
}
