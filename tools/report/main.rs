//! `ebbflow-report`: runs the reverse flow's ten patterns over the three scenarios and
//! writes a Markdown report — summary, per-pattern table, per-channel table, per-stage
//! latency, mermaid diagrams and an SVG latency-percentile plot — in which every figure is
//! measured in this run, with the method and the machine stated.
//!
//! ```text
//! cargo run --release --bin ebbflow-report -- --out docs/report.md
//! ```
//!
//! Per scenario it makes two runs (see `docs/reporting.md`):
//!
//! * a **flat-out run** ([`throughput`]): records as fast as the flow takes them, messages
//!   counted per topic — throughput, per-stage latency, messages per pattern;
//! * an **observed run** ([`observe`]): a fixed offered rate, journaled, served over the
//!   channels server to real Phoenix / WebSocket / SSE / in-process clients, with client
//!   commands and snapshots — end-to-end latency, publish → receive latency per transport,
//!   and the evidence each pattern's verdict is derived from ([`patterns`]).
//!
//! Progress goes to stderr. Exit status: 0 report written and no pattern failed; 1 report
//! written, some pattern failed; 2 bad arguments; 3 a run could not be made or the report
//! not written.

mod clients;
mod machine;
mod observe;
mod patterns;
mod progress;
mod render;
mod scenario;
mod sinks;
mod svg;
mod throughput;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ebbflow::engine::WaitStrategy;

use crate::observe::ObserveConfig;
use crate::patterns::{Verdict, PATTERNS};
use crate::progress::Progress;
use crate::scenario::Scenario;

const HELP: &str = "\
ebbflow-report — run the reverse flow's 10 patterns over the 3 scenarios and write a
Markdown report in which every figure is measured

USAGE:
    cargo run --release --bin ebbflow-report -- [OPTIONS]

OPTIONS:
    --out PATH          the Markdown report (default docs/report.md); the latency plot
                        is written beside it as <stem>-latency.svg
    --duration SECS     length of each scenario's flat-out run and of its observed run
                        (default 3)
    --rate N            records per second offered in the observed runs (default 10000)
    --clients N         clients per transport in the observed runs, 1..=32 (default 4)
    --seed N            seed of the scenario generators (default 1)
    --scenario NAME     only this scenario (repeatable; default: all three):
                        enterprise_k8s_cluster, financial_trading_platform,
                        iot_smart_city_platform
    --quick             a short smoke run for tests: 0.3 s flat out and 0.6 s observed at
                        2,000 records/s per scenario, 1 client per transport, parked
                        pipeline threads and a sleeping pacer (overrides --duration,
                        --rate and --clients)
    --light             park idle pipeline threads and sleep until each record is due
    --spin              let pipeline threads spin-yield and spin until each record is due
                        (lower latency, two busy threads). Default: --spin on machines
                        with 4 or more CPUs, --light below (on 2 CPUs two spinning
                        threads starve the server and the clients measured beside them)
    --quiet             no progress on stderr
    -h, --help          this text

The report says how each section was measured; docs/reporting.md explains the method.

EXIT STATUS:
    0 report written, no pattern failed   1 report written, a pattern failed
    2 bad arguments   3 a run failed or the report could not be written
";

/// Why the command line was rejected.
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
}

/// The parsed command line.
#[derive(Debug, Clone)]
struct Options {
    out: PathBuf,
    duration: f64,
    rate: f64,
    clients: usize,
    seed: u64,
    scenarios: Vec<Scenario>,
    quick: bool,
    /// `Some(true)`: --light, `Some(false)`: --spin, `None`: by the CPU count.
    light: Option<bool>,
    quiet: bool,
    help: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, ArgError> {
    let mut o = Options {
        out: PathBuf::from("docs/report.md"),
        duration: 3.0,
        rate: 10_000.0,
        clients: 4,
        seed: 1,
        scenarios: Vec::new(),
        quick: false,
        light: None,
        quiet: false,
        help: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |option: &'static str| -> Result<String, ArgError> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(ArgError::Missing(option))
        };
        match name.as_str() {
            "--out" => o.out = PathBuf::from(value("--out")?),
            "--duration" => {
                let v = value("--duration")?;
                o.duration = v
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0 && *d <= 600.0)
                    .ok_or(ArgError::Bad {
                        option: "--duration",
                        value: v,
                        reason: "must be a number of seconds in (0, 600]",
                    })?;
            }
            "--rate" => {
                let v = value("--rate")?;
                o.rate = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r >= 10.0 && *r <= 10_000_000.0)
                    .ok_or(ArgError::Bad {
                        option: "--rate",
                        value: v,
                        reason: "must be a number of records per second in [10, 10000000]",
                    })?;
            }
            "--clients" => {
                let v = value("--clients")?;
                o.clients = v
                    .parse::<usize>()
                    .ok()
                    .filter(|c| (1..=32).contains(c))
                    .ok_or(ArgError::Bad {
                        option: "--clients",
                        value: v,
                        reason: "must be 1..=32",
                    })?;
            }
            "--seed" => {
                let v = value("--seed")?;
                o.seed = v.parse().map_err(|_| ArgError::Bad {
                    option: "--seed",
                    value: v,
                    reason: "must be an unsigned integer",
                })?;
            }
            "--scenario" => {
                let v = value("--scenario")?;
                let s = Scenario::ALL
                    .into_iter()
                    .find(|s| s.name() == v)
                    .ok_or(ArgError::Bad {
                        option: "--scenario",
                        value: v,
                        reason: "unknown scenario (see --help)",
                    })?;
                if !o.scenarios.contains(&s) {
                    o.scenarios.push(s);
                }
            }
            "--quick" => o.quick = true,
            "--light" => o.light = Some(true),
            "--spin" => o.light = Some(false),
            "--quiet" => o.quiet = true,
            "-h" | "--help" => o.help = true,
            _ => return Err(ArgError::Unknown(arg)),
        }
    }
    Ok(o)
}

/// Wall-clock ns since the Unix epoch (the flow's tick time base).
pub fn wallclock_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// How the runs were shaped, for the report's method section.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seconds of each flat-out run.
    pub flat_seconds: f64,
    /// Wait strategy of the flat-out runs.
    pub flat_wait: WaitStrategy,
    /// The observed runs.
    pub observe: ObserveConfig,
    /// `--quick` was given.
    pub quick: bool,
    /// How the waiting mode was chosen, for the method section.
    pub mode: String,
}

/// Everything measured for one scenario.
pub struct ScenarioReport {
    /// The scenario.
    pub scenario: Scenario,
    /// Its flat-out run.
    pub flat: throughput::Throughput,
    /// Its observed run.
    pub observed: observe::Observed,
    /// One verdict per pattern, in [`PATTERNS`] order.
    pub verdicts: Vec<Verdict>,
}

fn plan(o: &Options) -> Plan {
    if o.quick {
        Plan {
            flat_seconds: 0.3,
            flat_wait: WaitStrategy::Park,
            quick: true,
            mode: "light (`--quick`)".to_owned(),
            observe: ObserveConfig {
                rate: 2_000.0,
                seconds: 0.6,
                clients: 1,
                seed: o.seed,
                wait: WaitStrategy::Park,
                spin_pacing: false,
                window: Duration::from_millis(100),
                dashboard_interval: Duration::from_millis(50),
                faults_per_million: 5_000,
            },
        }
    } else {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let light = o.light.unwrap_or(cpus < 4);
        let wait = if light {
            WaitStrategy::Park
        } else {
            WaitStrategy::SpinYield
        };
        Plan {
            flat_seconds: o.duration,
            flat_wait: wait,
            quick: false,
            mode: match o.light {
                Some(true) => "light (`--light`)".to_owned(),
                Some(false) => "spin (`--spin`)".to_owned(),
                None if light => format!(
                    "light (chosen because this machine has {cpus} CPUs: two spinning threads would starve the server and the clients measured beside them)"
                ),
                None => format!("spin (chosen because this machine has {cpus} CPUs)"),
            },
            observe: ObserveConfig {
                rate: o.rate,
                seconds: o.duration,
                clients: o.clients,
                seed: o.seed,
                wait,
                spin_pacing: !light,
                window: Duration::from_millis(250),
                dashboard_interval: Duration::from_millis(100),
                faults_per_million: 5_000,
            },
        }
    }
}

fn svg_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_owned());
    out.with_file_name(format!("{stem}-latency.svg"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(args.clone()) {
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
    let started = Instant::now();
    let mut machine = machine::Machine::probe();
    let plan = plan(&opts);
    let scenarios = if opts.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        opts.scenarios.clone()
    };
    let mut progress = Progress::new(scenarios.len() * 2 + 1, opts.quiet);
    let mut reports = Vec::new();
    for scenario in scenarios {
        progress.step(&format!(
            "{}: flat-out run, {:.1} s",
            scenario.name(),
            plan.flat_seconds
        ));
        let flat = match throughput::run(
            scenario,
            plan.flat_seconds,
            opts.seed,
            plan.flat_wait,
            &mut progress,
        ) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(3);
            }
        };
        progress.line(&format!(
            "{}: {} records in {:.2} s",
            scenario.name(),
            flat.records,
            flat.push_seconds
        ));
        progress.step(&format!(
            "{}: observed run, {:.1} s at {:.0} records/s with {} clients per transport",
            scenario.name(),
            plan.observe.seconds,
            plan.observe.rate,
            plan.observe.clients
        ));
        let observed = match observe::run(scenario, &plan.observe, &mut progress) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(3);
            }
        };
        let verdicts: Vec<Verdict> = PATTERNS
            .iter()
            .map(|(p, _)| patterns::verdict(p, &observed.evidence, &observed.facts))
            .collect();
        for ((p, _), v) in PATTERNS.iter().zip(&verdicts) {
            if let Verdict::Fail(why) = v {
                progress.line(&format!("{}: {p}: FAIL: {why}", scenario.name()));
            }
        }
        reports.push(ScenarioReport {
            scenario,
            flat,
            observed,
            verdicts,
        });
    }
    progress.step("writing the report");
    machine.load_end = machine::load_average();
    machine.wall_s = started.elapsed().as_secs_f64();
    let svg_file = svg_path(&opts.out);
    let svg_name = svg_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut command = String::from("cargo run --release --bin ebbflow-report --");
    for a in &args {
        command.push(' ');
        command.push_str(a);
    }
    let doc = render::Doc {
        machine: &machine,
        plan: &plan,
        command: &command,
        svg_name: &svg_name,
        scenarios: &reports,
    };
    let markdown = render::markdown(&doc);
    let plot = render::latency_svg(&reports);
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: cannot create {}: {e}", dir.display());
            return ExitCode::from(3);
        }
    }
    for (path, text) in [(&opts.out, &markdown), (&svg_file, &plot)] {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(3);
        }
    }
    let failed = reports
        .iter()
        .flat_map(|r| &r.verdicts)
        .filter(|v| matches!(v, Verdict::Fail(_)))
        .count();
    progress.line(&format!(
        "wrote {} and {} in {:.1} s; {failed} pattern checks failed",
        opts.out.display(),
        svg_file.display(),
        machine.wall_s
    ));
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_parse_with_space_or_equals_and_reject_bad_values() {
        let o = parse_args(args("--out /tmp/r.md --duration=2 --rate 500 --clients 2")).unwrap();
        assert_eq!(o.out, PathBuf::from("/tmp/r.md"));
        assert_eq!((o.duration, o.rate, o.clients), (2.0, 500.0, 2));
        assert!(matches!(
            parse_args(args("--clients 0")),
            Err(ArgError::Bad { .. })
        ));
        assert!(matches!(
            parse_args(args("--duration -1")),
            Err(ArgError::Bad { .. })
        ));
        assert!(matches!(
            parse_args(args("--rate")),
            Err(ArgError::Missing(_))
        ));
        assert!(matches!(
            parse_args(args("--bogus")),
            Err(ArgError::Unknown(_))
        ));
        let o = parse_args(args(
            "--scenario iot_smart_city_platform --scenario=iot_smart_city_platform",
        ))
        .unwrap();
        assert_eq!(o.scenarios, vec![Scenario::SmartCity], "repeats are merged");
        assert!(matches!(
            parse_args(args("--scenario k8s")),
            Err(ArgError::Bad { .. })
        ));
    }

    #[test]
    fn the_plot_goes_beside_the_report() {
        assert_eq!(
            svg_path(Path::new("docs/report.md")),
            PathBuf::from("docs/report-latency.svg")
        );
    }
}
