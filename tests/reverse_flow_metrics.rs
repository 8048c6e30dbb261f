//! The example's connection metrics reach a real OTLP receiver (the official
//! `opentelemetry-proto` decoder): with `--listen` and `OTEL_EXPORTER_OTLP_ENDPOINT`, the
//! `ebbflow.channels.connections` gauge follows the clients that are connected (plain
//! WebSocket and SSE alike) and `ebbflow.channels.connections_accepted` counts them.
//! `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds) sets how often metrics are sent.
//!
//! Run: `cargo test --test reverse_flow_metrics`.

use std::ffi::OsStr;
use std::io::Write;
use std::net::TcpStream;

use serde_json::Value;

#[path = "support/example.rs"]
mod example;
#[path = "support/otlp.rs"]
mod otlp;

use example::{example_binary, Engine};
use otlp::{free_port, int, metric, OtlpReceiver};

/// The connections gauge of a metrics request, if it carries one.
fn open(req: &Value) -> Option<f64> {
    metric(req, "ebbflow.channels.connections").and_then(|m| m["points"][0]["value"].as_f64())
}

#[test]
fn the_exported_connection_gauge_follows_the_connected_clients() {
    let port = free_port();
    let receiver = OtlpReceiver::start(port, 0);
    let endpoint = format!("http://127.0.0.1:{port}");
    let args: Vec<&OsStr> = [
        "--scenario",
        "enterprise_k8s_cluster",
        "--rate",
        "500",
        "--duration",
        "120",
        "--listen",
        "127.0.0.1:0",
        "--quiet",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let engine = Engine::start(
        &example_binary(),
        &args,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
        &["error", "telemetry"],
    );
    let addr = engine.addr.clone();

    // Nobody connected yet.
    receiver.collect(|reqs| reqs.iter().any(|r| open(r) == Some(0.0)));

    // Three plain WebSocket clients and two SSE streams.
    let mut ws: Vec<_> = (0..3)
        .map(|_| {
            let stream = TcpStream::connect(&addr).unwrap();
            tungstenite::client(format!("ws://{addr}/ws?topics=dashboard"), stream)
                .unwrap()
                .0
        })
        .collect();
    let _sse: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(
                b"GET /events?topics=dashboard HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n",
            )
            .unwrap();
            s
        })
        .collect();
    let reqs = receiver.collect(|reqs| reqs.last().and_then(open) == Some(5.0));
    let last = reqs.last().unwrap();
    let accepted = metric(last, "ebbflow.channels.connections_accepted")
        .expect("the accepted-connections counter is exported");
    assert_eq!(accepted["type"], "sum");
    assert!(int(&accepted["points"][0]["value"]) >= 5, "{accepted}");

    // Two WebSocket clients leave: the gauge drops to three.
    for mut c in ws.drain(..2) {
        let _ = c.close(None);
        let _ = c.flush();
    }
    receiver.collect(|reqs| reqs.last().and_then(open) == Some(3.0));
    drop(engine);
}
