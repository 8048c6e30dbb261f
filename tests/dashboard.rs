//! The dashboard (`tools/dashboard`, issue 8) in a real browser, end to end.
//!
//! 1. Builds the dashboard's static site when it is missing or older than its sources
//!    (`npx nuxt generate` → `tools/dashboard/.output/public`).
//! 2. Starts the engine (`examples/reverse_flow`, built here if needed) on
//!    `enterprise_k8s_cluster` at 2,400 events/s, serving every topic and the static site
//!    itself (`--listen 127.0.0.1:0 --static …`), with a `--control` file for the test's
//!    injections (a CrashLoopBackOff pod, a forced disconnect of every client).
//! 3. Runs `tools/dashboard/test/browser.mjs`: Debian's `/usr/bin/chromium` driven by
//!    `playwright-core` (never a downloaded browser), bounded to 240 s.
//! 4. Asserts on its JSON result: live numbers change; the injected CrashLoopBackOff is on
//!    the page as a critical alert with its recovery hint within 2 s; acknowledging it on
//!    one page shows it acknowledged on a second page; a malformed message and a command
//!    the engine rejects each get a specific message and the page keeps working; the page
//!    loaded with the engine down says the engine is unreachable; a forced server-side
//!    disconnect shows `reconnecting`, then the page resumes and holds exactly the rows the
//!    engine's history holds for that span (no gap, no duplicate); presence lists both
//!    pages; and at the engine's ~1,000 messages/s on the dashboard's topics the page stays
//!    responsive (frame times and long tasks are printed: docs/dashboard.md).
//!
//! Screenshots of every view are written to `<target dir>/dashboard-screenshots/` and
//! their paths printed. Without the dashboard's npm packages or Chromium the test fails
//! (run `bash scripts/setup.d/dashboard.sh`); it never skips.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

#[path = "support/example.rs"]
mod example;
use example::{example_binary, profile_dir, wait_bounded, Engine, ROOT};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Engine input rate: about 1,000 messages/s on the dashboard's topics.
const RATE: &str = "2400";

fn dashboard_dir() -> PathBuf {
    Path::new(ROOT).join("tools/dashboard")
}

/// Newest modification time of the files under `p` (skipping build outputs).
fn newest(p: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    let Ok(meta) = std::fs::metadata(p) else {
        return t;
    };
    if meta.is_file() {
        return meta.modified().unwrap_or(t);
    }
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let name = e.file_name();
            if matches!(
                name.to_str(),
                Some("node_modules" | ".nuxt" | ".output" | "test")
            ) {
                continue;
            }
            t = t.max(newest(&e.path()));
        }
    }
    t
}

/// Builds the static site when it is missing or stale; returns its directory.
fn ensure_site() -> PathBuf {
    let dir = dashboard_dir();
    assert!(
        dir.join("node_modules/.bin/nuxt").exists(),
        "the dashboard's npm packages are missing: run `bash scripts/setup.d/dashboard.sh`"
    );
    let public = dir.join(".output/public");
    let built = std::fs::metadata(public.join("index.html"))
        .and_then(|m| m.modified())
        .ok();
    let sources = [
        dir.join("app"),
        dir.join("nuxt.config.js"),
        dir.join("package.json"),
        dir.join("package-lock.json"),
        Path::new(ROOT).join("examples/rules/default.rules"),
    ]
    .iter()
    .map(|p| newest(p))
    .max()
    .unwrap();
    if built.is_some_and(|b| b >= sources) {
        eprintln!("dashboard: static site up to date at {}", public.display());
        return public;
    }
    eprintln!("dashboard: building the static site (npx nuxt generate)");
    let mut child = Command::new("npx")
        .args(["--no-install", "nuxt", "generate"])
        .current_dir(&dir)
        .env("NUXT_TELEMETRY_DISABLED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run npx nuxt generate (is node installed? run scripts/setup.d/dashboard.sh)");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child, Duration::from_secs(420));
    let (out, err) = (
        out.recv().unwrap_or_default(),
        err.recv().unwrap_or_default(),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "nuxt generate failed ({status:?}):\n{out}\n{err}"
    );
    assert!(
        public.join("index.html").exists(),
        "nuxt generate wrote no index.html:\n{out}"
    );
    public
}

/// Reads a pipe to its end on a thread.
fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// A rule that is not among the dashboard's built-in defaults: the Rules view shows it only
/// when it reads the catalogue from the engine (the `rules` command).
const PROBE_RULE: &str = r#"
rule dashboard_probe
    kind     Pod
    when     RestartsTotal > 1000
    severity info
    hint     "only in the dashboard test's rules file"
"#;

fn start_engine(bin: &Path, site: &Path, control: &Path, rules: &Path) -> Engine {
    let args: Vec<&OsStr> = [
        "--scenario",
        "enterprise_k8s_cluster",
        "--rate",
        RATE,
        "--duration",
        "400",
        "--listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(OsStr::new)
    .chain([
        OsStr::new("--rules"),
        rules.as_os_str(),
        OsStr::new("--static"),
        site.as_os_str(),
        OsStr::new("--control"),
        control.as_os_str(),
    ])
    .collect();
    Engine::start(bin, &args, &[], &["--control", "error"])
}

fn step<'a>(r: &'a Value, name: &str) -> &'a Value {
    let s = &r["steps"][name];
    assert_eq!(s["ok"], true, "browser step {name} failed: {s}");
    s
}

#[test]
fn the_dashboard_shows_live_state_alerts_acks_and_resumes_in_a_real_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `bash scripts/setup.d/dashboard.sh` (apt chromium)"
    );
    let site = ensure_site();
    let bin = example_binary();
    let work = std::env::temp_dir().join(format!("ebbflow-dashboard-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let control = work.join("control");
    let shots = profile_dir()
        .parent()
        .unwrap()
        .join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    // The default rules plus one the dashboard does not bundle.
    let rules = work.join("rules");
    let defaults = std::fs::read_to_string(Path::new(ROOT).join("examples/rules/default.rules"))
        .expect("read the default rules");
    std::fs::write(&rules, format!("{defaults}\n{PROBE_RULE}")).unwrap();
    let engine = start_engine(&bin, &site, &control, &rules);
    let url = format!("http://{}", engine.addr);
    eprintln!("dashboard: engine serving the site at {url}/");

    let mut child = Command::new("node")
        .arg("test/browser.mjs")
        .current_dir(dashboard_dir())
        .env("ENGINE_URL", &url)
        .env("CONTROL_FILE", &control)
        .env("STATIC_DIR", &site)
        .env("SCREENSHOT_DIR", &shots)
        .env("PERF_SECONDS", "8")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node test/browser.mjs");
    let out = drain(child.stdout.take().unwrap());
    let status = wait_bounded(&mut child, Duration::from_secs(270));
    drop(engine);
    let out = out
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&work);
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    let r: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("no JSON result from the browser test ({status:?}, {e}):\n{out}")
    });
    eprintln!("dashboard: browser result: {r:#}");
    assert_eq!(r["errors"], serde_json::json!([]), "browser test errors");
    assert_eq!(
        r["page_errors"],
        serde_json::json!([]),
        "uncaught page errors"
    );

    // Live numbers change.
    let live = step(&r, "live_numbers_change");
    assert_ne!(live["first"], live["second"], "events total did not move");
    assert!(live["notify_stage"].as_str().unwrap().contains("p99"));

    // The injected CrashLoopBackOff is a critical pod_crashloop alert with its hint, in 2 s.
    let alert = step(&r, "crashloop_alert");
    // From writing the control file to the row entering the page's DOM (recorded in the
    // page by a MutationObserver; the same clock).
    let latency = alert["latency_ms"].as_i64().unwrap();
    assert!(
        latency > 0,
        "the alert row was not observed in the page: {alert}"
    );
    assert!(
        latency < 2000,
        "the CrashLoopBackOff alert took {latency} ms"
    );
    assert_eq!(alert["critical"], true);
    assert_eq!(alert["pod_crashloop"], true);
    assert_eq!(alert["hint"], true, "no recovery hint: {alert}");

    // Acknowledged on one page, shown on the other.
    let ack = step(&r, "acknowledge_reaches_second_page");
    assert_eq!(ack["on_first_page"], true);

    // Bad input: a specific message each, and the page keeps working.
    let bad = step(&r, "malformed_message");
    assert!(bad["notice"]
        .as_str()
        .unwrap()
        .starts_with("Malformed message from the engine"));
    assert_eq!(
        bad["malformed"], 3,
        "only the 3 injected messages may count as malformed: {bad}"
    );
    assert_eq!(bad["still_live"], true);
    let catalogue = step(&r, "rules_from_engine");
    assert_eq!(catalogue["source"], "engine", "{catalogue}");
    assert_eq!(
        catalogue["probe_when"], "RestartsTotal > 1000",
        "{catalogue}"
    );
    assert_eq!(catalogue["probe_kind"], "Pod", "{catalogue}");
    assert_eq!(catalogue["rows"], 20, "{catalogue}");
    let rejected = step(&r, "command_rejected");
    assert!(
        rejected["rejected"]
            .as_str()
            .unwrap()
            .contains("(bad_argument)"),
        "{rejected}"
    );
    assert!(rejected["accepted"]
        .as_str()
        .unwrap()
        .contains("threshold set to 3.5"));
    let down = step(&r, "engine_down_at_page_load");
    assert_eq!(down["badge"], "unreachable");
    assert!(down["notice"]
        .as_str()
        .unwrap()
        .contains("The engine is unreachable"));
    assert!(down["command_answer"]
        .as_str()
        .unwrap()
        .contains("not connected"));

    // Forced disconnect: reconnecting, then resumed with exactly the engine's rows.
    let resume = step(&r, "forced_disconnect_resumes_without_gaps");
    let log: Vec<&str> = resume["conn_log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let rec = log.iter().position(|s| *s == "reconnecting");
    assert!(rec.is_some(), "never showed reconnecting: {log:?}");
    assert!(
        log[rec.unwrap()..]
            .iter()
            .any(|s| *s == "connected" || *s == "resynced"),
        "did not come back: {log:?}"
    );
    assert_eq!(resume["missing"], 0, "{resume}");
    assert_eq!(resume["duplicates"], 0, "{resume}");
    assert_eq!(resume["first_difference"], -1, "{resume}");
    assert_eq!(resume["page_rows"], resume["server_rows"]);
    assert!(resume["rows_during_outage"].as_u64().unwrap() > 0);

    // Presence: both dashboards are listed.
    let presence = step(&r, "presence_lists_both_pages");
    assert!(
        presence["presence"]
            .as_str()
            .unwrap()
            .matches("dash-")
            .count()
            >= 2
    );

    // Responsiveness at the engine's message rate: the median frame interval stays at or
    // under 50 ms (≥ 20 frames/s) and long tasks leave the main thread free at least a
    // quarter of the time. Loose bounds: a loaded, shared 2-vCPU machine runs the engine,
    // Chromium and other sessions; the measured figures go to docs/dashboard.md.
    for view in ["pipeline", "events"] {
        let f = &r["figures"][view];
        eprintln!("dashboard: performance on the {view} view: {f}");
        assert!(
            f["messages_per_s"].as_f64().unwrap() >= 500.0,
            "{view}: {f}"
        );
        assert!(f["frame_ms_p50"].as_f64().unwrap() <= 50.0, "{view}: {f}");
        assert!(
            f["long_task_share"].as_f64().unwrap() <= 0.75,
            "{view}: {f}"
        );
    }

    // Screenshots of every view.
    let files: Vec<&str> = r["screenshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for v in [
        "pipeline",
        "k8s-events",
        "feedback",
        "resources",
        "schema",
        "drift",
        "performance",
        "channels",
        "rules",
    ] {
        let want = shots.join(format!("view-{v}.png"));
        assert!(
            files.iter().any(|f| Path::new(f) == want),
            "no screenshot of {v}"
        );
        assert!(std::fs::metadata(&want)
            .map(|m| m.len() > 1000)
            .unwrap_or(false));
    }
    for f in &files {
        eprintln!("dashboard: screenshot {f}");
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "node exited {status:?}"
    );
}
