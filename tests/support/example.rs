//! The `reverse_flow` example as a child process for end-to-end tests: built for the
//! test's own profile if needed, started with `--listen 127.0.0.1:0`, its bound address
//! read from its `serving on …` line, killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The target profile directory this test runs from (`…/debug` or `…/release`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary under <target>/<profile>/deps")
        .to_path_buf()
}

/// Waits for `child` at most `limit`; kills it and returns `None` past that.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The `reverse_flow` example of this profile, built if needed.
pub fn example_binary() -> PathBuf {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--example", "reverse_flow"])
        .current_dir(ROOT);
    if profile_dir().file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    let mut child = cmd.spawn().expect("run cargo build --example reverse_flow");
    let status = wait_bounded(&mut child, Duration::from_secs(600));
    assert!(
        status.is_some_and(|s| s.success()),
        "cargo build --example reverse_flow failed: {status:?}"
    );
    let bin = profile_dir().join("examples/reverse_flow");
    assert!(bin.exists(), "no engine binary at {}", bin.display());
    bin
}

/// The engine process; killed on drop.
pub struct Engine {
    pub child: Child,
    /// `host:port` it serves on.
    pub addr: String,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Engine {
    /// Starts `bin` with `args` (which must include `--listen 127.0.0.1:0`) and `envs`;
    /// returns once it reports its address (at most 60 s). Its stderr lines starting with
    /// one of `echo` are printed with an `engine:` prefix.
    pub fn start(
        bin: &Path,
        args: &[&std::ffi::OsStr],
        envs: &[(&str, &str)],
        echo: &'static [&'static str],
    ) -> Engine {
        let mut child = Command::new(bin)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the engine");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("serving on ") {
                    let addr = rest.split(':').take(2).collect::<Vec<_>>().join(":");
                    let _ = tx.send(addr);
                } else if echo.iter().any(|p| line.starts_with(p)) {
                    eprintln!("engine: {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the engine did not report its address within 60 s");
        Engine { child, addr }
    }
}
