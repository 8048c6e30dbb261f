//! The machine a report was measured on, read from `/proc`, the environment and commands —
//! never written down by hand.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the report says about the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPU model (`model name` in `/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// Logical CPUs this process may use (`std::thread::available_parallelism`).
    pub cpus: usize,
    /// Total memory in KiB (`MemTotal` in `/proc/meminfo`), when readable.
    pub mem_kib: Option<u64>,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// `rustc --version`, or `unknown`.
    pub rustc: String,
    /// `git rev-parse --short HEAD` in the crate's directory, when it answers, marked when
    /// tracked files have uncommitted changes.
    pub commit: Option<String>,
    /// Whether the engine clock reads the CPU's time-stamp counter.
    pub tsc: bool,
    /// Start of the run, UTC, `YYYY-MM-DD HH:MM:SS`.
    pub started_utc: String,
    /// `/proc/loadavg` (1, 5, 15 min) at the start.
    pub load_start: Option<[f64; 3]>,
    /// `/proc/loadavg` at the end.
    pub load_end: Option<[f64; 3]>,
    /// Wall time of the whole run in seconds.
    pub wall_s: f64,
}

impl Machine {
    /// Reads everything but the end-of-run fields.
    pub fn probe() -> Machine {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_kib: mem_total_kib(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            rustc: command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_owned()),
            commit: commit(),
            tsc: ebbflow::engine::Clock::get().is_tsc(),
            started_utc: utc_now(),
            load_start: load_average(),
            load_end: None,
            wall_s: 0.0,
        }
    }
}

/// `git rev-parse --short HEAD` in the crate's directory, marked when tracked files have
/// uncommitted changes (`git status --porcelain --untracked-files=no`).
fn commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let head = command_line("git", &["-C", dir, "rev-parse", "--short", "HEAD"])?;
    let dirty = command_line(
        "git",
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some();
    Some(if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    })
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn mem_total_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// First line of a command's stdout, when it runs and succeeds.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.lines().next()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}

/// The current time, UTC, `YYYY-MM-DD HH:MM:SS`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
