//! `ebbflow-report --quick`: runs the real report once (a few seconds: three scenarios,
//! each a 0.3 s flat-out run and a 0.6 s observed run at 2,000 records/s with one client
//! per transport, parked pipeline threads, loopback only) into a temporary directory, and
//! checks that the Markdown and the SVG it writes have the original report's shape and
//! that their numbers are consistent with each other.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ebbflow::flow::assembly::STAGE_NAMES;

const BIN: &str = env!("CARGO_BIN_EXE_ebbflow-report");
const SCENARIOS: [&str; 3] = [
    "enterprise_k8s_cluster",
    "financial_trading_platform",
    "iot_smart_city_platform",
];
const PATTERNS: [&str; 10] = [
    "k8s_feedback",
    "reactor_notifications",
    "bidirectional_channels",
    "event_sourcing_reverse",
    "realtime_monitoring_reverse",
    "failure_recovery_reverse",
    "state_sync_reverse",
    "performance_analytics_reverse",
    "config_drift_reverse",
    "live_dashboard_reverse",
];

struct Run {
    markdown: String,
    svg: String,
    /// python3's XML parser on the SVG: (success, stdout, stderr); `None` without python3.
    svg_parsed: Option<(bool, String, String)>,
    status: i32,
    stderr: String,
}

/// Parses `svg` with python3's XML parser, printing the root tag and the polyline count.
fn parse_svg(svg: &std::path::Path) -> Option<(bool, String, String)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
             print(r.tag, len(r.findall('{http://www.w3.org/2000/svg}polyline')))",
        ])
        .arg(svg)
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The quick report, made once for all tests of this file.
fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ebbflow-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("report.md");
        let mut child = Command::new(BIN)
            .args(["--quick", "--out"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the report binary starts");
        // Bounded: the quick run takes seconds; a hang fails the test instead of the suite.
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ebbflow-report --quick ran longer than 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let svg_path = dir.join("report-latency.svg");
        let run = Run {
            markdown: std::fs::read_to_string(&out).unwrap_or_default(),
            svg: std::fs::read_to_string(&svg_path).unwrap_or_default(),
            svg_parsed: parse_svg(&svg_path),
            status: status.code().unwrap_or(-1),
            stderr,
        };
        let _ = std::fs::remove_dir_all(&dir);
        run
    })
}

/// The text of section `## title` (up to the next `## `).
fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let head = format!("\n## {title}\n");
    let start = md
        .find(&head)
        .unwrap_or_else(|| panic!("section `{title}` missing"))
        + head.len();
    let end = md[start..].find("\n## ").map_or(md.len(), |e| start + e);
    &md[start..end]
}

/// Data rows of the first table in `text` (header and rule skipped), as trimmed cells.
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
            inner.split('|').map(|c| c.trim().to_owned()).collect()
        })
        .collect()
}

/// `1,234` → 1234.
fn count(cell: &str) -> u64 {
    cell.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {cell:?}"))
}

/// `12 ns`, `1.5 µs`, `2.35 ms`, `1.00 s` → ns.
fn ns(cell: &str) -> f64 {
    let (v, unit) = cell
        .split_once(' ')
        .unwrap_or_else(|| panic!("not a duration: {cell:?}"));
    let v: f64 = v
        .parse()
        .unwrap_or_else(|_| panic!("not a duration: {cell:?}"));
    v * match unit {
        "ns" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => panic!("unknown unit in {cell:?}"),
    }
}

/// Durations are printed with 3–4 significant digits: compare with that tolerance.
fn le(a: f64, b: f64) -> bool {
    a <= b * 1.001 + 0.5
}

#[test]
fn the_quick_run_succeeds_with_progress_on_stderr() {
    let r = run();
    assert_eq!(
        r.status, 0,
        "exit 0: report written and no pattern failed; stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("step 1/7") && r.stderr.contains("step 7/7"),
        "progress lines name the steps: {}",
        r.stderr
    );
}

#[test]
fn the_report_has_every_section_of_the_original_shape_and_says_how_each_was_measured() {
    let md = &run().markdown;
    assert!(md.starts_with("# ebbflow reverse flow report"), "{md}");
    let titles = [
        "Summary",
        "Method",
        "Machine",
        "Reverse flow architecture",
        "Patterns across scenarios",
        "Per-pattern results",
        "Per-stage latency",
        "Reactor steps",
        "Notification channels",
        "End-to-end latency",
    ];
    let mut at = 0;
    for t in titles {
        let pos = md[at..]
            .find(&format!("\n## {t}\n"))
            .unwrap_or_else(|| panic!("section `{t}` missing or out of order"));
        at += pos + 1;
    }
    for t in titles.iter().filter(|t| **t != "Method") {
        assert!(
            section(md, t).contains("*How measured:*"),
            "section `{t}` says how it was measured"
        );
    }
    assert_eq!(
        md.matches("```mermaid").count(),
        3,
        "stage chain, channel fan-out and deliveries pie"
    );
    assert!(md.contains("![latency percentiles](report-latency.svg)"));
}

#[test]
fn thirty_pattern_rows_each_with_a_verdict_derived_from_the_run() {
    let md = &run().markdown;
    let rows = table(section(md, "Per-pattern results"));
    assert_eq!(rows.len(), 30, "10 patterns × 3 scenarios");
    let pairs: BTreeSet<(String, String)> =
        rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let want: BTreeSet<(String, String)> = SCENARIOS
        .iter()
        .flat_map(|s| PATTERNS.iter().map(move |p| (s.to_string(), p.to_string())))
        .collect();
    assert_eq!(pairs, want, "each scenario × pattern exactly once");
    let (mut pass, mut na) = (0, 0);
    for r in &rows {
        let (scenario, pattern, result, evidence) = (&r[0], &r[1], &r[6], &r[7]);
        count(&r[3]);
        count(&r[5]);
        assert!(!evidence.is_empty(), "{scenario} {pattern}: evidence given");
        // Only the patterns that need Kubernetes objects are n/a, and only outside k8s.
        let needs_k8s = matches!(
            pattern.as_str(),
            "k8s_feedback" | "state_sync_reverse" | "config_drift_reverse"
        );
        let expect = if needs_k8s && scenario != "enterprise_k8s_cluster" {
            "n/a"
        } else {
            "pass"
        };
        assert_eq!(result, expect, "{scenario} {pattern}: {evidence}");
        match result.as_str() {
            "pass" => pass += 1,
            _ => na += 1,
        }
    }
    let summary = section(md, "Summary");
    assert!(
        summary.contains(&format!("**{pass} pass**, {na} n/a")),
        "the summary counts the table's verdicts: {summary}"
    );
    // The per-scenario summary rows agree with the table.
    for row in table(summary) {
        let in_table = rows.iter().filter(|r| r[0] == row[0]);
        let passes = in_table.filter(|r| r[6] == "pass").count() as u64;
        assert_eq!(count(&row[10]), passes, "{}: pass count", row[0]);
        assert_eq!(count(&row[12]), 0, "{}: no failure", row[0]);
    }
}

#[test]
fn the_pattern_overview_sums_the_per_scenario_rows() {
    let md = &run().markdown;
    let overview = table(section(md, "Patterns across scenarios"));
    let rows = table(section(md, "Per-pattern results"));
    assert_eq!(overview.len(), 10);
    for o in &overview {
        let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == o[0]).collect();
        assert_eq!(mine.len(), 3, "{}", o[0]);
        let passes = mine.iter().filter(|r| r[6] == "pass").count() as u64;
        let flat: u64 = mine.iter().map(|r| count(&r[3])).sum();
        let observed: u64 = mine.iter().map(|r| count(&r[5])).sum();
        assert_eq!(count(&o[1]), passes, "{}: passes", o[0]);
        assert_eq!(count(&o[4]), flat, "{}: flat-out messages", o[0]);
        assert_eq!(count(&o[6]), observed, "{}: observed messages", o[0]);
    }
}

#[test]
fn the_reactor_table_shows_completed_chains_and_retries_only_where_faults_were_injected() {
    let md = &run().markdown;
    let rows = table(section(md, "Reactor steps"));
    let summary = table(section(md, "Summary"));
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let records = summary
            .iter()
            .find(|s| s[0] == r[0])
            .map(|s| count(&s[5]))
            .unwrap();
        let (completed, retried, faults) = (count(&r[2]), count(&r[4]), count(&r[7]));
        assert!(count(&r[1]) > 0, "{}: window summaries", r[0]);
        assert!(
            completed > 0 && completed <= records,
            "{}: 0 < {completed} chains ≤ {records} records",
            r[0]
        );
        assert!(ns(&r[3]) > 0.0, "{}: chains are timed", r[0]);
        assert_eq!(
            retried > 0,
            faults > 0,
            "{}: steps are retried exactly where faults are injected",
            r[0]
        );
    }
}

#[test]
fn stage_latencies_are_ordered_and_items_only_shrink_along_the_chain() {
    let md = &run().markdown;
    let rows = table(section(md, "Per-stage latency"));
    assert_eq!(rows.len(), 27, "9 stages × 3 scenarios");
    let summary = table(section(md, "Summary"));
    for (s, chunk) in SCENARIOS.iter().zip(rows.chunks(9)) {
        let names: Vec<&str> = chunk.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(names, STAGE_NAMES, "{s}: stages in chain order");
        for r in chunk {
            assert_eq!(&r[0], s);
            let (i, o) = (count(&r[2]), count(&r[3]));
            assert!(o <= i, "{s} {}: events out {o} ≤ in {i}", r[1]);
            let (p50, p99, p999, max) = (ns(&r[4]), ns(&r[5]), ns(&r[6]), ns(&r[7]));
            assert!(
                le(p50, p99) && le(p99, p999) && le(p999, max),
                "{s} {}: p50 ≤ p99 ≤ p99.9 ≤ max: {r:?}",
                r[1]
            );
        }
        for w in chunk.windows(2) {
            assert_eq!(
                count(&w[0][3]),
                count(&w[1][2]),
                "{s}: what {} hands on is what {} takes",
                w[0][1],
                w[1][1]
            );
        }
        let records = summary.iter().find(|r| r[0] == *s).map(|r| count(&r[1]));
        let first_in = count(&chunk[0][2]);
        assert!(
            records.is_some_and(|n| n > 0 && n <= first_in),
            "{s}: the journal stage took every record pushed ({records:?} ≤ {first_in})"
        );
    }
}

#[test]
fn every_transport_delivered_and_its_figures_are_consistent() {
    let md = &run().markdown;
    let rows = table(section(md, "Notification channels"));
    assert_eq!(rows.len(), 12, "4 transports × 3 scenarios");
    let transports: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        transports,
        BTreeSet::from([
            "Phoenix Channels V2 (WebSocket)",
            "plain WebSocket",
            "Server-Sent Events",
            "in-process pub/sub"
        ])
    );
    for r in &rows {
        let (clients, subscribed) = r[2].split_once(" (").unwrap();
        let subscribed = count(subscribed.trim_end_matches(')'));
        assert!(subscribed <= count(clients));
        let (expected, received) = (count(&r[3]), count(&r[4]));
        assert!(received > 0, "{} {}: messages arrived", r[0], r[1]);
        assert!(
            received <= expected,
            "{} {}: {received} ≤ {expected}",
            r[0],
            r[1]
        );
        let share: f64 = r[5].trim_end_matches(" %").parse().unwrap();
        let want = received as f64 * 100.0 / expected as f64;
        assert!((share - want).abs() < 0.06, "{r:?}");
        let (p50, p99, p999, max) = (ns(&r[7]), ns(&r[8]), ns(&r[9]), ns(&r[10]));
        assert!(
            p50 > 0.0 && le(p50, p99) && le(p99, p999) && le(p999, max),
            "{r:?}"
        );
    }
}

#[test]
fn end_to_end_percentiles_rise_and_the_plot_is_well_formed_svg() {
    let r = run();
    let rows = table(section(&r.markdown, "End-to-end latency"));
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(count(&row[1]) > 0, "{}: samples", row[0]);
        let values: Vec<f64> = row[2..12].iter().map(|c| ns(c)).collect();
        assert!(
            values.windows(2).all(|w| le(w[0], w[1])),
            "{}: percentiles never decrease up to max: {values:?}",
            row[0]
        );
    }
    let svg = &r.svg;
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3, "one line per scenario");
    for s in SCENARIOS {
        assert!(svg.contains(&format!(">{s}</text>")), "legend names {s}");
    }
    assert!(
        svg.contains("percentile") && svg.contains("latency"),
        "axis labels"
    );
    // A real XML parser, when python3 is there (it is on the CI image).
    if let Some((ok, stdout, stderr)) = &r.svg_parsed {
        assert!(ok, "the SVG parses as XML: {stderr}");
        assert_eq!(stdout, "{http://www.w3.org/2000/svg}svg 3");
    }
}

#[test]
fn the_machine_section_reports_what_was_read_from_the_system() {
    let md = &run().markdown;
    let rows = table(section(md, "Machine"));
    let get = |k: &str| {
        rows.iter()
            .find(|r| r[0] == k)
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("machine row `{k}`"))
    };
    let cpus: usize = get("logical CPUs").parse().unwrap();
    assert_eq!(
        cpus,
        std::thread::available_parallelism().unwrap().get(),
        "the CPUs this process may use"
    );
    for k in [
        "load average at start (1/5/15 min)",
        "load average at end (1/5/15 min)",
    ] {
        let v = get(k);
        let loads: Vec<f64> = v.split(" / ").map(|x| x.parse().unwrap()).collect();
        assert_eq!(loads.len(), 3, "{k}: {v}");
    }
    assert!(get("compiler").starts_with("rustc "));
}

#[test]
fn help_exits_zero_and_bad_arguments_exit_two_with_a_reason() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--out PATH"));
    let bad = Command::new(BIN).args(["--clients", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--clients"));
    let unknown = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
