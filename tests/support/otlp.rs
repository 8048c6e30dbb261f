//! The real OTLP/HTTP receiver for telemetry tests: `tests/peers/py/otlp_receiver.py`
//! decodes every request with the official `opentelemetry-proto` classes (installed by
//! `scripts/setup.d/telemetry.sh`) and prints it as one JSON line; helpers read the
//! decoded spans and metrics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest a test waits for the receiver to start or for requests to arrive.
pub const RECEIVER_WAIT: Duration = Duration::from_secs(20);

/// The receiver as a child process; killed on drop.
pub struct OtlpReceiver {
    child: Child,
    lines: Receiver<Value>,
}

impl OtlpReceiver {
    /// Starts the receiver on `127.0.0.1:port`; it answers `503` to its first
    /// `fail_first` requests, and exits by itself after two minutes.
    pub fn start(port: u16, fail_first: u32) -> OtlpReceiver {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/py/otlp_receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .args(["--fail-first", &fail_first.to_string()])
            .args(["--max-seconds", "120"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/setup.d/telemetry.sh installs its package)");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("receiver prints JSON");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let r = OtlpReceiver { child, lines: rx };
        let ready = r.next(RECEIVER_WAIT).expect("receiver did not start");
        assert_eq!(ready["signal"], "ready", "{ready}");
        r
    }

    /// The next decoded request, if one comes within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Collects decoded requests until `done` says enough (bounded by `RECEIVER_WAIT`).
    pub fn collect(&self, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + RECEIVER_WAIT;
        let mut got = Vec::new();
        while !done(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(v) => {
                    assert!(v.get("error").is_none(), "receiver could not decode: {v}");
                    got.push(v);
                }
                None => panic!("timed out; received {} requests: {got:#?}", got.len()),
            }
        }
        got
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every span of the trace requests.
pub fn spans(reqs: &[Value]) -> Vec<Value> {
    reqs.iter()
        .filter(|r| r["signal"] == "traces")
        .flat_map(|r| r["spans"].as_array().unwrap().clone())
        .collect()
}

/// The root spans (`reverse_flow`).
pub fn roots(reqs: &[Value]) -> Vec<Value> {
    spans(reqs)
        .into_iter()
        .filter(|s| s["name"] == "reverse_flow")
        .collect()
}

/// The spans among `spans` whose parent is `root`, in the order they were exported.
pub fn children<'a>(spans: &'a [Value], root: &Value) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["parent_span_id"] == root["span_id"])
        .collect()
}

/// Asserts that `children` are `root`'s stage spans in order: the root's trace,
/// `ebbflow.stage.index` = position, each starting no earlier than the previous one (or the
/// root) ended and ending within the root. Returns the last child's end.
pub fn assert_stage_spans(root: &Value, children: &[&Value]) -> u64 {
    let (rs, re) = (int(&root["start"]), int(&root["end"]));
    let mut prev_end = rs;
    for (i, c) in children.iter().enumerate() {
        assert_eq!(c["trace_id"], root["trace_id"]);
        assert_eq!(c["attributes"]["ebbflow.stage.index"], i);
        let (cs, ce) = (int(&c["start"]), int(&c["end"]));
        assert!(
            prev_end <= cs && cs <= ce && ce <= re,
            "stage {i} [{cs}, {ce}] not after {prev_end} within root [{rs}, {re}]"
        );
        prev_end = ce;
    }
    prev_end
}

/// The metric named `name` in a metrics request.
pub fn metric<'a>(req: &'a Value, name: &str) -> Option<&'a Value> {
    req["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

/// The point of `m` whose attribute `attr` is `value`.
pub fn point<'a>(m: &'a Value, attr: &str, value: &str) -> &'a Value {
    m["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["attributes"][attr] == value)
        .unwrap_or_else(|| panic!("no point {attr}={value} in {m}"))
}

/// An integer as protobuf JSON writes it (a number, or a string for 64-bit values).
pub fn int(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not an integer: {v}"))
}
