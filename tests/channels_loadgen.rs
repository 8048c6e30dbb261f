//! `ebbflow-loadgen` works end to end (a small run, so the tool cannot rot): 50 clients
//! subscribe, every message published during the run reaches each of them, and the tool
//! reports it in its `RESULT` line.

#[path = "peers/support.rs"]
mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::*;

#[test]
fn the_load_generator_measures_deliveries_to_every_client() {
    let (server, mut w) = start(|c| c.topics[0].name = "bench".into());
    let addr = server.local_addr().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebbflow-loadgen"))
        .args([
            "--addr",
            &addr.to_string(),
            "--clients",
            "50",
            "--secs",
            "2",
            "--connect-secs",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("loadgen starts");
    let end = Instant::now() + Duration::from_secs(40);
    let mut seq = 0u64;
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = format!("{{\"seq\":{seq},\"ts_ns\":{ts}}}");
        let _ = w.try_publish("bench", "tick", p.as_bytes());
        w.flush();
        seq += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{out}");
    let result = out
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("{out}"));
    let field = |name: &str| -> u64 {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {result}")) as u64
    };
    assert_eq!(field("clients"), 50, "{out}");
    assert_eq!(field("closed"), 0, "{out}");
    // About 2 s at 50 messages/s to 50 clients.
    assert!(field("deliveries") >= 50 * 50, "{out}");
    assert!(out.contains("KiB per connection"), "{out}");
}
