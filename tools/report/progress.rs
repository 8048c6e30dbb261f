//! Progress lines on stderr: one when a step starts, then at most one every half second
//! while it runs (plain lines, fine for a terminal and a CI log alike).

use std::io::Write;
use std::time::{Duration, Instant};

/// Throttled progress output.
pub struct Progress {
    started: Instant,
    last: Option<Instant>,
    quiet: bool,
    step: usize,
    steps: usize,
}

impl Progress {
    /// Progress over `steps` steps; `quiet` prints nothing.
    pub fn new(steps: usize, quiet: bool) -> Progress {
        Progress {
            started: Instant::now(),
            last: None,
            quiet,
            step: 0,
            steps,
        }
    }

    /// A new step begins.
    pub fn step(&mut self, what: &str) {
        self.step += 1;
        self.last = None;
        self.line(what);
    }

    /// Prints `what()` if half a second passed since the last line.
    pub fn update(&mut self, what: impl FnOnce() -> String) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_millis(500))
        {
            return;
        }
        let line = what();
        self.line(&line);
    }

    /// Prints a line now.
    pub fn line(&mut self, what: &str) {
        self.last = Some(Instant::now());
        if self.quiet {
            return;
        }
        let _ = writeln!(
            std::io::stderr(),
            "[report {:>6.1}s] step {}/{}: {what}",
            self.started.elapsed().as_secs_f64(),
            self.step,
            self.steps
        );
    }
}
